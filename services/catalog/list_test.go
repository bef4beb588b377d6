package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestListTenThousand writes 10,000 products of three institutions in
// varied categories, states, sectors, regions and amounts, then pages
// through them with each filter while other callers keep creating and
// updating products: every product that matched before paging began comes
// exactly once, in id order, none lost or repeated, on both stores.
func TestListTenThousand(t *testing.T) {
	t.Parallel()
	const n = 10_000
	cats, sectors := Categories(), Sectors()
	states := []State{StatePublished, StatePublished, StatePublished, StateDraft, StatePaused, StateRetired}
	regions := [][]string{nil, {"420000"}, {"420100"}, {"420106"}, {"430000", "420500"}}
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		insts := []*Institution{institutionView(t, s, active), institutionView(t, s, active), institutionView(t, s, active)}
		var all []*Product
		for k, in := range insts {
			m := n / len(insts)
			if k == 0 {
				m += n % len(insts)
			}
			bulkProducts(t, s, in, m, StatePublished, func(i int, p *Product) {
				j := i*len(insts) + k
				p.Category = cats[j%len(cats)]
				p.State = states[j%len(states)]
				p.Sectors = nil
				if j%3 != 0 {
					p.Sectors = []Sector{sectors[j%len(sectors)], sectors[(j+4)%len(sectors)]}
				}
				p.Regions = regions[j%len(regions)]
				p.Amount = Range{int64(1+j%7) * 1_000_000, int64(1+j%7) * 1_000_000 * int64(1+j%5)}
				p.NameZh = fmt.Sprintf("碳产品%05d号", j)
				if j%10 == 0 {
					p.NameZh = fmt.Sprintf("绿色碳贷%05d号", j)
				}
				all = append(all, p)
			})
		}
		slices.SortFunc(all, func(a, b *Product) int { return strings.Compare(a.ID, b.ID) })

		// Writers: new products and description updates until paging ends.
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var created []string
		var updated atomic.Int64
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				resp, err := s.CreateProduct(staffCtx(t), &catalogv1.CreateProductRequest{InstitutionId: insts[i%3].ID, Product: validProduct()})
				if err != nil {
					t.Errorf("concurrent create: %v", err)
					return
				}
				mu.Lock()
				created = append(created, resp.GetProduct().GetId())
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := all[(i*7919)%n].ID
				cur, err := s.GetProduct(staffCtx(t), &catalogv1.GetProductRequest{Id: id})
				if err != nil {
					t.Errorf("concurrent read: %v", err)
					return
				}
				_, err = s.UpdateProduct(staffCtx(t), &catalogv1.UpdateProductRequest{Id: id, Version: cur.GetProduct().GetVersion(),
					Product: &catalogv1.Product{Description: fmt.Sprintf("第%d次修订", i)}})
				if err == nil {
					updated.Add(1)
				}
				if err != nil && code(err) != codes.Aborted && code(err) != codes.FailedPrecondition {
					t.Errorf("concurrent update: %v", err)
					return
				}
			}
		})

		filters := []struct {
			name string
			req  *catalogv1.ListProductsRequest
			ctx  context.Context
			want func(p *Product) bool
		}{
			{"all", &catalogv1.ListProductsRequest{}, staffCtx(t), func(*Product) bool { return true }},
			{"published pledge", &catalogv1.ListProductsRequest{Category: catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE, State: catalogv1.ProductState_PRODUCT_STATE_PUBLISHED},
				staffCtx(t), func(p *Product) bool { return p.Category == CategoryCarbonPledge && p.State == StatePublished }},
			{"steel covering 5m", &catalogv1.ListProductsRequest{Sector: catalogv1.Sector_SECTOR_STEEL, AmountYuan: 5_000_000},
				staffCtx(t), func(p *Product) bool {
					return (len(p.Sectors) == 0 || slices.Contains(p.Sectors, SectorSteel)) && p.Amount.Min <= 5_000_000 && 5_000_000 <= p.Amount.Max
				}},
			{"wuchang", &catalogv1.ListProductsRequest{Region: "420106"}, staffCtx(t), func(p *Product) bool {
				return len(p.Regions) == 0 || slices.ContainsFunc(p.Regions, func(r string) bool { return r == "420000" || r == "420100" || r == "420106" })
			}},
			{"institution paused", &catalogv1.ListProductsRequest{InstitutionId: insts[1].ID, State: catalogv1.ProductState_PRODUCT_STATE_PAUSED},
				staffCtx(t), func(p *Product) bool { return p.InstitutionID == insts[1].ID && p.State == StatePaused }},
			{"name", &catalogv1.ListProductsRequest{NameContains: "绿色碳贷"}, staffCtx(t), func(p *Product) bool { return strings.Contains(p.NameZh, "绿色碳贷") }},
			{"enterprise", &catalogv1.ListProductsRequest{}, entCtx(t), func(p *Product) bool { return p.State == StatePublished }},
			{"institution caller", &catalogv1.ListProductsRequest{Category: catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FUND}, instCtx(t, insts[2].CreditCode),
				func(p *Product) bool {
					return p.Category == CategoryCarbonFund && (p.State == StatePublished || p.InstitutionID == insts[2].ID)
				}},
		}
		results := map[string][]string{}
		for _, f := range filters {
			var got []string
			req := f.req
			req.PageSize = 200
			pages := 0
			for {
				resp, err := s.ListProducts(f.ctx, req)
				if err != nil {
					t.Fatalf("%s page %d: %v", f.name, pages+1, err)
				}
				pages++
				if resp.GetNextPageToken() != "" && len(resp.GetProducts()) != 200 {
					t.Errorf("%s page %d: %d products with a next page", f.name, pages, len(resp.GetProducts()))
				}
				for _, p := range resp.GetProducts() {
					got = append(got, p.GetId())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			results[f.name] = got
		}
		stop()
		wg.Wait()
		// Checked once the writers stopped: a product created meanwhile is
		// known by then.
		for _, f := range filters {
			got := results[f.name]
			if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Errorf("%s: ids not strictly ascending (a repeat or a reorder)", f.name)
			}
			var want []string
			for _, p := range all {
				if f.want(p) {
					want = append(want, p.ID)
				}
			}
			// Everything that matched before paging is there; anything else
			// must be a product created meanwhile.
			extra := 0
			for _, id := range got {
				if _, found := slices.BinarySearch(want, id); !found {
					if !slices.Contains(created, id) {
						t.Errorf("%s: lists %s, which neither matched nor was created meanwhile", f.name, id)
					}
					extra++
				}
			}
			if len(got)-extra != len(want) {
				t.Errorf("%s: %d of %d matching products listed", f.name, len(got)-extra, len(want))
			}
			if len(want) == 0 {
				t.Errorf("%s: the fixture has no matching product; the filter tests nothing", f.name)
			}
		}
		if len(created) == 0 || updated.Load() == 0 {
			t.Errorf("%d products created and %d updated while paging; want some of each", len(created), updated.Load())
		}
		t.Logf("%d products created and %d updated while paging", len(created), updated.Load())
	})
}

