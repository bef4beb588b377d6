package matching

// The matching engine: an in-memory index of products that ranks one demand
// against all of them in well under a millisecond. It knows nothing of
// storage, events or the match lifecycle; the service feeds it products,
// institutions and reference prices and asks it to Rank, Explain or check
// one pair (Eligible).
//
// # Index
//
// Published products are indexed in buckets keyed by (demand kind, price
// band, category, amount class), the band being the price value's eighth
// and the class AmountMax's bit length: a product serving two kinds sits in
// two buckets. A rank walks the bands best price first and stops as soon as
// a band's best possible score cannot beat the k-th held. A bucket holds compact,
// pointer-free entries (88 bytes) carrying everything the hard constraints
// and the score need, sorted by (AmountMin, slot). A rank visits only the
// buckets of the demand's kind and wanted categories whose class is at least
// the demand amount's (smaller maxima cannot reach it), and in each only the
// prefix whose AmountMin ≤ the amount (a binary search): what it reads is
// little more than the products the amount admits. It tests the remaining
// constraints inline: no map look-ups, no strings, no allocation per
// product. Eligible products go through a bounded heap of K; reasons
// (Checks, Parts) are built for those K only.
//
// Writes stay cheap without re-sorting on every change: a new or changed
// product is appended to its buckets' small unsorted tail (scanned in full)
// and its old entries are marked dead; a bucket is merged back into one
// sorted run when its tail or its dead entries grow past a fraction of it.
// Institutions live in a small table the entries index, so suspending or
// reinstating one, or changing its response record, touches no entry.
//
// One RWMutex guards it all: Rank, Explain and Eligible read in parallel;
// writers (catalog and registry events, price changes) are rare.
//
// # Score
//
// Each part is a value in [0,1]; Score = Σ weight × value with the weights
// normalised to sum to 1 (defaults: price 0.4, fit 0.3, response 0.2,
// closeness 0.1). Ties go to the smaller product ID.
//
//   - price: a rate range's midpoint on a linear band from 1.00 % (1) to
//     15.00 % (0) a year; a fee on a logarithmic band from ¥1,000 (1) to
//     ¥1,000,000 (0); neither given (rate 0–0 and fee 0): 0.5.
//   - fit: how centred the demand sits in the product's ranges: 1 in the
//     middle, 0 at either end (amount on a log scale, since ranges span
//     orders of magnitude; term linear); the mean of the two when the term
//     applies, else the amount's alone; a one-point range fits 1.
//   - response: the institution's response record (InstitutionView).
//   - closeness: same district zone 1, both in the district (different
//     zones) 0.5, else 0. OUTSIDE_DISTRICT and "" are not in the district,
//     so two parties outside it are not "close".

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
)

// ProductView is what the engine knows of a published-or-not product.
type ProductView struct {
	ID, InstitutionID string
	Category          catalogv1.ProductCategory
	DemandKinds       []catalogv1.DemandKind
	AmountMin         int64 // yuan
	AmountMax         int64 // yuan
	TermMin, TermMax  int32 // months; both 0 = no term constraint
	RateMinBps        int32 // 0,0 when priced by fee
	RateMaxBps        int32
	FeeYuan           int64
	Sectors           []catalogv1.Sector    // empty = all
	Regions           []string              // empty = all; GB/T 2260, province/city codes cover what lies in them
	CollateralAsset   catalogv1.CarbonAsset // UNSPECIFIED = none required
	PledgeRateBps     int32
	Published         bool
	Version           int64
}

// InstitutionView is what the engine knows of an institution.
type InstitutionView struct {
	ID            string
	Active        bool
	Zone          string  // registry zone name, e.g. "FINANCE_AXIS" ("ZONE_" prefix accepted)
	ResponseScore float64 // 0..1, the institution's response record; 0.5 when unknown
	// ResponseDetail words the record for the match's reasons, e.g.
	// "answered 12 of 14 proposals before the deadline in the last 180 days".
	ResponseDetail string
}

// DemandView is the part of a demand matching ranks on.
type DemandView struct {
	ID         string
	Kind       catalogv1.DemandKind
	Categories []catalogv1.ProductCategory // wanted; empty = any category serving Kind
	AmountYuan int64
	TermMonths int32 // 0 = none
	Sector     catalogv1.Sector
	Region     string // GB/T 2260 code of the enterprise
	Zone       string // the enterprise's district zone, may be ""
	CEATonnes  int64
	CCERTonnes int64
}

// Prices are the reference carbon prices collateral is valued at, whole
// yuan per tonne; 0 = not set.
type Prices struct{ CEA, CCER int64 }

// Config tunes the engine.
type Config struct {
	TopK    int // how many Rank returns when asked for k <= 0; default 5
	Weights Weights
}

// Weights weigh the score parts. All zero (or no positive weight) means the
// defaults: Price 0.4, Fit 0.3, Response 0.2, Closeness 0.1. Negative or
// non-finite weights count as 0; the rest are normalised to sum to 1, so a
// Score is always in [0,1].
type Weights struct{ Price, Fit, Response, Closeness float64 }

// DefaultTopK and DefaultWeights are used where Config leaves them zero.
const DefaultTopK = 5

// DefaultWeights are the score weights when Config gives none.
var DefaultWeights = Weights{Price: 0.4, Fit: 0.3, Response: 0.2, Closeness: 0.1}

