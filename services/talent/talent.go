// Package talent runs the district's carbon-finance talent base: events
// (trainings, salons, forums, certification exams, product roadshows,
// bank–enterprise matchmaking fairs, policy briefings) hosted by the
// district or an ACTIVE institution; registrations with a waitlist in order
// of arrival; attendance at the door; and talent profiles with a ledger of
// the training hours their attended events credited.
//
// Files: this one holds the policy, the states and the error kinds; rules.go
// the rules of an event and its registrations (publish, close, complete,
// cancel; register, cancel and promote, check in, correct, credit hours);
// tx.go the write path every change to an event goes through (the
// per-event lane and the optimistic batch); store.go persistence through
// store.Store;
// events.go the subjects; validate.go request validation; grpc.go the
// TalentService server for events and registrations and the converters,
// masking included; talents.go the talent profiles and hours ledger;
// stats.go GetEventStats; institutions.go the view of registry institutions
// and what a suspended host means; sweep.go Run, the deadline sweep and the
// institution feed; seeds.go the demo season.
//
// As in matching, the stored form of events, registrations and talents is
// their proto message: one transport, one store, and the rules read and
// write the messages directly.
//
// # Seats, the waitlist and promotion
//
// Every event has a roster record beside it (kind "roster", same id): the
// last arrival position issued and the counts of CONFIRMED, ATTENDED,
// WAITLISTED, CANCELLED and promoted registrations. EVERY change to an event
// or to any of its registrations rewrites the roster under a version check
// in the same atomic batch, so the roster's version fences the whole event:
// two changes racing on one event can never both commit, on either store
// and across processes. A change reads the roster first and everything else
// after, so what it read is consistent whenever its batch commits.
//
// A registration takes position roster.next+1. It is CONFIRMED when a seat
// is free (CONFIRMED + ATTENDED < capacity), else WAITLISTED. The
// registration's id is "<event id>-<position, 6 digits>", so the store's id
// order is the order of arrival and the waitlist is an index scanned from
// the front. A seat freed before the event starts (a cancellation, more
// capacity) goes at once, in the same batch, to the first WAITLISTED
// registration: exactly one promotion per freed seat, because the batch
// that frees the seat is the batch that fills it, and a second commit from
// the same read fails its roster check. Invariant: a waitlist exists only
// while every seat is taken.
//
// One person registers once per event: the batch claims the person's keys
// (talent id, phone digits, lower-cased e-mail; see contact.PhoneKey) as
// records written with MustNotExist; a taken key answers AlreadyExists.
// Cancelling releases the keys, so a person may register again (at the end
// of the line).
//
// Within one process, changes to one event wait their turn in a lane (a
// token per event, taken in arrival order), so a burst of registrations
// commits one after another without conflicts instead of retrying in a
// storm; across processes the roster's version check decides, and the loser
// re-reads and retries with a growing, jittered pause.
//
// # Masking
//
// An attendee's phone and e-mail are shown in full to the event's host (the
// hosting institution's organisation) and to district staff. Every other
// caller, the organisation that filed the registration included, sees them
// masked (contact.MaskPhone, contact.MaskEmail: "138****1234",
// "w***@chujiang.example") with contact_masked set. Events on the TALENT
// stream carry them in full: the stream is internal (services and staff
// tooling), and a notifier needs the address to tell a registrant their
// event was cancelled.
//
// # A suspended host
//
// When the registry suspends or rejects a host institution, its events that
// have not started and take registrations (PUBLISHED or CLOSED) are flagged
// for staff (needs_attention, event carbondesk.talent.event.flagged); they
// are not cancelled, because attendees would lose a seat over a dispute
// that may be settled in days. Staff decide: cancel the event (every
// registrant gets a cancellation event) or let it run. A host that is not
// ACTIVE creates and publishes nothing; registration stays open on its
// flagged events, so a person's place is not lost while staff look. When
// the host is reinstated the flags clear (carbondesk.talent.event.unflagged).
// Publishing writes the view of the host back under a version check in its
// batch, so a publish racing a suspension either commits first (and is then
// flagged) or sees the suspension.
//
// # Hours
//
// Training hours are whole class hours (学时). Check-in (or a correction
// that records attendance) credits the event's training_hours to the
// attendee's linked talent profile, in the same batch: a ledger entry (kind
// "hours", id = registration id) and the talent's total_hours, with a
// talent event (carbondesk.talent.talent.hours_credited). Undoing
// attendance removes the entry and the hours (hours_debited). So the total
// is always the sum of the entries, and the entries are exactly the
// attended registrations linked to the profile. training_hours cannot
// change once attendance is recorded, and an event with attendance cannot
// be cancelled.
//
// # Time
//
// Times are UTC. Registration closes at the registration deadline (checked
// on every registration; the sweep in Run also moves the event to CLOSED).
// Check-in opens Policy.CheckInOpens before the start; CompleteEvent too.
// A freed seat is filled only before the event starts. The clock is
// injectable (WithClock).
package talent