// TestListValidation: bad filters and tokens are refused with the field
// named; a token is bound to its filters; page size is capped.
func TestListValidation(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		in := institutionView(t, s, active)
		bulkProducts(t, s, in, 250, StatePublished, nil)
		ctx := staffCtx(t)
		resp, err := s.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 5000})
		if err != nil || len(resp.GetProducts()) != paging.MaxSize || resp.GetNextPageToken() == "" {
			t.Fatalf("capped page: %d, %v", len(resp.GetProducts()), err)
		}
		for name, tt := range map[string]struct {
			req   *catalogv1.ListProductsRequest
			field string
		}{
			"negative size":  {&catalogv1.ListProductsRequest{PageSize: -1}, "page_size"},
			"bad token":      {&catalogv1.ListProductsRequest{PageToken: "garbage"}, "page_token"},
			"other filters":  {&catalogv1.ListProductsRequest{PageToken: resp.GetNextPageToken(), Category: 2}, "page_token"},
			"bad region":     {&catalogv1.ListProductsRequest{Region: "42"}, "region"},
			"bad category":   {&catalogv1.ListProductsRequest{Category: 77}, "category"},
			"bad state":      {&catalogv1.ListProductsRequest{State: 9}, "state"},
			"bad sector":     {&catalogv1.ListProductsRequest{Sector: 99}, "sector"},
			"negative money": {&catalogv1.ListProductsRequest{AmountYuan: -1}, "amount_yuan"},
			"long name":      {&catalogv1.ListProductsRequest{NameContains: strings.Repeat("碳", 101)}, "name_contains"},
		} {
			_, err := s.ListProducts(ctx, tt.req)
			if !slices.Equal(violationFields(err), []string{tt.field}) {
				t.Errorf("%s: %v, want a violation of %s", name, err, tt.field)
			}
		}
	})
}
