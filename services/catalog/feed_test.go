package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

// feedEnv is the catalog with its relay and institution feed running
// against an embedded JetStream holding the REGISTRY and CATALOG streams.
type feedEnv struct {
	s  *Server
	st store.Store
	js jetstream.JetStream
}

func startFeed(t *testing.T, st store.Store) *feedEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, registry.Name)
	testenv.Stream(t, js, Name)
	relay := outbox.New(st, js, log, outbox.Options{})
	s := newTestServer(t, outbox.Notifying(st, relay), WithFeedConfig(func(c *consumer.Config) {
		c.RetryDelays = []time.Duration{50 * time.Millisecond}
		c.AckWait = 5 * time.Second
	}))
	testenv.Background(t, "relay", relay.Run)
	testenv.Background(t, "feed", func(ctx context.Context) error { return s.RunInstitutionFeed(ctx, js) })
	return &feedEnv{s: s, st: st, js: js}
}

// publish sends one registry event for in at in's version, as the
// registry's relay would. A fresh event id (= message id) each time, so a
// re-sent event is a redelivery the stream does not deduplicate: the
// consumer's idempotency is what is tested.
func (e *feedEnv) publish(t *testing.T, subject string, in *registryv1.Institution) {
	t.Helper()
	testenv.PublishEvent(t, e.js, subject, in.GetId(), in.GetVersion(), in)
}

// view waits until the catalog's view of id is at version v.
func (e *feedEnv) view(t *testing.T, id string, v int64) *Institution {
	t.Helper()
	var in *Institution
	testenv.Eventually(t, 10*time.Second, func() bool {
		var err error
		in, err = e.s.institution(t.Context(), id)
		return err == nil && in != nil && in.Version == v
	})
	return in
}

// settle sends a registration of a fresh institution and waits for it: the
// consumer handles messages in stream order, so every event published
// before has been handled by then.
func (e *feedEnv) settle(t *testing.T) {
	t.Helper()
	n := seq.Add(1)
	marker := &registryv1.Institution{Id: fmt.Sprintf("01MARKER%017d", n), CreditCode: fmt.Sprintf("91420106M%09d", n), Version: 1,
		State: registryv1.InstitutionState_INSTITUTION_STATE_PENDING}
	e.publish(t, registry.SubjectRegistered, marker)
	e.view(t, marker.GetId(), 1)
}

// catalogEvents are the CATALOG stream's product events as "subject id vN".
func (e *feedEnv) catalogEvents(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, env := range testenv.StreamEnvelopes(t, e.js, events.StreamName(Name)) {
		out = append(out, events.SubjectPrefix+env.GetType()+" "+env.GetEntityId()+" v"+strconv.FormatInt(env.GetEntityVersion(), 10))
	}
	return out
}

