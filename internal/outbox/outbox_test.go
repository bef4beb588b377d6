package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/boltstore"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// storeKinds are the adapters every relay test runs against, in a fixed
// order: the embedded bolt store and Redis (testenv: a test that finds no
// Redis fails and says how to start one).
func storeKinds(t *testing.T) []storeKind {
	all := testenv.Stores(t)
	return []storeKind{{"bolt", all["bolt"]}, {"redis", all["redis"]}}
}

type storeKind struct {
	name string
	open func(t *testing.T) store.Store
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	return openBoltAt(t, filepath.Join(t.TempDir(), "x.db"))
}

func openBoltAt(t testing.TB, path string) store.Store {
	t.Helper()
	st, err := openBoltFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func openBoltFile(path string) (store.Store, error) {
	st, err := boltstore.Open(path)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// commit writes one entity change and its event in one batch, as a service
// does, and returns the event.
func commit(t testing.TB, st store.Store, service, entityID string, version int64) store.Event {
	t.Helper()
	ev, err := newEvent(service, entityID, version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = st.Apply(context.Background(), thingBatch(entityID, version, ev)); err != nil {
		t.Fatalf("commit %s v%d: %v", entityID, version, err)
	}
	return ev
}

// thingBatch is a change to entity "thing"/entityID (its data: the event
// id) and its event.
func thingBatch(entityID string, version int64, ev store.Event) store.Batch {
	return store.Batch{
		Puts:   []store.Put{{Kind: "thing", ID: entityID, Expect: version - 1, Data: []byte(ev.ID)}},
		Events: []store.Event{ev},
	}
}

func newEvent(service, entityID string, version int64) (store.Event, error) {
	return events.New(events.SubjectPrefix+service+".thing.changed", entityID, version, events.System, time.Now(),
		wrapperspb.String(fmt.Sprintf("%s v%d", entityID, version)))
}

// streamIDs is the event ids the stream holds, in stream order, checking
// that each message's id header is its event id.
func streamIDs(t *testing.T, js jetstream.JetStream, service string) []string {
	t.Helper()
	msgs := testenv.StreamMessages(t, js, events.StreamName(service))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if h := m.Header.Get(jetstream.MsgIDHeader); h != env.Id {
			t.Errorf("message %d: %s header %q, want the event id %q", m.Sequence, jetstream.MsgIDHeader, h, env.Id)
		}
		ids[i] = env.Id
	}
	return ids
}

func pendingCount(t testing.TB, st store.Store) int {
	t.Helper()
	p, err := st.Pending(context.Background(), store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

func runRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// relayModes are the two ways a relay publishes a read of pending events:
// pipelined one by one, and as one JetStream atomic batch (forced here by a
// low Options.AtomicMin).
var relayModes = []relayMode{{"pipelined", 0}, {"atomic", 2}}

type relayMode struct {
	name      string
	atomicMin int
}

// eachModeAndStore runs f as a parallel subtest for each relay mode on
// each store, with a fresh JetStream holding service's stream.
func eachModeAndStore(t *testing.T, service string, f func(t *testing.T, mode relayMode, st store.Store, js jetstream.JetStream)) {
	for _, mode := range relayModes {
		for _, sk := range storeKinds(t) {
			t.Run(mode.name+"/"+sk.name, func(t *testing.T) {
				t.Parallel()
				st := sk.open(t)
				js := testenv.JetStream(t, testenv.NATS(t))
				testenv.Stream(t, js, service)
				f(t, mode, st, js)
			})
		}
	}
}

func TestRelayPublishesInOrderAndMarksSent(t *testing.T) {
	const service = "relayorder"
	eachModeAndStore(t, service, func(t *testing.T, mode relayMode, st store.Store, js jetstream.JetStream) {
		var want []string
		for i := range 40 {
			// Several versions of a few entities, interleaved.
			ev := commit(t, st, service, fmt.Sprintf("e%d", i%4), int64(i/4+1))
			want = append(want, ev.ID)
		}
		r := outbox.New(st, js, testLogger(t), outbox.Options{Batch: 7, AtomicMin: mode.atomicMin})
		runRelay(t, r)

		testenv.Eventually(t, 10*time.Second, func() bool { return pendingCount(t, st) == 0 })
		if diff := cmp.Diff(want, streamIDs(t, js, service)); diff != "" {
			t.Errorf("stream ids (-committed +stream):\n%s", diff)
		}
		if got := r.Published(); got != uint64(len(want)) {
			t.Errorf("Published() = %d, want %d", got, len(want))
		}
		if atomic := r.AtomicBatches(); (mode.atomicMin > 0) != (atomic > 0) {
			t.Errorf("AtomicBatches() = %d in mode %s", atomic, mode.name)
		}
	})
}

// TestRepublishIsDeduplicated: every way an event can be published twice
// leaves one copy in the stream.
func TestRepublishIsDeduplicated(t *testing.T) {
	for _, mode := range relayModes {
		for _, sk := range storeKinds(t) {
			testRepublishIsDeduplicated(t, mode.name+"/"+sk.name, sk, outbox.Options{AtomicMin: mode.atomicMin})
		}
	}
}

// testRepublishIsDeduplicated runs the dedup cases with a relay tuned by
// base (its AtomicMin).
func testRepublishIsDeduplicated(t *testing.T, name string, sk storeKind, base outbox.Options) {
	with := func(o outbox.Options) outbox.Options {
		o.AtomicMin = base.AtomicMin
		return o
	}
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()

		t.Run("direct double publish", func(t *testing.T) {
			const service = "dupdirect"
			st := sk.open(t)
			js := testenv.JetStream(t, testenv.NATS(t))
			testenv.Stream(t, js, service)
			ev := commit(t, st, service, "e1", 1)
			// Someone (a previous relay) already published it.
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: ev.Subject, Data: ev.Data}, jetstream.WithMsgID(ev.ID)); err != nil {
				t.Fatal(err)
			}
			later := commit(t, st, service, "e2", 1)
			if err := outbox.New(st, js, nil, with(outbox.Options{})).Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{ev.ID, later.ID}, streamIDs(t, js, service)); diff != "" {
				t.Errorf("stream (-want +got):\n%s", diff)
			}
			if n := pendingCount(t, st); n != 0 {
				t.Errorf("%d events still pending", n)
			}
		})

		t.Run("mark sent lost", func(t *testing.T) {
			const service = "dupmarksent"
			st := sk.open(t)
			js := testenv.JetStream(t, testenv.NATS(t))
			testenv.Stream(t, js, service)
			var want []string
			for i := range 10 {
				want = append(want, commit(t, st, service, fmt.Sprintf("e%d", i), 1).ID)
			}
			// The store forgets the first two MarkSent calls: the relay
			// publishes every event again.
			forgetful := &forgetMarkSent{Store: st}
			forgetful.forget.Store(2)
			r := outbox.New(forgetful, js, nil, with(outbox.Options{Batch: 5}))
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := r.Published(); got != 20 {
				t.Errorf("Published() = %d, want 20 (the first 5 events three times, then 5)", got)
			}
			if got := forgetful.calls.Load(); got < 3 {
				t.Fatalf("MarkSent called %d times, want the forgotten calls retried", got)
			}
			if diff := cmp.Diff(want, streamIDs(t, js, service)); diff != "" {
				t.Errorf("stream (-want +got):\n%s", diff)
			}
		})

		t.Run("two relays on one outbox", func(t *testing.T) {
			const service = "duptworelays"
			st := sk.open(t)
			srv := testenv.NATS(t)
			js1, js2 := testenv.JetStream(t, srv), testenv.JetStream(t, srv)
			testenv.Stream(t, js1, service)
			var want []string
			for i := range 200 {
				want = append(want, commit(t, st, service, fmt.Sprintf("e%d", i%10), int64(i/10+1)).ID)
			}
			var wg sync.WaitGroup
			for _, js := range []jetstream.JetStream{js1, js2} {
				wg.Go(func() {
					if err := outbox.New(st, js, nil, with(outbox.Options{Batch: 16})).Flush(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if diff := cmp.Diff(want, streamIDs(t, js1, service)); diff != "" {
				t.Errorf("stream (-want +got):\n%s", diff)
			}
		})
	})
}

// forgetMarkSent wraps a real store and reports success for the first
// MarkSent calls without doing them: a crash between ack and MarkSent.
type forgetMarkSent struct {
	store.Store
	forget atomic.Int32
	calls  atomic.Int32
}

func (f *forgetMarkSent) MarkSent(ctx context.Context, seqs ...string) error {
	f.calls.Add(1)
	if f.forget.Add(-1) >= 0 {
		return nil
	}
	return f.Store.MarkSent(ctx, seqs...)
}

func TestNotifyWakesRelay(t *testing.T) {
	t.Parallel()
	const service = "notify"
	st := openBolt(t)
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, service)

	// A poll interval far longer than the test: only Notify can wake it.
	r := outbox.New(st, js, nil, outbox.Options{PollInterval: time.Hour})
	runRelay(t, r)
	wrapped := outbox.Notifying(st, r)
	testenv.Eventually(t, 5*time.Second, func() bool { return pendingCount(t, st) == 0 })
	time.Sleep(50 * time.Millisecond) // let Run settle into its long wait

	start := time.Now()
	ev := commit(t, wrapped, service, "e1", 1)
	testenv.Eventually(t, 5*time.Second, func() bool { return len(streamIDs(t, js, service)) == 1 })
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("event reached the stream after %s; Notify should wake the relay at once", took)
	}
	if diff := cmp.Diff([]string{ev.ID}, streamIDs(t, js, service)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
}

// TestMissingStreamKeepsEventAndLogs: an event no stream takes is not
// dropped and does not block silently: the relay logs once, keeps retrying,
// and the event (with those behind it) goes out when the stream appears.
func TestMissingStreamKeepsEventAndLogs(t *testing.T) {
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) { testMissingStream(t, mode.atomicMin) })
	}
}

