package talent

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

// feedEnv is the talent service with its relay and Run (institution feed
// and sweep) going against an embedded JetStream holding the REGISTRY and
// TALENT streams.
type feedEnv struct {
	*env
	js jetstream.JetStream
}

func startFeed(t *testing.T, st store.Store) *feedEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, registry.Name)
	testenv.Stream(t, js, Name)
	relay := outbox.New(st, js, log, outbox.Options{})
	e := newEnv(t, outbox.Notifying(st, relay), WithFeedConfig(func(c *consumer.Config) {
		c.RetryDelays = []time.Duration{50 * time.Millisecond}
		c.AckWait = 5 * time.Second
	}), WithPolicy(Policy{SweepEvery: 20 * time.Millisecond}))
	testenv.Background(t, "relay", relay.Run)
	testenv.Background(t, "run", func(ctx context.Context) error { return e.s.Run(ctx, js) })
	return &feedEnv{env: e, js: js}
}

// publish sends one registry event for in at its version, as the
// registry's relay would, with a fresh message id: a re-sent event is a
// redelivery the stream does not drop.
func (e *feedEnv) publish(t *testing.T, subject string, in *registryv1.Institution) {
	t.Helper()
	testenv.PublishEvent(t, e.js, subject, in.GetId(), in.GetVersion(), in)
}

// view waits until the view of id is at version v.
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

var markerSeq atomic.Int64

// settle sends a registration of a fresh institution and waits for it: the
// feed handles messages in stream order, so everything sent before is
// handled by then.
func (e *feedEnv) settle(t *testing.T) {
	t.Helper()
	m := &registryv1.Institution{Id: fmt.Sprintf("01MARKER%018d", markerSeq.Add(1)), CreditCode: newOrg(), Version: 1, State: pendingSt}
	e.publish(t, registry.SubjectRegistered, m)
	e.view(t, m.GetId(), 1)
}

// eventChanges are the TALENT stream's events of one entity, as "type vN".
func (e *feedEnv) eventChanges(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, env := range testenv.StreamEnvelopes(t, e.js, events.StreamName(Name)) {
		if env.GetEntityId() == id {
			out = append(out, env.GetType()+" v"+strconv.FormatInt(env.GetEntityVersion(), 10))
		}
	}
	return out
}

// TestInstitutionFeed drives the view through a real JetStream: registry
// events in, talent events out. A suspension flags the host's upcoming
// published event, with its event, and the host then publishes nothing; the
// same suspension delivered again, or an older one after a newer, changes
// nothing; reinstatement clears the flag. The sweep closes registration at
// the deadline on its own.
func TestInstitutionFeed(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := startFeed(t, st)
		reg := &registryv1.Institution{Id: "01JINSTFEED00000000000001", CreditCode: newOrg(), NameZh: "楚江碳金融银行",
			Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK, State: pendingSt, Version: 1}
		at := func(v int64, state registryv1.InstitutionState) *registryv1.Institution {
			c := proto.CloneOf(reg)
			c.Version, c.State = v, state
			return c
		}
		e.publish(t, registry.SubjectRegistered, at(1, pendingSt))
		e.view(t, reg.GetId(), 1)
		_, err := e.s.CreateEvent(instCtx(reg.GetCreditCode()), &talentv1.CreateEventRequest{Event: validEvent(10)})
		wantCode(t, "a PENDING institution hosts", err, codes.FailedPrecondition)
		e.publish(t, registry.SubjectApproved, at(2, active))
		host := e.view(t, reg.GetId(), 2)
		ev := e.published(t, host)
		draft := e.createEvent(t, host)

		suspension := at(3, suspended)
		e.publish(t, registry.SubjectSuspended, suspension)
		e.view(t, reg.GetId(), 3)
		testenv.Eventually(t, 10*time.Second, func() bool { return e.readEvent(t, ev.GetId()).GetNeedsAttention() })
		_, err = e.s.PublishEvent(instCtx(reg.GetCreditCode()), &talentv1.PublishEventRequest{Id: draft.GetId()})
		wantCode(t, "publishing while suspended", err, codes.FailedPrecondition)

		// Again, and an older event after a newer one: nothing changes.
		e.publish(t, registry.SubjectSuspended, suspension)
		e.settle(t)
		if v := e.readEvent(t, ev.GetId()).GetVersion(); v != 3 {
			t.Errorf("a repeated suspension moved the event to v%d", v)
		}
		e.publish(t, registry.SubjectReinstated, at(4, active))
		e.view(t, reg.GetId(), 4)
		testenv.Eventually(t, 10*time.Second, func() bool { return !e.readEvent(t, ev.GetId()).GetNeedsAttention() })
		e.publish(t, registry.SubjectSuspended, suspension)
		e.settle(t)
		if got := e.readEvent(t, ev.GetId()); got.GetNeedsAttention() || got.GetVersion() != 4 {
			t.Errorf("an old suspension after the reinstatement: flagged %v, v%d", got.GetNeedsAttention(), got.GetVersion())
		}

		// The deadline passes: the sweep closes registration.
		e.clock.set(ev.GetRegistrationDeadline().AsTime())
		testenv.Eventually(t, 10*time.Second, func() bool { return e.readEvent(t, ev.GetId()).GetState() == eventClosed })

		want := []string{"talent.event.created v1", "talent.event.published v2", "talent.event.flagged v3", "talent.event.unflagged v4", "talent.event.closed v5"}
		testenv.Eventually(t, 10*time.Second, func() bool { return len(e.eventChanges(t, ev.GetId())) >= len(want) })
		if diff := cmp.Diff(want, e.eventChanges(t, ev.GetId())); diff != "" {
			t.Errorf("TALENT stream for the event (-want +got):\n%s", diff)
		}
		for _, env := range testenv.StreamEnvelopes(t, e.js, events.StreamName(Name)) {
			if env.GetEntityId() == ev.GetId() && env.GetEntityVersion() > 2 && env.GetActor().GetSubject() != events.System.Subject {
				t.Errorf("%s by %q; want the system", env.GetType(), env.GetActor().GetSubject())
			}
		}
	})
}
