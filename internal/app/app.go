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
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/boltstore"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
	"github.com/carbondesk/carbondesk/services/talent"
)

// Ready describes a started process; Run passes it to the ready callback.
type Ready struct {
	GRPCAddr  string        // the address actually bound
	HTTPAddr  string        // the gateway's address actually bound; empty without --http
	NATSURL   string        // the embedded server's client URL, when it listens
	Took      time.Duration // from Run's start to ready
	Embedded  bool          // NATS embedded in the process
	StoreKind string        // "bolt" or "redis"
	DevTokens bool          // tokens are signed by the data folder's development key
}

// Run starts every service and blocks until ctx is cancelled, then shuts
// down in reverse order. ready, when not nil, is called once the gRPC
// listener accepts calls.
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
			st := redisstore.New(rdb, "carbondesk:{"+service+"}")
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := st.Ping(pctx); err != nil {
				return nil, fmt.Errorf("redis %s: %w", maskURL(cfg.RedisURL), err)
			}
			return st, nil
		}
		return boltstore.Open(filepath.Join(cfg.DataDir, service+".db"))
	}

	// Each service: its stream, its store, its outbox relay. At shutdown a
	// relay publishes what the last calls committed (NATS is still there),
	// then stops, and only then does its store close; whatever it could not
	// publish stays in the outbox for the next start.
	g, gctx := errgroup.WithContext(ctx)
	unit := func(service string) (store.Store, *outbox.Relay, error) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := events.EnsureStream(sctx, js, events.StreamConfig(service, cfg.StreamReplicas)); err != nil {
			return nil, nil, err
		}
		st, err := openStore(service)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() { _ = st.Close() })
		relay := outbox.New(st, js, log.With("service", service), outbox.Options{})
		relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
		relayDone := make(chan struct{})
		g.Go(func() error {
			defer close(relayDone)
			if err := relay.Run(relayCtx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s outbox relay: %w", service, err)
			}
			return nil
		})
		closers = append(closers, func() {
			fctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout/2)
			defer cancel()
			if err := relay.Flush(fctx); err != nil {
				log.Warn("outbox not fully flushed at shutdown; the rest is published on next start", "service", service, "err", err)
			}
			stopRelay()
			<-relayDone
		})
		return outbox.Notifying(st, relay), relay, nil
	}

	// background runs a service's long-lived task (an event feed) until the
	// shutdown, which stops it before the service's store closes.
	background := func(name string, fn func(context.Context) error) {
		bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		g.Go(func() error {
			defer close(done)
			if err := fn(bctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
		closers = append(closers, func() {
			stop()
			<-done
		})
	}

	// Registry.
	regStore, _, err := unit(registry.Name)
	if err != nil {
		return err
	}
	reg := registry.New(regStore, registry.WithLogger(log.With("service", registry.Name)))

	// Catalog, with its view of institution states fed by registry events.
	catStore, catRelay, err := unit(catalog.Name)
	if err != nil {
		return err
	}
	cat := catalog.New(catStore, catalog.WithLogger(log.With("service", catalog.Name)),
		catalog.WithFeedConfig(func(c *consumer.Config) { c.DeadLetterReplicas = cfg.StreamReplicas }))
	background("catalog institution feed", func(ctx context.Context) error { return cat.RunInstitutionFeed(ctx, js) })

	// Demo data on first start, service by service; the catalog's seeds wait
	// until its feed has seen the seeded institutions.
	if cfg.Seed {
		if err := seedOnce(ctx, regStore, func(ctx context.Context) error {
			return registry.LoadSeeds(ctx, reg, seeds.FS)
		}); err != nil {
			return fmt.Errorf("registry seeds: %w", err)
		}
		if err := seedOnce(ctx, catStore, func(ctx context.Context) error {
			return catalog.LoadSeeds(ctx, cat, seeds.FS)
		}); err != nil {
			return fmt.Errorf("catalog seeds: %w", err)
		}
		// Matching's index replays the CATALOG stream up to where it stood
		// when matching started: publish the seeded products first.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := catRelay.Flush(fctx)
		cancel()
		if err != nil {
			return fmt.Errorf("catalog seeds: publish: %w", err)
		}
	}

	// Matching: its in-memory index rebuilt from the CATALOG and REGISTRY
	// streams, its reactions on durable consumers, its deadline sweeps.
	matStore, _, err := unit(matching.Name)
	if err != nil {
		return err
	}
	mat := matching.New(matStore, matching.NewEngine(matching.Config{}),
		matching.WithLogger(log.With("service", matching.Name)),
		matching.WithConsumerConfig(func(c *consumer.Config) { c.DeadLetterReplicas = cfg.StreamReplicas }))
	background("matching", func(ctx context.Context) error { return mat.Run(ctx, js) })
	if cfg.Seed {
		if err := seedOnce(ctx, matStore, func(ctx context.Context) error {
			return matching.LoadSeeds(ctx, mat, seeds.FS)
		}); err != nil {
			return fmt.Errorf("matching seeds: %w", err)
		}
	}

	// Talent base: its view of institution states fed by registry events,
	// and the sweep that closes registration at the deadline. Its seeds wait
	// until the view holds the seeded hosts.
	talStore, _, err := unit(talent.Name)
	if err != nil {
		return err
	}
	tal := talent.New(talStore, talent.WithLogger(log.With("service", talent.Name)),
		talent.WithFeedConfig(func(c *consumer.Config) { c.DeadLetterReplicas = cfg.StreamReplicas }))
	background("talent", func(ctx context.Context) error { return tal.Run(ctx, js) })
	if cfg.Seed {
		if err := seedOnce(ctx, talStore, func(ctx context.Context) error {
			return talent.LoadSeeds(ctx, tal, seeds.FS)
		}); err != nil {
			return fmt.Errorf("talent seeds: %w", err)
		}
	}

	// Access: tokens verified on every call, the authorization table, write
	// limits per caller.
	verifier, devMode, err := newVerifier(cfg, log)
	if err != nil {
		return err
	}
	guard := auth.NewGuard(verifier, auth.Table(), auth.Limits{WritesPerSecond: cfg.WritesPerSecond, WriteBurst: cfg.WriteBurst}, log)

	// gRPC: one listener for every service.
	srv := grpcx.New(log, grpcx.Options{Unary: []grpc.UnaryServerInterceptor{guard.Unary()}, Stream: []grpc.StreamServerInterceptor{guard.Stream()}})
	reg.Register(srv.Server)
	cat.Register(srv.Server)
	mat.Register(srv.Server)
	tal.Register(srv.Server)
	srv.SetServing("", true)
	srv.SetServing(registry.ServiceName, true)
	srv.SetServing(catalog.ServiceName, true)
	srv.SetServing(matching.ServiceName, true)
	srv.SetServing(talent.ServiceName, true)
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

	// REST/JSON gateway and console, dialing the listener above; stopped
	// first at shutdown.
	var httpAddr string
	if cfg.HTTPAddr != "" {
		var stopHTTP func()
		if httpAddr, stopHTTP, err = startGateway(ctx, cfg, log, lis.Addr(), devMode, g); err != nil {
			return err
		}
		closers = append(closers, stopHTTP)
	}
	r := Ready{GRPCAddr: lis.Addr().String(), HTTPAddr: httpAddr, NATSURL: natsURL, Took: time.Since(start), Embedded: embedded, StoreKind: storeKind, DevTokens: devMode}
	log.Info("carbondesk ready", "grpc", r.GRPCAddr, "http", httpAddr, "nats_embedded", embedded, "nats_url", natsURL, "store", storeKind, "took", r.Took)
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
