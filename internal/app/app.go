package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/lease"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/boltstore"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
)

// Ready describes a started process; Run passes it to the ready callback.
type Ready struct {
	GRPCAddr    string        // the address actually bound
	HTTPAddr    string        // the gateway's address actually bound; empty without --http
	MetricsAddr string        // the metrics endpoint's address; empty without --metrics
	Services    []string      // the services this process runs
	NATSURL     string        // the embedded server's client URL, when it listens
	Took        time.Duration // from Run's start to ready
	Embedded    bool          // NATS embedded in the process
	StoreKind   string        // "bolt" or "redis"
	DevTokens   bool          // tokens are signed by the data folder's development key
}

// Run starts the configured services (Config.Services; all by default) and
// blocks until ctx is cancelled, then shuts down in reverse order. ready,
// when not nil, is called once the gRPC listener accepts calls.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(Ready)) (err error) {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return err
	}
	log.Info("starting carbondesk", "config", cfg)

	// Shutdown steps run in reverse order of start-up.
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		closers = nil
	}
	defer closeAll()

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data folder %s: %w", cfg.DataDir, err)
	}

	// Event backbone: an embedded JetStream server unless --nats is given.
	var (
		nc        *nats.Conn
		natsURL   string
		embedded  = cfg.NATSURL == ""
		storeKind = "bolt"
	)
	if embedded {
		ns, err := natsx.Start(natsx.Options{Dir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATSListen, Name: "carbondesk"})
		if err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		closers = append(closers, ns.Shutdown)
		if nc, err = ns.Connect(); err != nil {
			return fmt.Errorf("connect to embedded nats: %w", err)
		}
		if cfg.NATSListen != "" {
			natsURL = ns.ClientURL()
		}
	} else {
		if nc, err = natsx.Connect(cfg.NATSURL, "carbondesk"); err != nil {
			return fmt.Errorf("nats %s: %w", maskURL(cfg.NATSURL), err)
		}
	}
	closers = append(closers, func() { _ = nc.Drain() })
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	// Storage: one store per service, namespaced.
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		storeKind = "redis"
		// go-redis reports dial failures through a package-level logger;
		// send them to ours so they are structured like every other line.
		redis.SetLogger(redisLogger{log.With("component", "redis")})
		if rdb, err = redisstore.NewClient(cfg.RedisURL); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		closers = append(closers, func() { _ = rdb.Close() })
	}
	openStore := func(service string) (store.Store, error) {
		if rdb != nil {
			prefix := cfg.RedisKeyPrefix
			if prefix == "" {
				prefix = "carbondesk"
			}
			st := redisstore.New(rdb, prefix+":{"+service+"}")
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := st.Ping(pctx); err != nil {
				return nil, fmt.Errorf("redis %s: %w", maskURL(cfg.RedisURL), err)
			}
			return st, nil
		}
		return boltstore.Open(filepath.Join(cfg.DataDir, service+".db"))
	}

	// Leases: with an external NATS, replicas of a service may run side by
	// side, so the outbox relay and the deadline sweeps run only where their
	// lease is held. The embedded server belongs to this one process.
	var leases *lease.Manager
	if !embedded {
		holder := "" // a random id: Redis replicas may share a folder image
		if cfg.RedisURL == "" {
			if holder, err = loadOrCreateHolder(cfg.DataDir); err != nil {
				return err
			}
		}
		err = untilNATSAnswers(ctx, log, "create lease bucket "+lease.DefaultBucket, func(ctx context.Context) error {
			var err error
			leases, err = lease.New(ctx, js, log, lease.Options{TTL: cfg.LeaseTTL, Replicas: cfg.StreamReplicas, Holder: holder})
			return err
		})
		if err != nil {
			return err
		}
	}

	// Metrics, when --metrics is given.
	m := newMetrics()

	// The services, each a unit: its stream, its store, its outbox relay
	// (under a lease), its feeds and sweeps, its seeds. At shutdown a relay
	// publishes what the last calls committed (NATS is still there), then
	// stops, and only then does its store close; whatever it could not
	// publish stays in the outbox for the next start.
	g, gctx := errgroup.WithContext(ctx)
	w := &wiring{ctx: ctx, cfg: cfg, log: log, js: js, g: g, leases: leases, openStore: openStore, metrics: m, closers: &closers}
	var units []*unit
	for _, name := range cfg.services() {
		u, err := w.start(name)
		if err != nil {
			return err
		}
		units = append(units, u)
	}

	// Access: tokens verified on every call, the authorization table, write
	// limits per caller.
	verifier, devMode, err := newVerifier(cfg, log)
	if err != nil {
		return err
	}
	guard := auth.NewGuard(verifier, auth.Table(), auth.Limits{WritesPerSecond: cfg.WritesPerSecond, WriteBurst: cfg.WriteBurst}, log)

	// gRPC: one listener for the process's services.
	srv := grpcx.New(log, grpcx.Options{
		Unary:   []grpc.UnaryServerInterceptor{guard.Unary()},
		Stream:  []grpc.StreamServerInterceptor{m.watchers, guard.Stream()},
		Observe: m.observeRPC,
	})
	srv.SetServing("", true)
	for _, u := range units {
		u.register(srv.Server)
		srv.SetServing(u.grpcName, true)
	}
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (--grpc): %w", cfg.GRPCAddr, err)
	}
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	})
	closers = append(closers, func() { srv.Stop(cfg.ShutdownTimeout / 2) })

	// Readiness: serving while NATS is connected and every store answers,
	// checked periodically; and the metrics endpoint.
	w.background("readiness", func(ctx context.Context) error {
		watchReadiness(ctx, log, srv, nc, units, m, cfg.ReadinessEvery)
		return nil
	})
	var metricsAddr string
	if cfg.MetricsAddr != "" {
		var stopMetrics func()
		if metricsAddr, stopMetrics, err = ServeMetrics(cfg.MetricsAddr, m.reg, log, g); err != nil {
			return err
		}
		closers = append(closers, stopMetrics)
	}

	// REST/JSON gateway and console, dialing the listener above; stopped
	// first at shutdown.
	var httpAddr string
	if cfg.HTTPAddr != "" {
		var stopHTTP func()
		if httpAddr, stopHTTP, err = startGateway(ctx, cfg, log, lis.Addr(), devMode, g, m); err != nil {
			return err
		}
		closers = append(closers, stopHTTP)
	}
	r := Ready{GRPCAddr: lis.Addr().String(), HTTPAddr: httpAddr, MetricsAddr: metricsAddr, NATSURL: natsURL, Took: time.Since(start),
		Embedded: embedded, StoreKind: storeKind, DevTokens: devMode, Services: cfg.services()}
	log.Info("carbondesk ready", "services", r.Services, "grpc", r.GRPCAddr, "http", httpAddr, "metrics", metricsAddr,
		"nats_embedded", embedded, "nats_url", natsURL, "store", storeKind, "took", r.Took)
	if ready != nil {
		ready(r)
	}

	<-gctx.Done()
	log.Info("stopping carbondesk")
	closeAll()
	// A failing component (not Ctrl-C) ends the process with its error.
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	log.Info("carbondesk stopped")
	return nil
}

