// Package catalog is the desk's catalog of carbon-finance products: what each
// institution offers (a JR/T 0244-2022 category or a brokered service), the
// demand kinds it serves, its amount, term and price, which sectors and
// regions it is open to, what collateral it takes, and whether it is on
// offer: DRAFT → PUBLISHED ⇄ PAUSED, and any of those → RETIRED.
//
// Files: this one holds the domain (types, rules, errors), enums.go the enum
// types, store.go persistence through the platform's store.Store,
// institutions.go the catalog's own view of institutions fed by the
// registry's events, prices.go the reference carbon prices, events.go the
// subjects, grpc.go the CatalogService server and its converters, seeds.go
// the demo data loader. Every change writes its event in the same atomic
// batch as the change (the platform's outbox); nothing here talks to NATS
// except the institution feed, which consumes through internal/consumer.
//
// # Decisions
//
//   - Money is whole yuan (CNY) in int64 everywhere: amount ranges, fees and
//     reference prices per tonne. Product amounts are ≥ ¥1; fen precision
//     buys nothing for ranges, fees or a collateral valuation that a pledge
//     rate haircuts anyway. Rates are basis points (int32), terms months.
//   - Regions are GB/T 2260 six-digit codes. A province code (ddd0000, e.g.
//     "420000" Hubei) covers every code starting with its first two digits,
//     a city code (dddd00, "420100" Wuhan) every code with its first four;
//     a district code ("420106" Wuchang) only itself. Empty regions = all.
//   - Sectors are the national ETS sectors plus OTHER; empty = all.
//   - Term is optional (both ends 0) for products without one (an index, a
//     verification); the amount range is always required.
//   - Reference carbon prices (CEA and CCER, yuan per tonne) are a small
//     staff-set record with history in the catalog's own store, not
//     configuration: they move weekly, staff change them without a deploy,
//     every change is kept with who set it and why, and a change is an event
//     (carbondesk.catalog.reference_prices.set) that matching can follow.
//     The demo seeds set the first prices. See prices.go.
//
// # Institutions
//
// The catalog never reads the registry's storage. It keeps its own view of
// each institution (internal/instview: id, credit code, name, kind, state),
// fed by the registry's events through a durable consumer
// ("catalog-institutions", see RunInstitutionFeed), idempotent by
// (institution id, version). Only an
// ACTIVE institution publishes. When an institution is suspended or
// rejected, each of its PUBLISHED products is paused at once, each with its
// own product event, committed with the view change. Nothing re-publishes by
// itself when the institution is reinstated: its products stay PAUSED until
// the institution (or staff) publishes them again, product by product,
// having checked their terms still hold.
//
// Publishing and the feed fence each other through the view record's
// version: a publish writes the view back unchanged with a version check in
// its batch, and the feed writes the view with a version check too, so a
// publish racing a suspension either commits first (and the suspension then
// pauses the product) or fails its check and sees the suspension.
//
// # Access
//
// Institutions act on their own products only (someone else's answers
// NotFound) and read their own plus every PUBLISHED product; enterprises see
// PUBLISHED products only; staff see and act on all. An institution caller
// creates products for the institution whose credit code is its
// organisation. The role of each RPC is in internal/auth's table.
package catalog

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

// Name is the service's name: its store namespace, its stream (CATALOG)
// and the second part of its subjects.
const Name = "catalog"

// ServiceName is the gRPC service's full name, for health checks.
const ServiceName = "carbondesk.catalog.v1.CatalogService"

// The catalog's error kinds; each wraps the errs kind that gives its code.
var (
	// ErrInvalidTransition: the action does not apply to the product's state.
	ErrInvalidTransition = fmt.Errorf("catalog: invalid product transition: %w", errs.ErrFailedPrecondition)
	// ErrInstitutionNotActive: the owning institution may not publish now.
	ErrInstitutionNotActive = fmt.Errorf("catalog: institution not active: %w", errs.ErrFailedPrecondition)
	// ErrUnknownInstitution: the catalog has no view of the institution.
	ErrUnknownInstitution = fmt.Errorf("catalog: unknown institution: %w", errs.ErrFailedPrecondition)
	// ErrStaleVersion: the version the caller read is not the current one.
	ErrStaleVersion = fmt.Errorf("catalog: stale version: %w", errs.ErrAborted)
)

