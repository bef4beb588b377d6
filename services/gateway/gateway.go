// Package gateway is CarbonDesk's HTTP edge: REST/JSON for every public RPC
// of the registry, catalog, matching and talent services (generated with
// grpc-gateway from the HTTP rules in proto/carbondesk/gateway/http.yaml),
// the OpenAPI description at /openapi.json, a health check at /healthz, the
// development sign-in at /api/dev/ (single binary, development keys only)
// and the web console (package console) at the site root.
//
// The gateway owns no data and decides nothing: it dials the desk's gRPC
// listener (the process's own inside the single binary, a flag when it runs
// alone) and forwards each call with the caller's Authorization header as
// gRPC metadata, so the same bearer tokens, authorization table and
// validation apply. What it adds is HTTP hygiene: one JSON error format
// (errors.go), a request id on every call, bounded request bodies, security
// headers, and a log line per request that never holds a token.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/carbondesk/carbondesk"
	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/services/gateway/console"
	"github.com/carbondesk/carbondesk/services/matching"
)

// Defaults.
const (
	// DefaultMaxBodyBytes bounds a request body; the largest request
	// (a product or an event) is a few kilobytes of JSON.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultCallTimeout bounds each unary call to the desk.
	DefaultCallTimeout = 30 * time.Second
	// maxRecvBytes lets a full page of 200 objects through.
	maxRecvBytes = 16 << 20
)

// Options tunes a gateway.
type Options struct {
	// Log receives one line per request (method, path, status, duration,
	// request id: never a header, a body or a query string).
	Log *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DevSignIn, when not nil, serves /api/dev/identities and
	// /api/dev/token: only in the single binary's development mode.
	DevSignIn *DevSignIn
	// Upstreams, keyed by full gRPC service name
	// ("carbondesk.registry.v1.RegistryService"), send that service's calls
	// to their own connection instead of New's conn: one service per
	// process. The gateway does not close them.
	Upstreams map[string]*grpc.ClientConn
	// Metrics, when not nil, count every request by route, method and
	// status, time it, and gauge the requests in flight.
	Metrics *HTTPMetrics
}

// Gateway is the HTTP handler of the edge.
type Gateway struct {
	conn    *grpc.ClientConn
	ups     map[string]*grpc.ClientConn
	log     *slog.Logger
	maxBody int64
	dev     *DevSignIn
	metrics *HTTPMetrics
	api     *runtime.ServeMux
	root    http.Handler
	// streams is cancelled by CloseStreams, ending open watch streams at
	// shutdown (an HTTP server's Shutdown would wait for them for ever).
	streams     context.Context
	stopStreams context.CancelFunc
}

// service is a public gRPC service the gateway serves.
type service struct {
	desc     protoreflect.ServiceDescriptor
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// services lists every public service; a test checks that each of their
// RPCs has a REST path.
func services() []service {
	return []service{
		{registryv1.File_carbondesk_registry_v1_registry_proto.Services().ByName("RegistryService"), registryv1.RegisterRegistryServiceHandler},
		{catalogv1.File_carbondesk_catalog_v1_catalog_proto.Services().ByName("CatalogService"), catalogv1.RegisterCatalogServiceHandler},
		{matchingv1.File_carbondesk_matching_v1_matching_proto.Services().ByName("MatchingService"), matchingv1.RegisterMatchingServiceHandler},
		{talentv1.File_carbondesk_talent_v1_talent_proto.Services().ByName("TalentService"), talentv1.RegisterTalentServiceHandler},
	}
}

// Dial returns a client connection to the desk's gRPC listener at addr
// (plaintext: the gateway and the desk share a host or a private network).
// Every unary call gets DefaultCallTimeout unless it has a deadline.
func Dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if _, ok := ctx.Deadline(); !ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
				defer cancel()
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("gateway: dial %s: %w", addr, err)
	}
	return conn, nil
}

