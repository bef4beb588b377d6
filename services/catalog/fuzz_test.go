package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// The fuzz targets below call the handlers as the gRPC server would, on a
// catalog over a bolt store holding institutions in each registry state
// and products in each product state, as callers of every kind. Whatever
// arrives, a handler never panics and never answers Internal; it refuses
// with the caller's codes; a refused call changes nothing; and no caller
// changes what it does not own.

// fuzzWorld is the catalog the iterations of one fuzz target share.
type fuzzWorld struct {
	s *Server
	// insts: ACTIVE, PENDING, SUSPENDED, REJECTED, in that order.
	insts []*Institution
	// products holds one product per slot; slots keeps what state (and
	// institution) each slot's product is to be replaced with.
	products []string
	slots    []fuzzSlot
}

type fuzzSlot struct {
	in    *Institution
	state State
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	c := &clock{now: t0}
	w := &fuzzWorld{s: New(testenv.BoltStore(f), WithClock(c.Now))}
	for _, st := range []registryv1.InstitutionState{active, pendingSt, suspended, rejected} {
		w.insts = append(w.insts, w.institution(f, st))
	}
	act := w.insts[0]
	for _, sl := range []fuzzSlot{
		{act, StateDraft}, {act, StatePublished}, {act, StatePaused}, {act, StateRetired},
		{w.insts[1], StateDraft}, // of a PENDING institution: cannot publish
	} {
		w.slots = append(w.slots, sl)
		w.products = append(w.products, w.product(f, sl))
	}
	return w
}

// institution puts an institution in state into the catalog's view.
func (w *fuzzWorld) institution(tb testing.TB, state registryv1.InstitutionState) *Institution {
	tb.Helper()
	n := seq.Add(1)
	in := &Institution{ID: fmt.Sprintf("01FUZZ%014d", n), CreditCode: fmt.Sprintf("91420106F%08dX", n),
		Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK, State: state, Version: 2}
	if err := w.s.applyInstitution(context.Background(), in, w.s.st.Apply); err != nil {
		tb.Fatalf("apply institution: %v", err)
	}
	return in
}

// product creates a valid product of sl.in and moves it to sl.state, as
// staff (publishing while the institution is ACTIVE).
func (w *fuzzWorld) product(tb testing.TB, sl fuzzSlot) string {
	tb.Helper()
	ctx := auth.WithCaller(context.Background(), auth.Caller{Subject: "fuzz-staff", Role: auth.Staff})
	resp, err := w.s.CreateProduct(ctx, &catalogv1.CreateProductRequest{InstitutionId: sl.in.ID, Product: validProduct()})
	if err != nil {
		tb.Fatalf("CreateProduct: %v", err)
	}
	p := resp.GetProduct()
	var steps []action
	switch sl.state {
	case StatePublished:
		steps = []action{actPublish}
	case StatePaused:
		steps = []action{actPublish, actPause}
	case StateRetired:
		steps = []action{actRetire}
	}
	for _, a := range steps {
		var err error
		switch a {
		case actPublish:
			_, err = w.s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: p.GetId()})
		case actPause:
			_, err = w.s.PauseProduct(ctx, &catalogv1.PauseProductRequest{Id: p.GetId(), Reason: "fuzz world"})
		case actRetire:
			_, err = w.s.RetireProduct(ctx, &catalogv1.RetireProductRequest{Id: p.GetId(), Reason: "fuzz world"})
		}
		if err != nil {
			tb.Fatalf("moving a fuzz product to %s: %v", sl.state, err)
		}
	}
	return p.GetId()
}

// replace puts a fresh product where id was, in its slot's state.
func (w *fuzzWorld) replace(tb testing.TB, id string) {
	tb.Helper()
	if i := slices.Index(w.products, id); i >= 0 {
		w.products[i] = w.product(tb, w.slots[i])
	}
}

// target picks one of the world's products, or, for sel past them, the
// fuzzer's own id.
func (w *fuzzWorld) target(sel uint8, fuzzed string) string {
	if i := int(sel) % (len(w.products) + 1); i < len(w.products) {
		return w.products[i]
	}
	return fuzzed
}

// inst picks one of the world's institutions' ids, or the fuzzer's own.
func (w *fuzzWorld) inst(sel uint8, fuzzed string) string {
	if i := int(sel) % (len(w.insts) + 1); i < len(w.insts) {
		return w.insts[i].ID
	}
	return fuzzed
}

