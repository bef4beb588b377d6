// Package storetest is the conformance suite of the storage port (package
// store): what every adapter must do, written once and run against each of
// them on its real backend (redisstore against redis-server, boltstore on a
// file). An adapter's own tests call Run; benchmarks call Bench.
//
// The suite is the port's executable contract. When an adapter and the
// suite disagree, fix the adapter; when the port's promise changes, change
// the suite first and watch both adapters fail.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carbondesk/carbondesk/internal/store"
)

// Run runs the conformance suite. open must return an empty store of the
// calling (sub)test's own, cleaned up when that test ends: subtests run in
// parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"CreateGetUpdate", testCreateGetUpdate},
		{"Conflicts", testConflicts},
		{"AnyVersion", testAnyVersion},
		{"Delete", testDelete},
		{"BatchIsAtomic", testBatchIsAtomic},
		{"ConcurrentWriters", testConcurrentWriters},
		{"IndexTermsReplaced", testIndexTermsReplaced},
		{"LargeBatch", testLargeBatch},
		{"ListOrder", testListOrder},
		{"ListPaging", testListPaging},
		{"ListWhileWriting", testListWhileWriting},
		{"Outbox", testOutbox},
		{"MarkSentThenPending", testMarkSentThenPending},
		{"FailedBatchesWriteNoEvents", testFailedBatchesWriteNoEvents},
		{"Invalid", testInvalid},
		{"BinaryAndUnicode", testBinaryAndUnicode},
		{"Ping", testPing},
		{"ContextDone", testContextDone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

const kind = "thing"

// equateEmpty treats nil and empty slices alike (adapters may return either
// for no data or no terms) and compares bytes with bytes.Equal, which keeps
// diffs of large values fast.
var equateEmpty = cmp.Options{cmp.Comparer(bytes.Equal), cmp.Comparer(slices.Equal[[]string])}

func testCreateGetUpdate(t *testing.T, s store.Store) {
	ctx := testContext(t)
	got := apply(t, s, store.Batch{Puts: []store.Put{{
		Kind: kind, ID: "a", Expect: store.MustNotExist, Data: []byte("one"),
		Index: []string{"zone=B", "state=NEW", "zone=B", ""}, // unsorted, repeated, and the implicit term
	}}})
	if diff := cmp.Diff([]int64{1}, got); diff != "" {
		t.Fatalf("create: versions (-want +got):\n%s", diff)
	}
	want := store.Record{Kind: kind, ID: "a", Version: 1, Data: []byte("one"), Index: []string{"state=NEW", "zone=B"}}
	if diff := cmp.Diff(want, get(t, s, kind, "a"), equateEmpty); diff != "" {
		t.Fatalf("get after create (-want +got):\n%s", diff)
	}

	got = apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: 1, Data: []byte("two"), Index: []string{"state=NEW"}}}})
	if diff := cmp.Diff([]int64{2}, got); diff != "" {
		t.Fatalf("update: versions (-want +got):\n%s", diff)
	}
	want = store.Record{Kind: kind, ID: "a", Version: 2, Data: []byte("two"), Index: []string{"state=NEW"}}
	if diff := cmp.Diff(want, get(t, s, kind, "a"), equateEmpty); diff != "" {
		t.Fatalf("get after update (-want +got):\n%s", diff)
	}

	// Several puts: versions come back in the batch's order.
	got = apply(t, s, store.Batch{Puts: []store.Put{
		{Kind: kind, ID: "b", Expect: store.MustNotExist},
		{Kind: kind, ID: "a", Expect: 2, Data: []byte("three")},
		{Kind: "other", ID: "a", Expect: store.MustNotExist}, // same id, another kind: another record
	}})
	if diff := cmp.Diff([]int64{1, 3, 1}, got); diff != "" {
		t.Fatalf("batch of three: versions (-want +got):\n%s", diff)
	}

	for _, k := range []struct{ kind, id string }{{kind, "missing"}, {"nokind", "a"}} {
		if _, err := s.Get(ctx, k.kind, k.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%s, %s) = %v, want ErrNotFound", k.kind, k.id, err)
		}
	}
}

func testConflicts(t *testing.T, s store.Store) {
	ctx := testContext(t)
	apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.MustNotExist, Data: []byte("v1")}}})
	apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: 1, Data: []byte("v2"), Index: []string{"t=x"}}}})

	tests := []struct {
		name string
		put  store.Put
		want store.ConflictError
	}{
		{"must not exist but does", store.Put{Kind: kind, ID: "a", Expect: store.MustNotExist},
			store.ConflictError{Kind: kind, ID: "a", Expect: 0, Current: 2}},
		{"stale version", store.Put{Kind: kind, ID: "a", Expect: 1},
			store.ConflictError{Kind: kind, ID: "a", Expect: 1, Current: 2}},
		{"version from the future", store.Put{Kind: kind, ID: "a", Expect: 5},
			store.ConflictError{Kind: kind, ID: "a", Expect: 5, Current: 2}},
		{"expects a record that does not exist", store.Put{Kind: kind, ID: "nobody", Expect: 1},
			store.ConflictError{Kind: kind, ID: "nobody", Expect: 1, Current: 0}},
		{"delete with a stale version", store.Put{Kind: kind, ID: "a", Expect: 1, Delete: true},
			store.ConflictError{Kind: kind, ID: "a", Expect: 1, Current: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.put.Data = []byte("overwritten")
			_, err := s.Apply(ctx, store.Batch{Puts: []store.Put{tc.put}})
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Apply = %v, want ErrConflict", err)
			}
			var ce *store.ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("Apply = %v (%T), want a *store.ConflictError in the chain", err, err)
			}
			if diff := cmp.Diff(&tc.want, ce); diff != "" {
				t.Errorf("conflict (-want +got):\n%s", diff)
			}
		})
	}
	want := store.Record{Kind: kind, ID: "a", Version: 2, Data: []byte("v2"), Index: []string{"t=x"}}
	if diff := cmp.Diff(want, get(t, s, kind, "a"), equateEmpty); diff != "" {
		t.Errorf("record after the conflicts (-want +got):\n%s", diff)
	}
	if _, err := s.Get(ctx, kind, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(nobody) = %v, want ErrNotFound", err)
	}
}

