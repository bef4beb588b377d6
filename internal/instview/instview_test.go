package instview_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/instview"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

const kind = "institution"

const (
	active    = registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
	pending   = registryv1.InstitutionState_INSTITUTION_STATE_PENDING
	suspended = registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED
	bank      = registryv1.InstitutionKind_INSTITUTION_KIND_BANK
)

// same compares views by their exported fields (the record version is the
// store's).
var same = cmpopts.IgnoreUnexported(instview.View{})

func view(id, code string, state registryv1.InstitutionState, version int64) *instview.View {
	return &instview.View{ID: id, CreditCode: code, NameZh: "楚江碳金融银行", Kind: bank, State: state, Version: version}
}

// write stores v as the feed does: replacing what the store holds.
func write(t *testing.T, st store.Store, v *instview.View) {
	t.Helper()
	old, err := instview.Get(t.Context(), st, kind, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Replaces(old) {
		t.Fatalf("%s v%d does not replace v%d", v.ID, v.Version, old.Version)
	}
	apply(t, st, v)
}

func apply(t *testing.T, st store.Store, v *instview.View) {
	t.Helper()
	put, err := v.Put(kind)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(t.Context(), store.Batch{Puts: []store.Put{put}}); err != nil {
		t.Fatalf("apply %s v%d: %v", v.ID, v.Version, err)
	}
}

// TestStoredFormat: the JSON field names are the ones the catalog and the
// talent base stored before the package, and their records still decode.
func TestStoredFormat(t *testing.T) {
	t.Parallel()
	v := view("01JINST0000000000000000001", "91420106MA4K00010G", active, 3)
	put, err := v.Put(kind)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"01JINST0000000000000000001","credit_code":"91420106MA4K00010G","name_zh":"楚江碳金融银行","kind":1,"state":2,"version":3}`
	if string(put.Data) != want {
		t.Errorf("stored as\n%s\nwant\n%s", put.Data, want)
	}
	if put.Kind != kind || put.ID != v.ID || put.Expect != store.MustNotExist || !cmp.Equal(put.Index, []string{instview.TermCode + v.CreditCode}) {
		t.Errorf("put %s/%s expect %d index %q", put.Kind, put.ID, put.Expect, put.Index)
	}

	for name, tt := range map[string]struct {
		data string
		want instview.View
	}{
		"catalog": {`{"id":"01A","credit_code":"91420106MA4K00010G","kind":1,"state":2,"version":4}`,
			instview.View{ID: "01A", CreditCode: "91420106MA4K00010G", Kind: bank, State: active, Version: 4}},
		"talent": {`{"id":"01B","credit_code":"91420106MA4K00010G","name_zh":"楚江碳金融银行","state":4,"version":2}`,
			instview.View{ID: "01B", CreditCode: "91420106MA4K00010G", NameZh: "楚江碳金融银行", State: suspended, Version: 2}},
	} {
		got, err := instview.Decode(store.Record{Kind: kind, ID: tt.want.ID, Version: 7, Data: []byte(tt.data)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(tt.want, *got, same); diff != "" {
			t.Errorf("%s record (-want +got):\n%s", name, diff)
		}
		if put, _ := got.Put(kind); put.Expect != 7 {
			t.Errorf("%s record: a put back expects v%d, want the record's 7", name, put.Expect)
		}
	}

	_, err = instview.Decode(store.Record{Kind: kind, ID: "01C", Data: []byte("{")})
	if err == nil || !strings.HasPrefix(err.Error(), "decode institution view 01C: ") {
		t.Errorf("bad record: %v", err)
	}
}

// TestReadWrite: Get and ByCode find what Put wrote, on every store; a
// view read back carries the record version, so a stale write conflicts.
func TestReadWrite(t *testing.T) {
	t.Parallel()
	for name, open := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			ctx := t.Context()
			for _, lookup := range []func() (*instview.View, error){
				func() (*instview.View, error) { return instview.Get(ctx, st, kind, "01A") },
				func() (*instview.View, error) { return instview.ByCode(ctx, st, kind, "91420106MA4K00010G") },
				func() (*instview.View, error) { return instview.ByCode(ctx, st, kind, "") },
			} {
				if v, err := lookup(); v != nil || err != nil {
					t.Errorf("an empty store answers %v, %v; want nil, nil", v, err)
				}
			}

			a := view("01A", "91420106MA4K00010G", pending, 1)
			write(t, st, a)
			write(t, st, view("01B", "91420106MA4K00020X", active, 1))
			got, err := instview.Get(ctx, st, kind, "01A")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, got, same); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
			byCode, err := instview.ByCode(ctx, st, kind, "91420106MA4K00020X")
			if err != nil || byCode == nil || byCode.ID != "01B" {
				t.Fatalf("ByCode: %v, %v", byCode, err)
			}
			if v, err := instview.ByCode(ctx, st, kind, "91420106MA4K00030Y"); v != nil || err != nil {
				t.Errorf("ByCode of an unknown code: %v, %v", v, err)
			}
			if v, err := instview.Get(ctx, st, "other", "01A"); v != nil || err != nil {
				t.Errorf("Get under another kind: %v, %v", v, err)
			}

			// The fence: got was read at the record's version; once the
			// feed writes a newer view, writing got back conflicts.
			write(t, st, view("01A", "91420106MA4K00010G", active, 2))
			put, err := got.Put(kind)
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Apply(ctx, store.Batch{Puts: []store.Put{put}})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("a stale view written back: %v; want a conflict", err)
			}
			fresh, err := instview.Get(ctx, st, kind, "01A")
			if err != nil {
				t.Fatal(err)
			}
			if !fresh.Active() || fresh.Version != 2 {
				t.Errorf("view after the feed: %s v%d", fresh.State, fresh.Version)
			}
			apply(t, st, fresh) // read again, the write back goes through
		})
	}
}

// TestReplaces: a view from an event replaces no view, the same or an
// older version, and never a newer one.
func TestReplaces(t *testing.T) {
	t.Parallel()
	st := testenv.BoltStore(t)
	write(t, st, view("01A", "91420106MA4K00010G", active, 3))
	old, err := instview.Get(t.Context(), st, kind, "01A")
	if err != nil {
		t.Fatal(err)
	}
	readAt, _ := old.Put(kind)

	for _, tt := range []struct {
		version int64
		old     *instview.View
		ok      bool
		expect  int64
	}{
		{1, nil, true, store.MustNotExist},
		{2, old, false, 0},
		{3, old, true, readAt.Expect},
		{4, old, true, readAt.Expect},
	} {
		v := view("01A", "91420106MA4K00010G", suspended, tt.version)
		if got := v.Replaces(tt.old); got != tt.ok {
			t.Errorf("v%d replaces %v: %v, want %v", tt.version, tt.old != nil, got, tt.ok)
			continue
		}
		if put, _ := v.Put(kind); tt.ok && put.Expect != tt.expect {
			t.Errorf("v%d: put expects %d, want %d", tt.version, put.Expect, tt.expect)
		}
	}

	// Replaces resets what an earlier call took.
	v := view("01A", "91420106MA4K00010G", suspended, 4)
	v.Replaces(old)
	v.Replaces(nil)
	if put, _ := v.Put(kind); put.Expect != store.MustNotExist {
		t.Errorf("after replacing nothing, put expects %d", put.Expect)
	}
}

// TestAwait: Await returns once every code is there (ACTIVE where asked);
// when its context ends first it says which codes are missing.
func TestAwait(t *testing.T) {
	t.Parallel()
	st := testenv.BoltStore(t)
	write(t, st, view("01A", "91420106MA4K00010G", pending, 1))
	write(t, st, view("01B", "91420106MA4K00020X", pending, 1))
	need := map[string]bool{"91420106MA4K00010G": false, "91420106MA4K00020X": true, "91420106MA4K00030Y": true}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	views, missing, err := instview.Await(ctx, st, kind, need, 10*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || views != nil || !cmp.Equal(missing, []string{"91420106MA4K00020X", "91420106MA4K00030Y"}) {
		t.Fatalf("Await with two missing: %v, %q, %v", views, missing, err)
	}

	// The feed brings the rest while Await polls.
	var later store.Batch
	for _, v := range []*instview.View{view("01B", "91420106MA4K00020X", active, 2), view("01C", "91420106MA4K00030Y", active, 1)} {
		old, err := instview.Get(t.Context(), st, kind, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		v.Replaces(old)
		put, err := v.Put(kind)
		if err != nil {
			t.Fatal(err)
		}
		later.Puts = append(later.Puts, put)
	}
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		time.Sleep(30 * time.Millisecond)
		if _, err := st.Apply(context.Background(), later); err != nil {
			t.Errorf("the feed's write: %v", err)
		}
	}()
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	views, missing, err = instview.Await(ctx, st, kind, need, 10*time.Millisecond)
	if err != nil || missing != nil {
		t.Fatalf("Await: %q, %v", missing, err)
	}
	got := map[string]string{}
	for code, v := range views {
		got[code] = v.ID
	}
	want := map[string]string{"91420106MA4K00010G": "01A", "91420106MA4K00020X": "01B", "91420106MA4K00030Y": "01C"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("views by code (-want +got):\n%s", diff)
	}
}

func TestFeedConfig(t *testing.T) {
	t.Parallel()
	cfg := instview.FeedConfig("someone-institutions")
	if cfg.Stream != events.StreamName(registry.Name) || cfg.Durable != "someone-institutions" || !cmp.Equal(cfg.FilterSubjects, []string{registry.SubjectAll}) {
		t.Errorf("FeedConfig: %+v", cfg)
	}
}

// envelope is the envelope the registry's relay publishes for msg, naming
// entity id at version.
func envelope(t *testing.T, id string, version int64, msg proto.Message) *eventv1.Envelope {
	t.Helper()
	ev, err := events.New(registry.SubjectSuspended, id, version, events.System, time.Now(), msg)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestFromEvent: the view an event carries is its payload at the
// envelope's version; a payload that is not the institution the envelope
// names, with a credit code, is refused in the words the services used.
func TestFromEvent(t *testing.T) {
	t.Parallel()
	in := &registryv1.Institution{Id: "01A", CreditCode: "91420106MA4K00010G", NameZh: "楚江碳金融银行", NameEn: "Chujiang Bank",
		Kind: bank, State: suspended, Version: 9}
	got, err := instview.FromEvent(envelope(t, "01A", 5, in))
	if err != nil {
		t.Fatal(err)
	}
	// The envelope's version wins over the payload's.
	if diff := cmp.Diff(view("01A", "91420106MA4K00010G", suspended, 5), got, same); diff != "" {
		t.Errorf("view (-want +got):\n%s", diff)
	}
	if put, _ := got.Put(kind); put.Expect != store.MustNotExist {
		t.Errorf("a view from an event expects v%d before Replaces", put.Expect)
	}

	other := envelope(t, "01B", 2, in)
	_, err = instview.FromEvent(other)
	if want := `registry event ` + other.GetId() + `: payload is institution "01A" (code "91420106MA4K00010G"), envelope names "01B"`; err == nil || err.Error() != want {
		t.Errorf("another institution's payload: %v\nwant %s", err, want)
	}
	noCode := envelope(t, "01A", 2, &registryv1.Institution{Id: "01A"})
	_, err = instview.FromEvent(noCode)
	if want := `registry event ` + noCode.GetId() + `: payload is institution "01A" (code ""), envelope names "01A"`; err == nil || err.Error() != want {
		t.Errorf("a payload without a credit code: %v\nwant %s", err, want)
	}
	wrong := envelope(t, "01A", 2, &registryv1.GetInstitutionRequest{Id: "01A"})
	_, err = instview.FromEvent(wrong)
	if err == nil || !strings.HasPrefix(err.Error(), "registry event "+wrong.GetId()+": payload: ") {
		t.Errorf("a payload of another type: %v", err)
	}
}
