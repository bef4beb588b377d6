package paging_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/store"
)

func TestSize(t *testing.T) {
	for _, tt := range []struct {
		in   int32
		want int
		msg  string
	}{
		{0, 50, ""},
		{1, 1, ""},
		{200, 200, ""},
		{201, 200, ""},
		{-3, -3, "-3 is negative; give 1 to 200, or 0 for 50"},
	} {
		var v errs.Violations
		got := paging.Size(&v, tt.in)
		if got != tt.want || msgOf(v, "page_size") != tt.msg {
			t.Errorf("Size(%d) = %d, %v; want %d, %q", tt.in, got, v, tt.want, tt.msg)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	tok := paging.Token{After: "01J0", Filter: "abc"}
	if got, ok := paging.Decode(tok.Encode()); !ok || got != tok {
		t.Fatalf("Decode(Encode(%+v)) = %+v, %v", tok, got, ok)
	}
	if got := tok.Encode(); got != "eyJhIjoiMDFKMCIsImYiOiJhYmMifQ" {
		t.Errorf("Encode = %q; the token format changed", got)
	}
}

func TestAfter(t *testing.T) {
	const print = "f1"
	valid := paging.Token{After: "id9", Filter: print}.Encode()
	other := paging.Token{After: "id9", Filter: "f2"}.Encode()
	noFilter := paging.Token{After: "id9"}.Encode()
	const notIssued = "is not a token this service issued; pass next_page_token unchanged, or none for the first page"
	const otherFilters = "was issued for other filters; repeat X, or start again without a token"
	for _, tt := range []struct {
		name      string
		optional  bool
		token     string
		wantAfter string
		wantMsg   string
	}{
		{"none", false, "", "", ""},
		{"valid", false, valid, "id9", ""},
		{"other filters", false, other, "", otherFilters},
		{"garbage", false, "!!", "", `"!!" ` + notIssued},
		{"empty json", false, "e30", "", `"e30" ` + notIssued},
		{"no filter", false, noFilter, "", fmt.Sprintf("%q ", noFilter) + notIssued},
		{"no filter, optional", true, noFilter, "", otherFilters},
		{"valid, optional", true, valid, "id9", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var v errs.Violations
			got := paging.Check{Refilter: "repeat X", FilterOptional: tt.optional}.After(&v, tt.token, print)
			if got != tt.wantAfter || msgOf(v, "page_token") != tt.wantMsg {
				t.Errorf("After = %q, %v; want %q, %q", got, v, tt.wantAfter, tt.wantMsg)
			}
		})
	}
}

func TestAfterShortensEcho(t *testing.T) {
	var v errs.Violations
	long := string(make([]byte, 100))
	paging.Check{}.After(&v, long, "f")
	want := fmt.Sprintf("%q ", errs.Shorten(long, 80)) + "is not a token this service issued; pass next_page_token unchanged, or none for the first page"
	if got := msgOf(v, "page_token"); got != want {
		t.Errorf("message %q; want %q", got, want)
	}
}

// lister serves ids in order, at most per records a call, skipping those
// Match rejects but counting them against per, as a store scanning a
// bounded batch does.
type lister struct {
	ids   []string
	per   int
	err   error
	calls int
}

func (l *lister) List(_ context.Context, _ string, q store.Query) (store.Page, error) {
	l.calls++
	if l.err != nil {
		return store.Page{}, l.err
	}
	var p store.Page
	scanned := 0
	for _, id := range l.ids {
		if id <= q.After {
			continue
		}
		if scanned == l.per || len(p.Records) == q.Limit {
			return p, nil
		}
		scanned++
		p.Next = id
		if rec := (store.Record{ID: id}); q.Match == nil || q.Match(rec) {
			p.Records = append(p.Records, rec)
		}
	}
	p.Next = ""
	return p, nil
}

func TestList(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "f"}
	notC := func(r store.Record) bool { return r.ID != "c" }
	for _, tt := range []struct {
		name     string
		per      int
		after    string
		size     int
		match    func(store.Record) bool
		want     []string
		wantNext string
	}{
		{"first page", 10, "", 2, nil, []string{"a", "b"}, "b"},
		{"middle page", 10, "b", 2, nil, []string{"c", "d"}, "d"},
		{"last page, exact", 10, "d", 2, nil, []string{"e", "f"}, ""},
		{"last page, short", 10, "e", 2, nil, []string{"f"}, ""},
		{"all", 10, "", 50, nil, ids, ""},
		{"store returns little at a time", 1, "", 3, notC, []string{"a", "b", "d"}, "d"},
		{"filtered to the end", 2, "", 5, notC, []string{"a", "b", "d", "e", "f"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &lister{ids: ids, per: tt.per}
			q := store.Query{Index: "x", After: tt.after, Match: tt.match}
			recs, next, err := paging.List(context.Background(), l, "k", q, tt.size, "fp")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			wantNext := ""
			if tt.wantNext != "" {
				wantNext = paging.Token{After: tt.wantNext, Filter: "fp"}.Encode()
			}
			if next != wantNext {
				t.Errorf("next = %q; want %q", next, wantNext)
			}
		})
	}
}

func TestListStoreError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := paging.List(context.Background(), &lister{err: boom}, "k", store.Query{}, 5, "fp")
	if !errors.Is(err, boom) {
		t.Errorf("err = %v; want %v", err, boom)
	}
}

// stuck makes no progress: no records, and Next where it started.
type stuck struct{ calls int }

func (s *stuck) List(_ context.Context, _ string, q store.Query) (store.Page, error) {
	s.calls++
	return store.Page{Next: q.After}, nil
}

func TestListStopsWithoutProgress(t *testing.T) {
	s := &stuck{}
	recs, next, err := paging.List(context.Background(), s, "k", store.Query{After: "a"}, 5, "fp")
	if err != nil || len(recs) != 0 || next != "" || s.calls != 1 {
		t.Errorf("List = %d records, %q, %v after %d calls; want none, \"\", nil after 1", len(recs), next, err, s.calls)
	}
}

func TestFingerprint(t *testing.T) {
	a, b := paging.Fingerprint([]byte("x|y")), paging.Fingerprint([]byte("x|z"))
	if len(a) != 16 || a == b || a != paging.Fingerprint([]byte("x|y")) {
		t.Errorf("Fingerprint: %q, %q; want 16 hex digits, stable and distinct", a, b)
	}
}

func msgOf(v errs.Violations, field string) string {
	for _, fv := range v {
		if fv.Field == field {
			return fv.Description
		}
	}
	return ""
}
