package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/boltstore"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// fixture is one test's world: an embedded JetStream with the producing
// service's stream, and the consuming service's own bolt store.
type fixture struct {
	t       *testing.T
	js      jetstream.JetStream
	st      store.Store
	service string
	logs    *testenv.LogBuffer
}

// newFixture uses a bolt store.
func newFixture(t *testing.T, service string) *fixture {
	t.Helper()
	return newFixtureOn(t, service, openBolt(t))
}

func newFixtureOn(t *testing.T, service string, st store.Store) *fixture {
	t.Helper()
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, service)
	return &fixture{t: t, js: js, st: st, service: service, logs: &testenv.LogBuffer{}}
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// onEveryStore runs test once per store adapter: the seen marks live in the
// consuming service's store, whichever it is.
func onEveryStore(t *testing.T, test func(t *testing.T, st store.Store)) {
	all := testenv.Stores(t)
	for _, name := range []string{"bolt", "redis"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, all[name](t))
		})
	}
}

// publish sends an event about entity at version, as the producer's relay
// does, and returns it. Each call makes a new event id.
func (f *fixture) publish(entity string, version int64) store.Event {
	f.t.Helper()
	ev, err := events.New(events.SubjectPrefix+f.service+".inst.changed", entity, version, events.System, time.Now(),
		wrapperspb.String(fmt.Sprintf("%s v%d", entity, version)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.publishEvent(ev)
	return ev
}

func (f *fixture) publishEvent(ev store.Event) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.js.PublishMsg(ctx, &nats.Msg{Subject: ev.Subject, Data: ev.Data}, jetstream.WithMsgID(ev.ID)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) config(durable string) Config {
	return Config{
		Stream:      events.StreamName(f.service),
		Durable:     durable,
		MaxDeliver:  3,
		AckWait:     2 * time.Second,
		RetryDelays: []time.Duration{10 * time.Millisecond},
		Log:         slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// run starts Run in the background; it is stopped, and must return nil,
// when the test ends.
func (f *fixture) run(cfg Config, h Handler) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, f.js, cfg, f.st, h) }()
	f.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				f.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			f.t.Error("Run did not return within 10 s of cancel")
		}
	})
}

// readModel records what a handler applied, and applies it to the store
// the way a service's read model would.
type readModel struct {
	mu      sync.Mutex
	applied []string // "entity v<version>", in order
}

func (m *readModel) handler(ctx context.Context, d *Delivery) error {
	_, err := d.Apply(ctx, store.Batch{Puts: []store.Put{{
		Kind: "inst", ID: d.Event.EntityId, Expect: store.AnyVersion,
		Data: []byte(strconv.FormatInt(d.Event.EntityVersion, 10)),
	}}})
	if err != nil {
		return err
	}
	m.note(d)
	return nil
}

func (m *readModel) note(d *Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = append(m.applied, fmt.Sprintf("%s v%d", d.Event.EntityId, d.Event.EntityVersion))
}

func (m *readModel) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.applied...)
}

