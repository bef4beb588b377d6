package boltstore_test

import (
	"bufio"
	"context"
	"errors"
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

	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/boltstore"
	"github.com/carbondesk/carbondesk/internal/store/storetest"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// crashWriterEnv, when set to a file path, turns the test binary into the
// writer process TestKilledDuringWrites kills.
const crashWriterEnv = "BOLTSTORE_CRASH_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashWriterEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return testenv.BoltStore(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, testenv.BoltStore)
}

// TestReopen: what was committed is there after Close and Open, and the
// outbox keeps its order across the restart.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "registry.db") // the folder is created
	ctx := t.Context()
	s := open(t, path)
	for i := range 3 {
		if _, err := s.Apply(ctx, store.Batch{
			Puts:   []store.Put{{Kind: "thing", ID: fmt.Sprint(i), Data: []byte{byte(i)}, Index: []string{"t=x"}}},
			Events: []store.Event{{ID: fmt.Sprint("before-", i), Subject: "test.e"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	t.Cleanup(func() { _ = s.Close() })
	r, err := s.Get(ctx, "thing", "2")
	if err != nil || r.Version != 1 || !slices.Equal(r.Data, []byte{2}) {
		t.Errorf("Get after reopen = %+v, %v", r, err)
	}
	page, err := s.List(ctx, "thing", store.Query{Index: "t=x"})
	if err != nil || len(page.Records) != 3 {
		t.Errorf("List after reopen = %d records, %v; want 3", len(page.Records), err)
	}
	v, err := s.Apply(ctx, store.Batch{
		Puts:   []store.Put{{Kind: "thing", ID: "2", Expect: 1}},
		Events: []store.Event{{ID: "after", Subject: "test.e"}},
	})
	if err != nil || !slices.Equal(v, []int64{2}) {
		t.Errorf("Apply after reopen = %v, %v; want [2]", v, err)
	}
	ps, err := s.Pending(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.ID)
	}
	if diff := cmp.Diff([]string{"before-0", "before-1", "before-2", "after"}, got); diff != "" {
		t.Errorf("outbox after reopen (-want +got):\n%s", diff)
	}
}

// TestSecondOpenFails: a file has one owner; a second Open gives up with an
// error that names the cause instead of hanging.
func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	first := open(t, path)

	start := time.Now()
	second, err := boltstore.Open(path)
	if err == nil {
		_ = second.Close()
		t.Fatal("a second Open of a held file succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second Open took %s to fail", took)
	}
	if !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open: %v; want the path and the reason", err)
	}
	if err := first.Ping(t.Context()); err != nil {
		t.Errorf("the first store stopped working: %v", err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, path)
	_ = again.Close()
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "x.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "thing", "a"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get on a closed store = %v, want ErrUnavailable", err)
	}
	if _, err := s.Apply(t.Context(), store.Batch{Puts: []store.Put{{Kind: "thing", ID: "a"}}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Apply on a closed store = %v, want ErrUnavailable", err)
	}
}

// TestKilledDuringWrites: a writer process killed with SIGKILL mid-stream.
// Every batch it was told had committed is in the file, and every batch is
// there whole (both records and the event) or not at all.
func TestKilledDuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The writer prints the number of each batch once Apply has returned.
	lines := bufio.NewScanner(out)
	acked := -1
	for lines.Scan() {
		if acked, err = strconv.Atoi(lines.Text()); err != nil {
			t.Fatalf("writer said %q", lines.Text())
		}
		if acked == 200 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // what it printed before it died was acknowledged too
		if n, err := strconv.Atoi(lines.Text()); err == nil {
			acked = n
		}
	}
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("the writer acknowledged only %d batches before it stopped", acked)
	}

	s := open(t, path)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	events := map[string]bool{}
	for {
		ps, err := s.Pending(ctx, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []string
		for _, p := range ps {
			events[p.ID] = true
			seqs = append(seqs, p.Seq)
		}
		if len(ps) == 0 {
			break
		}
		if err := s.MarkSent(ctx, seqs...); err != nil {
			t.Fatal(err)
		}
	}
	// Batches past acked+1 were never started: the writer is sequential.
	for i := 0; i <= acked+1; i++ {
		b := crashBatch(i)
		parts := []bool{events[b.Events[0].ID]}
		for _, p := range b.Puts {
			_, err := s.Get(ctx, p.Kind, p.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			parts = append(parts, err == nil)
		}
		if i <= acked && slices.Contains(parts, false) {
			t.Errorf("batch %d was acknowledged but is not all there (event, puts: %v)", i, parts)
		}
		if slices.Contains(parts, true) && slices.Contains(parts, false) {
			t.Errorf("batch %d is there in part (event, puts: %v)", i, parts)
		}
	}
	t.Logf("%d batches acknowledged before SIGKILL, all there after it", acked+1)
}

// crashWriter applies crashBatch(0), (1)... forever, printing each number
// once Apply returned; TestKilledDuringWrites kills it.
func crashWriter(path string) {
	s, err := boltstore.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		if _, err := s.Apply(context.Background(), crashBatch(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(i)
	}
}

func crashBatch(i int) store.Batch {
	id := fmt.Sprintf("%06d", i)
	return store.Batch{
		Puts: []store.Put{
			{Kind: "left", ID: id, Index: []string{"t=x"}},
			{Kind: "right", ID: id, Index: []string{"t=y"}},
		},
		Events: []store.Event{{ID: "ev-" + id, Subject: "test.crash"}},
	}
}

func open(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