import (
	"fmt"
	"time"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

// Name is the service's name: its store namespace, its stream (TALENT) and
// the second part of its subjects.
const Name = "talent"

// ServiceName is the gRPC service's full name, for health checks.
const ServiceName = "carbondesk.talent.v1.TalentService"

// The talent service's error kinds; each wraps the errs kind that gives its
// gRPC code.
var (
	// ErrInvalidTransition: the action does not apply to the state.
	ErrInvalidTransition = fmt.Errorf("talent: invalid transition: %w", errs.ErrFailedPrecondition)
	// ErrRegistrationClosed: the event takes no registrations now.
	ErrRegistrationClosed = fmt.Errorf("talent: registration closed: %w", errs.ErrFailedPrecondition)
	// ErrHostNotActive: the host institution may not create or publish.
	ErrHostNotActive = fmt.Errorf("talent: host not active: %w", errs.ErrFailedPrecondition)
	// ErrUnknownHost: the service has no view of the institution.
	ErrUnknownHost = fmt.Errorf("talent: unknown host: %w", errs.ErrFailedPrecondition)
	// ErrAlreadyRegistered: the person holds a registration for the event.
	ErrAlreadyRegistered = fmt.Errorf("talent: already registered: %w", errs.ErrAlreadyExists)
	// ErrStaleVersion: the version the caller read is not the current one.
	ErrStaleVersion = fmt.Errorf("talent: stale version: %w", errs.ErrAborted)
)

// Policy is the district's talent-base policy.
type Policy struct {
	// CheckInOpens: how long before an event's start check-in opens (and
	// the event may be completed). Default 2 h.
	CheckInOpens time.Duration
	// SweepEvery: how often Run closes events past their registration
	// deadline. Default 1 min.
	SweepEvery time.Duration
}

// DefaultPolicy is the policy when none is given.
func DefaultPolicy() Policy {
	return Policy{CheckInOpens: 2 * time.Hour, SweepEvery: time.Minute}
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.CheckInOpens <= 0 {
		p.CheckInOpens = d.CheckInOpens
	}
	if p.SweepEvery <= 0 {
		p.SweepEvery = d.SweepEvery
	}
	return p
}

// Short names for the states.
const (
	eventDraft     = talentv1.EventState_EVENT_STATE_DRAFT
	eventPublished = talentv1.EventState_EVENT_STATE_PUBLISHED
	eventClosed    = talentv1.EventState_EVENT_STATE_CLOSED
	eventCompleted = talentv1.EventState_EVENT_STATE_COMPLETED
	eventCancelled = talentv1.EventState_EVENT_STATE_CANCELLED

	regConfirmed  = talentv1.RegistrationState_REGISTRATION_STATE_CONFIRMED
	regWaitlisted = talentv1.RegistrationState_REGISTRATION_STATE_WAITLISTED
	regAttended   = talentv1.RegistrationState_REGISTRATION_STATE_ATTENDED
	regCancelled  = talentv1.RegistrationState_REGISTRATION_STATE_CANCELLED
)

// key is an enum's short name: "PUBLISHED", "CERTIFICATION_EXAM".
func key[P protoenum.Enum](p P) string { return protoenum.Key(p) }

// maxPosition bounds the registrations of one event: positions are six
// digits in registration ids.
const maxPosition = 999_999

// Limits on what a request may carry. Lengths count characters.
const (
	maxTitleZh      = 100
	maxTitleEn      = 200
	maxDescription  = 2000
	maxVenue        = 200
	maxReason       = 500
	maxPersonName   = 50
	maxOrganization = 100
	maxRole         = 50
	maxCapacity     = 10_000
	maxHours        = 200
	maxDuration     = 31 * 24 * time.Hour
	maxSkills       = 20
	maxSkill        = 30
	maxCertNumber   = 50
	maxContains     = 100
	maxID           = 64
	maxAhead        = 2 * 366 * 24 * time.Hour // how far ahead an event may start
)
