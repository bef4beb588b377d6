package matching

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TestLifecycle walks a demand through the whole lifecycle on both stores:
// posted with its top K proposed (reasons stored), accepted up to the cap
// (the rest close), a fourth accept refused, confirmed (the other accepted
// close), outcome COMPLETED (the demand FULFILLED); wrong transitions are
// FailedPrecondition naming the state, stale versions Aborted, someone
// else's match NotFound; every change left its event in the outbox.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.products(t, 7)
		d, ms, code := f.post(t)
		if d.GetState() != demandOpen || len(ms) != 5 {
			t.Fatalf("posted: state %s with %d matches, want OPEN with 5 (TopK)", d.GetState(), len(ms))
		}
		for i, m := range ms {
			if m.GetRank() != int32(i+1) || m.GetState() != matchProposed || len(m.GetChecks()) == 0 || len(m.GetScoreParts()) == 0 {
				t.Fatalf("match %d: rank %d, state %s, %d checks, %d parts", i, m.GetRank(), m.GetState(), len(m.GetChecks()), len(m.GetScoreParts()))
			}
			if m.GetProductId() != f.prods[i].GetId() {
				t.Errorf("rank %d is product %s, want the %d-th cheapest %s", i+1, m.GetProductId(), i+1, f.prods[i].GetId())
			}
			if got := m.GetResponseDeadline().AsTime().Sub(m.GetCreateTime().AsTime()); got != 72*time.Hour {
				t.Errorf("response deadline %s after proposal, want 72h", got)
			}
		}

		// Someone else's match: NotFound; an enterprise cannot accept.
		_, err := f.s.AcceptMatch(as(t, auth.Institution, testCode(t)), &matchingv1.AcceptMatchRequest{Id: ms[0].GetId()})
		wantCode(t, err, codes.NotFound)
		_, err = f.s.ConfirmMatch(as(t, auth.Enterprise, testCode(t)), &matchingv1.ConfirmMatchRequest{Id: ms[0].GetId()})
		wantCode(t, err, codes.NotFound)
		_, err = f.s.GetDemand(as(t, auth.Enterprise, testCode(t)), &matchingv1.GetDemandRequest{Id: d.GetId()})
		wantCode(t, err, codes.NotFound)

		// Stale version: Aborted.
		_, err = f.s.AcceptMatch(instCtx(t, ms[0]), &matchingv1.AcceptMatchRequest{Id: ms[0].GetId(), Version: ms[0].GetVersion() + 1})
		wantCode(t, err, codes.Aborted)

		// Decline one, accept three: the cap closes the last PROPOSED.
		if _, err := f.s.DeclineMatch(instCtx(t, ms[4]), &matchingv1.DeclineMatchRequest{Id: ms[4].GetId(), Reason: "outside our appetite"}); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:3] {
			got, err := f.s.AcceptMatch(instCtx(t, m), &matchingv1.AcceptMatchRequest{Id: m.GetId(), Version: m.GetVersion()})
			if err != nil {
				t.Fatalf("accept %s: %v", m.GetId(), err)
			}
			if got.GetMatch().GetState() != matchAccepted || got.GetMatch().GetAcceptTime() == nil {
				t.Fatalf("accepted match: %v", got.GetMatch())
			}
		}
		all := f.matches(t, d.GetId())
		if got := all[ms[3].GetId()]; got.GetState() != matchClosed || !strings.Contains(got.GetStateReason(), "limit") {
			t.Fatalf("the 4th proposal after 3 accepts: %s (%q), want CLOSED by the cap", got.GetState(), got.GetStateReason())
		}
		_, err = f.s.AcceptMatch(instCtx(t, ms[3]), &matchingv1.AcceptMatchRequest{Id: ms[3].GetId()})
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(err.Error(), "CLOSED") {
			t.Errorf("the refusal does not name the state: %v", err)
		}
		if got := f.demand(t, d.GetId()).GetAcceptedCount(); got != 3 {
			t.Errorf("accepted_count %d, want 3", got)
		}

		// The enterprise confirms the second; the others close.
		if _, err := f.s.ConfirmMatch(as(t, auth.Institution, ms[1].GetInstitutionCreditCode()), &matchingv1.ConfirmMatchRequest{Id: ms[1].GetId()}); err == nil {
			t.Fatal("an institution confirmed for the enterprise")
		}
		conf, err := f.s.ConfirmMatch(as(t, auth.Enterprise, code), &matchingv1.ConfirmMatchRequest{Id: ms[1].GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if got := conf.GetMatch().GetOutcomeDeadline().AsTime().Sub(conf.GetMatch().GetConfirmTime().AsTime()); got != 7*24*time.Hour {
			t.Errorf("outcome deadline %s after confirmation, want 7 days", got)
		}
		all = f.matches(t, d.GetId())
		want := map[matchingv1.MatchState]int{matchConfirmed: 1, matchClosed: 3, matchDeclined: 1}
		if got := states(all); !mapsEqual(got, want) {
			t.Fatalf("after confirm: %v, want %v", got, want)
		}
		dd := f.demand(t, d.GetId())
		if dd.GetState() != demandMatched || dd.GetConfirmedMatchId() != ms[1].GetId() {
			t.Fatalf("demand after confirm: %s, confirmed %q", dd.GetState(), dd.GetConfirmedMatchId())
		}
		_, err = f.s.WithdrawDemand(as(t, auth.Enterprise, code), &matchingv1.WithdrawDemandRequest{Id: d.GetId()})
		wantCode(t, err, codes.FailedPrecondition)

		// The outcome.
		_, err = f.s.ReportOutcome(instCtx(t, ms[1]), &matchingv1.ReportOutcomeRequest{Id: ms[1].GetId()})
		wantCode(t, err, codes.InvalidArgument)
		out, err := f.s.ReportOutcome(instCtx(t, ms[1]), &matchingv1.ReportOutcomeRequest{Id: ms[1].GetId(),
			Result: &matchingv1.ReportOutcomeRequest_Completed{Completed: &matchingv1.Deal{AmountYuan: 9_500_000, RateBps: 385, TermMonths: 12, Tonnes: 300_000}}})
		if err != nil {
			t.Fatal(err)
		}
		if out.GetMatch().GetState() != matchCompleted || out.GetMatch().GetOutcomeOverdue() {
			t.Fatalf("reported: %s overdue %v", out.GetMatch().GetState(), out.GetMatch().GetOutcomeOverdue())
		}
		if got := f.demand(t, d.GetId()).GetState(); got != demandFulfilled {
			t.Fatalf("demand %s after COMPLETED, want FULFILLED", got)
		}
		_, err = f.s.ReportOutcome(instCtx(t, ms[1]), &matchingv1.ReportOutcomeRequest{Id: ms[1].GetId(),
			Result: &matchingv1.ReportOutcomeRequest_Failed{Failed: &matchingv1.Failure{Reason: matchingv1.FailureReason_FAILURE_REASON_PRICE}}})
		wantCode(t, err, codes.FailedPrecondition)

		subjects := outboxSubjects(t, st)
		for _, want := range []string{SubjectDemandPosted, SubjectMatchProposed, SubjectMatchDeclined, SubjectMatchAccepted, SubjectMatchClosed,
			SubjectMatchConfirmed, SubjectDemandMatched, SubjectMatchCompleted, SubjectDemandFulfilled} {
			if !slices.Contains(subjects, want) {
				t.Errorf("no %s event in the outbox", want)
			}
		}
		if n := count(subjects, SubjectMatchProposed); n != 5 {
			t.Errorf("%d proposed events, want 5", n)
		}

		// Stats of the window.
		stats, err := f.s.GetMatchStats(staffCtx(t), &matchingv1.GetMatchStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if stats.GetDemandsPosted() != 1 || stats.GetMatchRateBps() != 10000 || stats.GetMatchesAccepted() != 3 || stats.GetAcceptanceRateBps() != 6000 ||
			stats.GetCompletedAmountYuan() != 9_500_000 || len(stats.GetCompletedByCategory()) != 1 || stats.GetCompletedByZone()[0].GetKey() != "FINANCE_AXIS" {
			t.Errorf("stats: %v", stats)
		}
	})
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDeadlines moves a fake clock over every deadline: an accept after the
// response deadline is refused; the sweep expires the unanswered proposals
// (flagged overdue), re-offers the demand to the next-ranked products (never
// one it had) and flags it for staff; a confirmed match past its outcome
// deadline is flagged overdue (and a late report still recorded); a demand
// past its own deadline expires with its open matches.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.products(t, 8)
		d, ms, code := f.post(t)

		// Just before the deadline an accept works; just after it does not.
		f.clock.Advance(72*time.Hour - time.Second)
		if _, err := f.s.AcceptMatch(instCtx(t, ms[0]), &matchingv1.AcceptMatchRequest{Id: ms[0].GetId()}); err != nil {
			t.Fatalf("accept just before the deadline: %v", err)
		}
		f.clock.Advance(2 * time.Second)
		_, err := f.s.AcceptMatch(instCtx(t, ms[1]), &matchingv1.AcceptMatchRequest{Id: ms[1].GetId()})
		wantCode(t, err, codes.FailedPrecondition)

		// The sweep expires the four unanswered; one is accepted: no re-offer.
		if n, err := f.s.Sweep(t.Context()); err != nil || n != 1 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		all := f.matches(t, d.GetId())
		if got := states(all); !mapsEqual(got, map[matchingv1.MatchState]int{matchAccepted: 1, matchExpired: 4}) {
			t.Fatalf("after the response deadline: %v", got)
		}
		for _, m := range all {
			if m.GetState() == matchExpired && !m.GetResponseOverdue() {
				t.Errorf("expired match %s not flagged overdue", m.GetId())
			}
		}
		if n, _ := f.s.Sweep(t.Context()); n != 0 {
			t.Errorf("a second sweep changed %d demands", n)
		}
		overdue, err := f.s.ListMatches(staffCtx(t), &matchingv1.ListMatchesRequest{Overdue: true})
		if err != nil || len(overdue.GetMatches()) != 4 {
			t.Fatalf("ListMatches(overdue): %d, %v", len(overdue.GetMatches()), err)
		}

		// A second demand whose proposals all lapse is re-offered.
		d2, ms2, _ := f.post(t)
		f.clock.Advance(73 * time.Hour)
		if _, err := f.s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		all2 := f.matches(t, d2.GetId())
		if got := states(all2); !mapsEqual(got, map[matchingv1.MatchState]int{matchExpired: 5, matchProposed: 3}) {
			t.Fatalf("after re-offer: %v, want 5 EXPIRED and the 3 products left PROPOSED", got)
		}
		first := map[string]bool{}
		for _, m := range ms2 {
			first[m.GetProductId()] = true
		}
		for _, m := range all2 {
			if m.GetState() == matchProposed && (first[m.GetProductId()] || !m.GetReoffer()) {
				t.Errorf("re-offered match %s: product %s offered before %v, reoffer flag %v", m.GetId(), m.GetProductId(), first[m.GetProductId()], m.GetReoffer())
			}
		}
		dd := f.demand(t, d2.GetId())
		if !dd.GetNeedsAttention() || dd.GetReofferCount() != 1 {
			t.Fatalf("re-offered demand: attention %v, re-offers %d", dd.GetNeedsAttention(), dd.GetReofferCount())
		}
		attn, err := f.s.ListDemands(staffCtx(t), &matchingv1.ListDemandsRequest{NeedsAttention: true})
		if err != nil || len(attn.GetDemands()) != 1 {
			t.Fatalf("ListDemands(needs_attention): %v, %v", attn.GetDemands(), err)
		}
		// When those lapse too, nothing is left to offer: still flagged, no
		// product offered twice.
		f.clock.Advance(73 * time.Hour)
		if _, err := f.s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range f.matches(t, d2.GetId()) {
			if seen[m.GetProductId()] {
				t.Fatalf("product %s matched twice with demand %s", m.GetProductId(), d2.GetId())
			}
			seen[m.GetProductId()] = true
		}
		if len(seen) != 8 {
			t.Errorf("%d products matched after two rounds, want all 8", len(seen))
		}

		// The first demand: confirm, then let the outcome lapse.
		if _, err := f.s.ConfirmMatch(as(t, auth.Enterprise, code), &matchingv1.ConfirmMatchRequest{Id: ms[0].GetId()}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(7*24*time.Hour + time.Second)
		if _, err := f.s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		m := f.matches(t, d.GetId())[ms[0].GetId()]
		if m.GetState() != matchConfirmed || !m.GetOutcomeOverdue() {
			t.Fatalf("confirmed past its outcome deadline: %s, overdue %v", m.GetState(), m.GetOutcomeOverdue())
		}
		if !slices.Contains(outboxSubjects(t, st), SubjectMatchFlagged) {
			t.Error("no flagged event for the overdue outcome")
		}
		rep, err := f.s.ReportOutcome(instCtx(t, m), &matchingv1.ReportOutcomeRequest{Id: m.GetId(),
			Result: &matchingv1.ReportOutcomeRequest_Failed{Failed: &matchingv1.Failure{Reason: matchingv1.FailureReason_FAILURE_REASON_COLLATERAL}}})
		if err != nil || rep.GetMatch().GetState() != matchFailed || !rep.GetMatch().GetOutcomeOverdue() {
			t.Fatalf("late report: %v, %v", rep.GetMatch(), err)
		}
		if dd := f.demand(t, d.GetId()); dd.GetState() != demandOpen || !dd.GetNeedsAttention() {
			t.Fatalf("demand after a FAILED outcome: %s, attention %v; want OPEN and flagged", dd.GetState(), dd.GetNeedsAttention())
		}

		// The demand's own deadline.
		d3, _, _ := f.post(t)
		f.clock.Advance(31 * 24 * time.Hour)
		if _, err := f.s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := f.demand(t, d3.GetId()).GetState(); got != demandExpired {
			t.Fatalf("demand past its deadline: %s, want EXPIRED", got)
		}
		for _, m := range f.matches(t, d3.GetId()) {
			if m.GetState() == matchProposed || m.GetState() == matchAccepted {
				t.Errorf("match %s still %s on an expired demand", m.GetId(), m.GetState())
			}
		}
	})
}

