package matching_test

import (
	"fmt"
	"sync"
	"testing"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/matching/internal/benchpg"
)

const (
	benchSeed     = 1
	benchProducts = 100_000
	benchInsts    = 2_000
	benchDemands  = 4_096
)

// The synthetic district is built once per test binary: indexing 100,000
// products takes about a second.
var benchDistrict = sync.OnceValues(func() (*matching.Engine, []matching.DemandView) {
	e := matching.NewEngine(matching.Config{})
	benchpg.Load(e, benchSeed, benchProducts, benchInsts)
	ds := make([]matching.DemandView, benchDemands)
	for i := range ds {
		ds[i] = benchpg.Demand(benchSeed, i)
	}
	return e, ds
})

// BenchmarkRank100k ranks one demand (cycling through 4,096 synthetic ones)
// against 100,000 products, top 5 with their reasons. The harness
// (services/matching/internal/benchpg/benchmatch) reports the percentiles.
func BenchmarkRank100k(b *testing.B) {
	e, ds := benchDistrict()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Rank(ds[i%len(ds)], 0, nil)
		i++
	}
}

// BenchmarkRank100kParallel is the same from GOMAXPROCS callers at once.
func BenchmarkRank100kParallel(b *testing.B) {
	e, ds := benchDistrict()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e.Rank(ds[i%len(ds)], 0, nil)
			i++
		}
	})
}

// BenchmarkUpsertProduct replaces products of a 100,000-product index (a
// catalog change), version by version.
func BenchmarkUpsertProduct(b *testing.B) {
	e, _ := benchDistrict()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := benchpg.Product(benchSeed, i%benchProducts, benchInsts)
		p.Version = int64(2 + i)
		e.UpsertProduct(p)
		i++
	}
}

// BenchmarkRankAllEligible ranks one demand against 2,000 products that all
// pass its hard constraints, as cmd/benchdesk publishes them (one category,
// every region, overlapping amount and term ranges, 20 institutions): the
// shape where the score's upper bound prunes least, and where PostDemand's
// ranking shows in the end-to-end figures.
func BenchmarkRankAllEligible(b *testing.B) {
	e := matching.NewEngine(matching.Config{})
	e.SetPrices(matching.Prices{CEA: 80})
	// New institutions: no response record yet (0.5 for all), two zones.
	zones := []string{"FINANCE_AXIS", "RIVERSIDE_BELT"}
	for i := range 20 {
		e.UpsertInstitution(matching.InstitutionView{ID: fmt.Sprintf("inst-%02d", i), Active: true,
			Zone: zones[i%len(zones)], ResponseScore: 0.5})
	}
	for i := range 2000 {
		minBps := int32(300 + (i*37)%300)
		e.UpsertProduct(matching.ProductView{
			ID: fmt.Sprintf("prod-%05d", i), InstitutionID: fmt.Sprintf("inst-%02d", i%20),
			Category:    catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE,
			DemandKinds: []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING},
			AmountMin:   1_000_000, AmountMax: int64(20_000_000 + (i%10)*5_000_000),
			TermMin: 6, TermMax: int32(24 + (i%3)*12), RateMinBps: minBps, RateMaxBps: minBps + 100,
			CollateralAsset: catalogv1.CarbonAsset_CARBON_ASSET_CEA, PledgeRateBps: int32(5000 + (i%5)*500),
			Published: true, Version: 1,
		})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := matching.DemandView{Kind: catalogv1.DemandKind_DEMAND_KIND_FINANCING, AmountYuan: int64(5_000_000 + (i%10)*500_000),
			TermMonths: 12, Sector: catalogv1.Sector_SECTOR_STEEL, Region: "420106", Zone: "FINANCE_AXIS", CEATonnes: 300_000}
		if got := e.Rank(d, 0, nil); len(got) != 5 {
			b.Fatalf("ranked %d products, want 5", len(got))
		}
		i++
	}
}
