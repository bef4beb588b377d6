package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Record kinds in the registry's store namespace.
const (
	// kindInstitution holds one institution per record, id = institution
	// id, data = a marshalled registryv1.Institution.
	kindInstitution = "institution"
	// kindCode claims a credit code: id = the normalised code, data = the
	// institution id. Written with MustNotExist in the registration's batch,
	// it is what makes codes unique, race or no race.
	kindCode = "institution_code"
)

// updateRetries bounds how often update re-reads and re-applies a change
// when the caller did not pin a version and another writer got in between.
const updateRetries = 3

// errNoChange is what an update closure returns when the change would leave
// the institution as it is: nothing is written and no event is published.
var errNoChange = errors.New("no change")

// indexTerms are the store index terms of an institution: one per filter
// ListInstitutions offers an index for.
func indexTerms(in *Institution) []string {
	return []string{
		termState + in.State.String(),
		termKind + in.Kind.String(),
		termTier + in.Tier.String(),
		termZone + in.Zone.String(),
	}
}

// Index term prefixes.
const (
	termState = "state="
	termKind  = "kind="
	termTier  = "tier="
	termZone  = "zone="
)

// create stores a new institution, its credit-code claim and its event in
// one batch. A code already claimed answers AlreadyExists.
func (s *Server) create(ctx context.Context, in *Institution, subject string, now time.Time) error {
	in.Version = 1
	msg := toProtoInstitution(in)
	data, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("registry: marshal institution: %w", err)
	}
	ev, err := s.event(ctx, subject, msg, now)
	if err != nil {
		return err
	}
	_, err = s.st.Apply(ctx, store.Batch{
		Puts: []store.Put{
			{Kind: kindInstitution, ID: in.ID, Expect: store.MustNotExist, Data: data, Index: indexTerms(in)},
			{Kind: kindCode, ID: in.CreditCode, Expect: store.MustNotExist, Data: []byte(in.ID)},
		},
		Events: []store.Event{ev},
	})
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Kind == kindCode {
		return s.codeTaken(ctx, in.CreditCode)
	}
	if err != nil {
		return fmt.Errorf("registry: register %s: %w", in.CreditCode, err)
	}
	return nil
}

// codeTaken is the AlreadyExists error for a claimed code, naming the
// institution that holds it when it can be read.
func (s *Server) codeTaken(ctx context.Context, code string) error {
	if rec, err := s.st.Get(ctx, kindCode, code); err == nil {
		return errs.New(ErrCreditCodeTaken, "an institution with credit code %s is already registered (id %s)", code, rec.Data)
	}
	return errs.New(ErrCreditCodeTaken, "an institution with credit code %s is already registered", code)
}

// get reads one institution; NotFound names the id.
func (s *Server) get(ctx context.Context, id string) (*Institution, error) {
	rec, err := s.st.Get(ctx, kindInstitution, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("institution", id)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: get %s: %w", id, err)
	}
	return decodeInstitution(rec)
}

// update reads an institution, lets fn change it, and writes it back with
// its event, expecting the version it read. An institution the caller does
// not own (auth.Owns) answers NotFound. want is the version the caller read
// (0: none given); fn sees the institution only after want is checked, with
// the time of the change. fn returns the subject of the change's event, or
// errNoChange to write nothing. A concurrent write between the read and the
// write answers Aborted when the caller pinned a version, and is retried
// otherwise.
func (s *Server) update(ctx context.Context, id string, want int64, fn func(in *Institution, now time.Time) (string, error)) (*Institution, error) {
	for attempt := 1; ; attempt++ {
		in, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		// Someone else's institution answers as if it did not exist, before
		// the version check could tell the caller it does, and its version.
		if !auth.Owns(ctx, in.CreditCode) {
			return nil, errs.NotFound("institution", id)
		}
		if want != 0 {
			if err := in.CheckVersion(want); err != nil {
				return nil, err
			}
		}
		read := in.Version
		now := s.now().UTC()
		subject, err := fn(in, now)
		if errors.Is(err, errNoChange) {
			return in, nil
		}
		if err != nil {
			return nil, err
		}
		in.Version = read + 1
		in.Updated = now
		msg := toProtoInstitution(in)
		data, err := proto.Marshal(msg)
		if err != nil {
			return nil, fmt.Errorf("registry: marshal institution: %w", err)
		}
		ev, err := s.event(ctx, subject, msg, now)
		if err != nil {
			return nil, err
		}
		_, err = s.st.Apply(ctx, store.Batch{
			Puts:   []store.Put{{Kind: kindInstitution, ID: id, Expect: read, Data: data, Index: indexTerms(in)}},
			Events: []store.Event{ev},
		})
		var ce *store.ConflictError
		switch {
		case err == nil:
			return in, nil
		case errors.As(err, &ce) && want == 0 && attempt < updateRetries:
			continue
		case errors.As(err, &ce):
			return nil, errs.New(ErrStaleVersion, "institution %s changed while this change was made (version %d read, now %d); read it again", id, read, ce.Current)
		default:
			return nil, fmt.Errorf("registry: update %s: %w", id, err)
		}
	}
}

// scan calls fn for every institution record matching the index term and
// match, in id order, a page at a time.
func (s *Server) scan(ctx context.Context, term string, match func(store.Record) bool, fn func(*Institution) error) error {
	q := store.Query{Index: term, Limit: store.MaxLimit, Match: match}
	for {
		page, err := s.st.List(ctx, kindInstitution, q)
		if err != nil {
			return fmt.Errorf("registry: list %q: %w", term, err)
		}
		for _, rec := range page.Records {
			in, err := decodeInstitution(rec)
			if err != nil {
				return err
			}
			if err := fn(in); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.After = page.Next
	}
}

// decodeInstitution turns a stored record into the domain type. The
// record's version is authoritative.
func decodeInstitution(rec store.Record) (*Institution, error) {
	msg := &registryv1.Institution{}
	if err := proto.Unmarshal(rec.Data, msg); err != nil {
		return nil, fmt.Errorf("registry: decode institution %s: %w", rec.ID, err)
	}
	in, err := fromProtoInstitution(msg)
	if err != nil {
		return nil, fmt.Errorf("registry: decode institution %s: %w", rec.ID, err)
	}
	in.Version = rec.Version
	return in, nil
}
