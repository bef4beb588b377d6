package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

const (
	active    = registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
	pendingSt = registryv1.InstitutionState_INSTITUTION_STATE_PENDING
	suspended = registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED
	rejected  = registryv1.InstitutionState_INSTITUTION_STATE_REJECTED
)

// TestCreateValidation: each bad field is refused with InvalidArgument
// naming it, on both stores, and nothing is written.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mod    func(p *catalogv1.Product)
		fields []string
	}{
		{"no name", func(p *catalogv1.Product) { p.NameZh = " " }, []string{"product.name_zh"}},
		{"latin zh name", func(p *catalogv1.Product) { p.NameZh = "Pledge" }, []string{"product.name_zh"}},
		{"long zh name", func(p *catalogv1.Product) { p.NameZh = strings.Repeat("碳", 101) }, []string{"product.name_zh"}},
		{"long description", func(p *catalogv1.Product) { p.Description = strings.Repeat("碳", 2001) }, []string{"product.description"}},
		{"no category", func(p *catalogv1.Product) { p.Category = 0 }, []string{"product.category"}},
		{"unknown category", func(p *catalogv1.Product) { p.Category = 99 }, []string{"product.category"}},
		{"no demand kinds", func(p *catalogv1.Product) { p.DemandKinds = nil }, []string{"product.demand_kinds"}},
		{"unknown demand kind", func(p *catalogv1.Product) { p.DemandKinds = []catalogv1.DemandKind{1, 42} }, []string{"product.demand_kinds[1]"}},
		{"repeated demand kind", func(p *catalogv1.Product) { p.DemandKinds = []catalogv1.DemandKind{1, 1} }, []string{"product.demand_kinds"}},
		{"no amount", func(p *catalogv1.Product) { p.Amount = nil }, []string{"product.amount.min_yuan"}},
		{"zero amount", func(p *catalogv1.Product) { p.Amount.MinYuan = 0 }, []string{"product.amount.min_yuan"}},
		{"negative amount", func(p *catalogv1.Product) { p.Amount.MinYuan = -5 }, []string{"product.amount.min_yuan"}},
		{"amount min > max", func(p *catalogv1.Product) { p.Amount.MaxYuan = 999 }, []string{"product.amount.max_yuan"}},
		{"term min > max", func(p *catalogv1.Product) { p.Term = &catalogv1.TermRange{MinMonths: 12, MaxMonths: 6} }, []string{"product.term.max_months"}},
		{"term zero min", func(p *catalogv1.Product) { p.Term = &catalogv1.TermRange{MinMonths: 0, MaxMonths: 6} }, []string{"product.term.min_months"}},
		{"term too long", func(p *catalogv1.Product) { p.Term = &catalogv1.TermRange{MinMonths: 1, MaxMonths: 361} }, []string{"product.term.max_months"}},
		{"no price", func(p *catalogv1.Product) { p.Price = nil }, []string{"product.price"}},
		{"empty price", func(p *catalogv1.Product) { p.Price = &catalogv1.Price{} }, []string{"product.price"}},
		{"rate min > max", func(p *catalogv1.Product) { p.Price.GetAnnualRate().MinBps = 500 }, []string{"product.price.annual_rate.max_bps"}},
		{"negative rate", func(p *catalogv1.Product) { p.Price.GetAnnualRate().MinBps = -1 }, []string{"product.price.annual_rate.min_bps"}},
		{"negative fee", func(p *catalogv1.Product) { p.Price = &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: -1}} }, []string{"product.price.fee_yuan"}},
		{"pledge rate 0", func(p *catalogv1.Product) { p.Collateral.PledgeRateBps = 0 }, []string{"product.collateral.pledge_rate_bps"}},
		{"pledge rate 10001", func(p *catalogv1.Product) { p.Collateral.PledgeRateBps = 10001 }, []string{"product.collateral.pledge_rate_bps"}},
		{"pledge rate without asset", func(p *catalogv1.Product) { p.Collateral.Asset = 0 }, []string{"product.collateral.asset"}},
		{"unknown asset", func(p *catalogv1.Product) { p.Collateral.Asset = 7 }, []string{"product.collateral.asset"}},
		{"unknown sector", func(p *catalogv1.Product) { p.Sectors = []catalogv1.Sector{0} }, []string{"product.sectors[0]"}},
		{"repeated sector", func(p *catalogv1.Product) { p.Sectors = []catalogv1.Sector{1, 1} }, []string{"product.sectors"}},
		{"bad region", func(p *catalogv1.Product) { p.Regions = []string{"420106", "Wuhan"} }, []string{"product.regions[1]"}},
		{"region outside provinces", func(p *catalogv1.Product) { p.Regions = []string{"990000"} }, []string{"product.regions[0]"}},
		{"too many regions", func(p *catalogv1.Product) {
			p.Regions = nil
			for i := range 51 {
				p.Regions = append(p.Regions, fmt.Sprintf("42%04d", i))
			}
		}, []string{"product.regions"}},
		{"no contact", func(p *catalogv1.Product) { p.Contact = nil }, []string{"product.contact.name", "product.contact.phone"}},
		{"bad email", func(p *catalogv1.Product) { p.Contact.Email = "nobody" }, []string{"product.contact.email"}},
	}
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		in := institutionView(t, s, active)
		for _, tt := range tests {
			p := validProduct()
			tt.mod(p)
			_, err := s.CreateProduct(staffCtx(t), &catalogv1.CreateProductRequest{InstitutionId: in.ID, Product: p})
			if code(err) != codes.InvalidArgument || !cmp.Equal(violationFields(err), tt.fields) {
				t.Errorf("%s: %v; fields %v, want InvalidArgument on %v", tt.name, err, violationFields(err), tt.fields)
			}
		}
		if got := pending(t, st); len(got) != 0 {
			t.Errorf("refused creations wrote events: %v", got)
		}
		// The edges that pass: a fee of 0 (a free service), no term, rate 0..max.
		ok := []func(p *catalogv1.Product){
			func(p *catalogv1.Product) {
				p.Price = &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: 0}}
				p.Term = nil
			},
			func(p *catalogv1.Product) { p.Collateral = nil; p.Sectors = nil; p.Regions = nil },
			func(p *catalogv1.Product) { p.Collateral.PledgeRateBps = 1 },
			func(p *catalogv1.Product) {
				p.Collateral.PledgeRateBps = 10000
				p.Amount = &catalogv1.AmountRange{MinYuan: 1, MaxYuan: 1}
			},
		}
		for i, m := range ok {
			create(t, s, in, m)
			_ = i
		}
	})
}

