package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/instview"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

// SeedPath is where the catalog's demo data sit inside the seeds folder.
const SeedPath = "catalog/products.json"

// SeedFile is the JSON shape of SeedPath, shared by LoadSeeds and the
// 'carbondesk seed' client.
type SeedFile struct {
	Note            string `json:"note"`
	ReferencePrices struct {
		CEA    int64  `json:"cea_yuan_per_tonne"`
		CCER   int64  `json:"ccer_yuan_per_tonne"`
		Source string `json:"source"`
	} `json:"reference_prices"`
	Products []SeedProduct `json:"products"`
}

// SeedProduct is one product, owned by the seeded institution with its credit
// code, with the state it should end in.
type SeedProduct struct {
	Key         string    `json:"key"`
	CreditCode  string    `json:"institution_credit_code"`
	NameZh      string    `json:"name_zh"`
	NameEn      string    `json:"name_en"`
	Category    string    `json:"category"`
	DemandKinds []string  `json:"demand_kinds"`
	Amount      [2]int64  `json:"amount_yuan"`
	Term        [2]int64  `json:"term_months"`
	RateBps     *[2]int64 `json:"annual_rate_bps,omitempty"`
	FeeYuan     *int64    `json:"fee_yuan,omitempty"`
	Sectors     []string  `json:"sectors"`
	Regions     []string  `json:"regions"`
	Collateral  *struct {
		Asset     string `json:"asset"`
		PledgeBps int32  `json:"pledge_rate_bps"`
	} `json:"collateral,omitempty"`
	Description string `json:"description"`
	Contact     struct {
		Name  string `json:"name"`
		Phone string `json:"phone"`
		Email string `json:"email"`
	} `json:"contact"`
	State  string `json:"state"` // DRAFT (default), PUBLISHED, PAUSED or RETIRED
	Reason string `json:"reason"`
}

// LoadSeeds loads the demo catalog of SeedPath in fsys (seeds.FS, or
// os.DirFS("seeds")) through s as the system actor: the reference prices
// when none are set, then each product not loaded before, taken to the
// state the file gives.
//
// Products name their institution by credit code, from the registry's seeds.
// The registry assigns ids, so the catalog learns them only from the
// registry's events, through its institution view: LoadSeeds therefore
// waits (up to WithSeedWait, default 30 s) until the view holds every
// institution a product to load names, and holds it ACTIVE when the product
// is to be published. RunInstitutionFeed must be running, and the registry's
// seeds loaded (their events published by its outbox relay). Waiting on the
// view, rather than writing it from the registry's seed file, keeps one
// writer of the view (the feed, in registry order) and works whether the
// registry runs in this process or another.
//
// It is idempotent: each product's key is marked in the batch that creates
// it, and a marked key is skipped whatever the product's state now, so a
// second start creates nothing and never undoes what happened since. (A
// crash between creating a product and publishing it leaves it DRAFT.)
func LoadSeeds(ctx context.Context, s *Server, fsys fs.FS) error {
	data, err := fs.ReadFile(fsys, SeedPath)
	if err != nil {
		return fmt.Errorf("catalog: seeds: %w", err)
	}
	var f SeedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("catalog: seeds: %s: %w", SeedPath, err)
	}
	ctx = events.WithActor(ctx, events.System)

	if _, ok, err := s.ReferencePrices(ctx); err != nil {
		return fmt.Errorf("catalog: seeds: %w", err)
	} else if !ok && f.ReferencePrices.CEA > 0 {
		if _, err := s.setPrices(ctx, f.ReferencePrices.CEA, f.ReferencePrices.CCER, f.ReferencePrices.Source, 0); err != nil && !errors.Is(err, ErrStaleVersion) {
			return fmt.Errorf("catalog: seeds: reference prices: %w", err)
		}
	}

	// What is left to load, and what it needs of the view.
	var todo []SeedProduct
	need := map[string]bool{} // credit code → must be ACTIVE
	for i, sd := range f.Products {
		if sd.Key == "" {
			return fmt.Errorf("catalog: seeds: %s entry %d has no key", SeedPath, i)
		}
		if _, err := s.st.Get(ctx, kindSeed, sd.Key); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("catalog: seeds: %w", err)
		}
		todo = append(todo, sd)
		code := registry.NormalizeCreditCode(sd.CreditCode)
		st := strings.ToUpper(sd.State)
		need[code] = need[code] || st == "PUBLISHED" || st == "PAUSED"
	}
	if len(todo) == 0 {
		s.log.InfoContext(ctx, "catalog: seeds already loaded", "file", SeedPath)
		return nil
	}
	views, err := s.awaitInstitutions(ctx, need)
	if err != nil {
		return fmt.Errorf("catalog: seeds: %w", err)
	}
	created := 0
	for _, sd := range todo {
		ok, err := s.loadSeed(ctx, sd, views[registry.NormalizeCreditCode(sd.CreditCode)])
		if err != nil {
			return fmt.Errorf("catalog: seeds: %s product %s: %w", SeedPath, sd.Key, err)
		}
		if ok {
			created++
		}
	}
	s.log.InfoContext(ctx, "catalog: seeds loaded", "file", SeedPath, "created", created, "already_there", len(f.Products)-created)
	return nil
}

