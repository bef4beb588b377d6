package talent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

// FeedDurable is the durable consumer that feeds the institution view.
const FeedDurable = "talent-institutions"

// termCode indexes the view by credit code, for callers named by their
// organisation.
const termCode = "code="

// Institution is the talent service's view of a registry institution: what
// it needs to decide who may host, and nothing else.
type Institution struct {
	ID         string                      `json:"id"`
	CreditCode string                      `json:"credit_code"`
	NameZh     string                      `json:"name_zh"`
	State      registryv1.InstitutionState `json:"state"`
	// Version is the registry's version of the institution the view holds.
	Version int64 `json:"version"`

	rec int64 // the view record's store version, for the publish fence
}

func (in *Institution) active() bool {
	return in.State == registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
}

// put writes the view back, expecting the record version read: the fence
// between publishing and the feed (see the package doc).
func (in *Institution) put() (store.Put, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return store.Put{}, fmt.Errorf("talent: marshal institution view: %w", err)
	}
	return store.Put{Kind: kindInstitution, ID: in.ID, Expect: in.rec, Data: data, Index: []string{termCode + in.CreditCode}}, nil
}

func decodeInstitution(rec store.Record) (*Institution, error) {
	in := &Institution{}
	if err := json.Unmarshal(rec.Data, in); err != nil {
		return nil, fmt.Errorf("talent: decode institution view %s: %w", rec.ID, err)
	}
	in.rec = rec.Version
	return in, nil
}

// institution reads the view of one institution; nil when the service has
// none.
func (s *Server) institution(ctx context.Context, id string) (*Institution, error) {
	rec, err := s.st.Get(ctx, kindInstitution, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("talent: read institution %s: %w", id, err)
	}
	return decodeInstitution(rec)
}

// institutionByCode reads the view of the institution with a credit code;
// nil when the service has none.
func (s *Server) institutionByCode(ctx context.Context, code string) (*Institution, error) {
	if code == "" {
		return nil, nil
	}
	page, err := s.st.List(ctx, kindInstitution, store.Query{Index: termCode + code, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("talent: find institution %s: %w", code, err)
	}
	if len(page.Records) == 0 {
		return nil, nil
	}
	return decodeInstitution(page.Records[0])
}

// FeedConfig is the consumer configuration the institution feed uses,
// before WithFeedConfig's adjustments.
func FeedConfig() consumer.Config {
	return consumer.Config{
		Stream:         events.StreamName(registry.Name),
		Durable:        FeedDurable,
		FilterSubjects: []string{registry.SubjectAll},
	}
}

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
	msg := &registryv1.Institution{}
	if err := d.Event.GetPayload().UnmarshalTo(msg); err != nil {
		return fmt.Errorf("talent: registry event %s: payload: %w", d.Event.GetId(), err)
	}
	if msg.GetId() != d.Event.GetEntityId() || msg.GetCreditCode() == "" {
		return fmt.Errorf("talent: registry event %s: payload is institution %q (code %q), envelope names %q",
			d.Event.GetId(), msg.GetId(), msg.GetCreditCode(), d.Event.GetEntityId())
	}
	in := &Institution{ID: msg.GetId(), CreditCode: msg.GetCreditCode(), NameZh: msg.GetNameZh(), State: msg.GetState(), Version: d.Event.GetEntityVersion()}
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
		in.rec = 0
		if old != nil {
			if old.Version > in.Version {
				return nil, nil
			}
			in.rec = old.rec
		}
		put, err := in.put()
		if err != nil {
			return nil, err
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
