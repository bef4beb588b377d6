package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DuplicateWindow is how long JetStream remembers message ids. The outbox
// relay re-publishes an event whose acknowledgement it did not record (a
// crash between the stream's ack and MarkSent); the stream drops the copy
// only if it arrives inside this window, so it is set well beyond any
// restart we expect. Consumers are idempotent by (entity id, version) for
// anything older.
const DuplicateWindow = time.Hour

// StreamConfig is the stream a service owns: named after the service in
// upper case, holding carbondesk.<service>.>. It allows atomic batch
// publishing (nats-server 2.12+; older servers ignore the field), which the
// outbox relay uses for a backlog: one fsync per batch instead of one per
// event (outbox.Options.AtomicMin).
func StreamConfig(service string, replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName(service),
		Description: "CarbonDesk " + service + " events",
		Subjects:    []string{SubjectPrefix + service + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  DuplicateWindow,
		Replicas:    replicas,

		AllowAtomicPublish: true,
	}
}

// StreamName is the stream of a service: "registry" -> "REGISTRY".
func StreamName(service string) string {
	b := []byte(service)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// EnsureStream creates the service's stream or updates it to cfg.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("events: ensure stream %s: NATS did not answer in time: %w", cfg.Name, err)
		}
		return nil, fmt.Errorf("events: ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}
