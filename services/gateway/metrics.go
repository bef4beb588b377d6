package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics are the gateway's request metrics, on the registry of the
// process that serves them (Options.Metrics; nil: none).
//
// Requests are labelled by route, never by raw path: an API call by its
// HTTP rule's template ("/v1/institutions/{id}:approve"), anything else by
// the pattern that served it ("/healthz", "/openapi.json",
// "/api/dev/token", "/" for the console's files), and "unmatched" when no
// route took it (an unknown /v1/ path, a wrong method). Methods outside
// the standard ones count as "OTHER". So the series stay a bounded set
// whatever ids and paths clients send.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewHTTPMetrics registers the gateway's request metrics on reg. It panics
// when reg holds them already (one gateway per registry), as
// prometheus.MustRegister does.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carbondesk_http_requests_total",
			Help: "HTTP requests the gateway answered, by route (the HTTP rule's template, never the raw path), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carbondesk_http_request_duration_seconds",
			Help:    "How long the gateway took to answer, by route and method (the live match feed: the stream's whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carbondesk_http_requests_in_flight",
			Help: "HTTP requests the gateway is answering now, open live match feeds included.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

func (m *HTTPMetrics) observe(route, method string, code int, d time.Duration) {
	method = metricMethod(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// unmatchedRoute labels a request no route took.
const unmatchedRoute = "unmatched"

// metricMethod is method if it is a standard one, else "OTHER": a client
// must not mint series with made-up methods.
func metricMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// routeOf is the route label of a request served: the API rule's template
// recorded by recordRoute, else the net/http pattern that matched it,
// without its method ("GET /healthz" → "/healthz"), else unmatchedRoute.
// The /v1/ prefix alone means grpc-gateway found no rule: unmatched; so
// is the development sign-in's catch-all.
func routeOf(st *reqState, r *http.Request) string {
	if st.route != "" {
		return st.route
	}
	p := r.Pattern
	if _, rest, ok := strings.Cut(p, " "); ok {
		p = rest
	}
	switch {
	case p == "" || p == "/v1/":
		return unmatchedRoute
	case p == "/" && strings.HasPrefix(r.URL.Path, "/api/"):
		return unmatchedRoute // the dev sign-in's catch-all, not the console
	}
	return p
}

// recordRoute is a grpc-gateway middleware noting the matched HTTP rule's
// template in the request's state, for the metrics and the log line.
func recordRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
				st.route = routeTemplate(p.String())
			}
		}
		next(w, r, params)
	}
}

// routeTemplate writes grpc-gateway's pattern "/v1/institutions/{id=*}"
// as the HTTP rule reads, "/v1/institutions/{id}".
func routeTemplate(p string) string { return strings.ReplaceAll(p, "=*}", "}") }
