package app_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
)

// The matching fixtures' products are carbon-linked loans of one exact
// amount each (min = max), an amount no other product of the run takes: a
// demand for that amount fits that one product alone, whatever else the
// parallel cases publish, and nothing published later re-offers to it.
const matchCategory = catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LINKED_LOAN

var amountSeq atomic.Int64

// newAmount returns an amount (yuan) no other call of the run returns,
// above what any other fixture's product lends.
func newAmount() int64 { return 900_000_000 + amountSeq.Add(1) }

// demandOf is a valid demand of the enterprise whose credit code is ent,
// for amount yuan.
func demandOf(ent string, amount int64) *matchingv1.Demand {
	return &matchingv1.Demand{
		EnterpriseCreditCode: ent, EnterpriseName: "武昌示范钢铁有限公司",
		Sector: catalogv1.Sector_SECTOR_STEEL, EtsCovered: true,
		Region: "420106", Zone: registryv1.Zone_ZONE_FINANCE_AXIS,
		Kind:       catalogv1.DemandKind_DEMAND_KIND_FINANCING,
		Categories: []catalogv1.ProductCategory{matchCategory},
		AmountYuan: amount, TermMonths: 12, AnnualEmissionsTonnes: 1_200_000,
		Description: "节能技改融资", Deadline: timestamppb.New(time.Now().Add(30 * 24 * time.Hour)),
	}
}

func (a *testApp) matching() matchingv1.MatchingServiceClient {
	return matchingv1.NewMatchingServiceClient(a.conn)
}

