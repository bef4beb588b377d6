package matching_test

import (
	"sync"
	"testing"

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
