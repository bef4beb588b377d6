package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/services/registry"
)

// desk is a whole carbondesk (app.Run, as the binary runs it) on a fresh
// data folder with its gateway on an ephemeral port, and the data folder's
// development key to mint tokens for organisations the test makes up.
type desk struct {
	base   string // http://host:port
	issuer auth.Issuer
	client *http.Client
}

// startDesk runs app.Run with embedded NATS, the bolt store in
// t.TempDir(), no demo data, and --http on 127.0.0.1:0. It stops, and must
// stop cleanly, when the test ends.
func startDesk(t *testing.T) *desk {
	t.Helper()
	r, issuer := runApp(t, "127.0.0.1:0")
	if r.HTTPAddr == "" || !r.DevTokens {
		t.Fatalf("ready = %+v; want an HTTP address and development tokens", r)
	}
	return &desk{base: "http://" + r.HTTPAddr, issuer: issuer, client: &http.Client{Timeout: 30 * time.Second}}
}

// runApp runs app.Run as startDesk describes, with --http on httpAddr (""
// for none), and returns what it reported ready and an issuer with the
// data folder's development key.
func runApp(t *testing.T, httpAddr string) (app.Ready, auth.Issuer) {
	t.Helper()
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = httpAddr
	cfg.Seed = false
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.WritesPerSecond = 1e6
	cfg.WriteBurst = 1e6

	r, _ := apptest.Start(t, cfg, nil, 30*time.Second)
	key, _, err := auth.LoadOrCreateDevKey(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return r, auth.Issuer{Key: key}
}

// token mints an hour's token for role and org.
func (d *desk) token(t testing.TB, role auth.Role, org string) string {
	t.Helper()
	tok, err := d.issuer.Mint(auth.Caller{Subject: fmt.Sprintf("test-%s-%s", role, org), Role: role, Org: org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// response is an HTTP answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends method path with the token (if any) and body (a string of JSON,
// or anything encoding/json takes; nil: none).
func (d *desk) do(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, d.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// call sends a request that must answer 200 and decodes the answer, as
// protojson (unknown fields refused), into out.
func (d *desk) call(t testing.TB, method, path, token string, body any, out proto.Message) {
	t.Helper()
	r := d.do(t, method, path, token, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, r.status, r.body)
	}
	if out != nil {
		if err := protojson.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: the answer is not a %T: %v\n%s", method, path, out, err, r.body)
		}
	}
}

// errorBody is the gateway's error format.
type errorBody struct {
	Code       int    `json:"code"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Violations []struct {
		Field       string `json:"field"`
		Description string `json:"description"`
	} `json:"violations"`
	RequestID string `json:"request_id"`
}

// failure sends a request that must fail with httpStatus and returns its
// error body.
func (d *desk) failure(t testing.TB, method, path, token string, body any, httpStatus int) errorBody {
	t.Helper()
	r := d.do(t, method, path, token, body)
	if r.status != httpStatus {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, r.status, httpStatus, r.body)
	}
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("%s %s: error body is not JSON: %v: %s", method, path, err, r.body)
	}
	if e.Code == 0 || e.Status == "" || e.Message == "" || e.RequestID == "" || e.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("%s %s: error body %s lacks code, status, message or the request id %q", method, path, r.body, r.header.Get("X-Request-Id"))
	}
	return e
}

// stream is an open NDJSON response (GET /v1/matches:watch).
type stream struct {
	lines  chan string
	cancel context.CancelFunc
}

// open starts a streaming GET and returns once its headers arrived.
func (d *desk) open(t testing.TB, path, token string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{}).Do(req) // no timeout: it is a stream
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: HTTP %d: %s", path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("GET %s: Content-Type %q, want application/x-ndjson", path, ct)
	}
	s := &stream{lines: make(chan string, 100), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(cancel)
	return s
}

var codeSeq atomic.Int64

// newOrg returns a valid unified social credit code no other call returns.
func newOrg(t testing.TB) string {
	t.Helper()
	code, err := registry.CompleteCreditCode(fmt.Sprintf("91420106G%08d", codeSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// eventually retries fn every 20 ms for up to 10 s, until it returns true.
func eventually(t testing.TB, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
