package lease_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/lease"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

const ttl = 1500 * time.Millisecond

// replica is one process's relay under its lease.
type replica struct {
	relay  *outbox.Relay
	held   atomic.Bool
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, js jetstream.JetStream, st store.Store, holder string) *replica {
	t.Helper()
	m, err := lease.New(context.Background(), js, nil, lease.Options{Bucket: "test_leases", TTL: ttl, Holder: holder})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{relay: outbox.New(st, js, nil, outbox.Options{PollInterval: 20 * time.Millisecond}), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- m.Run(ctx, "svc.outbox", &r.held, r.relay.Run) }()
	t.Cleanup(r.stop(t))
	return r
}

func (r *replica) stop(t *testing.T) func() {
	return func() {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("lease run: %v", err)
		}
		r.done <- nil // later calls return at once
	}
}

func commitN(t *testing.T, st store.Store, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		ev, err := events.New(events.SubjectPrefix+"svc.thing.changed", fmt.Sprint("t", i), 1, events.System, time.Now(), wrapperspb.String("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(context.Background(), store.Batch{
			Puts:   []store.Put{{Kind: "thing", ID: fmt.Sprint("t", i), Expect: 0, Data: []byte(ev.ID)}},
			Events: []store.Event{ev},
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

func streamIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var ids []string
	for _, m := range testenv.StreamMessages(t, js, events.StreamName("svc")) {
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.Id)
	}
	return ids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two relays over one Redis outbox, each under the lease: every event
// reaches the stream once and in order, one relay publishes at a time, and
// when the leader stops the other takes over.
func TestTwoRelaysShareOneOutbox(t *testing.T) {
	srv := testenv.NATS(t)
	jsA, jsB := testenv.JetStream(t, srv), testenv.JetStream(t, srv)
	if _, err := events.EnsureStream(context.Background(), jsA, events.StreamConfig("svc", 1)); err != nil {
		t.Fatal(err)
	}
	client, prefix := testenv.Redis(t)
	stA, stB := redisstore.New(client, prefix), redisstore.New(client, prefix)

	want := commitN(t, stA, 0, 100)
	a := startReplica(t, jsA, stA, "a")
	b := startReplica(t, jsB, stB, "b")
	waitFor(t, "first 100 events published", func() bool { return len(streamIDs(t, jsA)) == len(want) })

	leader, standby := a, b
	if b.held.Load() {
		leader, standby = b, a
	}
	if !leader.held.Load() || standby.held.Load() {
		t.Fatalf("held: a %v, b %v; want exactly one", a.held.Load(), b.held.Load())
	}
	if standby.relay.Published() != 0 {
		t.Errorf("the standby published %d events", standby.relay.Published())
	}

	// The leader stops: the other takes the lease and publishes what follows.
	leader.stop(t)()
	waitFor(t, "standby takes the lease", standby.held.Load)
	want = append(want, commitN(t, stB, 100, 50)...)
	waitFor(t, "all 150 events published", func() bool { return len(streamIDs(t, jsA)) >= len(want) })
	if diff := cmp.Diff(want, streamIDs(t, jsA)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if standby.relay.Published() == 0 {
		t.Error("the new leader published nothing")
	}
}

// A holder that dies without releasing (its renewals stop) loses the lease
// after the TTL.
func TestLeaseExpiresWhenHolderGoesSilent(t *testing.T) {
	srv := testenv.NATS(t)
	js := testenv.JetStream(t, srv)
	other, err := lease.New(context.Background(), js, nil, lease.Options{Bucket: "test_leases", TTL: ttl, Holder: "other"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), "test_leases")
	if err != nil {
		t.Fatal(err)
	}
	// Another process took the key and died.
	if _, err := kv.Create(context.Background(), "svc.sweep", []byte("silent-dead")); err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- other.Run(ctx, "svc.sweep", &held, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	}()
	waitFor(t, "lease taken after expiry", held.Load)
	if took := time.Since(start); took < ttl/2 {
		t.Errorf("took the lease after %s, before the dead holder's TTL", took)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Do runs its task in one process at a time, and each runs it once.
func TestDoRunsOneAtATime(t *testing.T) {
	srv := testenv.NATS(t)
	var running, peak, runs atomic.Int32
	done := make(chan error, 3)
	for i := range 3 {
		m, err := lease.New(context.Background(), testenv.JetStream(t, srv), nil, lease.Options{Bucket: "test_leases", TTL: ttl, Holder: fmt.Sprint("p", i)})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			done <- m.Do(context.Background(), "svc.seed", func(context.Context) error {
				n := running.Add(1)
				if n > peak.Load() {
					peak.Store(n)
				}
				time.Sleep(100 * time.Millisecond)
				running.Add(-1)
				runs.Add(1)
				return nil
			})
		}()
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if peak.Load() != 1 || runs.Load() != 3 {
		t.Errorf("peak %d concurrent, %d runs; want 1 and 3", peak.Load(), runs.Load())
	}
}
