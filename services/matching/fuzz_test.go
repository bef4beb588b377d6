package matching

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// The fuzz targets below call the handlers as the gRPC server would, on a
// matching server over a bolt store with an engine holding published
// pledge products (and one paused), demands at each stage of their
// lifecycle, and callers of every kind. Whatever arrives, a handler never
// panics and never answers Internal; it refuses with the caller's codes; a
// refused call changes nothing; and no caller sees or changes what is not
// theirs.

// fuzzScenario is how far a world's demand has gone.
type fuzzScenario int

const (
	scenOpen      fuzzScenario = iota // five PROPOSED matches
	scenAccepted                      // one ACCEPTED, the rest PROPOSED
	scenMatched                       // one CONFIRMED: the demand MATCHED
	scenFulfilled                     // one COMPLETED: the demand FULFILLED
	scenWithdrawn                     // the demand WITHDRAWN
	scenCount
)

// fuzzWorld is the matching server the iterations of one fuzz target share.
type fuzzWorld struct {
	s      *Server
	clock  *clock
	prods  []*catalogv1.Product // published, then one paused
	ent    string               // the enterprise posting the world's demands
	demand []string             // per scenario
	// matches are the ids of every scenario's matches, refreshed by replace.
	matches []string
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	c := &clock{now: t0}
	w := &fuzzWorld{clock: c, ent: testCode(f)}
	w.s = New(testenv.BoltStore(f), NewEngine(Config{}), WithClock(c.Now))
	w.s.applyPrices(&catalogv1.ReferencePrices{CeaYuanPerTonne: 80, CcerYuanPerTonne: 60}, 1)
	for i := range 7 {
		in := &registryv1.Institution{Id: events.NewID(t0), CreditCode: testCode(f), Zone: registryv1.Zone_ZONE_FINANCE_AXIS,
			State: registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE, Version: 2}
		w.s.applyInstitution(in, in.Version)
		p := pledge(in, int32(350+25*i))
		if i == 6 {
			p.State = catalogv1.ProductState_PRODUCT_STATE_PAUSED
		}
		w.s.applyProduct(p, p.Version)
		w.prods = append(w.prods, p)
	}
	w.demand = make([]string, scenCount)
	for sc := range scenCount {
		w.demand[sc] = w.scenario(f, sc)
	}
	w.refresh(f)
	return w
}

func (w *fuzzWorld) as(role auth.Role, org string) context.Context {
	return auth.WithCaller(context.Background(), auth.Caller{Subject: "fuzz-" + string(role), Role: role, Org: org})
}

// scenario posts a demand of the world's enterprise and takes it to sc.
func (w *fuzzWorld) scenario(tb testing.TB, sc fuzzScenario) string {
	tb.Helper()
	d := demand(w.ent)
	d.Deadline = timestamppb.New(w.clock.Now().Add(30 * 24 * time.Hour))
	resp, err := w.s.PostDemand(w.as(auth.Enterprise, w.ent), &matchingv1.PostDemandRequest{Demand: d})
	if err != nil {
		tb.Fatalf("PostDemand: %v", err)
	}
	id, ms := resp.GetDemand().GetId(), resp.GetMatches()
	if len(ms) == 0 {
		tb.Fatal("a world demand found no matches")
	}
	m := ms[0]
	inst := w.as(auth.Institution, m.GetInstitutionCreditCode())
	step := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("taking a world demand to scenario %d: %v", sc, err)
		}
	}
	if sc == scenWithdrawn {
		_, err := w.s.WithdrawDemand(w.as(auth.Enterprise, w.ent), &matchingv1.WithdrawDemandRequest{Id: id, Reason: "fuzz world"})
		step(err)
		return id
	}
	if sc >= scenAccepted {
		_, err := w.s.AcceptMatch(inst, &matchingv1.AcceptMatchRequest{Id: m.GetId()})
		step(err)
	}
	if sc >= scenMatched {
		_, err := w.s.ConfirmMatch(w.as(auth.Enterprise, w.ent), &matchingv1.ConfirmMatchRequest{Id: m.GetId()})
		step(err)
	}
	if sc >= scenFulfilled {
		_, err := w.s.ReportOutcome(inst, &matchingv1.ReportOutcomeRequest{Id: m.GetId(),
			Result: &matchingv1.ReportOutcomeRequest_Completed{Completed: &matchingv1.Deal{AmountYuan: 10_000_000, RateBps: 380, TermMonths: 12}}})
		step(err)
	}
	return id
}

