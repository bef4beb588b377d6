// Command benchdesk measures the matching service end to end, in one process
// and one run (issue 5, DESIGN §9):
//
//  1. post-demand → first match event: demands are posted over gRPC at a
//     fixed rate (open loop: each call leaves at its scheduled time, whatever
//     the earlier calls are doing, and its latency counts from that time, so
//     a stall is not hidden), and a subscriber on a loopback NATS connection
//     notes when the first carbondesk.matching.match.proposed event of each
//     demand arrives;
//  2. PostDemand throughput, closed loop with C callers, beside a floor
//     handler measured the same way in the same run: a bare gRPC method (its
//     own server and port) doing one Redis EVALSHA write and one acknowledged
//     JetStream publish.
//
// It wires registry, catalog and matching as internal/app does (embedded
// NATS with sync always, the Redis store, one outbox relay per service, the
// auth guard, the grpcx server) but with its own Redis key prefix, deleted at
// the end, so it never touches a CarbonDesk's data in the same Redis.
// Everything stays on loopback; every loop is bounded in count and time.
//
//	go run ./cmd/benchdesk --redis redis://127.0.0.1:6379/0
package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
)

type options struct {
	cpuProfile   string
	memProfile   string
	fullDecode   bool
	redisURL     string
	institutions int
	products     int
	enterprises  int
	rates        []int
	duration     time.Duration
	maxInflight  int
	concurrency  int
	tputDuration time.Duration
	rounds       int
	topK         int
	relaxedSync  bool
	atomicMin    int
	drainTimeout time.Duration
	probeEvents  int
	logLevel     slog.Level
}