// TestTransitions walks every state change, and refuses every one that does
// not apply, with FailedPrecondition and nothing written.
func TestTransitions(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		in := institutionView(t, s, active)
		ctx := staffCtx(t)
		publish := func(id string) error {
			_, err := s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: id})
			return err
		}
		pause := func(id string) error {
			_, err := s.PauseProduct(ctx, &catalogv1.PauseProductRequest{Id: id, Reason: "quota used up"})
			return err
		}
		retire := func(id string) error {
			_, err := s.RetireProduct(ctx, &catalogv1.RetireProductRequest{Id: id, Reason: "replaced"})
			return err
		}
		type step struct {
			name string
			do   func(string) error
			want catalogv1.ProductState // 0: refused
		}
		D, P, U, R := catalogv1.ProductState_PRODUCT_STATE_DRAFT, catalogv1.ProductState_PRODUCT_STATE_PUBLISHED,
			catalogv1.ProductState_PRODUCT_STATE_PAUSED, catalogv1.ProductState_PRODUCT_STATE_RETIRED
		paths := [][]step{
			{{"pause draft", pause, 0}, {"publish", publish, P}, {"publish again", publish, 0}, {"pause", pause, U}, {"pause again", pause, 0},
				{"republish", publish, P}, {"retire published", retire, R}, {"publish retired", publish, 0}, {"pause retired", pause, 0}, {"retire again", retire, 0}},
			{{"retire draft", retire, R}},
			{{"publish", publish, P}, {"pause", pause, U}, {"retire paused", retire, R}},
		}
		for _, path := range paths {
			p := create(t, s, in)
			state := D
			for _, stp := range path {
				before := read(t, s, p.GetId())
				err := stp.do(p.GetId())
				after := read(t, s, p.GetId())
				if stp.want == 0 {
					if code(err) != codes.FailedPrecondition {
						t.Errorf("%s from %s: %v, want FailedPrecondition", stp.name, state, err)
					}
					if after.GetVersion() != before.GetVersion() {
						t.Errorf("%s: refused, but version %d → %d", stp.name, before.GetVersion(), after.GetVersion())
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s from %s: %v", stp.name, state, err)
				}
				if after.GetState() != stp.want || after.GetVersion() != before.GetVersion()+1 {
					t.Errorf("%s: state %s v%d, want %s v%d", stp.name, after.GetState(), after.GetVersion(), stp.want, before.GetVersion()+1)
				}
				state = stp.want
			}
		}
		if got := message(publish(create(t, s, in).GetId())); got != "" {
			t.Errorf("publish a fresh draft: %q", got)
		}
		p := create(t, s, in)
		_ = retire(p.GetId())
		if err := publish(p.GetId()); message(err) != fmt.Sprintf("product %s is RETIRED; only DRAFT or PAUSED products can be published", p.GetId()) {
			t.Errorf("publish retired: %q", message(err))
		}
	})
}