// refresh reads the ids of every scenario's matches.
func (w *fuzzWorld) refresh(tb testing.TB) {
	tb.Helper()
	w.matches = w.matches[:0]
	for _, id := range w.demand {
		ms, err := w.s.matchesOf(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range ms {
			w.matches = append(w.matches, m.GetId())
		}
	}
}

// replace puts a fresh demand where demandID's scenario was, so every
// transition stays reachable.
func (w *fuzzWorld) replace(tb testing.TB, demandID string) {
	tb.Helper()
	if i := slices.Index(w.demand, demandID); i >= 0 {
		w.demand[i] = w.scenario(tb, fuzzScenario(i))
		w.refresh(tb)
	}
}

// pick returns the sel-th of ids, or, for sel past them, fuzzed.
func pick(ids []string, sel uint8, fuzzed string) string {
	if i := int(sel) % (len(ids) + 1); i < len(ids) {
		return ids[i]
	}
	return fuzzed
}

func (w *fuzzWorld) productIDs() []string {
	ids := make([]string, len(w.prods))
	for i, p := range w.prods {
		ids[i] = p.GetId()
	}
	return ids
}

func (w *fuzzWorld) readMatch(t *testing.T, id string) *matchingv1.Match {
	t.Helper()
	if id == "" {
		return nil
	}
	m, err := w.s.getMatch(context.Background(), id)
	if err != nil {
		if statusCode(err) != codes.NotFound {
			t.Fatalf("read match %q: %v", id, err)
		}
		return nil
	}
	return m
}

func (w *fuzzWorld) readDemand(t *testing.T, id string) *matchingv1.Demand {
	t.Helper()
	if id == "" {
		return nil
	}
	d, err := w.s.getDemand(context.Background(), id)
	if err != nil {
		if statusCode(err) != codes.NotFound {
			t.Fatalf("read demand %q: %v", id, err)
		}
		return nil
	}
	return d
}

// fuzzCallers are the kinds of caller a fuzz input chooses from.
var fuzzCallers = []struct {
	role  auth.Role
	owner bool // of the object's institution or enterprise (else of another)
}{
	{auth.Staff, false},
	{auth.Institution, true}, {auth.Institution, false},
	{auth.Enterprise, true}, {auth.Enterprise, false},
}

// callerCtx is a context carrying the sel-th kind of caller: an owning
// institution is inst's, an owning enterprise ent's.
func callerCtx(ctx context.Context, sel uint8, inst, ent string) (context.Context, auth.Caller) {
	k := fuzzCallers[int(sel)%len(fuzzCallers)]
	c := auth.Caller{Subject: "fuzz-" + string(k.role), Role: k.role, Org: "91420106MA4K00010G"}
	switch {
	case k.owner && k.role == auth.Institution && inst != "":
		c.Org = inst
	case k.owner && k.role == auth.Enterprise && ent != "":
		c.Org = ent
	}
	return auth.WithCaller(ctx, c), c
}

func statusCode(err error) codes.Code {
	st, _ := errs.Status(err)
	return st.Code()
}

// wire returns req as the server would receive it: marshalled by a client
// and unmarshalled by gRPC. What cannot cross the wire (a proto3 string
// that is not UTF-8) never reaches a handler, so the input is skipped.
func wire[M proto.Message](t *testing.T, req M) M {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Skipf("not sendable: %v", err)
	}
	out := req.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatalf("a marshalled request does not unmarshal: %v", err)
	}
	return out
}