func main() {
	var o options
	var rates, level string
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL (loopback); keys go under a fresh prefix deleted at the end")
	flag.IntVar(&o.institutions, "institutions", 20, "ACTIVE institutions to register")
	flag.IntVar(&o.products, "products", 2000, "PUBLISHED products, spread over the institutions (1..20000)")
	flag.IntVar(&o.enterprises, "enterprises", 200, "enterprises posting demands (one token each)")
	flag.StringVar(&rates, "rates", "1000", "comma-separated demand rates (per second) for the latency phase, each run for --duration")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each paced latency run (max 60s)")
	flag.IntVar(&o.maxInflight, "max-inflight", 4000, "open-loop cap on PostDemand calls in flight (a full cap delays sends; their latency still counts from the schedule)")
	flag.IntVar(&o.concurrency, "concurrency", 32, "closed-loop callers in the throughput phase")
	flag.DurationVar(&o.tputDuration, "tput-duration", 10*time.Second, "length of each closed-loop throughput run (max 60s)")
	flag.IntVar(&o.rounds, "rounds", 1, "floor/PostDemand throughput rounds (1..5)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&o.fullDecode, "full-decode", false, "the load generator and the subscriber unmarshal every response and event in full (by default they read only the ids they need: they share the server's cores, where real clients would not)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the whole run to this file at the end")
	flag.IntVar(&o.topK, "topk", 5, "matching policy TopK: proposals (and match events) per demand")
	flag.BoolVar(&o.relaxedSync, "relaxed-sync", false, "RELAXED SYNC: run the embedded NATS without sync always (fsync every 2 min); NOT the durable default, for measuring only")
	flag.IntVar(&o.atomicMin, "relay-atomic-min", 0, "outbox.Options.AtomicMin of the relays: reads of at least this many events go out as one atomic batch (0: as the single binary sets up its embedded server, 16 with sync always and never with --relaxed-sync; -1: never)")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 90*time.Second, "how long to wait for events after a run and for the matching outbox to drain between phases")
	flag.IntVar(&o.probeEvents, "probe-events", 5000, "events per publish mode in the relay-pipelining probe (0 skips it)")
	flag.StringVar(&level, "log-level", "warn", "service log level (debug, info, warn, error); logs go to stderr")
	flag.Parse()
	for _, f := range strings.Split(rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r < 1 || r > 20000 {
			fatalf("--rates: %q is not a rate in 1..20000", f)
		}
		o.rates = append(o.rates, r)
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		fatalf("--log-level: %v", err)
	}
	switch {
	case o.products < 1 || o.products > 20000, o.institutions < 1 || o.institutions > 1000, o.enterprises < 1 || o.enterprises > 10000:
		fatalf("--products 1..20000, --institutions 1..1000, --enterprises 1..10000")
	case o.duration <= 0 || o.duration > time.Minute, o.tputDuration <= 0 || o.tputDuration > time.Minute:
		fatalf("--duration and --tput-duration must be in (0, 60s]")
	case o.rounds < 1 || o.rounds > 5, o.concurrency < 1 || o.concurrency > 1024, o.maxInflight < 1 || o.maxInflight > 20000:
		fatalf("--rounds 1..5, --concurrency 1..1024, --max-inflight 1..20000")
	case o.drainTimeout <= 0 || o.drainTimeout > 5*time.Minute, o.probeEvents < 0 || o.probeEvents > 100000:
		fatalf("--drain-timeout in (0, 5m], --probe-events 0..100000")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchdesk: "+format+"\n", args...)
	os.Exit(1)
}

func run(ctx context.Context, o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(o.memProfile)
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchdesk: --memprofile: %v\n", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "benchdesk: --memprofile: %v\n", err)
			}
		}()
	}
	printMachine(o)

	d, err := startDesk(ctx, o, log)
	if d != nil {
		defer d.close()
	}
	if err != nil {
		return err
	}
	fmt.Printf("desk: grpc %s, nats %s (sync %s), redis prefix %q\n", d.grpcAddr, d.ns.ClientURL(), syncLabel(o), d.prefix)

	t0 := time.Now()
	ents, err := d.setup(ctx, o)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := d.waitReactions(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	fmt.Printf("setup: %d institutions, %d products published and indexed in %s\n\n", o.institutions, o.products, time.Since(t0).Round(time.Millisecond))

	sub, err := d.subscribe(o.fullDecode)
	if err != nil {
		return err
	}
	defer sub.close()

	fs, err := startFloor(ctx, d, 1+o.topK)
	if err != nil {
		return err
	}
	defer fs.close()
	fsub, err := fs.subscribe(sub.nc)
	if err != nil {
		return err
	}

	// Warm-up: connections, pools, the engine's caches; not reported.
	for _, p := range []pacer{d.demands(o, sub, ents), fsub} {
		if _, err := d.paced(ctx, o, p, 200, 2*time.Second); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if err := d.drain(ctx, o.drainTimeout); err != nil {
		return err
	}

	fmt.Printf("== post-demand -> first match.proposed event (open loop, TopK %d, %s) ==\n", o.topK, syncLabel(o))
	for _, rate := range o.rates {
		r, err := d.paced(ctx, o, d.demands(o, sub, ents), rate, o.duration)
		if err != nil {
			return err
		}
		r.print(rate, o.duration)
		waited := time.Now()
		if err := d.drain(ctx, o.drainTimeout); err != nil {
			return err
		}
		fmt.Printf("  matching outbox drained %s after the last event was waited for\n", time.Since(waited).Round(time.Millisecond))
		// The same rate through the floor with PostDemand's event count:
		// what this machine gives a write of that shape, beside it.
		fr, err := d.paced(ctx, o, fsub, rate, o.duration)
		if err != nil {
			return err
		}
		fr.printFloor(rate, 1+o.topK)
		fmt.Println()
	}

	fmt.Printf("== throughput, closed loop, %d callers, %s per run ==\n", o.concurrency, o.tputDuration)
	for round := 1; round <= o.rounds; round++ {
		fl, err := closedLoop(ctx, o.concurrency, o.tputDuration, fs.call)
		if err != nil {
			return err
		}
		pub0 := d.matRelay.Published()
		pd, err := closedLoop(ctx, o.concurrency, o.tputDuration, d.postOnce(ents, o))
		if err != nil {
			return err
		}
		relayRate := float64(d.matRelay.Published()-pub0) / o.tputDuration.Seconds()
		// PostDemand's events are published by the relay after the call
		// returned: count the time until its outbox is empty again, so a
		// relay that falls behind shows in the rate instead of being left
		// for later.
		waited := time.Now()
		if err := d.drain(ctx, o.drainTimeout); err != nil {
			return err
		}
		pdDrain := time.Since(waited)
		pdSustained := float64(pd.ok) / (pd.took.Seconds() + pdDrain.Seconds())
		cp, err := closedLoop(ctx, o.concurrency, o.tputDuration, d.createOnce())
		if err != nil {
			return err
		}
		fe, err := closedLoop(ctx, o.concurrency, o.tputDuration, fs.callEvents)
		if err != nil {
			return err
		}
		fmt.Printf("round %d\n", round)
		fl.print("floor (EVALSHA + JetStream publish)")
		fe.print(fmt.Sprintf("floor with PostDemand's %d events (EVALSHA + %d pipelined publishes)", 1+o.topK, 1+o.topK))
		fmt.Printf("  ratio floor-with-%d-events / floor: %.2f (the most any write with %d events can reach)\n", 1+o.topK, fe.rate()/fl.rate(), 1+o.topK)
		pd.print("PostDemand")
		fmt.Printf("  matching relay meanwhile: %.0f events/s published (PostDemand committed ~%.0f events/s, %d atomic batches so far); outbox drained %s after the run\n",
			relayRate, pd.rate()*float64(1+o.topK), d.matRelay.AtomicBatches(), pdDrain.Round(time.Millisecond))
		fmt.Printf("  PostDemand sustained (calls / (run + time to publish their events)): %.0f req/s\n", pdSustained)
		fmt.Printf("  ratio PostDemand sustained / floor: %.2f (target >= 0.50); calls alone / floor: %.2f; sustained / floor-with-%d-events: %.2f\n",
			pdSustained/fl.rate(), pd.rate()/fl.rate(), 1+o.topK, pdSustained/fe.rate())
		cp.print("CreateProduct (a draft: 1 record, 1 event)")
		fmt.Printf("  ratio CreateProduct / floor: %.2f\n", cp.rate()/fl.rate())
	}
	fmt.Println()

	if o.probeEvents > 0 {
		if err := d.publishProbe(ctx, o.probeEvents, sub.eventSize(), syncLabel(o)); err != nil {
			return err
		}
	}
	return nil
}

func syncLabel(o options) string {
	if o.relaxedSync {
		return "RELAXED (not durable; measuring only)"
	}
	return "always (durable default)"
}

func printMachine(o options) {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	commit := "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			commit += " (uncommitted changes)"
		}
	}
	fmt.Printf("benchdesk %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: %s, %d cores, GOMAXPROCS %d, %s %s/%s, nats-server %s\n",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, server.VERSION)
	fmt.Printf("commit: %s\n", commit)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at start (the machine is shared): %s\n", strings.TrimSpace(string(b)))
	}
	fmt.Printf("args: %s\n", strings.Join(os.Args[1:], " "))
}