// Check is one hard constraint with the values compared.
type Check struct {
	Name   string // published, institution, category, demand_kind, amount, term, sector, region, collateral
	OK     bool
	Detail string
}

// ScorePart is one part of a score: Contribution = Weight × Value.
type ScorePart struct {
	Name                        string // price, fit, response, closeness
	Weight, Value, Contribution float64
	Detail                      string
}

// Candidate is an eligible product with its reasons.
type Candidate struct {
	ProductID, InstitutionID string
	Score                    float64
	Checks                   []Check
	Parts                    []ScorePart
}

// Explanation says whether a product is eligible for a demand and why.
// Checks lists every constraint (failing ones OK=false); Score and Parts
// are what the product scores (or would, were it eligible).
type Explanation struct {
	ProductID string
	// Published: the product is PUBLISHED (public); otherwise only staff
	// and its institution may see its terms.
	Published bool
	Eligible  bool
	Score     float64
	Checks    []Check
	Parts     []ScorePart
}

// Score bands (see the package notes above).
const (
	rateBestBps  = 100   // 1.00 % a year scores 1
	rateWorstBps = 1500  // 15.00 % a year scores 0
	feeBestYuan  = 1_000 // scores 1
	feeWorstYuan = 1_000_000
	bpsPerUnit   = 10_000 // pledge rates are bps of the collateral's value
	neutralPrice = 0.5
)

// Engine ranks demands against products. Safe for concurrent use.
type Engine struct {
	topK int
	w    Weights // normalised

	mu      sync.RWMutex
	prices  Prices
	ids     map[string]int32 // product id → slot
	slots   []slot
	free    []int32
	instIDs map[string]int32 // institution id → inst
	insts   []instState
	nCats   int
	buckets []bucket // see bucketIndex
	maxResp float64  // the best response record of an active institution

	// changes counts the changes that can make a product newly eligible
	// (a published product upserted, an active institution's state, the
	// reference prices): see Changes.
	changes atomic.Uint64
}

// slot is one product held, published or not.
type slot struct {
	p       ProductView // a private copy
	regions []uint32    // parsed p.Regions
	inst    int32
	price   float64 // price score, precomputed
	live    bool
}

type instState struct {
	known    bool
	active   bool
	zone     uint8
	response float64
	detail   string // ResponseDetail
}

// entry is a product in one bucket: no pointers, so the GC never scans the
// index, and everything a rank tests sits in one cache line or two.
type entry struct {
	amountMin, amountMax int64
	// lnMin and lnMax are the logarithms of amountMin and amountMax (0
	// when amountMin is not positive) for fit: taken once here rather than
	// in every rank that scores the entry.
	lnMin, lnMax     float64
	price            float64
	sectors          uint64 // bit s for sector s; bit 63 set when restricted; 0 = all
	slot             int32
	inst             int32
	pledgeBps        int32
	termMin, termMax int32
	regions          [inlineRegions]uint32 // the first nreg regions, when nreg ≤ inlineRegions
	nreg             uint8                 // 0 all regions; more than inlineRegions: see slot.regions
	asset            uint8                 // 0 none, 1 CEA, 2 CCER, 3 unknown (never sufficient)
	dead             bool
}

// bucket holds one (kind, category)'s entries: sorted by (amountMin, slot),
// plus an unsorted tail of recent writes.
type bucket struct {
	sorted []entry
	tail   []entry
	dead   int // dead entries in sorted
}

const (
	restrictedSectors = uint64(1) << 63
	amountClasses     = 64 // bits.Len64 of AmountMax
	priceBands        = 8  // price value in eighths, best visited first
	assetUnknown      = 3
	minTail           = 64
	inlineRegions     = 3 // most products name at most three regions
)

// NewEngine returns an empty engine.
func NewEngine(cfg Config) *Engine {
	nKinds := maxEnum(catalogv1.DemandKind_name) + 1
	nCats := maxEnum(catalogv1.ProductCategory_name) + 1
	e := &Engine{
		topK:    cfg.TopK,
		w:       normalise(cfg.Weights),
		ids:     make(map[string]int32),
		instIDs: make(map[string]int32),
		nCats:   nCats,
		buckets: make([]bucket, nKinds*priceBands*nCats*amountClasses),
	}
	if e.topK <= 0 {
		e.topK = DefaultTopK
	}
	return e
}

func maxEnum(names map[int32]string) int {
	m := 0
	for v := range names {
		m = max(m, int(v))
	}
	return m
}

func normalise(w Weights) Weights {
	pos := func(f float64) float64 {
		if f > 0 && !math.IsInf(f, 0) {
			return f
		}
		return 0
	}
	w = Weights{pos(w.Price), pos(w.Fit), pos(w.Response), pos(w.Closeness)}
	sum := w.Price + w.Fit + w.Response + w.Closeness
	if sum <= 0 {
		return DefaultWeights
	}
	return Weights{w.Price / sum, w.Fit / sum, w.Response / sum, w.Closeness / sum}
}

// Weights reports the normalised weights the engine scores with.
func (e *Engine) Weights() Weights { return e.w }

// ProductsLen reports how many products the engine holds, published or not.
func (e *Engine) ProductsLen() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.ids)
}

// SetPrices sets the reference prices collateral is valued at.
func (e *Engine) SetPrices(p Prices) {
	e.mu.Lock()
	e.prices = p
	e.changes.Add(1)
	e.mu.Unlock()
}

