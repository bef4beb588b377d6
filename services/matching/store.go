package matching

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Record kinds in the matching service's store namespace.
const (
	// kindDemand: one demand per record, data = a marshalled
	// matchingv1.Demand. Its version fences the demand's matches too.
	kindDemand = "demand"
	// kindMatch: one match per record, data = a marshalled matchingv1.Match.
	kindMatch = "match"
	// kindPair is legacy, kept so that the name is not reused: earlier
	// versions claimed each (demand, product) pair with a record of this
	// kind (id = demand id + "." + product id, data = the match id),
	// written with MustNotExist in the batch that proposed the match and
	// never deleted. Stores they wrote still hold such records; nothing
	// writes or reads them now. One match per pair holds without them:
	// every path that proposes a match skips a product the demand already
	// has a match of (aggregate.has), and every write carries the demand
	// expecting the version it was read at, so a change that read the
	// demand before another one committed conflicts and runs again on
	// fresh data. ExplainMatch looks for a pair's match among the demand's
	// matches.
	kindPair = "pair"
)

// Index term prefixes.
const (
	termState   = "state="    // demands and matches
	termEnt     = "ent="      // enterprise credit code, demands and matches
	termAttn    = "attn=1"    // demands staff should look at
	termDemand  = "demand="   // matches of a demand
	termInst    = "inst="     // matches of an institution (registry id)
	termICode   = "icode="    // matches of an institution (credit code)
	termProduct = "prod="     // matches of a product
	termOverdue = "overdue=1" // matches with an overdue response or outcome
)

// mutateAttempts bounds how often a change is re-read and re-applied when
// another change to the same demand got in between.
const mutateAttempts = 5

func demandTerms(d *matchingv1.Demand) []string {
	t := []string{termState + stateName(d.GetState()), termEnt + d.GetEnterpriseCreditCode()}
	if d.GetNeedsAttention() {
		t = append(t, termAttn)
	}
	return t
}

func matchTerms(m *matchingv1.Match) []string {
	t := []string{
		termDemand + m.GetDemandId(),
		termInst + m.GetInstitutionId(),
		termICode + m.GetInstitutionCreditCode(),
		termProduct + m.GetProductId(),
		termEnt + m.GetEnterpriseCreditCode(),
		termState + stateName(m.GetState()),
	}
	if overdue(m) {
		t = append(t, termOverdue)
	}
	return t
}

// overdue: a response that came too late or never, or an outcome past its
// deadline.
func overdue(m *matchingv1.Match) bool { return m.GetResponseOverdue() || m.GetOutcomeOverdue() }

func decodeDemand(rec store.Record) (*matchingv1.Demand, error) {
	d := &matchingv1.Demand{}
	if err := proto.Unmarshal(rec.Data, d); err != nil {
		return nil, fmt.Errorf("matching: decode demand %s: %w", rec.ID, err)
	}
	d.Version = rec.Version
	return d, nil
}

func decodeMatch(rec store.Record) (*matchingv1.Match, error) {
	m := &matchingv1.Match{}
	if err := proto.Unmarshal(rec.Data, m); err != nil {
		return nil, fmt.Errorf("matching: decode match %s: %w", rec.ID, err)
	}
	m.Version = rec.Version
	return m, nil
}

// getDemand reads one demand; NotFound names the id.
func (s *Server) getDemand(ctx context.Context, id string) (*matchingv1.Demand, error) {
	rec, err := s.st.Get(ctx, kindDemand, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("demand", id)
	}
	if err != nil {
		return nil, fmt.Errorf("matching: get demand %s: %w", id, err)
	}
	return decodeDemand(rec)
}

// getMatch reads one match; NotFound names the id.
func (s *Server) getMatch(ctx context.Context, id string) (*matchingv1.Match, error) {
	rec, err := s.st.Get(ctx, kindMatch, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("match", id)
	}
	if err != nil {
		return nil, fmt.Errorf("matching: get match %s: %w", id, err)
	}
	return decodeMatch(rec)
}