// desk is registry, catalog and matching wired as internal/app wires them.
type desk struct {
	log      *slog.Logger
	dir      string
	ns       *natsx.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	rdb      *redis.Client
	prefix   string
	engine   *matching.Engine
	mat      *matching.Server
	matRelay *outbox.Relay
	catRelay *outbox.Relay
	insts    []string        // the ACTIVE institutions' ids, after setup
	staff    context.Context // a staff caller, after setup
	grpcAddr string
	conn     *grpc.ClientConn
	issuer   auth.Issuer
	closers  []func()
}

func (d *desk) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

func startDesk(ctx context.Context, o options, log *slog.Logger) (*desk, error) {
	dir, err := os.MkdirTemp("", "benchdesk-")
	if err != nil {
		return nil, err
	}
	d := &desk{log: log, dir: dir, prefix: fmt.Sprintf("benchdesk:%d-%08x", time.Now().Unix(), rand.Uint32())}
	d.closers = append(d.closers, func() { _ = os.RemoveAll(dir) })

	// NATS: embedded, with a loopback listener for the subscriber.
	if d.ns, err = natsx.Start(natsx.Options{Dir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0", Name: "benchdesk", RelaxedSync: o.relaxedSync}); err != nil {
		return d, fmt.Errorf("embedded nats: %w", err)
	}
	d.closers = append(d.closers, d.ns.Shutdown)
	if d.nc, err = d.ns.Connect(); err != nil {
		return d, err
	}
	d.closers = append(d.closers, func() { _ = d.nc.Drain() })
	if d.js, err = jetstream.New(d.nc); err != nil {
		return d, err
	}

	// Redis, under our own prefix; deleted at the end (after the relays
	// stopped: closers run in reverse).
	if d.rdb, err = redisstore.NewClient(o.redisURL); err != nil {
		return d, err
	}
	d.closers = append(d.closers, func() {
		n, err := cleanPrefix(d.rdb, d.prefix)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchdesk: cleaning Redis prefix %s: %v\n", d.prefix, err)
		} else {
			fmt.Printf("cleanup: deleted %d Redis keys under %s\n", n, d.prefix)
		}
		_ = d.rdb.Close()
	})

	bg, bgCtx := errgroup.WithContext(context.WithoutCancel(ctx))
	bgCtx, stopBG := context.WithCancel(bgCtx)
	d.closers = append(d.closers, func() {
		stopBG()
		if err := bg.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "benchdesk: background: %v\n", err)
		}
	})
	unit := func(service string) (store.Store, *outbox.Relay, error) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := events.EnsureStream(sctx, d.js, events.StreamConfig(service, 1)); err != nil {
			return nil, nil, err
		}
		st := redisstore.New(d.rdb, d.prefix+":{"+service+"}")
		if err := st.Ping(sctx); err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		atomicMin := o.atomicMin
		if atomicMin == 0 && !o.relaxedSync {
			atomicMin = outbox.AtomicMinSyncAlways
		}
		relay := outbox.New(st, d.js, log.With("service", service), outbox.Options{AtomicMin: atomicMin})
		// Stopped without a flush at the end: what is pending goes with
		// the prefix.
		bg.Go(func() error { return relay.Run(bgCtx) })
		return outbox.Notifying(st, relay), relay, nil
	}

	regStore, _, err := unit(registry.Name)
	if err != nil {
		return d, err
	}
	reg := registry.New(regStore, registry.WithLogger(log.With("service", registry.Name)))
	catStore, catRelay, err := unit(catalog.Name)
	if err != nil {
		return d, err
	}
	d.catRelay = catRelay
	cat := catalog.New(catStore, catalog.WithLogger(log.With("service", catalog.Name)),
		catalog.WithFeedConfig(func(c *consumer.Config) { c.DeadLetterReplicas = 1 }))
	bg.Go(func() error { return cat.RunInstitutionFeed(bgCtx, d.js) })
	matStore, matRelay, err := unit(matching.Name)
	if err != nil {
		return d, err
	}
	d.matRelay = matRelay
	d.engine = matching.NewEngine(matching.Config{})
	d.mat = matching.New(matStore, d.engine,
		matching.WithPolicy(matching.Policy{TopK: o.topK}),
		matching.WithLogger(log.With("service", matching.Name)),
		matching.WithConsumerConfig(func(c *consumer.Config) { c.DeadLetterReplicas = 1 }))
	bg.Go(func() error { return d.mat.Run(bgCtx, d.js) })

	// Access: the data folder's development key, write limits out of the way.
	key, _, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		return d, err
	}
	d.issuer = auth.Issuer{Key: key}
	verifier := auth.Verifier{Issuer: auth.DefaultIssuer, Audience: auth.DefaultAudience, Keys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}}
	guard := auth.NewGuard(verifier, auth.Table(), auth.Limits{WritesPerSecond: 1e7, WriteBurst: 1e7}, log)
	srv := grpcx.New(log, grpcx.Options{Unary: []grpc.UnaryServerInterceptor{guard.Unary()}, Stream: []grpc.StreamServerInterceptor{guard.Stream()}})
	reg.Register(srv.Server)
	cat.Register(srv.Server)
	d.mat.Register(srv.Server)
	srv.SetServing("", true)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return d, err
	}
	d.grpcAddr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	d.closers = append(d.closers, func() { srv.Stop(5 * time.Second) })
	if d.conn, err = grpc.NewClient(d.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return d, err
	}
	d.closers = append(d.closers, func() { _ = d.conn.Close() })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.mat.WaitCaughtUp(wctx); err != nil {
		return d, fmt.Errorf("matching index never caught up: %w", err)
	}
	return d, nil
}

