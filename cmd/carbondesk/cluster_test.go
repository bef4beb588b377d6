package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
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

// clusterLogs keeps what the test's NATS nodes and child processes log,
// each source in its own buffer, and gives it to t.Log if the test fails:
// a failure of this test is diagnosed from these lines.
type clusterLogs struct {
	mu      sync.Mutex
	order   []string
	sources map[string]*testenv.LogBuffer
}

// newClusterLogs returns the test's log collector. It registers its report
// first, so it runs last: after every process was killed and every node
// stopped, their logs complete. CARBONDESK_CLUSTER_LOGS=1 reports them
// when the test passes too.
func newClusterLogs(t *testing.T) *clusterLogs {
	l := &clusterLogs{sources: map[string]*testenv.LogBuffer{}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CARBONDESK_CLUSTER_LOGS") != "" {
			l.report(t)
		}
	})
	return l
}

func (l *clusterLogs) source(name string) *testenv.LogBuffer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.sources[name]; ok {
		return b
	}
	b := &testenv.LogBuffer{}
	l.sources[name] = b
	l.order = append(l.order, name)
	return b
}

// quiet are the lines of an uneventful call, left out of the report.
var quiet = regexp.MustCompile(`msg=rpc .*code=OK|msg="matching: demand posted"`)

// report logs each source's last lines, successful calls left out.
func (l *clusterLogs) report(t *testing.T) {
	const keep = 400
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range l.order {
		var lines []string
		skipped := 0
		for line := range strings.Lines(l.sources[name].String()) {
			if quiet.MatchString(line) {
				skipped++
				continue
			}
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
		cut := max(0, len(lines)-keep)
		t.Logf("==== log of %s (%d lines; %d successful calls left out; first %d lines cut) ====\n%s",
			name, len(lines), skipped, cut, strings.Join(lines[cut:], "\n"))
	}
}

// natsLogger writes a NATS node's notices, warnings and errors to a buffer,
// each line stamped.
type natsLogger struct{ w io.Writer }

func (l natsLogger) logf(level, format string, v []any) {
	fmt.Fprintf(l.w, "%s %s %s\n", time.Now().Format("15:04:05.000"), level, fmt.Sprintf(format, v...))
}
func (l natsLogger) Noticef(format string, v ...any) { l.logf("INF", format, v) }
func (l natsLogger) Warnf(format string, v ...any)   { l.logf("WRN", format, v) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.logf("FTL", format, v) }
func (l natsLogger) Errorf(format string, v ...any)  { l.logf("ERR", format, v) }
func (l natsLogger) Debugf(string, ...any)           {}
func (l natsLogger) Tracef(string, ...any)           {}

// natsNode is one node of the test's three-node JetStream cluster, kept with
// its options so it can be started again on the same ports and folder.
type natsNode struct {
	opts *server.Options
	log  *testenv.LogBuffer
	ns   *server.Server
}

// clusterPorts returns n distinct loopback ports nothing listens on now,
// outside the kernel's ephemeral port range (never 4222, where a system
// NATS may run). A node shut down and started again must find its ports
// free: while it is down, any outgoing connection on the machine (a client
// reconnecting, another test) takes its local port from the ephemeral
// range and could take the node's, and then the restart fails. Ports from
// "127.0.0.1:0" are in that range; these are not.
func clusterPorts(t *testing.T, n int) []int {
	t.Helper()
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &lo, &hi)
	}
	var ranges [][2]int // candidate [from, to)
	if lo-10000 >= 1000 {
		ranges = append(ranges, [2]int{10000, lo})
	}
	if 65536-(hi+1) >= 1000 {
		ranges = append(ranges, [2]int{hi + 1, 65536})
	}
	if len(ranges) == 0 {
		t.Fatalf("no room for the cluster's ports outside the ephemeral range %d-%d", lo, hi)
	}
	held := map[int]net.Listener{}
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(held) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("found only %d free ports outside the ephemeral range %d-%d", len(held), lo, hi)
		}
		r := ranges[mrand.IntN(len(ranges))]
		port := r[0] + mrand.IntN(r[1]-r[0])
		if port == 4222 || port == 6222 || port == 8222 || held[port] != nil {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		held[port] = l
	}
	ports := make([]int, 0, n)
	for p := range held {
		ports = append(ports, p)
	}
	return ports
}

