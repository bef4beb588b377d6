package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carbondesk/carbondesk/internal/store/redisstore"
)

// DefaultRedisURL is the Redis tests use when REDIS_URL is not set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RedisURL is the Redis the tests share: $REDIS_URL, or DefaultRedisURL.
func RedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// Redis connects to the shared test Redis (RedisURL) with the client
// production uses (redisstore.NewClient) and returns it with a key prefix of
// the test's own, "test:{<random>}": a hash tag, as redisstore wants. When the
// test ends every key under the prefix is deleted and the client closed.
//
// A test that finds no Redis fails, saying how to start one; it never skips,
// so a green run means the Redis adapter was tested.
func Redis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	raw := RedisURL()
	shown := raw
	if u, err := url.Parse(raw); err == nil {
		shown = u.Redacted()
	}
	client, err := redisstore.NewClient(raw)
	if err != nil {
		tb.Fatalf("testenv: REDIS_URL %s: %v", shown, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		tb.Fatalf("testenv: no Redis at %s: %v\n"+
			"\tthe store tests need a real redis-server; start one with\n"+
			"\t\tredis-server --save '' --appendonly no --daemonize yes\n"+
			"\tor set REDIS_URL=redis://host:port/db", shown, err)
	}
	prefix := "test:{" + rand.Text() + "}"
	tb.Cleanup(func() {
		defer client.Close()
		if err := deleteKeys(client, prefix); err != nil {
			tb.Errorf("testenv: clean up Redis keys %s*: %v", prefix, err)
		}
	})
	return client, prefix
}

// deleteKeys removes every key starting with prefix.
func deleteKeys(client *redis.Client, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return client.Unlink(ctx, batch...).Err()
	}
	return nil
}

// globEscape quotes the characters SCAN MATCH treats as pattern syntax.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RedisProc is a private redis-server process for fault tests: a test may
// stop it (SIGKILL, like a crash) and start it again on the same port, while
// its clients keep their address. Call its methods from the test's goroutine.
type RedisProc struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	args []string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// RedisServer starts redis-server on a free loopback port, without
// persistence, its working folder in tb.TempDir(). Extra args are appended
// to the command line and win over the defaults (for example "--appendonly",
// "yes", "--appendfsync", "always" to keep data across Stop and Start). The
// process is killed when the test ends. The test fails when redis-server is
// not on PATH.
func RedisServer(tb testing.TB, args ...string) *RedisProc {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("testenv: redis-server is not on PATH (%v); install it (apt-get install redis-server) to run the Redis fault tests", err)
	}
	p := &RedisProc{tb: tb, bin: bin, dir: tb.TempDir(), args: args}
	tb.Cleanup(p.Stop)
	// The free port is found by binding and releasing it, so another process
	// may take it first: then redis-server exits at once, and we try again.
	for attempt := 1; ; attempt++ {
		p.port = freePort(tb)
		err := p.start()
		if err == nil {
			return p
		}
		if attempt == 3 {
			tb.Fatalf("testenv: %v", err)
		}
	}
}

// Addr is the server's host:port.
func (p *RedisProc) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL is the server's redis:// URL, for redisstore.NewClient.
func (p *RedisProc) URL() string { return "redis://" + p.Addr() + "/0" }

// Stop kills the server (SIGKILL: no shutdown save, like a crash) and waits
// for it to exit. Stopping a stopped server does nothing.
func (p *RedisProc) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Start starts the server again on the same port and folder, and waits until
// it answers. Starting a running server does nothing.
func (p *RedisProc) Start() {
	p.tb.Helper()
	if p.cmd != nil {
		return
	}
	if err := p.start(); err != nil {
		p.tb.Fatalf("testenv: %v", err)
	}
}

func (p *RedisProc) start() error {
	logPath := filepath.Join(p.dir, "redis.log")
	args := append([]string{
		"--port", strconv.Itoa(p.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", p.dir,
		"--logfile", logPath,
	}, p.args...)
	cmd := exec.Command(p.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done

	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(p.Addr()) {
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			return fmt.Errorf("redis-server on port %d exited at start:\n%s", p.port, tail(logPath, 10))
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("redis-server on port %d did not answer PING within 10s:\n%s", p.port, tail(logPath, 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping reports whether a Redis at addr answers PING with PONG (not LOADING).
func ping(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
