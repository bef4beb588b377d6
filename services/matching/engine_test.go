package matching_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/matching/internal/benchpg"
)

const (
	financing = catalogv1.DemandKind_DEMAND_KIND_FINANCING
	hedging   = catalogv1.DemandKind_DEMAND_KIND_HEDGING
	pledge    = catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE
	linked    = catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LINKED_LOAN
	cea       = catalogv1.CarbonAsset_CARBON_ASSET_CEA
	ccer      = catalogv1.CarbonAsset_CARBON_ASSET_CCER
	power     = catalogv1.Sector_SECTOR_POWER
	steel     = catalogv1.Sector_SECTOR_STEEL
	cement    = catalogv1.Sector_SECTOR_CEMENT
)

// A pledge loan of ¥1,000,000..¥10,000,000 over 6..36 months at 60 % of
// the CEA pledged, and a Wuchang power plant asking for ¥5,000,000 over 12
// months with 300,000 t of CEA (¥14,400,000 at ¥80 and 60 %): eligible as they stand.
func baseProduct() matching.ProductView {
	return matching.ProductView{
		ID: "P1", InstitutionID: "BANK", Category: pledge, DemandKinds: []catalogv1.DemandKind{financing},
		AmountMin: 1_000_000, AmountMax: 10_000_000, TermMin: 6, TermMax: 36, RateMinBps: 380, RateMaxBps: 450,
		CollateralAsset: cea, PledgeRateBps: 6000, Published: true, Version: 1,
	}
}

func baseDemand() matching.DemandView {
	return matching.DemandView{ID: "D1", Kind: financing, AmountYuan: 5_000_000, TermMonths: 12, Sector: power,
		Region: "420106", Zone: "FINANCE_AXIS", CEATonnes: 300_000}
}

func newEngine(t *testing.T, prices matching.Prices, ps ...matching.ProductView) *matching.Engine {
	t.Helper()
	e := matching.NewEngine(matching.Config{})
	e.SetPrices(prices)
	e.UpsertInstitution(matching.InstitutionView{ID: "BANK", Active: true, Zone: "FINANCE_AXIS", ResponseScore: 0.8})
	for _, p := range ps {
		e.UpsertProduct(p)
	}
	return e
}

var defaultPrices = matching.Prices{CEA: 80, CCER: 60}