// start starts the node on its ports and folder and waits until it takes
// clients (and routes).
func (n *natsNode) start() error {
	o := *n.opts // NewServer keeps and mutates its options
	o.Routes = append([]*url.URL(nil), n.opts.Routes...)
	ns, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("nats node %s: %v", n.opts.ServerName, err)
	}
	ns.SetLoggerV2(natsLogger{n.log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("nats node %s not ready within 30 s (client port %d, cluster port %d; see its log)",
			n.opts.ServerName, n.opts.Port, n.opts.Cluster.Port)
	}
	n.ns = ns
	return nil
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
// ports, each with its store in a t.TempDir, and waits until the meta
// leader can place R3 assets: all three nodes known to it, online, with
// JetStream (a stream created before that fails for want of peers).
func startCluster(t *testing.T, logs *clusterLogs) []*natsNode {
	t.Helper()
	ports := clusterPorts(t, 6)
	routes := make([]*url.URL, 3)
	nodes := make([]*natsNode, 3)
	for i := range nodes {
		cport := ports[2*i+1]
		routes[i] = &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(cport)}
		name := fmt.Sprintf("n%d", i+1)
		nodes[i] = &natsNode{log: logs.source("nats " + name), opts: &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       ports[2*i],
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
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, n := range nodes {
		wg.Go(func() {
			if err := n.start(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, says("JetStream meta leader that knows all three nodes"), func() bool {
		return len(placementPeers(nodes)) == 3
	})
	return nodes
}

// metaLeader is the JetStream meta leader, nil if none.
func metaLeader(nodes []*natsNode) *natsNode {
	for _, n := range nodes {
		if n.ns != nil && n.ns.Running() && n.ns.JetStreamIsLeader() {
			return n
		}
	}
	return nil
}

// placementPeers are the nodes the meta leader can place stream replicas
// on: online, with JetStream, their statistics current.
func placementPeers(nodes []*natsNode) []string {
	if l := metaLeader(nodes); l != nil {
		return l.ns.JetStreamClusterPeers()
	}
	return nil
}

// waitFor polls cond until it holds, failing the test with what was
// awaited (what(), so it may tell the last state seen) if it has not
// within timeout.
func waitFor(t *testing.T, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what(), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// says is a fixed description for waitFor.
func says(what string) func() string { return func() string { return what } }

func clusterURLs(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// startLogged runs `carbondesk ARGS...` as the test's process name, its
// output (stdout and stderr) kept in logs, and returns the printed lines
// that matched each pattern, once all have. The process is killed when the
// test ends.
func startLogged(t *testing.T, logs *clusterLogs, name, bin string, patterns []*regexp.Regexp, args ...string) []string {
	t.Helper()
	out := logs.source(name)
	cmd := exec.Command(bin, args...)
	// Wait returns once the process exited and its output was copied,
	// so every line is in the log when the report is made.
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(out, pw)
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when the test no longer reads lines
	stopReading := sync.OnceFunc(func() { close(done) })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
			}
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = pw.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		stopReading()
		<-exited
	})
	got := make([]string, len(patterns))
	left := len(patterns)
	timeout := time.After(60 * time.Second)
	for left > 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s (carbondesk %v) exited before it was ready", name, args)
			}
			for i, p := range patterns {
				if m := p.FindStringSubmatch(l); m != nil && got[i] == "" {
					got[i] = m[1]
					left--
				}
			}
		case <-timeout:
			t.Fatalf("%s (carbondesk %v) did not print its addresses within 60 s", name, args)
		}
	}
	stopReading()
	return got
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

// readStream reads every message of stream up to its last one now, with
// an ordered consumer (one GetMsg per message is too slow for thousands).
// The consumer may sit on a replica still catching up: it then delivers
// what that replica holds as it arrives, so each fetch waits up to a second
// for more, and the read fails only when it made no progress for 10 s.
func readStream(js jetstream.JetStream, stream string) ([]streamMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
	progress := time.Now()
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("stream %s: fetch after %d of %d: %v", stream, len(out), last, err)
		}
		for m := range batch.Messages() {
			progress = time.Now()
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("stream %s: metadata: %v", stream, err)
			}
			out = append(out, streamMsg{seq: md.Sequence.Stream, msgID: m.Headers().Get(jetstream.MsgIDHeader), data: m.Data()})
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("stream %s: fetch after %d of %d: %v", stream, len(out), last, err)
		}
		if time.Since(progress) > 10*time.Second || ctx.Err() != nil {
			return nil, fmt.Errorf("stream %s: read %d messages of %d, then none for %s", stream, len(out), last, time.Since(progress).Round(time.Millisecond))
		}
	}
}

