package catalog

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Subjects of the catalog's events. A product event's payload is the
// product's new state (a catalogv1.Product) in the platform's envelope, its
// entity version the product's version. They land in the CATALOG stream
// (events.StreamConfig(Name, replicas)).
const (
	SubjectCreated   = events.SubjectPrefix + Name + ".product.created"
	SubjectUpdated   = events.SubjectPrefix + Name + ".product.updated"
	SubjectPublished = events.SubjectPrefix + Name + ".product.published"
	SubjectPaused    = events.SubjectPrefix + Name + ".product.paused"
	SubjectRetired   = events.SubjectPrefix + Name + ".product.retired"
)

// SubjectProducts matches every product event, for read models of products.
const SubjectProducts = events.SubjectPrefix + Name + ".product.>"

// SubjectReferencePricesSet is published when staff set reference carbon
// prices; the payload is a catalogv1.ReferencePrices, the entity id
// ReferencePricesID and the entity version the prices' version.
const SubjectReferencePricesSet = events.SubjectPrefix + Name + ".reference_prices.set"

// ReferencePricesID is the entity id of the reference prices' events.
const ReferencePricesID = "reference-prices"

// event builds the outbox entry of one change for the same batch.
func event(actor events.Actor, subject, id string, version int64, msg proto.Message, now time.Time) (store.Event, error) {
	ev, err := events.New(subject, id, version, actor, now, msg)
	if err != nil {
		return store.Event{}, fmt.Errorf("catalog: event %s: %w", subject, err)
	}
	return ev, nil
}

// ctxEvent is event with the caller's actor.
func ctxEvent(ctx context.Context, subject, id string, version int64, msg proto.Message, now time.Time) (store.Event, error) {
	return event(events.ActorFrom(ctx), subject, id, version, msg, now)
}