func (f *fixture) seen(durable, entity string) int64 {
	f.t.Helper()
	v, _, err := Seen(context.Background(), f.st, durable, entity)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// ackedAll waits until the consumer has been handed every message up to the
// stream's last one and has a verdict for each. (The consumer's pending
// counts alone lag behind a publish, so the last sequence is checked too;
// tests publish a message the consumer takes last.)
func (f *fixture) ackedAll(durable string) {
	f.t.Helper()
	ctx := context.Background()
	stream := events.StreamName(f.service)
	testenv.Eventually(f.t, 10*time.Second, func() bool {
		s, err := f.js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		sinfo, err := s.Info(ctx)
		if err != nil {
			return false
		}
		c, err := s.Consumer(ctx, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.Delivered.Stream >= sinfo.State.LastSeq &&
			info.NumPending == 0 && info.NumAckPending == 0
	})
}

func TestDeliversAndRecordsSeen(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, st store.Store) {
		f := newFixtureOn(t, "deliver", st)
		var rm readModel
		f.run(f.config("reader"), rm.handler)

		for i := range 3 {
			for v := int64(1); v <= 3; v++ {
				f.publish(fmt.Sprintf("i%d", i), v)
			}
		}
		testenv.Eventually(t, 10*time.Second, func() bool { return len(rm.got()) == 9 })
		f.ackedAll("reader")
		want := []string{"i0 v1", "i0 v2", "i0 v3", "i1 v1", "i1 v2", "i1 v3", "i2 v1", "i2 v2", "i2 v3"}
		if diff := cmp.Diff(want, rm.got()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		for i := range 3 {
			if got := f.seen("reader", fmt.Sprintf("i%d", i)); got != 3 {
				t.Errorf("seen version of i%d = %d, want 3", i, got)
			}
			rec, err := f.st.Get(context.Background(), "inst", fmt.Sprintf("i%d", i))
			if err != nil || string(rec.Data) != "3" {
				t.Errorf("read model i%d = %q, %v; want version 3", i, rec.Data, err)
			}
		}
	})
}

func TestIdempotentByEntityVersion(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, st store.Store) {
		f := newFixtureOn(t, "idem", st)
		var rm readModel
		f.run(f.config("reader"), rm.handler)

		ev := f.publish("a", 1)
		// The same event again, after the duplicate window (a new message id
		// stands in for it): the stream stores it, the consumer must skip it.
		ev2 := ev
		ev2.ID = events.NewID(time.Now())
		f.publishEvent(ev2)
		f.publish("b", 2)
		f.publish("b", 1) // older than what was applied: ignored
		f.publish("b", 2) // same version, another event id: ignored
		f.publish("b", 3)
		f.ackedAll("reader")

		if diff := cmp.Diff([]string{"a v1", "b v2", "b v3"}, rm.got()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		if got := f.seen("reader", "b"); got != 3 {
			t.Errorf("seen version of b = %d, want 3", got)
		}
		if !strings.Contains(f.logs.String(), "event already applied") {
			t.Errorf("skips not logged:\n%s", f.logs.String())
		}
	})
}

// TestSeenMarkWithoutDeliveryApply: a handler that writes nothing, and one
// that commits d.Seen in its own batch, are both recognised.
func TestSeenMarkWithoutDeliveryApply(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, st store.Store) {
		f := newFixtureOn(t, "seenmark", st)

		var nothing, own atomic.Int32
		f.run(f.config("nothing"), func(ctx context.Context, d *Delivery) error {
			nothing.Add(1)
			return nil // nothing to write: the consumer commits the mark
		})
		f.run(f.config("own"), func(ctx context.Context, d *Delivery) error {
			own.Add(1)
			_, err := f.st.Apply(ctx, store.Batch{Puts: []store.Put{
				{Kind: "inst", ID: d.Event.EntityId, Expect: store.AnyVersion, Data: []byte("x")},
				d.Seen,
			}})
			return err
		})
		ev := f.publish("a", 1)
		f.ackedAll("nothing")
		f.ackedAll("own")
		ev.ID = events.NewID(time.Now())
		f.publishEvent(ev) // a redelivered copy
		f.ackedAll("nothing")
		f.ackedAll("own")

		if n, o := nothing.Load(), own.Load(); n != 1 || o != 1 {
			t.Errorf("handler calls: nothing=%d own=%d, want 1 each", n, o)
		}
		for _, durable := range []string{"nothing", "own"} {
			if got := f.seen(durable, "a"); got != 1 {
				t.Errorf("seen(%s, a) = %d, want 1", durable, got)
			}
		}
		// A store timing out under a loaded machine is retried and logged;
		// anything else logged as an error is a fault.
		for _, line := range strings.Split(f.logs.String(), "\n") {
			if (strings.Contains(line, "level=ERROR") && !strings.Contains(line, store.ErrUnavailable.Error())) || strings.Contains(line, "moved concurrently") {
				t.Errorf("unexpected error: %s", line)
			}
		}
	})
}

