package registry

import (
	"context"
	"fmt"
	"time"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Subjects of the registry's events, one per change. Each event's payload is
// the institution's new state (a registryv1.Institution) in the platform's
// envelope; the envelope's entity version is the institution's version.
// They land in the REGISTRY stream (events.StreamConfig(Name, replicas)).
const (
	SubjectRegistered = events.SubjectPrefix + Name + ".institution.registered"
	SubjectUpdated    = events.SubjectPrefix + Name + ".institution.updated"
	SubjectApproved   = events.SubjectPrefix + Name + ".institution.approved"
	SubjectRejected   = events.SubjectPrefix + Name + ".institution.rejected"
	SubjectSuspended  = events.SubjectPrefix + Name + ".institution.suspended"
	SubjectReinstated = events.SubjectPrefix + Name + ".institution.reinstated"
)

// SubjectAll matches every registry event, for consumers that keep a read
// model of institutions.
const SubjectAll = events.SubjectPrefix + Name + ".institution.>"

// reviewSubjects maps a review action to the subject of its event.
var reviewSubjects = map[Action]string{
	ActionApprove:   SubjectApproved,
	ActionReject:    SubjectRejected,
	ActionSuspend:   SubjectSuspended,
	ActionReinstate: SubjectReinstated,
}

// event builds the outbox entry of one change, with the caller's actor
// from the context. It goes into the same store batch as the change.
func (s *Server) event(ctx context.Context, subject string, in *registryv1.Institution, now time.Time) (store.Event, error) {
	ev, err := events.New(subject, in.GetId(), in.GetVersion(), events.ActorFrom(ctx), now, in)
	if err != nil {
		return store.Event{}, fmt.Errorf("registry: event %s: %w", subject, err)
	}
	return ev, nil
}
