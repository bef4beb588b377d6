package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/services/gateway"
)

// metrics are a process's Prometheus metrics, on a registry of its own (no
// globals: two processes in one test do not share figures). Served on
// --metrics at /metrics.
type metrics struct {
	reg        *prometheus.Registry
	rpc        *prometheus.HistogramVec
	match      *prometheus.HistogramVec
	live       prometheus.Gauge
	ready      prometheus.Gauge
	redeliv    *prometheus.CounterVec
	pending    *prometheus.GaugeVec
	ackPending *prometheus.GaugeVec
	mu         sync.Mutex
	relays     map[string]*outbox.Relay
	leaseSet   map[string]*atomic.Bool
	http       *gateway.HTTPMetrics // registered with the first gateway
	consumers  map[[2]string]bool   // durable, stream: the lag series set
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		rpc: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carbondesk_rpc_duration_seconds",
			Help:    "gRPC calls served, by method and status code, and how long they took (streams: their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "code"}),
		// Match latency, demand side: a PostDemand that succeeded, from the
		// call reaching the service to the demand and its ranked proposals
		// committed in one write (the proposals are in the answer). The
		// product side (a product change ranked against open demands) runs
		// in matching's consumer and is not timed here.
		match: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carbondesk_match_latency_seconds",
			Help:    "Time to match: direction=\"demand\" is a PostDemand from the call to the demand and its ranked proposals committed.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"direction"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carbondesk_matching_watchers",
			Help: "Open WatchMatches streams.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carbondesk_ready",
			Help: "1 while NATS is connected and every store answers (gRPC health SERVING), else 0.",
		}),
		redeliv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carbondesk_consumer_redeliveries_total",
			Help: "Events a durable consumer was handed again (a handler failed, or outran its ack wait).",
		}, []string{"consumer"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "carbondesk_consumer_pending",
			Help: "A durable consumer's lag: events in its stream not yet handed to it (JetStream num_pending), read with each readiness check. Replicas share the consumer and report the same figure.",
		}, []string{"consumer", "stream"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "carbondesk_consumer_ack_pending",
			Help: "Events handed to a durable consumer and not yet acknowledged (JetStream num_ack_pending), read with each readiness check.",
		}, []string{"consumer", "stream"}),
		relays:   map[string]*outbox.Relay{},
		leaseSet: map[string]*atomic.Bool{},
	}
	m.reg.MustRegister(m.rpc, m.match, m.live, m.ready, m.redeliv, m.pending, m.ackPending, relayCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// NewProcessMetrics is a registry with the Go runtime and process
// collectors, for processes with no service of their own (the gateway).
func NewProcessMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func (m *metrics) redelivered(durable string) { m.redeliv.WithLabelValues(durable).Inc() }

func (m *metrics) observeRPC(method string, code codes.Code, d time.Duration) {
	m.rpc.WithLabelValues(method, code.String()).Observe(d.Seconds())
	if method == matchingv1.MatchingService_PostDemand_FullMethodName && code == codes.OK {
		m.match.WithLabelValues("demand").Observe(d.Seconds())
	}
}

// httpMetrics are the gateway's request metrics on the process's registry,
// registered on first use.
func (m *metrics) httpMetrics() *gateway.HTTPMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.http == nil {
		m.http = gateway.NewHTTPMetrics(m.reg)
	}
	return m.http
}

// pollConsumers sets the lag gauges of the durable consumers of the
// process's services: by convention each is named "<service>-<what>"
// (catalog-institutions, matching-products...), on any service's stream.
// Consumers gone since the last poll lose their series.
func (m *metrics) pollConsumers(ctx context.Context, js jetstream.JetStream, units []*unit) error {
	ours := func(durable string) bool {
		for _, u := range units {
			if strings.HasPrefix(durable, u.name+"-") {
				return true
			}
		}
		return false
	}
	seen := map[[2]string]bool{}
	for _, service := range Services {
		name := events.StreamName(service)
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		list := st.ListConsumers(ctx)
		for ci := range list.Info() {
			durable := ci.Config.Durable
			if durable == "" || !ours(durable) {
				continue
			}
			seen[[2]string{durable, name}] = true
			m.pending.WithLabelValues(durable, name).Set(float64(ci.NumPending))
			m.ackPending.WithLabelValues(durable, name).Set(float64(ci.NumAckPending))
		}
		if err := list.Err(); err != nil {
			return fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.consumers {
		if !seen[k] {
			m.pending.DeleteLabelValues(k[0], k[1])
			m.ackPending.DeleteLabelValues(k[0], k[1])
		}
	}
	m.consumers = seen
	return nil
}

// watchers counts open WatchMatches streams.
func (m *metrics) watchers(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod == matchingv1.MatchingService_WatchMatches_FullMethodName {
		m.live.Inc()
		defer m.live.Dec()
	}
	return handler(srv, ss)
}

func (m *metrics) addRelay(service string, r *outbox.Relay) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.relays[service] = r
}

// lease returns the flag that tracks whether the lease key is held here,
// exported as carbondesk_lease_held.
func (m *metrics) lease(key string) *atomic.Bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := &atomic.Bool{}
	m.leaseSet[key] = b
	return b
}