// Limits on what a product may carry. Lengths count characters.
const (
	maxNameZh       = 100
	maxNameEn       = 200
	maxDescription  = 2000
	maxContactName  = 50
	maxReason       = 500
	maxNameContains = 100
	maxSectors      = 9  // every sector
	maxRegions      = 50 // more than that is "all" written out
	maxAmountYuan   = 1_000_000_000_000
	maxTermMonths   = 360
	maxRateBps      = 5000 // 50 % a year
	maxFeeYuan      = 100_000_000
	maxPledgeBps    = 10000
)

// Product is a carbon-finance product.
type Product struct {
	ID            string
	InstitutionID string
	OwnerCode     string // the institution's credit code: whose organisation owns it
	Terms
	State       State
	StateReason string
	Version     int64
	Created     time.Time
	Updated     time.Time
}

// Terms are what a product's creator gives and an update may change.
type Terms struct {
	NameZh      string
	NameEn      string
	Category    Category
	DemandKinds []DemandKind
	Amount      Range // yuan
	Term        Range // months; zero: no term
	Price       Price
	Sectors     []Sector // empty: all
	Regions     []string // GB/T 2260; empty: all
	Collateral  Collateral
	Description string
	Contact     Contact
}

// Range is a closed interval of whole numbers.
type Range struct{ Min, Max int64 }

// IsZero reports an unset range.
func (r Range) IsZero() bool { return r.Min == 0 && r.Max == 0 }

// Covers reports whether v lies in the range.
func (r Range) Covers(v int64) bool { return r.Min <= v && v <= r.Max }

// Price is an annual rate range in basis points, or a fee in yuan.
type Price struct {
	IsFee   bool
	Rate    Range // bps, when !IsFee
	FeeYuan int64 // when IsFee
	Set     bool  // whether a price was given at all
}

// Collateral is what a product takes as security: none (zero Asset) or an
// asset with a pledge rate.
type Collateral struct {
	Asset     Asset
	PledgeBps int32
}

// Contact is who an enterprise talks to.
type Contact struct {
	Name, Phone, Email string
}

// transitions: which states each action moves from, and to what.
type action int

const (
	actPublish action = iota + 1
	actPause
	actRetire
)

var transitions = map[action]struct {
	from []State
	to   State
	verb string
}{
	actPublish: {[]State{StateDraft, StatePaused}, StatePublished, "published"},
	actPause:   {[]State{StatePublished}, StatePaused, "paused"},
	actRetire:  {[]State{StateDraft, StatePublished, StatePaused}, StateRetired, "retired"},
}

// NewProduct makes a DRAFT product from validated terms.
func NewProduct(id, institutionID, ownerCode string, t Terms, now time.Time) *Product {
	now = now.UTC()
	return &Product{ID: id, InstitutionID: institutionID, OwnerCode: ownerCode, Terms: t, State: StateDraft, Created: now, Updated: now}
}

// transition moves the product by a, recording reason. It checks only the
// product's own state; publishing's institution rule is the caller's.
func (p *Product) transition(a action, reason string, now time.Time) error {
	t := transitions[a]
	if !slices.Contains(t.from, p.State) {
		return errs.New(ErrInvalidTransition, "product %s is %s; only %s products can be %s", p.ID, p.State, joinStates(t.from), t.verb)
	}
	p.State = t.to
	p.StateReason = strings.TrimSpace(reason)
	p.Updated = now.UTC()
	return nil
}

func joinStates(ss []State) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, " or ")
}

// CheckVersion compares the version a caller read with the product's.
func (p *Product) CheckVersion(read int64) error {
	if read == p.Version {
		return nil
	}
	return errs.New(ErrStaleVersion, "version %d is stale; the product is at version %d; read it again", read, p.Version)
}

// Clean trims text fields and puts sets in canonical order, the form terms
// are validated and stored in.
func (t Terms) Clean() Terms {
	t.NameZh = strings.TrimSpace(t.NameZh)
	t.NameEn = strings.TrimSpace(t.NameEn)
	t.Description = strings.TrimSpace(t.Description)
	t.Contact = Contact{Name: strings.TrimSpace(t.Contact.Name), Phone: strings.TrimSpace(t.Contact.Phone), Email: strings.TrimSpace(t.Contact.Email)}
	if t.Regions != nil {
		rs := make([]string, len(t.Regions))
		for i, r := range t.Regions {
			rs[i] = strings.TrimSpace(r)
		}
		t.Regions = rs
	}
	return t
}

