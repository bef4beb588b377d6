package testenv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/natsx"
)

// NATS starts a fresh embedded JetStream server for the test: its own data
// folder (t.TempDir), no TCP listener, shut down when the test ends.
func NATS(t testing.TB) *natsx.Server {
	t.Helper()
	return StartNATS(t, natsx.Options{})
}

// StartNATS starts an embedded server with opts, filling Dir with a fresh
// t.TempDir when empty and Name with the test's name. The server is shut down
// when the test ends (Shutdown is idempotent, so a test may stop it earlier,
// for example to simulate an outage).
func StartNATS(t testing.TB, opts natsx.Options) *natsx.Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Name == "" {
		opts.Name = "test"
	}
	srv, err := natsx.Start(opts)
	if err != nil {
		t.Fatalf("testenv: start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// JetStream connects to srv and returns a JetStream context; the connection
// is closed when the test ends.
func JetStream(t testing.TB, srv *natsx.Server) jetstream.JetStream {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("testenv: connect to embedded NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	return js
}

// RestartableJetStream starts an embedded NATS with a TCP listener on a
// loopback port and connects to it over TCP, reconnecting every
// reconnectWait, as a service talking to an external server does: a fault
// test can shut the server down and start it again on the same address and
// folder (returned) while the connection lives on.
func RestartableJetStream(t testing.TB, name string, reconnectWait time.Duration) (srv *natsx.Server, addr, dir string, js jetstream.JetStream) {
	t.Helper()
	dir = t.TempDir()
	srv = StartNATS(t, natsx.Options{Dir: dir, Listen: "127.0.0.1:0"})
	nc, err := natsx.Connect(srv.ClientURL(), name, nats.ReconnectWait(reconnectWait))
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	if js, err = jetstream.New(nc); err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	return srv, strings.TrimPrefix(srv.ClientURL(), "nats://"), dir, js
}

// Stream creates (or updates) the service's event stream as production does
// (events.StreamConfig, one replica) and fails the test on error.
func Stream(t testing.TB, js jetstream.JetStream, service string) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := events.EnsureStream(ctx, js, events.StreamConfig(service, 1))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return s
}

// PublishEvent publishes one event of the entity id at version, its
// payload state, as the owning service's relay would (the system its
// actor). Each call has a fresh event id, the message id, so an event sent
// again is a redelivery the stream does not drop: what a consumer's
// idempotency must handle.
func PublishEvent(tb testing.TB, js jetstream.JetStream, subject, id string, version int64, state proto.Message) {
	tb.Helper()
	ev, err := events.New(subject, id, version, events.System, time.Now(), state)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject, ev.Data, jetstream.WithMsgID(ev.ID)); err != nil {
		tb.Fatalf("testenv: publish %s: %v", subject, err)
	}
}

// Eventually polls cond every 10 ms until it returns true, and fails the test
// if it has not within timeout. Use it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StreamMessages reads back every message the stream holds, in stream order.
func StreamMessages(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("testenv: stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("testenv: stream %s info: %v", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	msgs := make([]*jetstream.RawStreamMsg, 0, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted or expired
		}
		if err != nil {
			t.Fatalf("testenv: stream %s message %d: %v", stream, seq, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// StreamEnvelopes reads back every message of the stream as an event
// envelope, in stream order.
func StreamEnvelopes(t testing.TB, js jetstream.JetStream, stream string) []*eventv1.Envelope {
	t.Helper()
	msgs := StreamMessages(t, js, stream)
	envs := make([]*eventv1.Envelope, 0, len(msgs))
	for _, m := range msgs {
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatalf("testenv: stream %s message %d (%s): %v", stream, m.Sequence, m.Subject, err)
		}
		envs = append(envs, env)
	}
	return envs
}