// read returns a product as stored, or nil.
func (w *fuzzWorld) read(t *testing.T, id string) *Product {
	t.Helper()
	if id == "" {
		return nil
	}
	p, err := w.s.get(context.Background(), id)
	if err != nil {
		if code(err) != codes.NotFound {
			t.Fatalf("read %q: %v", id, err)
		}
		return nil
	}
	return p
}

// fuzzCallers are the kinds of caller a fuzz input chooses from.
var fuzzCallers = []struct {
	role  auth.Role
	owner bool // of the target's organisation (else of another)
}{
	{auth.Staff, false},
	{auth.Institution, true}, {auth.Institution, false},
	{auth.Enterprise, false},
}

// callerCtx is a context carrying the sel-th kind of caller for an object
// of the organisation owner, and whether that caller owns it.
func callerCtx(ctx context.Context, sel uint8, owner string) (context.Context, auth.Caller, bool) {
	k := fuzzCallers[int(sel)%len(fuzzCallers)]
	c := auth.Caller{Subject: "fuzz-" + string(k.role), Role: k.role, Org: "91420106MA4K00010G"}
	if k.owner && owner != "" {
		c.Org = owner
	}
	return auth.WithCaller(ctx, c), c, k.role == auth.Staff || c.Org == owner
}

// wantCodes fails unless err maps to one of the codes.
func wantCodes(t *testing.T, err error, ok ...codes.Code) codes.Code {
	t.Helper()
	got := code(err)
	if !slices.Contains(ok, got) {
		t.Fatalf("answered %s (%v); want one of %v", got, err, ok)
	}
	return got
}

// fuzzTerms are a product's terms built from fuzzed primitives: enums are
// numbers (any int32), repeated enums bytes (each a signed number),
// regions comma-separated, priceKind picks none, a rate or a fee, and
// collateral is sent when asset or pledge is non-zero.
type fuzzTerms struct {
	nameZh, nameEn       string
	category             int32
	demandKinds          []byte
	amountMin, amountMax int64
	termMin, termMax     int32
	priceKind            uint8
	rateMin, rateMax     int32
	fee                  int64
	sectors              []byte
	regions              string
	asset, pledge        int32
	description          string
	contact              string // name|phone|email
}

func (ft fuzzTerms) proto() *catalogv1.Product {
	p := &catalogv1.Product{
		NameZh: ft.nameZh, NameEn: ft.nameEn, Category: catalogv1.ProductCategory(ft.category),
		Description: ft.description,
	}
	for _, b := range ft.demandKinds {
		p.DemandKinds = append(p.DemandKinds, catalogv1.DemandKind(int8(b)))
	}
	for _, b := range ft.sectors {
		p.Sectors = append(p.Sectors, catalogv1.Sector(int8(b)))
	}
	if ft.amountMin != 0 || ft.amountMax != 0 {
		p.Amount = &catalogv1.AmountRange{MinYuan: ft.amountMin, MaxYuan: ft.amountMax}
	}
	if ft.termMin != 0 || ft.termMax != 0 {
		p.Term = &catalogv1.TermRange{MinMonths: ft.termMin, MaxMonths: ft.termMax}
	}
	switch ft.priceKind % 4 {
	case 1:
		p.Price = &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: ft.rateMin, MaxBps: ft.rateMax}}}
	case 2:
		p.Price = &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: ft.fee}}
	case 3:
		p.Price = &catalogv1.Price{} // set, but neither kind
	}
	if ft.regions != "" {
		p.Regions = strings.Split(ft.regions, ",")
	}
	if ft.asset != 0 || ft.pledge != 0 {
		p.Collateral = &catalogv1.Collateral{Asset: catalogv1.CarbonAsset(ft.asset), PledgeRateBps: ft.pledge}
	}
	if ft.contact != "" {
		parts := strings.SplitN(ft.contact, "|", 3)
		parts = append(parts, "", "")
		p.Contact = &catalogv1.Contact{Name: parts[0], Phone: parts[1], Email: parts[2]}
	}
	return p
}

// addSeed adds a seed spread from a slice (vet checks f.Add's arguments
// only when they are written out).
func addSeed(f *testing.F, args ...any) { f.Add(args...) }

