package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

// natsNode is one node of the test's three-node JetStream cluster, kept with
// its options so it can be started again on the same ports and folder.
type natsNode struct {
	opts *server.Options
	ns   *server.Server
}

// freePort returns a loopback port nothing listens on right now (never
// 4222, where a system NATS may run).
func freePort(t *testing.T) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != 4222 && port != 6222 && port != 8222 {
			return port
		}
	}
}

func (n *natsNode) start(t *testing.T) {
	t.Helper()
	o := *n.opts // NewServer keeps and mutates its options
	o.Routes = append([]*url.URL(nil), n.opts.Routes...)
	ns, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("nats node %s: %v", n.opts.ServerName, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatalf("nats node %s not ready within 10 s", n.opts.ServerName)
	}
	n.ns = ns
}

func (n *natsNode) stop() {
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
}

func (n *natsNode) url() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
}

// startCluster starts three clustered JetStream nodes on free loopback
// ports, each with its store in a t.TempDir, and waits for a meta leader.
func startCluster(t *testing.T) []*natsNode {
	t.Helper()
	routes := make([]*url.URL, 3)
	nodes := make([]*natsNode, 3)
	for i := range nodes {
		cport := freePort(t)
		routes[i] = &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(cport)}
		nodes[i] = &natsNode{opts: &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       freePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "carbondesk-test",
				Host: "127.0.0.1",
				Port: cport,
			},
		}}
	}
	for _, n := range nodes {
		n.opts.Routes = routes
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := *n.opts
			ns, err := server.NewServer(&o)
			if err != nil {
				errs <- err
				return
			}
			ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				errs <- fmt.Errorf("nats node %s not ready", o.ServerName)
			}
			n.ns = ns
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for metaLeader(nodes) == "" {
		if time.Now().After(deadline) {
			t.Fatal("the NATS cluster elected no JetStream meta leader within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nodes
}

// metaLeader is the server name of the JetStream meta leader, "" if none.
func metaLeader(nodes []*natsNode) string {
	for _, n := range nodes {
		if n.ns != nil && n.ns.Running() && n.ns.JetStreamIsLeader() {
			return n.opts.ServerName
		}
	}
	return ""
}

func clusterURLs(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// callLog records the outcome of every call of the load.
type callLog struct {
	mu          sync.Mutex
	ok, failed  map[string]int
	codes       map[codes.Code]int
	firstFail   time.Time
	lastFail    time.Time
	maxLatency  time.Duration
	okAfterLast int // successful calls that started after the last failure
	lastFailErr string
}

func newCallLog() *callLog {
	return &callLog{ok: map[string]int{}, failed: map[string]int{}, codes: map[codes.Code]int{}}
}

func (c *callLog) record(method string, start time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	took := time.Since(start)
	if err == nil {
		c.ok[method]++
		if took > c.maxLatency {
			c.maxLatency = took
		}
		if !c.lastFail.IsZero() && start.After(c.lastFail) {
			c.okAfterLast++
		}
		return
	}
	c.failed[method]++
	c.codes[status.Code(err)]++
	now := time.Now()
	if c.firstFail.IsZero() {
		c.firstFail = now
	}
	c.lastFail = now
	c.okAfterLast = 0
	c.lastFailErr = err.Error()
}

// clusterDemand is a demand of the enterprise ent that the test's products
// (carbon-linked loans of 1-900 million yuan) all fit.
func clusterDemand(ent string) *matchingv1.Demand {
	return &matchingv1.Demand{
		EnterpriseCreditCode: ent, EnterpriseName: "武昌示范钢铁有限公司",
		Sector: catalogv1.Sector_SECTOR_STEEL, EtsCovered: true,
		Region: "420106", Zone: registryv1.Zone_ZONE_FINANCE_AXIS,
		Kind:       catalogv1.DemandKind_DEMAND_KIND_FINANCING,
		Categories: []catalogv1.ProductCategory{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LINKED_LOAN},
		AmountYuan: 20_000_000, TermMonths: 12, AnnualEmissionsTonnes: 1_200_000,
		Description: "节能技改融资", Deadline: timestamppb.New(time.Now().Add(30 * 24 * time.Hour)),
	}
}

func clusterProduct(i int) *catalogv1.Product {
	return &catalogv1.Product{
		NameZh:      fmt.Sprintf("楚江碳挂钩贷款%d号", i),
		NameEn:      fmt.Sprintf("Chujiang Carbon-Linked Loan %d", i),
		Category:    catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LINKED_LOAN,
		DemandKinds: []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING},
		Amount:      &catalogv1.AmountRange{MinYuan: 1_000_000, MaxYuan: 900_000_000},
		Term:        &catalogv1.TermRange{MinMonths: 6, MaxMonths: 36},
		Price:       &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: 320, MaxBps: 450}}},
		Contact:     &catalogv1.Contact{Name: "王晓岚", Phone: "027-8765 4321"},
	}
}