// TestInstitutionFeed drives the catalog's view through a real JetStream:
// registry events in, product events out. A suspension pauses each
// PUBLISHED product with its own event; the same event delivered twice, or
// an older one after a newer, changes nothing; after reinstatement nothing
// re-publishes by itself, and the institution may publish again.
func TestInstitutionFeed(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := startFeed(t, st)
		ctx := staffCtx(t)
		reg := &registryv1.Institution{Id: "01JINSTFEED00000000000001", CreditCode: "91420106MA4K00010G",
			Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK, State: registryv1.InstitutionState_INSTITUTION_STATE_PENDING, Version: 1}
		at := func(v int64, state registryv1.InstitutionState) *registryv1.Institution {
			c := proto.Clone(reg).(*registryv1.Institution)
			c.Version, c.State = v, state
			return c
		}
		e.publish(t, registry.SubjectRegistered, at(1, pendingSt))
		e.view(t, reg.GetId(), 1)
		e.publish(t, registry.SubjectApproved, at(2, active))
		e.view(t, reg.GetId(), 2)

		// Three products: two published, one draft.
		inst := &Institution{ID: reg.GetId()}
		a, b := published(t, e.s, inst), published(t, e.s, inst)
		draft := create(t, e.s, inst)

		// Suspension: both published products pause, each with its event.
		suspendedEv := at(3, suspended)
		e.publish(t, registry.SubjectSuspended, suspendedEv)
		e.view(t, reg.GetId(), 3)
		for _, p := range []*catalogv1.Product{a, b} {
			got := read(t, e.s, p.GetId())
			if got.GetState() != catalogv1.ProductState_PRODUCT_STATE_PAUSED || got.GetVersion() != 3 || got.GetStateReason() != "institution SUSPENDED by the registry" {
				t.Errorf("product %s after suspension: %s v%d %q", p.GetId(), got.GetState(), got.GetVersion(), got.GetStateReason())
			}
		}
		if got := read(t, e.s, draft.GetId()); got.GetState() != catalogv1.ProductState_PRODUCT_STATE_DRAFT || got.GetVersion() != 1 {
			t.Errorf("draft after suspension: %s v%d", got.GetState(), got.GetVersion())
		}
		want := []string{
			SubjectCreated + " " + a.GetId() + " v1", SubjectPublished + " " + a.GetId() + " v2",
			SubjectCreated + " " + b.GetId() + " v1", SubjectPublished + " " + b.GetId() + " v2",
			SubjectCreated + " " + draft.GetId() + " v1",
			SubjectPaused + " " + a.GetId() + " v3", SubjectPaused + " " + b.GetId() + " v3",
		}
		testenv.Eventually(t, 10*time.Second, func() bool { return len(e.catalogEvents(t)) >= len(want) })
		if diff := cmp.Diff(want, e.catalogEvents(t)); diff != "" {
			t.Errorf("CATALOG stream (-want +got):\n%s", diff)
		}
		for _, env := range testenv.StreamEnvelopes(t, e.js, events.StreamName(Name))[5:] {
			if env.GetActor().GetSubject() != events.System.Subject {
				t.Errorf("pause event %s by %q, want the system", env.GetId(), env.GetActor().GetSubject())
			}
		}
		// While suspended it cannot publish.
		if _, err := e.s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: a.GetId()}); !errors.Is(err, ErrInstitutionNotActive) {
			t.Errorf("publish while suspended: %v", err)
		}

		// The same event again: nothing changes.
		e.publish(t, registry.SubjectSuspended, suspendedEv)
		e.settle(t)
		if got := read(t, e.s, a.GetId()); got.GetVersion() != 3 {
			t.Errorf("duplicate suspension changed product a: v%d", got.GetVersion())
		}

		// Reinstatement: nothing re-publishes by itself; the institution
		// may publish again.
		e.publish(t, registry.SubjectReinstated, at(4, active))
		e.view(t, reg.GetId(), 4)
		if got := read(t, e.s, a.GetId()); got.GetState() != catalogv1.ProductState_PRODUCT_STATE_PAUSED {
			t.Errorf("after reinstatement product a is %s, want still PAUSED", got.GetState())
		}
		if _, err := e.s.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: a.GetId(), Version: 3}); err != nil {
			t.Fatalf("publish after reinstatement: %v", err)
		}

		// The older suspension arriving after the reinstatement changes
		// nothing: the view stays ACTIVE at v4 and product a PUBLISHED.
		e.publish(t, registry.SubjectSuspended, suspendedEv)
		e.settle(t)
		if v := e.view(t, reg.GetId(), 4); !v.Active() {
			t.Errorf("view after an old event: %s", v.State)
		}
		if got := read(t, e.s, a.GetId()); got.GetState() != catalogv1.ProductState_PRODUCT_STATE_PUBLISHED || got.GetVersion() != 4 {
			t.Errorf("product a after an old suspension: %s v%d", got.GetState(), got.GetVersion())
		}
		want = append(want, SubjectPublished+" "+a.GetId()+" v4")
		testenv.Eventually(t, 10*time.Second, func() bool { return len(e.catalogEvents(t)) >= len(want) })
		if diff := cmp.Diff(want, e.catalogEvents(t)); diff != "" {
			t.Errorf("CATALOG stream at the end (-want +got):\n%s", diff)
		}
	})
}