// wantCodes fails unless err maps to one of the codes.
func wantCodes(t *testing.T, err error, ok ...codes.Code) codes.Code {
	t.Helper()
	got := statusCode(err)
	if !slices.Contains(ok, got) {
		t.Fatalf("answered %s (%v); want one of %v", got, err, ok)
	}
	return got
}

// FuzzPostDemand: arbitrary demands (codes, texts, enum numbers, repeated
// categories, amounts, tonnes, deadlines) by every kind of caller.
// Refusals are InvalidArgument or PermissionDenied; nobody posts for
// another organisation; what is posted is OPEN, stored as answered, with
// PROPOSED matches of its own.
func FuzzPostDemand(f *testing.F) {
	w := newFuzzWorld(f)
	day := int64(24 * 3600)
	f.Add(uint8(3), false, "", "武昌示范钢铁有限公司", int32(2), true, "420106", int32(1), int32(1), []byte{}, int64(10_000_000), int32(12),
		int64(300_000), int64(0), int64(1_200_000), "配额质押融资", true, 30*day)
	f.Add(uint8(0), true, "", "Staff-filed Co", int32(2), false, "420106", int32(0), int32(1), []byte{1, 2}, int64(1), int32(0),
		int64(0), int64(0), int64(0), "", true, int64(1))
	f.Add(uint8(3), false, "", strings.Repeat("企", 101), int32(99), false, "42010", int32(-1), int32(0), []byte{0, 0xff}, int64(0), int32(-1),
		int64(-1), int64(1_000_000_001), int64(-9_223_372_036_854_775_808), "a\x01b", true, int64(0))
	f.Add(uint8(2), true, "", "Someone else", int32(1), true, "420106", int32(1), int32(1), []byte{1}, int64(1_000_000_000_000), int32(360),
		int64(1_000_000_000), int64(1_000_000_000), int64(1_000_000_000), strings.Repeat("x", 2001), true, 367*day)
	f.Add(uint8(4), false, "91420106MA4K00010G", "Other Co", int32(1), false, " 420106 ", int32(1), int32(1), []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		int64(5_000_000), int32(6), int64(0), int64(100_000), int64(0), "", false, int64(0))
	f.Add(uint8(3), false, "not a code", "x", int32(1), false, "４２０１０６", int32(1), int32(1), []byte{}, int64(5_000_000), int32(6),
		int64(0), int64(0), int64(0), "", true, -day)
	f.Add(uint8(0), false, "", "x", int32(1), false, "420106", int32(1), int32(1), []byte{}, int64(5_000_000), int32(6),
		int64(0), int64(0), int64(0), "", true, int64(9_223_372_036_854_775_807))
	f.Fuzz(func(t *testing.T, callerSel uint8, ownCode bool, entCode, name string, sector int32, ets bool, region string,
		zone, kind int32, categories []byte, amount int64, term int32, cea, ccer, emissions int64, description string,
		hasDeadline bool, deadlineSecs int64) {
		ctx, caller := callerCtx(t.Context(), callerSel, "", w.ent)
		if ownCode {
			entCode = w.ent
		}
		d := &matchingv1.Demand{
			EnterpriseCreditCode: entCode, EnterpriseName: name, Sector: catalogv1.Sector(sector), EtsCovered: ets,
			Region: region, Zone: registryv1.Zone(zone), Kind: catalogv1.DemandKind(kind), AmountYuan: amount, TermMonths: term,
			CeaTonnes: cea, CcerTonnes: ccer, AnnualEmissionsTonnes: emissions, Description: description,
			// Output-only fields, sent anyway.
			State: matchingv1.DemandState(zone), Version: amount, AcceptedCount: term, Id: name,
		}
		for _, b := range categories {
			d.Categories = append(d.Categories, catalogv1.ProductCategory(int8(b)))
		}
		if hasDeadline {
			d.Deadline = &timestamppb.Timestamp{Seconds: w.clock.Now().Unix() + deadlineSecs%(1<<40)}
		}
		resp, err := w.s.PostDemand(ctx, wire(t, &matchingv1.PostDemandRequest{Demand: d}))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.PermissionDenied) != codes.OK {
			return
		}
		got := resp.GetDemand()
		if caller.Role != auth.Staff && got.GetEnterpriseCreditCode() != caller.Org {
			t.Fatalf("%s of %s posted a demand of %s", caller.Role, caller.Org, got.GetEnterpriseCreditCode())
		}
		if got.GetState() != demandOpen || got.GetAcceptedCount() != 0 || got.GetId() == "" || got.GetId() == name {
			t.Fatalf("posted %v; want a new OPEN demand", got)
		}
		stored := w.readDemand(t, got.GetId())
		if !proto.Equal(stored, got) {
			t.Fatalf("answered %v, stored %v", got, stored)
		}
		for _, m := range resp.GetMatches() {
			if m.GetDemandId() != got.GetId() || m.GetState() != matchProposed || m.GetEnterpriseCreditCode() != got.GetEnterpriseCreditCode() {
				t.Fatalf("posted demand %s with match %v", got.GetId(), m)
			}
		}
	})
}