// TestPublishRefusals: only an ACTIVE institution publishes; a stale
// version is Aborted; a retired product is not updated.
func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		ctx := staffCtx(t)
		for _, state := range []registryv1.InstitutionState{pendingSt, suspended} {
			in := institutionView(t, s, pendingSt)
			if state == suspended {
				setInstitution(t, s, in, active)
				setInstitution(t, s, in, suspended)
			}
			p := create(t, s, in)
			_, err := s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: p.GetId()})
			want := fmt.Sprintf("institution %s is %s; only an ACTIVE institution publishes products", in.ID, strings.TrimPrefix(state.String(), "INSTITUTION_STATE_"))
			if code(err) != codes.FailedPrecondition || message(err) != want {
				t.Errorf("publish by a %s institution: %v, want FailedPrecondition %q", state, err, want)
			}
			if got := read(t, s, p.GetId()); got.GetState() != catalogv1.ProductState_PRODUCT_STATE_DRAFT || got.GetVersion() != 1 {
				t.Errorf("refused publish changed the product: %s v%d", got.GetState(), got.GetVersion())
			}
			// After reinstatement (or approval) it may publish again.
			setInstitution(t, s, in, active)
			if _, err := s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: p.GetId(), Version: 1}); err != nil {
				t.Errorf("publish once ACTIVE: %v", err)
			}
		}

		// A rejected institution creates nothing.
		rej := institutionView(t, s, rejected)
		_, err := s.CreateProduct(ctx, &catalogv1.CreateProductRequest{InstitutionId: rej.ID, Product: validProduct()})
		if code(err) != codes.FailedPrecondition {
			t.Errorf("create for a rejected institution: %v", err)
		}
		_, err = s.CreateProduct(ctx, &catalogv1.CreateProductRequest{InstitutionId: "01NOSUCH", Product: validProduct()})
		if code(err) != codes.FailedPrecondition {
			t.Errorf("create for an unknown institution: %v", err)
		}

		// Stale versions.
		in := institutionView(t, s, active)
		p := create(t, s, in)
		if _, err := s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 1, Product: &catalogv1.Product{NameEn: "Renamed"}}); err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() error{
			"update": func() error {
				_, err := s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 1, Product: &catalogv1.Product{NameEn: "Late"}})
				return err
			},
			"publish": func() error {
				_, err := s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: p.GetId(), Version: 1})
				return err
			},
			"pause": func() error {
				_, err := s.PauseProduct(ctx, &catalogv1.PauseProductRequest{Id: p.GetId(), Version: 1})
				return err
			},
			"retire": func() error {
				_, err := s.RetireProduct(ctx, &catalogv1.RetireProductRequest{Id: p.GetId(), Version: 1})
				return err
			},
		} {
			err := call()
			if code(err) != codes.Aborted || message(err) != "version 1 is stale; the product is at version 2; read it again" {
				t.Errorf("%s with a stale version: %v", name, err)
			}
		}
		if got := read(t, s, p.GetId()); got.GetVersion() != 2 || got.GetNameEn() != "Renamed" {
			t.Errorf("after stale calls: v%d %q", got.GetVersion(), got.GetNameEn())
		}

		// A retired product is not updated.
		if _, err := s.RetireProduct(ctx, &catalogv1.RetireProductRequest{Id: p.GetId(), Version: 2}); err != nil {
			t.Fatal(err)
		}
		_, err = s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 3, Product: &catalogv1.Product{NameEn: "Zombie"}})
		if code(err) != codes.FailedPrecondition {
			t.Errorf("update a retired product: %v", err)
		}
	})
}