// checkStored fails unless p's terms are in their clean form and valid.
func checkStored(t *testing.T, p *Product) {
	t.Helper()
	var v errs.Violations
	p.Terms.Validate("", &v)
	if !p.Terms.Clean().Equal(p.Terms) || v.Err() != nil {
		t.Fatalf("stored terms are not clean and valid: %+v: %v", p.Terms, v.Err())
	}
}

// termSeeds are the terms arguments of seeds: valid terms and variations
// at and past their boundaries.
func termSeeds() [][]any {
	valid := func(mod func(a []any)) []any {
		a := []any{"楚江碳排放配额质押贷", "Chujiang CEA Loan", int32(1), []byte{1}, int64(1_000_000), int64(50_000_000),
			int32(6), int32(36), uint8(1), int32(320), int32(450), int64(0), []byte{1, 4}, "420000", int32(1), int32(6000),
			"以全国碳排放配额质押", "王晓岚|027-8765 4321|desk@chujiang.example"}
		if mod != nil {
			mod(a)
		}
		return a
	}
	return [][]any{
		valid(nil),
		valid(func(a []any) { a[8], a[11] = uint8(2), int64(100_000_000) }),                            // fee at its maximum
		valid(func(a []any) { a[4], a[5] = int64(1), int64(1_000_000_000_000) }),                       // amount bounds
		valid(func(a []any) { a[6], a[7], a[9], a[10] = int32(0), int32(360), int32(0), int32(5000) }), // term, rate bounds
		valid(func(a []any) { a[12], a[13], a[14], a[15] = []byte{}, "", int32(0), int32(0) }),         // all sectors, regions; no collateral
		valid(func(a []any) { a[0] = strings.Repeat("碳", 101) }),                                       // name too long
		valid(func(a []any) { a[0], a[1] = "  Carbon  ", "\x00" }),                                     // no Han, control
		valid(func(a []any) { a[2], a[3] = int32(99), []byte{0, 0xff, 1, 1} }),                         // unknown, zero, dup enums
		valid(func(a []any) { a[4], a[5] = int64(-1), int64(-9_223_372_036_854_775_808) }),             // negative amounts
		valid(func(a []any) { a[6], a[7] = int32(-2147483648), int32(2147483647) }),                    // term extremes
		valid(func(a []any) { a[8], a[9], a[10] = uint8(1), int32(450), int32(320) }),                  // inverted rate
		valid(func(a []any) { a[8] = uint8(3) }),                                                       // price with no kind
		valid(func(a []any) { a[12] = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} }),                         // too many sectors
		valid(func(a []any) { a[13] = " 420100 ,,4201,42010x,\u0660\u0661\u0662\u0663\u0664\u0665" }),  // odd regions
		valid(func(a []any) { a[14], a[15] = int32(7), int32(10001) }),                                 // unknown asset, pledge
		valid(func(a []any) { a[14], a[15] = int32(0), int32(5000) }),                                  // pledge without asset
		valid(func(a []any) { a[16] = strings.Repeat("x", 2001) }),
		valid(func(a []any) { a[17] = "||" }),
		valid(func(a []any) { a[17] = "名|+86 (27) 1234-5678|a@b" }),
		valid(func(a []any) { a[17] = "\u202e|\xff|@" }),
	}
}

