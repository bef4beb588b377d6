package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestNATSAwayUnderWrites is DESIGN §10 "NATS down for 30 s": the embedded
// server (TCP listener, file store kept) stops while a writer keeps
// committing; every write succeeds; the server comes back on the same port
// and folder; the relay, connected over TCP with reconnects, delivers every
// event exactly once, in commit order.
func TestNATSAwayUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 30 s of outage; run without -short")
	}
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			natsAwayUnderWrites(t, sk.open(t))
		})
	}
}

func natsAwayUnderWrites(t *testing.T, st store.Store) {
	const (
		service = "natsaway"
		outage  = 30 * time.Second
	)
	srv, addr, dir, js := testenv.RestartableJetStream(t, "fault-test", 100*time.Millisecond)
	testenv.Stream(t, js, service)

	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := outbox.New(st, js, log, outbox.Options{})
	runRelay(t, r)
	wst := outbox.Notifying(st, r)

	// The writer: one change and its event every 5 ms until stopped.
	var (
		mu        sync.Mutex
		committed []string
		failures  []error
	)
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ev, err := newEvent(service, fmt.Sprintf("e%06d", i), 1)
			if err == nil {
				_, err = wst.Apply(context.Background(), thingBatch(fmt.Sprintf("e%06d", i), 1, ev))
			}
			mu.Lock()
			if err != nil {
				failures = append(failures, err)
			} else {
				committed = append(committed, ev.ID)
			}
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(committed) }

	// NATS up: events flow.
	testenv.Eventually(t, 10*time.Second, func() bool { return count() >= 100 && pendingCount(t, st) < 20 })

	// NATS away for the outage, writes continuing.
	srv.Shutdown()
	down := time.Now()
	before := count()
	time.Sleep(outage)
	during := count() - before
	backlog, err := r.Backlog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("during the %s outage: %d writes committed, backlog %+v", outage, during, backlog)
	if during < 1000 {
		t.Errorf("only %d writes committed during the outage; the writer should not stall", during)
	}
	if backlog.Count < 500 || time.Since(backlog.Oldest) < outage/2 {
		t.Errorf("Backlog() = %+v during the outage, want a growing backlog of old events", backlog)
	}

	// NATS back on the same port and folder.
	srv2, err := natsx.Start(natsx.Options{Dir: dir, Listen: addr, Name: "test"})
	if err != nil {
		t.Fatalf("restart NATS on %s: %v", addr, err)
	}
	t.Cleanup(srv2.Shutdown)
	back := time.Now()
	testenv.Eventually(t, 30*time.Second, func() bool { return count() > before+during+200 })
	close(stop)
	<-writerDone
	testenv.Eventually(t, 60*time.Second, func() bool { return pendingCount(t, st) == 0 })
	t.Logf("outage %s; backlog drained %s after NATS returned", back.Sub(down).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d writes failed while NATS was away, want none; first: %v", len(failures), failures[0])
	}
	got := streamIDs(t, js, service)
	if len(got) != len(committed) {
		t.Errorf("stream holds %d events, %d writes committed", len(got), len(committed))
	}
	if diff := cmp.Diff(committed, got); diff != "" {
		t.Errorf("stream vs commits (-committed +stream):\n%s", diff)
	}
	// One error line for the outage, then one line for the recovery.
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error lines for one outage, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "publishing again") {
		t.Errorf("no recovery line logged:\n%s", logs.String())
	}
}
