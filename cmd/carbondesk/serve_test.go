package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

var metricsLine = regexp.MustCompile(`^\s+metrics\s+(http://[^/\s]+)/metrics`)

// startServe runs `carbondesk ARGS...` and returns the printed lines that
// matched each pattern, once all have.
func startServe(t *testing.T, bin string, patterns []*regexp.Regexp, args ...string) []string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	got := make([]string, len(patterns))
	left := len(patterns)
	timeout := time.After(30 * time.Second)
	for left > 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("carbondesk %v exited before it was ready", args)
			}
			for i, p := range patterns {
				if m := p.FindStringSubmatch(l); m != nil && got[i] == "" {
					got[i] = m[1]
					left--
				}
			}
		case <-timeout:
			t.Fatalf("carbondesk %v did not print its addresses within 30 s", args)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return got
}

func httpGet(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// One service per process, as the compose file runs them: `serve
// registry` against NATS and Redis with its demo data, `serve gateway` in
// front of it, each with its metrics.
func TestBinaryServeOneService(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	rp := testenv.RedisServer(t)
	ns := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})

	reg := startServe(t, bin, []*regexp.Regexp{grpcLine, metricsLine},
		"serve", "registry", "--nats", ns.ClientURL(), "--redis", rp.URL(), "--data", data, "--seed",
		"--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn")
	gw := startServe(t, bin, []*regexp.Regexp{httpLine, metricsLine},
		"serve", "gateway", "--upstream", "registry="+reg[0], "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--log-level", "warn")

	tok := token(t, bin, data, "--role", "staff")
	code, body := httpGet(t, gw[0]+"/v1/institutions?pageSize=5", tok)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/institutions through the gateway: %d %s", code, body)
	}
	var list struct {
		Institutions []json.RawMessage `json:"institutions"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Institutions) == 0 {
		t.Fatalf("want the seeded institutions, got %s (%v)", body, err)
	}

	if code, body := httpGet(t, reg[1]+"/metrics", ""); code != http.StatusOK ||
		!strings.Contains(body, `carbondesk_rpc_duration_seconds_count{code="OK",method="/carbondesk.registry.v1.RegistryService/ListInstitutions"}`) ||
		!strings.Contains(body, `carbondesk_outbox_backlog{service="registry"}`) {
		t.Errorf("registry metrics: %d\n%s", code, body)
	}
	if code, body := httpGet(t, gw[1]+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, `carbondesk_http_requests_total{code="200",method="GET",route="/v1/institutions"} 1`) ||
		!strings.Contains(body, `carbondesk_http_request_duration_seconds_count{method="GET",route="/v1/institutions"} 1`) ||
		!strings.Contains(body, "carbondesk_http_requests_in_flight 0") {
		t.Errorf("gateway metrics: %d\n%s", code, body)
	}
}