// TestWithdrawDemand: the enterprise withdraws; proposals are withdrawn,
// accepted matches closed; a second withdrawal is FailedPrecondition.
func TestWithdrawDemand(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.products(t, 3)
		d, ms, code := f.post(t)
		if _, err := f.s.AcceptMatch(instCtx(t, ms[0]), &matchingv1.AcceptMatchRequest{Id: ms[0].GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err := f.s.WithdrawDemand(as(t, auth.Enterprise, testCode(t)), &matchingv1.WithdrawDemandRequest{Id: d.GetId()})
		wantCode(t, err, codes.NotFound)
		_, err = f.s.WithdrawDemand(as(t, auth.Enterprise, code), &matchingv1.WithdrawDemandRequest{Id: d.GetId(), Version: d.GetVersion()})
		wantCode(t, err, codes.Aborted) // the accept moved the demand's version
		if _, err := f.s.WithdrawDemand(as(t, auth.Enterprise, code), &matchingv1.WithdrawDemandRequest{Id: d.GetId(), Reason: "financed elsewhere"}); err != nil {
			t.Fatal(err)
		}
		if got := states(f.matches(t, d.GetId())); !mapsEqual(got, map[matchingv1.MatchState]int{matchClosed: 1, matchWithdrawn: 2}) {
			t.Fatalf("after withdrawal: %v", got)
		}
		_, err = f.s.WithdrawDemand(as(t, auth.Enterprise, code), &matchingv1.WithdrawDemandRequest{Id: d.GetId()})
		wantCode(t, err, codes.FailedPrecondition)
	})
}