func testAnyVersion(t *testing.T, s store.Store) {
	ctx := testContext(t)
	steps := []struct {
		name string
		put  store.Put
		want int64
	}{
		{"creates", store.Put{Kind: kind, ID: "a", Expect: store.AnyVersion, Data: []byte("1")}, 1},
		{"overwrites", store.Put{Kind: kind, ID: "a", Expect: store.AnyVersion, Data: []byte("2")}, 2},
		{"deletes", store.Put{Kind: kind, ID: "a", Expect: store.AnyVersion, Delete: true}, 0},
		{"deletes nothing", store.Put{Kind: kind, ID: "a", Expect: store.AnyVersion, Delete: true}, 0},
		{"must-not-exist delete of nothing", store.Put{Kind: kind, ID: "a", Expect: store.MustNotExist, Delete: true}, 0},
		{"creates again from version 1", store.Put{Kind: kind, ID: "a", Expect: store.AnyVersion, Data: []byte("3")}, 1},
	}
	for _, st := range steps {
		got, err := s.Apply(ctx, store.Batch{Puts: []store.Put{st.put}})
		if err != nil {
			t.Fatalf("%s: Apply: %v", st.name, err)
		}
		if diff := cmp.Diff([]int64{st.want}, got); diff != "" {
			t.Fatalf("%s: versions (-want +got):\n%s", st.name, diff)
		}
	}
	if r := get(t, s, kind, "a"); r.Version != 1 || string(r.Data) != "3" {
		t.Errorf("after the steps: version %d data %q, want 1 %q", r.Version, r.Data, "3")
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := testContext(t)
	apply(t, s, store.Batch{Puts: []store.Put{
		{Kind: kind, ID: "a", Expect: store.MustNotExist, Index: []string{"state=ACTIVE", "zone=A"}},
		{Kind: kind, ID: "b", Expect: store.MustNotExist, Index: []string{"state=ACTIVE"}},
	}})
	got := apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: 1, Delete: true}}})
	if diff := cmp.Diff([]int64{0}, got); diff != "" {
		t.Fatalf("delete: versions (-want +got):\n%s", diff)
	}
	if _, err := s.Get(ctx, kind, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after delete = %v, want ErrNotFound", err)
	}
	for term, want := range map[string][]string{"": {"b"}, "state=ACTIVE": {"b"}, "zone=A": nil} {
		if diff := cmp.Diff(want, listIDs(t, s, kind, store.Query{Index: term}), equateEmpty); diff != "" {
			t.Errorf("index %q after delete (-want +got):\n%s", term, diff)
		}
	}

	// Created again, it starts over, with only its new terms.
	got = apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.MustNotExist, Index: []string{"zone=C"}}}})
	if diff := cmp.Diff([]int64{1}, got); diff != "" {
		t.Fatalf("create again: versions (-want +got):\n%s", diff)
	}
	for term, want := range map[string][]string{"": {"a", "b"}, "state=ACTIVE": {"b"}, "zone=A": nil, "zone=C": {"a"}} {
		if diff := cmp.Diff(want, listIDs(t, s, kind, store.Query{Index: term}), equateEmpty); diff != "" {
			t.Errorf("index %q after create again (-want +got):\n%s", term, diff)
		}
	}
}

