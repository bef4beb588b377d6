package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// binDir holds the binary built once for every test of the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "carbondesk-e2e")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var buildOnce sync.Once

// buildBinary builds cmd/carbondesk as a user would, once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "carbondesk")
	var buildErr error
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the binary was not built: %v", err)
	}
	return bin
}

type proc struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpBase string // http://host:port of the gateway and console
	natsURL  string
	took     time.Duration
	done     chan struct{} // closed when the process has exited
	err      error         // its exit status, once done is closed
}

var (
	grpcLine  = regexp.MustCompile(`^\s+gRPC\s+(\S+)`)
	httpLine  = regexp.MustCompile(`^\s+console\s+(http://[^/\s]+)/`)
	natsLine  = regexp.MustCompile(`^\s+NATS\s+embedded, (nats://\S+)`)
	readyLine = regexp.MustCompile(`^CarbonDesk ready in (\S+)`)
)

// start runs the binary on dataDir with the embedded NATS listening on a
// loopback port (or with extra flags), and waits for its ready lines.
func start(t *testing.T, bin, dataDir string, extra ...string) *proc {
	t.Helper()
	args := []string{"--data", dataDir, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warn"}
	if len(extra) == 0 {
		extra = []string{"--nats-listen", "127.0.0.1:0"}
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	timeout := time.After(30 * time.Second)
	external := slices.Contains(extra, "--nats")
	for p.grpcAddr == "" || p.httpBase == "" || (p.natsURL == "" && !external) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("carbondesk exited before it was ready")
			}
			if m := readyLine.FindStringSubmatch(l); m != nil {
				p.took, _ = time.ParseDuration(m[1])
			}
			if m := grpcLine.FindStringSubmatch(l); m != nil {
				p.grpcAddr = m[1]
			}
			if m := httpLine.FindStringSubmatch(l); m != nil {
				p.httpBase = m[1]
			}
			if m := natsLine.FindStringSubmatch(l); m != nil {
				p.natsURL = m[1]
			}
		case <-timeout:
			t.Fatal("carbondesk did not print its addresses within 30 s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// token runs 'carbondesk token' as a user would and returns the token.
func token(t *testing.T, bin, dataDir string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"token", "--data", dataDir}, args...)...).Output()
	if err != nil {
		t.Fatalf("carbondesk token %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// restGet reads url with the bearer token and returns the 200 answer's body.
func restGet(t *testing.T, url, tok string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// authed returns ctx carrying the bearer token.
func authed(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func client(t *testing.T, addr string) (registryv1.RegistryServiceClient, *grpc.ClientConn) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return registryv1.NewRegistryServiceClient(cc), cc
}

// streamEvents reads every envelope in the REGISTRY stream.
func streamEvents(t *testing.T, url string) map[string]int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "REGISTRY")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		counts[env.Type+" "+env.EntityId]++
		counts["actor "+env.Type+" "+env.EntityId+" "+env.GetActor().GetSubject()]++
	}
	return counts
}

// talentCounts is how many events and talent profiles staff find.
func talentCounts(ctx context.Context, t *testing.T, cc *grpc.ClientConn) [2]int {
	t.Helper()
	c := talentv1.NewTalentServiceClient(cc)
	evs, err := c.ListEvents(ctx, &talentv1.ListEventsRequest{PageSize: 200})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	ps, err := c.ListTalents(ctx, &talentv1.ListTalentsRequest{PageSize: 200})
	if err != nil {
		t.Fatalf("ListTalents: %v", err)
	}
	return [2]int{len(evs.GetEvents()), len(ps.GetTalents())}
}

// TestBinaryEndToEnd builds and runs carbondesk as a user would, calls it
// over gRPC, kills it with SIGKILL, starts it again on the same data folder
// and finds the data and exactly one event per change; then stops it with
// SIGINT and expects a clean exit.
func TestBinaryEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()

	p := start(t, bin, data)
	t.Logf("first start (with seeding) ready in %s", p.took)
	reg, cc := client(t, p.grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := reg.GetRegistryStats(ctx, &registryv1.GetRegistryStatsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a call without a token: %v, want Unauthenticated", err)
	}
	tok := token(t, bin, data, "--role", "staff")
	ctx = authed(ctx, tok)

	if h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	seeded, err := reg.ListInstitutions(ctx, &registryv1.ListInstitutionsRequest{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(seeded.Institutions) < 40 {
		t.Fatalf("seeds: %d institutions, want >= 40", len(seeded.Institutions))
	}
	season := talentCounts(ctx, t, cc)
	if season[0] < 12 || season[1] < 12 {
		t.Fatalf("seeds: %d talent-base events and %d talents, want >= 12 of each", season[0], season[1])
	}

	created, err := reg.RegisterInstitution(ctx, &registryv1.RegisterInstitutionRequest{
		CreditCode: "91420106MA4K00010G",
		NameZh:     "端到端测试碳资产管理有限公司",
		NameEn:     "End-to-End Carbon Asset Management Co., Ltd.",
		Kind:       registryv1.InstitutionKind_INSTITUTION_KIND_CARBON_ASSET_MANAGER,
		Tier:       registryv1.Tier_TIER_LEGAL_ENTITY,
		Zone:       registryv1.Zone_ZONE_FINANCE_AXIS,
		Address:    "武汉市武昌区中北路1号",
		Contact:    &registryv1.Contact{Name: "王工", Phone: "027-88880000", Email: "desk@example.cn"},
	})
	if err != nil {
		t.Fatalf("RegisterInstitution: %v", err)
	}
	id := created.Institution.Id
	approved, err := reg.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: id, Reason: "licences checked"})
	if err != nil {
		t.Fatalf("ApproveInstitution: %v", err)
	}
	// Wait until the approval's event is in the stream, then kill -9.
	deadline := time.Now().Add(10 * time.Second)
	for streamEvents(t, p.natsURL)["registry.institution.approved "+id] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("approval event not in the stream within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := start(t, bin, data)
	t.Logf("restart ready in %s", p2.took)
	reg2, cc2 := client(t, p2.grpcAddr)
	got, err := reg2.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: id})
	if err != nil {
		t.Fatalf("GetInstitution after restart: %v", err)
	}
	if got.Institution.State != registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE || got.Institution.Version != approved.Institution.Version {
		t.Fatalf("after restart: state %v version %d, want ACTIVE version %d", got.Institution.State, got.Institution.Version, approved.Institution.Version)
	}
	again, err := reg2.ListInstitutions(ctx, &registryv1.ListInstitutionsRequest{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Institutions) != len(seeded.Institutions)+1 {
		t.Fatalf("after restart %d institutions, want %d (seeds must not load twice)", len(again.Institutions), len(seeded.Institutions)+1)
	}
	if got := talentCounts(ctx, t, cc2); got != season {
		t.Fatalf("after restart %v talent-base events and talents, want %v (seeds must not load twice)", got, season)
	}
	// The same, through the REST gateway with the same token.
	var rest struct {
		Institution struct{ State string }
	}
	if body := restGet(t, p2.httpBase+"/v1/institutions/"+id, tok); json.Unmarshal([]byte(body), &rest) != nil ||
		rest.Institution.State != "INSTITUTION_STATE_ACTIVE" {
		t.Errorf("GET /v1/institutions/%s: %s, want it ACTIVE", id, body)
	}
	counts := streamEvents(t, p2.natsURL)
	for _, typ := range []string{"registry.institution.registered", "registry.institution.approved"} {
		if n := counts[typ+" "+id]; n != 1 {
			t.Errorf("%s events for %s: %d, want exactly 1", typ, id, n)
		}
		// The token's subject is the event's actor.
		if n := counts["actor "+typ+" "+id+" dev-staff"]; n != 1 {
			t.Errorf("%s event for %s does not carry the actor dev-staff", typ, id)
		}
	}

	// Ctrl-C: a clean stop with exit status 0.
	if err := p2.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.done:
		if p2.err != nil {
			t.Fatalf("exit after SIGINT: %v", p2.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("carbondesk did not stop within 15 s of SIGINT")
	}
}

// TestBinaryExternalServers runs the binary against a Redis and a NATS
// server of its own (--redis, --nats), as one service per process will:
// the data live in Redis, not the data folder, and survive a SIGKILL.
func TestBinaryExternalServers(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	rp := testenv.RedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	ns := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})
	js := testenv.JetStream(t, ns)
	flags := []string{"--redis", rp.URL(), "--nats", ns.ClientURL()}

	p := start(t, bin, data, flags...)
	reg, _ := client(t, p.grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok := token(t, bin, data, "--role", "staff")
	ctx = authed(ctx, tok)
	created, err := reg.RegisterInstitution(ctx, &registryv1.RegisterInstitutionRequest{
		CreditCode: "91110108551385082Q",
		NameZh:     "外部服务测试证券有限公司",
		Kind:       registryv1.InstitutionKind_INSTITUTION_KIND_SECURITIES,
		Tier:       registryv1.Tier_TIER_REGIONAL_HQ,
		Zone:       registryv1.Zone_ZONE_RIVERSIDE_BELT,
		Address:    "武汉市武昌区临江大道 96 号",
		Contact:    &registryv1.Contact{Name: "李经理", Phone: "027-87654321", Email: "desk@example.cn"},
	})
	if err != nil {
		t.Fatalf("RegisterInstitution: %v", err)
	}
	id := created.Institution.Id
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, env := range testenv.StreamEnvelopes(t, js, "REGISTRY") {
			if env.EntityId == id && env.Type == "registry.institution.registered" {
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(filepath.Join(data, "registry.db")); !os.IsNotExist(err) {
		t.Fatalf("with --redis the embedded store file exists (err %v)", err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done

	p2 := start(t, bin, data, flags...)
	reg2, _ := client(t, p2.grpcAddr)
	got, err := reg2.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: id})
	if err != nil {
		t.Fatalf("GetInstitution after restart: %v", err)
	}
	if got.Institution.CreditCode != "91110108551385082Q" {
		t.Fatalf("after restart: %v", got.Institution)
	}
	n := 0
	for _, env := range testenv.StreamEnvelopes(t, js, "REGISTRY") {
		if env.EntityId == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d events for %s in the stream, want 1", n, id)
	}
}