// TestUpdate: the implied mask, an explicit mask clearing a field, fixed
// paths refused, no-op updates write nothing, and every change its event.
func TestUpdate(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		ctx := staffCtx(t)
		in := institutionView(t, s, active)
		p := create(t, s, in)
		resp, err := s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 1, Product: &catalogv1.Product{
			Amount: &catalogv1.AmountRange{MinYuan: 2_000_000, MaxYuan: 80_000_000}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetProduct(); got.GetAmount().GetMaxYuan() != 80_000_000 || got.GetNameZh() != p.GetNameZh() || got.GetVersion() != 2 {
			t.Errorf("implied mask: %v", got)
		}
		resp, err = s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 2, Product: &catalogv1.Product{},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"sectors", "regions"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetProduct(); len(got.GetSectors()) != 0 || len(got.GetRegions()) != 0 {
			t.Errorf("mask clearing sectors and regions: %v", got)
		}
		// The same values again: nothing written.
		resp, err = s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 3, Product: &catalogv1.Product{NameZh: p.GetNameZh()}})
		if err != nil || resp.GetProduct().GetVersion() != 3 {
			t.Errorf("no-op update: %v, v%d", err, resp.GetProduct().GetVersion())
		}
		_, err = s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 3, Product: &catalogv1.Product{},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state"}}})
		if !slices.Equal(violationFields(err), []string{"update_mask"}) {
			t.Errorf("mask naming state: %v", err)
		}
		_, err = s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: 3, Product: &catalogv1.Product{
			Amount: &catalogv1.AmountRange{MinYuan: 10, MaxYuan: 5}}})
		if !slices.Equal(violationFields(err), []string{"product.amount.max_yuan"}) {
			t.Errorf("update to a bad range: %v", err)
		}
		want := []string{
			SubjectCreated + " " + p.GetId() + " v1",
			SubjectUpdated + " " + p.GetId() + " v2",
			SubjectUpdated + " " + p.GetId() + " v3",
		}
		if diff := cmp.Diff(want, pending(t, st)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
	})
}

