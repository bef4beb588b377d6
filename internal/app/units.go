package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/lease"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
	"github.com/carbondesk/carbondesk/services/talent"
)

// Services are the domain services a process can run, in start-up order:
// each may depend on the events of those before it (the catalog's seeds on
// the registry's institutions, matching's index on the catalog's products).
var Services = []string{registry.Name, catalog.Name, matching.Name, talent.Name}

// unit is one running service: what the process registers on its gRPC
// server and checks for readiness.
type unit struct {
	name     string
	grpcName string // the service's full gRPC name, for health
	store    store.Store
	relay    *outbox.Relay
	register func(grpc.ServiceRegistrar)
}

// wiring is what every unit is built from: the shared backbone and the
// process's errgroup and shutdown steps.
type wiring struct {
	ctx       context.Context
	cfg       Config
	log       *slog.Logger
	js        jetstream.JetStream
	g         *errgroup.Group
	leases    *lease.Manager // nil with the embedded NATS: no other replica
	openStore func(service string) (store.Store, error)
	metrics   *metrics
	closers   *[]func()
}

// start wires the service named and starts its background work and seeds.
func (w *wiring) start(name string) (*unit, error) {
	st, relay, err := w.base(name)
	if err != nil {
		return nil, err
	}
	u := &unit{name: name, store: st, relay: relay}
	log := w.log.With("service", name)
	dead := func(c *consumer.Config) {
		c.DeadLetterReplicas = w.cfg.StreamReplicas
		c.OnRedelivery = w.metrics.redelivered
	}
	var seed func(context.Context) error

	switch name {
	case registry.Name:
		reg := registry.New(st, registry.WithLogger(log))
		u.grpcName, u.register = registry.ServiceName, reg.Register
		seed = func(ctx context.Context) error { return registry.LoadSeeds(ctx, reg, seeds.FS) }

	case catalog.Name:
		// Its view of institution states is fed by registry events.
		cat := catalog.New(st, catalog.WithLogger(log), catalog.WithFeedConfig(dead))
		u.grpcName, u.register = catalog.ServiceName, cat.Register
		w.background("catalog institution feed", func(ctx context.Context) error { return cat.RunInstitutionFeed(ctx, w.js) })
		seed = func(ctx context.Context) error { return catalog.LoadSeeds(ctx, cat, seeds.FS) }

	case matching.Name:
		// Its in-memory index rebuilt from the CATALOG and REGISTRY streams
		// (per replica), its reactions on durable consumers (shared by the
		// replicas), its deadline sweeps (under a lease).
		mat := matching.New(st, matching.NewEngine(matching.Config{}), matching.WithLogger(log),
			matching.WithConsumerConfig(dead), matching.WithSweepGate(w.leased(name+".sweep")))
		u.grpcName, u.register = matching.ServiceName, mat.Register
		w.background("matching", func(ctx context.Context) error { return mat.Run(ctx, w.js) })
		seed = func(ctx context.Context) error {
			// Run, started just above, may not be going yet, and
			// LoadSeeds waits for the index only once it is: wait here, so
			// the demands are ranked against the catalog's seeded products.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := mat.WaitCaughtUp(wctx); err != nil {
				return fmt.Errorf("waiting for matching's index: %w", err)
			}
			return matching.LoadSeeds(ctx, mat, seeds.FS)
		}

	case talent.Name:
		// Its view of institution states fed by registry events, and the
		// sweep that closes registration at the deadline (under a lease).
		tal := talent.New(st, talent.WithLogger(log), talent.WithFeedConfig(dead),
			talent.WithSweepGate(w.leased(name+".sweep")))
		u.grpcName, u.register = talent.ServiceName, tal.Register
		w.background("talent", func(ctx context.Context) error { return tal.Run(ctx, w.js) })
		seed = func(ctx context.Context) error { return talent.LoadSeeds(ctx, tal, seeds.FS) }

	default:
		return nil, fmt.Errorf("unknown service %q: want one of %v", name, Services)
	}

	// Demo data on first start. Then publish them at once: the next unit
	// (matching's index) replays the stream up to where it stood when it
	// started.
	// With leases, one replica seeds at a time and the others find them
	// loaded.
	if w.cfg.Seed {
		load := func(ctx context.Context) error {
			if err := seedOnce(ctx, st, seed); err != nil {
				return fmt.Errorf("%s seeds: %w", name, err)
			}
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := relay.Flush(fctx)
			cancel()
			if err != nil {
				return fmt.Errorf("%s seeds: publish: %w", name, err)
			}
			return nil
		}
		var err error
		if w.leases != nil {
			err = w.leases.Do(w.ctx, name+".seed", load)
		} else {
			err = load(w.ctx)
		}
		if err != nil {
			return nil, err
		}
	}
	return u, nil
}