// The page sizes the API promises: 0 asks for 50, more than 200 gets 200.
const (
	fuzzDefaultPage = 50
	fuzzMaxPage     = 200
)

// FuzzListDemands: arbitrary page sizes, tokens and filters by every kind
// of caller. Refusals are InvalidArgument; a page holds at most the size
// asked, only demands matching the filters, and for non-staff only their
// own; its token leads on.
func FuzzListDemands(f *testing.F) {
	w := newFuzzWorld(f)
	first, err := w.s.ListDemands(w.as(auth.Staff, ""), &matchingv1.ListDemandsRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		f.Fatalf("ListDemands of one: %v, %v", first, err)
	}
	valid := first.GetNextPageToken()
	f.Add(int32(0), "", int32(0), "", false, uint8(0))
	f.Add(int32(1), "", int32(0), "", false, uint8(0))
	f.Add(int32(2), valid, int32(0), "", false, uint8(0))
	f.Add(int32(1), "", int32(1), w.ent, false, uint8(3))
	f.Add(int32(1), "", int32(0), "", true, uint8(0))
	f.Add(int32(100000), valid, int32(4), "", true, uint8(1))
	f.Add(int32(-1), "not a token", int32(99), strings.Repeat("9", 100), false, uint8(4))
	f.Add(int32(5), "eyJhIjoiIiwiZiI6IiJ9", int32(-1), " ", true, uint8(2))
	f.Add(int32(5), "e30", int32(0), w.ent, false, uint8(0))
	f.Fuzz(func(t *testing.T, size int32, token string, state int32, entCode string, attention bool, callerSel uint8) {
		ctx, caller := callerCtx(t.Context(), callerSel, "", w.ent)
		req := &matchingv1.ListDemandsRequest{PageSize: size, PageToken: token, State: matchingv1.DemandState(state),
			EnterpriseCreditCode: entCode, NeedsAttention: attention}
		resp, err := w.s.ListDemands(ctx, wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument) != codes.OK {
			return
		}
		limit := int(size)
		switch {
		case size == 0:
			limit = fuzzDefaultPage
		case size > fuzzMaxPage:
			limit = fuzzMaxPage
		}
		if n := len(resp.GetDemands()); n > limit {
			t.Fatalf("page of %d for page_size %d", n, size)
		}
		for _, d := range resp.GetDemands() {
			if caller.Role != auth.Staff && d.GetEnterpriseCreditCode() != caller.Org {
				t.Fatalf("%s of %s listed a demand of %s", caller.Role, caller.Org, d.GetEnterpriseCreditCode())
			}
			if (state != 0 && d.GetState() != req.GetState()) || (attention && !d.GetNeedsAttention()) ||
				(caller.Role == auth.Staff && strings.TrimSpace(entCode) != "" && d.GetEnterpriseCreditCode() != strings.TrimSpace(entCode)) {
				t.Fatalf("listed %v, which does not match %v", d, req)
			}
		}
		if next := resp.GetNextPageToken(); next != "" {
			req.PageToken = next
			more, err := w.s.ListDemands(ctx, req)
			if err != nil {
				t.Fatalf("the next page token is refused: %v", err)
			}
			if last, first := resp.GetDemands()[len(resp.GetDemands())-1].GetId(), more.GetDemands(); len(first) > 0 && first[0].GetId() <= last {
				t.Fatalf("the next page starts at %s, not after %s", first[0].GetId(), last)
			}
		}
	})
}