func testMissingStream(t *testing.T, atomicMin int) {
	t.Parallel()
	const service = "nostream"
	st := openBolt(t)
	js := testenv.JetStream(t, testenv.NATS(t))
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	first := commit(t, st, service, "e1", 1)
	second := commit(t, st, service, "e2", 1)
	r := outbox.New(st, js, log, outbox.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, AtomicMin: atomicMin})
	runRelay(t, r)

	// Many retries happen in this second; one error line is logged.
	time.Sleep(time.Second)
	if n := pendingCount(t, st); n != 2 {
		t.Fatalf("%d events pending, want both kept", n)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error lines, want exactly 1 per outage:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "no JetStream stream answered for this subject") || !strings.Contains(logs.String(), first.ID) {
		t.Errorf("log does not name the event and the cause:\n%s", logs.String())
	}
	b, err := r.Backlog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Count != 2 || b.More || b.Oldest.IsZero() || time.Since(b.Oldest) > time.Minute {
		t.Errorf("Backlog() = %+v, want 2 events, oldest a moment ago", b)
	}

	testenv.Stream(t, js, service)
	testenv.Eventually(t, 5*time.Second, func() bool { return pendingCount(t, st) == 0 })
	if diff := cmp.Diff([]string{first.ID, second.ID}, streamIDs(t, js, service)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "publishing again") })
}