// FuzzCreateProduct: arbitrary terms for any institution by every kind of
// caller. Refusals are InvalidArgument, PermissionDenied or
// FailedPrecondition; nobody creates for another organisation or for a
// REJECTED institution; what is created is a clean, valid DRAFT at
// version 1, stored as answered.
func FuzzCreateProduct(f *testing.F) {
	w := newFuzzWorld(f)
	for i, s := range termSeeds() {
		addSeed(f, append([]any{uint8(i), uint8(i), "", false}, s...)...)
	}
	addSeed(f, append([]any{uint8(1), uint8(4), "", false}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(0), uint8(4), "01NOSUCHINSTITUTION", false}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(2), uint8(4), "", false}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(0), uint8(0), "", true}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(1), uint8(4), "", false}, termSeeds()[1]...)...)
	f.Fuzz(func(t *testing.T, callerSel, instSel uint8, fuzzedInst string, noProduct bool,
		nameZh, nameEn string, category int32, demandKinds []byte, amountMin, amountMax int64,
		termMin, termMax int32, priceKind uint8, rateMin, rateMax int32, fee int64, sectors []byte, regions string,
		asset, pledge int32, description, contact string) {
		instID := w.inst(instSel, fuzzedInst)
		var in *Institution
		if i := int(instSel) % (len(w.insts) + 1); i < len(w.insts) {
			in = w.insts[i]
		}
		owner := ""
		if in != nil {
			owner = in.CreditCode
		}
		ctx, caller, _ := callerCtx(t.Context(), callerSel, owner)
		ft := fuzzTerms{nameZh, nameEn, category, demandKinds, amountMin, amountMax, termMin, termMax, priceKind,
			rateMin, rateMax, fee, sectors, regions, asset, pledge, description, contact}
		req := &catalogv1.CreateProductRequest{InstitutionId: instID}
		if !noProduct {
			req.Product = ft.proto()
		}
		resp, err := w.s.CreateProduct(ctx, testenv.Wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition) != codes.OK {
			return
		}
		got := resp.GetProduct()
		p := w.read(t, got.GetId())
		if p == nil {
			t.Fatalf("created product %s is not stored", got.GetId())
		}
		if caller.Role != auth.Staff && p.OwnerCode != caller.Org {
			t.Fatalf("%s of %s created a product of %s", caller.Role, caller.Org, p.OwnerCode)
		}
		if p.State != StateDraft || p.Version != 1 || got.GetVersion() != 1 || got.GetState() != catalogv1.ProductState_PRODUCT_STATE_DRAFT {
			t.Fatalf("created %s v%d (answered %s v%d); want DRAFT v1", p.State, p.Version, got.GetState(), got.GetVersion())
		}
		for _, x := range w.insts {
			if x.ID == p.InstitutionID && x.State == rejected {
				t.Fatalf("created a product for REJECTED institution %s", x.ID)
			}
		}
		if !proto.Equal(toProtoProduct(p), got) {
			t.Fatalf("answered %v, stored %v", got, toProtoProduct(p))
		}
		checkStored(t, p)
	})
}

// FuzzUpdateProduct: arbitrary updates (ids, versions, masks, terms, enum
// numbers, output-only fields) of the world's products by every kind of
// caller. Refusals are InvalidArgument, NotFound, Aborted or
// FailedPrecondition; a refused update changes nothing; another
// organisation's product is NotFound (never Aborted) and never changes;
// state, owner and id never change; what is stored is clean and valid.
func FuzzUpdateProduct(f *testing.F) {
	w := newFuzzWorld(f)
	masks := []string{"", "name_zh", "*", "amount,term", "price,collateral", "state", "id,version", "sectors,regions", "nope", ",,", "contact,description,demand_kinds,category"}
	for i, s := range termSeeds() {
		addSeed(f, append([]any{uint8(i), uint8(i), "", int64(0), masks[i%len(masks)], ""}, s...)...)
	}
	addSeed(f, append([]any{uint8(0), uint8(1), "", int64(0), "", ""}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(0), uint8(1), "", int64(99), "*", ""}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(2), uint8(0), "", int64(0), "name_en", ""}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(0), uint8(3), "", int64(0), "name_en", ""}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(0), uint8(9), "01NOSUCHPRODUCT", int64(1), "name_en", "other"}, termSeeds()[0]...)...)
	addSeed(f, append([]any{uint8(0), uint8(0), "", int64(-1), "", "x"}, termSeeds()[0]...)...)
	f.Fuzz(func(t *testing.T, callerSel, sel uint8, fuzzedID string, version int64, mask, bodyID string,
		nameZh, nameEn string, category int32, demandKinds []byte, amountMin, amountMax int64,
		termMin, termMax int32, priceKind uint8, rateMin, rateMax int32, fee int64, sectors []byte, regions string,
		asset, pledge int32, description, contact string) {
		id := w.target(sel, fuzzedID)
		before := w.read(t, id)
		owner := ""
		if before != nil {
			owner = before.OwnerCode
			if version == 0 {
				version = before.Version // reach the success path
			}
		}
		ctx, caller, owns := callerCtx(t.Context(), callerSel, owner)
		ft := fuzzTerms{nameZh, nameEn, category, demandKinds, amountMin, amountMax, termMin, termMax, priceKind,
			rateMin, rateMax, fee, sectors, regions, asset, pledge, description, contact}
		msg := ft.proto()
		// Output-only fields, sent back as a client read them (or not).
		msg.Id, msg.State, msg.Version, msg.InstitutionId = bodyID, catalogv1.ProductState(category), version, bodyID
		req := &catalogv1.UpdateProductRequest{Id: id, Version: version, Product: msg}
		if mask != "" {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: strings.Split(mask, ",")}
		}
		resp, err := w.s.UpdateProduct(ctx, testenv.Wire(t, req))
		got := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.Aborted, codes.FailedPrecondition)
		if before != nil && !owns && (got == codes.OK || got == codes.Aborted) {
			t.Fatalf("%s of another organisation: update answered %s; want NotFound", caller.Role, got)
		}
		after := w.read(t, id)
		if before == nil {
			if got == codes.OK {
				t.Fatalf("update of missing %q succeeded", id)
			}
			return
		}
		if after.State != before.State || after.OwnerCode != before.OwnerCode || after.InstitutionID != before.InstitutionID {
			t.Fatalf("update changed a fixed field: %+v → %+v", before, after)
		}
		if got != codes.OK {
			if after.Version != before.Version || !after.Terms.Equal(before.Terms) {
				t.Fatalf("refused update (%v) changed the product", err)
			}
			return
		}
		if before.State == StateRetired {
			t.Fatalf("updated a RETIRED product")
		}
		if after.Version != before.Version && after.Version != before.Version+1 {
			t.Fatalf("update moved the version %d → %d", before.Version, after.Version)
		}
		if resp.GetProduct().GetVersion() != after.Version {
			t.Fatalf("response version %d, stored %d", resp.GetProduct().GetVersion(), after.Version)
		}
		checkStored(t, after)
	})
}