// FuzzListMatches: arbitrary page sizes, tokens and filters by every kind
// of caller. Refusals are InvalidArgument; a page holds at most the size
// asked, only matches matching the filters that the caller may see; its
// token leads on.
func FuzzListMatches(f *testing.F) {
	w := newFuzzWorld(f)
	inst0 := w.prods[0].GetInstitutionId()
	first, err := w.s.ListMatches(w.as(auth.Staff, ""), &matchingv1.ListMatchesRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		f.Fatalf("ListMatches of one: %v, %v", first, err)
	}
	valid := first.GetNextPageToken()
	f.Add(int32(0), "", uint8(9), "", uint8(9), "", int32(0), false, uint8(0))
	f.Add(int32(1), "", uint8(0), "", uint8(9), "", int32(0), false, uint8(3))
	f.Add(int32(2), valid, uint8(9), "", uint8(9), "", int32(0), false, uint8(0))
	f.Add(int32(1), "", uint8(9), "", uint8(0), "", int32(1), false, uint8(1))
	f.Add(int32(1), "", uint8(9), "", uint8(9), inst0, int32(2), true, uint8(2))
	f.Add(int32(100000), valid, uint8(1), "", uint8(9), "", int32(7), false, uint8(4))
	f.Add(int32(-1), "not a token", uint8(9), "x/../y", uint8(9), "\x00", int32(99), true, uint8(0))
	f.Add(int32(5), "eyJhIjoiIiwiZiI6IiJ9", uint8(9), "", uint8(9), "", int32(-1), false, uint8(3))
	f.Fuzz(func(t *testing.T, size int32, token string, demandSel uint8, fuzzedDemand string, instSel uint8, fuzzedInst string,
		state int32, overdue bool, callerSel uint8) {
		demandID := pick(w.demand, demandSel, fuzzedDemand)
		instID := fuzzedInst
		if i := int(instSel) % (len(w.prods) + 1); i < len(w.prods) {
			instID = w.prods[i].GetInstitutionId()
		}
		ctx, caller := callerCtx(t.Context(), callerSel, w.prods[0].GetInstitutionCreditCode(), w.ent)
		req := &matchingv1.ListMatchesRequest{PageSize: size, PageToken: token, DemandId: demandID, InstitutionId: instID,
			State: matchingv1.MatchState(state), Overdue: overdue}
		resp, err := w.s.ListMatches(ctx, wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument) != codes.OK {
			return
		}
		limit := int(size)
		switch {
		case size == 0:
			limit = fuzzDefaultPage
		case size > fuzzMaxPage:
			limit = fuzzMaxPage
		}
		if n := len(resp.GetMatches()); n > limit {
			t.Fatalf("page of %d for page_size %d", n, size)
		}
		for _, m := range resp.GetMatches() {
			if (caller.Role == auth.Institution && m.GetInstitutionCreditCode() != caller.Org) ||
				(caller.Role == auth.Enterprise && m.GetEnterpriseCreditCode() != caller.Org) {
				t.Fatalf("%s of %s listed match %v", caller.Role, caller.Org, m)
			}
			if (demandID != "" && m.GetDemandId() != demandID) || (instID != "" && m.GetInstitutionId() != instID) ||
				(state != 0 && m.GetState() != req.GetState()) || (overdue && !(m.GetResponseOverdue() || m.GetOutcomeOverdue())) {
				t.Fatalf("listed %v, which does not match %v", m, req)
			}
		}
		if next := resp.GetNextPageToken(); next != "" {
			req.PageToken = next
			more, err := w.s.ListMatches(ctx, req)
			if err != nil {
				t.Fatalf("the next page token is refused: %v", err)
			}
			if last, first := resp.GetMatches()[len(resp.GetMatches())-1].GetId(), more.GetMatches(); len(first) > 0 && first[0].GetId() <= last {
				t.Fatalf("the next page starts at %s, not after %s", first[0].GetId(), last)
			}
		}
	})
}