// testBatchIsAtomic: a batch whose check fails on any put writes none of its
// puts, index entries or events, whatever came before the failing put.
func testBatchIsAtomic(t *testing.T, s store.Store) {
	ctx := testContext(t)
	seed := store.Event{ID: "seed", Subject: "test.seed", Data: []byte("seed")}
	apply(t, s, store.Batch{
		Puts: []store.Put{
			{Kind: kind, ID: "x", Expect: store.MustNotExist, Data: []byte("x1"), Index: []string{"t=old"}},
			{Kind: kind, ID: "z", Expect: store.MustNotExist, Data: []byte("z1")},
		},
		Events: []store.Event{seed},
	})
	tests := []struct {
		name string
		puts []store.Put
		want store.ConflictError
	}{
		{"second of two fails", []store.Put{
			{Kind: kind, ID: "n", Expect: store.MustNotExist, Data: []byte("new"), Index: []string{"t=new"}},
			{Kind: kind, ID: "y", Expect: 7},
		}, store.ConflictError{Kind: kind, ID: "y", Expect: 7, Current: 0}},
		{"update and create, then a stale delete", []store.Put{
			{Kind: kind, ID: "x", Expect: 1, Data: []byte("x2"), Index: []string{"t=changed"}},
			{Kind: kind, ID: "n", Expect: store.MustNotExist, Index: []string{"t=new"}},
			{Kind: kind, ID: "z", Expect: 2, Delete: true},
		}, store.ConflictError{Kind: kind, ID: "z", Expect: 2, Current: 1}},
		{"delete, then a create of an existing record", []store.Put{
			{Kind: kind, ID: "z", Expect: 1, Delete: true},
			{Kind: kind, ID: "x", Expect: store.MustNotExist, Data: []byte("x3")},
		}, store.ConflictError{Kind: kind, ID: "x", Expect: 0, Current: 1}},
		{"first fails", []store.Put{
			{Kind: kind, ID: "y", Expect: 3},
			{Kind: kind, ID: "n", Expect: store.MustNotExist, Index: []string{"t=new"}},
		}, store.ConflictError{Kind: kind, ID: "y", Expect: 3, Current: 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Apply(ctx, store.Batch{Puts: tc.puts, Events: []store.Event{
				{ID: "e1", Subject: "test.one", Data: []byte("1")},
				{ID: "e2", Subject: "test.two", Data: []byte("2")},
			}})
			var ce *store.ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("Apply = %v, want a *store.ConflictError", err)
			}
			if diff := cmp.Diff(&tc.want, ce); diff != "" {
				t.Errorf("conflict (-want +got):\n%s", diff)
			}

			wantX := store.Record{Kind: kind, ID: "x", Version: 1, Data: []byte("x1"), Index: []string{"t=old"}}
			if diff := cmp.Diff(wantX, get(t, s, kind, "x"), equateEmpty); diff != "" {
				t.Errorf("x changed (-want +got):\n%s", diff)
			}
			if r := get(t, s, kind, "z"); r.Version != 1 {
				t.Errorf("z at version %d, want 1", r.Version)
			}
			for _, id := range []string{"n", "y"} {
				if _, err := s.Get(ctx, kind, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Get(%s) = %v, want ErrNotFound", id, err)
				}
			}
			for term, want := range map[string][]string{"": {"x", "z"}, "t=old": {"x"}, "t=new": nil, "t=changed": nil} {
				if diff := cmp.Diff(want, listIDs(t, s, kind, store.Query{Index: term}), equateEmpty); diff != "" {
					t.Errorf("index %q (-want +got):\n%s", term, diff)
				}
			}
			if diff := cmp.Diff([]string{"seed"}, pendingIDs(t, s)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})
	}
}

// testConcurrentWriters: writers racing from the same version; exactly one
// wins each round, the others get a conflict, and only the winner's event
// is in the outbox.
func testConcurrentWriters(t *testing.T, s store.Store) {
	ctx := testContext(t)
	const writers, rounds = 16, 5

	race := func(t *testing.T, round int, put func(w int) store.Put) (winner int) {
		t.Helper()
		var wins, conflicts atomic.Int32
		winner = -1
		var mu sync.Mutex
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				<-start
				_, err := s.Apply(ctx, store.Batch{
					Puts:   []store.Put{put(w)},
					Events: []store.Event{{ID: fmt.Sprintf("r%02d-w%02d", round, w), Subject: "test.race"}},
				})
				switch {
				case err == nil:
					wins.Add(1)
					mu.Lock()
					winner = w
					mu.Unlock()
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("writer %d: Apply: %v", w, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want 1 and %d", round, wins.Load(), conflicts.Load(), writers-1)
		}
		return winner
	}

	var wantEvents []string
	// Creates of one id: exactly one MustNotExist wins.
	w := race(t, 0, func(w int) store.Put {
		return store.Put{Kind: kind, ID: "hot", Expect: store.MustNotExist, Data: fmt.Appendf(nil, "w%d", w)}
	})
	wantEvents = append(wantEvents, fmt.Sprintf("r%02d-w%02d", 0, w))
	// Updates from one version, round after round.
	for round := 1; round <= rounds; round++ {
		read := get(t, s, kind, "hot")
		w := race(t, round, func(w int) store.Put {
			return store.Put{Kind: kind, ID: "hot", Expect: read.Version, Data: fmt.Appendf(nil, "w%d", w)}
		})
		wantEvents = append(wantEvents, fmt.Sprintf("r%02d-w%02d", round, w))
		after := get(t, s, kind, "hot")
		if after.Version != read.Version+1 || string(after.Data) != fmt.Sprintf("w%d", w) {
			t.Fatalf("round %d: record at version %d with %q, want version %d with the winner's w%d",
				round, after.Version, after.Data, read.Version+1, w)
		}
	}
	if diff := cmp.Diff(wantEvents, pendingIDs(t, s)); diff != "" {
		t.Errorf("outbox holds other events than the winners' (-want +got):\n%s", diff)
	}
}

func testIndexTermsReplaced(t *testing.T, s store.Store) {
	steps := []struct {
		name  string
		terms []string
		// want maps terms to whether the record is listed under them.
		want map[string]bool
	}{
		{"create", []string{"state=DRAFT", "zone=A"}, map[string]bool{"": true, "state=DRAFT": true, "zone=A": true, "state=ACTIVE": false}},
		{"one term changes", []string{"state=ACTIVE", "zone=A"}, map[string]bool{"": true, "state=DRAFT": false, "zone=A": true, "state=ACTIVE": true}},
		{"all terms change", []string{"state=RETIRED", "zone=B"}, map[string]bool{"": true, "state=ACTIVE": false, "zone=A": false, "state=RETIRED": true, "zone=B": true}},
		{"no terms left", nil, map[string]bool{"": true, "state=RETIRED": false, "zone=B": false}},
		{"a term comes back", []string{"state=DRAFT"}, map[string]bool{"": true, "state=DRAFT": true, "zone=B": false}},
	}
	for i, st := range steps {
		apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: int64(i), Index: st.terms}}})
		if diff := cmp.Diff(store.NormalizeIndex(st.terms), get(t, s, kind, "a").Index, equateEmpty); diff != "" {
			t.Errorf("%s: Record.Index (-want +got):\n%s", st.name, diff)
		}
		for term, listed := range st.want {
			got := listIDs(t, s, kind, store.Query{Index: term})
			if listed != slices.Contains(got, "a") || len(got) > 1 {
				t.Errorf("%s: index %q lists %q, want a listed: %v", st.name, term, got, listed)
			}
		}
	}
}

