package talent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// The rules of an event and its registrations, as methods of the change
// (tx) that applies them. Each checks the state it finds, changes the
// messages in place, keeps the roster's counts, and records what it touched
// with its event's subject; tx.commit writes it all in one batch.

// drainChunk bounds the registrations one batch of an event's cancellation
// cancels; the rest follow in further batches (see drain).
const drainChunk = 100

func rfc3339(ts *timestamppb.Timestamp) string { return ts.AsTime().UTC().Format(time.RFC3339) }

// eventMoves is the event state machine: the states each action moves from.
var eventMoves = map[talentv1.EventState][]talentv1.EventState{
	eventPublished: {eventDraft},
	eventClosed:    {eventPublished},
	eventCompleted: {eventPublished, eventClosed},
	eventCancelled: {eventDraft, eventPublished, eventClosed},
}

var eventSubjects = map[talentv1.EventState]string{
	eventPublished: SubjectEventPublished,
	eventClosed:    SubjectEventClosed,
	eventCompleted: SubjectEventCompleted,
	eventCancelled: SubjectEventCancelled,
}

// move changes the event's state after checking the state machine.
func (t *tx) move(to talentv1.EventState, reason string) error {
	from := eventMoves[to]
	if !slices.Contains(from, t.ev.GetState()) {
		names := make([]string, len(from))
		for i, s := range from {
			names[i] = key(s)
		}
		return errs.New(ErrInvalidTransition, "event %s is %s; only a %s event can become %s", t.ev.GetId(), key(t.ev.GetState()), strings.Join(names, " or "), key(to))
	}
	t.ev.State = to
	t.ev.StateReason = strings.TrimSpace(reason)
	if to == eventCompleted || to == eventCancelled {
		// An event that ended needs no one's attention any more.
		t.ev.NeedsAttention, t.ev.AttentionReason = false, ""
	}
	t.touchEvent(eventSubjects[to])
	return nil
}

// publish opens a DRAFT event for registration; its times must still lie
// ahead. The host's state is the caller's to check (institutions.go).
func (t *tx) publish() error {
	e := t.ev
	switch {
	case e.GetState() != eventDraft:
		return t.move(eventPublished, "")
	case !t.now.Before(e.GetStartTime().AsTime()):
		return errs.New(ErrInvalidTransition, "event %s starts at %s, not in the future; move it with UpdateEvent first", e.GetId(), rfc3339(e.GetStartTime()))
	case !t.now.Before(e.GetRegistrationDeadline().AsTime()):
		return errs.New(ErrInvalidTransition, "event %s's registration deadline %s has passed; move it with UpdateEvent first", e.GetId(), rfc3339(e.GetRegistrationDeadline()))
	}
	if e.PublishTime == nil {
		e.PublishTime = timestamppb.New(t.now)
	}
	return t.move(eventPublished, "")
}

// checkInOpen: check-in (and completion) opens CheckInOpens before the start.
func (t *tx) checkInOpen(what string) error {
	opens := t.ev.GetStartTime().AsTime().Add(-t.s.cfg.CheckInOpens)
	if t.now.Before(opens) {
		return errs.New(ErrInvalidTransition, "event %s starts at %s; %s opens at %s", t.ev.GetId(), rfc3339(t.ev.GetStartTime()), what, opens.UTC().Format(time.RFC3339))
	}
	return nil
}

// complete marks the event as held, once check-in has opened.
func (t *tx) complete() error {
	if slices.Contains(eventMoves[eventCompleted], t.ev.GetState()) {
		if err := t.checkInOpen("completing it"); err != nil {
			return err
		}
	}
	return t.move(eventCompleted, "")
}

// cancelEvent cancels an event that nobody has attended yet, and the first
// chunk of its live registrations; drain cancels the rest.
func (t *tx) cancelEvent(reason string) (int, error) {
	if t.ros.Attended > 0 && slices.Contains(eventMoves[eventCancelled], t.ev.GetState()) {
		return 0, errs.New(ErrInvalidTransition, "event %s has %d attendees recorded: it took place; complete it instead, or correct the attendance first", t.ev.GetId(), t.ros.Attended)
	}
	if err := t.move(eventCancelled, reason); err != nil {
		return 0, err
	}
	return t.drain(drainChunk)
}