// FuzzExplainMatch: any demand and product id by every kind of caller.
// Refusals are InvalidArgument or NotFound; only staff and the demand's
// enterprise get an explanation, and one of an unpublished product only
// staff or the enterprise it was matched with.
func FuzzExplainMatch(f *testing.F) {
	w := newFuzzWorld(f)
	for i := range len(w.prods) + 1 {
		f.Add(uint8(i%int(scenCount)), "", uint8(i), "", uint8(i))
	}
	f.Add(uint8(0), "", uint8(6), "", uint8(3))
	f.Add(uint8(9), "01NOSUCHDEMAND", uint8(9), "01NOSUCHPRODUCT", uint8(0))
	f.Add(uint8(9), "", uint8(9), "", uint8(0))
	f.Add(uint8(0), "", uint8(9), "\xff.x", uint8(3))
	f.Fuzz(func(t *testing.T, demandSel uint8, fuzzedDemand string, prodSel uint8, fuzzedProduct string, callerSel uint8) {
		demandID := pick(w.demand, demandSel, fuzzedDemand)
		productID := pick(w.productIDs(), prodSel, fuzzedProduct)
		ctx, caller := callerCtx(t.Context(), callerSel, w.prods[0].GetInstitutionCreditCode(), w.ent)
		resp, err := w.s.ExplainMatch(ctx, wire(t, &matchingv1.ExplainMatchRequest{DemandId: demandID, ProductId: productID}))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound) != codes.OK {
			return
		}
		if caller.Role != auth.Staff && (caller.Role != auth.Enterprise || caller.Org != w.ent) {
			t.Fatalf("%s of %s had demand %s explained", caller.Role, caller.Org, demandID)
		}
		if m := resp.GetMatch(); m != nil && (m.GetDemandId() != demandID || m.GetProductId() != productID) {
			t.Fatalf("explaining %s × %s answered match %v", demandID, productID, m)
		}
		if len(resp.GetChecks()) == 0 {
			t.Fatalf("an explanation with no checks: %v", resp)
		}
	})
}

// The actions FuzzMatchTransitions takes.
const (
	actAccept = iota
	actDecline
	actConfirm
	actReport
	actWithdraw
	actCount
)