// testLargeBatch: one batch creates, re-indexes or deletes more records
// under one term than an adapter may write in one call (redisstore adds or
// removes at most 500 ids of an index a call), and every listing follows.
func testLargeBatch(t *testing.T, s store.Store) {
	const n = 4100
	id := func(i int) string { return fmt.Sprintf("rec-%05d", i) }
	batch := func(expect int64, del bool, terms func(i int) []string) store.Batch {
		var b store.Batch
		for i := range n {
			p := store.Put{Kind: kind, ID: id(i), Expect: expect, Delete: del}
			if terms != nil {
				p.Index = terms(i)
			}
			b.Puts = append(b.Puts, p)
		}
		return b
	}
	parity := func(i int) string { return fmt.Sprintf("p=%d", i%2) }
	ids := func(pick func(i int) bool) []string {
		var out []string
		for i := range n {
			if pick(i) {
				out = append(out, id(i))
			}
		}
		return out
	}
	all := func(int) bool { return true }
	none := func(int) bool { return false }
	steps := []struct {
		name  string
		batch store.Batch
		want  map[string]func(i int) bool // by term, the records listed
	}{
		{"create", batch(store.MustNotExist, false, func(i int) []string { return []string{"gen=1", parity(i)} }),
			map[string]func(int) bool{"": all, "gen=1": all, "p=0": func(i int) bool { return i%2 == 0 }, "gen=2": none}},
		{"re-index", batch(1, false, func(i int) []string { return []string{"gen=2", parity(i)} }),
			map[string]func(int) bool{"": all, "gen=1": none, "gen=2": all, "p=1": func(i int) bool { return i%2 == 1 }}},
		{"delete", batch(2, true, nil),
			map[string]func(int) bool{"": none, "gen=2": none, "p=0": none, "p=1": none}},
	}
	for _, st := range steps {
		apply(t, s, st.batch)
		for term, pick := range st.want {
			if diff := cmp.Diff(ids(pick), listIDs(t, s, kind, store.Query{Index: term}), equateEmpty); diff != "" {
				t.Errorf("%s: index %q lists (-want +got):\n%s", st.name, term, diff)
			}
		}
	}
}

// testListOrder: ids come in byte order, the same in every adapter.
func testListOrder(t *testing.T, s store.Store) {
	ids := []string{"b", "B", "a", "10", "9", "é", "a0", "a-", "~", "Z"}
	var puts []store.Put
	for _, id := range ids {
		puts = append(puts, store.Put{Kind: kind, ID: id, Expect: store.MustNotExist, Index: []string{"all"}})
	}
	apply(t, s, store.Batch{Puts: puts})
	want := slices.Clone(ids)
	slices.Sort(want)
	for _, q := range []store.Query{{}, {Index: "all"}, {Limit: 3}, {Index: "all", Limit: 1}} {
		if diff := cmp.Diff(want, listIDs(t, s, kind, q)); diff != "" {
			t.Errorf("List(%+v) order (-want +got):\n%s", q, diff)
		}
	}
}