// TestReverseMatching: a product published after a demand is proposed to it
// when it ranks in the demand's top K; published again, updated or
// delivered twice, it never makes a second match of the same pair.
func TestReverseMatching(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		d, ms, _ := f.post(t)
		if len(ms) != 0 || !f.demand(t, d.GetId()).GetNeedsAttention() {
			t.Fatalf("a demand with no product: %d matches, flagged %v", len(ms), f.demand(t, d.GetId()).GetNeedsAttention())
		}
		in := f.institution(t, registryv1.Zone_ZONE_RIVERSIDE_BELT)
		p := pledge(in, 400)
		deliver := func(subject string, version int64) {
			t.Helper()
			p.Version = version
			if err := f.s.handleProduct(t.Context(), &consumer.Delivery{Event: envelope(t, subject, p.GetId(), version, p), Subject: subject}); err != nil {
				t.Fatal(err)
			}
		}
		deliver(catalog.SubjectPublished, 3)
		deliver(catalog.SubjectPublished, 3) // redelivered
		p.Amount.MaxYuan = 60_000_000
		deliver(catalog.SubjectUpdated, 4)
		all := f.matches(t, d.GetId())
		if len(all) != 1 {
			t.Fatalf("%d matches after publish, redelivery and update, want 1", len(all))
		}
		for _, m := range all {
			if !m.GetReverse() || m.GetProductId() != p.GetId() || m.GetInstitutionCreditCode() != in.GetCreditCode() || m.GetInstitutionZone() != registryv1.Zone_ZONE_RIVERSIDE_BELT {
				t.Fatalf("reverse match: %v", m)
			}
		}
		// A product that does not fit (amount range below the demand) is not proposed.
		q := pledge(in, 300)
		q.Amount.MaxYuan = 9_999_999
		if err := f.s.handleProduct(t.Context(), &consumer.Delivery{Event: envelope(t, catalog.SubjectPublished, q.GetId(), 3, q), Subject: catalog.SubjectPublished}); err != nil {
			t.Fatal(err)
		}
		if n := len(f.matches(t, d.GetId())); n != 1 {
			t.Fatalf("%d matches after an ineligible product was published, want 1", n)
		}
		x, err := f.s.ExplainMatch(staffCtx(t), &matchingv1.ExplainMatchRequest{DemandId: d.GetId(), ProductId: q.GetId()})
		if err != nil || x.GetEligible() || x.GetMatch() != nil {
			t.Fatalf("explain the ineligible product: %v, %v", x, err)
		}
		failing := slices.IndexFunc(x.GetChecks(), func(c *matchingv1.Check) bool { return !c.GetOk() })
		if failing < 0 || !strings.Contains(x.GetChecks()[failing].GetDetail(), "9,999,999") {
			t.Errorf("the failing check does not show the values: %v", x.GetChecks())
		}
		x, err = f.s.ExplainMatch(staffCtx(t), &matchingv1.ExplainMatchRequest{DemandId: d.GetId(), ProductId: p.GetId()})
		if err != nil || !x.GetEligible() || x.GetMatch() == nil {
			t.Fatalf("explain the matched product: %v, %v", x, err)
		}
		for id := range all {
			if x.GetMatch().GetId() != id {
				t.Fatalf("explain the matched product: match %s, want %s", x.GetMatch().GetId(), id)
			}
		}
	})
}