// awaitInstitutions polls the view until it holds every code of need (and
// holds it ACTIVE where need says so), and returns the views by code.
func (s *Server) awaitInstitutions(ctx context.Context, need map[string]bool) (map[string]*Institution, error) {
	ctx, cancel := context.WithTimeout(ctx, s.seedWait)
	defer cancel()
	views, missing, err := instview.Await(ctx, s.st, kindInstitution, need, 50*time.Millisecond)
	if len(missing) > 0 {
		shown := strings.Join(missing[:min(len(missing), 5)], ", ")
		if len(missing) > 5 {
			shown += fmt.Sprintf(" and %d more", len(missing)-5)
		}
		return nil, fmt.Errorf("the catalog's view lacks (or does not yet hold ACTIVE) %d institutions (%s) after %s: are the registry's seeds loaded, its outbox relay and the catalog's RunInstitutionFeed running?",
			len(missing), shown, s.seedWait)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return views, nil
}

// loadSeed creates one product and takes it to its target state; false
// when another loader created it first.
func (s *Server) loadSeed(ctx context.Context, sd SeedProduct, in *Institution) (bool, error) {
	target, err := ParseState(sd.State)
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	t, err := sd.terms()
	if err != nil {
		return false, err
	}
	var v errs.Violations
	t = t.Clean()
	t.Validate("", &v)
	if err := v.Err(); err != nil {
		return false, err
	}
	mark := store.Put{Kind: kindSeed, ID: sd.Key, Expect: store.MustNotExist, Data: []byte(sd.CreditCode)}
	p, err := s.createFor(ctx, in, t, mark)
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Kind == kindSeed {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	reason := sd.Reason
	if reason == "" {
		reason = "demo data"
	}
	switch target {
	case StatePublished:
		_, err = s.publish(ctx, p.ID, 0)
	case StatePaused:
		if _, err = s.publish(ctx, p.ID, 0); err == nil {
			_, err = s.simpleTransition(ctx, actPause, SubjectPaused, p.ID, 0, reason)
		}
	case StateRetired:
		_, err = s.simpleTransition(ctx, actRetire, SubjectRetired, p.ID, 0, reason)
	}
	return true, err
}

func (sd SeedProduct) terms() (Terms, error) {
	t := Terms{
		NameZh:      sd.NameZh,
		NameEn:      sd.NameEn,
		Amount:      Range{sd.Amount[0], sd.Amount[1]},
		Term:        Range{sd.Term[0], sd.Term[1]},
		Regions:     sd.Regions,
		Description: sd.Description,
		Contact:     Contact{Name: sd.Contact.Name, Phone: sd.Contact.Phone, Email: sd.Contact.Email},
	}
	var err error
	if t.Category, err = ParseCategory(sd.Category); err != nil {
		return t, fmt.Errorf("category: %w", err)
	}
	for _, d := range sd.DemandKinds {
		dk, err := ParseDemandKind(d)
		if err != nil {
			return t, fmt.Errorf("demand_kinds: %w", err)
		}
		t.DemandKinds = append(t.DemandKinds, dk)
	}
	for _, sc := range sd.Sectors {
		sv, err := ParseSector(sc)
		if err != nil {
			return t, fmt.Errorf("sectors: %w", err)
		}
		t.Sectors = append(t.Sectors, sv)
	}
	switch {
	case sd.RateBps != nil && sd.FeeYuan != nil:
		return t, errors.New("give annual_rate_bps or fee_yuan, not both")
	case sd.RateBps != nil:
		t.Price = Price{Set: true, Rate: Range{sd.RateBps[0], sd.RateBps[1]}}
	case sd.FeeYuan != nil:
		t.Price = Price{Set: true, IsFee: true, FeeYuan: *sd.FeeYuan}
	}
	if c := sd.Collateral; c != nil {
		a, err := ParseAsset(c.Asset)
		if err != nil {
			return t, fmt.Errorf("collateral: %w", err)
		}
		t.Collateral = Collateral{Asset: a, PledgeBps: c.PledgeBps}
	}
	return t, nil
}
