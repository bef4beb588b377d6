package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

var t0 = time.Date(2026, 4, 2, 9, 30, 0, 0, time.UTC)

// clock moves one second per reading, so every change has its own time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func newTestServer(t *testing.T, st store.Store, opts ...Option) *Server {
	t.Helper()
	c := &clock{now: t0}
	return New(st, append([]Option{WithClock(c.Now)}, opts...)...)
}

func staffCtx(t *testing.T) context.Context {
	return auth.WithCaller(t.Context(), auth.Caller{Subject: "staff-ma", Role: auth.Staff})
}

func instCtx(t *testing.T, org string) context.Context {
	return auth.WithCaller(t.Context(), auth.Caller{Subject: "desk-" + org, Role: auth.Institution, Org: org})
}

func entCtx(t *testing.T) context.Context {
	return auth.WithCaller(t.Context(), auth.Caller{Subject: "ent-li", Role: auth.Enterprise, Org: "91420106ENTERPRISE1"})
}

var seq atomic.Int64

// institutionView puts an institution into the catalog's view as the feed
// would, at registry version ver, and returns it.
func institutionView(t *testing.T, s *Server, state registryv1.InstitutionState) *Institution {
	t.Helper()
	n := seq.Add(1)
	in := &Institution{ID: fmt.Sprintf("01INST%014d", n), CreditCode: fmt.Sprintf("91420106T%08dX", n),
		Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK, State: state, Version: 1}
	setInstitution(t, s, in, state)
	return in
}

// setInstitution moves an institution of the view to state, as the feed
// does for a registry event (pausing products on suspension).
func setInstitution(t *testing.T, s *Server, in *Institution, state registryv1.InstitutionState) {
	t.Helper()
	next := *in
	next.State = state
	next.Version = in.Version + 1
	if err := s.applyInstitution(t.Context(), &next, s.st.Apply); err != nil {
		t.Fatalf("apply institution: %v", err)
	}
	*in = next
}

// validProduct is a product request that passes validation.
func validProduct() *catalogv1.Product {
	return &catalogv1.Product{
		NameZh:      "楚江碳排放配额质押贷",
		NameEn:      "Chujiang CEA Allowance Pledge Loan",
		Category:    catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE,
		DemandKinds: []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING},
		Amount:      &catalogv1.AmountRange{MinYuan: 1_000_000, MaxYuan: 50_000_000},
		Term:        &catalogv1.TermRange{MinMonths: 6, MaxMonths: 36},
		Price:       &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: 320, MaxBps: 450}}},
		Sectors:     []catalogv1.Sector{catalogv1.Sector_SECTOR_POWER, catalogv1.Sector_SECTOR_STEEL},
		Regions:     []string{"420000"},
		Collateral:  &catalogv1.Collateral{Asset: catalogv1.CarbonAsset_CARBON_ASSET_CEA, PledgeRateBps: 6000},
		Description: "以全国碳排放配额质押",
		Contact:     &catalogv1.Contact{Name: "王晓岚", Phone: "027-8765 4321", Email: "desk@chujiang.example"},
	}
}

// create creates a valid product for in as staff.
func create(t *testing.T, s *Server, in *Institution, mod ...func(*catalogv1.Product)) *catalogv1.Product {
	t.Helper()
	p := validProduct()
	for _, m := range mod {
		m(p)
	}
	resp, err := s.CreateProduct(staffCtx(t), &catalogv1.CreateProductRequest{InstitutionId: in.ID, Product: p})
	if err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	return resp.GetProduct()
}

// published creates and publishes a product of in.
func published(t *testing.T, s *Server, in *Institution) *catalogv1.Product {
	t.Helper()
	p := create(t, s, in)
	resp, err := s.PublishProduct(staffCtx(t), &catalogv1.PublishProductRequest{Id: p.GetId(), Version: p.GetVersion()})
	if err != nil {
		t.Fatalf("PublishProduct: %v", err)
	}
	return resp.GetProduct()
}

func read(t *testing.T, s *Server, id string) *catalogv1.Product {
	t.Helper()
	resp, err := s.GetProduct(staffCtx(t), &catalogv1.GetProductRequest{Id: id})
	if err != nil {
		t.Fatalf("GetProduct %s: %v", id, err)
	}
	return resp.GetProduct()
}

func code(err error) codes.Code {
	st, _ := errs.Status(err)
	return st.Code()
}

func message(err error) string {
	st, _ := errs.Status(err)
	return st.Message()
}

func violationFields(err error) []string {
	var inv *errs.InvalidError
	if !errors.As(err, &inv) {
		return nil
	}
	var fields []string
	for _, v := range inv.Violations {
		fields = append(fields, v.Field)
	}
	return fields
}

// pending reads the outbox as "subject entity vN" lines.
func pending(t *testing.T, st store.Store) []string {
	t.Helper()
	ps, err := st.Pending(t.Context(), store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		env, err := events.Decode(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s v%d", p.Subject, env.GetEntityId(), env.GetEntityVersion()))
	}
	return out
}
