package matching

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/registry"
)

// Durable consumers of the reactions (see Run).
const (
	ProductsDurable     = "matching-products"
	InstitutionsDurable = "matching-institutions"
)

// defaultResponseScore is an institution's response record until the desk
// has one (the engine's scale is 0..1; see response.go).
const defaultResponseScore = 0.5

// answerSubjects are the MATCHING events the response records are read from.
var answerSubjects = []string{SubjectMatchAccepted, SubjectMatchDeclined, SubjectMatchExpired}

// directory is what matching knows of products and institutions beside the
// engine: who owns a product (its institution's id and credit code), its
// category, each institution's zone and state, and the version of each that
// was applied, so the replay and the reactions, which both feed the engine,
// never apply an older version over a newer one.
type directory struct {
	mu           sync.RWMutex
	products     map[string]productEntry
	institutions map[string]institutionEntry
	pricesV      int64
	responses    *responseBook
}

type productEntry struct {
	product
	version int64
}

type institutionEntry struct {
	code    string
	zone    string
	active  bool
	version int64
}

func newDirectory() *directory {
	return &directory{products: map[string]productEntry{}, institutions: map[string]institutionEntry{}}
}

// product returns what a proposal needs of a product.
func (d *directory) product(id string) (product, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.products[id]
	if !ok {
		return product{}, false
	}
	out := p.product
	out.Zone = d.institutions[p.InstitutionID].zone
	if out.InstitutionCode == "" {
		out.InstitutionCode = d.institutions[p.InstitutionID].code
	}
	return out, true
}

// applyProduct feeds one product version to the engine; false when the
// directory already holds this version or a newer one.
func (s *Server) applyProduct(p *catalogv1.Product, version int64) bool {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if old, ok := s.dir.products[p.GetId()]; ok && old.version >= version {
		return false
	}
	s.dir.products[p.GetId()] = productEntry{
		product: product{ID: p.GetId(), InstitutionID: p.GetInstitutionId(), InstitutionCode: p.GetInstitutionCreditCode(), Category: p.GetCategory()},
		version: version,
	}
	if p.GetState() == catalogv1.ProductState_PRODUCT_STATE_RETIRED {
		s.engine.RemoveProduct(p.GetId())
		return true
	}
	s.engine.UpsertProduct(productView(p, version))
	return true
}

// productView is the engine's view of a product.
func productView(p *catalogv1.Product, version int64) ProductView {
	v := ProductView{
		ID:              p.GetId(),
		InstitutionID:   p.GetInstitutionId(),
		Category:        p.GetCategory(),
		DemandKinds:     p.GetDemandKinds(),
		AmountMin:       p.GetAmount().GetMinYuan(),
		AmountMax:       p.GetAmount().GetMaxYuan(),
		TermMin:         p.GetTerm().GetMinMonths(),
		TermMax:         p.GetTerm().GetMaxMonths(),
		RateMinBps:      p.GetPrice().GetAnnualRate().GetMinBps(),
		RateMaxBps:      p.GetPrice().GetAnnualRate().GetMaxBps(),
		FeeYuan:         p.GetPrice().GetFeeYuan(),
		Sectors:         p.GetSectors(),
		Regions:         p.GetRegions(),
		CollateralAsset: p.GetCollateral().GetAsset(),
		PledgeRateBps:   p.GetCollateral().GetPledgeRateBps(),
		Published:       p.GetState() == catalogv1.ProductState_PRODUCT_STATE_PUBLISHED,
		Version:         version,
	}
	return v
}

// applyInstitution feeds one institution version to the engine.
func (s *Server) applyInstitution(in *registryv1.Institution, version int64) bool {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if old, ok := s.dir.institutions[in.GetId()]; ok && old.version >= version {
		return false
	}
	zone := ""
	if in.GetZone() != 0 {
		zone = in.GetZone().String()
	}
	active := in.GetState() == registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
	s.dir.institutions[in.GetId()] = institutionEntry{code: in.GetCreditCode(), zone: zone, active: active, version: version}
	rec := s.dir.responses.record(in.GetId(), s.cfg.ResponseDeadline)
	s.engine.UpsertInstitution(InstitutionView{ID: in.GetId(), Active: active, Zone: zone, ResponseScore: rec.score, ResponseDetail: rec.detail})
	return true
}