func clusterRegistration(code string, i int) *registryv1.RegisterInstitutionRequest {
	return &registryv1.RegisterInstitutionRequest{
		CreditCode: code,
		NameZh:     "楚江碳金融银行武昌分行",
		NameEn:     fmt.Sprintf("Chujiang Carbon Finance Bank %d", i),
		Kind:       registryv1.InstitutionKind_INSTITUTION_KIND_BANK,
		Tier:       registryv1.Tier_TIER_BRANCH,
		Zone:       registryv1.Zone_ZONE_FINANCE_AXIS,
		Address:    "武汉市武昌区中南路 88 号",
		Contact:    &registryv1.Contact{Name: "王晓岚", Phone: "027-8765 4321", Email: "desk@chujiang.example"},
	}
}

var codeCounter atomic.Int64

// clusterCode is a valid unified social credit code no other call returns.
func clusterCode(_ *testing.T, run int64) string {
	code, err := registry.CompleteCreditCode(fmt.Sprintf("91420106A%04d%04d", run%10000, codeCounter.Add(1)))
	if err != nil {
		panic(err) // safe from the load's goroutines; the format is valid
	}
	return code
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// scrapeMetrics returns base's /metrics page, "" when it does not answer
// (safe to call from any goroutine).
func scrapeMetrics(base string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// streamMsg is a message read back from a stream.
type streamMsg struct {
	seq   uint64
	msgID string
	data  []byte
}

// readStream reads every message of stream through the cluster with an
// ordered consumer (one GetMsg per message is too slow for thousands).
func readStream(js jetstream.JetStream, stream string) ([]streamMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %v", stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	if s.CachedInfo().State.Msgs == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("stream %s: ordered consumer: %v", stream, err)
	}
	var out []streamMsg
	for {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			return nil, fmt.Errorf("stream %s: fetch: %v", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("stream %s: metadata: %v", stream, err)
			}
			out = append(out, streamMsg{seq: md.Sequence.Stream, msgID: m.Headers().Get(jetstream.MsgIDHeader), data: m.Data()})
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("stream %s: fetch: %v", stream, err)
		}
		if n == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("stream %s: read up to %d of %d", stream, len(out), last)
		}
	}
}