// cleanPrefix deletes every key under prefix, SCAN by SCAN (bounded).
func cleanPrefix(rdb *redis.Client, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	var cursor uint64
	for range 1_000_000 {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+":*", 1000).Result()
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return n, err
			}
			n += len(keys)
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
	return n, errors.New("too many keys")
}

// as is a context carrying a fresh token of the caller.
func (d *desk) as(c auth.Caller) (context.Context, error) {
	if c.Subject == "" {
		c.Subject = fmt.Sprintf("benchdesk-%s-%s", c.Role, c.Org)
	}
	tok, err := d.issuer.Mint(c, 2*time.Hour)
	if err != nil {
		return nil, err
	}
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok)), nil
}

func creditCode(kind string, n int) string {
	code, err := registry.CompleteCreditCode(fmt.Sprintf("91420106%s%08d", kind, n))
	if err != nil {
		panic(err)
	}
	return code
}

// enterprise is a demand poster: its code and its token's context.
type enterprise struct {
	code string
	ctx  context.Context
}

// setup registers ACTIVE institutions, publishes products, sets reference
// prices, and waits until matching's index holds all of it.
func (d *desk) setup(ctx context.Context, o options) ([]enterprise, error) {
	district, err := registry.CompleteCreditCode("11420106MB0000001")
	if err != nil {
		return nil, err
	}
	staff, err := d.as(auth.Caller{Role: auth.Staff, Org: district})
	if err != nil {
		return nil, err
	}
	// retry retries what the catalog refuses while its view of the
	// registry catches up (FailedPrecondition) or while another product of
	// the same institution is written (Aborted), for up to 20 s.
	retry := func(ctx context.Context, call func(context.Context) error) error {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, cancel := context.WithTimeout(staff, 10*time.Second)
			stopAfter := context.AfterFunc(ctx, cancel)
			err := call(c)
			stopAfter()
			cancel()
			code := status.Code(err)
			if err == nil || (code != codes.FailedPrecondition && code != codes.Aborted) || time.Now().After(deadline) {
				return err
			}
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		}
	}
	withT := func() (context.Context, context.CancelFunc) {
		c, cancel := context.WithTimeout(staff, 10*time.Second)
		stopAfter := context.AfterFunc(ctx, cancel)
		return c, func() { stopAfter(); cancel() }
	}
	regc := registryv1.NewRegistryServiceClient(d.conn)
	catc := catalogv1.NewCatalogServiceClient(d.conn)
	{
		c, cancel := withT()
		_, err := catc.SetReferencePrices(c, &catalogv1.SetReferencePricesRequest{CeaYuanPerTonne: 80, CcerYuanPerTonne: 60, Source: "benchdesk"})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("SetReferencePrices: %w", err)
		}
	}
	zones := []registryv1.Zone{registryv1.Zone_ZONE_FINANCE_AXIS, registryv1.Zone_ZONE_RIVERSIDE_BELT}
	insts := make([]string, o.institutions)
	for i := range insts {
		c, cancel := withT()
		r, err := regc.RegisterInstitution(c, &registryv1.RegisterInstitutionRequest{
			CreditCode: creditCode("A", i+1), NameZh: fmt.Sprintf("楚江碳金融银行%d号支行", i+1), NameEn: fmt.Sprintf("Chujiang Bench Bank %d", i+1),
			Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK, Tier: registryv1.Tier_TIER_BRANCH, Zone: zones[i%len(zones)],
			Address: "武汉市武昌区中南路 88 号", Contact: &registryv1.Contact{Name: "王晓岚", Phone: "027-8765 4321", Email: "desk@chujiang.example"},
		})
		if err == nil {
			_, err = regc.ApproveInstitution(c, &registryv1.ApproveInstitutionRequest{Id: r.GetInstitution().GetId(), Reason: "licences checked"})
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("institution %d: %w", i+1, err)
		}
		insts[i] = r.GetInstitution().GetId()
	}
	d.insts, d.staff = insts, staff

	// Products: created and published by 16 workers. The catalog accepts a
	// publish once its view of the registry holds the institution ACTIVE,
	// so FailedPrecondition is retried for a while.
	var next atomic.Int64
	var lastMu sync.Mutex
	var last string
	g, gctx := errgroup.WithContext(ctx)
	for range 16 {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.products || gctx.Err() != nil {
					return gctx.Err()
				}
				p := benchProduct(i)
				var id string
				err := retry(gctx, func(c context.Context) error {
					r, err := catc.CreateProduct(c, &catalogv1.CreateProductRequest{InstitutionId: insts[i%len(insts)], Product: p})
					id = r.GetProduct().GetId()
					return err
				})
				if err == nil {
					err = retry(gctx, func(c context.Context) error {
						_, err := catc.PublishProduct(c, &catalogv1.PublishProductRequest{Id: id})
						return err
					})
				}
				if err != nil {
					return fmt.Errorf("product %d: %w", i, err)
				}
				lastMu.Lock()
				last = id
				lastMu.Unlock()
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	ents := make([]enterprise, o.enterprises)
	for i := range ents {
		code := creditCode("M", i+1)
		c, err := d.as(auth.Caller{Role: auth.Enterprise, Org: code})
		if err != nil {
			return nil, err
		}
		ents[i] = enterprise{code: code, ctx: c}
	}

	// The index follows the CATALOG stream in order: once every product
	// event is published and the last published product is eligible for a
	// bench demand, all are in.
	fctx, cancel := context.WithTimeout(ctx, o.drainTimeout)
	defer cancel()
	if err := d.catRelay.Flush(fctx); err != nil {
		return nil, err
	}
	dv := matching.DemandView{ID: "probe", Kind: catalogv1.DemandKind_DEMAND_KIND_FINANCING, AmountYuan: 10_000_000, TermMonths: 12,
		Sector: catalogv1.Sector_SECTOR_STEEL, Region: "420106", Zone: "FINANCE_AXIS", CEATonnes: 300_000}
	for {
		if _, ok := d.engine.Eligible(dv, last); ok && d.engine.ProductsLen() >= o.products {
			return ents, nil
		}
		select {
		case <-fctx.Done():
			return nil, fmt.Errorf("matching's index holds %d products and not yet %s: %w", d.engine.ProductsLen(), last, fctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// benchProduct is a CEA pledge loan every bench demand is eligible for, its
// price and pledge rate varying so the ranking has work to do.
func benchProduct(i int) *catalogv1.Product {
	minBps := int32(300 + (i*37)%300)
	return &catalogv1.Product{
		NameZh:      fmt.Sprintf("碳排放配额质押贷%d", i),
		NameEn:      fmt.Sprintf("CEA Pledge Loan %d", i),
		Category:    catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE,
		DemandKinds: []catalogv1.DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING},
		Amount:      &catalogv1.AmountRange{MinYuan: 1_000_000, MaxYuan: int64(20_000_000 + (i%10)*5_000_000)},
		Term:        &catalogv1.TermRange{MinMonths: 6, MaxMonths: int32(24 + (i%3)*12)},
		Price:       &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: minBps, MaxBps: minBps + 100}}},
		Collateral:  &catalogv1.Collateral{Asset: catalogv1.CarbonAsset_CARBON_ASSET_CEA, PledgeRateBps: int32(5000 + (i%5)*500)},
		Contact:     &catalogv1.Contact{Name: "王晓岚", Phone: "027-8765 4321"},
	}
}

