package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// requestIDHeader carries a request's id: taken from the client when it
// sends a sane one, made up otherwise, forwarded to the desk as gRPC
// metadata (the desk logs it) and returned in the response.
const requestIDHeader = "x-request-id"

// ContentSecurityPolicy allows the console its own files and its own
// origin only: no remote sources, no inline scripts or styles, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// reqState is what the gateway keeps about one request.
type reqState struct {
	id           string
	route        string // the API rule's template, set by recordRoute
	bodyTooLarge atomic.Bool
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	if s, ok := ctx.Value(stateKey{}).(*reqState); ok {
		return s
	}
	return &reqState{}
}

func requestIDFrom(ctx context.Context) string { return stateFrom(ctx).id }

// validRequestID accepts what is safe to log and forward.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// instrument gives each request its id and logs it when done: method,
// path, route, status, size, duration and id; with metrics, it counts and
// times it by route (HTTPMetrics). Headers, query strings and bodies are
// never logged: they may hold a token or personal data.
func (g *Gateway) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if g.metrics != nil {
			g.metrics.inFlight.Inc()
			defer g.metrics.inFlight.Dec()
		}
		st := &reqState{id: r.Header.Get(requestIDHeader)}
		if !validRequestID(st.id) {
			st.id = newRequestID()
		}
		w.Header().Set(requestIDHeader, st.id)
		sw := &statusWriter{ResponseWriter: w}
		// The muxes below set served.Pattern to the pattern that matched.
		served := r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		next.ServeHTTP(sw, served)
		took := time.Since(start)
		route := routeOf(st, served)
		if g.metrics != nil {
			g.metrics.observe(route, r.Method, sw.code(), took)
		}

		level := slog.LevelDebug
		api := strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/api/")
		switch {
		case sw.status >= 500:
			level = slog.LevelWarn
		case api:
			level = slog.LevelInfo
		}
		g.log.Log(r.Context(), level, "http", "method", r.Method, "path", r.URL.Path, "route", route, "status", sw.code(),
			"bytes", sw.bytes, "request_id", st.id, "duration_ms", float64(took.Microseconds())/1000)
	})
}

// statusWriter records the status and size of a response, and drops a
// second WriteHeader (a stream that fails after its headers went out).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection's Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitBody refuses bodies larger than the gateway's bound: at once when
// Content-Length says so, or when a streamed body passes it (writeError
// then answers 413).
func (g *Gateway) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > g.maxBody {
			writeErrorBody(w, r, http.StatusRequestEntityTooLarge,
				status.Newf(codes.InvalidArgument, "the request body is larger than %d bytes", g.maxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, g.maxBody), state: stateFrom(r.Context())}
		}
		next.ServeHTTP(w, r)
	})
}

type limitedBody struct {
	io.ReadCloser
	state *reqState
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.state.bodyTooLarge.Store(true)
	}
	return n, err
}

// securityHeaders go on every response. API responses are never cached:
// they are a caller's own data, and the dev sign-in's hold a token.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// streamWriter makes a server stream that fails before it starts answer
// like any other call: grpc-gateway writes such an error as the stream's
// line {"error": {...}} under the error's HTTP status; with a failing
// status, the line's inner error body is written alone.
type streamWriter struct {
	http.ResponseWriter
	started, failed bool
}

func (w *streamWriter) WriteHeader(code int) {
	if !w.started && code >= 400 {
		w.failed = true
	}
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.started = true
	if w.failed {
		w.failed = false
		var line struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(b, &line) == nil && len(line.Error) > 0 {
			if _, err := w.ResponseWriter.Write(line.Error); err != nil {
				return 0, err
			}
			return len(b), nil
		}
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's Flush.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
