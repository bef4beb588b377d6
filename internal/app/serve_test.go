package app_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/gateway"
	"github.com/carbondesk/carbondesk/services/registry"
)

// runService runs one service as `carbondesk serve` does, against an
// external NATS and Redis, and returns what it reported ready.
func runService(t *testing.T, service, natsURL, prefix string, tune func(*app.Config)) app.Ready {
	t.Helper()
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Services = []string{service}
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = ""
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.NATSURL = natsURL
	cfg.RedisURL = testenv.RedisURL()
	cfg.RedisKeyPrefix = prefix
	cfg.Seed = false
	cfg.LeaseTTL = 1500 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	if tune != nil {
		tune(&cfg)
	}
	r, _ := apptest.Start(t, cfg, nil, 30*time.Second)
	return r
}

// scrape reads the metrics page a process serves at addr (--metrics).
func scrape(t *testing.T, addr string) string {
	t.Helper()
	return testenv.Scrape(t, "http://"+addr+"/metrics")
}

// Two replicas of one service side by side, both told to seed: both
// serve, exactly one holds the outbox relay's lease, both export their
// metrics, and the stream holds each seeded event once.
func TestServeOneServiceTwoReplicas(t *testing.T) {
	ns := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})
	prefix := redisPrefix(t)
	seed := func(c *app.Config) { c.Seed = true }
	a := runService(t, registry.Name, ns.ClientURL(), prefix, seed)
	b := runService(t, registry.Name, ns.ClientURL(), prefix, seed)

	for _, r := range []app.Ready{a, b} {
		conn, err := gateway.Dial(r.GRPCAddr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: registry.ServiceName})
		_ = conn.Close()
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%s health: %v %v", r.GRPCAddr, resp.GetStatus(), err)
		}
	}

	const held = `carbondesk_lease_held{lease="registry.outbox"} 1`
	deadline := time.Now().Add(10 * time.Second)
	for {
		ma, mb := scrape(t, a.MetricsAddr), scrape(t, b.MetricsAddr)
		for _, want := range []string{`carbondesk_outbox_backlog{service="registry"}`, `carbondesk_outbox_atomic_batches_total{service="registry"}`, `carbondesk_rpc_duration_seconds`, `carbondesk_ready 1`} {
			if !strings.Contains(ma, want) {
				t.Fatalf("metrics lack %s:\n%s", want, ma)
			}
		}
		if strings.Contains(ma, held) != strings.Contains(mb, held) {
			break // exactly one holds it
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease held by both or neither:\n%s\n---\n%s", ma, mb)
		}
		time.Sleep(50 * time.Millisecond)
	}

	js := testenv.JetStream(t, ns)
	seen := map[string]bool{}
	msgs := testenv.StreamMessages(t, js, events.StreamName(registry.Name))
	if len(msgs) == 0 {
		t.Fatal("no seeded events in the stream")
	}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Errorf("event %s twice in the stream", id)
		}
		seen[id] = true
	}
}

// redisPrefix is a key prefix of the test's own, its keys deleted when the
// test ends.
func redisPrefix(t *testing.T) string {
	prefix := "test-serve-" + rand.Text()
	client, _ := testenv.Redis(t)
	t.Cleanup(func() {
		keys, _ := client.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			_ = client.Del(context.Background(), keys...).Err()
		}
	})
	return prefix
}

func healthOf(t *testing.T, addr, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := gateway.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health %q: %v", service, err)
	}
	return resp.GetStatus()
}

// Readiness follows NATS: NOT_SERVING while it is away, SERVING again when
// it is back.
func TestServeReadinessFollowsNATS(t *testing.T) {
	dir := t.TempDir()
	ns := testenv.StartNATS(t, natsx.Options{Dir: dir, Listen: "127.0.0.1:0"})
	addr := strings.TrimPrefix(ns.ClientURL(), "nats://")
	r := runService(t, registry.Name, ns.ClientURL(), redisPrefix(t), func(c *app.Config) {
		c.ReadinessEvery = 50 * time.Millisecond
		c.ShutdownTimeout = 2 * time.Second
	})
	for _, svc := range []string{"", registry.ServiceName} {
		if got := healthOf(t, r.GRPCAddr, svc); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q at start: %v", svc, got)
		}
	}

	ns.Shutdown()
	testenv.Eventually(t, 10*time.Second, func() bool {
		return healthOf(t, r.GRPCAddr, registry.ServiceName) == healthpb.HealthCheckResponse_NOT_SERVING &&
			healthOf(t, r.GRPCAddr, "") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if m := scrape(t, r.MetricsAddr); !strings.Contains(m, "carbondesk_ready 0") {
		t.Errorf("metrics while NATS is away lack carbondesk_ready 0")
	}

	testenv.StartNATS(t, natsx.Options{Dir: dir, Listen: addr})
	testenv.Eventually(t, 20*time.Second, func() bool {
		return healthOf(t, r.GRPCAddr, registry.ServiceName) == healthpb.HealthCheckResponse_SERVING
	})
}