// drain cancels up to limit live registrations of a CANCELLED event, each
// with its own event, and returns how many it cancelled.
func (t *tx) drain(limit int) (int, error) {
	if t.ev.GetState() != eventCancelled {
		return 0, nil
	}
	reason := "the event was cancelled"
	if r := t.ev.GetStateReason(); r != "" {
		reason += ": " + r
	}
	n := 0
	for _, st := range []talentv1.RegistrationState{regConfirmed, regWaitlisted} {
		if n == limit {
			break
		}
		// The index is read as committed: one page per state, the rest in
		// the next batch.
		page, err := t.s.st.List(t.ctx, kindRegistration, store.Query{Index: evStateTerm(t.ev.GetId(), st), Limit: limit - n})
		if err != nil {
			return n, fmt.Errorf("talent: registrations of %s: %w", t.ev.GetId(), err)
		}
		for _, rec := range page.Records {
			r, err := t.registration(rec.ID)
			if err != nil {
				return n, err
			}
			if r.GetState() != st {
				continue // the index moved after the roster was read; the commit fails and runs again
			}
			t.cancelOne(r, reason)
			n++
		}
	}
	return n, nil
}

// cancelOne cancels a live registration, releasing its keys; it frees a
// seat but fills none (the caller decides).
func (t *tx) cancelOne(r *talentv1.Registration, reason string) {
	switch r.GetState() {
	case regConfirmed:
		t.ros.Confirmed--
	case regWaitlisted:
		t.ros.Waitlisted--
	}
	t.ros.Cancelled++
	r.State = regCancelled
	r.StateReason = reason
	r.WaitlistPosition = 0
	t.release(r)
	t.touchRegistration(r, SubjectRegistrationCancelled)
}

// registrationOpen says why the event takes no registration now, if so.
func (t *tx) registrationOpen() error {
	e := t.ev
	switch {
	case e.GetState() == eventDraft:
		return errs.New(ErrRegistrationClosed, "event %s is not published yet; registration opens when it is", e.GetId())
	case e.GetState() == eventCancelled:
		return errs.New(ErrRegistrationClosed, "event %s was cancelled", e.GetId())
	case e.GetState() != eventPublished:
		return errs.New(ErrRegistrationClosed, "registration for event %s is closed (the event is %s)", e.GetId(), key(e.GetState()))
	case !t.now.Before(e.GetRegistrationDeadline().AsTime()):
		return errs.New(ErrRegistrationClosed, "registration for event %s closed at %s", e.GetId(), rfc3339(e.GetRegistrationDeadline()))
	case !t.now.Before(e.GetStartTime().AsTime()):
		return errs.New(ErrRegistrationClosed, "event %s started at %s", e.GetId(), rfc3339(e.GetStartTime()))
	}
	return nil
}

// register gives a person the next position: CONFIRMED while a seat is
// free, WAITLISTED after. The person's keys are claimed in the same batch.
func (t *tx) register(a *talentv1.Attendee, registrantOrg, registrant string) (*talentv1.Registration, error) {
	if err := t.registrationOpen(); err != nil {
		return nil, err
	}
	if t.ros.Next >= maxPosition {
		return nil, errs.New(ErrRegistrationClosed, "event %s has taken %d registrations, the most one event takes", t.ev.GetId(), maxPosition)
	}
	t.ros.Next++
	r := &talentv1.Registration{
		Id:            registrationID(t.ev.GetId(), t.ros.Next),
		EventId:       t.ev.GetId(),
		Position:      t.ros.Next,
		Attendee:      a,
		RegistrantOrg: registrantOrg,
		Registrant:    registrant,
		CreateTime:    timestamppb.New(t.now),
	}
	subject := SubjectRegistrationConfirmed
	if t.ros.taken() < t.ev.GetCapacity() {
		r.State = regConfirmed
		t.ros.Confirmed++
	} else {
		r.State = regWaitlisted
		t.ros.Waitlisted++
		r.WaitlistPosition = t.ros.Waitlisted // the end of the line
		subject = SubjectRegistrationWaitlisted
	}
	for _, k := range personKeys(a) {
		t.claim(k, r.GetId())
	}
	t.touchRegistration(r, subject)
	return r, nil
}