// TestOneMatchPerProduct: a demand never gets a second match of a product,
// whatever path proposes it and however the proposals race. Each path skips
// a product the demand has a match of, and the demand's version fences its
// matches: a change that read the demand before another proposed the
// product loses its write, runs again on fresh data and finds the product
// matched. No pair claims are written any more, and one left by an earlier
// version is not read: ExplainMatch looks among the demand's matches.
func TestOneMatchPerProduct(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.products(t, 2)
		d, ms, _ := f.post(t)
		if len(ms) != 2 {
			t.Fatalf("PostDemand proposed %d matches, want both products", len(ms))
		}
		ctx := t.Context()
		// perProduct maps the demand's matches by product, and fails on a
		// second match of one.
		perProduct := func() map[string]*matchingv1.Match {
			t.Helper()
			out := map[string]*matchingv1.Match{}
			for _, m := range f.matches(t, d.GetId()) {
				if o, ok := out[m.GetProductId()]; ok {
					t.Fatalf("product %s matched twice with demand %s: %s and %s", m.GetProductId(), d.GetId(), o.GetId(), m.GetId())
				}
				out[m.GetProductId()] = m
			}
			return out
		}

		// The paths that propose skip a product already matched: reverse
		// matching and the re-check after a post (the sweep's re-offer:
		// TestDeadlines).
		for _, p := range f.prods {
			if err := f.s.reverseMatch(ctx, p.GetId()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.s.admitLate(ctx, d.GetId()); err != nil {
			t.Fatal(err)
		}
		if n := len(perProduct()); n != 2 {
			t.Fatalf("%d products matched after reverse matching and the re-check, want 2", n)
		}

		// A change that read the demand before the product was proposed
		// conflicts, runs again and finds it matched.
		in := f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		p := pledge(in, 500)
		f.s.applyProduct(p, p.Version)
		runs := 0
		_, err := f.s.mutate(ctx, d.GetId(), func(a *aggregate) error {
			runs++
			if runs == 1 {
				// The product's reverse matching commits after this read.
				if err := f.s.reverseMatch(ctx, p.GetId()); err != nil {
					return err
				}
			}
			if a.has(p.GetId()) {
				return nil
			}
			prod, _ := f.s.dir.product(p.GetId())
			a.propose(prod, Candidate{ProductID: p.GetId()}, 1, false, false)
			return nil
		})
		if err != nil || runs != 2 {
			t.Fatalf("the stale change: %v after %d runs, want nil after 2", err, runs)
		}
		if m := perProduct()[p.GetId()]; m == nil || !m.GetReverse() {
			t.Fatalf("the product's match: %v, want the one reverse matching proposed", m)
		}

		// Racing deliveries of a newly published product propose it once.
		in = f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		q := pledge(in, 450)
		f.s.applyProduct(q, q.Version)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				// Aborted: it lost to the others every time, which is allowed.
				if err := f.s.reverseMatch(ctx, q.GetId()); err != nil && !errors.Is(err, ErrStaleVersion) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got := perProduct()
		if got[q.GetId()] == nil || len(got) != 4 {
			t.Fatalf("after racing deliveries: %d products matched, the raced one %v", len(got), got[q.GetId()])
		}

		// No pair claims are written.
		page, err := st.List(ctx, kindPair, store.Query{Limit: store.MaxLimit})
		if err != nil || len(page.Records) != 0 {
			t.Fatalf("pair records: %d, %v; want none", len(page.Records), err)
		}
		// ExplainMatch answers each product's own match, and ignores an
		// earlier version's pair claim: r, indexed but never proposed, has
		// none even with a claim naming q's match.
		for prod, m := range got {
			x, err := f.s.ExplainMatch(staffCtx(t), &matchingv1.ExplainMatchRequest{DemandId: d.GetId(), ProductId: prod})
			if err != nil || x.GetMatch().GetId() != m.GetId() {
				t.Fatalf("explain product %s: %v, %v; want match %s", prod, x.GetMatch(), err, m.GetId())
			}
		}
		in = f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		r := pledge(in, 475)
		f.s.applyProduct(r, r.Version)
		legacy := store.Put{Kind: kindPair, ID: d.GetId() + "." + r.GetId(), Expect: store.MustNotExist, Data: []byte(got[q.GetId()].GetId())}
		if _, err := st.Apply(ctx, store.Batch{Puts: []store.Put{legacy}}); err != nil {
			t.Fatal(err)
		}
		x, err := f.s.ExplainMatch(staffCtx(t), &matchingv1.ExplainMatchRequest{DemandId: d.GetId(), ProductId: r.GetId()})
		if err != nil || x.GetMatch() != nil {
			t.Fatalf("explain a product with a legacy pair claim and no match: %v, %v; want no match", x.GetMatch(), err)
		}
	})
}

