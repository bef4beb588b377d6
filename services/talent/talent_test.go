package talent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

const (
	active    = registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
	suspended = registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED
	rejected  = registryv1.InstitutionState_INSTITUTION_STATE_REJECTED
	pendingSt = registryv1.InstitutionState_INSTITUTION_STATE_PENDING
)

// brief is a registration as the tests compare it.
type brief struct {
	Pos   int32
	State string
	Wait  int32
}

func briefs(rs []*talentv1.Registration) []brief {
	out := make([]brief, len(rs))
	for i, r := range rs {
		out[i] = brief{r.GetPosition(), key(r.GetState()), r.GetWaitlistPosition()}
	}
	return out
}

// TestWaitlistAndPromotion: seats go in order of arrival, then the
// waitlist; one person registers once whatever the spelling of their phone
// or e-mail; a cancelled seat goes to the first waitlisted at once, with
// its event; a person who cancelled may register again, at the end.
func TestWaitlistAndPromotion(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ev := e.published(t, nil, capacity(2))
		ent := newOrg()
		people := []*talentv1.Attendee{person(), person(), person(), person()}
		var regs []*talentv1.Registration
		for _, a := range people {
			regs = append(regs, e.register(t, entCtx(ent), ev.GetId(), a))
		}
		want := []brief{{1, "CONFIRMED", 0}, {2, "CONFIRMED", 0}, {3, "WAITLISTED", 1}, {4, "WAITLISTED", 2}}
		if diff := cmp.Diff(want, briefs(regs)); diff != "" {
			t.Fatalf("registrations as answered (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, briefs(e.registrations(t, ev.GetId()))); diff != "" {
			t.Fatalf("registrations as listed (-want +got):\n%s", diff)
		}

		// The same person again, spelled otherwise: refused.
		for name, a := range map[string]*talentv1.Attendee{
			"phone with country code": {Name: "某某", Organization: "x", Phone: "+86 " + people[0].GetPhone()},
			"e-mail in capitals":      {Name: "某某", Organization: "x", Email: strings.ToUpper(people[1].GetEmail())},
		} {
			_, err := e.s.RegisterForEvent(entCtx(ent), &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: a})
			wantCode(t, name, err, codes.AlreadyExists)
		}

		// The second seat is cancelled: the first waitlisted gets it.
		resp, err := e.s.CancelRegistration(entCtx(ent), &talentv1.CancelRegistrationRequest{Id: regs[1].GetId(), Reason: "出差"})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetPromoted(); got.GetId() != regs[2].GetId() || got.GetState() != regConfirmed || !got.GetPromoted() {
			t.Fatalf("promoted %v; want registration %s CONFIRMED and promoted", got, regs[2].GetId())
		}
		// Again: nothing changes, nobody else is promoted.
		again, err := e.s.CancelRegistration(entCtx(ent), &talentv1.CancelRegistrationRequest{Id: regs[1].GetId()})
		if err != nil || again.GetPromoted() != nil {
			t.Fatalf("cancelling again: promoted %v, %v; want nothing", again.GetPromoted(), err)
		}
		// A waitlisted registration cancelled frees no seat.
		if resp, err := e.s.CancelRegistration(entCtx(ent), &talentv1.CancelRegistrationRequest{Id: regs[3].GetId()}); err != nil || resp.GetPromoted() != nil {
			t.Fatalf("cancelling a waitlisted registration: promoted %v, %v", resp.GetPromoted(), err)
		}
		// The person who cancelled registers again, at the end of the line.
		back := e.register(t, entCtx(ent), ev.GetId(), people[1])
		if back.GetPosition() != 5 || back.GetState() != regWaitlisted || back.GetWaitlistPosition() != 1 {
			t.Fatalf("registering again: %v", briefs([]*talentv1.Registration{back}))
		}
		want = []brief{{1, "CONFIRMED", 0}, {2, "CANCELLED", 0}, {3, "CONFIRMED", 0}, {4, "CANCELLED", 0}, {5, "WAITLISTED", 1}}
		if diff := cmp.Diff(want, briefs(e.registrations(t, ev.GetId()))); diff != "" {
			t.Fatalf("after the cancellations (-want +got):\n%s", diff)
		}
		wantSeats := &talentv1.Seats{Taken: 2, Confirmed: 2, Waitlisted: 1, Cancelled: 2, Promoted: 1, Registrations: 5}
		if got := e.readEvent(t, ev.GetId()).GetSeats(); !proto.Equal(got, wantSeats) {
			t.Errorf("seats %v; want %v", got, wantSeats)
		}
		var subjects []string
		for _, p := range pendingEvents(t, st) {
			if strings.Contains(p.subject, ".registration.") {
				subjects = append(subjects, strings.TrimPrefix(p.subject, "carbondesk.talent.registration."))
			}
		}
		wantSubjects := []string{"confirmed", "confirmed", "waitlisted", "waitlisted", "cancelled", "promoted", "cancelled", "waitlisted"}
		if diff := cmp.Diff(wantSubjects, subjects); diff != "" {
			t.Errorf("registration events (-want +got):\n%s", diff)
		}
	})
}

