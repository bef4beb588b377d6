package talent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Run keeps the service's background work going until ctx is done (then it
// returns nil): the institution feed (institutions.go) and, every
// Policy.SweepEvery, Sweep.
func (s *Server) Run(ctx context.Context, js jetstream.JetStream) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.RunInstitutionFeed(ctx, js) })
	g.Go(func() error { return s.runSweeps(ctx) })
	return g.Wait()
}

func (s *Server) runSweeps(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.SweepEvery)
	defer tick.Stop()
	for {
		if s.sweepGate == nil || s.sweepGate() {
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "talent: sweep failed; retried at the next tick", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Sweep applies the clock, as the system: it closes PUBLISHED events whose
// registration deadline has passed, and finishes cancelling the
// registrations of cancelled events that a crash left between batches.
// Registration itself checks the deadline, so a sweep that runs late
// changes when the event says CLOSED, never who got in.
func (s *Server) Sweep(ctx context.Context) error {
	s.sweeping.Lock()
	defer s.sweeping.Unlock()
	ctx = events.WithActor(ctx, events.System)
	now := s.now()
	var due []string
	err := s.scanEvents(ctx, termState+key(eventPublished), func(e *talentv1.Event) error {
		if !now.Before(e.GetRegistrationDeadline().AsTime()) {
			due = append(due, e.GetId())
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errsSeen []error
	for _, id := range due {
		_, err := s.mutate(ctx, id, func(t *tx) error {
			if t.ev.GetState() != eventPublished || t.now.Before(t.ev.GetRegistrationDeadline().AsTime()) {
				return nil // moved on since the scan
			}
			return t.move(eventClosed, "the registration deadline passed")
		})
		if err != nil {
			errsSeen = append(errsSeen, fmt.Errorf("close event %s: %w", id, err))
		}
	}
	var drain []string
	err = s.scan(ctx, kindRoster, termDrain, func(rec store.Record) error {
		drain = append(drain, rec.ID)
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range drain {
		for n := 1; n > 0; {
			if _, err := s.drainEvent(ctx, id, &n); err != nil {
				errsSeen = append(errsSeen, fmt.Errorf("cancel registrations of event %s: %w", id, err))
				break
			}
		}
	}
	return errors.Join(errsSeen...)
}
