package gateway_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/gateway"
)

// startMeteredGateway runs a desk without its own gateway and a gateway of
// the test's in front of it, counting into a registry served at the
// returned metrics URL, as `carbondesk serve gateway --metrics` does.
func startMeteredGateway(t *testing.T) (*desk, string) {
	t.Helper()
	r, issuer := runApp(t, "")
	conn, err := gateway.Dial(r.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(t.Context(), conn, gateway.Options{Log: slog.New(slog.DiscardHandler), Metrics: gateway.NewHTTPMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(gw)
	t.Cleanup(func() {
		gw.CloseStreams()
		api.Close()
	})
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	return &desk{base: api.URL, issuer: issuer, client: &http.Client{Timeout: 30 * time.Second}}, metrics.URL
}

// The gateway counts and times requests by route template, method and
// status (never by raw path: ids do not make series), and gauges the
// requests in flight, the open live feed included.
func TestHTTPMetrics(t *testing.T) {
	d, metricsURL := startMeteredGateway(t)
	staff := d.token(t, auth.Staff, "")

	var ids []string
	for i := range 2 {
		org := newOrg(t)
		var reg registryv1.RegisterInstitutionResponse
		d.call(t, "POST", "/v1/institutions", d.token(t, auth.Institution, org), map[string]any{
			"creditCode": org, "nameZh": fmt.Sprintf("楚江碳金融银行分行%d", i), "kind": "INSTITUTION_KIND_BANK",
			"tier": "TIER_BRANCH", "zone": "ZONE_FINANCE_AXIS", "address": "武汉市武昌区中南路 88 号",
			"contact": map[string]any{"name": "王晓岚", "phone": "027-8765 4321", "email": "desk@chujiang.example"},
		}, &reg)
		ids = append(ids, reg.GetInstitution().GetId())
	}
	for _, id := range ids {
		d.call(t, "GET", "/v1/institutions/"+id, staff, nil, nil)
	}
	d.failure(t, "GET", "/v1/institutions/01JZZZZZZZZZZZZZZZZZZZZZZZ", staff, nil, http.StatusNotFound)
	d.failure(t, "GET", "/v1/no-such-thing/"+ids[0], staff, nil, http.StatusNotFound)
	if r := d.do(t, "GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("GET /healthz: %d %s", r.status, r.body)
	}
	d.do(t, "BREW", "/v1/institutions", staff, nil)
	d.do(t, "GET", "/api/dev/no-such-thing", "", nil)
	d.do(t, "GET", "/", "", nil)

	// A live feed is in flight while it is open.
	watch := d.open(t, "/v1/matches:watch", staff)
	m := testenv.Scrape(t, metricsURL)
	if v, ok := testenv.MetricValue(m, "carbondesk_http_requests_in_flight"); !ok || v != 1 {
		t.Errorf("in flight with a feed open: %v (present %v), want 1", v, ok)
	}
	watch.cancel()

	want := map[string]float64{
		`carbondesk_http_requests_total{code="200",method="POST",route="/v1/institutions"}`:                 2,
		`carbondesk_http_requests_total{code="200",method="GET",route="/v1/institutions/{id}"}`:             2,
		`carbondesk_http_requests_total{code="404",method="GET",route="/v1/institutions/{id}"}`:             1,
		`carbondesk_http_requests_total{code="404",method="GET",route="unmatched"}`:                         2,
		`carbondesk_http_requests_total{code="200",method="GET",route="/"}`:                                 1,
		`carbondesk_http_requests_total{code="200",method="GET",route="/healthz"}`:                          1,
		`carbondesk_http_requests_total{code="405",method="OTHER",route="unmatched"}`:                       1,
		`carbondesk_http_requests_total{code="200",method="GET",route="/v1/matches:watch"}`:                 1,
		`carbondesk_http_request_duration_seconds_count{method="GET",route="/v1/institutions/{id}"}`:        3,
		`carbondesk_http_request_duration_seconds_bucket{method="POST",route="/v1/institutions",le="+Inf"}`: 2,
		`carbondesk_http_requests_in_flight`:                                                                0,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = testenv.Scrape(t, metricsURL)
		var wrong []string
		for series, n := range want {
			if v, ok := testenv.MetricValue(m, series); !ok || v != n {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present %v), want %v", series, v, ok, n))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway metrics:\n%s\n--- scrape:\n%s", strings.Join(wrong, "\n"), m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range ids {
		if strings.Contains(m, id) {
			t.Errorf("an id made a series: %s", id)
		}
	}
}