// applyAnswer counts a match's answer or lapse in its institution's
// response record.
func (s *Server) applyAnswer(subject string, m *matchingv1.Match) {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	inst, changed := s.dir.responses.note(subject, m)
	if !changed {
		return
	}
	rec := s.dir.responses.record(inst, s.cfg.ResponseDeadline)
	s.engine.SetResponse(inst, rec.score, rec.detail)
}

// applyPrices feeds reference prices to the engine.
func (s *Server) applyPrices(p *catalogv1.ReferencePrices, version int64) {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if version <= s.dir.pricesV {
		return
	}
	s.dir.pricesV = version
	s.engine.SetPrices(Prices{CEA: p.GetCeaYuanPerTonne(), CCER: p.GetCcerYuanPerTonne()})
}

// applyEvent feeds one catalog or registry event to the index; events of
// other kinds are ignored.
func (s *Server) applyEvent(subject string, env *eventv1.Envelope) error {
	switch {
	case strings.HasPrefix(subject, events.SubjectPrefix+catalog.Name+".product."):
		p := &catalogv1.Product{}
		if err := env.GetPayload().UnmarshalTo(p); err != nil {
			return fmt.Errorf("matching: product event %s: %w", env.GetId(), err)
		}
		s.applyProduct(p, env.GetEntityVersion())
	case subject == catalog.SubjectReferencePricesSet:
		p := &catalogv1.ReferencePrices{}
		if err := env.GetPayload().UnmarshalTo(p); err != nil {
			return fmt.Errorf("matching: prices event %s: %w", env.GetId(), err)
		}
		s.applyPrices(p, env.GetEntityVersion())
	case strings.HasPrefix(subject, events.SubjectPrefix+registry.Name+".institution."):
		in := &registryv1.Institution{}
		if err := env.GetPayload().UnmarshalTo(in); err != nil {
			return fmt.Errorf("matching: institution event %s: %w", env.GetId(), err)
		}
		s.applyInstitution(in, env.GetEntityVersion())
	case slices.Contains(answerSubjects, subject):
		m := &matchingv1.Match{}
		if err := env.GetPayload().UnmarshalTo(m); err != nil {
			return fmt.Errorf("matching: match event %s: %w", env.GetId(), err)
		}
		s.applyAnswer(subject, m)
	}
	return nil
}

// ranker is the server's engine and directory as the rules see them.
func (s *Server) ranker() ranker { return serverRanker{s} }

type serverRanker struct{ s *Server }

func (r serverRanker) rank(d *matchingv1.Demand, k int, exclude func(string) bool) []Candidate {
	return r.s.engine.Rank(demandView(d), k, exclude)
}

func (r serverRanker) product(id string) (product, bool) { return r.s.dir.product(id) }

// CaughtUp reports whether the index has replayed the catalog's and the
// registry's streams up to where they were when Run started.
func (s *Server) CaughtUp() bool { return s.caughtUp.Load() }

