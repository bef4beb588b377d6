package outbox_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// The crash tests run a child process (this test binary again, entering
// TestCrashHelperProcess) that writes to a bolt store, kill it with SIGKILL
// at a chosen point, and check what a fresh relay makes of the store it left.
const (
	envMode = "OUTBOX_CRASH_MODE"
	envDB   = "OUTBOX_CRASH_DB"
	envNATS = "OUTBOX_CRASH_NATS"
	// envAtomic is the child relay's Options.AtomicMin (relayModes).
	envAtomic = "OUTBOX_CRASH_ATOMIC_MIN"
)

const crashService = "crash"

// TestCrashHelperProcess is the child's body; run directly it does nothing.
func TestCrashHelperProcess(t *testing.T) {
	mode := os.Getenv(envMode)
	if mode == "" {
		return
	}
	st, err := openChildStore(os.Getenv(envDB))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	atomicMin, _ := strconv.Atoi(os.Getenv(envAtomic))
	switch mode {
	case "commit":
		// Commit a change and its event, then hang before any relay runs.
		ev := commit(t, st, crashService, "e1", 1)
		fmt.Println("COMMITTED", ev.ID)
		select {}

	case "published":
		// Commit, publish (the stream acknowledges), hang before MarkSent.
		// Three events, so that an atomic relay sends them as one batch.
		js := childJetStream(os.Getenv(envNATS))
		ev := commit(t, st, crashService, "e1", 1)
		commit(t, st, crashService, "e2", 1)
		commit(t, st, crashService, "e3", 1)
		r := outbox.New(st, js, nil, outbox.Options{AtomicMin: atomicMin, AfterPublish: func(p store.Pending) {
			fmt.Println("PUBLISHED", p.ID)
			select {}
		}})
		_ = r.Flush(context.Background())
		fmt.Println("ERROR flush returned for", ev.ID)
		os.Exit(2)

	case "load":
		// A writer committing as fast as it can while the relay publishes;
		// each id is printed once its commit returned.
		js := childJetStream(os.Getenv(envNATS))
		r := outbox.New(st, js, nil, outbox.Options{AtomicMin: atomicMin})
		go func() { _ = r.Run(context.Background()) }()
		wst := outbox.Notifying(st, r)
		for i := 0; ; i++ {
			ev := commit(t, wst, crashService, fmt.Sprintf("e%06d", i), 1)
			fmt.Println("COMMITTED", ev.ID)
		}
	}
	fmt.Println("ERROR unknown mode", mode)
	os.Exit(2)
}

func openChildStore(path string) (store.Store, error) {
	return openBoltFile(path)
}

func childJetStream(url string) jetstream.JetStream {
	nc, err := natsx.Connect(url, "crash-child")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	return js
}

// child starts the helper process in mode and returns its output lines (the
// channel closes when it dies) and a function that SIGKILLs it and waits.
func child(t *testing.T, mode, db, natsURL string, atomicMin int) (<-chan string, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envMode+"="+mode, envDB+"="+db, envNATS+"="+natsURL, envAtomic+"="+strconv.Itoa(atomicMin))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1<<16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var killed bool
	kill := func() {
		if killed {
			return
		}
		killed = true
		_ = cmd.Process.Kill() // SIGKILL: no deferred code, no flush, no Close
		_ = cmd.Wait()
	}
	t.Cleanup(kill)
	return lines, kill
}

// await returns the first line starting with prefix, failing on ERROR lines
// or a timeout.
func await(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited before printing %s", prefix)
			}
			if strings.HasPrefix(l, "ERROR") {
				t.Fatalf("child: %s", l)
			}
			if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
				return rest
			}
		case <-timeout:
			t.Fatalf("child did not print %s within 60 s", prefix)
		}
	}
}

// TestCrashAfterCommitBeforePublish: the process dies right after the commit;
// the event is published by the next relay, exactly once.
func TestCrashAfterCommitBeforePublish(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "x.db")
	lines, kill := child(t, "commit", db, "", 0)
	id := await(t, lines, "COMMITTED")
	kill()

	st := openBoltAt(t, db)
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, crashService)
	r := outbox.New(st, js, testLogger(t), outbox.Options{})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{id}, streamIDs(t, js, crashService)); diff != "" {
		t.Errorf("stream after restart (-want +got):\n%s", diff)
	}
	if n := pendingCount(t, st); n != 0 {
		t.Errorf("%d events still pending", n)
	}
}