// Validate records what is wrong with (cleaned) terms, each under the field
// path the caller sent (prefix "product.").
func (t Terms) Validate(prefix string, v *errs.Violations) {
	text := func(field, s string, min, max int, what string) {
		switch n := utf8.RuneCountInString(s); {
		case n < min:
			v.Add(prefix+field, "%s is required", what)
		case n > max:
			v.Add(prefix+field, "is %d characters long; at most %d", n, max)
		case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
			v.Add(prefix+field, "contains control characters")
		}
	}
	text("name_zh", t.NameZh, 1, maxNameZh, "the Chinese name")
	if t.NameZh != "" && !strings.ContainsFunc(t.NameZh, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		v.Add(prefix+"name_zh", "%q has no Chinese characters; give the Chinese name here and the English one in name_en", errs.Shorten(t.NameZh, 40))
	}
	text("name_en", t.NameEn, 0, maxNameEn, "")
	text("description", t.Description, 0, maxDescription, "")
	if t.Category.IsZero() && !hasViolation(*v, prefix+"category") {
		v.Add(prefix+"category", "is required; one of %s", strings.Join(protoenum.Strings(Categories()), ", "))
	}
	switch {
	case len(t.DemandKinds) == 0 && !hasViolation(*v, prefix+"demand_kinds"):
		v.Add(prefix+"demand_kinds", "give at least one demand kind the product serves: %s", strings.Join(protoenum.Strings(DemandKinds()), ", "))
	case hasDup(t.DemandKinds):
		v.Add(prefix+"demand_kinds", "lists a demand kind twice")
	}
	switch a := t.Amount; {
	case a.Min < 1:
		v.Add(prefix+"amount.min_yuan", "%d: amounts are whole yuan, at least 1", a.Min)
	case a.Max < a.Min:
		v.Add(prefix+"amount.max_yuan", "%d is below min_yuan %d", a.Max, a.Min)
	case a.Max > maxAmountYuan:
		v.Add(prefix+"amount.max_yuan", "%d is above %d yuan", a.Max, int64(maxAmountYuan))
	}
	switch m := t.Term; {
	case m.IsZero():
	case m.Min < 1:
		v.Add(prefix+"term.min_months", "%d: a term is at least 1 month (leave both ends 0 for a product without a term)", m.Min)
	case m.Max < m.Min:
		v.Add(prefix+"term.max_months", "%d is below min_months %d", m.Max, m.Min)
	case m.Max > maxTermMonths:
		v.Add(prefix+"term.max_months", "%d is above %d months", m.Max, maxTermMonths)
	}
	switch p := t.Price; {
	case !p.Set:
		v.Add(prefix+"price", "give an annual rate range (annual_rate) or a fee (fee_yuan)")
	case p.IsFee && (p.FeeYuan < 0 || p.FeeYuan > maxFeeYuan):
		v.Add(prefix+"price.fee_yuan", "%d: a fee is 0 to %d yuan", p.FeeYuan, maxFeeYuan)
	case !p.IsFee && p.Rate.Min < 0:
		v.Add(prefix+"price.annual_rate.min_bps", "%d is negative", p.Rate.Min)
	case !p.IsFee && p.Rate.Max < p.Rate.Min:
		v.Add(prefix+"price.annual_rate.max_bps", "%d is below min_bps %d", p.Rate.Max, p.Rate.Min)
	case !p.IsFee && p.Rate.Max > maxRateBps:
		v.Add(prefix+"price.annual_rate.max_bps", "%d is above %d bps", p.Rate.Max, maxRateBps)
	}
	switch {
	case len(t.Sectors) > maxSectors:
		v.Add(prefix+"sectors", "has %d entries; at most %d (leave it empty for all sectors)", len(t.Sectors), maxSectors)
	case hasDup(t.Sectors):
		v.Add(prefix+"sectors", "lists a sector twice")
	}
	switch {
	case len(t.Regions) > maxRegions:
		v.Add(prefix+"regions", "has %d entries; at most %d (leave it empty for all regions)", len(t.Regions), maxRegions)
	case hasDup(t.Regions):
		v.Add(prefix+"regions", "lists a region twice")
	default:
		for i, r := range t.Regions {
			if msg := checkRegion(r); msg != "" {
				v.Add(fmt.Sprintf("%sregions[%d]", prefix, i), "%q %s", errs.Shorten(r, 20), msg)
			}
		}
	}
	switch c := t.Collateral; {
	case c.Asset.IsZero() && c.PledgeBps != 0 && !hasViolation(*v, prefix+"collateral.asset"):
		v.Add(prefix+"collateral.asset", "is required with a pledge rate: CEA or CCER")
	case !c.Asset.IsZero() && (c.PledgeBps < 1 || c.PledgeBps > maxPledgeBps):
		v.Add(prefix+"collateral.pledge_rate_bps", "%d: a pledge rate is 1 to %d bps", c.PledgeBps, maxPledgeBps)
	}
	c := t.Contact
	text("contact.name", c.Name, 1, maxContactName, "a contact person")
	if c.Phone == "" && c.Email == "" {
		v.Add(prefix+"contact.phone", "a phone number or an email is required")
	}
	if c.Phone != "" {
		if msg := contact.CheckPhone(c.Phone); msg != "" {
			v.Add(prefix+"contact.phone", "%q %s", errs.Shorten(c.Phone, 40), msg)
		}
	}
	if c.Email != "" {
		if msg := contact.CheckEmail(c.Email); msg != "" {
			v.Add(prefix+"contact.email", "%q %s", errs.Shorten(c.Email, 60), msg)
		}
	}
}