func TestFlushGivesUpAtDeadlineAndKeepsEvents(t *testing.T) {
	t.Parallel()
	const service = "flushdown"
	st := openBolt(t)
	srv := testenv.NATS(t)
	js := testenv.JetStream(t, srv)
	testenv.Stream(t, js, service)
	commit(t, st, service, "e1", 1)
	srv.Shutdown() // NATS gone: nothing can be published

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := outbox.New(st, js, nil, outbox.Options{}).Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush() = %v, want the deadline", err)
	}
	if n := pendingCount(t, st); n != 1 {
		t.Errorf("%d events pending after a failed flush, want 1", n)
	}
}

// TestFailedEventIsNeverOvertaken: publishes are pipelined, yet when event n
// is refused, event n+1 (already in flight) must not land before it. The
// stream refuses an oversized middle event; the event behind it, though
// valid, is refused too (it expects its predecessor as the stream's last
// message), and both go out in order once the stream accepts the first.
func TestFailedEventIsNeverOvertaken(t *testing.T) {
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) { testFailedEventIsNeverOvertaken(t, mode.atomicMin) })
	}
}

func testFailedEventIsNeverOvertaken(t *testing.T, atomicMin int) {
	t.Parallel()
	const service = "overtake"
	st := openBolt(t)
	js := testenv.JetStream(t, testenv.NATS(t))
	s := testenv.Stream(t, js, service)
	ctx := context.Background()
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 2048
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	first := commit(t, st, service, "e1", 1)
	big, err := events.New(events.SubjectPrefix+service+".thing.changed", "e2", 1, events.System, time.Now(),
		wrapperspb.String(strings.Repeat("大", 2048)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, thingBatch("e2", 1, big)); err != nil {
		t.Fatal(err)
	}
	third := commit(t, st, service, "e3", 1)

	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := outbox.New(st, js, log, outbox.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, AtomicMin: atomicMin})
	runRelay(t, r)

	testenv.Eventually(t, 5*time.Second, func() bool { return pendingCount(t, st) == 2 })
	time.Sleep(300 * time.Millisecond) // many retries; none may let e3 through
	if diff := cmp.Diff([]string{first.ID}, streamIDs(t, js, service)); diff != "" {
		t.Fatalf("stream while e2 is refused (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), big.ID) {
		t.Errorf("log does not name the refused event %s:\n%s", big.ID, logs.String())
	}

	cfg.MaxMsgSize = -1
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return pendingCount(t, st) == 0 })
	if diff := cmp.Diff([]string{first.ID, big.ID, third.ID}, streamIDs(t, js, service)); diff != "" {
		t.Errorf("stream after the fix (-want +got):\n%s", diff)
	}
}

