package app_test

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
	"github.com/carbondesk/carbondesk/services/talent"
)

// startMetricsApp is startApp with --metrics on an ephemeral port, the
// embedded NATS listening (to pause consumers from outside) and readiness
// (which reads the consumers' lag) checked every 50 ms.
func startMetricsApp(t *testing.T) (*testApp, app.Ready) {
	t.Helper()
	a := startApp(t, nil, func(c *app.Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.NATSListen = "127.0.0.1:0"
		c.ReadinessEvery = 50 * time.Millisecond
	})
	return a, a.ready
}

// The demand side's match latency is observed for every PostDemand that
// succeeded, and each durable consumer's lag is exported from the
// readiness loop: it rises while a consumer is paused and events arrive,
// and falls back to 0 once it has caught up.
func TestMetricsMatchLatencyAndConsumerLag(t *testing.T) {
	a, r := startMetricsApp(t)

	// Real traffic: an institution approved (registry events for three
	// consumers), a product published (catalog events for matching), a
	// demand posted and matched.
	a.proposed(t, newOrg(t), newOrg(t))

	m := scrape(t, r.MetricsAddr)
	if n, ok := testenv.MetricValue(m, `carbondesk_match_latency_seconds_count{direction="demand"}`); !ok || n < 1 {
		t.Errorf("match latency: count %v (present %v), want >= 1 after PostDemand calls:\n%s", n, ok, grep(m, "carbondesk_match_latency"))
	}
	if _, ok := testenv.MetricValue(m, `carbondesk_match_latency_seconds_bucket{direction="demand",le="0.01"}`); !ok {
		t.Errorf("match latency has no 10 ms bucket:\n%s", grep(m, "carbondesk_match_latency"))
	}

	durables := []struct{ durable, stream string }{
		{catalog.FeedDurable, events.StreamName(registry.Name)},
		{talent.FeedDurable, events.StreamName(registry.Name)},
		{matching.InstitutionsDurable, events.StreamName(registry.Name)},
		{matching.ProductsDurable, events.StreamName(catalog.Name)},
	}
	series := func(name, durable, stream string) string {
		return fmt.Sprintf(`%s{consumer=%q,stream=%q}`, name, durable, stream)
	}
	waitMetrics(t, r.MetricsAddr, func(m string) string {
		for _, d := range durables {
			for _, name := range []string{"carbondesk_consumer_pending", "carbondesk_consumer_ack_pending"} {
				if v, ok := testenv.MetricValue(m, series(name, d.durable, d.stream)); !ok || v != 0 {
					return fmt.Sprintf("%s = %v (present: %v), want 0 once caught up", series(name, d.durable, d.stream), v, ok)
				}
			}
		}
		return ""
	})

	// Lag: pause the catalog's institution feed, register institutions;
	// the events wait for it and the gauge shows them.
	nc, err := nats.Connect(r.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	regStream := events.StreamName(registry.Name)
	if _, err := js.PauseConsumer(t.Context(), regStream, catalog.FeedDurable, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.register(t, newOrg(t), newMarker())
	}
	lagging := series("carbondesk_consumer_pending", catalog.FeedDurable, regStream)
	waitMetrics(t, r.MetricsAddr, func(m string) string {
		if v, ok := testenv.MetricValue(m, lagging); !ok || v < 3 {
			return fmt.Sprintf("%s = %v (present: %v), want >= 3 while the consumer is paused", lagging, v, ok)
		}
		return ""
	})
	if _, err := js.ResumeConsumer(t.Context(), regStream, catalog.FeedDurable); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, r.MetricsAddr, func(m string) string {
		if v, ok := testenv.MetricValue(m, lagging); !ok || v != 0 {
			return fmt.Sprintf("%s = %v (present: %v), want 0 once resumed", lagging, v, ok)
		}
		return ""
	})
}

// waitMetrics scrapes addr until check finds nothing wrong (""), for up to
// 10 s, then fails with what check last said.
func waitMetrics(t *testing.T, addr string, check func(scrape string) string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		wrong := check(scrape(t, addr))
		if wrong == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics at %s after 10 s: %s", addr, wrong)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grep is the lines of a scrape that hold s, for failure messages.
func grep(scrape, s string) string {
	var out string
	for _, l := range regexp.MustCompile(`(?m)^.*`+regexp.QuoteMeta(s)+`.*$`).FindAllString(scrape, -1) {
		out += l + "\n"
	}
	return out
}

// The single binary's gateway (--http) counts its requests on the
// process's registry, served at --metrics with the services' metrics.
func TestMetricsGatewayAllInOne(t *testing.T) {
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Seed = false
	cfg.ShutdownTimeout = 5 * time.Second
	r, _ := apptest.Start(t, cfg, nil, 30*time.Second)
	for range 2 {
		resp, err := http.Get("http://" + r.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	resp, err := http.Get("http://" + r.HTTPAddr + "/v1/institutions/01JZZZZZZZZZZZZZZZZZZZZZZZ")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	m := scrape(t, r.MetricsAddr)
	for series, want := range map[string]float64{
		`carbondesk_http_requests_total{code="200",method="GET",route="/healthz"}`:              2,
		`carbondesk_http_requests_total{code="401",method="GET",route="/v1/institutions/{id}"}`: 1,
		`carbondesk_http_request_duration_seconds_count{method="GET",route="/healthz"}`:         2,
		`carbondesk_http_requests_in_flight`:                                                    0,
	} {
		if v, ok := testenv.MetricValue(m, series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v\n%s", series, v, ok, want, grep(m, "carbondesk_http"))
		}
	}
}
