package talent

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Subjects of the talent service's events, carbondesk.talent.<entity>.<change>.
// An event's payload is the entity's new state (a talentv1.Event, a
// talentv1.Registration or a talentv1.Talent) in the platform's envelope,
// with the entity's version. They land in the TALENT stream
// (events.StreamConfig(Name, replicas)).
//
// An event payload carries the seat counts when it was written. A
// registration payload carries the attendee's contact in full (the stream
// is internal; see the package doc) and, when WAITLISTED on arrival, its
// place in the waitlist. A talent's hours change with its attendance, so a
// talent's version also moves on hours_credited and hours_debited.
const (
	SubjectEventCreated   = events.SubjectPrefix + Name + ".event.created"
	SubjectEventUpdated   = events.SubjectPrefix + Name + ".event.updated"
	SubjectEventPublished = events.SubjectPrefix + Name + ".event.published"
	SubjectEventClosed    = events.SubjectPrefix + Name + ".event.closed"
	SubjectEventCompleted = events.SubjectPrefix + Name + ".event.completed"
	SubjectEventCancelled = events.SubjectPrefix + Name + ".event.cancelled"
	// SubjectEventFlagged: staff should look at the event (its host was
	// suspended or rejected by the registry).
	SubjectEventFlagged = events.SubjectPrefix + Name + ".event.flagged"
	// SubjectEventUnflagged: the host is ACTIVE again; the flag is cleared.
	SubjectEventUnflagged = events.SubjectPrefix + Name + ".event.unflagged"

	SubjectRegistrationConfirmed  = events.SubjectPrefix + Name + ".registration.confirmed"
	SubjectRegistrationWaitlisted = events.SubjectPrefix + Name + ".registration.waitlisted"
	// SubjectRegistrationPromoted: a WAITLISTED registration got a seat.
	SubjectRegistrationPromoted = events.SubjectPrefix + Name + ".registration.promoted"
	// SubjectRegistrationCancelled: by the registrant, the host or staff,
	// or because the event was cancelled (state_reason says which).
	SubjectRegistrationCancelled = events.SubjectPrefix + Name + ".registration.cancelled"
	// SubjectRegistrationAttended: checked in, or attendance recorded by a
	// correction.
	SubjectRegistrationAttended = events.SubjectPrefix + Name + ".registration.attended"
	// SubjectRegistrationAttendanceUndone: a correction says the person did
	// not attend after all.
	SubjectRegistrationAttendanceUndone = events.SubjectPrefix + Name + ".registration.attendance_undone"

	SubjectTalentCreated = events.SubjectPrefix + Name + ".talent.created"
	SubjectTalentUpdated = events.SubjectPrefix + Name + ".talent.updated"
	// SubjectTalentHoursCredited and SubjectTalentHoursDebited: the
	// profile's hours ledger changed with an attendance.
	SubjectTalentHoursCredited = events.SubjectPrefix + Name + ".talent.hours_credited"
	SubjectTalentHoursDebited  = events.SubjectPrefix + Name + ".talent.hours_debited"
)

// SubjectAll matches every talent event.
const SubjectAll = events.SubjectPrefix + Name + ".>"

// event builds the outbox entry of one change for the same batch.
func event(actor events.Actor, subject, id string, version int64, msg proto.Message, now time.Time) (store.Event, error) {
	ev, err := events.New(subject, id, version, actor, now, msg)
	if err != nil {
		return store.Event{}, fmt.Errorf("talent: event %s: %w", subject, err)
	}
	return ev, nil
}
