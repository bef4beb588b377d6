package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// SeedPath is where the registry's demo data sit inside the seeds folder.
const SeedPath = "registry/institutions.json"

// SeedFile is the JSON shape of SeedPath, shared by LoadSeeds and the
// 'carbondesk seed' client.
type SeedFile struct {
	Note         string            `json:"note"`
	Institutions []SeedInstitution `json:"institutions"`
}

// SeedInstitution is one institution to register, with the state it should end in.
type SeedInstitution struct {
	CreditCode string `json:"credit_code"`
	NameZh     string `json:"name_zh"`
	NameEn     string `json:"name_en"`
	Kind       string `json:"kind"`
	Tier       string `json:"tier"`
	Zone       string `json:"zone"`
	Address    string `json:"address"`
	Contact    struct {
		Name  string `json:"name"`
		Phone string `json:"phone"`
		Email string `json:"email"`
	} `json:"contact"`
	Licences []struct {
		Name   string `json:"name"`
		Number string `json:"number"`
		Issuer string `json:"issuer"`
	} `json:"licences"`
	State  string `json:"state"`  // PENDING (default), ACTIVE, REJECTED or SUSPENDED
	Reason string `json:"reason"` // recorded with the reviews that get it there
}

// seedPaths are the review actions that take a new institution to each
// target state.
var seedPaths = map[State][]Action{
	StatePending:   nil,
	StateActive:    {ActionApprove},
	StateRejected:  {ActionReject},
	StateSuspended: {ActionApprove, ActionSuspend},
}

// LoadSeeds registers the demo institutions of SeedPath in fsys (the seeds
// folder: seeds.FS, or os.DirFS("seeds")) through s as the system actor, and reviews each
// into the state the file gives. It is idempotent: an institution whose
// credit code is already registered is skipped, whatever its state now, so
// a second start creates nothing and never undoes what staff did since.
// A missing file is an error for which errors.Is(err, fs.ErrNotExist) holds.
func LoadSeeds(ctx context.Context, s *Server, fsys fs.FS) error {
	data, err := fs.ReadFile(fsys, SeedPath)
	if err != nil {
		return fmt.Errorf("registry: seeds: %w", err)
	}
	var f SeedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("registry: seeds: %s: %w", SeedPath, err)
	}
	ctx = events.WithActor(ctx, events.System)
	created, skipped := 0, 0
	for i, sd := range f.Institutions {
		ok, err := s.loadSeed(ctx, sd)
		if err != nil {
			return fmt.Errorf("registry: seeds: %s entry %d (%s): %w", SeedPath, i, sd.CreditCode, err)
		}
		if ok {
			created++
		} else {
			skipped++
		}
	}
	s.log.InfoContext(ctx, "registry: seeds loaded", "file", SeedPath, "created", created, "already_there", skipped)
	return nil
}

// loadSeed registers one seed and reviews it to its target state. It
// reports false when the code was already registered.
func (s *Server) loadSeed(ctx context.Context, sd SeedInstitution) (bool, error) {
	target, err := ParseState(sd.State)
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	if target.IsZero() {
		target = StatePending
	}
	kind, err := ParseKind(sd.Kind)
	if err != nil {
		return false, fmt.Errorf("kind: %w", err)
	}
	tier, err := ParseTier(sd.Tier)
	if err != nil {
		return false, fmt.Errorf("tier: %w", err)
	}
	zone, err := ParseZone(sd.Zone)
	if err != nil {
		return false, fmt.Errorf("zone: %w", err)
	}
	code := NormalizeCreditCode(sd.CreditCode)
	if _, err := s.st.Get(ctx, kindCode, code); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	req := &registryv1.RegisterInstitutionRequest{
		CreditCode: sd.CreditCode,
		NameZh:     sd.NameZh,
		NameEn:     sd.NameEn,
		Kind:       kind.proto(),
		Tier:       tier.proto(),
		Zone:       zone.proto(),
		Address:    sd.Address,
		Contact:    &registryv1.Contact{Name: sd.Contact.Name, Phone: sd.Contact.Phone, Email: sd.Contact.Email},
	}
	for _, l := range sd.Licences {
		req.Licences = append(req.Licences, &registryv1.Licence{Name: l.Name, Number: l.Number, Issuer: l.Issuer})
	}
	resp, err := s.RegisterInstitution(ctx, req)
	if errors.Is(err, errs.ErrAlreadyExists) {
		return false, nil // registered between the check and now
	}
	if err != nil {
		return false, err
	}
	reason := sd.Reason
	if reason == "" {
		reason = "demo data"
	}
	id := resp.GetInstitution().GetId()
	for _, a := range seedPaths[target] {
		if _, err := s.review(ctx, a, id, reason, 0); err != nil {
			return false, err
		}
	}
	return true, nil
}
