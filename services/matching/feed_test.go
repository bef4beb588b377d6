package matching

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/registry"
)

// publish puts one event on a stream as the owning service's relay would.
func publish(t testing.TB, js jetstream.JetStream, subject, id string, version int64, msg proto.Message) {
	t.Helper()
	ev, err := events.New(subject, id, version, events.System, t0, msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), subject, ev.Data, jetstream.WithMsgID(ev.ID)); err != nil {
		t.Fatal(err)
	}
}

// catalogHistory publishes what the registry and the catalog would have:
// institutions registered then approved (one later suspended), products
// created then published (one later paused), and reference prices.
func catalogHistory(t testing.TB, js jetstream.JetStream, n int) []*catalogv1.Product {
	t.Helper()
	testenv.Stream(t, js, catalog.Name)
	testenv.Stream(t, js, registry.Name)
	var prods []*catalogv1.Product
	for i := range n {
		in := &registryv1.Institution{Id: events.NewID(t0), CreditCode: testCode(t), Zone: registryv1.Zone(1 + i%4),
			State: registryv1.InstitutionState_INSTITUTION_STATE_PENDING, Version: 1}
		publish(t, js, registry.SubjectRegistered, in.Id, 1, in)
		in.State, in.Version = registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE, 2
		publish(t, js, registry.SubjectApproved, in.Id, 2, in)
		p := pledge(in, int32(350+10*(i%7)))
		p.State, p.Version = catalogv1.ProductState_PRODUCT_STATE_DRAFT, 1
		publish(t, js, catalog.SubjectCreated, p.Id, 1, p)
		p.State, p.Version = catalogv1.ProductState_PRODUCT_STATE_PUBLISHED, 2
		publish(t, js, catalog.SubjectPublished, p.Id, 2, p)
		prods = append(prods, p)
		if i == 0 { // the best-priced institution is suspended afterwards
			in.State, in.Version = registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED, 3
			publish(t, js, registry.SubjectSuspended, in.Id, 3, in)
		}
	}
	publish(t, js, catalog.SubjectReferencePricesSet, catalog.ReferencePricesID, 1, &catalogv1.ReferencePrices{CeaYuanPerTonne: 80, CcerYuanPerTonne: 60})
	return prods
}

// startRun runs s.Run until the test ends and waits until it caught up.
func startRun(t *testing.T, s *Server, js jetstream.JetStream) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, js) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer wcancel()
	if err := s.WaitCaughtUp(wctx); err != nil {
		t.Fatalf("index did not catch up: %v", err)
	}
	return cancel
}

func fastConsumers(c *consumer.Config) { c.RetryDelays = []time.Duration{50 * time.Millisecond} }

// TestRebuildFromStreams: the index is rebuilt on every start by replaying
// the catalog's and registry's streams; after a restart (a fresh engine) the
// same demand gets the same matches with the same reasons. Then a reaction
// through the durable consumer: a product paused on the stream withdraws
// its proposal.
func TestRebuildFromStreams(t *testing.T) {
	t.Parallel()
	js := testenv.JetStream(t, testenv.NATS(t))
	prods := catalogHistory(t, js, 30)
	// Matching's own history: the institution of prods[1] let three
	// proposals lapse. Each start reads it back into the response record.
	testenv.Stream(t, js, Name)
	for range 3 {
		m := answeredMatch(prods[1].GetInstitutionId(), 73*time.Hour, true)
		publish(t, js, SubjectMatchExpired, m.GetId(), 2, m)
	}
	code := testCode(t)
	// Each start has its own store and engine; the first stops before the
	// second starts (they would share the durable consumers).
	rank := func(st store.Store) (*Server, []*matchingv1.Match, context.CancelFunc) {
		t.Helper()
		c := &clock{now: t0}
		s := New(st, NewEngine(Config{}), WithClock(c.Now), WithConsumerConfig(fastConsumers), WithLogger(slog.New(slog.DiscardHandler)))
		stop := startRun(t, s, js)
		if !s.CaughtUp() || s.engine.ProductsLen() != len(prods) {
			t.Fatalf("caught up %v with %d products, want %d", s.CaughtUp(), s.engine.ProductsLen(), len(prods))
		}
		resp, err := s.PostDemand(as(t, auth.Enterprise, code), &matchingv1.PostDemandRequest{Demand: demand(code)})
		if err != nil {
			t.Fatal(err)
		}
		x, err := s.ExplainMatch(staffCtx(t), &matchingv1.ExplainMatchRequest{DemandId: resp.GetDemand().GetId(), ProductId: prods[1].GetId()})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range x.GetScoreParts() {
			if p.GetName() == "response" && (p.GetValue() >= 0.5 || !strings.Contains(p.GetDetail(), "answered 0 of 3")) {
				t.Errorf("after a start, response part of the lapsing institution = %v; want its 3 lapses", p)
			}
		}
		return s, resp.GetMatches(), stop
	}
	_, first, stop := rank(testenv.BoltStore(t))
	stop()
	s2, second, _ := rank(testenv.BoltStore(t))
	if len(first) != 5 {
		t.Fatalf("%d matches, want 5", len(first))
	}
	for _, m := range first {
		if m.GetProductId() == prods[0].GetId() {
			t.Fatal("the suspended institution's product was proposed")
		}
	}
	ignore := protocmp.IgnoreFields(&matchingv1.Match{}, "id", "demand_id", "create_time", "update_time", "response_deadline")
	if diff := cmp.Diff(first, second, protocmp.Transform(), ignore); diff != "" {
		t.Errorf("matches after the rebuild differ (-first +second):\n%s", diff)
	}

	// A pause on the stream reaches the durable consumer and withdraws.
	target := second[0]
	var p *catalogv1.Product
	for _, q := range prods {
		if q.GetId() == target.GetProductId() {
			p = proto.Clone(q).(*catalogv1.Product)
		}
	}
	p.State, p.Version = catalogv1.ProductState_PRODUCT_STATE_PAUSED, 3
	publish(t, js, catalog.SubjectPaused, p.GetId(), 3, p)
	testenv.Eventually(t, 10*time.Second, func() bool {
		m, err := s2.getMatch(t.Context(), target.GetId())
		return err == nil && m.GetState() == matchWithdrawn
	})
}
