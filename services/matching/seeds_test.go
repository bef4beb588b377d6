package matching

import (
	"testing"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/seeds"
)

// TestLoadSeeds loads the demo demands twice against an index of pledge
// loans: the first load leaves a pipeline with matches in every stage
// (proposed, accepted, declined, confirmed, completed, failed), the second
// adds nothing.
func TestLoadSeeds(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.products(t, 6)
		for range 2 { // custody offers for the custody demand
			in := f.institution(t, registryv1.Zone_ZONE_FINANCE_PARK)
			p := pledge(in, 0)
			p.Category = catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_CUSTODY
			p.DemandKinds = []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_CUSTODY}
			p.Collateral, p.Price = nil, &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: 20000}}
			f.s.applyProduct(p, p.Version)
		}
		for range 2 {
			if err := LoadSeeds(t.Context(), f.s, seeds.FS); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := f.s.ListDemands(staffCtx(t), &matchingv1.ListDemandsRequest{PageSize: 200})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetDemands()); n != 12 {
			t.Fatalf("%d demands after two loads, want 12", n)
		}
		got := map[matchingv1.MatchState]int{}
		ms, err := f.s.ListMatches(staffCtx(t), &matchingv1.ListMatchesRequest{PageSize: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms.GetMatches() {
			got[m.GetState()]++
		}
		for _, st := range []matchingv1.MatchState{matchProposed, matchAccepted, matchDeclined, matchConfirmed, matchCompleted, matchFailed, matchClosed} {
			if got[st] == 0 {
				t.Errorf("no %s match in the seeded pipeline: %v", st, got)
			}
		}
	})
}