// FuzzMatchTransitions: accept, decline, confirm, report an outcome of a
// match and withdraw its demand, with any id, version, reason and outcome,
// by every kind of caller. Refusals are InvalidArgument, NotFound,
// FailedPrecondition or Aborted and change neither the match nor its
// demand; only the match's institution (accept, decline, report) or
// enterprise (confirm, withdraw) or staff succeed; a success moves the
// match as the state machine says.
func FuzzMatchTransitions(f *testing.F) {
	w := newFuzzWorld(f)
	for a := range actCount {
		// The match each scenario moved (or its first), a PROPOSED one
		// beside an ACCEPTED one, and a fuzzed id.
		for _, sel := range []int{0, 5, 6, 10, 15, 20, len(w.matches)} {
			for _, callerSel := range []uint8{0, []uint8{1, 1, 3, 1, 3}[a]} { // staff, the owner
				f.Add(uint8(a), uint8(sel), "", int64(0), sel%2 == 0, "fuzz reason", true, int64(10_000_000), int32(380), int32(12), int64(0), int32(0), callerSel)
			}
		}
	}
	f.Add(uint8(actReport), uint8(10), "", int64(0), true, "", false, int64(0), int32(0), int32(0), int64(0), int32(1), uint8(1))
	f.Add(uint8(actReport), uint8(10), "", int64(0), true, "", false, int64(0), int32(0), int32(0), int64(0), int32(9), uint8(1))
	f.Add(uint8(actReport), uint8(10), "", int64(0), false, "", true, int64(0), int32(-1), int32(361), int64(-1), int32(0), uint8(0))
	f.Add(uint8(actReport), uint8(10), "", int64(0), false, "", true, int64(1_000_000_000_001), int32(5001), int32(0), int64(1_000_000_001), int32(0), uint8(0))
	f.Add(uint8(actAccept), uint8(0), "", int64(99), false, "", true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(1))
	f.Add(uint8(actDecline), uint8(1), "", int64(-1), false, strings.Repeat("理", 501), true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(1))
	f.Add(uint8(actDecline), uint8(1), "", int64(0), false, "a\x01b", true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(2))
	f.Add(uint8(actConfirm), uint8(5), "", int64(0), false, "", true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(4))
	f.Add(uint8(actWithdraw), uint8(0), "", int64(0), false, "changed our mind", true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(3))
	f.Add(uint8(actWithdraw), uint8(200), "01NOSUCHDEMAND", int64(1), false, "", true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(0))
	f.Add(uint8(actAccept), uint8(200), "\xff", int64(0), false, "", true, int64(0), int32(0), int32(0), int64(0), int32(0), uint8(0))
	f.Fuzz(func(t *testing.T, act, sel uint8, fuzzedID string, version int64, pin bool, reason string,
		completed bool, amount int64, rate, term int32, tonnes int64, failReason int32, callerSel uint8) {
		a := int(act) % actCount
		matchID := pick(w.matches, sel, fuzzedID)
		before := w.readMatch(t, matchID)
		demandID := fuzzedID
		instCode, entCode := "", ""
		if before != nil {
			demandID, instCode, entCode = before.GetDemandId(), before.GetInstitutionCreditCode(), before.GetEnterpriseCreditCode()
			if pin {
				version = before.GetVersion()
			}
		}
		dBefore := w.readDemand(t, demandID)
		if a == actWithdraw && pin && dBefore != nil {
			version = dBefore.GetVersion()
		}
		ctx, caller := callerCtx(t.Context(), callerSel, instCode, entCode)
		var (
			got *matchingv1.Match
			err error
		)
		switch a {
		case actAccept:
			var r *matchingv1.AcceptMatchResponse
			r, err = w.s.AcceptMatch(ctx, wire(t, &matchingv1.AcceptMatchRequest{Id: matchID, Version: version}))
			got = r.GetMatch()
		case actDecline:
			var r *matchingv1.DeclineMatchResponse
			r, err = w.s.DeclineMatch(ctx, wire(t, &matchingv1.DeclineMatchRequest{Id: matchID, Version: version, Reason: reason}))
			got = r.GetMatch()
		case actConfirm:
			var r *matchingv1.ConfirmMatchResponse
			r, err = w.s.ConfirmMatch(ctx, wire(t, &matchingv1.ConfirmMatchRequest{Id: matchID, Version: version}))
			got = r.GetMatch()
		case actReport:
			req := &matchingv1.ReportOutcomeRequest{Id: matchID, Version: version}
			switch {
			case completed:
				req.Result = &matchingv1.ReportOutcomeRequest_Completed{Completed: &matchingv1.Deal{AmountYuan: amount, RateBps: rate, TermMonths: term, Tonnes: tonnes, Note: reason}}
			case failReason != 0:
				req.Result = &matchingv1.ReportOutcomeRequest_Failed{Failed: &matchingv1.Failure{Reason: matchingv1.FailureReason(failReason), Note: reason}}
			}
			var r *matchingv1.ReportOutcomeResponse
			r, err = w.s.ReportOutcome(ctx, wire(t, req))
			got = r.GetMatch()
		case actWithdraw:
			var r *matchingv1.WithdrawDemandResponse
			r, err = w.s.WithdrawDemand(ctx, wire(t, &matchingv1.WithdrawDemandRequest{Id: demandID, Version: version, Reason: reason}))
			if r.GetDemand() != nil && r.GetDemand().GetState() != demandWithdrawn {
				t.Fatalf("withdrawing answered %v", r.GetDemand())
			}
		}
		c := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Aborted)
		after, dAfter := w.readMatch(t, matchID), w.readDemand(t, demandID)
		if c != codes.OK {
			if before != nil && (after.GetVersion() != before.GetVersion() || after.GetState() != before.GetState()) {
				t.Fatalf("refused action %d (%v) changed the match", a, err)
			}
			if dBefore != nil && (dAfter.GetVersion() != dBefore.GetVersion() || dAfter.GetState() != dBefore.GetState()) {
				t.Fatalf("refused action %d (%v) changed the demand", a, err)
			}
			return
		}
		owner := instCode
		if a == actConfirm || a == actWithdraw {
			owner = entCode
		}
		if caller.Role != auth.Staff && caller.Org != owner {
			t.Fatalf("%s of %s took action %d on a match of %s", caller.Role, caller.Org, a, owner)
		}
		if a == actWithdraw {
			if dBefore.GetState() != demandOpen || dAfter.GetState() != demandWithdrawn {
				t.Fatalf("withdrawal moved the demand %s → %s", dBefore.GetState(), dAfter.GetState())
			}
		} else {
			from, to := map[int]matchingv1.MatchState{actAccept: matchProposed, actDecline: matchProposed, actConfirm: matchAccepted, actReport: matchConfirmed}[a],
				map[int]matchingv1.MatchState{actAccept: matchAccepted, actDecline: matchDeclined, actConfirm: matchConfirmed, actReport: matchFailed}[a]
			if a == actReport && completed {
				to = matchCompleted
			}
			if before.GetState() != from || after.GetState() != to || got.GetState() != to || after.GetVersion() <= before.GetVersion() {
				t.Fatalf("action %d moved %s v%d to %s v%d (answered %s)", a, before.GetState(), before.GetVersion(), after.GetState(), after.GetVersion(), got.GetState())
			}
		}
		w.replace(t, demandID)
	})
}