// outboxBacklog is the carbondesk_outbox_backlog of service on the metrics
// page at base, -1 when it cannot be read.
func outboxBacklog(base, service string) int {
	re := regexp.MustCompile(`(?m)^carbondesk_outbox_backlog\{service="` + regexp.QuoteMeta(service) + `"\} (\d+)$`)
	m := re.FindStringSubmatch(scrapeMetrics(base))
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// consumersReport describes the stream's consumers (where each runs, how
// far it delivered, what waits), for the log of a slow wait.
func consumersReport(js jetstream.JetStream, stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Sprintf("stream %s: %v", stream, err)
	}
	si := s.CachedInfo()
	var b strings.Builder
	fmt.Fprintf(&b, "stream %s: last seq %d", stream, si.State.LastSeq)
	if si.Cluster != nil {
		fmt.Fprintf(&b, ", leader %s", si.Cluster.Leader)
		for _, r := range si.Cluster.Replicas {
			fmt.Fprintf(&b, ", replica %s current %v offline %v lag %d", r.Name, r.Current, r.Offline, r.Lag)
		}
	}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		name := ci.Name
		if ci.Config.Durable == "" {
			name += " (ephemeral)"
		}
		leader := ""
		if ci.Cluster != nil {
			leader = ci.Cluster.Leader
		}
		fmt.Fprintf(&b, "\n  consumer %s on %s: delivered stream seq %d, ack floor %d, ack pending %d, redelivered %d, waiting pulls %d, pending %d",
			name, leader, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.NumPending)
	}
	if err := lister.Err(); err != nil {
		fmt.Fprintf(&b, "\n  listing consumers: %v", err)
	}
	return b.String()
}

