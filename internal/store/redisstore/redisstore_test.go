package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
	"github.com/carbondesk/carbondesk/internal/store/storetest"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return testenv.RedisStore(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, testenv.RedisStore)
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		url                  string
		wantRetries          int
		wantRead, wantDial   time.Duration
		wantContextDeadlines bool
	}{
		{"redis://127.0.0.1:6379/0", 1, 2 * time.Second, time.Second, true},
		// -1 disables retries; go-redis reports that as 0.
		{"redis://127.0.0.1:6379/0?max_retries=-1&read_timeout=500ms&dial_timeout=3s", 0, 500 * time.Millisecond, 3 * time.Second, true},
	}
	for _, tc := range tests {
		c, err := redisstore.NewClient(tc.url)
		if err != nil {
			t.Fatalf("NewClient(%s): %v", tc.url, err)
		}
		o := c.Options()
		got := []any{o.MaxRetries, o.ReadTimeout, o.DialTimeout, o.ContextTimeoutEnabled}
		want := []any{tc.wantRetries, tc.wantRead, tc.wantDial, tc.wantContextDeadlines}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("NewClient(%s): retries, read and dial timeouts, context deadlines (-want +got):\n%s", tc.url, diff)
		}
		_ = c.Close()
	}
	if _, err := redisstore.NewClient("http://nope"); err == nil {
		t.Error("NewClient accepted an http URL")
	}
}