// cancelRegistration cancels a CONFIRMED or WAITLISTED registration before
// the event starts; a freed seat goes to the first WAITLISTED registration.
// Cancelling a cancelled registration changes nothing.
func (t *tx) cancelRegistration(r *talentv1.Registration, reason string) ([]*talentv1.Registration, error) {
	switch r.GetState() {
	case regCancelled:
		return nil, nil
	case regAttended:
		return nil, errs.New(ErrInvalidTransition, "registration %s is ATTENDED; correct the attendance instead of cancelling", r.GetId())
	}
	switch e := t.ev; {
	case e.GetState() != eventPublished && e.GetState() != eventClosed:
		return nil, errs.New(ErrInvalidTransition, "event %s is %s; its registrations no longer change", e.GetId(), key(e.GetState()))
	case !t.now.Before(e.GetStartTime().AsTime()):
		return nil, errs.New(ErrInvalidTransition, "event %s started at %s; a registration is cancelled before the event (record a no-show by leaving it unchecked)", e.GetId(), rfc3339(e.GetStartTime()))
	}
	if reason == "" {
		reason = "cancelled by " + t.actor.Subject
	}
	t.cancelOne(r, reason)
	return t.fillSeats()
}

// fillSeats promotes WAITLISTED registrations, first come first served,
// into the seats free before the event starts.
func (t *tx) fillSeats() ([]*talentv1.Registration, error) {
	var promoted []*talentv1.Registration
	for t.ros.taken() < t.ev.GetCapacity() && t.ros.Waitlisted > 0 && t.now.Before(t.ev.GetStartTime().AsTime()) {
		w, err := t.nextWaitlisted()
		if err != nil {
			return nil, err
		}
		if w == nil {
			return nil, fmt.Errorf("talent: event %s counts %d WAITLISTED registrations but its waitlist index is empty", t.ev.GetId(), t.ros.Waitlisted)
		}
		w.State = regConfirmed
		w.Promoted = true
		w.PromoteTime = timestamppb.New(t.now)
		w.WaitlistPosition = 0
		t.ros.Waitlisted--
		t.ros.Confirmed++
		t.ros.Promoted++
		t.touchRegistration(w, SubjectRegistrationPromoted)
		promoted = append(promoted, w)
	}
	return promoted, nil
}

// checkIn records a CONFIRMED attendee as ATTENDED and credits the hours.
// Checking in an ATTENDED registration again changes nothing.
func (t *tx) checkIn(r *talentv1.Registration) error {
	if r.GetState() == regAttended {
		return nil
	}
	if s := t.ev.GetState(); s != eventPublished && s != eventClosed {
		hint := ""
		if s == eventCompleted {
			hint = "; record a late arrival with CorrectAttendance"
		}
		return errs.New(ErrInvalidTransition, "event %s is %s; check-in is for PUBLISHED or CLOSED events%s", t.ev.GetId(), key(s), hint)
	}
	if err := t.checkInOpen("check-in"); err != nil {
		return err
	}
	return t.attend(r, "")
}

// attend moves a CONFIRMED registration to ATTENDED and credits its hours.
func (t *tx) attend(r *talentv1.Registration, reason string) error {
	if r.GetState() != regConfirmed {
		return errs.New(ErrInvalidTransition, "registration %s is %s; only a CONFIRMED registration holds a seat to attend", r.GetId(), key(r.GetState()))
	}
	r.State = regAttended
	r.CheckInTime = timestamppb.New(t.now)
	r.CheckedInBy = t.actor.Subject
	r.StateReason = reason
	t.ros.Confirmed--
	t.ros.Attended++
	t.touchRegistration(r, SubjectRegistrationAttended)
	return t.credit(r)
}