// TestPoisonMessageIsParked: a handler that always fails gets MaxDeliver
// tries; the message then lands on the dead-letter stream with its subject,
// headers and error, and the consumer goes on with the next events.
func TestPoisonMessageIsParked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "poison")
	var rm readModel
	var attempts []int
	var mu sync.Mutex
	f.run(f.config("reader"), func(ctx context.Context, d *Delivery) error {
		if d.Event.EntityId == "bad" {
			mu.Lock()
			attempts = append(attempts, d.Attempt)
			mu.Unlock()
			return errors.New("cannot apply: product category unknown")
		}
		return rm.handler(ctx, d)
	})

	f.publish("good1", 1)
	bad := f.publish("bad", 1)
	f.publish("good2", 1)
	f.ackedAll("reader")

	if diff := cmp.Diff([]string{"good1 v1", "good2 v1"}, rm.got()); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	mu.Lock()
	if diff := cmp.Diff([]int{1, 2, 3}, attempts); diff != "" {
		t.Errorf("attempts on the poison event (-want +got):\n%s", diff)
	}
	mu.Unlock()

	dead := testenv.StreamMessages(t, f.js, DeadLetterStream)
	if len(dead) != 1 {
		t.Fatalf("dead-letter stream holds %d messages, want 1", len(dead))
	}
	m := dead[0]
	if m.Subject != DeadLetterSubject("reader") || !bytes.Equal(m.Data, bad.Data) {
		t.Errorf("parked message on %s with other data, want %s and the original payload", m.Subject, DeadLetterSubject("reader"))
	}
	wantHeaders := map[string]string{
		HeaderSubject:    bad.Subject,
		HeaderStream:     events.StreamName("poison"),
		HeaderSequence:   "2",
		HeaderDurable:    "reader",
		HeaderDeliveries: "3",
		HeaderError:      "cannot apply: product category unknown",
		HeaderMsgID:      bad.ID,
	}
	for k, want := range wantHeaders {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if m.Header.Get(HeaderParkedAt) == "" {
		t.Errorf("header %s missing", HeaderParkedAt)
	}
	if !strings.Contains(f.logs.String(), "parked on the dead-letter stream") {
		t.Errorf("parking not logged:\n%s", f.logs.String())
	}
	if got, ok, _ := Seen(context.Background(), f.st, "reader", "bad"); ok {
		t.Errorf("poison event marked seen (version %d)", got)
	}
}

// TestUndecodableAndPanickingAreParked: garbage is parked at once (no retry
// can help); a panicking handler costs deliveries, not the process.
func TestUndecodableAndPanickingAreParked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "garbage")
	var calls atomic.Int32
	f.run(f.config("reader"), func(ctx context.Context, d *Delivery) error {
		calls.Add(1)
		panic("boom")
	})
	ctx := context.Background()
	if _, err := f.js.Publish(ctx, events.SubjectPrefix+"garbage.inst.changed", []byte("\xff not a protobuf")); err != nil {
		t.Fatal(err)
	}
	f.publish("a", 1)
	f.ackedAll("reader")

	if got := calls.Load(); got != 3 {
		t.Errorf("handler called %d times, want 3 (MaxDeliver) for the panicking event, 0 for garbage", got)
	}
	dead := testenv.StreamMessages(t, f.js, DeadLetterStream)
	if len(dead) != 2 {
		t.Fatalf("dead-letter stream holds %d messages, want 2", len(dead))
	}
	if got := dead[0].Header.Get(HeaderDeliveries); got != "1" || !strings.Contains(dead[0].Header.Get(HeaderError), "undecodable") {
		t.Errorf("garbage parked after %s deliveries with error %q; want 1, undecodable", got, dead[0].Header.Get(HeaderError))
	}
	if got := dead[1].Header.Get(HeaderError); !strings.Contains(got, "panicked: boom") {
		t.Errorf("panicking event parked with error %q", got)
	}
}

// TestNoVerdictIsParkedNotAbandoned: deliveries that got no answer at all
// (the process died, the handler hung) still end on the dead-letter stream,
// without running the handler once more.
func TestNoVerdictIsParkedNotAbandoned(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "noverdict")
	cfg := f.config("reader")
	cfg.MaxDeliver = 2
	cfg.AckWait = 200 * time.Millisecond
	ev := f.publish("a", 1)

	// Two deliveries that nobody answers, as a dying process would leave.
	ctx := context.Background()
	full, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cons, err := f.js.CreateOrUpdateConsumer(ctx, full.Stream, consumerConfig(full))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range batch.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("delivery %d: fetched %d messages, want 1", i+1, n)
		}
	}

	var calls atomic.Int32
	f.run(cfg, func(ctx context.Context, d *Delivery) error { calls.Add(1); return nil })
	f.ackedAll("reader")
	if got := calls.Load(); got != 0 {
		t.Errorf("handler ran %d times after MaxDeliver deliveries, want 0", got)
	}
	dead := testenv.StreamMessages(t, f.js, DeadLetterStream)
	if len(dead) != 1 || dead[0].Header.Get(HeaderMsgID) != ev.ID || !strings.Contains(dead[0].Header.Get(HeaderError), "no verdict") {
		t.Fatalf("dead-letter stream = %d messages (first %v), want the event parked for lack of verdict", len(dead), dead)
	}
}