// TestClusterNodeLoss runs registry, catalog and two matching replicas as
// separate processes against a three-node NATS JetStream cluster (R3
// streams) and Redis, keeps a write load on them, and shuts one NATS node
// down for five seconds in the middle. Every acknowledged write has exactly
// one event in its stream, no demand is matched twice, the services keep
// answering, and the outbox relay's lease is held by one matching replica
// at a time.
//
// Every wait is for a condition, bounded generously; the test takes about
// 25 s on the 2-core machine under -race, up to about a minute when other
// packages' tests run beside it. When it fails, the nodes' and processes'
// logs are in the test's output.
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test: skipped with -short")
	}
	began := time.Now()
	phase := func(format string, args ...any) {
		t.Helper()
		t.Logf("[%5.1fs] "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	logs := newClusterLogs(t)
	bin := buildBinary(t)
	data := t.TempDir()
	nodes := startCluster(t, logs)
	urls := clusterURLs(nodes)
	phase("NATS cluster up, meta leader %s, placement peers %v", metaLeader(nodes).opts.ServerName, placementPeers(nodes))

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

	// The test's own connection: stream leaders, stream reads, reports.
	admin, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}

	staff := token(t, bin, data, "--role", "staff") // creates the dev key first
	serve := func(name, service string) (grpcAddr, metricsURL string) {
		got := startLogged(t, logs, name, bin, []*regexp.Regexp{grpcLine, metricsLine},
			"serve", service, "--nats", urls, "--redis", testenv.RedisURL(), "--redis-prefix", prefix,
			"--data", data, "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
			"--stream-replicas", "3", "--lease-ttl", "2s", "--writes-per-second", "0",
			"--shutdown-timeout", "2s", "--log-level", "info")
		return got[0], got[1]
	}
	regAddr, regMetrics := serve("registry", "registry")
	catAddr, _ := serve("catalog", "catalog")
	m1Addr, m1Metrics := serve("matching-1", "matching")
	m2Addr, m2Metrics := serve("matching-2", "matching")
	phase("services started")

	// A bound on the whole test only, against a hang; the waits below
	// have their own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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

	// Set-up: three ACTIVE institutions, each with a published product,
	// known to both matching replicas. Each step waits for the events to
	// reach a feed (the catalog's view of institutions, the matching
	// indexes), which takes milliseconds, except now and then: a client's
	// first pull on a consumer just created on another node can be lost
	// (the pull overtakes the consumer's interest on its way through the
	// cluster's routes), and the client notices only when the consumer's
	// heartbeats fail to come: after 10 s for an ordered consumer (the
	// matching index), 30 s for internal/consumer's durables (the catalog's
	// feed). Hence bounds of a minute; the phase log shows the time taken,
	// and a wait slower than 5 s logs where the consumers stand.
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
		var lastErr error
		waitStart, reported := time.Now(), false
		waitFor(t, 60*time.Second, func() string { return fmt.Sprintf("published product %d (last error: %v)", i, lastErr) }, func() bool {
			time.Sleep(100 * time.Millisecond)
			if !reported && time.Since(waitStart) > 5*time.Second {
				reported = true
				phase("product %d not published after 5 s (last error: %v); %s", i, lastErr, consumersReport(js, "REGISTRY"))
			}
			if pid == "" {
				p, err := cat.CreateProduct(actx, &catalogv1.CreateProductRequest{InstitutionId: r.GetInstitution().GetId(), Product: clusterProduct(i)})
				if err != nil {
					lastErr = err
					return false
				}
				pid = p.GetProduct().GetId()
			}
			_, lastErr = cat.PublishProduct(actx, &catalogv1.PublishProductRequest{Id: pid})
			return lastErr == nil
		})
	}
	phase("%d products published", products)
	// Both matching replicas' indexes hold the three products.
	for i, m := range matchers {
		var last string
		waitStart, reported := time.Now(), false
		waitFor(t, 60*time.Second, func() string {
			return fmt.Sprintf("ranking of all %d products by matching replica %d (last answer: %s)", products, i+1, last)
		}, func() bool {
			time.Sleep(200 * time.Millisecond) // a few probes, not hundreds
			if !reported && time.Since(waitStart) > 5*time.Second {
				reported = true
				phase("matching replica %d: %s after 5 s; %s\n%s", i+1, last, consumersReport(js, "CATALOG"), consumersReport(js, "REGISTRY"))
			}
			r, err := m.PostDemand(actx, &matchingv1.PostDemandRequest{Demand: clusterDemand(clusterCode(t, run))})
			if err != nil {
				last = err.Error()
				return false
			}
			last = fmt.Sprintf("%d matches", len(r.GetMatches()))
			mu.Lock()
			demands[r.GetDemand().GetId()] = r.GetMatches()
			probes[r.GetDemand().GetId()] = true
			mu.Unlock()
			return len(r.GetMatches()) == products
		})
		phase("matching replica %d ranks all %d products", i+1, products)
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

	// The lease watch: scrape the two matching replicas' metrics in turn,
	// 1, 2, 1, 2... Two scrapes one after the other cannot show both
	// holding at one moment (the lease may pass from one to the other in
	// between, which is allowed), but three can: if replica a held the
	// lease at its scrapes just before and just after a scrape of b that
	// found b holding it too, both held it at that moment (short of a
	// losing and retaking it within one scrape).
	const held = `carbondesk_lease_held{lease="matching.outbox"} 1`
	var scrapes, both, neither, holderChanges int
	var overlaps []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		base := []string{m1Metrics, m2Metrics}
		var seen []bool // held, per scrape; scrape k is of replica k%2
		lastHolder := -1
		for k := 0; loadCtx.Err() == nil; k++ {
			seen = append(seen, strings.Contains(scrapeMetrics(base[k%2]), held))
			scrapes++
			if k >= 2 && seen[k-2] && seen[k-1] && seen[k] {
				both++
				overlaps = append(overlaps, fmt.Sprintf("%.1fs", time.Since(began).Seconds()))
			}
			if k >= 1 && !seen[k-1] && !seen[k] {
				neither++
			}
			if seen[k] {
				if lastHolder >= 0 && lastHolder != k%2 {
					holderChanges++
				}
				lastHolder = k % 2
			}
			if k%2 == 1 {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()

	// The fault: after 5 s shut down a node that is not the meta leader,
	// preferably the MATCHING stream's leader; start it again 5 s later.
	time.Sleep(5 * time.Second)
	leader := ""
	if l := metaLeader(nodes); l != nil {
		leader = l.opts.ServerName
	}
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
	phase("meta leader %s, stream leaders %v; shutting down %s", leader, before, victim.opts.ServerName)
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
	if err := victim.start(); err != nil {
		stopLoad()
		wg.Wait()
		t.Fatal(err)
	}
	restartedAt := time.Now()
	phase("%s down for %s, started again", victim.opts.ServerName, restartedAt.Sub(killedAt).Round(time.Millisecond))
	wg.Wait()
	phase("load ended")

	// The restarted node rejoins and catches up with the R3 streams.
	// Reported, not failed: the writes' checks below are what counts.
	current := func() bool {
		if !slices.Contains(placementPeers(nodes), victim.opts.ServerName) {
			return false
		}
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
	// A replica can also give up for good. nats-server (2.15.3) checks a
	// message's Nats-Expected-Last-Msg-Id (the outbox relay's ordering
	// header when it pipelines) only as each replica applies the message,
	// and a mismatch there is a "critical write error": the replica turns
	// observer until its server restarts. A follower caught up from a
	// snapshot compares with a stale last id, so the next such message
	// stops it; and a message whose expectation no longer holds (its
	// predecessor lost in a leader change) stops every replica that
	// applies it, and the stream takes no more writes. Waiting is then
	// pointless; it is reported, and if the stream stopped, the outbox
	// wait below fails saying so.
	writeErr := func() string {
		var errs []string
		for _, n := range nodes {
			for line := range strings.Lines(n.log.String()) {
				if strings.Contains(line, "critical write error") {
					errs = append(errs, n.opts.ServerName+": "+strings.TrimSpace(line))
				}
			}
		}
		return strings.Join(errs, "; ")
	}
	for end := time.Now().Add(30 * time.Second); !current() && writeErr() == "" && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	switch we := writeErr(); {
	case current():
		phase("streams fully replicated again %s after the restart", time.Since(restartedAt).Round(time.Millisecond))
	case we != "":
		phase("streams NOT fully replicated %s after the restart: a replica stopped on a nats-server write error: %s",
			time.Since(restartedAt).Round(time.Millisecond), we)
	default:
		phase("streams NOT fully replicated %s after the restart", time.Since(restartedAt).Round(time.Millisecond))
	}

	// The services answer again after the failover.
	for i, m := range matchers {
		c, done := context.WithTimeout(actx, 10*time.Second)
		r, err := m.PostDemand(c, &matchingv1.PostDemandRequest{Demand: clusterDemand(clusterCode(t, run))})
		done()
		if err != nil {
			t.Fatalf("PostDemand on matching replica %d after the failover: %v", i+1, err)
		}
		demands[r.GetDemand().GetId()] = r.GetMatches()
	}
	c, done := context.WithTimeout(actx, 10*time.Second)
	r, err := reg.RegisterInstitution(c, clusterRegistration(clusterCode(t, run), 9999))
	done()
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
		t.Errorf("the matching outbox lease was held by both replicas in %d of %d scrapes (at %v)", both, scrapes, overlaps)
	}

	// Catch-up: the outboxes drain. Every acknowledged write's events were
	// committed with it to its service's outbox, and an event leaves the
	// outbox once its stream acknowledged it: with the backlogs at zero,
	// every one is in its stream.
	settle := time.Now()
	var backlogs [3]int
	waitFor(t, 60*time.Second, func() string {
		msg := fmt.Sprintf("empty outboxes (backlogs of registry, matching at replicas 1 and 2: %v; -1 unreadable)", backlogs)
		if we := writeErr(); we != "" {
			msg += "; stream replicas stopped on nats-server write errors: " + we
		}
		return msg
	}, func() bool {
		backlogs = [3]int{outboxBacklog(regMetrics, "registry"), outboxBacklog(m1Metrics, "matching"), outboxBacklog(m2Metrics, "matching")}
		if backlogs == [3]int{} {
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	phase("outboxes empty %s after the load", time.Since(settle).Round(time.Millisecond))
	drained := time.Now()

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
		missing = func() int {
			n := 0
			for id := range registered {
				if regCount[id] == 0 {
					n++
				}
			}
			for id, ms := range demands {
				if postCount[id] == 0 || len(proposed[id]) < len(ms) {
					n++
				}
			}
			return n
		}
	)
	// The outboxes are empty, so nothing should be missing at the first
	// read; reading again (for 10 s) tells a late event, reported, from a
	// lost one.
	reads, missingFirst := 0, -1
	var readErr error
	waitFor(t, 60*time.Second, func() string { return fmt.Sprintf("stream read (last error: %v)", readErr) }, func() bool {
		reads++
		if readErr = streamRead(); readErr != nil {
			t.Logf("reading the streams: %v (retrying)", readErr)
			time.Sleep(500 * time.Millisecond)
			return false
		}
		if missingFirst < 0 {
			missingFirst = missing()
		}
		if missing() > 0 && time.Since(drained) < 10*time.Second {
			time.Sleep(500 * time.Millisecond)
			return false
		}
		return true
	})
	phase("streams read (%d reads; REGISTRY %d messages, MATCHING %d)", reads, regMsgs, matchMsgs)
	if missingFirst > 0 {
		t.Errorf("%d acknowledged writes lacked their events at the first read after the outboxes drained (%d still after %d reads)", missingFirst, missing(), reads)
	}
	for id := range registered {
		if regCount[id] == 0 {
			t.Errorf("institution %s: registration acknowledged, no registered event in the stream", id)
		}
	}
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
		if postCount[id] == 0 {
			t.Errorf("demand %s: post acknowledged, no demand.posted event in the stream", id)
		}
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
	phase("done")
}