// WaitCaughtUp waits until CaughtUp or ctx is done.
func (s *Server) WaitCaughtUp(ctx context.Context) error {
	select {
	case <-s.caughtCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run starts what keeps matching going, until ctx is done (then it returns
// nil):
//
//   - the index feed: ordered (ephemeral) consumers replay the CATALOG and
//     REGISTRY streams from their first message into the engine on every
//     start, and the answers of the MATCHING stream of the last
//     Policy.ResponseWindow into the response records (response.go), then
//     follow them; once all three reached the last message they held at
//     start, CaughtUp turns true and PostDemand serves;
//   - then the reactions, on durable consumers (idempotent, internal/
//     consumer): a product published or updated is matched against OPEN
//     demands; a product paused or retired, an institution suspended or
//     rejected, has its still-PROPOSED matches withdrawn;
//   - the sweep, every Policy.SweepEvery;
//   - and WatchMatches, which reads the MATCHING stream through js.
func (s *Server) Run(ctx context.Context, js jetstream.JetStream) error {
	s.jsMu.Lock()
	s.js = js
	s.jsMu.Unlock()
	s.running.Store(true)

	g, ctx := errgroup.WithContext(ctx)
	catalogUp, registryUp, answersUp := make(chan struct{}), make(chan struct{}), make(chan struct{})
	g.Go(func() error { return s.follow(ctx, js, events.StreamName(catalog.Name), nil, catalogUp) })
	g.Go(func() error { return s.follow(ctx, js, events.StreamName(registry.Name), nil, registryUp) })
	g.Go(func() error { return s.follow(ctx, js, events.StreamName(Name), answerSubjects, answersUp) })
	g.Go(func() error {
		for _, ch := range []chan struct{}{catalogUp, registryUp, answersUp} {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil
			}
		}
		s.caughtUp.Store(true)
		s.once.Do(func() { close(s.caughtCh) })
		s.log.Info("matching: index caught up", "products", s.engine.ProductsLen())

		g.Go(func() error {
			cfg := consumer.Config{Stream: events.StreamName(catalog.Name), Durable: ProductsDurable,
				FilterSubjects: []string{catalog.SubjectProducts}, Log: s.log}
			if s.tune != nil {
				s.tune(&cfg)
			}
			return consumer.Run(ctx, js, cfg, s.st, s.handleProduct)
		})
		g.Go(func() error {
			cfg := consumer.Config{Stream: events.StreamName(registry.Name), Durable: InstitutionsDurable,
				FilterSubjects: []string{registry.SubjectAll}, Log: s.log}
			if s.tune != nil {
				s.tune(&cfg)
			}
			return consumer.Run(ctx, js, cfg, s.st, s.handleInstitution)
		})
		g.Go(func() error { return s.sweepLoop(ctx) })
		return nil
	})
	return g.Wait()
}

// follow replays a stream from its start into the index and follows it,
// closing up once it reached the last message the stream held when follow
// began. A stream that does not exist yet has nothing to replay: up closes
// and follow waits for it.
func (s *Server) follow(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, up chan struct{}) error {
	var once sync.Once
	done := func() { once.Do(func() { close(up) }) }
	log := s.log.With("component", "index-feed", "stream", stream)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.replay(ctx, js, stream, subjects, done)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			done()
		} else {
			log.Warn("index feed interrupted; replaying again", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

// replay runs one ordered consumer from the stream's start, or, given
// subjects, over those subjects from the start of the response window.
func (s *Server) replay(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, done func()) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		done()
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if len(subjects) > 0 {
		from := time.Now().Add(-s.cfg.ResponseWindow) // stream time is wall time, not the injected clock
		cfg = jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}
	}
	oc, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	// A short expiry, so a pull lost in a NATS node's restart is re-issued
	// in seconds (consumer.PullExpiry).
	it, err := oc.Messages(jetstream.PullExpiry(consumer.PullExpiry))
	if err != nil {
		return err
	}
	defer it.Stop()
	// With a filter or a start time, the stream's last message may be none
	// of ours: caught up is also when nothing of ours was pending at start.
	if ci := oc.CachedInfo(); ci != nil && ci.NumPending == 0 {
		done()
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		env, err := events.Decode(msg.Data())
		if err != nil {
			s.log.Warn("matching: undecodable event skipped by the index", "stream", stream, "seq", meta.Sequence.Stream, "error", err)
		} else if err := s.applyEvent(msg.Subject(), env); err != nil {
			s.log.Warn("matching: event skipped by the index", "stream", stream, "seq", meta.Sequence.Stream, "error", err)
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			done()
		}
	}
}

// handleProduct is the reaction to a product's change.
func (s *Server) handleProduct(ctx context.Context, d *consumer.Delivery) error {
	p := &catalogv1.Product{}
	if err := d.Event.GetPayload().UnmarshalTo(p); err != nil {
		return fmt.Errorf("matching: product event %s: payload: %w", d.Event.GetId(), err)
	}
	// The engine learns of the change here too, so the reaction does not
	// depend on which of the two feeds got the event first.
	s.applyProduct(p, d.Event.GetEntityVersion())
	ctx = events.WithActor(ctx, events.System)
	switch p.GetState() {
	case catalogv1.ProductState_PRODUCT_STATE_PUBLISHED:
		if d.Subject == catalog.SubjectPublished || d.Subject == catalog.SubjectUpdated {
			return s.reverseMatch(ctx, p.GetId())
		}
	case catalogv1.ProductState_PRODUCT_STATE_PAUSED, catalogv1.ProductState_PRODUCT_STATE_RETIRED:
		reason := "the product was " + strings.ToLower(enumKey(p.GetState().String()[len("PRODUCT_STATE_"):])) + " by its institution"
		return s.withdrawProposed(ctx, termProduct+p.GetId(), func(m *matchingv1.Match) bool { return m.GetProductId() == p.GetId() }, reason)
	}
	return nil
}

// handleInstitution is the reaction to an institution's change.
func (s *Server) handleInstitution(ctx context.Context, d *consumer.Delivery) error {
	in := &registryv1.Institution{}
	if err := d.Event.GetPayload().UnmarshalTo(in); err != nil {
		return fmt.Errorf("matching: institution event %s: payload: %w", d.Event.GetId(), err)
	}
	s.applyInstitution(in, d.Event.GetEntityVersion())
	switch in.GetState() {
	case registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED, registryv1.InstitutionState_INSTITUTION_STATE_REJECTED:
		ctx = events.WithActor(ctx, events.System)
		reason := "the institution was " + strings.ToLower(in.GetState().String()[len("INSTITUTION_STATE_"):]) + " by the district"
		return s.withdrawProposed(ctx, termInst+in.GetId(), func(m *matchingv1.Match) bool { return m.GetInstitutionId() == in.GetId() }, reason)
	}
	return nil
}

// withdrawProposed withdraws the PROPOSED matches under an index term for
// which pick holds, demand by demand. Each demand is its own batch: a crash
// half-way leaves the event unacknowledged and the redelivery withdraws
// what is still PROPOSED.
func (s *Server) withdrawProposed(ctx context.Context, term string, pick func(*matchingv1.Match) bool, reason string) error {
	var demands []string
	err := s.scanMatches(ctx, term, func(m *matchingv1.Match) error {
		if m.GetState() == matchProposed && pick(m) {
			demands = append(demands, m.GetDemandId())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range compact(demands) {
		if _, err := s.mutate(ctx, id, func(a *aggregate) error {
			a.withdrawProposed(pick, reason)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// reverseMatch proposes a newly published or changed product to each OPEN
// demand, below its accepted cap, that it fits and among whose top K it now
// ranks, unless the demand already had a match of it.
func (s *Server) reverseMatch(ctx context.Context, productID string) error {
	p, ok := s.dir.product(productID)
	if !ok {
		return nil
	}
	var open []*matchingv1.Demand
	if err := s.scanDemands(ctx, termState+stateName(demandOpen), func(d *matchingv1.Demand) error {
		open = append(open, d)
		return nil
	}); err != nil {
		return err
	}
	for _, d := range open {
		if int(d.GetAcceptedCount()) >= s.cfg.MaxAccepted {
			continue
		}
		c, ok := s.engine.Eligible(demandView(d), productID)
		if !ok {
			continue
		}
		if _, err := s.mutate(ctx, d.GetId(), func(a *aggregate) error {
			if a.demand.GetState() != demandOpen || a.has(productID) || int(a.demand.GetAcceptedCount()) >= s.cfg.MaxAccepted {
				return nil
			}
			// Ranking against the live proposals, not the whole index
			// again, keeps a publication's cost at one eligibility check
			// per open demand.
			a.admit(p, c, s.cfg.TopK)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func compact(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// Sweep applies the deadlines at the server clock's now to every OPEN and
// MATCHED demand (see aggregate.sweep) and returns how many it changed.
// Run calls it every Policy.SweepEvery; tests call it with their clock.
func (s *Server) Sweep(ctx context.Context) (int, error) {
	ctx = events.WithActor(ctx, events.System)
	var ids []string
	for _, st := range []matchingv1.DemandState{demandOpen, demandMatched} {
		if err := s.scanDemands(ctx, termState+stateName(st), func(d *matchingv1.Demand) error {
			ids = append(ids, d.GetId())
			return nil
		}); err != nil {
			return 0, err
		}
	}
	changed := 0
	r := s.ranker()
	for _, id := range ids {
		a, err := s.mutate(ctx, id, func(a *aggregate) error {
			a.sweep(r)
			return nil
		})
		if err != nil {
			return changed, fmt.Errorf("matching: sweep demand %s: %w", id, err)
		}
		if a.changed() {
			changed++
		}
	}
	return changed, nil
}

func (s *Server) sweepLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		if s.sweepGate == nil || s.sweepGate() {
			if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("matching: sweep failed; retrying at the next tick", "error", err)
			} else if n > 0 {
				s.log.Info("matching: sweep changed demands", "demands", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