// postDemand posts, as staff, a demand of ent for amount, retrying while
// the matching index is still loading (Unavailable).
func (a *testApp) postDemand(t testing.TB, ent string, amount int64) *matchingv1.PostDemandResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := a.matching().PostDemand(a.staff(t), &matchingv1.PostDemandRequest{Demand: demandOf(ent, amount)})
		if err == nil {
			return r
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("PostDemand for %s: %v", ent, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openDemand is an OPEN demand of ent that no product fits.
func (a *testApp) openDemand(t testing.TB, ent string) *matchingv1.Demand {
	t.Helper()
	return a.postDemand(t, ent, newAmount()).GetDemand()
}

// matchable publishes, for an ACTIVE institution of inst, a product that
// only demands for the returned amount fit, and waits until matching's
// index (which follows the catalog's stream) holds it as eligible.
func (a *testApp) matchable(t testing.TB, inst string) (*catalogv1.Product, int64) {
	t.Helper()
	in := a.activeInstitution(t, inst)
	amount := newAmount()
	terms := product(newMarker())
	terms.Category = matchCategory
	terms.Collateral = nil
	terms.Amount = &catalogv1.AmountRange{MinYuan: amount, MaxYuan: amount}
	cat := catalogv1.NewCatalogServiceClient(a.conn)
	r, err := cat.CreateProduct(a.staff(t), &catalogv1.CreateProductRequest{InstitutionId: in.GetId(), Product: terms})
	if err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	pr, err := cat.PublishProduct(a.staff(t), &catalogv1.PublishProductRequest{Id: r.GetProduct().GetId()})
	if err != nil {
		t.Fatalf("PublishProduct: %v", err)
	}
	p := pr.GetProduct()

	// A probe demand, of an enterprise of its own, tells when the index
	// has the product, published, of an active institution.
	probe := a.postDemand(t, newOrg(t), amount).GetDemand()
	defer func() {
		if _, err := a.matching().WithdrawDemand(a.staff(t), &matchingv1.WithdrawDemandRequest{Id: probe.GetId()}); err != nil {
			t.Errorf("withdraw probe demand: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		x, err := a.matching().ExplainMatch(a.staff(t), &matchingv1.ExplainMatchRequest{DemandId: probe.GetId(), ProductId: p.GetId()})
		if err == nil && x.GetEligible() {
			return p, amount
		}
		if err != nil && status.Code(err) != codes.NotFound || time.Now().After(deadline) {
			t.Fatalf("matching's index does not hold product %s as eligible: %v %v", p.GetId(), err, x.GetChecks())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proposed posts, as staff, a demand of the enterprise ent that the product
// of an institution of inst fits alone, and returns it with its PROPOSED
// match of that product.
func (a *testApp) proposed(t testing.TB, ent, inst string) (*matchingv1.Demand, *matchingv1.Match) {
	t.Helper()
	p, amount := a.matchable(t, inst)
	r := a.postDemand(t, ent, amount)
	for _, m := range r.GetMatches() {
		if m.GetProductId() == p.GetId() {
			return r.GetDemand(), m
		}
	}
	t.Fatalf("demand %s was not matched with product %s: %v", r.GetDemand().GetId(), p.GetId(), r.GetMatches())
	return nil, nil
}

// inMatchState is a match of ent's demand with inst's product, taken by
// staff to state (PROPOSED, ACCEPTED or CONFIRMED).
func (a *testApp) inMatchState(t testing.TB, ent, inst string, state matchingv1.MatchState) (*matchingv1.Demand, *matchingv1.Match) {
	t.Helper()
	d, m := a.proposed(t, ent, inst)
	if state == matchingv1.MatchState_MATCH_STATE_PROPOSED {
		return d, m
	}
	ar, err := a.matching().AcceptMatch(a.staff(t), &matchingv1.AcceptMatchRequest{Id: m.GetId()})
	if err != nil {
		t.Fatalf("AcceptMatch: %v", err)
	}
	if state == matchingv1.MatchState_MATCH_STATE_ACCEPTED {
		return d, ar.GetMatch()
	}
	cr, err := a.matching().ConfirmMatch(a.staff(t), &matchingv1.ConfirmMatchRequest{Id: m.GetId()})
	if err != nil {
		t.Fatalf("ConfirmMatch: %v", err)
	}
	if state == matchingv1.MatchState_MATCH_STATE_CONFIRMED {
		return d, cr.GetMatch()
	}
	t.Fatalf("inMatchState: %s is not a state to set up", state)
	return nil, nil
}

// readDemand returns a demand with all its matches, as staff see it.
func (a *testApp) readDemand(t testing.TB, id string) *matchingv1.GetDemandResponse {
	t.Helper()
	r, err := a.matching().GetDemand(a.staff(t), &matchingv1.GetDemandRequest{Id: id})
	if err != nil {
		t.Fatalf("GetDemand %s as staff: %v", id, err)
	}
	return r
}

// onDemand is a call acting on a demand (or one of its matches, object):
// a refused write leaves the demand and all its matches as they were.
func onDemand(a *testApp, demandID, object string, req proto.Message) call {
	return call{req: req, object: object, snapshot: func(t *testing.T) proto.Message { return a.readDemand(t, demandID) }}
}

// waitWatched waits until staff, watching with req, see match id: the
// change is on the MATCHING stream, so a watcher that does not get it is
// filtered, not early.
func (a *testApp) waitWatched(t testing.TB, req *matchingv1.WatchMatchesRequest, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(a.staff(t), 10*time.Second)
	defer cancel()
	w, err := a.matching().WatchMatches(ctx, req)
	if err != nil {
		t.Fatalf("WatchMatches as staff: %v", err)
	}
	for {
		r, err := w.Recv()
		if err != nil {
			t.Fatalf("staff do not see match %s on the live feed: %v", id, err)
		}
		if r.GetMatch().GetId() == id {
			return
		}
	}
}

func demandIDs(ds []*matchingv1.Demand) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.GetId()
	}
	return out
}

func matchIDs(ms []*matchingv1.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.GetId()
	}
	return out
}

// matchingFixtures are the matrix fixtures of the matching service's RPCs.
// A demand belongs to its enterprise, a match to its institution for the
// institution's actions and to the demand's enterprise for the
// enterprise's. Where one role acts, the other party is another
// organisation, so a handler checking the wrong party's code fails the
// matrix; where both roles may look (GetDemand, ListMatches, WatchMatches),
// org is both the enterprise and the institution of the match.
func matchingFixtures() map[string]fixture {
	const (
		proposedState  = matchingv1.MatchState_MATCH_STATE_PROPOSED
		acceptedState  = matchingv1.MatchState_MATCH_STATE_ACCEPTED
		confirmedState = matchingv1.MatchState_MATCH_STATE_CONFIRMED
	)
	return map[string]fixture{
		matchingv1.MatchingService_PostDemand_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				a.openDemand(t, newOrg(t)) // the index is ready
				return call{
					req: &matchingv1.PostDemandRequest{Demand: demandOf(org, newAmount())},
					check: func(t *testing.T, ok bool) {
						want := 0
						if ok {
							want = 1
						}
						r, err := a.matching().ListDemands(a.staff(t), &matchingv1.ListDemandsRequest{EnterpriseCreditCode: org, PageSize: 200})
						if err != nil {
							t.Fatalf("ListDemands as staff: %v", err)
						}
						if got := len(r.GetDemands()); got != want {
							t.Errorf("after the call staff find %d demands of %s, want %d", got, org, want)
						}
					},
				}
			},
		},
		matchingv1.MatchingService_GetDemand_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, _ := a.proposed(t, org, org)
				return onDemand(a, d.GetId(), d.GetId(), &matchingv1.GetDemandRequest{Id: d.GetId()})
			},
		},
		matchingv1.MatchingService_ListDemands_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d := a.openDemand(t, org)
				return onDemand(a, d.GetId(), d.GetId(), &matchingv1.ListDemandsRequest{EnterpriseCreditCode: org, PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				return demandIDs(resp.(*matchingv1.ListDemandsResponse).GetDemands())
			},
		},
		matchingv1.MatchingService_WithdrawDemand_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d := a.openDemand(t, org)
				return onDemand(a, d.GetId(), d.GetId(), &matchingv1.WithdrawDemandRequest{Id: d.GetId(), Version: d.GetVersion(), Reason: "financed elsewhere"})
			},
		},
		matchingv1.MatchingService_ListMatches_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.proposed(t, org, org)
				return onDemand(a, d.GetId(), m.GetId(), &matchingv1.ListMatchesRequest{DemandId: d.GetId(), PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				return matchIDs(resp.(*matchingv1.ListMatchesResponse).GetMatches())
			},
		},
		matchingv1.MatchingService_ExplainMatch_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.proposed(t, org, newOrg(t))
				return onDemand(a, d.GetId(), d.GetId(), &matchingv1.ExplainMatchRequest{DemandId: d.GetId(), ProductId: m.GetProductId()})
			},
		},
		matchingv1.MatchingService_AcceptMatch_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.inMatchState(t, newOrg(t), org, proposedState)
				return onDemand(a, d.GetId(), m.GetId(), &matchingv1.AcceptMatchRequest{Id: m.GetId(), Version: m.GetVersion()})
			},
		},
		matchingv1.MatchingService_DeclineMatch_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.inMatchState(t, newOrg(t), org, proposedState)
				return onDemand(a, d.GetId(), m.GetId(), &matchingv1.DeclineMatchRequest{Id: m.GetId(), Version: m.GetVersion(), Reason: "outside our appetite"})
			},
		},
		matchingv1.MatchingService_ConfirmMatch_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.inMatchState(t, org, newOrg(t), acceptedState)
				return onDemand(a, d.GetId(), m.GetId(), &matchingv1.ConfirmMatchRequest{Id: m.GetId(), Version: m.GetVersion()})
			},
		},
		matchingv1.MatchingService_ReportOutcome_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.inMatchState(t, newOrg(t), org, confirmedState)
				return onDemand(a, d.GetId(), m.GetId(), &matchingv1.ReportOutcomeRequest{Id: m.GetId(), Version: m.GetVersion(),
					Result: &matchingv1.ReportOutcomeRequest_Completed{Completed: &matchingv1.Deal{
						AmountYuan: d.GetAmountYuan(), RateBps: 385, TermMonths: 12, Note: "disbursed"}}})
			},
		},
		matchingv1.MatchingService_WatchMatches_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				d, m := a.proposed(t, org, org)
				// Replay from before the proposal, only the institution's
				// proposals: staff get a handful of changes, not the run's.
				req := &matchingv1.WatchMatchesRequest{
					InstitutionId: m.GetInstitutionId(),
					States:        []matchingv1.MatchState{proposedState},
					StartTime:     timestamppb.New(d.GetCreateTime().AsTime().Add(-time.Second)),
				}
				a.waitWatched(t, req, m.GetId())
				return call{req: req, object: m.GetId()}
			},
			listed: func(resp proto.Message) []string {
				return []string{resp.(*matchingv1.WatchMatchesResponse).GetMatch().GetId()}
			},
		},
		matchingv1.MatchingService_GetMatchStats_FullMethodName: {
			request: func(*testing.T, *testApp, string) call {
				return call{req: &matchingv1.GetMatchStatsRequest{}}
			},
		},
	}
}