// Equal reports whether two sets of terms are the same, so an update that
// changes nothing writes nothing.
func (t Terms) Equal(o Terms) bool {
	return t.NameZh == o.NameZh && t.NameEn == o.NameEn && t.Category == o.Category &&
		slices.Equal(t.DemandKinds, o.DemandKinds) && t.Amount == o.Amount && t.Term == o.Term &&
		t.Price == o.Price && slices.Equal(t.Sectors, o.Sectors) && slices.Equal(t.Regions, o.Regions) &&
		t.Collateral == o.Collateral && t.Description == o.Description && t.Contact == o.Contact
}

// EligibleSector reports whether the product is open to sector s.
func (t Terms) EligibleSector(s Sector) bool {
	return len(t.Sectors) == 0 || slices.Contains(t.Sectors, s)
}

// EligibleRegion reports whether the product is open to region code r.
func (t Terms) EligibleRegion(r string) bool {
	if len(t.Regions) == 0 {
		return true
	}
	return slices.ContainsFunc(t.Regions, func(code string) bool { return RegionCovers(code, r) })
}

// RegionCovers reports whether GB/T 2260 code area covers code r: equal, or
// area is a province (xx0000) or city (xxxx00) containing r.
func RegionCovers(area, r string) bool {
	switch {
	case area == r:
		return true
	case len(area) != 6 || len(r) != 6:
		return false
	case strings.HasSuffix(area, "0000"):
		return area[:2] == r[:2]
	case strings.HasSuffix(area, "00"):
		return area[:4] == r[:4]
	}
	return false
}

// checkRegion accepts a six-digit GB/T 2260 code of a province-level
// division (11 Beijing … 82 Macao).
func checkRegion(r string) string {
	if len(r) != 6 || strings.ContainsFunc(r, func(c rune) bool { return c < '0' || c > '9' }) {
		return "is not a six-digit GB/T 2260 code such as 420106 (Wuchang), 420100 (Wuhan) or 420000 (Hubei)"
	}
	if p := r[:2]; p < "11" || p > "82" {
		return "does not start with a province code (11 to 82)"
	}
	return ""
}

func checkReason(field, reason string, required bool) error {
	switch n := utf8.RuneCountInString(strings.TrimSpace(reason)); {
	case n == 0 && required:
		return errs.Invalid(field, "a reason is required")
	case n > maxReason:
		return errs.Invalid(field, "is %d characters long; at most %d", n, maxReason)
	}
	return nil
}

func hasDup[T comparable](xs []T) bool {
	seen := make(map[T]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}

func hasViolation(v errs.Violations, field string) bool {
	return slices.ContainsFunc(v, func(fv errs.FieldViolation) bool { return fv.Field == field })
}
