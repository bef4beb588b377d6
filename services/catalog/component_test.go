package catalog

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TestComponent runs the catalog as production does (a real gRPC server
// with the platform's interceptors, the Redis store, the outbox relay and
// the institution feed on an embedded JetStream) and drives it through the
// generated client: an institution approved in the registry creates and
// publishes a product, an enterprise finds it, a suspension in the registry
// pauses it, and errors arrive with their codes and field violations.
func TestComponent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	e := startFeed(t, testenv.RedisStore(t))

	// A real server; the callers' headers stand in for verified tokens.
	srv := grpcx.New(slog.New(slog.DiscardHandler), grpcx.Options{Unary: []grpc.UnaryServerInterceptor{testenv.CallerInterceptor}})
	e.s.Register(srv.Server)
	cc := testenv.ServeGRPC(t, srv)
	client := catalogv1.NewCatalogServiceClient(cc)
	as := func(role auth.Role, org string) context.Context { return testenv.AsCaller(ctx, role, org) }
	const code = "91420106MA4K00010G"
	staff, bank, firm := as(auth.Staff, ""), as(auth.Institution, code), as(auth.Enterprise, "91420106ENTERPRISE1")

	// The registry approves the bank; the feed brings it to the catalog.
	reg := &registryv1.Institution{Id: "01JCOMPONENT0000000000001", CreditCode: code, Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK,
		State: registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE, Version: 2}
	e.publish(t, registry.SubjectApproved, reg)
	e.view(t, reg.GetId(), 2)

	if _, err := client.SetReferencePrices(staff, &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: 72, CcerYuanPerTonne: 85, Source: "weekly close"}); err != nil {
		t.Fatalf("SetReferencePrices: %v", err)
	}
	created, err := client.CreateProduct(bank, &catalogv1.CreateProductRequest{Product: validProduct()})
	if err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	id := created.GetProduct().GetId()
	if _, err := client.PublishProduct(bank, &catalogv1.PublishProductRequest{Id: id, Version: 1}); err != nil {
		t.Fatalf("PublishProduct: %v", err)
	}
	list, err := client.ListProducts(firm, &catalogv1.ListProductsRequest{Sector: catalogv1.Sector_SECTOR_STEEL, Region: "420106", AmountYuan: 5_000_000})
	if err != nil || len(list.GetProducts()) != 1 || list.GetProducts()[0].GetId() != id {
		t.Fatalf("enterprise lists %v, %v; want product %s", list.GetProducts(), err, id)
	}
	prices, err := client.GetReferencePrices(firm, &catalogv1.GetReferencePricesRequest{})
	if err != nil || prices.GetCurrent().GetCeaYuanPerTonne() != 72 {
		t.Errorf("GetReferencePrices: %v %v", prices, err)
	}

	// Suspension in the registry pauses it.
	reg.State, reg.Version = registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED, 3
	e.publish(t, registry.SubjectSuspended, reg)
	testenv.Eventually(t, 10*time.Second, func() bool {
		r, err := client.GetProduct(bank, &catalogv1.GetProductRequest{Id: id})
		return err == nil && r.GetProduct().GetState() == catalogv1.ProductState_PRODUCT_STATE_PAUSED
	})

	// Errors keep their codes over the wire.
	_, err = client.PublishProduct(bank, &catalogv1.PublishProductRequest{Id: id})
	testenv.WantStatus(t, err, codes.FailedPrecondition, "institution "+reg.GetId()+" is SUSPENDED; only an ACTIVE institution publishes products")
	_, err = client.UpdateProduct(bank, &catalogv1.UpdateProductRequest{Id: id, Version: 1, Product: &catalogv1.Product{NameEn: "Late"}})
	testenv.WantStatus(t, err, codes.Aborted, "version 1 is stale; the product is at version 3; read it again")
	_, err = client.GetProduct(firm, &catalogv1.GetProductRequest{Id: id})
	testenv.WantStatus(t, err, codes.NotFound, `product "`+id+`" not found`)
	bad := validProduct()
	bad.Amount.MinYuan, bad.Collateral.PledgeRateBps = -1, 20000
	_, err = client.CreateProduct(bank, &catalogv1.CreateProductRequest{Product: bad})
	if got := testenv.FieldViolations(err); !cmp.Equal(got, []string{"product.amount.min_yuan", "product.collateral.pledge_rate_bps"}) {
		t.Errorf("create with bad amount and pledge rate: %v; fields %v", err, got)
	}

	// The CATALOG stream holds each change.
	want := []string{
		SubjectReferencePricesSet + " " + ReferencePricesID + " v1",
		SubjectCreated + " " + id + " v1",
		SubjectPublished + " " + id + " v2",
		SubjectPaused + " " + id + " v3",
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(e.catalogEvents(t)) >= len(want) })
	if diff := cmp.Diff(want, e.catalogEvents(t)); diff != "" {
		t.Errorf("CATALOG stream (-want +got):\n%s", diff)
	}
	if ServiceName != catalogv1.CatalogService_ServiceDesc.ServiceName {
		t.Errorf("ServiceName %q, generated %q", ServiceName, catalogv1.CatalogService_ServiceDesc.ServiceName)
	}
}
