package matching

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Subjects of the matching service's events. A demand event's payload is the
// demand's new state (a matchingv1.Demand), a match event's the match's (a
// matchingv1.Match), each in the platform's envelope with the entity's
// version. They land in the MATCHING stream (events.StreamConfig(Name, n)).
//
// A demand's version also moves when only its matches change (the demand
// record fences the aggregate, see the package doc), without a demand
// event: consumers see gaps in demand versions, which the newest-wins rule
// of internal/consumer takes in its stride.
const (
	SubjectDemandPosted    = events.SubjectPrefix + Name + ".demand.posted"
	SubjectDemandMatched   = events.SubjectPrefix + Name + ".demand.matched"
	SubjectDemandFulfilled = events.SubjectPrefix + Name + ".demand.fulfilled"
	SubjectDemandWithdrawn = events.SubjectPrefix + Name + ".demand.withdrawn"
	SubjectDemandExpired   = events.SubjectPrefix + Name + ".demand.expired"
	// SubjectDemandReopened: the confirmed match failed; the demand is OPEN
	// again and flagged for staff.
	SubjectDemandReopened = events.SubjectPrefix + Name + ".demand.reopened"
	// SubjectDemandReoffered: nothing was left proposed or accepted, so the
	// next-ranked products were proposed; the demand is flagged for staff.
	SubjectDemandReoffered = events.SubjectPrefix + Name + ".demand.reoffered"
	// SubjectDemandFlagged: staff should look at the demand.
	SubjectDemandFlagged = events.SubjectPrefix + Name + ".demand.flagged"

	SubjectMatchProposed  = events.SubjectPrefix + Name + ".match.proposed"
	SubjectMatchAccepted  = events.SubjectPrefix + Name + ".match.accepted"
	SubjectMatchDeclined  = events.SubjectPrefix + Name + ".match.declined"
	SubjectMatchExpired   = events.SubjectPrefix + Name + ".match.expired"
	SubjectMatchWithdrawn = events.SubjectPrefix + Name + ".match.withdrawn"
	SubjectMatchClosed    = events.SubjectPrefix + Name + ".match.closed"
	SubjectMatchConfirmed = events.SubjectPrefix + Name + ".match.confirmed"
	SubjectMatchCompleted = events.SubjectPrefix + Name + ".match.completed"
	SubjectMatchFailed    = events.SubjectPrefix + Name + ".match.failed"
	// SubjectMatchFlagged: a confirmed match's outcome is overdue.
	SubjectMatchFlagged = events.SubjectPrefix + Name + ".match.flagged"
)

// SubjectMatches matches every match event: what WatchMatches follows.
const SubjectMatches = events.SubjectPrefix + Name + ".match.>"

var matchSubjects = map[string]string{
	"PROPOSED":  SubjectMatchProposed,
	"ACCEPTED":  SubjectMatchAccepted,
	"DECLINED":  SubjectMatchDeclined,
	"EXPIRED":   SubjectMatchExpired,
	"WITHDRAWN": SubjectMatchWithdrawn,
	"CLOSED":    SubjectMatchClosed,
	"CONFIRMED": SubjectMatchConfirmed,
	"COMPLETED": SubjectMatchCompleted,
	"FAILED":    SubjectMatchFailed,
}

// matchSubject is the subject of a move to state to.
func matchSubject[E interface{ String() string }](to E) string { return matchSubjects[stateName(to)] }

// eventEncoded builds the outbox entry of one change for a state already
// marshalled for its record (encoded == proto.Marshal(msg)), which is not
// marshalled again.
func eventEncoded(actor events.Actor, subject, id string, version int64, msg proto.Message, encoded []byte, now time.Time) (store.Event, error) {
	ev, err := events.NewEncoded(subject, id, version, actor, now, msg, encoded)
	if err != nil {
		return store.Event{}, fmt.Errorf("matching: event %s: %w", subject, err)
	}
	return ev, nil
}
