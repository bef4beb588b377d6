package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/services/registry"
)

// testApp is a whole carbondesk (app.Run) started inside the test process
// on a fresh data folder, with a client connection to its gRPC listener and
// the data folder's development key to mint tokens with.
type testApp struct {
	cfg      app.Config
	ready    app.Ready
	conn     *grpc.ClientConn
	registry registryv1.RegistryServiceClient
	issuer   auth.Issuer
}

// startApp runs app.Run as the binary does (embedded NATS, bolt store in
// t.TempDir(), no demo data, an ephemeral gRPC port) with write limits high
// enough not to matter unless tune lowers them. log nil discards the logs.
// The app stops, and must stop cleanly, when the test ends.
func startApp(t *testing.T, log *slog.Logger, tune func(*app.Config)) *testApp {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = ""
	cfg.Seed = false
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.WritesPerSecond = 1e6
	cfg.WriteBurst = 1e6
	if tune != nil {
		tune(&cfg)
	}

	r, _ := apptest.Start(t, cfg, log, 30*time.Second)

	// The key a carbondesk on this data folder trusts: Run created it.
	key, created, err := auth.LoadOrCreateDevKey(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if created || !r.DevTokens {
		t.Fatalf("the app did not create and trust the data folder's development key (created now: %v, dev tokens: %v)", created, r.DevTokens)
	}
	conn, err := grpc.NewClient(r.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &testApp{
		cfg:      cfg,
		ready:    r,
		conn:     conn,
		registry: registryv1.NewRegistryServiceClient(conn),
		issuer:   auth.Issuer{Key: key},
	}
}

// token mints a token for c, valid for an hour, with the app's key.
func (a *testApp) token(t testing.TB, c auth.Caller) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject = fmt.Sprintf("test-%s-%s", c.Role, c.Org)
	}
	tok, err := a.issuer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// as returns a context whose calls carry a token for role and org.
func (a *testApp) as(t testing.TB, role auth.Role, org string) context.Context {
	t.Helper()
	return bearer(t.Context(), a.token(t, auth.Caller{Role: role, Org: org}))
}

// staff is a district staff member, of the district's own organisation.
func (a *testApp) staff(t testing.TB) context.Context {
	t.Helper()
	return a.as(t, auth.Staff, districtOrg)
}

// bearer returns ctx with tok as its bearer token.
func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// districtOrg is the organisation staff tokens carry: the district
// government's own code, never an institution's.
var districtOrg = mustCode("11420106MB0000001")

var codeSeq atomic.Int64

// newOrg returns a fresh organisation: a valid unified social credit code
// no other call of the test run returns.
func newOrg(t testing.TB) string {
	t.Helper()
	return mustCode(fmt.Sprintf("91420106A%08d", codeSeq.Add(1)))
}

func mustCode(first17 string) string {
	code, err := registry.CompleteCreditCode(first17)
	if err != nil {
		panic(err)
	}
	return code
}

// registration is a valid registration of org whose English name carries
// marker, so a list can find it with name_contains.
func registration(org, marker string) *registryv1.RegisterInstitutionRequest {
	return &registryv1.RegisterInstitutionRequest{
		CreditCode: org,
		NameZh:     "楚江碳金融银行武昌分行",
		NameEn:     "Chujiang Carbon Finance Bank " + marker,
		Kind:       registryv1.InstitutionKind_INSTITUTION_KIND_BANK,
		Tier:       registryv1.Tier_TIER_BRANCH,
		Zone:       registryv1.Zone_ZONE_FINANCE_AXIS,
		Address:    "武汉市武昌区中南路 88 号",
		Contact:    &registryv1.Contact{Name: "王晓岚", Phone: "027-8765 4321", Email: "desk@chujiang.example"},
	}
}

// register files a PENDING institution of org as district staff.
func (a *testApp) register(t testing.TB, org, marker string) *registryv1.Institution {
	t.Helper()
	resp, err := a.registry.RegisterInstitution(a.staff(t), registration(org, marker))
	if err != nil {
		t.Fatalf("RegisterInstitution %s: %v", org, err)
	}
	return resp.GetInstitution()
}

// inState registers an institution of org and has staff review it into
// state (PENDING, ACTIVE or SUSPENDED).
func (a *testApp) inState(t testing.TB, org string, state registryv1.InstitutionState) *registryv1.Institution {
	t.Helper()
	in := a.register(t, org, "")
	ctx := a.staff(t)
	if state == registryv1.InstitutionState_INSTITUTION_STATE_PENDING {
		return in
	}
	r, err := a.registry.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: in.GetId(), Reason: "licences checked"})
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	in = r.GetInstitution()
	switch state {
	case registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE:
		return in
	case registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED:
		r, err := a.registry.SuspendInstitution(ctx, &registryv1.SuspendInstitutionRequest{Id: in.GetId(), Reason: "annual report overdue"})
		if err != nil {
			t.Fatalf("suspend: %v", err)
		}
		return r.GetInstitution()
	}
	t.Fatalf("inState: %s is not a state to review into", state)
	return nil
}

// read returns an institution as staff see it.
func (a *testApp) read(t testing.TB, id string) *registryv1.Institution {
	t.Helper()
	r, err := a.registry.GetInstitution(a.staff(t), &registryv1.GetInstitutionRequest{Id: id})
	if err != nil {
		t.Fatalf("GetInstitution %s as staff: %v", id, err)
	}
	return r.GetInstitution()
}

// listedIDs lists, as ctx's caller, every institution whose name holds
// marker, and returns their ids.
func (a *testApp) listedIDs(t testing.TB, ctx context.Context, marker string) []string {
	t.Helper()
	r, err := a.registry.ListInstitutions(ctx, &registryv1.ListInstitutionsRequest{NameContains: marker, PageSize: 200})
	if err != nil {
		t.Fatalf("ListInstitutions %q: %v", marker, err)
	}
	return ids(r.GetInstitutions())
}

func ids(ins []*registryv1.Institution) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.GetId()
	}
	return out
}

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v (%s), want %s", what, err, got, want)
	}
}

var markerSeq atomic.Int64

// newMarker returns a word no other institution's name holds (fixed
// width, so no marker contains another).
func newMarker() string {
	return fmt.Sprintf("mk%06dq", markerSeq.Add(1))
}
