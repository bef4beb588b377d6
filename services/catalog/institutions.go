package catalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/instview"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
)

// FeedDurable is the durable consumer that feeds the institution view.
const FeedDurable = "catalog-institutions"

// pauseChunk bounds the puts of one batch when a suspension pauses many
// products.
const pauseChunk = 200

// Institution is the catalog's view of a registry institution
// (internal/instview): its state decides whether it may publish, its kind
// counts in the catalog's stats.
type Institution = instview.View

// institution reads the view of one institution; nil when the catalog has
// none.
func (s *Server) institution(ctx context.Context, id string) (*Institution, error) {
	in, err := instview.Get(ctx, s.st, kindInstitution, id)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return in, nil
}

// institutionByCode reads the view of the institution with a credit code;
// nil when the catalog has none.
func (s *Server) institutionByCode(ctx context.Context, code string) (*Institution, error) {
	in, err := instview.ByCode(ctx, s.st, kindInstitution, code)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return in, nil
}

// FeedConfig is the consumer configuration RunInstitutionFeed uses, before
// WithFeedConfig's adjustments.
func FeedConfig() consumer.Config { return instview.FeedConfig(FeedDurable) }

// RunInstitutionFeed keeps the institution view up to date from the
// registry's events until ctx is done (then it returns nil). It waits for
// the REGISTRY stream if it does not exist yet.
func (s *Server) RunInstitutionFeed(ctx context.Context, js jetstream.JetStream) error {
	cfg := FeedConfig()
	cfg.Log = s.log
	if s.feedCfg != nil {
		s.feedCfg(&cfg)
	}
	return consumer.Run(ctx, js, cfg, s.st, s.handleInstitution)
}

// handleInstitution applies one registry event to the view.
func (s *Server) handleInstitution(ctx context.Context, d *consumer.Delivery) error {
	in, err := instview.FromEvent(d.Event)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return s.applyInstitution(ctx, in, d.Apply)
}

// applyInstitution writes the view of in and, when in is SUSPENDED or
// REJECTED, pauses each of its PUBLISHED products with its own event.
// commit writes the LAST batch (the consumer's Delivery.Apply adds the
// idempotency mark to it). When the pauses do not fit one batch, the first
// batches go straight to the store: the view change rides in the first, the
// mark in the last, so a crash or a conflict in between leaves the mark
// unwritten and the redelivery pauses what is still PUBLISHED.
func (s *Server) applyInstitution(ctx context.Context, in *Institution, commit func(context.Context, store.Batch) ([]int64, error)) error {
	// A conflict means a concurrent publish moved the view first; each
	// publish is one short write, so retrying (with a growing pause) gets
	// through. Past the attempts the consumer redelivers the event later.
	const attempts = 50
	var err error
	pause := time.Millisecond
	for range attempts {
		err = s.applyInstitutionOnce(ctx, in, commit)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("catalog: institution %s v%d: %w (last conflict: %w)", in.ID, in.Version, ctx.Err(), err)
		case <-time.After(pause + time.Duration(rand.Int64N(int64(pause)))):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
	return fmt.Errorf("catalog: institution %s v%d: still conflicting after %d attempts: %w", in.ID, in.Version, attempts, err)
}

func (s *Server) applyInstitutionOnce(ctx context.Context, in *Institution, commit func(context.Context, store.Batch) ([]int64, error)) error {
	old, err := s.institution(ctx, in.ID)
	if err != nil {
		return err
	}
	if !in.Replaces(old) {
		return nil // the view is newer; the mark alone is committed
	}
	view, err := in.Put(kindInstitution)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	type pause struct {
		put store.Put
		ev  store.Event
	}
	var pauses []pause
	if in.State == registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED || in.State == registryv1.InstitutionState_INSTITUTION_STATE_REJECTED {
		reason := "institution " + protoenum.Key(in.State) + " by the registry"
		actx := events.WithActor(ctx, events.System)
		now := s.now().UTC()
		err := s.scan(ctx, termInstitution+in.ID, func(p *Product) bool { return p.State == StatePublished }, func(p *Product) error {
			read := p.Version
			if err := p.transition(actPause, reason, now); err != nil {
				return err
			}
			p.Version = read + 1
			put, ev, err := productPut(actx, p, read, SubjectPaused, now)
			if err != nil {
				return err
			}
			pauses = append(pauses, pause{put, ev})
			return nil
		})
		if err != nil {
			return err
		}
	}
	b := store.Batch{Puts: []store.Put{view}}
	for {
		n := min(len(pauses), pauseChunk)
		for _, p := range pauses[:n] {
			b.Puts = append(b.Puts, p.put)
			b.Events = append(b.Events, p.ev)
		}
		pauses = pauses[n:]
		if len(pauses) == 0 {
			break
		}
		if _, err := s.st.Apply(ctx, b); err != nil {
			return fmt.Errorf("catalog: pause products of %s: %w", in.ID, err)
		}
		b = store.Batch{}
	}
	if _, err := commit(ctx, b); err != nil {
		return fmt.Errorf("catalog: apply institution %s v%d: %w", in.ID, in.Version, err)
	}
	return nil
}