// correct records attendance after the fact (attended) or undoes it, with
// a reason, once check-in has opened; the hours ledger follows.
func (t *tx) correct(r *talentv1.Registration, attended bool, reason string) error {
	if s := t.ev.GetState(); s != eventPublished && s != eventClosed && s != eventCompleted {
		return errs.New(ErrInvalidTransition, "event %s is %s; attendance is recorded for PUBLISHED, CLOSED or COMPLETED events", t.ev.GetId(), key(s))
	}
	if err := t.checkInOpen("recording attendance"); err != nil {
		return err
	}
	if attended {
		if r.GetState() == regAttended {
			return nil
		}
		return t.attend(r, reason)
	}
	if r.GetState() != regAttended {
		if r.GetState() == regConfirmed {
			return nil // not recorded as attending: nothing to undo
		}
		return errs.New(ErrInvalidTransition, "registration %s is %s; only an ATTENDED registration's attendance is undone", r.GetId(), key(r.GetState()))
	}
	r.State = regConfirmed
	r.CheckInTime = nil
	r.CheckedInBy = ""
	r.StateReason = reason
	t.ros.Attended--
	t.ros.Confirmed++
	t.touchRegistration(r, SubjectRegistrationAttendanceUndone)
	return t.debit(r)
}

// credit writes the ledger entry of an attendance and adds its hours to the
// linked talent profile.
func (t *tx) credit(r *talentv1.Registration) error {
	hours := t.ev.GetTrainingHours()
	r.HoursCredited = hours
	id := r.GetAttendee().GetTalentId()
	if id == "" {
		return nil
	}
	p, err := t.talent(id)
	if errors.Is(err, errs.ErrNotFound) {
		return nil // never happens: profiles are not deleted
	}
	if err != nil {
		return err
	}
	entry := &talentv1.HoursEntry{
		RegistrationId: r.GetId(),
		EventId:        t.ev.GetId(),
		EventTitleZh:   t.ev.GetTitleZh(),
		EventKind:      t.ev.GetKind(),
		Topics:         proto.CloneOf(t.ev.GetTopics()),
		Hours:          hours,
		CreditTime:     timestamppb.New(t.now),
		EventStartTime: t.ev.GetStartTime(),
	}
	data, err := proto.Marshal(entry)
	if err != nil {
		return fmt.Errorf("talent: marshal hours entry: %w", err)
	}
	t.puts = append(t.puts, store.Put{Kind: kindHours, ID: r.GetId(), Expect: store.MustNotExist, Data: data, Index: []string{termTalent + id}})
	if hours > 0 {
		p.TotalHours += int64(hours)
		t.touchTalent(p, SubjectTalentHoursCredited)
	}
	return nil
}

// debit removes an attendance's ledger entry and its hours.
func (t *tx) debit(r *talentv1.Registration) error {
	hours := r.GetHoursCredited()
	r.HoursCredited = 0
	id := r.GetAttendee().GetTalentId()
	if id == "" {
		return nil
	}
	t.puts = append(t.puts, store.Put{Kind: kindHours, ID: r.GetId(), Expect: store.AnyVersion, Delete: true})
	if hours == 0 {
		return nil
	}
	p, err := t.talent(id)
	if errors.Is(err, errs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p.TotalHours -= int64(hours)
	t.touchTalent(p, SubjectTalentHoursDebited)
	return nil
}

// flag marks the event for staff, with why.
func (t *tx) flag(reason string) {
	if t.ev.GetNeedsAttention() && t.ev.GetAttentionReason() == reason {
		return
	}
	t.ev.NeedsAttention, t.ev.AttentionReason = true, reason
	t.touchEvent(SubjectEventFlagged)
}

// unflag clears the flag.
func (t *tx) unflag() {
	if !t.ev.GetNeedsAttention() {
		return
	}
	t.ev.NeedsAttention, t.ev.AttentionReason = false, ""
	t.touchEvent(SubjectEventUnflagged)
}