// seedKind marks, in a service's own store, that its demo data were loaded,
// so a restart does not load them again.
const seedKind = "_meta"

func seedOnce(ctx context.Context, st store.Store, load func(context.Context) error) error {
	_, err := st.Get(ctx, seedKind, "seeded")
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := load(ctx); err != nil {
		return err
	}
	_, err = st.Apply(ctx, store.Batch{Puts: []store.Put{{Kind: seedKind, ID: "seeded", Expect: store.AnyVersion, Data: []byte(time.Now().UTC().Format(time.RFC3339))}}})
	return err
}

// redisLogger adapts slog to go-redis's logger.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// newVerifier trusts the configured public keys, or, in development mode,
// the data folder's own signing key (created on first start).
func newVerifier(cfg Config, log *slog.Logger) (auth.Verifier, bool, error) {
	v := auth.Verifier{Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience}
	if cfg.TokenPublicKeys != "" {
		keys, err := auth.LoadPublicKeys(cfg.TokenPublicKeys)
		if err != nil {
			return v, false, fmt.Errorf("--token-public-keys: %w", err)
		}
		v.Keys = keys
		return v, false, nil
	}
	key, created, err := auth.LoadOrCreateDevKey(cfg.DataDir)
	if err != nil {
		return v, false, fmt.Errorf("development token key: %w", err)
	}
	if created {
		log.Info("created a development token signing key", "file", filepath.Join(cfg.DataDir, auth.DevKeyFile))
	}
	log.Warn("development mode: tokens are signed with the data folder's key; give --token-public-keys in production",
		"mint", "carbondesk token --data "+cfg.DataDir+" --role staff")
	v.Keys = []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}
	return v, true, nil
}