// TestWithdrawOnPauseAndSuspend: pausing or retiring a product, suspending
// its institution, withdraws the still-PROPOSED matches, leaves ACCEPTED
// ones alone, and takes the product out of later rankings.
func TestWithdrawOnPauseAndSuspend(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.products(t, 4)
		d, ms, _ := f.post(t)
		if _, err := f.s.AcceptMatch(instCtx(t, ms[0]), &matchingv1.AcceptMatchRequest{Id: ms[0].GetId()}); err != nil {
			t.Fatal(err)
		}
		// Pause the first (accepted) and the second product.
		for _, p := range f.prods[:2] {
			p.State = catalogv1.ProductState_PRODUCT_STATE_PAUSED
			if err := f.s.handleProduct(t.Context(), &consumer.Delivery{Event: envelope(t, catalog.SubjectPaused, p.GetId(), 4, p), Subject: catalog.SubjectPaused}); err != nil {
				t.Fatal(err)
			}
		}
		// Suspend the third product's institution.
		in := f.insts[2]
		in.State = registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED
		if err := f.s.handleInstitution(t.Context(), &consumer.Delivery{Event: envelope(t, registry.SubjectSuspended, in.GetId(), 3, in), Subject: registry.SubjectSuspended}); err != nil {
			t.Fatal(err)
		}
		all := f.matches(t, d.GetId())
		want := map[string]matchingv1.MatchState{ms[0].GetId(): matchAccepted, ms[1].GetId(): matchWithdrawn, ms[2].GetId(): matchWithdrawn, ms[3].GetId(): matchProposed}
		for id, st := range want {
			if all[id].GetState() != st {
				t.Errorf("match %s (rank %d): %s, want %s (%q)", id, all[id].GetRank(), all[id].GetState(), st, all[id].GetStateReason())
			}
		}
		if r := all[ms[2].GetId()].GetStateReason(); !strings.Contains(r, "suspended") {
			t.Errorf("withdrawal reason %q does not say why", r)
		}
		// A new demand sees only the fourth product.
		_, ms2, _ := f.post(t)
		if len(ms2) != 1 || ms2[0].GetProductId() != f.prods[3].GetId() {
			t.Fatalf("after pause and suspension a new demand got %d matches", len(ms2))
		}
	})
}