// TestClusterNodeLoss runs registry, catalog and two matching replicas as
// separate processes against a three-node NATS JetStream cluster (R3
// streams) and Redis, keeps a write load on them, and shuts one NATS node
// down for five seconds in the middle. Every acknowledged write has exactly
// one event in its stream, no demand is matched twice, the services keep
// answering, and the outbox relay's lease is held by one matching replica
// at a time.
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test: skipped with -short")
	}
	// Opt-in until it is reliable: it passed 8 of 11 runs under -race when
	// written (two failures in set-up and catch-up waits, not in its
	// assertions). Run it with CARBONDESK_CLUSTER_TEST=1.
	if os.Getenv("CARBONDESK_CLUSTER_TEST") == "" {
		t.Skip("cluster fault test: opt-in for now; run with CARBONDESK_CLUSTER_TEST=1 go test -race -run TestClusterNodeLoss ./cmd/carbondesk")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	nodes := startCluster(t)
	urls := clusterURLs(nodes)

	prefix := "test-cluster-" + strings.ToLower(rand.Text()[:10])
	rdb, _ := testenv.Redis(t)
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			_ = rdb.Del(ctx, keys[:n]...).Err()
			keys = keys[n:]
		}
	})

	staff := token(t, bin, data, "--role", "staff") // creates the dev key first
	serve := func(service string) (grpcAddr, metricsURL string) {
		got := startServe(t, bin, []*regexp.Regexp{grpcLine, metricsLine},
			"serve", service, "--nats", urls, "--redis", testenv.RedisURL(), "--redis-prefix", prefix,
			"--data", data, "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
			"--stream-replicas", "3", "--lease-ttl", "2s", "--writes-per-second", "0",
			"--shutdown-timeout", "2s", "--log-level", "error")
		return got[0], got[1]
	}
	regAddr, _ := serve("registry")
	catAddr, _ := serve("catalog")
	m1Addr, m1Metrics := serve("matching")
	m2Addr, m2Metrics := serve("matching")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx := authed(ctx, staff)
	reg := registryv1.NewRegistryServiceClient(dialGRPC(t, regAddr))
	cat := catalogv1.NewCatalogServiceClient(dialGRPC(t, catAddr))
	matchers := []matchingv1.MatchingServiceClient{
		matchingv1.NewMatchingServiceClient(dialGRPC(t, m1Addr)),
		matchingv1.NewMatchingServiceClient(dialGRPC(t, m2Addr)),
	}
	run := time.Now().UnixNano() / 1000 % 10000

	var (
		mu         sync.Mutex
		registered = map[string]bool{}                // acknowledged RegisterInstitution
		demands    = map[string][]*matchingv1.Match{} // acknowledged PostDemand and its matches
		probes     = map[string]bool{}                // set-up demands, posted while an index may lack a product
	)

	// Set-up: three ACTIVE institutions, each with a published product.
	const products = 3
	for i := range products {
		r, err := reg.RegisterInstitution(actx, clusterRegistration(clusterCode(t, run), i))
		if err != nil {
			t.Fatalf("RegisterInstitution: %v", err)
		}
		registered[r.GetInstitution().GetId()] = true
		if _, err := reg.ApproveInstitution(actx, &registryv1.ApproveInstitutionRequest{Id: r.GetInstitution().GetId(), Reason: "licences checked"}); err != nil {
			t.Fatalf("ApproveInstitution: %v", err)
		}
		// The publish succeeds once the catalog's view holds the
		// institution ACTIVE (the view follows the registry's events).
		var pid string
		testenv.Eventually(t, 30*time.Second, func() bool {
			time.Sleep(100 * time.Millisecond)
			if pid == "" {
				p, err := cat.CreateProduct(actx, &catalogv1.CreateProductRequest{InstitutionId: r.GetInstitution().GetId(), Product: clusterProduct(i)})
				if err != nil {
					return false
				}
				pid = p.GetProduct().GetId()
			}
			_, err := cat.PublishProduct(actx, &catalogv1.PublishProductRequest{Id: pid})
			return err == nil
		})
	}
	// Both matching replicas' indexes hold the three products.
	for i, m := range matchers {
		testenv.Eventually(t, 20*time.Second, func() bool {
			time.Sleep(200 * time.Millisecond) // a few probes, not hundreds
			r, err := m.PostDemand(actx, &matchingv1.PostDemandRequest{Demand: clusterDemand(clusterCode(t, run))})
			if err != nil {
				return false
			}
			mu.Lock()
			demands[r.GetDemand().GetId()] = r.GetMatches()
			probes[r.GetDemand().GetId()] = true
			mu.Unlock()
			return len(r.GetMatches()) == products
		})
		t.Logf("matching replica %d ranks all %d products", i+1, products)
	}

	// The load: PostDemand at ~50/s across both matching replicas and
	// RegisterInstitution at ~10/s, for 15 s; one NATS node down from 5 s
	// to 10 s.
	calls := newCallLog()
	const loadFor = 15 * time.Second
	loadCtx, stopLoad := context.WithTimeout(ctx, loadFor)
	defer stopLoad()
	var wg sync.WaitGroup
	ticker := func(every time.Duration, fn func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(every)
			defer tk.Stop()
			for i := 0; ; i++ {
				select {
				case <-loadCtx.Done():
					return
				case <-tk.C:
				}
				wg.Add(1)
				go func() { defer wg.Done(); fn(i) }()
			}
		}()
	}
	callCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(authed(context.Background(), staff), 5*time.Second)
	}
	ticker(20*time.Millisecond, func(i int) {
		c, done := callCtx()
		defer done()
		start := time.Now()
		r, err := matchers[i%2].PostDemand(c, &matchingv1.PostDemandRequest{Demand: clusterDemand(clusterCode(t, run))})
		calls.record("PostDemand", start, err)
		if err == nil {
			mu.Lock()
			demands[r.GetDemand().GetId()] = r.GetMatches()
			mu.Unlock()
		}
	})
	ticker(100*time.Millisecond, func(i int) {
		c, done := callCtx()
		defer done()
		start := time.Now()
		r, err := reg.RegisterInstitution(c, clusterRegistration(clusterCode(t, run), 100+i))
		calls.record("RegisterInstitution", start, err)
		if err == nil {
			mu.Lock()
			registered[r.GetInstitution().GetId()] = true
			mu.Unlock()
		}
	})

	// The lease watch: scrape both matching replicas' metrics.
	const held = `carbondesk_lease_held{lease="matching.outbox"} 1`
	var scrapes, both, neither, holderChanges int
	lastHolder := -1
	wg.Add(1)
	go func() {
		defer wg.Done()
		for loadCtx.Err() == nil {
			a, b := scrapeMetrics(m1Metrics), scrapeMetrics(m2Metrics)
			ha, hb := strings.Contains(a, held), strings.Contains(b, held)
			scrapes++
			switch {
			case ha && hb:
				both++
			case !ha && !hb:
				neither++
			default:
				h := 0
				if hb {
					h = 1
				}
				if lastHolder >= 0 && h != lastHolder {
					holderChanges++
				}
				lastHolder = h
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// The fault: after 5 s shut down a node that is not the meta leader,
	// preferably the MATCHING stream's leader; start it again 5 s later.
	time.Sleep(5 * time.Second)
	admin, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	leader := metaLeader(nodes)
	streamLeader := func(name string) string {
		c, done := context.WithTimeout(ctx, 2*time.Second)
		defer done()
		s, err := js.Stream(c, name)
		if err != nil || s.CachedInfo().Cluster == nil {
			return ""
		}
		return s.CachedInfo().Cluster.Leader
	}
	victim := nodes[1]
	if victim.opts.ServerName == leader {
		victim = nodes[2]
	}
	if l := streamLeader("MATCHING"); l == leader {
		// Move the MATCHING stream's leadership off the meta leader, so
		// the node shut down is the one the matching relays publish to.
		if _, err := admin.Request("$JS.API.STREAM.LEADER.STEPDOWN.MATCHING", nil, 2*time.Second); err != nil {
			t.Logf("MATCHING leader step-down: %v", err)
		}
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if nl := streamLeader("MATCHING"); nl != "" && nl != l {
				t.Logf("MATCHING stream leadership moved from %s to %s", l, nl)
				break
			}
		}
	}
	if l := streamLeader("MATCHING"); l != "" && l != leader {
		for _, n := range nodes {
			if n.opts.ServerName == l {
				victim = n
			}
		}
	}
	before := map[string]string{}
	for _, name := range []string{"REGISTRY", "MATCHING"} {
		before[name] = streamLeader(name)
	}
	t.Logf("meta leader %s, stream leaders %v; shutting down %s", leader, before, victim.opts.ServerName)
	killedAt := time.Now()
	victim.stop()
	// While it is down: how long until each stream it led has a new leader.
	for name, l := range before {
		if l != victim.opts.ServerName {
			continue
		}
		for time.Since(killedAt) < 5*time.Second {
			if nl := streamLeader(name); nl != "" && nl != l {
				t.Logf("%s stream: new leader %s %s after the shutdown", name, nl, time.Since(killedAt).Round(time.Millisecond))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(time.Until(killedAt.Add(5 * time.Second)))
	victim.start(t)
	restartedAt := time.Now()
	t.Logf("%s down for %s", victim.opts.ServerName, restartedAt.Sub(killedAt).Round(time.Millisecond))
	wg.Wait()

	// The restarted node catches up with the R3 streams.
	caughtUp := time.Now()
	current := func() bool {
		for _, name := range []string{"REGISTRY", "MATCHING", "CATALOG"} {
			c, done := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(c, name)
			done()
			if err != nil {
				return false
			}
			info := s.CachedInfo()
			if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
		}
		return true
	}
	for !current() && time.Since(caughtUp) < 20*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if current() {
		t.Logf("streams fully replicated again %s after the restart (waited %s after the load ended)",
			time.Since(restartedAt).Round(time.Millisecond), time.Since(caughtUp).Round(time.Millisecond))
	} else {
		// Reported, not failed: the writes' checks below are what counts.
		t.Logf("streams NOT fully replicated %s after the restart", time.Since(restartedAt).Round(time.Millisecond))
	}

	// The services answer again after the failover.
	for i, m := range matchers {
		r, err := m.PostDemand(actx, &matchingv1.PostDemandRequest{Demand: clusterDemand(clusterCode(t, run))})
		if err != nil {
			t.Fatalf("PostDemand on matching replica %d after the failover: %v", i+1, err)
		}
		demands[r.GetDemand().GetId()] = r.GetMatches()
	}
	r, err := reg.RegisterInstitution(actx, clusterRegistration(clusterCode(t, run), 9999))
	if err != nil {
		t.Fatalf("RegisterInstitution after the failover: %v", err)
	}
	registered[r.GetInstitution().GetId()] = true

	calls.mu.Lock()
	okN, failN := calls.ok["PostDemand"]+calls.ok["RegisterInstitution"], calls.failed["PostDemand"]+calls.failed["RegisterInstitution"]
	t.Logf("calls: PostDemand ok %d failed %d; RegisterInstitution ok %d failed %d; failure codes %v",
		calls.ok["PostDemand"], calls.failed["PostDemand"], calls.ok["RegisterInstitution"], calls.failed["RegisterInstitution"], calls.codes)
	if failN > 0 {
		t.Logf("failures from %s to %s after the shutdown (window %s), last: %s; %d calls ok after the last failure",
			calls.firstFail.Sub(killedAt).Round(time.Millisecond), calls.lastFail.Sub(killedAt).Round(time.Millisecond),
			calls.lastFail.Sub(calls.firstFail).Round(time.Millisecond), calls.lastFailErr, calls.okAfterLast)
	}
	t.Logf("slowest successful call: %s", calls.maxLatency.Round(time.Millisecond))
	if okN < 500 {
		t.Errorf("only %d calls succeeded under load, want >= 500", okN)
	}
	if failN*10 > okN+failN {
		t.Errorf("%d of %d calls failed, want under 10%%", failN, okN+failN)
	}
	calls.mu.Unlock()

	t.Logf("lease: %d scrapes, held by both %d, by neither %d, holder changes %d", scrapes, both, neither, holderChanges)
	if both > 0 {
		t.Errorf("the matching outbox lease was held by both replicas in %d of %d scrapes", both, scrapes)
	}

	// Every acknowledged write reaches its stream exactly once.
	var (
		regCount   map[string]int
		postCount  map[string]int
		proposed   map[string]map[string]int // demand -> match id -> events
		dupMsgIDs  int
		regMsgs    int
		matchMsgs  int
		streamRead = func() error {
			regCount, postCount = map[string]int{}, map[string]int{}
			proposed = map[string]map[string]int{}
			dupMsgIDs = 0
			seen := map[string]bool{}
			for _, name := range []string{"REGISTRY", "MATCHING"} {
				msgs, err := readStream(js, name)
				if err != nil {
					return err
				}
				if name == "REGISTRY" {
					regMsgs = len(msgs)
				} else {
					matchMsgs = len(msgs)
				}
				for _, m := range msgs {
					env, err := events.Decode(m.data)
					if err != nil {
						t.Fatalf("%s message %d: %v", name, m.seq, err)
					}
					id := m.msgID
					if id == "" {
						id = env.GetId()
					}
					if seen[id] || seen[env.GetId()] {
						dupMsgIDs++
					}
					seen[id], seen[env.GetId()] = true, true
					switch env.GetType() {
					case "registry.institution.registered":
						regCount[env.GetEntityId()]++
					case "matching.demand.posted":
						postCount[env.GetEntityId()]++
					case "matching.match.proposed":
						var mt matchingv1.Match
						if err := env.GetPayload().UnmarshalTo(&mt); err != nil {
							t.Fatalf("match.proposed payload: %v", err)
						}
						if proposed[mt.GetDemandId()] == nil {
							proposed[mt.GetDemandId()] = map[string]int{}
						}
						proposed[mt.GetDemandId()][mt.GetId()]++
					}
				}
			}
			return nil
		}
	)
	settle := time.Now()
	passes, missingFirst := 0, -1
	testenv.Eventually(t, 30*time.Second, func() bool {
		passes++
		if err := streamRead(); err != nil {
			t.Logf("reading the streams: %v (retrying)", err)
			return false
		}
		if missingFirst < 0 {
			missingFirst = 0
			for id := range registered {
				if regCount[id] == 0 {
					missingFirst++
				}
			}
			for id := range demands {
				if postCount[id] == 0 {
					missingFirst++
				}
			}
		}
		for id := range registered {
			if regCount[id] == 0 {
				return false
			}
		}
		for id, ms := range demands {
			if postCount[id] == 0 || len(proposed[id]) < len(ms) {
				return false
			}
		}
		return true
	})
	t.Logf("all acknowledged writes in the streams %s after the load (%d stream reads; %d registered/posted events missing at the first read; REGISTRY %d messages, MATCHING %d)",
		time.Since(settle).Round(time.Millisecond), passes, missingFirst, regMsgs, matchMsgs)
	if dupMsgIDs > 0 {
		t.Errorf("%d events twice in the streams (same event/message id)", dupMsgIDs)
	}
	for id, n := range regCount {
		if n != 1 {
			t.Errorf("institution %s: %d registered events, want 1", id, n)
		}
	}
	extraReg := len(regCount) - len(registered)
	for id, n := range postCount {
		if n != 1 {
			t.Errorf("demand %s: %d demand.posted events, want 1", id, n)
		}
	}
	extraPost := len(postCount) - len(demands)
	// Each acknowledged demand: its matches as the store holds them (read
	// back from either replica) propose each product once, include what
	// PostDemand answered, and each has exactly one match.proposed event.
	// A set-up probe may get a product proposed after it was posted (a
	// product its replica's index did not hold yet: a reverse match), so
	// only the load's demands must have all products in the answer.
	totalProposed, reverse, i := 0, 0, 0
	for id, ms := range demands {
		g, err := matchers[i%2].GetDemand(actx, &matchingv1.GetDemandRequest{Id: id})
		i++
		if err != nil {
			t.Errorf("GetDemand %s: %v", id, err)
			continue
		}
		stored := map[string]bool{}
		prods := map[string]bool{}
		for _, m := range g.GetMatches() {
			stored[m.GetId()] = true
			if prods[m.GetProductId()] {
				t.Errorf("demand %s: product %s proposed twice", id, m.GetProductId())
			}
			prods[m.GetProductId()] = true
			if m.GetReverse() || m.GetReoffer() {
				reverse++
			}
		}
		for _, m := range ms {
			if !stored[m.GetId()] {
				t.Errorf("demand %s: match %s of PostDemand's answer not in the store", id, m.GetId())
			}
		}
		if len(ms) != products && !probes[id] {
			t.Errorf("demand %s: %d matches, want %d (every product fits)", id, len(ms), products)
		}
		if len(g.GetMatches()) != products && !probes[id] {
			t.Errorf("demand %s: %d matches in the store, want %d", id, len(g.GetMatches()), products)
		}
		for mid, n := range proposed[id] {
			totalProposed += n
			if n != 1 || !stored[mid] {
				t.Errorf("demand %s: match %s proposed %d times in the stream (in the store: %v)", id, mid, n, stored[mid])
			}
		}
		if len(proposed[id]) != len(stored) {
			t.Errorf("demand %s: %d match.proposed events, %d matches in the store", id, len(proposed[id]), len(stored))
		}
	}
	t.Logf("set-up probe demands: %d", len(probes))
	t.Logf("events: %d institution.registered (%d acknowledged, %d of unacknowledged calls), %d demand.posted (%d acknowledged, %d of unacknowledged calls), %d match.proposed (%d reverse/re-offers, of set-up probes)",
		len(regCount), len(registered), extraReg, len(postCount), len(demands), extraPost, totalProposed, reverse)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the test ran out of time")
	}
}