// The page sizes the API promises: 0 asks for 50, more than 200 gets 200.
const (
	fuzzDefaultPage = 50
	fuzzMaxPage     = 200
)

// firstPageToken is a token the service issued: the next_page_token of a
// first page of one product, with no filters, as staff.
func (w *fuzzWorld) firstPageToken(tb testing.TB) string {
	tb.Helper()
	ctx := auth.WithCaller(context.Background(), auth.Caller{Subject: "fuzz-staff", Role: auth.Staff})
	resp, err := w.s.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 1})
	if err != nil || resp.GetNextPageToken() == "" {
		tb.Fatalf("ListProducts of one: %v, %v", resp, err)
	}
	return resp.GetNextPageToken()
}

// FuzzListProducts: arbitrary page sizes, page tokens (issued or not), filters and
// name_contains by every kind of caller. Refusals are InvalidArgument; a
// page holds at most the size asked (200 at most), only products that
// match every filter and that the caller may see; its token leads on.
func FuzzListProducts(f *testing.F) {
	w := newFuzzWorld(f)
	valid := w.firstPageToken(f)
	f.Add(int32(0), "", uint8(9), "", int32(0), int32(0), int32(0), "", int64(0), "", uint8(0))
	f.Add(int32(1), "", uint8(9), "", int32(0), int32(0), int32(0), "", int64(0), "", uint8(0))
	f.Add(int32(2), valid, uint8(9), "", int32(0), int32(0), int32(0), "", int64(0), "", uint8(3))
	f.Add(int32(100000), valid, uint8(9), "", int32(0), int32(0), int32(0), "", int64(0), "", uint8(1))
	f.Add(int32(1), "", uint8(0), "", int32(1), int32(2), int32(1), "420106", int64(2_000_000), "楚江", uint8(1))
	f.Add(int32(1), valid, uint8(0), "", int32(1), int32(0), int32(0), "", int64(0), "", uint8(2))
	f.Add(int32(-1), "not a token", uint8(9), strings.Repeat("x", 65), int32(99), int32(-3), int32(10), "42", int64(-1), strings.Repeat("碳", 101), uint8(2))
	f.Add(int32(5), "eyJhIjoiIiwiZiI6IiJ9", uint8(9), "", int32(0), int32(4), int32(0), " 420000 ", int64(1), "ＣＨＵＪＩＡＮＧ", uint8(3))
	f.Add(int32(5), "e30", uint8(9), "", int32(0), int32(1), int32(0), "", int64(0), "  chujiang  ", uint8(1))
	f.Fuzz(func(t *testing.T, size int32, token string, instSel uint8, fuzzedInst string, category, state, sector int32,
		region string, amount int64, name string, callerSel uint8) {
		instID := w.inst(instSel, fuzzedInst)
		ctx, caller, _ := callerCtx(t.Context(), callerSel, w.insts[0].CreditCode)
		req := &catalogv1.ListProductsRequest{
			PageSize: size, PageToken: token, InstitutionId: instID,
			Category: catalogv1.ProductCategory(category), State: catalogv1.ProductState(state), Sector: catalogv1.Sector(sector),
			Region: region, AmountYuan: amount, NameContains: name,
		}
		resp, err := w.s.ListProducts(ctx, testenv.Wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument) != codes.OK {
			return
		}
		limit := int(size)
		switch {
		case size == 0:
			limit = fuzzDefaultPage
		case size > fuzzMaxPage:
			limit = fuzzMaxPage
		}
		if n := len(resp.GetProducts()); n > limit {
			t.Fatalf("page of %d for page_size %d", n, size)
		}
		for _, p := range resp.GetProducts() {
			if caller.Role != auth.Staff && p.GetState() != catalogv1.ProductState_PRODUCT_STATE_PUBLISHED && p.GetInstitutionCreditCode() != caller.Org {
				t.Fatalf("%s of %s listed %s's %s product", caller.Role, caller.Org, p.GetInstitutionCreditCode(), p.GetState())
			}
			if (strings.TrimSpace(instID) != "" && p.GetInstitutionId() != strings.TrimSpace(instID)) ||
				(category != 0 && p.GetCategory() != req.GetCategory()) || (state != 0 && p.GetState() != req.GetState()) {
				t.Fatalf("listed %v, which does not match %v", p, req)
			}
		}
		if next := resp.GetNextPageToken(); next != "" {
			req.PageToken = next
			more, err := w.s.ListProducts(ctx, req)
			if err != nil {
				t.Fatalf("the next page token is refused: %v", err)
			}
			if last, first := resp.GetProducts()[len(resp.GetProducts())-1].GetId(), more.GetProducts(); len(first) > 0 && first[0].GetId() <= last {
				t.Fatalf("the next page starts at %s, not after %s", first[0].GetId(), last)
			}
		}
	})
}