// TestOwnership: institutions act on their own products only (others'
// answer NotFound) and create only for themselves; enterprises see
// PUBLISHED products only.
func TestOwnership(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		mine, theirs := institutionView(t, s, active), institutionView(t, s, active)
		ctx := instCtx(t, mine.CreditCode)

		// Create for itself without naming the institution, or naming it.
		resp, err := s.CreateProduct(ctx, &catalogv1.CreateProductRequest{Product: validProduct()})
		if err != nil {
			t.Fatalf("create own: %v", err)
		}
		own := resp.GetProduct()
		if own.GetInstitutionId() != mine.ID || own.GetInstitutionCreditCode() != mine.CreditCode {
			t.Errorf("created for %s/%s, want %s/%s", own.GetInstitutionId(), own.GetInstitutionCreditCode(), mine.ID, mine.CreditCode)
		}
		_, err = s.CreateProduct(ctx, &catalogv1.CreateProductRequest{InstitutionId: theirs.ID, Product: validProduct()})
		if code(err) != codes.PermissionDenied {
			t.Errorf("create for another: %v", err)
		}
		_, err = s.CreateProduct(instCtx(t, "91420106UNREGISTERED"), &catalogv1.CreateProductRequest{Product: validProduct()})
		if code(err) != codes.FailedPrecondition {
			t.Errorf("create by an unregistered organisation: %v", err)
		}
		_, err = s.CreateProduct(staffCtx(t), &catalogv1.CreateProductRequest{Product: validProduct()})
		if !slices.Equal(violationFields(err), []string{"institution_id"}) {
			t.Errorf("staff create without institution: %v", err)
		}

		draft := create(t, s, theirs)
		pub := published(t, s, theirs)
		for name, call := range map[string]func(id string) error{
			"update": func(id string) error {
				_, err := s.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{Id: id, Version: 1, Product: &catalogv1.Product{NameEn: "Mine now"}})
				return err
			},
			"publish": func(id string) error {
				_, err := s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: id})
				return err
			},
			"pause": func(id string) error {
				_, err := s.PauseProduct(ctx, &catalogv1.PauseProductRequest{Id: id})
				return err
			},
			"retire": func(id string) error {
				_, err := s.RetireProduct(ctx, &catalogv1.RetireProductRequest{Id: id})
				return err
			},
		} {
			for _, id := range []string{draft.GetId(), pub.GetId()} {
				if err := call(id); code(err) != codes.NotFound || message(err) != fmt.Sprintf("product %q not found", id) {
					t.Errorf("%s another's product: %v", name, err)
				}
			}
		}
		// Reads: another's draft is hidden, its published product shown.
		if _, err := s.GetProduct(ctx, &catalogv1.GetProductRequest{Id: draft.GetId()}); code(err) != codes.NotFound {
			t.Errorf("get another's draft: %v", err)
		}
		if _, err := s.GetProduct(ctx, &catalogv1.GetProductRequest{Id: pub.GetId()}); err != nil {
			t.Errorf("get another's published product: %v", err)
		}
		if _, err := s.GetProduct(ctx, &catalogv1.GetProductRequest{Id: own.GetId()}); err != nil {
			t.Errorf("get own draft: %v", err)
		}
		if _, err := s.GetProduct(entCtx(t), &catalogv1.GetProductRequest{Id: own.GetId()}); code(err) != codes.NotFound {
			t.Errorf("enterprise gets a draft: %v", err)
		}
		lists := map[string][]string{}
		for name, c := range map[string]context.Context{"institution": ctx, "enterprise": entCtx(t), "staff": staffCtx(t)} {
			resp, err := s.ListProducts(c, &catalogv1.ListProductsRequest{PageSize: 200})
			if err != nil {
				t.Fatalf("list as %s: %v", name, err)
			}
			for _, p := range resp.GetProducts() {
				lists[name] = append(lists[name], p.GetId())
			}
		}
		want := map[string][]string{
			"institution": {own.GetId(), pub.GetId()},
			"enterprise":  {pub.GetId()},
			"staff":       {own.GetId(), draft.GetId(), pub.GetId()},
		}
		if diff := cmp.Diff(want, lists); diff != "" {
			t.Errorf("lists by caller (-want +got):\n%s", diff)
		}
	})
}