// base ensures the service's stream, opens its store and runs its outbox
// relay, and returns the store to write through (it wakes the relay).
func (w *wiring) base(service string) (store.Store, *outbox.Relay, error) {
	ensure := func(ctx context.Context) error {
		_, err := events.EnsureStream(ctx, w.js, events.StreamConfig(service, w.cfg.StreamReplicas))
		return err
	}
	var err error
	if w.leases != nil {
		// An external NATS: wait for it (see untilNATSAnswers).
		err = untilNATSAnswers(w.ctx, w.log, "ensure stream "+events.StreamName(service), ensure)
	} else {
		sctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		err = ensure(sctx)
		cancel()
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := w.openStore(service)
	if err != nil {
		return nil, nil, err
	}
	*w.closers = append(*w.closers, func() { _ = st.Close() })
	log := w.log.With("service", service)
	opts := outbox.Options{Replicated: w.cfg.StreamReplicas > 1}
	if w.leases == nil {
		// The embedded server fsyncs every message: a backlog goes out
		// in atomic batches, one fsync each. An external server's sync
		// setting is not known here, and where it does not fsync each
		// message pipelining is faster.
		opts.AtomicMin = outbox.AtomicMinSyncAlways
	}
	relay := outbox.New(st, w.js, log, opts)
	w.metrics.addRelay(service, relay)
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(w.ctx))
	relayDone := make(chan struct{})
	run := relay.Run
	var held *atomic.Bool
	if w.leases != nil {
		// One replica's relay publishes at a time; the others stand by.
		held = w.metrics.lease(service + ".outbox")
		run = func(ctx context.Context) error { return w.leases.Run(ctx, service+".outbox", held, relay.Run) }
	}
	w.g.Go(func() error {
		defer close(relayDone)
		if err := run(relayCtx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s outbox relay: %w", service, err)
		}
		return nil
	})
	*w.closers = append(*w.closers, func() {
		// The replica holding the lease flushes; a standby leaves the
		// outbox to it (flushing anyway would be safe, the stream keeps the
		// outbox order and drops copies, but would only race it).
		if held == nil || held.Load() {
			fctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout/2)
			defer cancel()
			if err := relay.Flush(fctx); err != nil {
				log.Warn("outbox not fully flushed at shutdown; the rest is published on next start", "err", err)
			}
		}
		stopRelay()
		<-relayDone
	})
	return outbox.Notifying(st, relay), relay, nil
}

// leased returns a gate that is open while this process holds the lease
// named key, kept in the background; nil (always open) without leases.
func (w *wiring) leased(key string) func() bool {
	if w.leases == nil {
		return nil
	}
	held := w.metrics.lease(key)
	w.background("lease "+key, func(ctx context.Context) error {
		return w.leases.Run(ctx, key, held, func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		})
	})
	return held.Load
}

// background runs a service's long-lived task (an event feed) until the
// shutdown, which stops it before the service's store closes.
func (w *wiring) background(name string, fn func(context.Context) error) {
	bctx, stop := context.WithCancel(context.WithoutCancel(w.ctx))
	done := make(chan struct{})
	w.g.Go(func() error {
		defer close(done)
		if err := fn(bctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	*w.closers = append(*w.closers, func() {
		stop()
		<-done
	})
}

// untilNATSAnswers runs op, one JetStream set-up call of the start-up
// (creating a stream or the lease bucket), until it succeeds, ctx ends, or
// it fails for a reason waiting cannot cure (a configuration the server
// refuses). A process pointed at an external NATS starts whenever NATS is
// ready (natsx.ConnectOptions: the connection retries in the background),
// so it waits here for answers rather than exit: NATS may be starting, a
// cluster may lack a meta leader or the peers for an R3 stream for a moment,
// or an answer may be lost on its way through the cluster (seen in
// cmd/carbondesk's TestClusterNodeLoss: a REGISTRY stream created at once,
// its creator never answered). Each attempt has 5 s; the calls are
// idempotent (create or update to the same configuration).
func untilNATSAnswers(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(octx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info(what+": done", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil || !transientJS(err) {
			return err
		}
		log.Warn(what+": NATS did not answer or cannot yet; retrying", "attempt", attempt, "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// transientJS reports whether a failed JetStream API call may succeed when
// tried again: no answer (a timeout, no responders, a connection down), or
// the cluster not ready for it (no meta leader, not enough peers online for
// the replicas asked). The server refusing the request itself is not.
func transientJS(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return true
	}
	switch apiErr.ErrorCode {
	case 10005, // no suitable peers for placement
		10007, // JetStream cluster not assigned to this server
		10008, // JetStream system temporarily unavailable
		10009, // JetStream cluster can not handle request
		10023: // insufficient resources
		return true
	}
	return false
}
