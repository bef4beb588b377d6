// Package benchpg holds what the matching engine's benchmarks share: a
// deterministic synthetic district (institutions, products, demands) and the
// same ranking run as SQL in PostgreSQL, for the comparison DESIGN §9 asks
// for. The harness that prints the figures is its benchmatch sub-command;
// BenchmarkRank100k in services/matching uses the same data. Nothing here is
// used by the service.
package benchpg

import (
	"fmt"
	"math"
	"math/rand/v2"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/services/matching"
)

// ReferencePrices are the reference carbon prices of the synthetic district
// (yuan per tonne; CEA has traded at ¥40–¥110).
var ReferencePrices = matching.Prices{CEA: 75, CCER: 70}

type (
	cat  = catalogv1.ProductCategory
	kind = catalogv1.DemandKind
)

// shape is how one category's products look.
type shape struct {
	cat          cat
	weight       int // share of all products, per mille
	kinds        []kind
	amtLo, amtHi float64 // the range's minimum lies log-uniformly in [amtLo, amtHi)
	spanLo       float64 // max = min × [spanLo, spanLo×20)
	termLo       int32   // 0: no term
	termHi       int32
	rateLo       int32 // 0: priced by fee
	feeLo        float64
	collateral   bool // takes CEA or CCER
}

const (
	fin    = catalogv1.DemandKind_DEMAND_KIND_FINANCING
	hedge  = catalogv1.DemandKind_DEMAND_KIND_HEDGING
	sell   = catalogv1.DemandKind_DEMAND_KIND_SELL_ALLOWANCE
	buy    = catalogv1.DemandKind_DEMAND_KIND_BUY_ALLOWANCE
	ccer   = catalogv1.DemandKind_DEMAND_KIND_CCER_DEVELOPMENT
	cust   = catalogv1.DemandKind_DEMAND_KIND_CUSTODY
	insure = catalogv1.DemandKind_DEMAND_KIND_INSURANCE
	verify = catalogv1.DemandKind_DEMAND_KIND_VERIFICATION
	advise = catalogv1.DemandKind_DEMAND_KIND_CONSULTING
)

// shapes: financing dominates, as at the desk (pledge loans and
// carbon-linked loans from the banks), then services and trading tools.
var shapes = []shape{
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE, 220, []kind{fin}, 5e5, 2e7, 5, 3, 36, 350, 0, true},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LINKED_LOAN, 150, []kind{fin}, 3e5, 5e7, 5, 6, 60, 300, 0, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_REPO, 60, []kind{fin, sell}, 1e6, 3e7, 3, 1, 12, 250, 0, true},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_BOND, 40, []kind{fin}, 3e7, 5e8, 3, 36, 120, 250, 0, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_CUSTODY, 50, []kind{cust, fin}, 1e5, 1e7, 5, 6, 24, 0, 2e4, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FORWARD, 50, []kind{hedge, buy, sell}, 1e5, 1e7, 5, 3, 24, 0, 1e4, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FUTURE, 20, []kind{hedge}, 5e4, 5e6, 10, 1, 12, 0, 5e3, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_OPTION, 30, []kind{hedge}, 1e5, 1e7, 5, 1, 12, 0, 1e4, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_SWAP, 30, []kind{hedge, fin}, 1e6, 5e7, 5, 6, 36, 300, 0, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LENDING, 30, []kind{buy, fin}, 2e5, 1e7, 5, 3, 12, 200, 0, true},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_INDEX, 10, []kind{hedge}, 1e5, 1e7, 10, 0, 0, 0, 5e3, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_INSURANCE, 70, []kind{insure}, 1e5, 2e7, 5, 12, 36, 40, 0, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FUND, 40, []kind{ccer, fin}, 5e6, 2e8, 5, 36, 96, 0, 5e4, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_VERIFICATION, 80, []kind{verify}, 1e4, 2e5, 5, 0, 0, 0, 2e4, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_CONSULTING, 70, []kind{advise, ccer}, 1e4, 5e5, 5, 0, 0, 0, 1e4, false},
	{catalogv1.ProductCategory_PRODUCT_CATEGORY_ALLOWANCE_TRADE_AGENCY, 50, []kind{sell, buy}, 1e5, 1e7, 10, 0, 0, 0, 5e3, false},
}

var (
	// Wuhan's districts, other Hubei cities, other provinces' cities.
	wuhan   = []string{"420102", "420103", "420104", "420105", "420106", "420107", "420111", "420112", "420113", "420114", "420115", "420116", "420117"}
	hubei   = []string{"420200", "420300", "420500", "420600", "420700", "420800", "420900", "421000", "421100", "421200", "421300"}
	outside = []string{"110000", "310000", "440300", "320500", "330100", "430100", "500000", "510100", "360100", "410100"}
	zones   = []string{"FINANCE_AXIS", "RIVERSIDE_BELT", "FINANCE_PARK", "OTHER_WUCHANG", "OUTSIDE_DISTRICT"}
)

func rng(seed int64, stream, i uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed)^stream<<56, i))
}

func logUniform(r *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo)))
}

// roundTo rounds to two significant digits, as product terms are written.
func roundTo(f float64) int64 {
	if f < 100 {
		return max(int64(f), 1)
	}
	p := math.Pow(10, math.Floor(math.Log10(f))-1)
	return int64(math.Round(f/p) * p)
}

// InstitutionID is the id of synthetic institution i.
func InstitutionID(i int) string { return fmt.Sprintf("I%05d", i) }