// TestPostDemandValidation: bad input is InvalidArgument naming the fields;
// posting for another enterprise is PermissionDenied.
func TestPostDemandValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nilStore{})
	code := testCode(t)
	bad := demand(code)
	bad.AmountYuan = 0
	bad.Region = "Wuchang"
	bad.Deadline = nil
	_, err := f.s.PostDemand(as(t, auth.Enterprise, code), &matchingv1.PostDemandRequest{Demand: bad})
	wantCode(t, err, codes.InvalidArgument)
	for _, field := range []string{"demand.amount_yuan", "demand.region", "demand.deadline"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
	_, err = f.s.PostDemand(as(t, auth.Enterprise, testCode(t)), &matchingv1.PostDemandRequest{Demand: demand(code)})
	wantCode(t, err, codes.PermissionDenied)
}

// nilStore is a store no call may reach.
type nilStore struct{ store.Store }

// TestExplainUnpublishedProduct: an enterprise cannot read, through an
// explanation, the terms of a product that is not public (a draft, a
// paused one) unless it was matched with its demand; staff can.
func TestExplainUnpublishedProduct(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		in := f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		p := pledge(in, 350)
		p.State = catalogv1.ProductState_PRODUCT_STATE_DRAFT
		f.s.applyProduct(p, 1)
		d, _, code := f.post(t)
		req := &matchingv1.ExplainMatchRequest{DemandId: d.GetId(), ProductId: p.GetId()}
		_, err := f.s.ExplainMatch(as(t, auth.Enterprise, code), req)
		wantCode(t, err, codes.NotFound)
		if _, err := f.s.ExplainMatch(staffCtx(t), req); err != nil {
			t.Fatalf("staff explain a draft: %v", err)
		}
		p.State = catalogv1.ProductState_PRODUCT_STATE_PUBLISHED
		f.s.applyProduct(p, 2)
		if x, err := f.s.ExplainMatch(as(t, auth.Enterprise, code), req); err != nil || !x.GetEligible() {
			t.Fatalf("the enterprise explains a published product: %v, %v", x, err)
		}
	})
}