// TestRegistrationCloses: before publication, at the deadline (and the
// sweep then closes the event), after CloseEvent, and after cancellation.
func TestRegistrationCloses(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	host := e.host(t, active)
	draft := e.createEvent(t, host)
	_, err := e.s.RegisterForEvent(instCtx(host.CreditCode), &talentv1.RegisterForEventRequest{EventId: draft.GetId(), Attendee: person()})
	wantCode(t, "the host registers for its draft", err, codes.FailedPrecondition)
	_, err = e.s.RegisterForEvent(entCtx(newOrg()), &talentv1.RegisterForEventRequest{EventId: draft.GetId(), Attendee: person()})
	wantCode(t, "another organisation registers for a draft", err, codes.NotFound)

	ev := e.published(t, host)
	closing := e.published(t, host)
	cancelled := e.published(t, host)
	if _, err := e.s.CloseEvent(staffCtx(t), &talentv1.CloseEventRequest{Id: closing.GetId(), Reason: "名额已满"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CancelEvent(staffCtx(t), &talentv1.CancelEventRequest{Id: cancelled.GetId(), Reason: "改期"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{closing.GetId(), cancelled.GetId()} {
		_, err := e.s.RegisterForEvent(entCtx(newOrg()), &talentv1.RegisterForEventRequest{EventId: id, Attendee: person()})
		wantCode(t, "registering for "+key(e.readEvent(t, id).GetState()), err, codes.FailedPrecondition)
	}

	e.register(t, entCtx(newOrg()), ev.GetId(), person())
	e.clock.set(ev.GetRegistrationDeadline().AsTime())
	_, err = e.s.RegisterForEvent(entCtx(newOrg()), &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: person()})
	wantCode(t, "registering at the deadline", err, codes.FailedPrecondition)
	if got := e.readEvent(t, ev.GetId()).GetState(); got != eventPublished {
		t.Fatalf("before the sweep the event is %s", got)
	}
	if err := e.s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := e.readEvent(t, ev.GetId())
	if got.GetState() != eventClosed || got.GetStateReason() == "" {
		t.Fatalf("after the sweep the event is %s (%q); want CLOSED with a reason", got.GetState(), got.GetStateReason())
	}
	if subj := pending(t, e.st); !slices.Contains(subj, SubjectEventClosed+" "+ev.GetId()+" v3") {
		t.Errorf("no closed event for %s in %v", ev.GetId(), subj)
	}
}

// TestCancelEventCancelsEveryRegistration: each live registration of a
// cancelled event is cancelled with its own event, across several
// batches; the people's keys are released; an event with attendance
// recorded is not cancelled.
func TestCancelEventCancelsEveryRegistration(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ev := e.published(t, nil, capacity(150))
		const n = 2*drainChunk + 50
		for range n {
			e.register(t, staffCtx(t), ev.GetId(), person())
		}
		resp, err := e.s.CancelEvent(staffCtx(t), &talentv1.CancelEventRequest{Id: ev.GetId(), Version: ev.GetVersion(), Reason: "讲师行程冲突"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetRegistrationsCancelled() != n || resp.GetEvent().GetState() != eventCancelled {
			t.Fatalf("cancelled %d registrations, event %s; want %d, CANCELLED", resp.GetRegistrationsCancelled(), resp.GetEvent().GetState(), n)
		}
		for _, r := range e.registrations(t, ev.GetId()) {
			if r.GetState() != regCancelled || !strings.Contains(r.GetStateReason(), "讲师行程冲突") {
				t.Fatalf("registration %d is %s (%q); want CANCELLED with the event's reason", r.GetPosition(), r.GetState(), r.GetStateReason())
			}
		}
		count := map[string]int{}
		for _, p := range pendingEvents(t, st) {
			count[p.subject]++
		}
		if count[SubjectRegistrationCancelled] != n || count[SubjectEventCancelled] != 1 {
			t.Errorf("events: %d registration.cancelled, %d event.cancelled; want %d and 1", count[SubjectRegistrationCancelled], count[SubjectEventCancelled], n)
		}
		page, err := st.List(t.Context(), kindClaim, store.Query{})
		if err != nil || len(page.Records) != 0 {
			t.Errorf("%d claims left after the cancellation (%v); want none", len(page.Records), err)
		}
		if page, _ := st.List(t.Context(), kindRoster, store.Query{Index: termDrain}); len(page.Records) != 0 {
			t.Errorf("the roster is still marked for draining")
		}

		// An event someone attended took place: it is not cancelled.
		held := e.published(t, nil)
		r := e.register(t, staffCtx(t), held.GetId(), person())
		e.clock.set(held.GetStartTime().AsTime())
		if _, err := e.s.CheckIn(staffCtx(t), &talentv1.CheckInRequest{Id: r.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = e.s.CancelEvent(staffCtx(t), &talentv1.CancelEventRequest{Id: held.GetId(), Reason: "x"})
		wantCode(t, "cancelling an event with attendance", err, codes.FailedPrecondition)
	})
}

// TestSweepFinishesACancellation: a crash between the batches of a
// cancellation leaves live registrations; the sweep cancels them.
func TestSweepFinishesACancellation(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	ev := e.published(t, nil)
	for range drainChunk + 5 {
		e.register(t, staffCtx(t), ev.GetId(), person())
	}
	// The cancellation's first batch only, as a crash would leave it.
	if _, err := e.s.mutate(staffCtx(t), ev.GetId(), func(t *tx) error { _, err := t.cancelEvent("停办"); return err }); err != nil {
		t.Fatal(err)
	}
	if got := e.readEvent(t, ev.GetId()).GetSeats(); got.GetConfirmed()+got.GetWaitlisted() != 5 {
		t.Fatalf("after the first batch %d live registrations, want 5", got.GetConfirmed()+got.GetWaitlisted())
	}
	if err := e.s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.readEvent(t, ev.GetId()).GetSeats(); got.GetConfirmed()+got.GetWaitlisted() != 0 || got.GetCancelled() != drainChunk+5 {
		t.Fatalf("after the sweep: %v; want every registration cancelled", got)
	}
}

// TestUpdateEvent: more seats promote the waitlist in order; fewer than
// taken, hours after attendance, the kind after publication and anything
// but text after the start are refused; a stale version is Aborted; fixed
// fields in the mask are InvalidArgument.
func TestUpdateEvent(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ev := e.published(t, nil, capacity(1))
		var regs []*talentv1.Registration
		for range 4 {
			regs = append(regs, e.register(t, staffCtx(t), ev.GetId(), person()))
		}
		update := func(version int64, mask []string, patch *talentv1.Event) (*talentv1.Event, error) {
			resp, err := e.s.UpdateEvent(staffCtx(t), &talentv1.UpdateEventRequest{Id: ev.GetId(), Version: version,
				Event: patch, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}})
			return resp.GetEvent(), err
		}
		got, err := update(ev.GetVersion(), []string{"capacity"}, &talentv1.Event{Capacity: 3})
		if err != nil {
			t.Fatal(err)
		}
		want := []brief{{1, "CONFIRMED", 0}, {2, "CONFIRMED", 0}, {3, "CONFIRMED", 0}, {4, "WAITLISTED", 1}}
		if diff := cmp.Diff(want, briefs(e.registrations(t, ev.GetId()))); diff != "" {
			t.Fatalf("after capacity 3 (-want +got):\n%s", diff)
		}
		if got.GetSeats().GetPromoted() != 2 {
			t.Errorf("promoted %d, want 2", got.GetSeats().GetPromoted())
		}
		_, err = update(ev.GetVersion(), []string{"title_en"}, &talentv1.Event{TitleEn: "stale"})
		wantCode(t, "a stale version", err, codes.Aborted)
		_, err = update(got.GetVersion(), []string{"capacity"}, &talentv1.Event{Capacity: 2})
		wantCode(t, "capacity below the seats taken", err, codes.FailedPrecondition)
		_, err = update(got.GetVersion(), []string{"kind"}, &talentv1.Event{Kind: talentv1.EventKind_EVENT_KIND_FORUM})
		wantCode(t, "kind of a published event", err, codes.FailedPrecondition)
		for _, path := range []string{"state", "host_institution_id", "seats", "version", "publish_time"} {
			_, err = update(got.GetVersion(), []string{path}, &talentv1.Event{})
			wantCode(t, "mask naming "+path, err, codes.InvalidArgument)
		}
		// A cleared deadline is the start.
		got, err = update(got.GetVersion(), []string{"registration_deadline"}, &talentv1.Event{})
		if err != nil || !proto.Equal(got.GetRegistrationDeadline(), got.GetStartTime()) {
			t.Fatalf("clearing the deadline: %v, deadline %v; want the start", err, got.GetRegistrationDeadline())
		}

		e.clock.set(ev.GetStartTime().AsTime())
		if _, err := e.s.CheckIn(staffCtx(t), &talentv1.CheckInRequest{Id: regs[0].GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = update(got.GetVersion(), []string{"training_hours"}, &talentv1.Event{TrainingHours: 4})
		wantCode(t, "hours after attendance", err, codes.FailedPrecondition)
		_, err = update(got.GetVersion(), []string{"end_time"}, &talentv1.Event{EndTime: timestamppb.New(ev.GetEndTime().AsTime().Add(time.Hour))})
		wantCode(t, "times after the start", err, codes.FailedPrecondition)
		if _, err := update(got.GetVersion(), []string{"venue"}, &talentv1.Event{Venue: "改至二楼报告厅"}); err != nil {
			t.Errorf("the venue after the start: %v", err)
		}
	})
}

// TestAttendance: check-in opens two hours before the start; it is
// idempotent, for CONFIRMED registrations only, the host's and staff's
// alone; after completion attendance is corrected, not checked in.
func TestAttendance(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	host := e.host(t, active)
	ev := e.published(t, host, capacity(1))
	ent := newOrg()
	seat := e.register(t, entCtx(ent), ev.GetId(), person())
	waiting := e.register(t, entCtx(ent), ev.GetId(), person())
	e.clock.set(ev.GetStartTime().AsTime().Add(-2*time.Hour - time.Minute))
	_, err := e.s.CheckIn(instCtx(host.CreditCode), &talentv1.CheckInRequest{Id: seat.GetId()})
	wantCode(t, "check-in before it opens", err, codes.FailedPrecondition)
	e.clock.add(2 * time.Minute)
	_, err = e.s.CheckIn(entCtx(ent), &talentv1.CheckInRequest{Id: seat.GetId()})
	wantCode(t, "the registrant checks in", err, codes.PermissionDenied)
	_, err = e.s.CheckIn(instCtx(newOrg()), &talentv1.CheckInRequest{Id: seat.GetId()})
	wantCode(t, "another institution checks in", err, codes.NotFound)
	_, err = e.s.CheckIn(instCtx(host.CreditCode), &talentv1.CheckInRequest{Id: waiting.GetId()})
	wantCode(t, "a waitlisted registration checks in", err, codes.FailedPrecondition)
	resp, err := e.s.CheckIn(instCtx(host.CreditCode), &talentv1.CheckInRequest{Id: seat.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetRegistration(); r.GetState() != regAttended || r.GetHoursCredited() != 8 || r.GetCheckInTime() == nil {
		t.Fatalf("checked in: %v", r)
	}
	again, err := e.s.CheckIn(instCtx(host.CreditCode), &talentv1.CheckInRequest{Id: seat.GetId()})
	if err != nil || again.GetRegistration().GetVersion() != resp.GetRegistration().GetVersion() {
		t.Fatalf("checking in twice: %v, version %d then %d; want no change", err, resp.GetRegistration().GetVersion(), again.GetRegistration().GetVersion())
	}
	if _, err := e.s.CompleteEvent(instCtx(host.CreditCode), &talentv1.CompleteEventRequest{Id: ev.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.CheckIn(instCtx(host.CreditCode), &talentv1.CheckInRequest{Id: seat.GetId()})
	if err != nil {
		t.Errorf("checking in an attended registration after completion changes nothing: %v", err)
	}
	_, err = e.s.CorrectAttendance(instCtx(host.CreditCode), &talentv1.CorrectAttendanceRequest{Id: seat.GetId(), Attended: false})
	wantCode(t, "a correction without a reason", err, codes.InvalidArgument)
	cr, err := e.s.CorrectAttendance(instCtx(host.CreditCode), &talentv1.CorrectAttendanceRequest{Id: seat.GetId(), Attended: false, Reason: "签到后提前离场"})
	if err != nil {
		t.Fatal(err)
	}
	if r := cr.GetRegistration(); r.GetState() != regConfirmed || r.GetHoursCredited() != 0 || r.GetStateReason() != "签到后提前离场" {
		t.Fatalf("after undoing: %v", r)
	}
	seats := e.readEvent(t, ev.GetId()).GetSeats()
	if seats.GetAttended() != 0 || seats.GetConfirmed() != 1 || seats.GetWaitlisted() != 1 {
		t.Errorf("seats after the correction: %v", seats)
	}
}

// TestEventTransitions: which actions apply in which state.
func TestEventTransitions(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	type action struct {
		name string
		call func(id string) error
	}
	ctx := staffCtx(t)
	publish := action{"publish", func(id string) error {
		_, err := e.s.PublishEvent(ctx, &talentv1.PublishEventRequest{Id: id})
		return err
	}}
	closeEv := action{"close", func(id string) error {
		_, err := e.s.CloseEvent(ctx, &talentv1.CloseEventRequest{Id: id})
		return err
	}}
	complete := action{"complete", func(id string) error {
		_, err := e.s.CompleteEvent(ctx, &talentv1.CompleteEventRequest{Id: id})
		return err
	}}
	cancel := action{"cancel", func(id string) error {
		_, err := e.s.CancelEvent(ctx, &talentv1.CancelEventRequest{Id: id, Reason: "改期"})
		return err
	}}
	// in builds an event in state (its start 10 days ahead; the clock is
	// moved to the check-in window for completions by the caller).
	in := func(state talentv1.EventState) string {
		ev := e.createEvent(t, nil, func(ev *talentv1.Event) {
			start := e.clock.Now().Add(time.Hour)
			ev.StartTime, ev.EndTime = timestamppb.New(start), timestamppb.New(start.Add(time.Hour))
			ev.RegistrationDeadline = ev.StartTime
		})
		steps := map[talentv1.EventState][]action{
			eventPublished: {publish}, eventClosed: {publish, closeEv}, eventCompleted: {publish, complete}, eventCancelled: {cancel},
		}[state]
		for _, a := range steps {
			if err := a.call(ev.GetId()); err != nil {
				t.Fatalf("setting up %s: %s: %v", state, a.name, err)
			}
		}
		return ev.GetId()
	}
	ok, bad := codes.OK, codes.FailedPrecondition
	for _, tt := range []struct {
		from talentv1.EventState
		want map[string]codes.Code
	}{
		{eventDraft, map[string]codes.Code{"publish": ok, "close": bad, "complete": bad, "cancel": ok}},
		{eventPublished, map[string]codes.Code{"publish": bad, "close": ok, "complete": ok, "cancel": ok}},
		{eventClosed, map[string]codes.Code{"publish": bad, "close": bad, "complete": ok, "cancel": ok}},
		{eventCompleted, map[string]codes.Code{"publish": bad, "close": bad, "complete": bad, "cancel": bad}},
		{eventCancelled, map[string]codes.Code{"publish": bad, "close": bad, "complete": bad, "cancel": bad}},
	} {
		for _, a := range []action{publish, closeEv, complete, cancel} {
			id := in(tt.from)
			wantCode(t, a.name+" a "+key(tt.from)+" event", a.call(id), tt.want[a.name])
		}
	}
}

// TestCompleteOpensWithCheckIn: an event is completed from when check-in
// opens, not before.
func TestCompleteOpensWithCheckIn(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	ev := e.published(t, nil)
	_, err := e.s.CompleteEvent(staffCtx(t), &talentv1.CompleteEventRequest{Id: ev.GetId()})
	wantCode(t, "completing ten days early", err, codes.FailedPrecondition)
	e.clock.set(ev.GetStartTime().AsTime().Add(-time.Hour))
	if _, err := e.s.CompleteEvent(staffCtx(t), &talentv1.CompleteEventRequest{Id: ev.GetId()}); err != nil {
		t.Fatalf("completing an hour before the start: %v", err)
	}
}

// TestEventAccess: a draft is its host's and staff's; a published event is
// everyone's to read and its host's to change; district events are
// staff's; an institution hosts only itself, and only while ACTIVE.
func TestEventAccess(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	host := e.host(t, active)
	other := e.host(t, active)
	draft := e.createEvent(t, host)
	pub := e.published(t, host)
	district := e.createEvent(t, nil)
	hostCtx, otherCtx, ent := instCtx(host.CreditCode), instCtx(other.CreditCode), entCtx(newOrg())

	for _, tt := range []struct {
		who  string
		ctx  context.Context
		id   string
		want codes.Code
	}{
		{"the host reads its draft", hostCtx, draft.GetId(), codes.OK},
		{"another institution reads the draft", otherCtx, draft.GetId(), codes.NotFound},
		{"an enterprise reads the draft", ent, draft.GetId(), codes.NotFound},
		{"an enterprise reads the published event", ent, pub.GetId(), codes.OK},
		{"the host reads the district's draft", hostCtx, district.GetId(), codes.NotFound},
	} {
		_, err := e.s.GetEvent(tt.ctx, &talentv1.GetEventRequest{Id: tt.id})
		wantCode(t, tt.who, err, tt.want)
	}
	_, err := e.s.PublishEvent(otherCtx, &talentv1.PublishEventRequest{Id: draft.GetId()})
	wantCode(t, "another institution publishes the draft", err, codes.NotFound)
	_, err = e.s.CancelEvent(otherCtx, &talentv1.CancelEventRequest{Id: pub.GetId(), Reason: "x"})
	wantCode(t, "another institution cancels a published event", err, codes.NotFound)
	_, err = e.s.PublishEvent(hostCtx, &talentv1.PublishEventRequest{Id: district.GetId()})
	wantCode(t, "an institution publishes a district event", err, codes.NotFound)

	// Lists: others see the published event, never the draft.
	list := func(ctx context.Context, req *talentv1.ListEventsRequest) []string {
		t.Helper()
		resp, err := e.s.ListEvents(ctx, req)
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		var ids []string
		for _, ev := range resp.GetEvents() {
			ids = append(ids, ev.GetId())
		}
		return ids
	}
	if got := list(hostCtx, &talentv1.ListEventsRequest{HostInstitutionId: host.ID}); !slices.Equal(got, []string{draft.GetId(), pub.GetId()}) {
		t.Errorf("the host lists %v", got)
	}
	for name, ctx := range map[string]context.Context{"other": otherCtx, "enterprise": ent} {
		if got := list(ctx, &talentv1.ListEventsRequest{HostInstitutionId: host.ID}); !slices.Equal(got, []string{pub.GetId()}) {
			t.Errorf("%s lists %v; want the published event only", name, got)
		}
	}
	if got := list(staffCtx(t), &talentv1.ListEventsRequest{DistrictHosted: true}); !slices.Equal(got, []string{district.GetId()}) {
		t.Errorf("staff list the district's events: %v", got)
	}

	// Hosting: itself only, and ACTIVE.
	ev := validEvent(10)
	ev.HostInstitutionId = other.ID
	_, err = e.s.CreateEvent(hostCtx, &talentv1.CreateEventRequest{Event: ev})
	wantCode(t, "an institution hosts for another", err, codes.PermissionDenied)
	ev.HostInstitutionId = ""
	if resp, err := e.s.CreateEvent(hostCtx, &talentv1.CreateEventRequest{Event: ev}); err != nil || resp.GetEvent().GetHostInstitutionId() != host.ID {
		t.Errorf("an institution creates without naming the host: %v, host %q", err, resp.GetEvent().GetHostInstitutionId())
	}
	pending := e.host(t, pendingSt)
	_, err = e.s.CreateEvent(instCtx(pending.CreditCode), &talentv1.CreateEventRequest{Event: ev})
	wantCode(t, "a PENDING institution hosts", err, codes.FailedPrecondition)
	_, err = e.s.CreateEvent(instCtx(newOrg()), &talentv1.CreateEventRequest{Event: ev})
	wantCode(t, "an institution the view does not know hosts", err, codes.FailedPrecondition)
}

// TestSuspendedHost: the upcoming PUBLISHED and CLOSED events of a host the
// registry suspends are flagged for staff, each with its event, and stay
// open; drafts and events under way are not flagged; the suspended host
// publishes nothing; reinstatement clears the flags.
func TestSuspendedHost(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		host := e.host(t, active)
		pub := e.published(t, host)
		closed := e.published(t, host)
		if _, err := e.s.CloseEvent(staffCtx(t), &talentv1.CloseEventRequest{Id: closed.GetId()}); err != nil {
			t.Fatal(err)
		}
		draft := e.createEvent(t, host)
		soon := e.published(t, host, func(ev *talentv1.Event) {
			start := t0.Add(3 * time.Hour)
			ev.StartTime, ev.EndTime, ev.RegistrationDeadline = timestamppb.New(start), timestamppb.New(start.Add(time.Hour)), timestamppb.New(start)
		})
		e.clock.set(soon.GetStartTime().AsTime().Add(time.Minute)) // under way
		otherHost := e.host(t, active)
		unrelated := e.published(t, otherHost)

		e.setHost(t, host, suspended)
		flagged := func() []string {
			resp, err := e.s.ListEvents(staffCtx(t), &talentv1.ListEventsRequest{NeedsAttention: true})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ev := range resp.GetEvents() {
				ids = append(ids, ev.GetId())
			}
			return ids
		}
		if got, want := flagged(), []string{pub.GetId(), closed.GetId()}; !slices.Equal(got, want) {
			t.Fatalf("flagged %v; want %v (not the draft %s, the event under way %s, nor %s)", got, want, draft.GetId(), soon.GetId(), unrelated.GetId())
		}
		if got := e.readEvent(t, pub.GetId()); got.GetState() != eventPublished || !strings.Contains(got.GetAttentionReason(), "SUSPENDED") {
			t.Errorf("the flagged event is %s, %q", got.GetState(), got.GetAttentionReason())
		}
		// Flagging twice (a redelivery) changes nothing.
		before := e.readEvent(t, pub.GetId()).GetVersion()
		if err := e.s.applyInstitution(t.Context(), host); err != nil {
			t.Fatal(err)
		}
		if after := e.readEvent(t, pub.GetId()).GetVersion(); after != before {
			t.Errorf("re-applying the suspension moved the event from v%d to v%d", before, after)
		}
		// Registration stays open; publishing and hosting do not.
		e.register(t, entCtx(newOrg()), pub.GetId(), person())
		_, err := e.s.PublishEvent(instCtx(host.CreditCode), &talentv1.PublishEventRequest{Id: draft.GetId()})
		wantCode(t, "the suspended host publishes", err, codes.FailedPrecondition)
		_, err = e.s.CreateEvent(instCtx(host.CreditCode), &talentv1.CreateEventRequest{Event: validEvent(20)})
		wantCode(t, "the suspended host creates", err, codes.FailedPrecondition)

		e.setHost(t, host, active)
		if got := flagged(); len(got) != 0 {
			t.Fatalf("after reinstatement still flagged: %v", got)
		}
		count := map[string]int{}
		for _, p := range pendingEvents(t, st) {
			count[p.subject]++
		}
		if count[SubjectEventFlagged] != 2 || count[SubjectEventUnflagged] != 2 {
			t.Errorf("%d flagged and %d unflagged events; want 2 and 2", count[SubjectEventFlagged], count[SubjectEventUnflagged])
		}
	})
}

// TestPublishFence: a publish that read its host ACTIVE does not commit
// once the view moved on; run again, it sees the suspension.
func TestPublishFence(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	host := e.host(t, active)
	draft := e.createEvent(t, host)
	attempts := 0
	_, err := e.s.mutate(staffCtx(t), draft.GetId(), func(tx *tx) error {
		attempts++
		in, err := e.s.institution(tx.ctx, host.ID)
		if err != nil {
			return err
		}
		if !in.Active() { // what PublishEvent checks
			return errs.New(ErrHostNotActive, "host %s is %s", in.ID, key(in.State))
		}
		fence, err := in.Put(kindInstitution)
		if err != nil {
			return err
		}
		tx.puts = append(tx.puts, fence)
		if attempts == 1 { // the suspension lands between the read and the commit
			e.setHost(t, host, suspended)
		}
		return tx.publish()
	})
	wantCode(t, "a publish racing a suspension", err, codes.FailedPrecondition)
	if attempts != 2 {
		t.Errorf("the publish ran %d times; want 2 (the fence failed the first)", attempts)
	}
	if got := e.readEvent(t, draft.GetId()).GetState(); got != eventDraft {
		t.Fatalf("the event is %s", got)
	}
}

// TestValidation: bad requests name their fields.
func TestValidation(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	for _, tt := range []struct {
		name string
		mod  func(*talentv1.Event)
		want []string
	}{
		{"no Chinese title", func(ev *talentv1.Event) { ev.TitleZh = "Training" }, []string{"event.title_zh"}},
		{"no kind", func(ev *talentv1.Event) { ev.Kind = 0 }, []string{"event.kind"}},
		{"end before start", func(ev *talentv1.Event) { ev.EndTime = timestamppb.New(ev.GetStartTime().AsTime().Add(-time.Hour)) }, []string{"event.end_time"}},
		{"deadline after start", func(ev *talentv1.Event) {
			ev.RegistrationDeadline = timestamppb.New(ev.GetStartTime().AsTime().Add(time.Hour))
		}, []string{"event.registration_deadline"}},
		{"in the past", func(ev *talentv1.Event) {
			ev.StartTime, ev.EndTime = timestamppb.New(t0.Add(-time.Hour)), timestamppb.New(t0.Add(time.Hour))
			ev.RegistrationDeadline = nil
		}, []string{"event.start_time", "event.registration_deadline"}},
		{"capacity", func(ev *talentv1.Event) { ev.Capacity = 0 }, []string{"event.capacity"}},
		{"topics", func(ev *talentv1.Event) {
			ev.Topics.JobTypes = []talentv1.JobType{1, 1, 9}
		}, []string{"event.topics.job_types[1]", "event.topics.job_types[2]"}},
		{"hours", func(ev *talentv1.Event) { ev.TrainingHours = 201 }, []string{"event.training_hours"}},
		{"venue", func(ev *talentv1.Event) { ev.Venue = " " }, []string{"event.venue"}},
	} {
		ev := validEvent(10)
		tt.mod(ev)
		_, err := e.s.CreateEvent(staffCtx(t), &talentv1.CreateEventRequest{Event: ev})
		if got := violationFields(err); !slices.Equal(got, tt.want) {
			t.Errorf("%s: violations %v (%v); want %v", tt.name, got, err, tt.want)
		}
	}
	ev := e.published(t, nil)
	for _, tt := range []struct {
		name string
		a    *talentv1.Attendee
		want []string
	}{
		{"nothing", &talentv1.Attendee{}, []string{"attendee.name", "attendee.organization", "attendee.phone"}},
		{"bad phone", &talentv1.Attendee{Name: "王", Organization: "x", Phone: "call me"}, []string{"attendee.phone"}},
		{"bad e-mail", &talentv1.Attendee{Name: "王", Organization: "x", Email: "wang@"}, []string{"attendee.email"}},
		{"someone else's talent", &talentv1.Attendee{TalentId: e.newTalent(t, newOrg()).GetId()}, []string{"attendee.talent_id"}},
	} {
		_, err := e.s.RegisterForEvent(entCtx(newOrg()), &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: tt.a})
		if got := violationFields(err); !slices.Equal(got, tt.want) {
			t.Errorf("%s: violations %v (%v); want %v", tt.name, got, err, tt.want)
		}
	}
}
