package natsx

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartInProcessHasNoListener(t *testing.T) {
	t.Parallel()
	srv, err := Start(Options{Dir: t.TempDir(), Name: "inproc"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	if got := srv.ClientURL(); got != "" {
		t.Errorf("ClientURL() = %q, want empty for a server without listener", got)
	}
	if srv.ns.Addr() != nil {
		t.Errorf("server listens on %v, want no TCP listener", srv.ns.Addr())
	}
	cfg := srv.ns.JetStreamConfig()
	if cfg == nil || !cfg.SyncAlways {
		t.Fatalf("JetStream config %+v: want SyncAlways (see package doc)", cfg)
	}
	if got := srv.ns.Name(); got != "inproc" {
		t.Errorf("server name = %q, want inproc", got)
	}

	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	publishAndRead(t, nc, "ORDERS", "orders.one", "hello")
}

func TestStartWithLoopbackListener(t *testing.T) {
	t.Parallel()
	srv, err := Start(Options{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	url := srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL() = %q, want a random loopback port", url)
	}
	nc, err := Connect(url, "natsx-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	publishAndRead(t, nc, "TCP", "tcp.one", "over tcp")

	// Server.Connect goes over TCP too when there is a listener.
	nc2, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	if got := nc2.ConnectedUrl(); got != url {
		t.Errorf("Server.Connect connected to %q, want %q", got, url)
	}
}

func TestStartRejectsBadListen(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"} {
		if srv, err := Start(Options{Dir: t.TempDir(), Listen: listen}); err == nil {
			srv.Shutdown()
			t.Errorf("Start(Listen %q) succeeded, want an error", listen)
		}
	}
	if _, err := Start(Options{}); err == nil {
		t.Error("Start without Dir succeeded, want an error")
	}
}

func TestStartFailsFastWhenPortTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	start := time.Now()
	srv, err := Start(Options{Dir: t.TempDir(), Listen: l.Addr().String(), ReadyTimeout: 10 * time.Second})
	if err == nil {
		srv.Shutdown()
		t.Fatal("Start on a taken port succeeded, want an error")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Start took %s to fail, want the fatal error reported at once", took)
	}
	t.Logf("error: %v", err)
}

// TestDataSurviveRestart: the file store in Dir keeps streams and messages
// across a shutdown, and the client reconnects to the restarted server.
func TestDataSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := Start(Options{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.ClientURL(), "nats://")

	reconnected := make(chan struct{}, 1)
	nc, err := Connect(srv.ClientURL(), "restart-test",
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	publishAndRead(t, nc, "KEEP", "keep.one", "before restart")

	srv.Shutdown()
	srv, err = Start(Options{Dir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not reconnect to the restarted server")
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "before restart" {
		t.Errorf("message after restart = %q, want %q", m.Data, "before restart")
	}
}

// publishAndRead creates a stream, publishes one message and reads it back.
func publishAndRead(t *testing.T, nc *nats.Conn, stream, subject, data string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, subject, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != data {
		t.Errorf("read back %q, want %q", m.Data, data)
	}
}