// TestSuspensionChunks: an institution with more PUBLISHED products than fit
// one batch has them all paused, each with its event; when the last batch
// (the one carrying the idempotency mark) fails, the redelivery pauses the
// rest and the view ends at the new version.
func TestSuspensionChunks(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		in := institutionView(t, s, active)
		const n = 2*pauseChunk + 37
		ids := bulkProducts(t, s, in, n, StatePublished, nil)
		next := *in
		next.State, next.Version = suspended, in.Version+1
		crash := errors.New("crash before the last batch")
		err := s.applyInstitution(t.Context(), &next, func(context.Context, store.Batch) ([]int64, error) { return nil, crash })
		if !errors.Is(err, crash) {
			t.Fatalf("first delivery: %v", err)
		}
		if got := countState(t, s, ids, StatePaused); got != 2*pauseChunk {
			t.Errorf("after the failed delivery %d paused, want %d (the first batches)", got, 2*pauseChunk)
		}
		// The redelivery: commit works now.
		next = *in
		next.State, next.Version = suspended, in.Version+1
		if err := s.applyInstitution(t.Context(), &next, st.Apply); err != nil {
			t.Fatal(err)
		}
		if got := countState(t, s, ids, StatePaused); got != n {
			t.Errorf("after the redelivery %d paused, want %d", got, n)
		}
		paused := 0
		for _, line := range pending(t, st) {
			if len(line) > len(SubjectPaused) && line[:len(SubjectPaused)] == SubjectPaused {
				paused++
			}
		}
		if paused != n {
			t.Errorf("%d pause events, want %d", paused, n)
		}
		if v, _ := s.institution(t.Context(), in.ID); v.State != suspended || v.Version != in.Version+1 {
			t.Errorf("view: %v", v)
		}
	})
}

func countState(t *testing.T, s *Server, ids []string, st State) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		p, err := s.get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if p.State == st {
			n++
		}
	}
	return n
}

// bulkProducts writes n products of in in the given state straight to the
// store, in large batches and without events (the bolt store syncs once per
// batch). mod, when set, varies product i. It returns the ids in order.
func bulkProducts(t testing.TB, s *Server, in *Institution, n int, state State, mod func(i int, p *Product)) []string {
	t.Helper()
	now := t0
	ids := make([]string, 0, n)
	var b store.Batch
	flush := func() {
		if len(b.Puts) == 0 {
			return
		}
		if _, err := s.st.Apply(context.Background(), b); err != nil {
			t.Fatalf("bulk: %v", err)
		}
		b = store.Batch{}
	}
	var v errs.Violations
	terms := fromProtoTerms("", validProduct(), &v)
	for i := range n {
		now = now.Add(time.Millisecond)
		p := NewProduct(events.NewID(now), in.ID, in.CreditCode, terms, now)
		p.State, p.Version = state, 1
		if mod != nil {
			mod(i, p)
		}
		put, _, err := productPut(context.Background(), p, store.MustNotExist, SubjectCreated, now)
		if err != nil {
			t.Fatal(err)
		}
		b.Puts = append(b.Puts, put)
		ids = append(ids, p.ID)
		if len(b.Puts) == 500 {
			flush()
		}
	}
	flush()
	return slices.Clip(ids)
}

// TestPublishRacesSuspension: products published while a suspension is
// being applied either were published first (and are paused by it) or are
// refused: once both are done, nothing of a suspended institution is
// PUBLISHED. The view's version check in both batches is what holds this.
func TestPublishRacesSuspension(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s := newTestServer(t, st)
		in := institutionView(t, s, active)
		ids := bulkProducts(t, s, in, 60, StateDraft, nil)
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				_, err := s.PublishProduct(staffCtx(t), &catalogv1.PublishProductRequest{Id: id})
				if err != nil && !errors.Is(err, ErrInstitutionNotActive) && code(err) != codes.Aborted {
					t.Errorf("publish %s: %v", id, err)
				}
			})
		}
		wg.Go(func() {
			next := *in
			next.State, next.Version = suspended, in.Version+1
			if err := s.applyInstitution(t.Context(), &next, st.Apply); err != nil {
				t.Errorf("suspend: %v", err)
			}
		})
		wg.Wait()
		if n := countState(t, s, ids, StatePublished); n != 0 {
			t.Errorf("%d products PUBLISHED by a suspended institution", n)
		}
		t.Logf("%d paused by the suspension, %d left DRAFT", countState(t, s, ids, StatePaused), countState(t, s, ids, StateDraft))
	})
}