func benchDemand(code string, i int) *matchingv1.Demand {
	return &matchingv1.Demand{
		EnterpriseCreditCode: code, EnterpriseName: "武昌示范钢铁有限公司", Sector: catalogv1.Sector_SECTOR_STEEL, EtsCovered: true,
		Region: "420106", Zone: registryv1.Zone_ZONE_FINANCE_AXIS, Kind: catalogv1.DemandKind_DEMAND_KIND_FINANCING,
		AmountYuan: int64(5_000_000 + (i%10)*500_000), TermMonths: 12, CeaTonnes: 300_000, AnnualEmissionsTonnes: 1_200_000,
		Description: "配额质押融资，用于节能技改", Deadline: timestamppb.New(time.Now().Add(30 * 24 * time.Hour)),
	}
}

// subscriber notes when the first match.proposed event of each demand
// arrives, on a core NATS subscription over a loopback TCP connection.
type subscriber struct {
	nc    *nats.Conn
	sub   *nats.Subscription
	mu    sync.Mutex
	first map[string]time.Time
	seen  atomic.Int64
	bytes atomic.Int64
	bad   atomic.Int64
}

func (d *desk) subscribe(fullDecode bool) (*subscriber, error) {
	nc, err := nats.Connect(d.ns.ClientURL(), nats.Name("benchdesk-subscriber"))
	if err != nil {
		return nil, err
	}
	s := &subscriber{nc: nc, first: map[string]time.Time{}}
	s.sub, err = nc.Subscribe(matching.SubjectMatchProposed, func(m *nats.Msg) {
		now := time.Now()
		s.seen.Add(1)
		s.bytes.Add(int64(len(m.Data)))
		var demandID string
		if fullDecode {
			env, err := events.Decode(m.Data)
			match := &matchingv1.Match{}
			if err != nil || env.GetPayload().UnmarshalTo(match) != nil {
				s.bad.Add(1)
				return
			}
			demandID = match.GetDemandId()
		} else {
			// Envelope.payload (7) → Any.value (2) → Match.demand_id (2).
			payload := field(m.Data, 7)
			demandID = string(field(field(payload, 2), 2))
			if demandID == "" {
				s.bad.Add(1)
				return
			}
		}
		s.note(demandID, now)
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := s.sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nc.Flush()
}

func (s *subscriber) close() { s.nc.Close() }

// note records at as when key was first seen, unless it was seen before.
func (s *subscriber) note(key string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.first[key]; !ok {
		s.first[key] = at
	}
}

func (s *subscriber) firstSeen(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.first[id]
	return t, ok
}

// eventSize is the mean size of the match events seen (1 KiB before any).
func (s *subscriber) eventSize() int {
	if n := s.seen.Load(); n > 0 {
		return int(s.bytes.Load() / n)
	}
	return 1024
}

type sample struct {
	intended, done time.Time
	id             string
	err            error
}

type pacedResult struct {
	samples        []sample
	sent, failed   int
	took           time.Duration // from the first scheduled send to the last response
	lastEventAfter time.Duration // from the last response to the last first-event
	missing        int
	relayRate      float64 // matching relay events/s over the run and its wait
	e2e, rpc, tail []time.Duration
}

// pacer is what a paced run drives: post makes call i and returns the key
// its first event carries; seen says when that event was first seen.
type pacer struct {
	post func(ctx context.Context, i int) (string, error)
	seen func(key string) (time.Time, bool)
}

// demands paces PostDemand, the demands posted by ents in turn, each
// demand's first match.proposed event seen by sub.
func (d *desk) demands(o options, sub *subscriber, ents []enterprise) pacer {
	client := matchingv1.NewMatchingServiceClient(d.conn)
	return pacer{
		post: func(ctx context.Context, i int) (string, error) {
			e := ents[i%len(ents)]
			c, cancel := context.WithTimeout(e.ctx, 10*time.Second)
			defer cancel()
			return d.postLean(c, client, benchDemand(e.code, i), o.fullDecode)
		},
		seen: sub.firstSeen,
	}
}

// paced makes rate calls a second for dur, open loop, then waits (up to
// drainTimeout) for every call's first event.
func (d *desk) paced(ctx context.Context, o options, p pacer, rate int, dur time.Duration) (*pacedResult, error) {
	n := int(float64(rate) * dur.Seconds())
	interval := time.Second / time.Duration(rate)
	res := &pacedResult{samples: make([]sample, n)}
	sem := make(chan struct{}, o.maxInflight)
	var wg sync.WaitGroup
	pub0, t0 := d.matRelay.Published(), time.Now()
	start := time.Now().Add(20 * time.Millisecond)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			id, err := p.post(ctx, i)
			res.samples[i] = sample{intended: at, done: time.Now(), id: id, err: err}
		}()
	}
	wg.Wait()
	var lastDone time.Time
	for _, s := range res.samples {
		if s.err != nil {
			res.failed++
			continue
		}
		res.sent++
		if s.done.After(lastDone) {
			lastDone = s.done
		}
	}
	res.took = lastDone.Sub(start)

	// Wait, bounded, for every demand's first event.
	deadline := time.Now().Add(o.drainTimeout)
	for {
		missing := 0
		for _, s := range res.samples {
			if s.err == nil {
				if _, ok := p.seen(s.id); !ok {
					missing++
				}
			}
		}
		res.missing = missing
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.relayRate = float64(d.matRelay.Published()-pub0) / time.Since(t0).Seconds()
	var lastSeen time.Time
	for _, s := range res.samples {
		if s.err != nil {
			continue
		}
		res.rpc = append(res.rpc, s.done.Sub(s.intended))
		if seen, ok := p.seen(s.id); ok {
			res.e2e = append(res.e2e, seen.Sub(s.intended))
			res.tail = append(res.tail, seen.Sub(s.done))
			if seen.After(lastSeen) {
				lastSeen = seen
			}
		}
	}
	res.lastEventAfter = lastSeen.Sub(lastDone)
	for _, s := range res.samples {
		if s.err != nil {
			fmt.Fprintf(os.Stderr, "benchdesk: first failure of a paced call: %v\n", s.err)
			break
		}
	}
	return res, nil
}

func (r *pacedResult) print(rate int, dur time.Duration) {
	achieved := float64(r.sent) / r.took.Seconds()
	fmt.Printf("rate %d/s for %s: %d posted (%d failed), achieved %.0f/s; %d demands got no match event\n",
		rate, dur, r.sent, r.failed, achieved, r.missing)
	fmt.Printf("  post -> first match event  %s\n", dist(r.e2e))
	fmt.Printf("  PostDemand latency         %s\n", dist(r.rpc))
	fmt.Printf("  response -> event (relay)  %s\n", dist(r.tail))
	fmt.Printf("  matching relay published %.0f events/s; last event %s after the last response\n",
		r.relayRate, r.lastEventAfter.Round(time.Millisecond))
}

// dist formats p50/p90/p99/max of ds.
// printFloor prints a paced run of the floor with n events beside the
// PostDemand run at the same rate.
func (r *pacedResult) printFloor(rate, n int) {
	fmt.Printf("  the floor with %d events at the same rate (%d calls, %d failed; EVALSHA + %d pipelined publishes awaited, no ranking, no relay):\n",
		n, r.sent, r.failed, n)
	fmt.Printf("    call -> first event      %s\n", dist(r.e2e))
	fmt.Printf("    call latency             %s\n", dist(r.rpc))
}

func dist(ds []time.Duration) string {
	if len(ds) == 0 {
		return "(none)"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	f := func(d time.Duration) string {
		if d < 10*time.Millisecond && d > -10*time.Millisecond {
			return fmt.Sprintf("%.2fms", float64(d)/1e6)
		}
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", f(q(0.5)), f(q(0.9)), f(q(0.99)), f(s[len(s)-1]), len(s))
}

// drain waits until the matching outbox is empty.
func (d *desk) drain(ctx context.Context, timeout time.Duration) error {
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := d.matRelay.Flush(fctx); err != nil {
		return fmt.Errorf("matching outbox did not drain within %s: %w", timeout, err)
	}
	return nil
}

func (d *desk) postOnce(ents []enterprise, o options) func(ctx context.Context, worker, i int) error {
	client := matchingv1.NewMatchingServiceClient(d.conn)
	return func(ctx context.Context, worker, i int) error {
		e := ents[(worker*7919+i)%len(ents)]
		c, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		_, err := d.postLean(c, client, benchDemand(e.code, i), o.fullDecode)
		return err
	}
}

// createOnce is one CreateProduct call: a DRAFT product of one of the
// ACTIVE institutions, by staff (one record, one event, no matching work).
func (d *desk) createOnce() func(ctx context.Context, worker, i int) error {
	client := catalogv1.NewCatalogServiceClient(d.conn)
	return func(ctx context.Context, worker, i int) error {
		c, cancel := context.WithTimeout(d.staff, 10*time.Second)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		_, err := client.CreateProduct(c, &catalogv1.CreateProductRequest{
			InstitutionId: d.insts[(worker*7919+i)%len(d.insts)], Product: benchProduct(1_000_000 + worker*1_000_000 + i)})
		return err
	}
}

type loopResult struct {
	ok, failed int
	took       time.Duration
	lat        []time.Duration
	firstErr   error
}

func (r *loopResult) rate() float64 { return float64(r.ok) / r.took.Seconds() }

func (r *loopResult) print(name string) {
	fmt.Printf("  %-36s %8.0f req/s  (%d ok, %d failed)  %s\n", name, r.rate(), r.ok, r.failed, dist(r.lat))
	if r.firstErr != nil {
		fmt.Printf("    first failure: %v\n", r.firstErr)
	}
}

// closedLoop runs c callers, each calling call back to back, for dur.
func closedLoop(ctx context.Context, c int, dur time.Duration, call func(ctx context.Context, worker, i int) error) (*loopResult, error) {
	lctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	results := make([]loopResult, c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c {
		wg.Go(func() {
			r := &results[w]
			for i := 0; lctx.Err() == nil && i < 10_000_000; i++ {
				t := time.Now()
				err := call(context.Background(), w, i)
				if lctx.Err() != nil && err != nil {
					break // cut by the end of the run
				}
				if err != nil {
					r.failed++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				r.ok++
				r.lat = append(r.lat, time.Since(t))
			}
		})
	}
	wg.Wait()
	total := &loopResult{took: time.Since(start)}
	for _, r := range results {
		total.ok += r.ok
		total.failed += r.failed
		total.lat = append(total.lat, r.lat...)
		total.firstErr = cmp.Or(total.firstErr, r.firstErr)
	}
	return total, ctx.Err()
}

// floor is the floor handler: its own gRPC server (the platform's grpcx,
// without the auth guard) whose one method runs one EVALSHA writing a key
// and one acknowledged JetStream publish.
type floor struct {
	srv    *grpcx.Server
	conn   *grpc.ClientConn
	rdb    *redis.Client
	js     jetstream.JetStream
	script *redis.Script
	prefix string
	seq    atomic.Int64
	events int // publishes per call of WriteEvents
}

const (
	floorMethod       = "/benchdesk.Floor/Write"
	floorEventsMethod = "/benchdesk.Floor/WriteEvents"
)

func startFloor(ctx context.Context, d *desk, nevents int) (*floor, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{Name: "BENCHFLOOR", Subjects: []string{"benchfloor.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Duplicates: events.DuplicateWindow}); err != nil {
		return nil, err
	}
	f := &floor{rdb: d.rdb, js: d.js, prefix: d.prefix + ":{floor}:k:", events: nevents,
		script: redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]) return 1`)}
	if err := f.script.Load(sctx, d.rdb).Err(); err != nil {
		return nil, err
	}
	// The floor's failures are counted by the callers; logging each (a
	// sync-always server stalls under the paced floor) would flood stderr.
	f.srv = grpcx.New(slog.New(slog.DiscardHandler), grpcx.Options{})
	f.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "benchdesk.Floor",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Write", Handler: f.handle}, {MethodName: "WriteEvents", Handler: f.handleEvents}},
	}, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = f.srv.Serve(lis) }()
	if f.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		f.srv.Stop(time.Second)
		return nil, err
	}
	return f, nil
}

func (f *floor) close() {
	_ = f.conn.Close()
	f.srv.Stop(5 * time.Second)
}

func (f *floor) handle(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	return f.serve(ctx, dec, ic, floorMethod, 1)
}

// handleEvents is the floor with PostDemand's event count: one EVALSHA and
// f.events acknowledged publishes, pipelined (all in flight, then every
// acknowledgement awaited), as the outbox relay publishes them.
func (f *floor) handleEvents(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	return f.serve(ctx, dec, ic, floorEventsMethod, f.events)
}

func (f *floor) serve(ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor, method string, events int) (any, error) {
	in := &wrapperspb.BytesValue{}
	if err := dec(in); err != nil {
		return nil, err
	}
	h := func(ctx context.Context, req any) (any, error) {
		data := req.(*wrapperspb.BytesValue).GetValue()
		n := f.seq.Add(1)
		if err := f.script.EvalSha(ctx, f.rdb, []string{f.prefix + strconv.FormatInt(n%100_000, 10)}, data).Err(); err != nil {
			return nil, err
		}
		if events == 1 {
			if _, err := f.js.Publish(ctx, "benchfloor.write", data); err != nil {
				return nil, err
			}
			return &wrapperspb.BoolValue{Value: true}, nil
		}
		acks := make([]jetstream.PubAckFuture, 0, events)
		for range events {
			a, err := f.js.PublishAsync("benchfloor.write", data)
			if err != nil {
				return nil, err
			}
			acks = append(acks, a)
		}
		for _, a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				return nil, err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return &wrapperspb.BoolValue{Value: true}, nil
	}
	if ic == nil {
		return h(ctx, in)
	}
	return ic(ctx, in, &grpc.UnaryServerInfo{Server: f, FullMethod: method}, h)
}

var floorPayload = make([]byte, 600)

// floorKeyLen is how many bytes at the start of a paced floor call's
// payload (and so of its events) name the call.
const floorKeyLen = 12

// subscribe returns the pacer of the floor with PostDemand's event count:
// call i publishes a payload of floorPayload's size starting with its key,
// and a core subscription on nc (the benchmark subscriber's connection)
// notes when the first of its events arrives.
func (f *floor) subscribe(nc *nats.Conn) (pacer, error) {
	seen := &subscriber{nc: nc, first: map[string]time.Time{}}
	sub, err := nc.Subscribe("benchfloor.write", func(m *nats.Msg) {
		now := time.Now()
		if len(m.Data) < floorKeyLen || m.Data[0] != 'f' {
			return
		}
		seen.note(string(m.Data[:floorKeyLen]), now)
	})
	if err != nil {
		return pacer{}, err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return pacer{}, err
	}
	var calls atomic.Int64 // keys are unique over all runs
	return pacer{
		post: func(ctx context.Context, _ int) (string, error) {
			payload := make([]byte, len(floorPayload))
			key := fmt.Sprintf("f%011d", calls.Add(1))
			copy(payload, key)
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return key, f.conn.Invoke(c, floorEventsMethod, &wrapperspb.BytesValue{Value: payload}, &wrapperspb.BoolValue{})
		},
		seen: seen.firstSeen,
	}, nc.Flush()
}

func (f *floor) call(ctx context.Context, _, _ int) error {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return f.conn.Invoke(c, floorMethod, &wrapperspb.BytesValue{Value: floorPayload}, &wrapperspb.BoolValue{})
}

func (f *floor) callEvents(ctx context.Context, _, _ int) error {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return f.conn.Invoke(c, floorEventsMethod, &wrapperspb.BytesValue{Value: floorPayload}, &wrapperspb.BoolValue{})
}

// publishProbe measures what pipelining the outbox relay's publishes would
// buy, without changing the relay: n events of size bytes published to a
// scratch stream of the same server one acknowledged publish at a time (what
// the relay does), then pipelined in order with async acknowledgements (at
// most 256 in flight), in the same run.
func (d *desk) publishProbe(ctx context.Context, n, size int, sync string) error {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := d.js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{Name: "BENCHPROBE", Subjects: []string{"benchprobe.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Duplicates: events.DuplicateWindow}); err != nil {
		return err
	}
	data := make([]byte, size)
	fmt.Printf("== relay publish modes, %d events of %d bytes, one stream, sync %s ==\n", n, size, sync)
	t := time.Now()
	for i := range n {
		if _, err := d.js.Publish(sctx, "benchprobe.one", data, jetstream.WithMsgID(fmt.Sprintf("one-%d", i))); err != nil {
			return err
		}
	}
	one := time.Since(t)
	js, err := jetstream.New(d.nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return err
	}
	t = time.Now()
	for i := range n {
		if _, err := js.PublishAsync("benchprobe.async", data, jetstream.WithMsgID(fmt.Sprintf("async-%d", i)), jetstream.WithStallWait(10*time.Second)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-sctx.Done():
		return sctx.Err()
	}
	async := time.Since(t)
	fmt.Printf("  one at a time, ack each (the relay today)   %8.0f events/s\n", float64(n)/one.Seconds())
	fmt.Printf("  pipelined, async acks, <= 256 in flight     %8.0f events/s  (%.1fx)\n", float64(n)/async.Seconds(), one.Seconds()/async.Seconds())
	return nil
}

// waitReactions waits until matching's durable consumers have handled every
// setup event (a publication's reverse matching), so the measured runs see
// the steady state of a desk whose products are all published already.
func (d *desk) waitReactions(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, c := range []struct{ stream, durable string }{
		{events.StreamName(catalog.Name), matching.ProductsDurable},
		{events.StreamName(registry.Name), matching.InstitutionsDurable},
	} {
		for {
			cons, err := d.js.Consumer(ctx, c.stream, c.durable)
			if err == nil {
				info, err := cons.Info(ctx)
				if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("matching's %s consumer did not catch up: %w", c.durable, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// postLean posts a demand and returns its id. Unless full is set, the
// response is not unmarshalled: only the demand's id is read from it, so the
// load generator, which shares the server's two cores, does not spend them
// decoding five matches with their reasons per call as a client on another
// machine would.
func (d *desk) postLean(ctx context.Context, client matchingv1.MatchingServiceClient, dm *matchingv1.Demand, full bool) (string, error) {
	req := &matchingv1.PostDemandRequest{Demand: dm}
	if full {
		resp, err := client.PostDemand(ctx, req)
		return resp.GetDemand().GetId(), err
	}
	var f grpcx.Frame
	if err := d.conn.Invoke(ctx, matchingv1.MatchingService_PostDemand_FullMethodName, req, &f, grpc.ForceCodecV2(grpcx.FrameCodec{})); err != nil {
		return "", err
	}
	// PostDemandResponse.demand (1) → Demand.id (1).
	id := string(field(field(f, 1), 1))
	if id == "" {
		return "", errors.New("PostDemand answered without a demand id")
	}
	return id, nil
}

// field returns the first length-delimited field num of a marshalled
// message, or nil.
func field(b []byte, num protowire.Number) []byte {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil
			}
			return v
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil
		}
		b = b[l:]
	}
	return nil
}