// TestProductIndexedWhileDemandPosted: a product published between a new
// demand's ranking and its write is seen by neither the rank (too early)
// nor the product's reverse matching (the demand is not stored yet); the
// demand is checked again after its write, so the pair is matched anyway,
// once.
func TestProductIndexedWhileDemandPosted(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		in := f.institution(t, registryv1.Zone_ZONE_RIVERSIDE_BELT)
		p := pledge(in, 400)
		p.Version = 3
		delivered := false
		f.s.afterRank = func() {
			if delivered {
				return
			}
			delivered = true
			if err := f.s.handleProduct(t.Context(), &consumer.Delivery{Event: envelope(t, catalog.SubjectPublished, p.GetId(), 3, p), Subject: catalog.SubjectPublished}); err != nil {
				t.Error(err)
			}
		}
		d, ms, _ := f.post(t)
		if !delivered {
			t.Fatal("the product was not published in the window")
		}
		if len(ms) != 1 || ms[0].GetProductId() != p.GetId() {
			t.Fatalf("PostDemand answered %d matches %v, want the product published while it was posted", len(ms), ms)
		}
		all := f.matches(t, d.GetId())
		if len(all) != 1 {
			t.Fatalf("%d matches stored, want 1", len(all))
		}
		// Its redelivery finds the pair matched.
		if err := f.s.handleProduct(t.Context(), &consumer.Delivery{Event: envelope(t, catalog.SubjectPublished, p.GetId(), 3, p), Subject: catalog.SubjectPublished}); err != nil {
			t.Fatal(err)
		}
		if n := len(f.matches(t, d.GetId())); n != 1 {
			t.Fatalf("%d matches after the product's redelivery, want 1", n)
		}
	})
}