// testListPaging pages through a few thousand records with cursors, limits
// and filters: every matching record once, in order, none other.
func testListPaging(t *testing.T, s store.Store) {
	ctx := testContext(t)
	const n = 3000
	id := func(i int) string { return fmt.Sprintf("rec-%05d", i) }
	for from := 0; from < n; from += 250 {
		var puts []store.Put
		for i := from; i < min(from+250, n); i++ {
			parity := "p=even"
			if i%2 == 1 {
				parity = "p=odd"
			}
			puts = append(puts, store.Put{Kind: kind, ID: id(i), Expect: store.MustNotExist,
				Data: []byte(id(i)), Index: []string{parity, fmt.Sprintf("m3=%d", i%3)}})
		}
		apply(t, s, store.Batch{Puts: puts})
	}
	num := func(r store.Record) int {
		var i int
		if _, err := fmt.Sscanf(r.ID, "rec-%05d", &i); err != nil {
			t.Fatalf("unexpected id %q", r.ID)
		}
		return i
	}

	tests := []struct {
		name  string
		index string
		limit int
		match func(i int) bool // nil: no Query.Match
		want  func(i int) bool // which records the listing must return
	}{
		{"all by 100", "", 100, nil, func(int) bool { return true }},
		{"all by 1000", "", 1000, nil, func(int) bool { return true }},
		{"limit 0 means the maximum", "", 0, nil, func(int) bool { return true }},
		{"limit above the maximum is capped", "", 5000, nil, func(int) bool { return true }},
		{"term by 7", "p=even", 7, nil, func(i int) bool { return i%2 == 0 }},
		{"term and match by 37", "m3=1", 37, func(i int) bool { return i%5 == 0 }, func(i int) bool { return i%3 == 1 && i%5 == 0 }},
		{"rare match by 10", "", 10, func(i int) bool { return i%997 == 0 }, func(i int) bool { return i%997 == 0 }},
		{"match rejects all", "p=odd", 50, func(int) bool { return false }, func(int) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := store.Query{Index: tc.index, Limit: tc.limit}
			if tc.match != nil {
				q.Match = func(r store.Record) bool { return tc.match(num(r)) }
			}
			pageMax := tc.limit
			if pageMax <= 0 || pageMax > store.MaxLimit {
				pageMax = store.MaxLimit
			}
			var want, got []string
			for i := range n {
				if tc.want(i) {
					want = append(want, id(i))
				}
			}
			for pages := 0; ; pages++ {
				if pages > n {
					t.Fatalf("more than %d pages: the cursor does not advance", n)
				}
				page, err := s.List(ctx, kind, q)
				if err != nil {
					t.Fatalf("List(after %q): %v", q.After, err)
				}
				if len(page.Records) > pageMax {
					t.Fatalf("page of %d records, want at most %d", len(page.Records), pageMax)
				}
				if tc.match == nil && page.Next != "" && len(page.Records) != pageMax {
					t.Fatalf("short page (%d of %d) with a cursor %q, without a filter", len(page.Records), pageMax, page.Next)
				}
				for _, r := range page.Records {
					if r.Kind != kind || r.Version != 1 || string(r.Data) != r.ID {
						t.Fatalf("record %+v is not what was written", r)
					}
					got = append(got, r.ID)
				}
				if page.Next == "" {
					break
				}
				if len(page.Records) > 0 && page.Next != page.Records[len(page.Records)-1].ID {
					t.Fatalf("Next %q is not the last record returned (%q)", page.Next, page.Records[len(page.Records)-1].ID)
				}
				advance(t, q.After, page.Next)
				q.After = page.Next
			}
			if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
				t.Errorf("listed ids (-want +got):\n%s", diff)
			}
		})
	}

	// Cursors that are not ids, and indexes that do not exist.
	bounds := []struct {
		name string
		kind string
		q    store.Query
		want []string
	}{
		{"after a non-id", kind, store.Query{After: "rec-00010x", Limit: 2}, []string{id(11), id(12)}},
		{"after the last", kind, store.Query{After: id(n - 1)}, nil},
		{"after everything", kind, store.Query{After: "zzz"}, nil},
		{"unknown term", kind, store.Query{Index: "p=none"}, nil},
		{"unknown kind", "nothing", store.Query{}, nil},
	}
	for _, tc := range bounds {
		page, err := s.List(ctx, tc.kind, tc.q)
		if err != nil {
			t.Fatalf("%s: List: %v", tc.name, err)
		}
		var got []string
		for _, r := range page.Records {
			got = append(got, r.ID)
		}
		if diff := cmp.Diff(tc.want, got, equateEmpty); diff != "" {
			t.Errorf("%s: ids (-want +got):\n%s", tc.name, diff)
		}
	}
	// The last page ends the listing exactly: no empty page after it.
	page, err := s.List(ctx, kind, store.Query{After: id(n - 11), Limit: 10})
	if err != nil || len(page.Records) != 10 || page.Next != "" {
		t.Errorf("last full page: %d records, Next %q, err %v; want 10 records and no Next", len(page.Records), page.Next, err)
	}
}

// testListWhileWriting pages through an index while records are inserted
// between the listed ones and some are deleted: every record that stays is
// listed exactly once, nothing twice, always in order.
func testListWhileWriting(t *testing.T, s store.Store) {
	ctx := testContext(t)
	const n = 2000
	stay := func(i int) string { return fmt.Sprintf("k-%05d-a", i) }
	victim := func(i int) string { return fmt.Sprintf("k-%05d-b", i) }
	added := func(i int) string { return fmt.Sprintf("k-%05d-c", i) }
	for from := 0; from < n; from += 250 {
		var puts []store.Put
		for i := from; i < from+250; i++ {
			puts = append(puts,
				store.Put{Kind: kind, ID: stay(i), Expect: store.MustNotExist, Index: []string{"t=x"}},
				store.Put{Kind: kind, ID: victim(i), Expect: store.MustNotExist, Index: []string{"t=x"}})
		}
		apply(t, s, store.Batch{Puts: puts})
	}

	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		// Walk the id space back and forth, adding a record and deleting a
		// victim per batch, until the readers are done.
		for i := 0; ; i = (i + 37) % n {
			select {
			case <-stop:
				return
			default:
			}
			_, err := s.Apply(ctx, store.Batch{Puts: []store.Put{
				{Kind: kind, ID: added(i), Expect: store.AnyVersion, Index: []string{"t=x"}},
				{Kind: kind, ID: victim(i), Expect: store.AnyVersion, Delete: true},
			}})
			if err != nil {
				t.Errorf("writer: Apply: %v", err)
				return
			}
			writes.Add(1)
		}
	})

	for _, term := range []string{"t=x", ""} {
		seen := map[string]int{}
		q := store.Query{Index: term, Limit: 50}
		last := ""
		for {
			page, err := s.List(ctx, kind, q)
			if err != nil {
				t.Fatalf("List(%q after %q): %v", term, q.After, err)
			}
			for _, r := range page.Records {
				if r.ID <= last {
					t.Fatalf("index %q: %q listed after %q", term, r.ID, last)
				}
				last = r.ID
				seen[r.ID]++
			}
			if page.Next == "" {
				break
			}
			advance(t, q.After, page.Next)
			q.After = page.Next
		}
		for i := range n {
			if seen[stay(i)] != 1 {
				t.Errorf("index %q: %s listed %d times, want once", term, stay(i), seen[stay(i)])
			}
		}
	}
	close(stop)
	wg.Wait()
	if writes.Load() == 0 {
		t.Error("no write happened while listing: the test proved nothing")
	}
}