var (
	backlogDesc = prometheus.NewDesc("carbondesk_outbox_backlog",
		"Events waiting in the service's outbox (counted up to 1000).", []string{"service"}, nil)
	oldestDesc = prometheus.NewDesc("carbondesk_outbox_oldest_age_seconds",
		"Age of the oldest event waiting in the service's outbox; 0 when empty.", []string{"service"}, nil)
	publishedDesc = prometheus.NewDesc("carbondesk_outbox_published_total",
		"Events this process's relay had acknowledged by the stream.", []string{"service"}, nil)
	atomicDesc = prometheus.NewDesc("carbondesk_outbox_atomic_batches_total",
		"Backlogs this process's relay published as one JetStream atomic batch (embedded server).", []string{"service"}, nil)
	leaseDesc = prometheus.NewDesc("carbondesk_lease_held",
		"1 while this process holds the lease (outbox relay, sweep), else 0.", []string{"lease"}, nil)
)

// relayCollector reads the outboxes at scrape time.
type relayCollector struct{ m *metrics }

func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
	ch <- publishedDesc
	ch <- atomicDesc
	ch <- leaseDesc
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	relays := make(map[string]*outbox.Relay, len(c.m.relays))
	for k, v := range c.m.relays {
		relays[k] = v
	}
	leases := make(map[string]bool, len(c.m.leaseSet))
	for k, v := range c.m.leaseSet {
		leases[k] = v.Load()
	}
	c.m.mu.Unlock()
	for service, r := range relays {
		ch <- prometheus.MustNewConstMetric(publishedDesc, prometheus.CounterValue, float64(r.Published()), service)
		ch <- prometheus.MustNewConstMetric(atomicDesc, prometheus.CounterValue, float64(r.AtomicBatches()), service)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b, err := r.Backlog(ctx, 1000)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(backlogDesc, err)
			continue
		}
		age := 0.0
		if !b.Oldest.IsZero() {
			age = time.Since(b.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(b.Count), service)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, service)
	}
	for key, held := range leases {
		v := 0.0
		if held {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(leaseDesc, prometheus.GaugeValue, v, key)
	}
}

// ServeMetrics serves reg at http://addr/metrics until the returned stop
// is called, and returns the address bound.
func ServeMetrics(addr string, reg *prometheus.Registry, log *slog.Logger, g *errgroup.Group) (string, func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s (--metrics): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics: %w", err)
		}
		return nil
	})
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return lis.Addr().String(), stop, nil
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }

// watchReadiness sets the gRPC health of the server ("") and of each unit's
// service: SERVING while NATS is connected and every store answers a ping,
// NOT_SERVING otherwise; checked every `every` until ctx ends. While ready,
// each check also reads the lag of the units' durable consumers.
func watchReadiness(ctx context.Context, log *slog.Logger, srv *grpcx.Server, nc *nats.Conn, units []*unit, m *metrics, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Warn("consumer lag metrics off", "err", err)
	}
	lagFailed := false
	pollLag := func() {
		if js == nil {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := m.pollConsumers(pctx, js, units)
		cancel()
		switch {
		case err != nil && !lagFailed && ctx.Err() == nil:
			log.Warn("could not read the consumers' lag", "err", err)
		case err == nil && lagFailed:
			log.Info("consumers' lag read again")
		}
		lagFailed = err != nil
	}
	last := -1
	check := func() {
		why := ""
		if !nc.IsConnected() {
			why = "NATS is " + nc.Status().String()
		}
		for _, u := range units {
			if why != "" {
				break
			}
			pctx, cancel := context.WithTimeout(ctx, every)
			if err := u.store.Ping(pctx); err != nil {
				why = fmt.Sprintf("%s store: %v", u.name, err)
			}
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		ok := why == ""
		srv.SetServing("", ok)
		for _, u := range units {
			srv.SetServing(u.grpcName, ok)
		}
		now := 0
		if ok {
			now = 1
		}
		m.ready.Set(float64(now))
		if ok {
			pollLag()
		}
		switch {
		case now == last:
		case ok && last != -1:
			log.Info("ready again: NATS connected and stores answer")
		case !ok:
			log.Error("not ready: health NOT_SERVING", "why", why)
		}
		last = now
	}
	check()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}