// matchesOf reads every match of a demand, in proposal order.
func (s *Server) matchesOf(ctx context.Context, demandID string) ([]*matchingv1.Match, error) {
	var out []*matchingv1.Match
	err := s.scanMatches(ctx, termDemand+demandID, func(m *matchingv1.Match) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

// scanMatches calls fn for every match under an index term, in id order.
func (s *Server) scanMatches(ctx context.Context, term string, fn func(*matchingv1.Match) error) error {
	q := store.Query{Index: term, Limit: store.MaxLimit}
	for {
		page, err := s.st.List(ctx, kindMatch, q)
		if err != nil {
			return fmt.Errorf("matching: list matches %q: %w", term, err)
		}
		for _, rec := range page.Records {
			m, err := decodeMatch(rec)
			if err != nil {
				return err
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.After = page.Next
	}
}

// scanDemands calls fn for every demand under an index term, in id order.
func (s *Server) scanDemands(ctx context.Context, term string, fn func(*matchingv1.Demand) error) error {
	q := store.Query{Index: term, Limit: store.MaxLimit}
	for {
		page, err := s.st.List(ctx, kindDemand, q)
		if err != nil {
			return fmt.Errorf("matching: list demands %q: %w", term, err)
		}
		for _, rec := range page.Records {
			d, err := decodeDemand(rec)
			if err != nil {
				return err
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.After = page.Next
	}
}

// newAggregate is an empty change at the server's clock.
func (s *Server) newAggregate() *aggregate {
	return &aggregate{
		cfg:          s.cfg,
		now:          s.now().UTC(),
		subjects:     map[string]string{},
		readVersions: map[string]int64{},
		newID:        func() string { return events.NewID(s.now()) },
	}
}

// load reads a demand and its matches into an aggregate.
func (s *Server) load(ctx context.Context, demandID string) (*aggregate, error) {
	d, err := s.getDemand(ctx, demandID)
	if err != nil {
		return nil, err
	}
	ms, err := s.matchesOf(ctx, demandID)
	if err != nil {
		return nil, err
	}
	a := s.newAggregate()
	a.demand, a.demandRead, a.matches = d, d.GetVersion(), ms
	for _, m := range ms {
		a.readVersions[m.GetId()] = m.GetVersion()
	}
	return a, nil
}

// mutate is update-by-closure for a demand and its matches: it reads them,
// lets fn apply a rule, and writes the demand (always: it is the fence), the
// changed and new matches and every event in one batch. fn runs again on
// fresh data when another change to the demand committed in between; a rule
// that finds nothing to do changes nothing and nothing is written. It
// returns the aggregate as written.
func (s *Server) mutate(ctx context.Context, demandID string, fn func(a *aggregate) error) (*aggregate, error) {
	for attempt := 1; ; attempt++ {
		a, err := s.load(ctx, demandID)
		if err != nil {
			return nil, err
		}
		if err := fn(a); err != nil {
			return nil, err
		}
		if !a.changed() {
			return a, nil
		}
		err = s.write(ctx, a)
		var ce *store.ConflictError
		switch {
		case err == nil:
			return a, nil
		case errors.As(err, &ce) && attempt < mutateAttempts:
			continue
		case errors.As(err, &ce):
			return nil, errs.New(ErrStaleVersion, "demand %s kept changing while this change was made; read it again and retry", demandID)
		default:
			return nil, err
		}
	}
}

// write commits an aggregate's changes in one batch; a new demand (read at
// version 0) is created. The demand's put expects the version it was read
// at: that check is what keeps two changes of one demand, and so two
// proposals of one product to it, from both committing.
func (s *Server) write(ctx context.Context, a *aggregate) error {
	actor := events.ActorFrom(ctx)
	var b store.Batch
	d := a.demand
	d.Version = a.demandRead + 1
	data, err := proto.Marshal(d)
	if err != nil {
		return fmt.Errorf("matching: marshal demand: %w", err)
	}
	b.Puts = append(b.Puts, store.Put{Kind: kindDemand, ID: d.GetId(), Expect: a.demandRead, Data: data, Index: demandTerms(d)})
	if a.demandSubject != "" {
		ev, err := eventEncoded(actor, a.demandSubject, d.GetId(), d.GetVersion(), d, data, a.now)
		if err != nil {
			return err
		}
		b.Events = append(b.Events, ev)
	}
	for _, m := range a.matches {
		subject, ok := a.subjects[m.GetId()]
		if !ok {
			continue
		}
		read := a.readVersions[m.GetId()]
		m.Version = read + 1
		data, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("matching: marshal match: %w", err)
		}
		b.Puts = append(b.Puts, store.Put{Kind: kindMatch, ID: m.GetId(), Expect: read, Data: data, Index: matchTerms(m)})
		ev, err := eventEncoded(actor, subject, m.GetId(), m.GetVersion(), m, data, a.now)
		if err != nil {
			return err
		}
		b.Events = append(b.Events, ev)
	}
	b.Puts = append(b.Puts, a.extra...)
	if _, err := s.st.Apply(ctx, b); err != nil {
		// Put the read versions back: a retry reloads, and a caller that
		// gets the error must not see versions that were never written.
		d.Version = a.demandRead
		for _, m := range a.matches {
			m.Version = a.readVersions[m.GetId()]
		}
		if errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("matching: write demand %s: %w", d.GetId(), err)
	}
	for id := range a.subjects {
		a.readVersions[id] = a.match(id).GetVersion()
	}
	a.demandRead = d.GetVersion()
	return nil
}