func testOutbox(t *testing.T, s store.Store) {
	ctx := testContext(t)
	if got := pendingIDs(t, s); len(got) != 0 {
		t.Fatalf("new store has pending events %q", got)
	}
	ev := func(i int) store.Event {
		return store.Event{ID: fmt.Sprintf("ev-%02d", i), Subject: fmt.Sprintf("test.subject.%d", i), Data: fmt.Appendf(nil, "data %d", i)}
	}
	// Batches with puts and events, and events alone.
	apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.MustNotExist}}, Events: []store.Event{ev(0), ev(1), ev(2)}})
	apply(t, s, store.Batch{Events: []store.Event{ev(3)}})
	for i := 4; i < 20; i += 4 {
		apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.AnyVersion}}, Events: []store.Event{ev(i), ev(i + 1), ev(i + 2), ev(i + 3)}})
	}
	var want []store.Event
	for i := range 20 {
		want = append(want, ev(i))
	}

	all := pending(t, s, 100)
	if diff := cmp.Diff(want, events(all), equateEmpty); diff != "" {
		t.Fatalf("Pending, oldest first (-want +got):\n%s", diff)
	}
	seqs := map[string]bool{}
	for _, p := range all {
		if p.Seq == "" || seqs[p.Seq] {
			t.Fatalf("Seq %q empty or repeated", p.Seq)
		}
		seqs[p.Seq] = true
	}
	if diff := cmp.Diff(want[:5], events(pending(t, s, 5)), equateEmpty); diff != "" {
		t.Errorf("Pending(5) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, events(pending(t, s, 0)), equateEmpty); diff != "" {
		t.Errorf("Pending(0) means the maximum (-want +got):\n%s", diff)
	}

	// Mark the first five sent, some of them twice; a call with none is fine.
	seqOf := func(ps []store.Pending) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Seq)
		}
		return out
	}
	for _, seqs := range [][]string{seqOf(all[:3]), seqOf(all[1:5]), nil} {
		if err := s.MarkSent(ctx, seqs...); err != nil {
			t.Fatalf("MarkSent(%q): %v", seqs, err)
		}
	}
	if diff := cmp.Diff(want[5:], events(pending(t, s, 100)), equateEmpty); diff != "" {
		t.Errorf("Pending after MarkSent (-want +got):\n%s", diff)
	}
	// Marking out of order leaves the rest in order; new events go last.
	if err := s.MarkSent(ctx, all[10].Seq, all[7].Seq); err != nil {
		t.Fatalf("MarkSent: %v", err)
	}
	apply(t, s, store.Batch{Events: []store.Event{ev(20)}})
	wantLeft := slices.Concat(want[5:7], want[8:10], want[11:], []store.Event{ev(20)})
	left := pending(t, s, 100)
	if diff := cmp.Diff(wantLeft, events(left), equateEmpty); diff != "" {
		t.Errorf("Pending after MarkSent out of order (-want +got):\n%s", diff)
	}
	if err := s.MarkSent(ctx, seqOf(left)...); err != nil {
		t.Fatalf("MarkSent(all): %v", err)
	}
	if got := pendingIDs(t, s); len(got) != 0 {
		t.Errorf("outbox not empty after marking all sent: %q", got)
	}
}