// TestCrashAfterPublishBeforeMarkSent: the stream acknowledged the events
// but the process died before recording it; the next relay publishes them
// again and the stream keeps one copy of each. Atomic: the whole batch was
// acknowledged, and the next relay's batch is refused for holding copies
// and goes out pipelined.
func TestCrashAfterPublishBeforeMarkSent(t *testing.T) {
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) { testCrashAfterPublish(t, mode.atomicMin) })
	}
}

func testCrashAfterPublish(t *testing.T, atomicMin int) {
	t.Parallel()
	srv := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})
	js := testenv.JetStream(t, srv)
	testenv.Stream(t, js, crashService)

	db := filepath.Join(t.TempDir(), "x.db")
	lines, kill := child(t, "published", db, srv.ClientURL(), atomicMin)
	await(t, lines, "PUBLISHED")
	kill()

	st := openBoltAt(t, db)
	pending, err := st.Pending(context.Background(), store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range pending {
		all = append(all, p.ID)
	}
	if len(all) != 3 {
		t.Fatalf("%d events pending after the crash, want 3", len(all))
	}
	// The crash really was in the gap: the outbox holds all three, the
	// stream the first (pipelined: maybe more, in flight behind it;
	// atomic: all three).
	before := streamIDs(t, js, crashService)
	if len(before) == 0 || len(before) > len(all) || !slices.Equal(before, all[:len(before)]) || atomicMin > 0 && len(before) != 3 {
		t.Fatalf("stream before restart %v, want a prefix of %v (atomic: all of it)", before, all)
	}

	r := outbox.New(st, js, testLogger(t), outbox.Options{AtomicMin: atomicMin})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.Published(); got != 3 {
		t.Errorf("Published() = %d, want all three (copies acknowledged)", got)
	}
	if diff := cmp.Diff(all, streamIDs(t, js, crashService)); diff != "" {
		t.Errorf("stream after restart (-want +got):\n%s", diff)
	}
	if n := pendingCount(t, st); n != 0 {
		t.Errorf("%d events still pending", n)
	}
}

// TestCrashUnderLoad: SIGKILL while a writer commits and the relay publishes.
// After restart the stream holds exactly the events of the changes the store
// holds: every acknowledged write's event, none twice, in commit order.
func TestCrashUnderLoad(t *testing.T) {
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) { testCrashUnderLoad(t, mode.atomicMin) })
	}
}

func testCrashUnderLoad(t *testing.T, atomicMin int) {
	t.Parallel()
	srv := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})
	js := testenv.JetStream(t, srv)
	testenv.Stream(t, js, crashService)

	db := filepath.Join(t.TempDir(), "x.db")
	lines, kill := child(t, "load", db, srv.ClientURL(), atomicMin)
	var acked []string
	for len(acked) < 300 {
		acked = append(acked, await(t, lines, "COMMITTED"))
	}
	kill()
	for l := range lines { // what it printed before dying
		if id, ok := strings.CutPrefix(l, "COMMITTED "); ok {
			acked = append(acked, id)
		}
	}
	inStreamAtCrash := len(streamIDs(t, js, crashService))

	st := openBoltAt(t, db)
	if err := outbox.New(st, js, testLogger(t), outbox.Options{AtomicMin: atomicMin}).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := streamIDs(t, js, crashService)
	t.Logf("%d writes acknowledged, %d events in the stream at the crash, %d after recovery", len(acked), inStreamAtCrash, len(got))

	// Exactly the events of the committed changes (each record holds its
	// event's id), in commit order.
	var committed []string
	q := store.Query{Limit: store.MaxLimit}
	for {
		page, err := st.List(context.Background(), "thing", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page.Records {
			committed = append(committed, string(rec.Data))
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	// Entity ids e000000... sort like commit order; so do ULIDs of one writer.
	if diff := cmp.Diff(committed, got); diff != "" {
		t.Errorf("stream vs committed changes (-committed +stream):\n%s", diff)
	}
	if !slices.IsSorted(got) {
		t.Error("stream is not in commit order")
	}
	inStream := make(map[string]bool, len(got))
	for _, id := range got {
		inStream[id] = true
	}
	for _, id := range acked {
		if !inStream[id] {
			t.Errorf("acknowledged write's event %s is not in the stream", id)
		}
	}
}