// TestReferencePrices: staff set prices with history; others may not; bad
// figures are refused with the field named; a stale version is Aborted.
func TestReferencePrices(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		ctx := staffCtx(t)
		resp, err := s.GetReferencePrices(entCtx(t), &catalogv1.GetReferencePricesRequest{})
		if err != nil || resp.GetCurrent() != nil || len(resp.GetHistory()) != 0 {
			t.Fatalf("before any: %v %v", resp, err)
		}
		if _, err := s.SetReferencePrices(instCtx(t, "91420106X"), &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: 70, CcerYuanPerTonne: 80, Source: "mine"}); code(err) != codes.PermissionDenied {
			t.Errorf("institution sets prices: %v", err)
		}
		_, err = s.SetReferencePrices(ctx, &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: 0, CcerYuanPerTonne: 100_001})
		if !slices.Equal(violationFields(err), []string{"cea_yuan_per_tonne", "ccer_yuan_per_tonne", "source"}) {
			t.Errorf("bad prices: %v", err)
		}
		for i, p := range [][2]int64{{72, 85}, {75, 83}, {78, 84}} {
			r, err := s.SetReferencePrices(ctx, &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: p[0], CcerYuanPerTonne: p[1], Source: "weekly close", Version: int64(i)})
			if err != nil || r.GetPrices().GetVersion() != int64(i+1) || r.GetPrices().GetSetBy() != "staff-ma" {
				t.Fatalf("set %d: %v %v", i, r, err)
			}
		}
		_, err = s.SetReferencePrices(ctx, &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: 1, CcerYuanPerTonne: 1, Source: "late", Version: 2})
		if code(err) != codes.Aborted {
			t.Errorf("stale set: %v", err)
		}
		resp, err = s.GetReferencePrices(entCtx(t), &catalogv1.GetReferencePricesRequest{HistorySize: 2})
		if err != nil {
			t.Fatal(err)
		}
		var hist [][2]int64
		for _, h := range resp.GetHistory() {
			hist = append(hist, [2]int64{h.GetCeaYuanPerTonne(), h.GetCcerYuanPerTonne()})
		}
		if resp.GetCurrent().GetCeaYuanPerTonne() != 78 || !cmp.Equal(hist, [][2]int64{{78, 84}, {75, 83}}) {
			t.Errorf("current %v, history %v", resp.GetCurrent(), hist)
		}
		want := []string{SubjectReferencePricesSet + " reference-prices v1", SubjectReferencePricesSet + " reference-prices v2", SubjectReferencePricesSet + " reference-prices v3"}
		if diff := cmp.Diff(want, pending(t, st)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
	})
}

// TestStats counts by category, state and institution kind.
func TestStats(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		bank := institutionView(t, s, active)
		ins := institutionView(t, s, active)
		ins.Kind = registryv1.InstitutionKind_INSTITUTION_KIND_INSURANCE
		setInstitution(t, s, ins, active)
		published(t, s, bank)
		create(t, s, bank)
		create(t, s, ins, func(p *catalogv1.Product) {
			p.Category = catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_INSURANCE
			p.Collateral = nil
		})
		resp, err := s.GetCatalogStats(staffCtx(t), &catalogv1.GetCatalogStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		nonzero := func(cs []*catalogv1.Count) map[string]int64 {
			m := map[string]int64{}
			for _, c := range cs {
				if c.GetCount() != 0 {
					m[c.GetKey()] = c.GetCount()
				}
			}
			return m
		}
		if resp.GetTotal() != 3 || resp.GetPublished() != 1 || len(resp.GetByCategory()) != 16 || len(resp.GetByState()) != 4 {
			t.Errorf("stats: %v", resp)
		}
		if diff := cmp.Diff(map[string]int64{"CARBON_PLEDGE": 2, "CARBON_INSURANCE": 1}, nonzero(resp.GetByCategory())); diff != "" {
			t.Errorf("by category: %s", diff)
		}
		if diff := cmp.Diff(map[string]int64{"DRAFT": 2, "PUBLISHED": 1}, nonzero(resp.GetByState())); diff != "" {
			t.Errorf("by state: %s", diff)
		}
		if diff := cmp.Diff(map[string]int64{"BANK": 2, "INSURANCE": 1}, nonzero(resp.GetByInstitutionKind())); diff != "" {
			t.Errorf("by kind: %s", diff)
		}
	})
}

func TestRegionCovers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		area, r string
		want    bool
	}{
		{"420106", "420106", true}, {"420100", "420106", true}, {"420000", "420106", true},
		{"420000", "430102", false}, {"420100", "420501", false}, {"420106", "420102", false}, {"420106", "420100", false},
	} {
		if got := RegionCovers(tt.area, tt.r); got != tt.want {
			t.Errorf("RegionCovers(%s, %s) = %v", tt.area, tt.r, got)
		}
	}
}