// TestUnavailableStoreIsRetriedInPlace: a store outage is not the message's
// fault: it does not use up deliveries, and the event is applied once the
// store answers.
func TestUnavailableStoreIsRetriedInPlace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "storedown")
	flaky := &flakyStore{Store: f.st}
	flaky.getFailures.Store(5)   // the consumer's own read of the seen mark
	flaky.applyFailures.Store(2) // the handler's write
	f.st = flaky
	var rm readModel
	var attempts []int
	var mu sync.Mutex
	cfg := f.config("reader")
	cfg.MaxDeliver = 2
	f.run(cfg, func(ctx context.Context, d *Delivery) error {
		mu.Lock()
		attempts = append(attempts, d.Attempt)
		mu.Unlock()
		return rm.handler(ctx, d)
	})
	f.publish("a", 1)
	f.ackedAll("reader")

	if diff := cmp.Diff([]string{"a v1"}, rm.got()); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, 1, 1}, attempts); diff != "" {
		t.Errorf("handler attempts (-want +got):\n%s", diff)
	}
	if n := strings.Count(f.logs.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d error lines, want one per outage (read, then write):\n%s", n, f.logs.String())
	}
	if n := len(testenv.StreamMessages(t, f.js, DeadLetterStream)); n != 0 {
		t.Errorf("%d messages parked, want none", n)
	}
}

// flakyStore wraps the real store; its first Get and Apply calls fail as
// an unreachable Redis would.
type flakyStore struct {
	store.Store
	getFailures, applyFailures atomic.Int32
}

func (s *flakyStore) Get(ctx context.Context, kind, id string) (store.Record, error) {
	if s.getFailures.Add(-1) >= 0 {
		return store.Record{}, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return s.Store.Get(ctx, kind, id)
}

func (s *flakyStore) Apply(ctx context.Context, b store.Batch) ([]int64, error) {
	if s.applyFailures.Add(-1) >= 0 {
		return nil, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return s.Store.Apply(ctx, b)
}

// TestWaitsForStream: a consumer started before the producing service has
// created its stream waits for it, then consumes.
func TestWaitsForStream(t *testing.T) {
	t.Parallel()
	js := testenv.JetStream(t, testenv.NATS(t))
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, js: js, st: st, service: "late", logs: &testenv.LogBuffer{}}
	var rm readModel
	f.run(f.config("reader"), rm.handler)

	// Run is waiting, and says so.
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(f.logs.String(), "create consumer failed") })
	testenv.Stream(t, js, "late")
	f.publish("a", 1)
	testenv.Eventually(t, 15*time.Second, func() bool { return len(rm.got()) == 1 })
}

func TestFilterSubjects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "filter")
	var rm readModel
	cfg := f.config("approved-only")
	cfg.FilterSubjects = []string{events.SubjectPrefix + "filter.inst.approved"}
	f.run(cfg, rm.handler)

	f.publish("a", 1) // .inst.changed: filtered out
	ev, err := events.New(events.SubjectPrefix+"filter.inst.approved", "b", 1, events.System, time.Now(), wrapperspb.String("b"))
	if err != nil {
		t.Fatal(err)
	}
	f.publishEvent(ev)
	f.ackedAll("approved-only")
	if diff := cmp.Diff([]string{"b v1"}, rm.got()); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {Stream: "S"}, {Durable: "d"}, {Stream: "S", Durable: "a.b"}} {
		if err := Run(context.Background(), nil, cfg, nil, nil); err == nil {
			t.Errorf("Run(%+v) = nil, want a config error", cfg)
		}
	}
}

// TestSurvivesNATSRestart: the consumer keeps its place across a NATS
// restart (file store, same port) and goes on consuming.
func TestSurvivesNATSRestart(t *testing.T) {
	t.Parallel()
	srv, addr, dir, js := testenv.RestartableJetStream(t, "consumer-restart", 50*time.Millisecond)
	testenv.Stream(t, js, "restart")
	f := &fixture{t: t, js: js, st: openBolt(t), service: "restart", logs: &testenv.LogBuffer{}}
	var rm readModel
	f.run(f.config("reader"), rm.handler)

	f.publish("a", 1)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rm.got()) == 1 })

	srv.Shutdown()
	testenv.StartNATS(t, natsx.Options{Dir: dir, Listen: addr})
	testenv.Eventually(t, 10*time.Second, js.Conn().IsConnected)
	f.publish("a", 2)
	f.publish("b", 1)
	testenv.Eventually(t, 30*time.Second, func() bool { return len(rm.got()) == 3 })
	if diff := cmp.Diff([]string{"a v1", "a v2", "b v1"}, rm.got()); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
}