func failing(cs []matching.Check) []string {
	var out []string
	for _, c := range cs {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestEngineConstraints tests each hard constraint at its boundaries,
// through all three ways in: Explain, Eligible and Rank must agree.
func TestEngineConstraints(t *testing.T) {
	tests := []struct {
		name    string
		product func(*matching.ProductView)
		demand  func(*matching.DemandView)
		prices  *matching.Prices
		fail    []string // failing checks; nil: eligible
	}{
		{name: "as they stand"},

		{name: "amount = min", demand: func(d *matching.DemandView) { d.AmountYuan = 1_000_000 }},
		{name: "amount = max", demand: func(d *matching.DemandView) { d.AmountYuan = 10_000_000 }},
		{name: "amount one below min", demand: func(d *matching.DemandView) { d.AmountYuan = 999_999 }, fail: []string{"amount"}},
		{name: "amount one above max", demand: func(d *matching.DemandView) { d.AmountYuan = 10_000_001 }, fail: []string{"amount"}},
		{name: "one-point range", product: func(p *matching.ProductView) { p.AmountMin, p.AmountMax = 5_000_000, 5_000_000 }},

		{name: "term = min", demand: func(d *matching.DemandView) { d.TermMonths = 6 }},
		{name: "term = max", demand: func(d *matching.DemandView) { d.TermMonths = 36 }},
		{name: "term one below min", demand: func(d *matching.DemandView) { d.TermMonths = 5 }, fail: []string{"term"}},
		{name: "term one above max", demand: func(d *matching.DemandView) { d.TermMonths = 37 }, fail: []string{"term"}},
		{name: "demand states no term", demand: func(d *matching.DemandView) { d.TermMonths = 0 }},
		{name: "product has no term", product: func(p *matching.ProductView) { p.TermMin, p.TermMax = 0, 0 },
			demand: func(d *matching.DemandView) { d.TermMonths = 240 }},
		{name: "neither has a term", product: func(p *matching.ProductView) { p.TermMin, p.TermMax = 0, 0 },
			demand: func(d *matching.DemandView) { d.TermMonths = 0 }},

		{name: "sectors empty = all", demand: func(d *matching.DemandView) { d.Sector = catalogv1.Sector_SECTOR_AVIATION }},
		{name: "sector listed", product: func(p *matching.ProductView) { p.Sectors = []catalogv1.Sector{steel, power} }},
		{name: "sector not listed", product: func(p *matching.ProductView) { p.Sectors = []catalogv1.Sector{steel, cement} }, fail: []string{"sector"}},
		{name: "demand sector unspecified, product restricted", product: func(p *matching.ProductView) { p.Sectors = []catalogv1.Sector{power} },
			demand: func(d *matching.DemandView) { d.Sector = 0 }, fail: []string{"sector"}},

		{name: "regions empty = all", demand: func(d *matching.DemandView) { d.Region = "110105" }},
		{name: "province covers district", product: func(p *matching.ProductView) { p.Regions = []string{"420000"} }},
		{name: "city covers district", product: func(p *matching.ProductView) { p.Regions = []string{"420100"} }},
		{name: "district covers itself", product: func(p *matching.ProductView) { p.Regions = []string{"420106"} }},
		{name: "province covers city code", product: func(p *matching.ProductView) { p.Regions = []string{"420000"} },
			demand: func(d *matching.DemandView) { d.Region = "420100" }},
		{name: "other district", product: func(p *matching.ProductView) { p.Regions = []string{"420107"} }, fail: []string{"region"}},
		{name: "other city", product: func(p *matching.ProductView) { p.Regions = []string{"420500"} }, fail: []string{"region"}},
		{name: "other province", product: func(p *matching.ProductView) { p.Regions = []string{"430000"} }, fail: []string{"region"}},
		{name: "city does not cover its province", product: func(p *matching.ProductView) { p.Regions = []string{"420100"} },
			demand: func(d *matching.DemandView) { d.Region = "420000" }, fail: []string{"region"}},
		{name: "prefix is per level, not per digit", product: func(p *matching.ProductView) { p.Regions = []string{"421000"} },
			demand: func(d *matching.DemandView) { d.Region = "420106" }, fail: []string{"region"}},
		{name: "second of several", product: func(p *matching.ProductView) { p.Regions = []string{"110000", "420100"} }},
		{name: "fifth of five (beyond the inline three)", product: func(p *matching.ProductView) {
			p.Regions = []string{"110000", "310000", "440300", "500000", "420000"}
		}},
		{name: "none of five", product: func(p *matching.ProductView) {
			p.Regions = []string{"110000", "310000", "440300", "500000", "430000"}
		}, fail: []string{"region"}},
		{name: "demand without region, product restricted", product: func(p *matching.ProductView) { p.Regions = []string{"420000"} },
			demand: func(d *matching.DemandView) { d.Region = "" }, fail: []string{"region"}},

		// 1,000 t × ¥80 × 60 % = ¥48,000.
		{name: "CEA exactly enough", demand: func(d *matching.DemandView) { d.AmountYuan, d.CEATonnes = 48_000, 1_000 },
			product: func(p *matching.ProductView) { p.AmountMin = 10_000 }},
		{name: "CEA one tonne short", demand: func(d *matching.DemandView) { d.AmountYuan, d.CEATonnes = 48_000, 999 },
			product: func(p *matching.ProductView) { p.AmountMin = 10_000 }, fail: []string{"collateral"}},
		// 1,000 t × ¥60 × 50 % = ¥30,000.
		{name: "CCER exactly enough", demand: func(d *matching.DemandView) { d.AmountYuan, d.CCERTonnes = 30_000, 1_000 },
			product: func(p *matching.ProductView) { p.AmountMin, p.CollateralAsset, p.PledgeRateBps = 10_000, ccer, 5000 }},
		{name: "CCER one tonne short", demand: func(d *matching.DemandView) { d.AmountYuan, d.CCERTonnes = 30_000, 999 },
			product: func(p *matching.ProductView) { p.AmountMin, p.CollateralAsset, p.PledgeRateBps = 10_000, ccer, 5000 }, fail: []string{"collateral"}},
		{name: "CCER product, only CEA held", product: func(p *matching.ProductView) { p.CollateralAsset = ccer }, fail: []string{"collateral"}},
		{name: "no collateral required, none held", product: func(p *matching.ProductView) { p.CollateralAsset, p.PledgeRateBps = 0, 0 },
			demand: func(d *matching.DemandView) { d.CEATonnes = 0 }},
		{name: "no reference price", prices: &matching.Prices{CCER: 60}, fail: []string{"collateral"}},
		{name: "huge holding does not overflow", demand: func(d *matching.DemandView) { d.CEATonnes = math.MaxInt64 }},
		{name: "huge amount, huge holding", prices: &matching.Prices{CEA: math.MaxInt64},
			product: func(p *matching.ProductView) { p.AmountMax = math.MaxInt64 },
			demand:  func(d *matching.DemandView) { d.AmountYuan, d.CEATonnes = math.MaxInt64, 2 }},
		{name: "huge amount, exactly enough", prices: &matching.Prices{CEA: math.MaxInt64},
			product: func(p *matching.ProductView) { p.AmountMax, p.PledgeRateBps = math.MaxInt64, 10000 },
			demand:  func(d *matching.DemandView) { d.AmountYuan, d.CEATonnes = math.MaxInt64, 1 }},
		{name: "huge amount, nothing held", prices: &matching.Prices{CEA: math.MaxInt64},
			product: func(p *matching.ProductView) { p.AmountMax, p.PledgeRateBps = math.MaxInt64, 10000 },
			demand:  func(d *matching.DemandView) { d.AmountYuan, d.CEATonnes = math.MaxInt64, 0 }, fail: []string{"collateral"}},

		{name: "unpublished", product: func(p *matching.ProductView) { p.Published = false }, fail: []string{"published"}},
		{name: "inactive institution", product: func(p *matching.ProductView) { p.InstitutionID = "SUSPENDED" }, fail: []string{"institution"}},
		{name: "unknown institution", product: func(p *matching.ProductView) { p.InstitutionID = "NOBODY" }, fail: []string{"institution"}},

		{name: "wanted category", demand: func(d *matching.DemandView) { d.Categories = []catalogv1.ProductCategory{linked, pledge} }},
		{name: "other category wanted", demand: func(d *matching.DemandView) { d.Categories = []catalogv1.ProductCategory{linked} }, fail: []string{"category"}},
		{name: "kind not served", demand: func(d *matching.DemandView) { d.Kind = hedging }, fail: []string{"demand_kind"}},
		{name: "second kind served", product: func(p *matching.ProductView) {
			p.DemandKinds = []catalogv1.DemandKind{hedging, financing}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, d, prices := baseProduct(), baseDemand(), defaultPrices
			if tt.product != nil {
				tt.product(&p)
			}
			if tt.demand != nil {
				tt.demand(&d)
			}
			if tt.prices != nil {
				prices = *tt.prices
			}
			e := newEngine(t, prices, p)
			e.UpsertInstitution(matching.InstitutionView{ID: "SUSPENDED", Active: false, ResponseScore: 0.9})

			x, ok := e.Explain(d, p.ID)
			if !ok {
				t.Fatal("Explain: product unknown")
			}
			if diff := cmp.Diff(tt.fail, failing(x.Checks)); diff != "" {
				t.Errorf("failing checks (-want +got):\n%s\nchecks: %+v", diff, x.Checks)
			}
			want := tt.fail == nil
			if x.Eligible != want {
				t.Errorf("Explain Eligible = %v, want %v", x.Eligible, want)
			}
			if len(x.Checks) != 9 {
				t.Errorf("Explain lists %d checks, want all 9: %+v", len(x.Checks), x.Checks)
			}
			if c, ok := e.Eligible(d, p.ID); ok != want || c.ProductID != p.ID {
				t.Errorf("Eligible = %v (%q), want %v", ok, c.ProductID, want)
			}
			got := e.Rank(d, 0, nil)
			if ranked := len(got) == 1; ranked != want {
				t.Errorf("Rank returned %d candidates, want eligible=%v", len(got), want)
			}
		})
	}
}

// TestEngineExplainNonMatching: a product that fails several constraints
// lists each, with the values compared.
func TestEngineExplainNonMatching(t *testing.T) {
	p := baseProduct()
	p.Sectors = []catalogv1.Sector{steel}
	p.Regions = []string{"430000"}
	e := newEngine(t, defaultPrices, p)
	d := baseDemand()
	d.AmountYuan, d.TermMonths, d.CEATonnes = 20_000_000, 48, 100

	x, ok := e.Explain(d, "P1")
	if !ok || x.Eligible {
		t.Fatalf("Explain = %v, eligible %v; want known, not eligible", ok, x.Eligible)
	}
	want := map[string][]string{
		"amount":     {"¥20,000,000", "above", "¥10,000,000"},
		"term":       {"48 months", "6..36"},
		"sector":     {"POWER", "STEEL"},
		"region":     {"420106", "430000"},
		"collateral": {"CEA 100 t", "¥80/t", "60.00%", "¥4,800", "short", "¥20,000,000", "needs 416,667 t"},
	}
	for _, c := range x.Checks {
		words, failing := want[c.Name]
		if c.OK == failing {
			t.Errorf("check %s OK=%v, want %v (%s)", c.Name, c.OK, !failing, c.Detail)
		}
		for _, w := range words {
			if !strings.Contains(c.Detail, w) {
				t.Errorf("check %s detail %q lacks %q", c.Name, c.Detail, w)
			}
		}
	}
	if len(x.Parts) != 4 || x.Score <= 0 || x.Score > 1 {
		t.Errorf("parts %d, score %v; want 4 parts and a score in (0,1]", len(x.Parts), x.Score)
	}
	if _, ok := e.Explain(d, "NOPE"); ok {
		t.Error("Explain of an unknown product answered ok")
	}
	if _, ok := e.Eligible(d, "NOPE"); ok {
		t.Error("Eligible of an unknown product answered ok")
	}
}

func ranked(cs []matching.Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ProductID
	}
	return out
}

// TestEngineScoreOrder: each score part orders candidates the way it says,
// the reasons add up to the score, and ties go to the smaller ID.
func TestEngineScoreOrder(t *testing.T) {
	withID := func(id string, f func(*matching.ProductView)) matching.ProductView {
		p := baseProduct()
		p.ID = id
		f(&p)
		return p
	}
	t.Run("price", func(t *testing.T) {
		e := newEngine(t, defaultPrices,
			withID("dear", func(p *matching.ProductView) { p.RateMinBps, p.RateMaxBps = 800, 900 }),
			withID("cheap", func(p *matching.ProductView) { p.RateMinBps, p.RateMaxBps = 300, 350 }),
			withID("mid", func(p *matching.ProductView) { p.RateMinBps, p.RateMaxBps = 500, 600 }))
		if diff := cmp.Diff([]string{"cheap", "mid", "dear"}, ranked(e.Rank(baseDemand(), 0, nil))); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("fit", func(t *testing.T) {
		// Demand ¥5,000,000 for 12 months: centred in 2.5m..10m and 6..18.
		e := newEngine(t, defaultPrices,
			withID("edge", func(p *matching.ProductView) { p.AmountMin, p.AmountMax = 5_000_000, 50_000_000 }),
			withID("centred", func(p *matching.ProductView) {
				p.AmountMin, p.AmountMax, p.TermMin, p.TermMax = 2_500_000, 10_000_000, 6, 18
			}))
		if diff := cmp.Diff([]string{"centred", "edge"}, ranked(e.Rank(baseDemand(), 0, nil))); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("response and closeness", func(t *testing.T) {
		e := newEngine(t, defaultPrices,
			withID("slow", func(p *matching.ProductView) { p.InstitutionID = "SLOW" }),
			withID("far", func(p *matching.ProductView) { p.InstitutionID = "FAR" }),
			withID("near", func(p *matching.ProductView) { p.InstitutionID = "NEAR" }),
			withID("same", func(p *matching.ProductView) {}))
		e.UpsertInstitution(matching.InstitutionView{ID: "SLOW", Active: true, Zone: "FINANCE_AXIS", ResponseScore: 0.1})
		e.UpsertInstitution(matching.InstitutionView{ID: "FAR", Active: true, Zone: "OUTSIDE_DISTRICT", ResponseScore: 0.8})
		e.UpsertInstitution(matching.InstitutionView{ID: "NEAR", Active: true, Zone: "ZONE_RIVERSIDE_BELT", ResponseScore: 0.8})
		got := e.Rank(baseDemand(), 0, nil)
		if diff := cmp.Diff([]string{"same", "near", "far", "slow"}, ranked(got)); diff != "" {
			t.Error(diff)
		}
		close := map[string]float64{}
		for _, c := range got {
			close[c.ProductID] = c.Parts[3].Value
			sum := 0.0
			for _, p := range c.Parts {
				sum += p.Contribution
				if p.Contribution != p.Weight*p.Value {
					t.Errorf("%s part %s: contribution %v ≠ %v × %v", c.ProductID, p.Name, p.Contribution, p.Weight, p.Value)
				}
			}
			if sum != c.Score {
				t.Errorf("%s: parts sum to %v, score %v", c.ProductID, sum, c.Score)
			}
		}
		if diff := cmp.Diff(map[string]float64{"same": 1, "near": 0.5, "far": 0, "slow": 1}, close); diff != "" {
			t.Errorf("closeness (-want +got):\n%s", diff)
		}
	})
	t.Run("ties by id, same order every time", func(t *testing.T) {
		var ps []matching.ProductView
		for _, id := range []string{"c", "a", "e", "b", "d"} {
			ps = append(ps, withID(id, func(*matching.ProductView) {}))
		}
		e := newEngine(t, defaultPrices, ps...)
		first := ranked(e.Rank(baseDemand(), 3, nil))
		if diff := cmp.Diff([]string{"a", "b", "c"}, first); diff != "" {
			t.Error(diff)
		}
		for range 10 {
			if diff := cmp.Diff(first, ranked(e.Rank(baseDemand(), 3, nil))); diff != "" {
				t.Fatal(diff)
			}
		}
	})
	t.Run("top k", func(t *testing.T) {
		var ps []matching.ProductView
		for i := range 8 {
			ps = append(ps, withID(fmt.Sprintf("p%d", i), func(p *matching.ProductView) { p.RateMinBps = int32(300 + i) }))
		}
		e := matching.NewEngine(matching.Config{TopK: 3})
		e.UpsertInstitution(matching.InstitutionView{ID: "BANK", Active: true})
		e.SetPrices(defaultPrices)
		for _, p := range ps {
			e.UpsertProduct(p)
		}
		if diff := cmp.Diff([]string{"p0", "p1", "p2"}, ranked(e.Rank(baseDemand(), 0, nil))); diff != "" {
			t.Error(diff)
		}
		if got := len(e.Rank(baseDemand(), 20, nil)); got != 8 {
			t.Errorf("Rank(k=20) returned %d, want all 8", got)
		}
	})
}

func TestEngineExclude(t *testing.T) {
	var ps []matching.ProductView
	for _, id := range []string{"a", "b", "c", "d"} {
		p := baseProduct()
		p.ID = id
		ps = append(ps, p)
	}
	e := newEngine(t, defaultPrices, ps...)
	got := e.Rank(baseDemand(), 2, func(id string) bool { return id == "a" || id == "c" })
	if diff := cmp.Diff([]string{"b", "d"}, ranked(got)); diff != "" {
		t.Error(diff)
	}
}

func TestEngineVersionsAndRemoval(t *testing.T) {
	e := newEngine(t, defaultPrices, baseProduct())
	d := baseDemand()

	older := baseProduct()
	older.Version, older.Published = 0, false
	e.UpsertProduct(older)
	if got := len(e.Rank(d, 0, nil)); got != 1 {
		t.Fatalf("an older version replaced the product: Rank returned %d", got)
	}
	paused := baseProduct()
	paused.Version, paused.Published = 2, false
	e.UpsertProduct(paused)
	if got := len(e.Rank(d, 0, nil)); got != 0 {
		t.Fatalf("a newer version did not replace the product: Rank returned %d", got)
	}
	republished := baseProduct()
	republished.Version, republished.AmountMin = 3, 6_000_000
	e.UpsertProduct(republished)
	if x, _ := e.Explain(d, "P1"); !slices.Equal(failing(x.Checks), []string{"amount"}) {
		t.Fatalf("after version 3, failing %v, want [amount]", failing(x.Checks))
	}
	e.RemoveProduct("P1")
	if _, ok := e.Explain(d, "P1"); ok || e.ProductsLen() != 0 {
		t.Fatalf("removed product still known (%d held)", e.ProductsLen())
	}
	e.RemoveProduct("P1") // twice: no-op
}

func TestEngineInstitutionChanges(t *testing.T) {
	e := newEngine(t, defaultPrices, baseProduct())
	d := baseDemand()
	e.UpsertInstitution(matching.InstitutionView{ID: "BANK", Active: false})
	if got := len(e.Rank(d, 0, nil)); got != 0 {
		t.Fatalf("suspended institution's product ranked")
	}
	e.UpsertInstitution(matching.InstitutionView{ID: "BANK", Active: true, ResponseScore: 0.3})
	got := e.Rank(d, 0, nil)
	if len(got) != 1 || got[0].Parts[2].Value != 0.3 {
		t.Fatalf("reinstated: %+v", got)
	}
}

func TestEngineWeights(t *testing.T) {
	if got := matching.NewEngine(matching.Config{}).Weights(); got != matching.DefaultWeights {
		t.Errorf("default weights %+v", got)
	}
	got := matching.NewEngine(matching.Config{Weights: matching.Weights{Price: 2, Fit: 2, Response: -1, Closeness: math.NaN()}}).Weights()
	if got != (matching.Weights{Price: 0.5, Fit: 0.5}) {
		t.Errorf("normalised weights %+v", got)
	}
}

// bruteForce is the top k by testing every product through Explain.
func bruteForce(e *matching.Engine, d matching.DemandView, ids []string, k int) []scored {
	var all []scored
	for _, id := range ids {
		if x, ok := e.Explain(d, id); ok && x.Eligible {
			all = append(all, scored{x.ProductID, x.Score})
		}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return all[:min(k, len(all))]
}

type scored struct {
	ID    string
	Score float64
}

func checkAgrees(t *testing.T, e *matching.Engine, d matching.DemandView, ids []string, k int) {
	t.Helper()
	var got []scored
	for _, c := range e.Rank(d, k, nil) {
		got = append(got, scored{c.ProductID, c.Score})
		if f := failing(c.Checks); len(f) != 0 {
			t.Errorf("demand %s: ranked %s fails %v", d.ID, c.ProductID, f)
		}
	}
	if diff := cmp.Diff(bruteForce(e, d, ids, k), got); diff != "" {
		t.Fatalf("demand %+v: Rank disagrees with Explain (-explain +rank):\n%s", d, diff)
	}
}

// TestEngineRankAgreesWithExplain: over a churned synthetic district,
// Rank's fast scan returns exactly the top k that testing every product
// through Explain gives, with the same scores.
func TestEngineRankAgreesWithExplain(t *testing.T) {
	const seed, n, insts, k = 7, 2_000, 60, 8
	e := matching.NewEngine(matching.Config{})
	benchpg.Load(e, seed, n, insts)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = benchpg.ProductID(i)
	}
	// Churn: re-version a third (half of them unpublished, all with another
	// product's terms), remove a tenth, add half of those back, flip a
	// tenth of the institutions.
	for i := 0; i < n; i += 3 {
		p := benchpg.Product(seed, (i*7)%n, insts)
		p.ID, p.Version = benchpg.ProductID(i), 2
		p.Published = i%2 == 0
		e.UpsertProduct(p)
	}
	for i := 0; i < n; i += 10 {
		e.RemoveProduct(benchpg.ProductID(i))
	}
	for i := 0; i < n; i += 20 {
		e.UpsertProduct(benchpg.Product(seed, i, insts))
	}
	for i := range insts / 10 {
		in := benchpg.Institution(seed, i)
		in.Active = !in.Active
		e.UpsertInstitution(in)
	}
	for i := range 100 {
		checkAgrees(t, e, benchpg.Demand(seed, i), ids, k)
	}
}

// TestEngineCompaction crowds one bucket (one kind, category and amount
// class) past its tail and dead-entry limits, with slots freed and reused,
// and checks Rank against Explain after each round.
func TestEngineCompaction(t *testing.T) {
	const n, k = 1_500, 6
	e := newEngine(t, defaultPrices)
	ids := make([]string, n)
	product := func(i, v int) matching.ProductView {
		p := baseProduct()
		p.ID, p.Version = fmt.Sprintf("C%04d", i), int64(v)
		p.AmountMin = int64(1_000_000 + (i*7919+v*104729)%7_000_000)
		p.AmountMax = int64(9_000_000 + (i*31+v)%7_000_000) // one amount class: [2^23, 2^24)
		p.RateMinBps = int32(300 + (i*13+v)%200)
		p.TermMin, p.TermMax = int32(1+(i+v)%12), int32(12+(i*3+v)%36)
		p.Published = (i+v)%9 != 0
		return p
	}
	for i := range n {
		ids[i] = fmt.Sprintf("C%04d", i)
		e.UpsertProduct(product(i, 1))
	}
	demand := func(j int) matching.DemandView {
		d := baseDemand()
		d.AmountYuan = int64(500_000 + j*611_111%9_000_000)
		d.TermMonths = int32(j % 40)
		return d
	}
	for round := 2; round < 6; round++ {
		for i := range n {
			switch {
			case (i+round)%5 == 0:
				e.RemoveProduct(ids[i])
			case (i+round)%3 == 0:
				e.UpsertProduct(product(i, round))
			case (i+round)%5 == 1:
				e.UpsertProduct(product(i, round)) // back after a removal, or a new version
			}
		}
		for j := range 20 {
			checkAgrees(t, e, demand(round*100+j), ids, k)
		}
	}
}

// TestEngineConcurrent ranks while products, institutions and prices
// change; run under -race.
func TestEngineConcurrent(t *testing.T) {
	const seed, n, insts = 3, 3_000, 40
	e := matching.NewEngine(matching.Config{})
	benchpg.Load(e, seed, n, insts)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 300 {
				d := benchpg.Demand(seed, w*1000+i)
				cs := e.Rank(d, 0, func(id string) bool { return strings.HasSuffix(id, "7") })
				for _, c := range cs {
					if strings.HasSuffix(c.ProductID, "7") {
						t.Errorf("excluded %s ranked", c.ProductID)
					}
				}
				if len(cs) > 0 {
					e.Explain(d, cs[0].ProductID)
					e.Eligible(d, cs[0].ProductID)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 2_000 {
			p := benchpg.Product(seed, (i*13)%n, insts)
			p.Version = int64(2 + i)
			e.UpsertProduct(p)
			if i%7 == 0 {
				e.RemoveProduct(benchpg.ProductID((i * 31) % n))
			}
			if i%50 == 0 {
				in := benchpg.Institution(seed, i%insts)
				in.Active = i%100 != 0
				e.UpsertInstitution(in)
				e.SetPrices(matching.Prices{CEA: int64(60 + i%40), CCER: 50})
			}
			e.ProductsLen()
		}
	})
	wg.Wait()
}