// New builds the gateway over a connection to the desk. ctx bounds the
// registration only.
func New(ctx context.Context, conn *grpc.ClientConn, o Options) (*Gateway, error) {
	g := &Gateway{conn: conn, ups: o.Upstreams, log: o.Log, maxBody: o.MaxBodyBytes, dev: o.DevSignIn, metrics: o.Metrics}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	g.streams, g.stopStreams = context.WithCancel(context.Background())

	// JSON: protojson with lowerCamelCase names, zero values left out of
	// responses, and unknown request fields refused (a misspelt field is
	// an error, not a silent no-op).
	codec := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	g.api = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &marshaler{JSONPb: codec}),
		runtime.WithErrorHandler(g.writeError),
		runtime.WithStreamErrorHandler(g.streamError),
		runtime.WithRoutingErrorHandler(g.routingError),
		// Only the Authorization header (which grpc-gateway always passes
		// as "authorization") and the request id travel to the desk.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(func(ctx context.Context, _ *http.Request) metadata.MD {
			return metadata.Pairs(requestIDHeader, requestIDFrom(ctx))
		}),
		runtime.WithForwardResponseOption(startStream),
		runtime.WithMiddlewares(recordRoute),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
	)
	for _, s := range services() {
		if err := s.register(ctx, g.api, g.connFor(string(s.desc.FullName()))); err != nil {
			return nil, fmt.Errorf("gateway: register %s: %w", s.desc.FullName(), err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", g.limitBody(g.watchable(g.api)))
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.Handle("/api/", g.limitBody(g.devRoutes()))
	mux.Handle("/", consoleHandler())
	g.root = g.instrument(securityHeaders(mux))
	return g, nil
}

// ServeHTTP serves every route of the gateway.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.root.ServeHTTP(w, r) }

// CloseStreams ends every open server stream (the live match feed) so a
// shutdown does not wait for them; the console reconnects to the next
// process.
func (g *Gateway) CloseStreams() { g.stopStreams() }

// watchable ties server-streaming calls to the gateway's stream context,
// which CloseStreams cancels.
func (g *Gateway) watchable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && isStreamPath(r.URL.Path) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			stop := context.AfterFunc(g.streams, cancel)
			defer stop()
			r = r.WithContext(ctx)
			w = &streamWriter{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

// isStreamPath reports whether path is a server-streaming RPC's.
func isStreamPath(path string) bool { return path == "/v1/matches:watch" }

// startStream sends a stream's response headers as soon as the desk says
// the watch is in place (matching.WatchReadyHeader; grpc-gateway would wait
// for the first message), so a client knows it is live and misses nothing
// it does after that. It runs with a nil message only at the start of a
// server stream. A stream that failed at once (a status, no ready header)
// is left to the error handler, which answers with the error's HTTP status.
func startStream(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	if m != nil {
		return nil
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); !ok || len(md.HeaderMD.Get(matching.WatchReadyHeader)) == 0 {
		return nil
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}

// serveOpenAPI serves the merged OpenAPI v2 description generated from the
// protos and the HTTP rules.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(carbondesk.OpenAPI)
}

// healthz answers 200 when the desk's gRPC health says every public
// service is serving, 503 otherwise, with what each said.
func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	type result struct {
		Status   string            `json:"status"`
		Gateway  string            `json:"gateway"`
		Upstream map[string]string `json:"upstream"`
	}
	res := result{Status: "SERVING", Gateway: "SERVING", Upstream: map[string]string{}}
	check := func(name string) {
		resp, err := healthpb.NewHealthClient(g.connFor(name)).Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		st := resp.GetStatus().String()
		if err != nil {
			st = "UNREACHABLE"
		}
		if name == "" {
			name = "server"
		}
		res.Upstream[name] = st
		if st != healthpb.HealthCheckResponse_SERVING.String() {
			res.Status = "NOT_SERVING"
		}
	}
	check("")
	for _, s := range services() {
		check(string(s.desc.FullName()))
	}
	code := http.StatusOK
	if res.Status != "SERVING" {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, res)
}

// connFor is the connection that serves the gRPC service named.
func (g *Gateway) connFor(service string) *grpc.ClientConn {
	if c, ok := g.ups[service]; ok {
		return c
	}
	return g.conn
}

// consoleHandler serves the embedded console, index.html at "/".
func consoleHandler() http.Handler {
	files := http.FileServerFS(console.Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeErrorBody(w, r, http.StatusMethodNotAllowed, status.New(codes.Unimplemented, r.Method+" is not served here: the console is read with GET"))
			return
		}
		// Always revalidate: a new binary brings new files under the same names.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