// testMarkSentThenPending: an adapter with store.SentMarkReader marks first
// and then reads, in one call; every adapter of this repository has it.
func testMarkSentThenPending(t *testing.T, s store.Store) {
	ctx := testContext(t)
	m, ok := s.(store.SentMarkReader)
	if !ok {
		t.Fatalf("%T does not implement store.SentMarkReader", s)
	}
	var want []store.Event
	for i := range 6 {
		e := store.Event{ID: fmt.Sprintf("ev-%02d", i), Subject: "test.subject", Data: fmt.Appendf(nil, "data %d", i)}
		apply(t, s, store.Batch{Events: []store.Event{e}})
		want = append(want, e)
	}
	// No seqs: a plain read.
	all, err := m.MarkSentThenPending(ctx, nil, 4)
	if err != nil {
		t.Fatalf("MarkSentThenPending(none, 4): %v", err)
	}
	if diff := cmp.Diff(want[:4], events(all), equateEmpty); diff != "" {
		t.Fatalf("MarkSentThenPending(none, 4) (-want +got):\n%s", diff)
	}
	// The read sees the marks: none of the marked come back, and the limit
	// counts only what is left.
	got, err := m.MarkSentThenPending(ctx, []string{all[0].Seq, all[1].Seq, all[3].Seq}, 2)
	if err != nil {
		t.Fatalf("MarkSentThenPending: %v", err)
	}
	if diff := cmp.Diff([]store.Event{want[2], want[4]}, events(got), equateEmpty); diff != "" {
		t.Errorf("MarkSentThenPending(3 marked, 2) (-want +got):\n%s", diff)
	}
	// Marking again what is gone is harmless.
	got, err = m.MarkSentThenPending(ctx, []string{all[0].Seq, got[0].Seq}, 0)
	if err != nil {
		t.Fatalf("MarkSentThenPending again: %v", err)
	}
	if diff := cmp.Diff(want[4:], events(got), equateEmpty); diff != "" {
		t.Errorf("MarkSentThenPending after marking again (-want +got):\n%s", diff)
	}
	// A seq the adapter never issued is refused, and nothing is marked.
	if _, err := m.MarkSentThenPending(ctx, []string{got[0].Seq, "not a seq"}, 0); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("MarkSentThenPending with a bad seq: %v, want ErrInvalid", err)
	}
	if diff := cmp.Diff(want[4:], events(pending(t, s, 0)), equateEmpty); diff != "" {
		t.Errorf("Pending after a refused MarkSentThenPending (-want +got):\n%s", diff)
	}
}

// testFailedBatchesWriteNoEvents: the events of a batch that fails, for any
// reason, never reach the outbox.
func testFailedBatchesWriteNoEvents(t *testing.T, s store.Store) {
	ctx := testContext(t)
	apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.MustNotExist}}, Events: []store.Event{{ID: "ok-1", Subject: "test.ok"}}})
	failing := []store.Batch{
		{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.MustNotExist}}},
		{Puts: []store.Put{{Kind: kind, ID: "b", Expect: store.MustNotExist}, {Kind: kind, ID: "a", Expect: 9}}},
		{Puts: []store.Put{{Kind: kind, ID: "b", Expect: store.MustNotExist}, {Kind: kind, ID: "b", Expect: store.MustNotExist}}},
		{Puts: []store.Put{{Kind: kind, ID: "b", Expect: store.MustNotExist}, {Kind: "", ID: "c"}}},
	}
	for i, b := range failing {
		b.Events = []store.Event{{ID: fmt.Sprintf("bad-%d", i), Subject: "test.bad"}}
		if _, err := s.Apply(ctx, b); err == nil {
			t.Fatalf("failing batch %d: Apply succeeded", i)
		}
	}
	apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: 1}}, Events: []store.Event{{ID: "ok-2", Subject: "test.ok"}}})
	if diff := cmp.Diff([]string{"ok-1", "ok-2"}, pendingIDs(t, s)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if _, err := s.Get(ctx, kind, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(b) = %v, want ErrNotFound", err)
	}
}

// testInvalid: malformed calls fail with ErrInvalid and write nothing.
func testInvalid(t *testing.T, s store.Store) {
	ctx := testContext(t)
	ev := []store.Event{{ID: "e", Subject: "test.invalid"}}
	batches := []struct {
		name  string
		batch store.Batch
	}{
		{"empty batch", store.Batch{}},
		{"empty kind", store.Batch{Puts: []store.Put{{ID: "a"}}, Events: ev}},
		{"empty id", store.Batch{Puts: []store.Put{{Kind: kind}}, Events: ev}},
		{"record twice", store.Batch{Puts: []store.Put{{Kind: kind, ID: "a"}, {Kind: kind, ID: "a", Expect: store.AnyVersion}}, Events: ev}},
		{"expect below AnyVersion", store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: -2}}, Events: ev}},
		{"event without id", store.Batch{Puts: []store.Put{{Kind: kind, ID: "a"}}, Events: []store.Event{{Subject: "test.x"}}}},
		{"event without subject", store.Batch{Events: []store.Event{{ID: "e"}}}},
	}
	for _, tc := range batches {
		if _, err := s.Apply(ctx, tc.batch); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: Apply = %v, want ErrInvalid", tc.name, err)
		}
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get empty kind", func() error { _, err := s.Get(ctx, "", "a"); return err }},
		{"Get empty id", func() error { _, err := s.Get(ctx, kind, ""); return err }},
		{"List empty kind", func() error { _, err := s.List(ctx, "", store.Query{}); return err }},
		{"MarkSent of a seq never issued", func() error { return s.MarkSent(ctx, "not a seq") }},
	}
	for _, tc := range calls {
		if err := tc.call(); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := s.Get(ctx, kind, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(a) = %v, want ErrNotFound: an invalid batch wrote", err)
	}
	if got := pendingIDs(t, s); len(got) != 0 {
		t.Errorf("invalid batches wrote events %q", got)
	}
}

