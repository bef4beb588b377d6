package matching

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

// t0 is the tests' clock start.
var t0 = time.Date(2026, 4, 2, 9, 30, 0, 0, time.UTC)

// clock is a test clock: a millisecond passes per reading, so every change
// has its own time, and Advance jumps over deadlines.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eachStore runs fn against every store adapter, in parallel subtests.
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	for name, open := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

var codeSeq atomic.Int64

// testCode returns a fresh valid Wuchang credit code.
func testCode(t testing.TB) string {
	t.Helper()
	code, err := registry.CompleteCreditCode(fmt.Sprintf("91420106M%08d", codeSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// fixture is a matching server over a store with an engine fed directly:
// ACTIVE institutions, published pledge products, reference prices.
type fixture struct {
	s     *Server
	clock *clock
	insts []*registryv1.Institution
	prods []*catalogv1.Product
}

func newFixture(t *testing.T, st store.Store, opts ...Option) *fixture {
	t.Helper()
	c := &clock{now: t0}
	s := New(st, NewEngine(Config{}), append([]Option{WithClock(c.Now)}, opts...)...)
	s.applyPrices(&catalogv1.ReferencePrices{CeaYuanPerTonne: 80, CcerYuanPerTonne: 60}, 1)
	return &fixture{s: s, clock: c}
}

// institution adds an ACTIVE institution to the index.
func (f *fixture) institution(t *testing.T, zone registryv1.Zone) *registryv1.Institution {
	t.Helper()
	in := &registryv1.Institution{Id: events.NewID(t0), CreditCode: testCode(t), Zone: zone,
		State: registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE, Version: 2}
	f.s.applyInstitution(in, in.Version)
	f.insts = append(f.insts, in)
	return in
}

// pledge is a published CEA pledge loan of in: ¥1 m – ¥50 m, 6–36 months,
// rate from minBps, 50 % pledge rate, any sector and region.
func pledge(in *registryv1.Institution, minBps int32) *catalogv1.Product {
	return &catalogv1.Product{
		Id: events.NewID(t0), InstitutionId: in.GetId(), InstitutionCreditCode: in.GetCreditCode(),
		NameZh: "碳排放权质押贷款", Category: catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE,
		DemandKinds: []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING},
		Amount:      &catalogv1.AmountRange{MinYuan: 1_000_000, MaxYuan: 50_000_000},
		Term:        &catalogv1.TermRange{MinMonths: 6, MaxMonths: 36},
		Price:       &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: minBps, MaxBps: minBps + 100}}},
		Collateral:  &catalogv1.Collateral{Asset: catalogv1.CarbonAsset_CARBON_ASSET_CEA, PledgeRateBps: 5000},
		State:       catalogv1.ProductState_PRODUCT_STATE_PUBLISHED,
		Version:     3,
	}
}

// products adds n institutions each with one published pledge product, the
// first the cheapest (so the best ranked).
func (f *fixture) products(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		in := f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		p := pledge(in, int32(350+25*i))
		f.s.applyProduct(p, p.Version)
		f.prods = append(f.prods, p)
	}
}

// demand is a ¥10 m, 12-month financing demand with 300,000 t of CEA
// (worth ¥24 m at ¥80, ¥12 m at a 50 % pledge rate), due in 30 days.
func demand(code string) *matchingv1.Demand {
	return &matchingv1.Demand{
		EnterpriseCreditCode: code, EnterpriseName: "武昌示范钢铁有限公司", Sector: catalogv1.Sector_SECTOR_STEEL, EtsCovered: true,
		Region: "420106", Zone: registryv1.Zone_ZONE_FINANCE_AXIS, Kind: catalogv1.DemandKind_DEMAND_KIND_FINANCING,
		AmountYuan: 10_000_000, TermMonths: 12, CeaTonnes: 300_000, AnnualEmissionsTonnes: 1_200_000,
		Description: "配额质押融资，用于节能技改", Deadline: timestamppb.New(t0.Add(30 * 24 * time.Hour)),
	}
}

// as returns a context of a caller.
func as(t *testing.T, role auth.Role, org string) context.Context {
	return auth.WithCaller(t.Context(), auth.Caller{Subject: "test-" + string(role), Role: role, Org: org})
}

func staffCtx(t *testing.T) context.Context { return as(t, auth.Staff, "") }

// post posts a demand of a fresh enterprise and returns it with its matches.
func (f *fixture) post(t *testing.T) (*matchingv1.Demand, []*matchingv1.Match, string) {
	t.Helper()
	code := testCode(t)
	resp, err := f.s.PostDemand(as(t, auth.Enterprise, code), &matchingv1.PostDemandRequest{Demand: demand(code)})
	if err != nil {
		t.Fatalf("PostDemand: %v", err)
	}
	return resp.GetDemand(), resp.GetMatches(), code
}

// instCtx is the context of the institution owning a match.
func instCtx(t *testing.T, m *matchingv1.Match) context.Context {
	return as(t, auth.Institution, m.GetInstitutionCreditCode())
}

// wantCode fails unless err maps to code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	st, _ := errs.Status(err)
	if st.Code() != code {
		t.Fatalf("got %v (%s), want %s", err, st.Code(), code)
	}
}

// matches reads a demand's matches by id.
func (f *fixture) matches(t *testing.T, demandID string) map[string]*matchingv1.Match {
	t.Helper()
	resp, err := f.s.GetDemand(staffCtx(t), &matchingv1.GetDemandRequest{Id: demandID})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*matchingv1.Match{}
	for _, m := range resp.GetMatches() {
		out[m.GetId()] = m
	}
	return out
}

func (f *fixture) demand(t *testing.T, id string) *matchingv1.Demand {
	t.Helper()
	resp, err := f.s.GetDemand(staffCtx(t), &matchingv1.GetDemandRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDemand()
}

// states counts matches by state.
func states(ms map[string]*matchingv1.Match) map[matchingv1.MatchState]int {
	out := map[matchingv1.MatchState]int{}
	for _, m := range ms {
		out[m.GetState()]++
	}
	return out
}

// envelope builds a decoded event envelope as a consumer would see it.
func envelope(t *testing.T, subject, id string, version int64, msg proto.Message) *eventv1.Envelope {
	t.Helper()
	ev, err := events.New(subject, id, version, events.System, t0, msg)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// outbox returns the subjects waiting in the store's outbox, in order.
func outboxSubjects(t *testing.T, st store.Store) []string {
	t.Helper()
	ps, err := st.Pending(t.Context(), store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Subject
	}
	return out
}
