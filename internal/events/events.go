// Package events holds what every CarbonDesk service shares about its events:
// sortable ids, the protobuf envelope, the actor carried in a request's
// context, and the JetStream stream each service owns.
//
// Services build a store.Event with New inside the same store.Batch as the
// change it describes; the outbox relay publishes it later. Publishing and
// consuming live in packages outbox and consumer.
package events

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	"github.com/carbondesk/carbondesk/internal/store"
)

// SubjectPrefix starts every CarbonDesk subject: carbondesk.<service>.<entity>.<change>.
const SubjectPrefix = "carbondesk."

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns a new ULID: unique, and sortable by creation time, so ids
// double as the order of registration in listings and events.
func NewID(now time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(now), idEntropy).String()
}

// Actor is who made a change, carried in the request context.
type Actor struct {
	Subject        string
	Role           string
	OrganizationID string
}

// System is the actor for changes the desk makes by itself (seeds, sweeps).
var System = Actor{Subject: "system", Role: "system"}

type actorKey struct{}

// WithActor returns a context carrying the actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the context's actor, or System when none is set.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return System
}

// New builds the outbox entry for one change: an envelope with a fresh id,
// the entity's id and new version, the actor, and the new state as payload.
func New(subject, entityID string, version int64, actor Actor, now time.Time, state proto.Message) (store.Event, error) {
	return NewEncoded(subject, entityID, version, actor, now, state, nil)
}

// NewEncoded is New for a state the caller has already marshalled (to
// store it in the same batch): encoded must be proto.Marshal(state), and
// the state is not marshalled again. With encoded nil it is New.
func NewEncoded(subject, entityID string, version int64, actor Actor, now time.Time, state proto.Message, encoded []byte) (store.Event, error) {
	if !strings.HasPrefix(subject, SubjectPrefix) {
		return store.Event{}, fmt.Errorf("events: subject %q lacks prefix %q", subject, SubjectPrefix)
	}
	var payload *anypb.Any
	if encoded != nil {
		payload = &anypb.Any{TypeUrl: typeURLPrefix + string(state.ProtoReflect().Descriptor().FullName()), Value: encoded}
	} else {
		var err error
		if payload, err = anypb.New(state); err != nil {
			return store.Event{}, fmt.Errorf("events: pack payload: %w", err)
		}
	}
	env := &eventv1.Envelope{
		Id:            NewID(now),
		Type:          strings.TrimPrefix(subject, SubjectPrefix),
		EntityId:      entityID,
		EntityVersion: version,
		Time:          timestamppb.New(now.UTC()),
		Actor:         &eventv1.Actor{Subject: actor.Subject, Role: actor.Role, OrganizationId: actor.OrganizationID},
		Payload:       payload,
	}
	data, err := proto.Marshal(env)
	if err != nil {
		return store.Event{}, fmt.Errorf("events: marshal envelope: %w", err)
	}
	return store.Event{ID: env.Id, Subject: subject, Data: data}, nil
}

// typeURLPrefix is what anypb.New puts before a message's full name.
const typeURLPrefix = "type.googleapis.com/"

// Decode unmarshals an envelope.
func Decode(data []byte) (*eventv1.Envelope, error) {
	env := &eventv1.Envelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("events: decode envelope: %w", err)
	}
	return env, nil
}