// FuzzProductTransitions: publish, pause and retire with any id, version
// and reason by every kind of caller. Refusals are InvalidArgument,
// NotFound, FailedPrecondition or Aborted; a refused transition changes
// nothing; another organisation's product is NotFound; a transition that
// succeeds moves the state as the table says (publishing only for an
// ACTIVE institution) and the version by one.
func FuzzProductTransitions(f *testing.F) {
	w := newFuzzWorld(f)
	for a := range 3 {
		for sel := range len(w.products) + 1 {
			f.Add(uint8(a), uint8(sel), "", int64(0), "fuzz reason", uint8(0))
		}
	}
	f.Add(uint8(0), uint8(0), "", int64(0), "", uint8(1))
	f.Add(uint8(1), uint8(1), "", int64(0), "", uint8(2))
	f.Add(uint8(2), uint8(2), "", int64(7), "stale", uint8(0))
	f.Add(uint8(1), uint8(1), "", int64(-1), strings.Repeat("理", 501), uint8(0))
	f.Add(uint8(2), uint8(0), "", int64(0), "a\x00b", uint8(3))
	f.Add(uint8(0), uint8(9), "01NOSUCHPRODUCT", int64(1), "", uint8(0))
	f.Add(uint8(0), uint8(9), "\xff/../x", int64(0), "", uint8(0))
	f.Fuzz(func(t *testing.T, act, sel uint8, fuzzedID string, version int64, reason string, callerSel uint8) {
		id := w.target(sel, fuzzedID)
		before := w.read(t, id)
		owner := ""
		if before != nil {
			owner = before.OwnerCode
		}
		ctx, caller, owns := callerCtx(t.Context(), callerSel, owner)
		a := []action{actPublish, actPause, actRetire}[int(act)%3]
		var (
			got *catalogv1.Product
			err error
		)
		switch a {
		case actPublish:
			var r *catalogv1.PublishProductResponse
			r, err = w.s.PublishProduct(ctx, testenv.Wire(t, &catalogv1.PublishProductRequest{Id: id, Version: version}))
			got = r.GetProduct()
		case actPause:
			var r *catalogv1.PauseProductResponse
			r, err = w.s.PauseProduct(ctx, testenv.Wire(t, &catalogv1.PauseProductRequest{Id: id, Version: version, Reason: reason}))
			got = r.GetProduct()
		case actRetire:
			var r *catalogv1.RetireProductResponse
			r, err = w.s.RetireProduct(ctx, testenv.Wire(t, &catalogv1.RetireProductRequest{Id: id, Version: version, Reason: reason}))
			got = r.GetProduct()
		}
		c := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Aborted)
		if before != nil && !owns && c != codes.NotFound && c != codes.InvalidArgument {
			t.Fatalf("%s of another organisation: %s answered %s; want NotFound", caller.Role, transitions[a].verb, c)
		}
		after := w.read(t, id)
		if c != codes.OK {
			if before != nil && (after.Version != before.Version || after.State != before.State) {
				t.Fatalf("refused transition (%v) changed the product", err)
			}
			return
		}
		if before == nil {
			t.Fatalf("transition of missing %q succeeded", id)
		}
		tr := transitions[a]
		if !slices.Contains(tr.from, before.State) || after.State != tr.to || got.GetState() != tr.to.proto() ||
			after.Version != before.Version+1 || got.GetVersion() != after.Version {
			t.Fatalf("%s moved %s v%d to %s v%d", tr.verb, before.State, before.Version, after.State, after.Version)
		}
		if i := slices.Index(w.products, id); a == actPublish && i >= 0 && w.slots[i].in.State != active {
			t.Fatalf("published a product of a %s institution", w.slots[i].in.State)
		}
		// Keep one product in every slot's state, so every action stays
		// reachable.
		w.replace(t, id)
	})
}