// UpsertInstitution records an institution's state. Products of an
// institution the engine has never heard of count as not active.
func (e *Engine) UpsertInstitution(in InstitutionView) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := e.instLocked(in.ID)
	r := in.ResponseScore
	if math.IsNaN(r) {
		r = 0.5
	}
	e.insts[i] = instState{known: true, active: in.Active, zone: zoneCode(in.Zone), response: min(max(r, 0), 1), detail: in.ResponseDetail}
	e.updateMaxRespLocked()
	if in.Active {
		e.changes.Add(1)
	}
}

// SetResponse changes an institution's response record alone; like a state
// change, it touches no product entry.
func (e *Engine) SetResponse(id string, score float64, detail string) {
	if math.IsNaN(score) {
		score = 0.5
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	i := e.instLocked(id)
	e.insts[i].response = min(max(score, 0), 1)
	e.insts[i].detail = detail
	e.updateMaxRespLocked()
}

func (e *Engine) updateMaxRespLocked() {
	e.maxResp = 0
	for _, in := range e.insts {
		if in.active {
			e.maxResp = max(e.maxResp, in.response)
		}
	}
}

func (e *Engine) instLocked(id string) int32 {
	i, ok := e.instIDs[id]
	if !ok {
		i = int32(len(e.insts))
		e.insts = append(e.insts, instState{response: 0.5})
		e.instIDs[id] = i
	}
	return i
}

// UpsertProduct adds or replaces a product by ID. A product older (lower
// Version) than the one held is ignored; the same version replaces it.
func (e *Engine) UpsertProduct(p ProductView) {
	p.DemandKinds = slices.Clone(p.DemandKinds)
	p.Sectors = slices.Clone(p.Sectors)
	p.Regions = slices.Clone(p.Regions)
	s := slot{p: p, price: priceValue(p), live: true}
	for _, r := range p.Regions {
		s.regions = append(s.regions, parseRegion(r))
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	i, held := e.ids[p.ID]
	if held {
		if p.Version < e.slots[i].p.Version {
			return
		}
		e.unindexLocked(i)
	} else {
		i = e.allocLocked()
		e.ids[p.ID] = i
	}
	s.inst = e.instLocked(p.InstitutionID)
	e.slots[i] = s
	e.indexLocked(i)
	if p.Published {
		e.changes.Add(1)
	}
}

// Changes is a counter of the index's changes that can make a product
// newly eligible for a demand. A caller that ranked a demand and then
// stored it compares the count from before the rank with the count after
// the store: when it moved, a product may have arrived in between, unseen
// by the rank and by that product's reverse matching alike.
func (e *Engine) Changes() uint64 { return e.changes.Load() }

// RemoveProduct forgets a product (its version too).
func (e *Engine) RemoveProduct(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.ids[id]
	if !ok {
		return
	}
	e.unindexLocked(i)
	delete(e.ids, id)
	e.slots[i] = slot{}
	e.free = append(e.free, i)
}

func (e *Engine) allocLocked() int32 {
	if n := len(e.free); n > 0 {
		i := e.free[n-1]
		e.free = e.free[:n-1]
		return i
	}
	e.slots = append(e.slots, slot{})
	return int32(len(e.slots) - 1)
}

// bucketsOf calls fn with each bucket the product at slot i belongs in.
func (e *Engine) bucketsOf(i int32, fn func(b *bucket)) {
	p := &e.slots[i].p
	if !p.Published || !e.validCategory(p.Category) {
		return
	}
	class := amountClass(p.AmountMax)
	var seen uint64
	for _, k := range p.DemandKinds {
		if !e.validKind(k) || seen&(1<<k) != 0 {
			continue
		}
		seen |= 1 << k
		fn(&e.buckets[e.bucketIndex(k, priceBand(e.slots[i].price), p.Category, class)])
	}
}

func (e *Engine) validCategory(c catalogv1.ProductCategory) bool {
	return c > 0 && int(c) < e.nCats && c < 64
}

func (e *Engine) validKind(k catalogv1.DemandKind) bool {
	return k > 0 && e.bucketIndex(k+1, 0, 0, 0) <= len(e.buckets) && k < 64
}

// bucketIndex lays buckets out kind, price band, category, amount class: a
// rank walks one kind's bands best first, and in each the classes of its
// categories from the demand amount's up.
func (e *Engine) bucketIndex(k catalogv1.DemandKind, band int, c catalogv1.ProductCategory, class int) int {
	return ((int(k)*priceBands+band)*e.nCats+int(c))*amountClasses + class
}

// priceBand is the eighth the price value lies in: band b holds values
// below (b+1)/8 (the top band up to 1), exactly, since ×8 is exact.
func priceBand(v float64) int { return min(max(int(v*priceBands), 0), priceBands-1) }

// amountClass is the bit length of an amount: AmountMax of class c lies in
// [2^(c−1), 2^c), so a demand of class c needs classes ≥ c only, and in
// classes above c every amount maximum is large enough.
func amountClass(a int64) int { return bits.Len64(uint64(max(a, 0))) }

func (e *Engine) indexLocked(i int32) {
	en := e.entryOf(i)
	e.bucketsOf(i, func(b *bucket) {
		b.tail = append(b.tail, en)
		if len(b.tail) > max(minTail, len(b.sorted)/32) {
			b.compact()
		}
	})
}

func (e *Engine) unindexLocked(i int32) {
	amin := e.slots[i].p.AmountMin
	e.bucketsOf(i, func(b *bucket) {
		for j := range b.tail {
			if b.tail[j].slot == i {
				b.tail[j] = b.tail[len(b.tail)-1]
				b.tail = b.tail[:len(b.tail)-1]
				return
			}
		}
		j, _ := slices.BinarySearchFunc(b.sorted, i, func(en entry, _ int32) int {
			if en.amountMin < amin || en.amountMin == amin && en.slot < i {
				return -1
			}
			return 1
		})
		for ; j < len(b.sorted) && b.sorted[j].amountMin == amin && b.sorted[j].slot == i; j++ {
			if !b.sorted[j].dead { // a freed slot's dead entry may precede
				b.sorted[j].dead = true
				b.dead++
				break
			}
		}
		if b.dead > max(minTail, len(b.sorted)/8) {
			b.compact()
		}
	})
}

// compact merges the tail into the sorted run and drops dead entries.
func (b *bucket) compact() {
	slices.SortFunc(b.tail, cmpEntry)
	out := make([]entry, 0, len(b.sorted)-b.dead+len(b.tail))
	t := 0
	for j := range b.sorted {
		if b.sorted[j].dead {
			continue
		}
		for t < len(b.tail) && cmpEntry(b.tail[t], b.sorted[j]) < 0 {
			out = append(out, b.tail[t])
			t++
		}
		out = append(out, b.sorted[j])
	}
	out = append(out, b.tail[t:]...)
	b.sorted, b.tail, b.dead = out, b.tail[:0], 0
}

func cmpEntry(a, b entry) int {
	switch {
	case a.amountMin != b.amountMin:
		return cmpInt(a.amountMin, b.amountMin)
	default:
		return cmpInt(a.slot, b.slot)
	}
}

func cmpInt[T int32 | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// entryOf builds the compact entry of the product at slot i.
func (e *Engine) entryOf(i int32) entry {
	s := &e.slots[i]
	p := &s.p
	en := entry{
		amountMin: p.AmountMin, amountMax: p.AmountMax,
		price: s.price, slot: i, inst: s.inst, pledgeBps: p.PledgeRateBps,
		termMin: p.TermMin, termMax: p.TermMax,
	}
	if p.AmountMin > 0 {
		en.lnMin, en.lnMax = math.Log(float64(p.AmountMin)), math.Log(float64(p.AmountMax))
	}
	if len(p.Sectors) > 0 {
		en.sectors = restrictedSectors
		for _, sec := range p.Sectors {
			en.sectors |= sectorBit(sec)
		}
	}
	en.nreg = uint8(min(len(s.regions), inlineRegions+1))
	copy(en.regions[:], s.regions)
	switch p.CollateralAsset {
	case catalogv1.CarbonAsset_CARBON_ASSET_UNSPECIFIED:
	case catalogv1.CarbonAsset_CARBON_ASSET_CEA, catalogv1.CarbonAsset_CARBON_ASSET_CCER:
		en.asset = uint8(p.CollateralAsset)
	default:
		en.asset = assetUnknown
	}
	return en
}

func sectorBit(s catalogv1.Sector) uint64 {
	if s < 0 || s >= 63 {
		return 0
	}
	return 1 << s
}

// parseRegion reads a six-digit GB/T 2260 code; anything else is 0, which
// covers and is covered by nothing.
func parseRegion(s string) uint32 {
	if len(s) != 6 {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 100000 {
		return 0
	}
	return uint32(n)
}

// regionKeys are the codes that cover region r under GB/T 2260: r itself,
// its city (xxxx00) and its province (xx0000). A product's region code
// covers r exactly when it is one of them, which turns the prefix rule into
// three comparisons. An unparseable r is covered by nothing.
func regionKeys(r uint32) [3]uint32 {
	if r == 0 {
		return [3]uint32{math.MaxUint32, math.MaxUint32, math.MaxUint32}
	}
	return [3]uint32{r, r / 100 * 100, r / 10000 * 10000}
}

var districtZones = map[string]uint8{"FINANCE_AXIS": 1, "RIVERSIDE_BELT": 2, "FINANCE_PARK": 3, "OTHER_WUCHANG": 4}

// zoneCode is 1..4 for the district's zones, 0 for OUTSIDE_DISTRICT,
// unknown or empty.
func zoneCode(z string) uint8 {
	return districtZones[strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(z)), "ZONE_")]
}

func closeness(a, b uint8) float64 {
	switch {
	case a == 0 || b == 0:
		return 0
	case a == b:
		return 1
	}
	return 0.5
}

// priceValue scores a product's price in [0,1], lower price better.
func priceValue(p ProductView) float64 {
	switch {
	case p.RateMinBps != 0 || p.RateMaxBps != 0:
		mid := float64(p.RateMinBps+p.RateMaxBps) / 2
		return clamp01(1 - (mid-rateBestBps)/(rateWorstBps-rateBestBps))
	case p.FeeYuan > 0:
		return clamp01(1 - (math.Log(float64(p.FeeYuan))-math.Log(feeBestYuan))/(math.Log(feeWorstYuan)-math.Log(feeBestYuan)))
	}
	return neutralPrice
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }

// centred is 1 for x at the middle of [0,1], falling to 0 at either end.
func centred(x float64) float64 { return clamp01(1 - math.Abs(2*x-1)) }

// query is a demand prepared for scanning.
type query struct {
	d         DemandView
	lnA       float64
	sectorBit uint64
	keys      [3]uint32 // regionKeys of the demand's region
	zone      uint8
	minRate   [4]int64 // least pledge rate (bps) that covers the amount, by asset
}

func (e *Engine) prepare(d DemandView) query {
	q := query{d: d, sectorBit: sectorBit(d.Sector), keys: regionKeys(parseRegion(d.Region)), zone: zoneCode(d.Zone)}
	if d.AmountYuan > 0 {
		q.lnA = math.Log(float64(d.AmountYuan))
	}
	q.minRate[catalogv1.CarbonAsset_CARBON_ASSET_CEA] = minPledgeRate(d.CEATonnes, e.prices.CEA, d.AmountYuan)
	q.minRate[catalogv1.CarbonAsset_CARBON_ASSET_CCER] = minPledgeRate(d.CCERTonnes, e.prices.CCER, d.AmountYuan)
	q.minRate[assetUnknown] = math.MaxInt64
	return q
}

func (q *query) inRegion(area uint32) bool {
	return area == q.keys[0] || area == q.keys[1] || area == q.keys[2]
}

// pledgeCovers reports whether tonnes × price × rateBps / 10000 ≥ amount,
// exactly, in 128-bit integers.
func pledgeCovers(tonnes, price int64, rateBps int64, amount int64) bool {
	if amount <= 0 {
		return rateBps >= 0
	}
	if tonnes <= 0 || price <= 0 || rateBps <= 0 {
		return false
	}
	vhi, vlo := bits.Mul64(uint64(tonnes), uint64(price))
	c1, lo := bits.Mul64(vlo, uint64(rateBps))
	h1, h0 := bits.Mul64(vhi, uint64(rateBps))
	hi, carry := bits.Add64(h0, c1, 0)
	if h1 != 0 || carry != 0 {
		return true // ≥ 2^128, beyond any amount × 10000
	}
	nhi, nlo := bits.Mul64(uint64(amount), bpsPerUnit)
	return hi > nhi || hi == nhi && lo >= nlo
}

// minPledgeRate is the least pledge rate (bps) at which the holding covers
// amount; MaxInt64 when none up to 2^31 does.
func minPledgeRate(tonnes, price, amount int64) int64 {
	const top = int64(1) << 31
	if !pledgeCovers(tonnes, price, top, amount) {
		return math.MaxInt64
	}
	lo, hi := int64(0), top // pledgeCovers(hi) holds
	for lo < hi {
		mid := lo + (hi-lo)/2
		if pledgeCovers(tonnes, price, mid, amount) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// fit is the fit part's value.
func fit(q *query, en *entry) float64 {
	af := 1.0
	if en.amountMin > 0 && en.amountMax > en.amountMin {
		af = centred((q.lnA - en.lnMin) / (en.lnMax - en.lnMin))
	}
	t := q.d.TermMonths
	if t == 0 || (en.termMin|en.termMax) == 0 {
		return af
	}
	tf := 1.0
	if en.termMax > en.termMin {
		tf = centred(float64(t-en.termMin) / float64(en.termMax-en.termMin))
	}
	return (af + tf) / 2
}

func (e *Engine) score(q *query, en *entry) float64 {
	in := &e.insts[en.inst]
	// Each product is rounded on its own (float64(...)): no fused
	// multiply-add, so parts() sums to the very same bits.
	return float64(e.w.Price*en.price) + float64(e.w.Fit*fit(q, en)) +
		float64(e.w.Response*in.response) + float64(e.w.Closeness*closeness(in.zone, q.zone))
}

// hit is a scored candidate in the top-k heap.
type hit struct {
	score float64
	slot  int32
}

// worse reports whether a ranks below b: lower score, or the same score and
// a larger product ID.
func (e *Engine) worse(a, b hit) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return e.slots[a.slot].p.ID > e.slots[b.slot].p.ID
}

// topK is a min-heap of the k best hits: the worst at the root.
type topK struct {
	e *Engine
	k int
	h []hit
}

func (t *topK) admits(x hit) bool { return len(t.h) < t.k || t.e.worse(t.h[0], x) }

func (t *topK) add(x hit) {
	if len(t.h) < t.k {
		t.h = append(t.h, x)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !t.e.worse(t.h[i], t.h[p]) {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	t.h[0] = x
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(t.h) && t.e.worse(t.h[l], t.h[m]) {
			m = l
		}
		if r := l + 1; r < len(t.h) && t.e.worse(t.h[r], t.h[m]) {
			m = r
		}
		if m == i {
			return
		}
		t.h[i], t.h[m] = t.h[m], t.h[i]
		i = m
	}
}

// Rank returns the k best eligible products for d, best first (k <= 0: the
// configured TopK), skipping products exclude reports true for (nil: none).
// exclude is called under the engine's read lock and must not write to the
// engine.
func (e *Engine) Rank(d DemandView, k int, exclude func(productID string) bool) []Candidate {
	if k <= 0 {
		k = e.topK
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.validKind(d.Kind) || d.AmountYuan <= 0 {
		return nil
	}
	q := e.prepare(d)
	t := topK{e: e, k: k, h: make([]hit, 0, min(k, 64))}
	var wanted uint64
	for _, c := range d.Categories {
		if e.validCategory(c) {
			wanted |= 1 << c
		}
	}
	class := amountClass(d.AmountYuan)
	bestClose := 0.0
	if q.zone != 0 {
		bestClose = 1
	}
	for band := priceBands - 1; band >= 0; band-- {
		// Once k are held, a band whose best possible score (its top
		// price, the best fit, the best active institution, the same
		// zone if the demand has one) is below the k-th is skipped, and
		// so are the bands below it.
		ub := float64(e.w.Price*float64(band+1)/priceBands) + e.w.Fit + float64(e.w.Response*e.maxResp) + float64(e.w.Closeness*bestClose)
		if len(t.h) == k && ub < t.h[0].score {
			break
		}
		e.rankBand(&q, &t, band, class, wanted, exclude)
	}
	slices.SortFunc(t.h, func(a, b hit) int {
		switch {
		case e.worse(b, a):
			return -1
		case e.worse(a, b):
			return 1
		}
		return 0
	})
	out := make([]Candidate, len(t.h))
	for i, h := range t.h {
		out[i] = e.candidate(h.slot, e.explainLocked(&q, h.slot))
	}
	return out
}

func (e *Engine) rankBand(q *query, t *topK, band, class int, wanted uint64, exclude func(string) bool) {
	d := &q.d
	for c := 1; c < e.nCats; c++ {
		if wanted != 0 && wanted&(1<<c) == 0 {
			continue
		}
		cat := catalogv1.ProductCategory(c)
		seg := e.buckets[e.bucketIndex(d.Kind, band, cat, class):e.bucketIndex(d.Kind, band, cat+1, 0)]
		for j := range seg {
			b := &seg[j]
			if len(b.sorted) > 0 {
				n, _ := slices.BinarySearchFunc(b.sorted, d.AmountYuan, func(en entry, a int64) int {
					if en.amountMin <= a {
						return -1
					}
					return 1
				})
				e.scan(q, t, b.sorted[:n], exclude)
			}
			if len(b.tail) > 0 {
				e.scan(q, t, b.tail, exclude)
			}
		}
	}
}

// scan offers every eligible entry of es to t. It tests the hard
// constraints but publication and category, which the bucket implies,
// cheapest and most selective first; explainLocked words the same tests.
func (e *Engine) scan(q *query, t *topK, es []entry, exclude func(string) bool) {
	a, term, sbit := q.d.AmountYuan, q.d.TermMonths, q.sectorBit
	for i := range es {
		en := &es[i]
		if en.amountMax < a || en.amountMin > a || en.dead ||
			term != 0 && (en.termMin|en.termMax) != 0 && (term < en.termMin || term > en.termMax) ||
			en.sectors != 0 && en.sectors&sbit == 0 ||
			en.asset != 0 && int64(en.pledgeBps) < q.minRate[en.asset] {
			continue
		}
		if en.nreg != 0 {
			var in bool
			if en.nreg <= inlineRegions {
				for _, r := range en.regions[:en.nreg] {
					in = in || q.inRegion(r)
				}
			} else {
				in = slices.ContainsFunc(e.slots[en.slot].regions, q.inRegion)
			}
			if !in {
				continue
			}
		}
		in := &e.insts[en.inst]
		if !in.active {
			continue
		}
		if len(t.h) == t.k {
			// An upper bound (fit at its best, 1) below the k-th best
			// skips the fit arithmetic; rounding is monotone, so the
			// bound is never below the exact score.
			ub := float64(e.w.Price*en.price) + e.w.Fit + float64(e.w.Response*in.response) + float64(e.w.Closeness*closeness(in.zone, q.zone))
			if ub < t.h[0].score {
				continue
			}
		}
		x := hit{score: e.score(q, en), slot: en.slot}
		if !t.admits(x) || exclude != nil && exclude(e.slots[en.slot].p.ID) {
			continue
		}
		t.add(x)
	}
}

// Explain tests productID against d: every constraint with the values
// compared, and the score. False if the product is unknown.
func (e *Engine) Explain(d DemandView, productID string) (Explanation, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	i, ok := e.ids[productID]
	if !ok {
		return Explanation{ProductID: productID}, false
	}
	q := e.prepare(d)
	return e.explainLocked(&q, i), true
}

// Eligible checks one product against one demand, for matching a product
// that was published or changed against open demands. It reports false if
// the product is unknown or not eligible; the Candidate carries the checks
// (and parts) either way.
func (e *Engine) Eligible(d DemandView, productID string) (Candidate, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	i, ok := e.ids[productID]
	if !ok {
		return Candidate{ProductID: productID}, false
	}
	q := e.prepare(d)
	x := e.explainLocked(&q, i)
	return e.candidate(i, x), x.Eligible
}

func (e *Engine) candidate(i int32, x Explanation) Candidate {
	return Candidate{ProductID: x.ProductID, InstitutionID: e.slots[i].p.InstitutionID, Score: x.Score, Checks: x.Checks, Parts: x.Parts}
}

// explainLocked is the reference path: it tests every constraint from the
// product itself, not its index entries, and words each. Rank's scan must
// agree with it (TestEngineRankAgreesWithExplain).
func (e *Engine) explainLocked(q *query, i int32) Explanation {
	s := &e.slots[i]
	p := &s.p
	d := &q.d
	en := e.entryOf(i)
	in := e.insts[s.inst]
	x := Explanation{ProductID: p.ID, Published: p.Published}
	// The top K are all eligible, so the passing details are built without
	// fmt (they are worded for every proposal made); failing ones use it.
	x.Checks = make([]Check, 0, 9)
	add := func(name string, ok bool, detail string) {
		x.Checks = append(x.Checks, Check{Name: name, OK: ok, Detail: detail})
	}

	if p.Published {
		add("published", true, "product is published")
	} else {
		add("published", false, "product is not published (draft, paused or retired)")
	}
	switch {
	case !in.known:
		add("institution", false, "institution "+p.InstitutionID+" is unknown to matching, so not active")
	case !in.active:
		add("institution", false, "institution "+p.InstitutionID+" is not active")
	default:
		add("institution", true, "institution "+p.InstitutionID+" is active")
	}

	wanted := slices.ContainsFunc(d.Categories, func(c catalogv1.ProductCategory) bool { return e.validCategory(c) })
	switch {
	case !e.validCategory(p.Category):
		add("category", false, "product category "+name(p.Category)+" is not a known category")
	case !wanted:
		add("category", true, "demand wants any category; product is "+name(p.Category))
	case slices.Contains(d.Categories, p.Category):
		add("category", true, "product "+name(p.Category)+" is among wanted "+names(d.Categories))
	default:
		add("category", false, "product "+name(p.Category)+" is not among wanted "+names(d.Categories))
	}
	switch {
	case !e.validKind(d.Kind):
		add("demand_kind", false, "demand kind "+name(d.Kind)+" is not a known kind")
	case slices.Contains(p.DemandKinds, d.Kind):
		add("demand_kind", true, "product serves "+names(p.DemandKinds)+", which includes demand kind "+name(d.Kind))
	default:
		add("demand_kind", false, "product serves "+names(p.DemandKinds)+", not demand kind "+name(d.Kind))
	}

	a := d.AmountYuan
	switch {
	case a < p.AmountMin:
		add("amount", false, "demand "+yuan(a)+" is below product minimum "+yuan(p.AmountMin)+" (range "+yuan(p.AmountMin)+".."+yuan(p.AmountMax)+")")
	case a > p.AmountMax:
		add("amount", false, "demand "+yuan(a)+" is above product maximum "+yuan(p.AmountMax)+" (range "+yuan(p.AmountMin)+".."+yuan(p.AmountMax)+")")
	default:
		add("amount", true, "demand "+yuan(a)+" within product "+yuan(p.AmountMin)+".."+yuan(p.AmountMax))
	}

	t := d.TermMonths
	switch {
	case p.TermMin == 0 && p.TermMax == 0:
		add("term", true, "product has no term constraint (demand "+months(t)+")")
	case t == 0:
		add("term", true, "demand states no term (product "+itoa(p.TermMin)+".."+itoa(p.TermMax)+" months)")
	case t < p.TermMin || t > p.TermMax:
		add("term", false, "demand "+itoa(t)+" months outside product "+itoa(p.TermMin)+".."+itoa(p.TermMax)+" months")
	default:
		add("term", true, "demand "+itoa(t)+" months within product "+itoa(p.TermMin)+".."+itoa(p.TermMax)+" months")
	}

	switch {
	case len(p.Sectors) == 0:
		add("sector", true, "product is open to all sectors (demand "+name(d.Sector)+")")
	case slices.Contains(p.Sectors, d.Sector) && sectorBit(d.Sector) != 0:
		add("sector", true, "demand sector "+name(d.Sector)+" is among eligible "+names(p.Sectors))
	default:
		add("sector", false, "demand sector "+name(d.Sector)+" is not among eligible "+names(p.Sectors))
	}

	switch {
	case len(p.Regions) == 0:
		add("region", true, "product is open to all regions (demand "+orNone(d.Region)+")")
	case slices.ContainsFunc(s.regions, q.inRegion):
		j := slices.IndexFunc(s.regions, q.inRegion)
		add("region", true, "demand region "+orNone(d.Region)+" lies in eligible "+p.Regions[j])
	default:
		add("region", false, "demand region "+orNone(d.Region)+" lies in none of eligible "+strings.Join(p.Regions, ", "))
	}

	x.Checks = append(x.Checks, e.collateralCheck(q, p))

	x.Eligible = true
	for _, c := range x.Checks {
		x.Eligible = x.Eligible && c.OK
	}
	x.Parts, x.Score = e.parts(q, p, &en, in)
	return x
}

func (e *Engine) collateralCheck(q *query, p *ProductView) Check {
	c := Check{Name: "collateral"}
	var tonnes, price int64
	switch p.CollateralAsset {
	case catalogv1.CarbonAsset_CARBON_ASSET_UNSPECIFIED:
		c.OK, c.Detail = true, "product requires no collateral"
		return c
	case catalogv1.CarbonAsset_CARBON_ASSET_CEA:
		tonnes, price = q.d.CEATonnes, e.prices.CEA
	case catalogv1.CarbonAsset_CARBON_ASSET_CCER:
		tonnes, price = q.d.CCERTonnes, e.prices.CCER
	default:
		c.Detail = fmt.Sprintf("product requires unknown collateral asset %s", name(p.CollateralAsset))
		return c
	}
	asset := name(p.CollateralAsset)
	if price <= 0 {
		c.Detail = fmt.Sprintf("no %s reference price is set, so the %s t held cannot be valued", asset, group(tonnes))
		return c
	}
	c.OK = pledgeCovers(tonnes, price, int64(p.PledgeRateBps), q.d.AmountYuan)
	value := new(big.Int).Mul(big.NewInt(max(tonnes, 0)), big.NewInt(price))
	value.Mul(value, big.NewInt(int64(max(p.PledgeRateBps, 0))))
	value.Quo(value, big.NewInt(bpsPerUnit))
	base := fmt.Sprintf("%s %s t × ¥%s/t × pledge rate %s = ¥%s", asset, group(tonnes), group(price), pct(p.PledgeRateBps), groupBig(value))
	if c.OK {
		c.Detail = fmt.Sprintf("%s covers demand %s", base, yuan(q.d.AmountYuan))
		return c
	}
	c.Detail = fmt.Sprintf("%s is short of demand %s", base, yuan(q.d.AmountYuan))
	if p.PledgeRateBps > 0 {
		// tonnes needed = ceil(amount × 10000 / (price × rate))
		need := new(big.Int).Mul(big.NewInt(q.d.AmountYuan), big.NewInt(bpsPerUnit))
		per := new(big.Int).Mul(big.NewInt(price), big.NewInt(int64(p.PledgeRateBps)))
		need.Add(need, per).Sub(need, big.NewInt(1)).Quo(need, per)
		c.Detail += fmt.Sprintf(" (needs %s t)", groupBig(need))
	}
	return c
}

func (e *Engine) parts(q *query, p *ProductView, en *entry, in instState) ([]ScorePart, float64) {
	var priceDetail string
	switch {
	case p.RateMinBps != 0 || p.RateMaxBps != 0:
		priceDetail = fmt.Sprintf("rate %s–%s a year, midpoint on a %s (best) to %s (worst) band", pct(p.RateMinBps), pct(p.RateMaxBps), pct(rateBestBps), pct(rateWorstBps))
	case p.FeeYuan > 0:
		priceDetail = fmt.Sprintf("fee %s on a log band from %s (best) to %s (worst)", yuan(p.FeeYuan), yuan(feeBestYuan), yuan(feeWorstYuan))
	default:
		priceDetail = "no price stated: neutral"
	}
	fitDetail := fmt.Sprintf("amount %s in %s..%s (log scale; centred = 1)", yuan(q.d.AmountYuan), yuan(p.AmountMin), yuan(p.AmountMax))
	if q.d.TermMonths != 0 && (p.TermMin != 0 || p.TermMax != 0) {
		fitDetail += fmt.Sprintf(", term %d in %d..%d months; mean of the two", q.d.TermMonths, p.TermMin, p.TermMax)
	}
	respDetail := fmt.Sprintf("institution %s response record", p.InstitutionID)
	switch {
	case !in.known:
		respDetail += " unknown (neutral)"
	case in.detail != "":
		respDetail += ": " + in.detail
	}
	cl := closeness(in.zone, q.zone)
	var clDetail string
	switch cl {
	case 1:
		clDetail = fmt.Sprintf("same zone %s", zoneName(in.zone))
	case 0.5:
		clDetail = fmt.Sprintf("both in the district: institution %s, enterprise %s", zoneName(in.zone), zoneName(q.zone))
	default:
		clDetail = fmt.Sprintf("not both in the district: institution %s, enterprise %s", zoneName(in.zone), zoneName(q.zone))
	}
	// The same sums, in the same order, as score(): Rank's order and the
	// Score shown agree to the last bit.
	parts := []ScorePart{
		{Name: "price", Weight: e.w.Price, Value: en.price, Detail: priceDetail},
		{Name: "fit", Weight: e.w.Fit, Value: fit(q, en), Detail: fitDetail},
		{Name: "response", Weight: e.w.Response, Value: in.response, Detail: respDetail},
		{Name: "closeness", Weight: e.w.Closeness, Value: cl, Detail: clDetail},
	}
	sum := 0.0
	for i := range parts {
		parts[i].Contribution = float64(parts[i].Weight * parts[i].Value)
		sum += parts[i].Contribution
	}
	return parts, sum
}

func zoneName(z uint8) string {
	for n, c := range districtZones {
		if c == z {
			return n
		}
	}
	return "outside the district or unknown"
}

type enum interface {
	~int32
	String() string
}

var enumPrefixes = []string{"PRODUCT_CATEGORY_", "DEMAND_KIND_", "SECTOR_", "CARBON_ASSET_"}

// name is an enum's short name: CARBON_PLEDGE for PRODUCT_CATEGORY_CARBON_PLEDGE.
func name[E enum](v E) string {
	if v == 0 {
		return "UNSPECIFIED"
	}
	s := v.String()
	for _, pre := range enumPrefixes {
		if strings.HasPrefix(s, pre) {
			return s[len(pre):]
		}
	}
	return s
}

func names[E enum](vs []E) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = name(v)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func months(t int32) string {
	if t == 0 {
		return "states none"
	}
	return itoa(t) + " months"
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func yuan(n int64) string { return "¥" + group(n) }

// group writes n with thousands separators: 5,000,000.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func groupBig(n *big.Int) string {
	if n.IsInt64() {
		return group(n.Int64())
	}
	return n.String()
}

// pct writes basis points as a percentage: 435 → 4.35%.
func pct(bps int32) string {
	sign := ""
	if bps < 0 {
		sign, bps = "-", -bps
	}
	return fmt.Sprintf("%s%d.%02d%%", sign, bps/100, bps%100)
}