// TestStreamWithoutAtomicPublish: a stream that does not allow atomic
// batches (created by an older version, or by hand) refuses the first one;
// the relay says so once, publishes pipelined from then on, and loses and
// reorders nothing. Once the stream is updated, a new relay batches.
func TestStreamWithoutAtomicPublish(t *testing.T) {
	t.Parallel()
	const service = "noatomic"
	st := openBolt(t)
	js := testenv.JetStream(t, testenv.NATS(t))
	cfg := events.StreamConfig(service, 1)
	cfg.AllowAtomicPublish = false
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 30 {
		want = append(want, commit(t, st, service, fmt.Sprintf("e%d", i), 1).ID)
	}
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := outbox.New(st, js, log, outbox.Options{Batch: 10, AtomicMin: 2})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, streamIDs(t, js, service)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if n := r.AtomicBatches(); n != 0 {
		t.Errorf("AtomicBatches() = %d on a stream that refuses them", n)
	}
	if n := strings.Count(logs.String(), "refused an atomic batch"); n != 1 {
		t.Errorf("%d warnings about refused atomic batches, want 1:\n%s", n, logs.String())
	}

	// A data folder of an older version: starting the new one updates the
	// stream (events.EnsureStream), and a fresh relay publishes atomically.
	if _, err := events.EnsureStream(context.Background(), js, events.StreamConfig(service, 1)); err != nil {
		t.Fatalf("update the stream to allow atomic publish: %v", err)
	}
	for i := range 30 {
		want = append(want, commit(t, st, service, fmt.Sprintf("f%d", i), 1).ID)
	}
	r = outbox.New(st, js, log, outbox.Options{Batch: 10, AtomicMin: 2})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.AtomicBatches(); n != 3 {
		t.Errorf("AtomicBatches() = %d after the stream was updated, want 3", n)
	}
	if diff := cmp.Diff(want, streamIDs(t, js, service)); diff != "" {
		t.Errorf("stream after the update (-want +got):\n%s", diff)
	}
}