// FuzzSetReferencePrices: any prices, source and version by every kind of
// caller. Only staff set prices (others PermissionDenied); refusals are
// InvalidArgument or Aborted and change nothing; a setting moves the
// version by one and is what GetReferencePrices answers.
func FuzzSetReferencePrices(f *testing.F) {
	w := newFuzzWorld(f)
	f.Add(int64(80), int64(60), "national ETS weekly closing average", int64(0), false, uint8(0))
	f.Add(int64(1), int64(100_000), "  x  ", int64(0), true, uint8(0))
	f.Add(int64(0), int64(100_001), "", int64(0), false, uint8(0))
	f.Add(int64(-1), int64(-9_223_372_036_854_775_808), strings.Repeat("源", 201), int64(-1), false, uint8(0))
	f.Add(int64(80), int64(60), "stale", int64(99), false, uint8(0))
	f.Add(int64(80), int64(60), "by an institution", int64(0), true, uint8(1))
	f.Add(int64(80), int64(60), "by an enterprise", int64(0), true, uint8(3))
	f.Add(int64(80), int64(60), "\x00\u202e", int64(0), true, uint8(0))
	f.Fuzz(func(t *testing.T, cea, ccer int64, source string, version int64, pin bool, callerSel uint8) {
		before, _, err := w.s.ReferencePrices(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if pin {
			version = before.Version // reach the success path with the check on
		}
		ctx, caller, _ := callerCtx(t.Context(), callerSel, "")
		resp, err := w.s.SetReferencePrices(ctx, testenv.Wire(t, &catalogv1.SetReferencePricesRequest{
			CeaYuanPerTonne: cea, CcerYuanPerTonne: ccer, Source: source, Version: version}))
		c := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.Aborted, codes.PermissionDenied)
		if caller.Role != auth.Staff && c != codes.PermissionDenied {
			t.Fatalf("%s setting reference prices answered %s; want PermissionDenied", caller.Role, c)
		}
		after, _, err := w.s.ReferencePrices(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c != codes.OK {
			if after != before {
				t.Fatalf("refused setting (%v) changed the prices: %+v → %+v", err, before, after)
			}
			return
		}
		if after.Version != before.Version+1 || after.CEA != cea || after.CCER != ccer ||
			after.Source != strings.TrimSpace(source) || resp.GetPrices().GetVersion() != after.Version {
			t.Fatalf("set %d/%d %q: stored %+v (was v%d), answered %v", cea, ccer, source, after, before.Version, resp.GetPrices())
		}
		got, err := w.s.GetReferencePrices(ctx, &catalogv1.GetReferencePricesRequest{HistorySize: 1})
		if err != nil || got.GetCurrent().GetVersion() != after.Version || len(got.GetHistory()) != 1 || got.GetHistory()[0].GetVersion() != after.Version {
			t.Fatalf("GetReferencePrices after setting v%d: %v, %v", after.Version, got, err)
		}
	})
}