// Institution is synthetic institution i: 95 % active, 65 % on the finance
// axis or the riverside belt, a fifth outside the district.
func Institution(seed int64, i int) matching.InstitutionView {
	r := rng(seed, 1, uint64(i))
	z := zones[pick(r, []int{45, 15, 10, 10, 20})]
	return matching.InstitutionView{ID: InstitutionID(i), Active: r.IntN(100) < 95, Zone: z, ResponseScore: 0.2 + 0.8*r.Float64()}
}

func pick(r *rand.Rand, weights []int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	n := r.IntN(sum)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

var shapeWeights = func() []int {
	w := make([]int, len(shapes))
	for i, s := range shapes {
		w[i] = s.weight
	}
	return w
}()

// ProductID is the id of synthetic product i.
func ProductID(i int) string { return fmt.Sprintf("P%07d", i) }

// Product is synthetic product i of a district with insts institutions: 92 %
// published; half open to every sector; 40 % open to every region, most of
// the rest to Hubei, Wuhan or Wuchang.
func Product(seed int64, i, insts int) matching.ProductView {
	r := rng(seed, 2, uint64(i))
	s := shapes[pick(r, shapeWeights)]
	p := matching.ProductView{
		ID:            ProductID(i),
		InstitutionID: InstitutionID(r.IntN(insts)),
		Category:      s.cat,
		DemandKinds:   s.kinds,
		Published:     r.IntN(100) < 92,
		Version:       1,
	}
	p.AmountMin = roundTo(logUniform(r, s.amtLo, s.amtHi))
	p.AmountMax = roundTo(float64(p.AmountMin) * logUniform(r, s.spanLo, s.spanLo*20))
	if s.termHi > 0 {
		p.TermMin = s.termLo + r.Int32N(max((s.termHi-s.termLo)/3, 1))
		p.TermMax = p.TermMin + r.Int32N(s.termHi-p.TermMin+1)
	}
	if s.rateLo > 0 {
		p.RateMinBps = s.rateLo + r.Int32N(250)
		p.RateMaxBps = p.RateMinBps + r.Int32N(150)
	} else {
		p.FeeYuan = roundTo(logUniform(r, s.feeLo, s.feeLo*30))
	}
	if s.collateral {
		p.CollateralAsset = catalogv1.CarbonAsset_CARBON_ASSET_CEA
		if r.IntN(100) < 30 {
			p.CollateralAsset = catalogv1.CarbonAsset_CARBON_ASSET_CCER
		}
		p.PledgeRateBps = 4000 + 500*r.Int32N(7)
	}
	if r.IntN(2) == 0 {
		for range 1 + r.IntN(4) {
			sec := catalogv1.Sector(1 + r.IntN(9))
			if !contains(p.Sectors, sec) {
				p.Sectors = append(p.Sectors, sec)
			}
		}
	}
	switch n := r.IntN(100); {
	case n < 40:
	case n < 65:
		p.Regions = []string{"420000"}
	case n < 80:
		p.Regions = []string{"420100"}
	case n < 85:
		p.Regions = []string{"420106"}
	default:
		for range 1 + r.IntN(3) {
			c := outside[r.IntN(len(outside))]
			if r.IntN(2) == 0 {
				c = hubei[r.IntN(len(hubei))]
			}
			if !contains(p.Regions, c) {
				p.Regions = append(p.Regions, c)
			}
		}
	}
	return p
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

var demandKinds = []kind{fin, hedge, sell, buy, ccer, cust, insure, verify, advise}

// Demand is synthetic demand i: half of them financing; 30 % name one or two
// categories; most enterprises in Wuhan, in a district zone or just outside.
func Demand(seed int64, i int) matching.DemandView {
	r := rng(seed, 3, uint64(i))
	k := demandKinds[pick(r, []int{50, 10, 8, 7, 5, 5, 5, 6, 4})]
	d := matching.DemandView{ID: fmt.Sprintf("D%07d", i), Kind: k, Sector: catalogv1.Sector(1 + r.IntN(9))}
	if r.IntN(100) < 30 {
		var serving []cat
		for _, s := range shapes {
			if contains(s.kinds, k) {
				serving = append(serving, s.cat)
			}
		}
		for range 1 + r.IntN(2) {
			c := serving[r.IntN(len(serving))]
			if !contains(d.Categories, c) {
				d.Categories = append(d.Categories, c)
			}
		}
	}
	switch k {
	case verify, advise:
		d.AmountYuan = roundTo(logUniform(r, 2e4, 1e6))
	default:
		d.AmountYuan = roundTo(logUniform(r, 2e5, 3e8))
	}
	if r.IntN(100) < 70 {
		d.TermMonths = 3 + r.Int32N(58)
	}
	switch n := r.IntN(100); {
	case n < 60:
		d.Region = wuhan[r.IntN(len(wuhan))]
	case n < 85:
		d.Region = hubei[r.IntN(len(hubei))][:4] + fmt.Sprintf("%02d", 2+r.IntN(20))
	default:
		d.Region = outside[r.IntN(len(outside))]
	}
	if d.Region[:4] == "4201" {
		d.Zone = zones[pick(r, []int{20, 20, 25, 25, 10})]
	}
	if r.IntN(100) < 70 {
		d.CEATonnes = roundTo(logUniform(r, 1e3, 3e6))
	}
	if r.IntN(100) < 30 {
		d.CCERTonnes = roundTo(logUniform(r, 1e3, 5e5))
	}
	return d
}

// Load feeds an engine the synthetic district: prices, insts institutions
// and n products.
func Load(e *matching.Engine, seed int64, n, insts int) {
	e.SetPrices(ReferencePrices)
	for i := range insts {
		e.UpsertInstitution(Institution(seed, i))
	}
	for i := range n {
		e.UpsertProduct(Product(seed, i, insts))
	}
}