// markCounter wraps a real store, counting its two ways of marking events
// sent; with failRead, every MarkSentThenPending fails (Redis away for
// that call) without touching the store.
type markCounter struct {
	store.Store
	marks, markReads, failedReads atomic.Int32
	failRead                      atomic.Bool
}

func (m *markCounter) MarkSent(ctx context.Context, seqs ...string) error {
	m.marks.Add(1)
	return m.Store.MarkSent(ctx, seqs...)
}

func (m *markCounter) MarkSentThenPending(ctx context.Context, seqs []string, limit int) ([]store.Pending, error) {
	if m.failRead.Load() {
		m.failedReads.Add(1)
		return nil, fmt.Errorf("mark then read: %w", store.ErrUnavailable)
	}
	m.markReads.Add(1)
	return m.Store.(store.SentMarkReader).MarkSentThenPending(ctx, seqs, limit)
}

// TestNextReadMarksSent: while more is waiting, a round's events are marked
// sent by the next round's read (store.SentMarkReader), not by a MarkSent
// of their own; every event is in the stream once, in order, and the outbox
// ends empty.
func TestNextReadMarksSent(t *testing.T) {
	const service = "markread"
	eachModeAndStore(t, service, func(t *testing.T, mode relayMode, inner store.Store, js jetstream.JetStream) {
		st := &markCounter{Store: inner}
		var want []string
		for i := range 20 {
			want = append(want, commit(t, st, service, fmt.Sprintf("e%d", i), 1).ID)
		}
		// Four full reads of 5, then an empty one that marks the last 5.
		r := outbox.New(st, js, testLogger(t), outbox.Options{Batch: 5, AtomicMin: mode.atomicMin})
		fctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Flush(fctx); err != nil {
			t.Fatal(err)
		}
		if n := pendingCount(t, st); n != 0 {
			t.Errorf("%d events pending after Flush", n)
		}
		if diff := cmp.Diff(want, streamIDs(t, js, service)); diff != "" {
			t.Errorf("stream ids (-committed +stream):\n%s", diff)
		}
		if m, mr := st.marks.Load(), st.markReads.Load(); m != 0 || mr != 4 {
			t.Errorf("MarkSent called %d times and MarkSentThenPending %d times, want 0 and 4", m, mr)
		}
	})
}

// TestDeferredMarksOnStop: events whose marking was left to the next read
// are marked when that read fails and the relay stops, and are not
// published twice meanwhile.
func TestDeferredMarksOnStop(t *testing.T) {
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			const service = "markstop"
			st := &markCounter{Store: sk.open(t)}
			st.failRead.Store(true)
			js := testenv.JetStream(t, testenv.NATS(t))
			testenv.Stream(t, js, service)
			var want []string
			for i := range 5 {
				want = append(want, commit(t, st, service, fmt.Sprintf("e%d", i), 1).ID)
			}
			r := outbox.New(st, js, testLogger(t), outbox.Options{Batch: 5, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			testenv.Eventually(t, 10*time.Second, func() bool { return r.Published() == 5 })
			testenv.Eventually(t, 10*time.Second, func() bool { return st.failedReads.Load() >= 3 }) // several failed reads
			if n := pendingCount(t, st); n != 5 {
				t.Errorf("%d events pending before the stop, want the 5 whose marking failed", n)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if n := pendingCount(t, st); n != 0 {
				t.Errorf("%d events pending after the relay stopped, want 0", n)
			}
			if diff := cmp.Diff(want, streamIDs(t, js, service)); diff != "" {
				t.Errorf("stream ids (-committed +stream):\n%s", diff)
			}
			if got := r.Published(); got != 5 {
				t.Errorf("Published() = %d, want 5 (no re-publish while the reads failed)", got)
			}
		})
	}
}