// TestKindWithColon: a ':' in a kind would let two kinds share keys.
func TestKindWithColon(t *testing.T) {
	s := testenv.RedisStore(t)
	ctx := t.Context()
	if _, err := s.Apply(ctx, store.Batch{Puts: []store.Put{{Kind: "a:b", ID: "c"}}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Apply = %v, want ErrInvalid", err)
	}
	if _, err := s.Get(ctx, "a:b", "c"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Get = %v, want ErrInvalid", err)
	}
	if _, err := s.List(ctx, "a:b", store.Query{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("List = %v, want ErrInvalid", err)
	}
}

// TestKeyLayout: the keys are those the package documents, index entries
// of replaced terms are removed (not merely skipped by List), and deleting
// the last record leaves no key behind.
func TestKeyLayout(t *testing.T) {
	client, prefix := testenv.Redis(t)
	s := redisstore.New(client, prefix)
	ctx := t.Context()
	keys := func() []string {
		t.Helper()
		got, err := client.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	steps := []struct {
		name string
		put  store.Put
		want []string
	}{
		{"create", store.Put{Kind: "thing", ID: "a", Expect: store.MustNotExist, Index: []string{"state=NEW", "zone=A"}},
			[]string{":ix:thing:", ":ix:thing:state=NEW", ":ix:thing:zone=A", ":r:thing:a"}},
		{"replace a term", store.Put{Kind: "thing", ID: "a", Expect: 1, Index: []string{"state=ACTIVE", "zone=A"}},
			[]string{":ix:thing:", ":ix:thing:state=ACTIVE", ":ix:thing:zone=A", ":r:thing:a"}},
		{"delete", store.Put{Kind: "thing", ID: "a", Expect: 2, Delete: true}, nil},
	}
	for _, st := range steps {
		if _, err := s.Apply(ctx, store.Batch{Puts: []store.Put{st.put}}); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var want []string
		for _, k := range st.want {
			want = append(want, prefix+k)
		}
		if diff := cmp.Diff(want, keys(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: keys (-want +got):\n%s", st.name, diff)
		}
	}
}

// TestLargeBatchKeys: a batch that adds or removes more ids of one index
// than the script sends in one call (500) leaves every index complete and no
// entry behind: its ZADDs and ZREMs go in chunks, none lost.
func TestLargeBatchKeys(t *testing.T) {
	client, prefix := testenv.Redis(t)
	s := redisstore.New(client, prefix)
	ctx := t.Context()
	const n = 1100 // two full chunks and a part
	batch := func(expect int64, del bool, term string) store.Batch {
		var b store.Batch
		for i := range n {
			p := store.Put{Kind: "thing", ID: fmt.Sprintf("id-%05d", i), Expect: expect, Delete: del}
			if term != "" {
				p.Index = []string{term}
			}
			b.Puts = append(b.Puts, p)
		}
		return b
	}
	card := func() map[string]int64 {
		t.Helper()
		keys, err := client.Keys(ctx, prefix+":ix:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, k := range keys {
			if out[strings.TrimPrefix(k, prefix)], err = client.ZCard(ctx, k).Result(); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	steps := []struct {
		name  string
		batch store.Batch
		want  map[string]int64 // index key (after the prefix): members
	}{
		{"create", batch(store.MustNotExist, false, "gen=1"), map[string]int64{":ix:thing:": n, ":ix:thing:gen=1": n}},
		{"re-index", batch(1, false, "gen=2"), map[string]int64{":ix:thing:": n, ":ix:thing:gen=2": n}},
		{"delete", batch(2, true, ""), map[string]int64{}},
	}
	for _, st := range steps {
		if _, err := s.Apply(ctx, st.batch); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, card()); diff != "" {
			t.Errorf("%s: index sizes (-want +got):\n%s", st.name, diff)
		}
	}
	if left, err := client.Keys(ctx, prefix+"*").Result(); err != nil || len(left) != 0 {
		t.Errorf("keys left after deleting every record: %v, %v", left, err)
	}
}

// TestScriptErrorWritesNothing: Redis does not roll back a failing script,
// so the script must fail before its first write. A foreign key of the
// wrong type where an index or the outbox should be makes it fail.
func TestScriptErrorWritesNothing(t *testing.T) {
	client, prefix := testenv.Redis(t)
	s := redisstore.New(client, prefix)
	ctx := t.Context()
	if err := client.Set(ctx, prefix+":ix:thing:t=bad", "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ev := []store.Event{{ID: "e", Subject: "test.e"}}
	_, err := s.Apply(ctx, store.Batch{Puts: []store.Put{
		{Kind: "thing", ID: "a", Index: []string{"t=ok"}},
		{Kind: "thing", ID: "b", Index: []string{"t=bad"}},
	}, Events: ev})
	if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Apply = %v, want a plain script error", err)
	}
	if _, err := s.Get(ctx, "thing", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(a) = %v, want ErrNotFound: the failed script wrote", err)
	}
	n, err := client.Exists(ctx, prefix+":ix:thing:t=ok", prefix+":ix:thing:", prefix+":outbox").Result()
	if err != nil || n != 0 {
		t.Errorf("%d index or outbox keys exist after the failed script (err %v), want 0", n, err)
	}

	// The same with a record key of the wrong type: the batch's first put
	// would be written before the second one's key is read.
	if err := client.Set(ctx, prefix+":r:thing:c", "not a record hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(ctx, store.Batch{Puts: []store.Put{
		{Kind: "thing", ID: "a", Index: []string{"t=ok"}},
		{Kind: "thing", ID: "c"},
	}, Events: ev})
	if err == nil || !strings.Contains(err.Error(), "is not a record hash") {
		t.Fatalf("Apply = %v, want the record hash's type named", err)
	}
	if _, err := s.Get(ctx, "thing", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(a) = %v, want ErrNotFound: the failed script wrote", err)
	}

	// The same with the outbox in the way.
	if err := client.Set(ctx, prefix+":outbox", "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, store.Batch{Puts: []store.Put{{Kind: "thing", ID: "a"}}, Events: ev}); err == nil {
		t.Fatal("Apply succeeded with a string where the outbox stream should be")
	}
	if _, err := s.Get(ctx, "thing", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(a) = %v, want ErrNotFound: the failed script wrote", err)
	}
}

// TestRedisDown: with Redis gone every call fails fast with ErrUnavailable
// and writes nothing; when Redis is back the same Store works again, its
// client reconnecting on its own (DESIGN §10).
func TestRedisDown(t *testing.T) {
	// An append-only file synced on every write lets the data outlive the
	// kill, so "nothing written" and "nothing lost" can be checked after it.
	srv := testenv.RedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	client, err := redisstore.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	s := redisstore.New(client, "fault:{registry}")

	if _, err := s.Apply(t.Context(), store.Batch{
		Puts:   []store.Put{{Kind: "thing", ID: "a", Data: []byte("v1"), Index: []string{"t=x"}}},
		Events: []store.Event{{ID: "seed", Subject: "test.seed"}},
	}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	seq := mustPending(t, s)[0].Seq

	srv.Stop()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Apply", func(ctx context.Context) error {
			_, err := s.Apply(ctx, store.Batch{
				Puts: []store.Put{
					{Kind: "thing", ID: "a", Expect: 1, Data: []byte("v2"), Index: []string{"t=y"}},
					{Kind: "thing", ID: "b", Data: []byte("new")},
				},
				Events: []store.Event{{ID: "lost", Subject: "test.lost"}},
			})
			return err
		}},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "thing", "a"); return err }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, "thing", store.Query{}); return err }},
		{"Pending", func(ctx context.Context) error { _, err := s.Pending(ctx, 10); return err }},
		{"MarkSent", func(ctx context.Context) error { return s.MarkSent(ctx, seq) }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
	// Twice: the first calls find dead pooled connections, later ones a
	// refused dial; both must be fast.
	for round := range 2 {
		for _, c := range calls {
			const deadline = 2 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			start := time.Now()
			err := c.call(ctx)
			took := time.Since(start)
			cancel()
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("round %d: %s with Redis down = %v, want ErrUnavailable", round, c.name, err)
			}
			if took > deadline/2 {
				t.Errorf("round %d: %s took %s to fail, want well inside its %s deadline", round, c.name, took, deadline)
			}
			t.Logf("round %d: %s failed in %s: %v", round, c.name, took.Round(time.Millisecond), err)
		}
	}

	srv.Start()
	start := time.Now()
	testenv.Eventually(t, 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := s.Get(ctx, "thing", "a")
		return err == nil
	})
	t.Logf("the same store answered %s after Redis restarted", time.Since(start).Round(time.Millisecond))

	ctx := t.Context()
	a, err := s.Get(ctx, "thing", "a")
	if err != nil || a.Version != 1 || string(a.Data) != "v1" {
		t.Errorf("Get(a) = %+v, %v; want version 1 with v1: the acknowledged write must survive, the failed one must not exist", a, err)
	}
	if _, err := s.Get(ctx, "thing", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(b) = %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff([]string{"seed"}, ids(mustPending(t, s))); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	// Writes work again; the restarted Redis has lost its script cache, so
	// this also goes through the NOSCRIPT fallback.
	v, err := s.Apply(ctx, store.Batch{Puts: []store.Put{{Kind: "thing", ID: "a", Expect: 1, Data: []byte("v2")}}})
	if err != nil || !slices.Equal(v, []int64{2}) {
		t.Errorf("Apply after restart = %v, %v; want [2]", v, err)
	}
}