func testBinaryAndUnicode(t *testing.T, s store.Store) {
	ctx := testContext(t)
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	chinese := []byte("碳金融服务台：武昌区中北路金融街，全国碳排放权注册登记系统")
	tests := []struct {
		name  string
		id    string
		data  []byte
		index []string
	}{
		{"all byte values", "bytes", allBytes, []string{"t=bin"}},
		{"Chinese text", "文本", chinese, []string{"区域=武昌", "类别=碳资产质押"}},
		{"separators in id and terms", "a:b\x00c\nd", []byte("x"), []string{"k=a:b", "k=\x00\xff", "3:abc"}},
		{"empty data", "empty", nil, nil},
		{"large value", "big", big, []string{"t=bin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := store.Event{ID: "ev-" + tc.name, Subject: "test.binary", Data: tc.data}
			apply(t, s, store.Batch{
				Puts:   []store.Put{{Kind: kind, ID: tc.id, Expect: store.MustNotExist, Data: tc.data, Index: tc.index}},
				Events: []store.Event{ev},
			})
			want := store.Record{Kind: kind, ID: tc.id, Version: 1, Data: tc.data, Index: store.NormalizeIndex(tc.index)}
			if diff := cmp.Diff(want, get(t, s, kind, tc.id), equateEmpty); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
			for _, term := range want.Index {
				page, err := s.List(ctx, kind, store.Query{Index: term})
				if err != nil {
					t.Fatalf("List(%q): %v", term, err)
				}
				i := slices.IndexFunc(page.Records, func(r store.Record) bool { return r.ID == tc.id })
				if i < 0 {
					t.Fatalf("List(%q) misses %q", term, tc.id)
				}
				if diff := cmp.Diff(want, page.Records[i], equateEmpty); diff != "" {
					t.Errorf("List(%q) record (-want +got):\n%s", term, diff)
				}
			}
			ps := pending(t, s, store.MaxLimit)
			i := slices.IndexFunc(ps, func(p store.Pending) bool { return p.ID == ev.ID })
			if i < 0 {
				t.Fatalf("event %q not pending", ev.ID)
			}
			if diff := cmp.Diff(ev, ps[i].Event, equateEmpty); diff != "" {
				t.Errorf("Pending event (-want +got):\n%s", diff)
			}
		})
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(testContext(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testContextDone: a cancelled or expired context fails every call with an
// error that says so, and an Apply under it writes nothing.
func testContextDone(t *testing.T, s store.Store) {
	apply(t, s, store.Batch{Puts: []store.Put{{Kind: kind, ID: "a", Expect: store.MustNotExist}}, Events: []store.Event{{ID: "seed", Subject: "test.seed"}}})
	seq := pending(t, s, 1)[0].Seq

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"expired", expired, context.DeadlineExceeded}} {
		ctx := c.ctx
		calls := []struct {
			name string
			call func() error
		}{
			{"Get", func() error { _, err := s.Get(ctx, kind, "a"); return err }},
			{"List", func() error { _, err := s.List(ctx, kind, store.Query{}); return err }},
			{"Apply", func() error {
				_, err := s.Apply(ctx, store.Batch{
					Puts:   []store.Put{{Kind: kind, ID: "b", Expect: store.MustNotExist}},
					Events: []store.Event{{ID: "late", Subject: "test.late"}},
				})
				return err
			}},
			{"Pending", func() error { _, err := s.Pending(ctx, 10); return err }},
			{"MarkSent", func() error { return s.MarkSent(ctx, seq) }},
			{"Ping", func() error { return s.Ping(ctx) }},
		}
		for _, call := range calls {
			if err := call.call(); !errors.Is(err, c.want) {
				t.Errorf("%s context: %s = %v, want %v", c.name, call.name, err, c.want)
			}
		}
	}
	if _, err := s.Get(testContext(t), kind, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(b) = %v, want ErrNotFound: Apply wrote under a done context", err)
	}
	if diff := cmp.Diff([]string{"seed"}, pendingIDs(t, s)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

// testContext bounds each test's store calls, so a hung backend fails the
// test with a message instead of the whole run timing out.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func apply(t testing.TB, s store.Store, b store.Batch) []int64 {
	t.Helper()
	v, err := s.Apply(testContext(t), b)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return v
}

func get(t testing.TB, s store.Store, kind, id string) store.Record {
	t.Helper()
	r, err := s.Get(testContext(t), kind, id)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", kind, id, err)
	}
	return r
}

// listIDs pages through a whole listing and returns the ids.
func listIDs(t testing.TB, s store.Store, kind string, q store.Query) []string {
	t.Helper()
	var ids []string
	for {
		page, err := s.List(testContext(t), kind, q)
		if err != nil {
			t.Fatalf("List(%s, %+v): %v", kind, q, err)
		}
		for _, r := range page.Records {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			return ids
		}
		advance(t, q.After, page.Next)
		q.After = page.Next
	}
}

// advance fails the test when a cursor does not move forward, which would
// page forever.
func advance(t testing.TB, after, next string) {
	t.Helper()
	if next <= after {
		t.Fatalf("cursor does not advance: Next %q after %q", next, after)
	}
}

func pending(t testing.TB, s store.Store, limit int) []store.Pending {
	t.Helper()
	ps, err := s.Pending(testContext(t), limit)
	if err != nil {
		t.Fatalf("Pending(%d): %v", limit, err)
	}
	return ps
}

func pendingIDs(t testing.TB, s store.Store) []string {
	t.Helper()
	var ids []string
	for _, p := range pending(t, s, store.MaxLimit) {
		ids = append(ids, p.ID)
	}
	return ids
}

func events(ps []store.Pending) []store.Event {
	out := make([]store.Event, len(ps))
	for i, p := range ps {
		out[i] = p.Event
	}
	return out
}
