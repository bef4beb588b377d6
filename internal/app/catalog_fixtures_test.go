package app_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
)

// product is a valid product's terms.
func product(marker string) *catalogv1.Product {
	return &catalogv1.Product{
		NameZh:      "楚江碳排放配额质押贷" + marker,
		NameEn:      "Chujiang CEA Pledge Loan " + marker,
		Category:    catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE,
		DemandKinds: []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING},
		Amount:      &catalogv1.AmountRange{MinYuan: 1_000_000, MaxYuan: 50_000_000},
		Term:        &catalogv1.TermRange{MinMonths: 6, MaxMonths: 36},
		Price:       &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: 320, MaxBps: 450}}},
		Collateral:  &catalogv1.Collateral{Asset: catalogv1.CarbonAsset_CARBON_ASSET_CEA, PledgeRateBps: 6000},
		Contact:     &catalogv1.Contact{Name: "王晓岚", Phone: "027-8765 4321"},
	}
}

// activeInstitution is an ACTIVE institution of org that the catalog's view
// of the registry already knows as ACTIVE (the view follows events).
func (a *testApp) activeInstitution(t testing.TB, org string) *registryv1.Institution {
	t.Helper()
	in := a.inState(t, org, registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE)
	cat := catalogv1.NewCatalogServiceClient(a.conn)
	// A publish succeeds only once the view holds the institution ACTIVE:
	// a throw-away product tells when.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := cat.CreateProduct(a.staff(t), &catalogv1.CreateProductRequest{InstitutionId: in.GetId(), Product: product(newMarker())})
		if err == nil {
			_, err = cat.PublishProduct(a.staff(t), &catalogv1.PublishProductRequest{Id: r.GetProduct().GetId()})
			if err == nil {
				return in
			}
		}
		if status.Code(err) != codes.FailedPrecondition || time.Now().After(deadline) {
			t.Fatalf("the catalog does not see institution %s as ACTIVE: %v", in.GetId(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// productIn is a product of org's ACTIVE institution, in state.
func (a *testApp) productIn(t testing.TB, org string, state catalogv1.ProductState) *catalogv1.Product {
	t.Helper()
	in := a.activeInstitution(t, org)
	cat := catalogv1.NewCatalogServiceClient(a.conn)
	r, err := cat.CreateProduct(a.staff(t), &catalogv1.CreateProductRequest{InstitutionId: in.GetId(), Product: product(newMarker())})
	if err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	p := r.GetProduct()
	if state == catalogv1.ProductState_PRODUCT_STATE_DRAFT {
		return p
	}
	pr, err := cat.PublishProduct(a.staff(t), &catalogv1.PublishProductRequest{Id: p.GetId()})
	if err != nil {
		t.Fatalf("PublishProduct: %v", err)
	}
	if state == catalogv1.ProductState_PRODUCT_STATE_PUBLISHED {
		return pr.GetProduct()
	}
	t.Fatalf("productIn: %s is not a state to set up", state)
	return nil
}

// onProduct is a call acting on a product.
func onProduct(a *testApp, p *catalogv1.Product, req proto.Message) call {
	return call{req: req, object: p.GetId(), snapshot: func(t *testing.T) proto.Message {
		r, err := catalogv1.NewCatalogServiceClient(a.conn).GetProduct(a.staff(t), &catalogv1.GetProductRequest{Id: p.GetId()})
		if err != nil {
			t.Fatalf("GetProduct %s as staff: %v", p.GetId(), err)
		}
		return r.GetProduct()
	}}
}

// catalogFixtures are the matrix fixtures of the catalog's RPCs. Objects
// that must not be public are DRAFT products.
func catalogFixtures() map[string]fixture {
	draft := catalogv1.ProductState_PRODUCT_STATE_DRAFT
	return map[string]fixture{
		catalogv1.CatalogService_CreateProduct_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				in := a.activeInstitution(t, org)
				return call{req: &catalogv1.CreateProductRequest{InstitutionId: in.GetId(), Product: product(newMarker())}}
			},
		},
		catalogv1.CatalogService_GetProduct_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.productIn(t, org, draft)
				return onProduct(a, p, &catalogv1.GetProductRequest{Id: p.GetId()})
			},
		},
		catalogv1.CatalogService_ListProducts_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.productIn(t, org, draft)
				return onProduct(a, p, &catalogv1.ListProductsRequest{InstitutionId: p.GetInstitutionId(), PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				var out []string
				for _, p := range resp.(*catalogv1.ListProductsResponse).GetProducts() {
					out = append(out, p.GetId())
				}
				return out
			},
		},
		catalogv1.CatalogService_UpdateProduct_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.productIn(t, org, draft)
				return onProduct(a, p, &catalogv1.UpdateProductRequest{Id: p.GetId(), Version: p.GetVersion(),
					Product: &catalogv1.Product{Description: "renewed terms"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
			},
		},
		catalogv1.CatalogService_PublishProduct_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.productIn(t, org, draft)
				return onProduct(a, p, &catalogv1.PublishProductRequest{Id: p.GetId(), Version: p.GetVersion()})
			},
		},
		catalogv1.CatalogService_PauseProduct_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.productIn(t, org, catalogv1.ProductState_PRODUCT_STATE_PUBLISHED)
				// A published product is public; the matrix's NotFound for
				// another organisation still holds, since pausing is a write
				// on an object the caller does not own.
				return onProduct(a, p, &catalogv1.PauseProductRequest{Id: p.GetId(), Reason: "repricing"})
			},
		},
		catalogv1.CatalogService_RetireProduct_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.productIn(t, org, draft)
				return onProduct(a, p, &catalogv1.RetireProductRequest{Id: p.GetId(), Reason: "withdrawn"})
			},
		},
		catalogv1.CatalogService_GetCatalogStats_FullMethodName: {
			request: func(*testing.T, *testApp, string) call {
				return call{req: &catalogv1.GetCatalogStatsRequest{}}
			},
		},
		catalogv1.CatalogService_GetReferencePrices_FullMethodName: {
			request: func(*testing.T, *testApp, string) call {
				return call{req: &catalogv1.GetReferencePricesRequest{}}
			},
		},
		catalogv1.CatalogService_SetReferencePrices_FullMethodName: {
			request: func(*testing.T, *testApp, string) call {
				return call{req: &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: 75, CcerYuanPerTonne: 88, Source: "matrix test"}}
			},
		},
	}
}