// TestKilledDuringWrites: Redis killed while writers run. Every batch that
// was acknowledged is there after the restart, and every batch is there
// whole or not at all: both its records and its event, or none of them.
func TestKilledDuringWrites(t *testing.T) {
	srv := testenv.RedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	client, err := redisstore.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	s := redisstore.New(client, "crash:{registry}")

	const writers = 4
	acked := make([]int, writers)     // batches acknowledged per writer
	attempted := make([]int, writers) // batches tried per writer
	var mu sync.Mutex
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range acked {
			n += a
		}
		return n
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				mu.Lock()
				attempted[w] = i + 1
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := s.Apply(ctx, batchOf(w, i))
				cancel()
				if err != nil {
					if !errors.Is(err, store.ErrUnavailable) {
						t.Errorf("writer %d batch %d: %v, want ErrUnavailable", w, i, err)
					}
					return
				}
				mu.Lock()
				acked[w] = i + 1
				mu.Unlock()
			}
		})
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return total() >= 400 })
	srv.Stop()
	wg.Wait()
	srv.Start()

	ctx := t.Context()
	testenv.Eventually(t, 15*time.Second, func() bool { return s.Ping(ctx) == nil })
	events := map[string]bool{}
	for {
		ps := mustPending(t, s)
		if len(ps) == 0 {
			break
		}
		var seqs []string
		for _, p := range ps {
			events[p.ID] = true
			seqs = append(seqs, p.Seq)
		}
		if err := s.MarkSent(ctx, seqs...); err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		for i := range attempted[w] {
			b := batchOf(w, i)
			parts := []bool{events[b.Events[0].ID]}
			for _, p := range b.Puts {
				_, err := s.Get(ctx, p.Kind, p.ID)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Fatal(err)
				}
				parts = append(parts, err == nil)
			}
			if i < acked[w] && slices.Contains(parts, false) {
				t.Errorf("writer %d batch %d was acknowledged but is not all there (event, puts: %v)", w, i, parts)
			}
			if slices.Contains(parts, true) && slices.Contains(parts, false) {
				t.Errorf("writer %d batch %d is there in part (event, puts: %v)", w, i, parts)
			}
		}
	}
	t.Logf("%d batches acknowledged before the kill, all there after it", total())
}

func batchOf(w, i int) store.Batch {
	id := fmt.Sprintf("w%d-%05d", w, i)
	return store.Batch{
		Puts: []store.Put{
			{Kind: "left", ID: id, Index: []string{"t=x"}},
			{Kind: "right", ID: id, Index: []string{"t=y"}},
		},
		Events: []store.Event{{ID: "ev-" + id, Subject: "test.crash"}},
	}
}

func mustPending(t *testing.T, s store.Store) []store.Pending {
	t.Helper()
	ps, err := s.Pending(t.Context(), store.MaxLimit)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return ps
}

func ids(ps []store.Pending) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}