// FuzzGetMatchStats: any window (either end unset, out-of-range seconds
// and nanos) is InvalidArgument or figures that add up.
func FuzzGetMatchStats(f *testing.F) {
	w := newFuzzWorld(f)
	start := t0.Unix()
	f.Add(false, int64(0), int32(0), false, int64(0), int32(0))
	f.Add(true, start-3600, int32(0), true, start+3600*24*365, int32(0))
	f.Add(true, start, int32(0), false, int64(0), int32(0))
	f.Add(false, int64(0), int32(0), true, start, int32(0))
	f.Add(true, start+10, int32(0), true, start, int32(0))
	f.Add(true, start, int32(5), true, start, int32(5))
	f.Add(true, int64(-62135596801), int32(-1), true, int64(253402300800), int32(1_000_000_000))
	f.Add(true, int64(-9_223_372_036_854_775_808), int32(0), true, int64(9_223_372_036_854_775_807), int32(-2147483648))
	f.Add(true, int64(0), int32(0), false, int64(0), int32(0))
	f.Fuzz(func(t *testing.T, hasStart bool, startSecs int64, startNanos int32, hasEnd bool, endSecs int64, endNanos int32) {
		req := &matchingv1.GetMatchStatsRequest{}
		if hasStart {
			req.StartTime = &timestamppb.Timestamp{Seconds: startSecs, Nanos: startNanos}
		}
		if hasEnd {
			req.EndTime = &timestamppb.Timestamp{Seconds: endSecs, Nanos: endNanos}
		}
		ctx := auth.WithCaller(t.Context(), auth.Caller{Subject: "fuzz-staff", Role: auth.Staff})
		resp, err := w.s.GetMatchStats(ctx, wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument) != codes.OK {
			return
		}
		if resp.GetDemandsPosted() < 0 || resp.GetDemandsPosted() > int64(len(w.demand)) ||
			resp.GetMatchesAccepted() > resp.GetMatchesProposed() || resp.GetDemandsNeedingAttention() > resp.GetDemandsPosted() {
			t.Fatalf("figures do not add up: %v", resp)
		}
	})
}
