package talent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/instview"
	"github.com/carbondesk/carbondesk/internal/store"
)

// FeedDurable is the durable consumer that feeds the institution view.
const FeedDurable = "talent-institutions"

// Institution is the talent service's view of a registry institution
// (internal/instview): its state decides whether it may host, its name
// goes on the events it hosts.
type Institution = instview.View

// institution reads the view of one institution; nil when the service has
// none.
func (s *Server) institution(ctx context.Context, id string) (*Institution, error) {
	in, err := instview.Get(ctx, s.st, kindInstitution, id)
	if err != nil {
		return nil, fmt.Errorf("talent: %w", err)
	}
	return in, nil
}

// institutionByCode reads the view of the institution with a credit code;
// nil when the service has none.
func (s *Server) institutionByCode(ctx context.Context, code string) (*Institution, error) {
	in, err := instview.ByCode(ctx, s.st, kindInstitution, code)
	if err != nil {
		return nil, fmt.Errorf("talent: %w", err)
	}
	return in, nil
}

// FeedConfig is the consumer configuration the institution feed uses,
// before WithFeedConfig's adjustments.
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
		return fmt.Errorf("talent: %w", err)
	}
	return s.applyInstitution(ctx, in)
}

// applyInstitution writes the view of in, then flags the host's upcoming
// events when in is SUSPENDED or REJECTED, or clears their flags when it is
// ACTIVE. The view is written first, so a publish that commits after it
// fails its fence, and one that committed before is found by the scan; each
// event is then changed in its own batch. A crash in between leaves the
// consumer's seen mark unwritten: the redelivery writes the same view again
// and flags what is still unflagged (flagging twice changes nothing).
func (s *Server) applyInstitution(ctx context.Context, in *Institution) error {
	old, err := s.writeView(ctx, in)
	if err != nil || old == nil {
		return err
	}
	actx := events.WithActor(ctx, events.System)
	switch in.State {
	case registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED, registryv1.InstitutionState_INSTITUTION_STATE_REJECTED:
		reason := fmt.Sprintf("the host institution %s (%s) was %s by the registry; staff decide whether the event goes ahead or is cancelled",
			in.NameZh, in.CreditCode, key(in.State))
		return s.eachHosted(actx, in.ID, func(e *talentv1.Event, now time.Time) bool {
			return (e.GetState() == eventPublished || e.GetState() == eventClosed) && now.Before(e.GetStartTime().AsTime())
		}, func(t *tx) { t.flag(reason) })
	case registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE:
		return s.eachHosted(actx, in.ID, func(e *talentv1.Event, _ time.Time) bool {
			return e.GetNeedsAttention()
		}, func(t *tx) { t.unflag() })
	}
	return nil
}

// viewAttempts bounds the retries of a view write that publishes keep
// beating.
const viewAttempts = 100

// writeView writes the view of in unless the view holds a newer version;
// it returns the view written (nil when skipped). A conflict means a
// publish wrote the view back meanwhile: read again and retry.
func (s *Server) writeView(ctx context.Context, in *Institution) (*Institution, error) {
	for attempt := 1; ; attempt++ {
		old, err := s.institution(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		if !in.Replaces(old) {
			return nil, nil
		}
		put, err := in.Put(kindInstitution)
		if err != nil {
			return nil, fmt.Errorf("talent: %w", err)
		}
		_, err = s.st.Apply(ctx, store.Batch{Puts: []store.Put{put}})
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt == viewAttempts {
			if err != nil {
				return nil, fmt.Errorf("talent: write view of institution %s v%d: %w", in.ID, in.Version, err)
			}
			return in, nil
		}
		if err := sleep(ctx, min(time.Duration(attempt), 20)*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// eachHosted applies fn, each in its own change, to the events the
// institution hosts that pick selects.
func (s *Server) eachHosted(ctx context.Context, instID string, pick func(*talentv1.Event, time.Time) bool, fn func(*tx)) error {
	var ids []string
	now := s.now()
	err := s.scanEvents(ctx, termHost+instID, func(e *talentv1.Event) error {
		if pick(e, now) {
			ids = append(ids, e.GetId())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		_, err := s.mutate(ctx, id, func(t *tx) error {
			if pick(t.ev, t.now) {
				fn(t)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("talent: event %s of institution %s: %w", id, instID, err)
		}
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
