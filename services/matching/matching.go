// Package matching links enterprise demand with the desk's carbon-finance
// products ("enterprise posts, banks grab", DOMAIN.md): an enterprise posts a
// demand, the desk ranks the published products of active institutions
// (engine.go, an in-memory index) and proposes the top K as matches, each
// with its reasons; the first N institutions to accept take the demand, the
// enterprise confirms one, and that institution reports the outcome.
//
// Files: this one holds the district policy (Policy) and the lifecycle
// rules over a demand and its matches (the aggregate); engine.go the ranking
// engine; store.go persistence through store.Store; events.go the subjects;
// grpc.go the MatchingService server, validation and converters; feed.go the
// index feed (replaying the catalog's and registry's streams on every start)
// and the reactions to product and institution changes (durable consumers);
// watch.go WatchMatches; stats.go GetMatchStats; seeds.go the demo data.
//
// # The aggregate
//
// A demand and its matches change together: the N-accepted cap, confirm
// closing the others, a withdrawal closing what is open all look at several
// matches of one demand. So every change to any match rewrites its demand
// record too, with a version check, in the same batch: the demand's store
// version fences the whole aggregate, and two changes racing on one demand
// cannot both commit. Every path that proposes a match (post, reverse
// matching, re-offer) skips a product the demand already has a match of,
// and the demand's version check makes a change that read stale data run
// again, so a demand never gets two matches of one product.
//
// The stored form of demands and matches is their proto message: the rules
// below read and write it directly, since the service has one transport and
// one store and a parallel set of domain structs would only be copied back
// and forth.
//
// # Time
//
// Deadlines come from Policy and an injectable clock. Nothing expires by
// itself: Sweep (called on a ticker by Run, or by tests with their clock)
// expires unanswered proposals and lapsed demands, re-offers a demand left
// with no accepted match, and flags overdue outcomes.
package matching

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Name is the service's name: its store namespace, its stream (MATCHING)
// and the second part of its subjects.
const Name = "matching"

// ServiceName is the gRPC service's full name, for health checks.
const ServiceName = "carbondesk.matching.v1.MatchingService"

// The matching service's error kinds; each wraps the errs kind that gives
// its gRPC code.
var (
	// ErrInvalidTransition: the action does not apply to the state.
	ErrInvalidTransition = fmt.Errorf("matching: invalid transition: %w", errs.ErrFailedPrecondition)
	// ErrStaleVersion: the version the caller read is not the current one.
	ErrStaleVersion = fmt.Errorf("matching: stale version: %w", errs.ErrAborted)
	// ErrNotReady: the index is still replaying the catalog and registry.
	ErrNotReady = fmt.Errorf("matching: index loading: %w", errs.ErrUnavailable)
)

// Policy is the district's matching policy. No national rule fixes these
// numbers (DOMAIN.md): they are the district's to set.
type Policy struct {
	// ResponseDeadline: how long an institution has to accept or decline a
	// proposal. Default 72 h.
	ResponseDeadline time.Duration
	// OutcomeDeadline: how long, after the enterprise confirms, the
	// institution has to report the outcome. Default 7 days.
	OutcomeDeadline time.Duration
	// MaxAccepted: how many institutions may accept one demand; when that
	// many have, its other proposals close. Default 3.
	MaxAccepted int
	// TopK: how many products a proposal round proposes. Default 5.
	TopK int
	// SweepEvery: how often Run sweeps for deadlines. Default 1 min.
	SweepEvery time.Duration
	// WatchBuffer: how many changes one WatchMatches stream holds ready to
	// send, and how far behind the stream it may stay (see WatchGrace).
	// Default 256.
	WatchBuffer int
	// WatchGrace: how long a watcher may leave its buffer full, or stay
	// more than WatchBuffer changes behind without catching up, before it
	// is cut off. Default 5 s.
	WatchGrace time.Duration
	// ResponseWindow: how far back an institution's response record (the
	// score's "response" part, see response.go) looks. Default 180 days.
	ResponseWindow time.Duration
}

// DefaultPolicy is the policy when none is given.
func DefaultPolicy() Policy {
	return Policy{
		ResponseDeadline: 72 * time.Hour,
		OutcomeDeadline:  7 * 24 * time.Hour,
		MaxAccepted:      3,
		TopK:             5,
		SweepEvery:       time.Minute,
		WatchBuffer:      256,
		WatchGrace:       5 * time.Second,
		ResponseWindow:   180 * 24 * time.Hour,
	}
}

func (c Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if c.ResponseDeadline <= 0 {
		c.ResponseDeadline = d.ResponseDeadline
	}
	if c.OutcomeDeadline <= 0 {
		c.OutcomeDeadline = d.OutcomeDeadline
	}
	if c.MaxAccepted <= 0 {
		c.MaxAccepted = d.MaxAccepted
	}
	if c.TopK <= 0 {
		c.TopK = d.TopK
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = d.SweepEvery
	}
	if c.WatchBuffer <= 0 {
		c.WatchBuffer = d.WatchBuffer
	}
	if c.WatchGrace <= 0 {
		c.WatchGrace = d.WatchGrace
	}
	if c.ResponseWindow <= 0 {
		c.ResponseWindow = d.ResponseWindow
	}
	return c
}

// Short names for the states.
const (
	demandOpen      = matchingv1.DemandState_DEMAND_STATE_OPEN
	demandMatched   = matchingv1.DemandState_DEMAND_STATE_MATCHED
	demandFulfilled = matchingv1.DemandState_DEMAND_STATE_FULFILLED
	demandWithdrawn = matchingv1.DemandState_DEMAND_STATE_WITHDRAWN
	demandExpired   = matchingv1.DemandState_DEMAND_STATE_EXPIRED

	matchProposed  = matchingv1.MatchState_MATCH_STATE_PROPOSED
	matchAccepted  = matchingv1.MatchState_MATCH_STATE_ACCEPTED
	matchDeclined  = matchingv1.MatchState_MATCH_STATE_DECLINED
	matchExpired   = matchingv1.MatchState_MATCH_STATE_EXPIRED
	matchWithdrawn = matchingv1.MatchState_MATCH_STATE_WITHDRAWN
	matchClosed    = matchingv1.MatchState_MATCH_STATE_CLOSED
	matchConfirmed = matchingv1.MatchState_MATCH_STATE_CONFIRMED
	matchCompleted = matchingv1.MatchState_MATCH_STATE_COMPLETED
	matchFailed    = matchingv1.MatchState_MATCH_STATE_FAILED
)

// matchMoves is the match state machine: the states each state may move to.
var matchMoves = map[matchingv1.MatchState][]matchingv1.MatchState{
	matchProposed:  {matchAccepted, matchDeclined, matchExpired, matchWithdrawn, matchClosed},
	matchAccepted:  {matchConfirmed, matchClosed},
	matchConfirmed: {matchCompleted, matchFailed},
}

// stateName is an enum's short name: "PROPOSED", "OPEN".
func stateName[E interface{ String() string }](e E) string { return enumKey(e.String()) }

// enumKey drops the enum's type prefix: "MATCH_STATE_PROPOSED" → "PROPOSED".
func enumKey(s string) string {
	for _, p := range []string{"MATCH_STATE_", "DEMAND_STATE_", "FAILURE_REASON_", "PRODUCT_CATEGORY_", "DEMAND_KIND_", "SECTOR_", "ZONE_"} {
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}

// product is what the aggregate needs to know of a product when it proposes
// a match: who owns it, and its category.
type product struct {
	ID              string
	InstitutionID   string
	InstitutionCode string
	Category        catalogv1.ProductCategory
	Zone            string // the owning institution's zone, registry enum name
}

// aggregate is a demand with its matches, as read, and what a change did to
// them. Rules change the messages in place and record the event subject of
// each entity they changed; store.go writes the changed ones.
type aggregate struct {
	cfg    Policy
	now    time.Time
	demand *matchingv1.Demand
	// demandSubject is the subject of the demand's event, "" when its
	// visible state did not change (it is rewritten anyway, as the fence).
	demandSubject string
	matches       []*matchingv1.Match // proposal order (ids are ULIDs)
	// subjects of changed matches, by match id.
	subjects map[string]string
	// readVersions: the store version of each match as read.
	readVersions map[string]int64
	demandRead   int64
	newID        func() string
	// extra puts to write in the same batch (a seed's marker).
	extra []store.Put
}

func (a *aggregate) match(id string) *matchingv1.Match {
	for _, m := range a.matches {
		if m.GetId() == id {
			return m
		}
	}
	return nil
}

// changed reports whether the change touched anything.
func (a *aggregate) changed() bool { return a.demandSubject != "" || len(a.subjects) > 0 }

// move changes a match's state after checking the state machine, recording
// the event subject (carbondesk.matching.match.<to>).
func (a *aggregate) move(m *matchingv1.Match, to matchingv1.MatchState, reason string) error {
	if !slices.Contains(matchMoves[m.GetState()], to) {
		return errs.New(ErrInvalidTransition, "match %s is %s; it cannot become %s", m.GetId(), stateName(m.GetState()), stateName(to))
	}
	m.State = to
	if reason != "" {
		m.StateReason = reason
	}
	m.UpdateTime = timestamppb.New(a.now)
	a.touch(m, matchSubject(to))
	return nil
}

// touch records that m changed, with its event subject. A later subject of
// the same change wins (a proposal that also expires in one sweep does not
// happen; a flag after a move keeps the move's subject).
func (a *aggregate) touch(m *matchingv1.Match, subject string) {
	if _, ok := a.subjects[m.GetId()]; ok && subject == SubjectMatchFlagged {
		return
	}
	a.subjects[m.GetId()] = subject
	m.UpdateTime = timestamppb.New(a.now)
}

func (a *aggregate) setDemand(state matchingv1.DemandState, subject string) {
	if state != 0 {
		a.demand.State = state
	}
	a.demandSubject = subject
	a.demand.UpdateTime = timestamppb.New(a.now)
}

// flag marks the demand for staff.
func (a *aggregate) flag(reason string) {
	a.demand.NeedsAttention = true
	a.demand.AttentionReason = reason
	if a.demandSubject == "" {
		a.demandSubject = SubjectDemandFlagged
	}
	a.demand.UpdateTime = timestamppb.New(a.now)
}

// live counts the matches still in play: PROPOSED and ACCEPTED.
func (a *aggregate) live() (proposed, accepted int) {
	for _, m := range a.matches {
		switch m.GetState() {
		case matchProposed:
			proposed++
		case matchAccepted:
			accepted++
		}
	}
	return proposed, accepted
}

// has reports whether the demand already has a match of the product.
func (a *aggregate) has(productID string) bool {
	return slices.ContainsFunc(a.matches, func(m *matchingv1.Match) bool { return m.GetProductId() == productID })
}

// propose adds a PROPOSED match of product p for the demand, at the given
// rank, with the engine's reasons. The caller made sure the pair is new.
func (a *aggregate) propose(p product, c Candidate, rank int, reoffer, reverse bool) *matchingv1.Match {
	d := a.demand
	m := &matchingv1.Match{
		Id:                    a.newID(),
		DemandId:              d.GetId(),
		ProductId:             p.ID,
		InstitutionId:         p.InstitutionID,
		InstitutionCreditCode: p.InstitutionCode,
		EnterpriseCreditCode:  d.GetEnterpriseCreditCode(),
		Category:              p.Category,
		Sector:                d.GetSector(),
		InstitutionZone:       zoneFromName(p.Zone),
		Rank:                  int32(rank),
		Score:                 c.Score,
		State:                 matchProposed,
		Reoffer:               reoffer,
		Reverse:               reverse,
		ResponseDeadline:      timestamppb.New(a.now.Add(a.cfg.ResponseDeadline)),
		CreateTime:            timestamppb.New(a.now),
		UpdateTime:            timestamppb.New(a.now),
	}
	for _, ch := range c.Checks {
		m.Checks = append(m.Checks, &matchingv1.Check{Name: ch.Name, Ok: ch.OK, Detail: ch.Detail})
	}
	for _, sp := range c.Parts {
		m.ScoreParts = append(m.ScoreParts, &matchingv1.ScorePart{Name: sp.Name, Weight: sp.Weight, Value: sp.Value, Contribution: sp.Contribution, Detail: sp.Detail})
	}
	a.matches = append(a.matches, m)
	a.subjects[m.Id] = SubjectMatchProposed
	return m
}

// checkMatchVersion compares the version a caller read with the match's
// (0: no check).
func checkMatchVersion(m *matchingv1.Match, want int64) error {
	if want == 0 || want == m.GetVersion() {
		return nil
	}
	return errs.New(ErrStaleVersion, "version %d of match %s is stale; it is at version %d; read it again", want, m.GetId(), m.GetVersion())
}

// accept: the institution takes a PROPOSED match, before its response
// deadline, while the demand is OPEN and below the cap. Reaching the cap
// closes the demand's other proposals.
func (a *aggregate) accept(m *matchingv1.Match) error {
	if m.GetState() != matchProposed {
		return errs.New(ErrInvalidTransition, "match %s is %s; only a PROPOSED match can be accepted", m.GetId(), stateName(m.GetState()))
	}
	if a.demand.GetState() != demandOpen {
		return errs.New(ErrInvalidTransition, "demand %s is %s; only an OPEN demand's matches can be accepted", a.demand.GetId(), stateName(a.demand.GetState()))
	}
	if dl := m.GetResponseDeadline().AsTime(); a.now.After(dl) {
		return errs.New(ErrInvalidTransition, "match %s is PROPOSED but its response deadline passed at %s; it expires", m.GetId(), dl.Format(time.RFC3339))
	}
	if int(a.demand.GetAcceptedCount()) >= a.cfg.MaxAccepted {
		return errs.New(ErrInvalidTransition, "demand %s already has %d accepted matches, the district's limit", a.demand.GetId(), a.demand.GetAcceptedCount())
	}
	if err := a.move(m, matchAccepted, ""); err != nil {
		return err
	}
	m.AcceptTime = timestamppb.New(a.now)
	a.demand.AcceptedCount++
	a.setDemand(0, "")
	if int(a.demand.GetAcceptedCount()) >= a.cfg.MaxAccepted {
		reason := fmt.Sprintf("%d institutions accepted the demand first (the district's limit)", a.cfg.MaxAccepted)
		for _, o := range a.matches {
			if o.GetState() == matchProposed {
				_ = a.move(o, matchClosed, reason)
			}
		}
	}
	return nil
}

// decline: the institution passes on a PROPOSED match.
func (a *aggregate) decline(m *matchingv1.Match, reason string) error {
	if m.GetState() != matchProposed {
		return errs.New(ErrInvalidTransition, "match %s is %s; only a PROPOSED match can be declined", m.GetId(), stateName(m.GetState()))
	}
	if reason == "" {
		reason = "declined by the institution"
	}
	return a.move(m, matchDeclined, reason)
}

// confirm: the enterprise picks one ACCEPTED match; the other accepted and
// proposed ones close, and the outcome clock starts.
func (a *aggregate) confirm(m *matchingv1.Match) error {
	if m.GetState() != matchAccepted {
		return errs.New(ErrInvalidTransition, "match %s is %s; the enterprise confirms one of its ACCEPTED matches", m.GetId(), stateName(m.GetState()))
	}
	if a.demand.GetState() != demandOpen {
		return errs.New(ErrInvalidTransition, "demand %s is %s; only an OPEN demand confirms a match", a.demand.GetId(), stateName(a.demand.GetState()))
	}
	if err := a.move(m, matchConfirmed, ""); err != nil {
		return err
	}
	m.ConfirmTime = timestamppb.New(a.now)
	m.OutcomeDeadline = timestamppb.New(a.now.Add(a.cfg.OutcomeDeadline))
	for _, o := range a.matches {
		if o != m && (o.GetState() == matchAccepted || o.GetState() == matchProposed) {
			_ = a.move(o, matchClosed, "the enterprise confirmed another match")
		}
	}
	a.demand.ConfirmedMatchId = m.GetId()
	a.setDemand(demandMatched, SubjectDemandMatched)
	return nil
}

// report records the outcome of the CONFIRMED match. A report after the
// outcome deadline is recorded (the deal happened or not either way) and
// the match stays flagged overdue. A failure reopens the demand for staff.
func (a *aggregate) report(m *matchingv1.Match, out *matchingv1.Outcome, completed bool) error {
	if m.GetState() != matchConfirmed {
		return errs.New(ErrInvalidTransition, "match %s is %s; only a CONFIRMED match has an outcome to report", m.GetId(), stateName(m.GetState()))
	}
	to := matchFailed
	if completed {
		to = matchCompleted
	}
	if err := a.move(m, to, ""); err != nil {
		return err
	}
	if a.now.After(m.GetOutcomeDeadline().AsTime()) {
		m.OutcomeOverdue = true
	}
	m.Outcome = out
	m.OutcomeTime = timestamppb.New(a.now)
	if completed {
		a.setDemand(demandFulfilled, SubjectDemandFulfilled)
		return nil
	}
	a.demand.ConfirmedMatchId = ""
	a.demand.AcceptedCount = 0
	a.setDemand(demandOpen, SubjectDemandReopened)
	a.flag(fmt.Sprintf("the confirmed match failed (%s); re-offered to the next-ranked products", stateName(out.GetFailureReason())))
	a.demandSubject = SubjectDemandReopened
	return nil
}

// withdraw: the enterprise withdraws an OPEN demand; its proposals are
// withdrawn and its accepted matches closed.
func (a *aggregate) withdraw(reason string) error {
	if a.demand.GetState() != demandOpen {
		hint := ""
		if a.demand.GetState() == demandMatched {
			hint = "; a confirmed match ends with its outcome: ask the institution to report FAILED with ENTERPRISE_WITHDREW"
		}
		return errs.New(ErrInvalidTransition, "demand %s is %s; only an OPEN demand can be withdrawn%s", a.demand.GetId(), stateName(a.demand.GetState()), hint)
	}
	if reason == "" {
		reason = "withdrawn by the enterprise"
	}
	for _, m := range a.matches {
		switch m.GetState() {
		case matchProposed:
			_ = a.move(m, matchWithdrawn, "the enterprise withdrew the demand")
		case matchAccepted:
			_ = a.move(m, matchClosed, "the enterprise withdrew the demand")
		}
	}
	a.demand.StateReason = reason
	a.setDemand(demandWithdrawn, SubjectDemandWithdrawn)
	return nil
}

// withdrawProposed withdraws the PROPOSED matches for which pick holds (a
// paused product, a suspended institution).
func (a *aggregate) withdrawProposed(pick func(*matchingv1.Match) bool, reason string) {
	for _, m := range a.matches {
		if m.GetState() == matchProposed && pick(m) {
			_ = a.move(m, matchWithdrawn, reason)
		}
	}
}

// ranker is what the rules need of the engine.
type ranker interface {
	rank(d *matchingv1.Demand, k int, exclude func(string) bool) []Candidate
	product(id string) (product, bool)
}

// offer proposes up to k of the best products not yet matched with the
// demand; it returns how many it proposed.
func (a *aggregate) offer(r ranker, k int, reoffer bool) int {
	n := 0
	for _, c := range r.rank(a.demand, k, a.has) {
		p, ok := r.product(c.ProductID)
		if !ok || a.has(c.ProductID) {
			continue
		}
		n++
		a.propose(p, c, n, reoffer, false)
	}
	return n
}

// admit proposes p (candidate c) when it ranks within the top k among
// the demand's live proposals, as reverse matching does; it reports whether
// it did.
func (a *aggregate) admit(p product, c Candidate, k int) bool {
	rank := 1
	for _, m := range a.matches {
		if st := m.GetState(); (st == matchProposed || st == matchAccepted) && (m.GetScore() > c.Score || (m.GetScore() == c.Score && m.GetProductId() < c.ProductID)) {
			rank++
		}
	}
	if rank > k {
		return false
	}
	a.propose(p, c, rank, false, true)
	return true
}

// sweep applies the deadlines at a.now: a lapsed demand expires with its
// open matches; unanswered proposals past their deadline expire; an OPEN
// demand left with nothing proposed or accepted is re-offered to the
// next-ranked products and flagged for staff; a confirmed match past its
// outcome deadline is flagged overdue.
func (a *aggregate) sweep(r ranker) {
	d := a.demand
	if d.GetState() == demandOpen && d.GetDeadline() != nil && a.now.After(d.GetDeadline().AsTime()) {
		for _, m := range a.matches {
			switch m.GetState() {
			case matchProposed:
				m.ResponseOverdue = a.now.After(m.GetResponseDeadline().AsTime())
				_ = a.move(m, matchExpired, "the demand's deadline passed")
			case matchAccepted:
				_ = a.move(m, matchClosed, "the demand's deadline passed before the enterprise confirmed a match")
			}
		}
		d.StateReason = "the deadline passed without a confirmed match"
		a.setDemand(demandExpired, SubjectDemandExpired)
		return
	}
	for _, m := range a.matches {
		switch m.GetState() {
		case matchProposed:
			if a.now.After(m.GetResponseDeadline().AsTime()) {
				m.ResponseOverdue = true
				_ = a.move(m, matchExpired, "no answer before the response deadline")
			}
		case matchConfirmed:
			if !m.GetOutcomeOverdue() && a.now.After(m.GetOutcomeDeadline().AsTime()) {
				m.OutcomeOverdue = true
				a.touch(m, SubjectMatchFlagged)
			}
		}
	}
	if d.GetState() != demandOpen {
		return
	}
	if proposed, accepted := a.live(); proposed > 0 || accepted > 0 {
		return
	}
	if n := a.offer(r, a.cfg.TopK, true); n > 0 {
		d.ReofferCount++
		a.flag(fmt.Sprintf("no institution took the earlier proposals; re-offered to %d more products (round %d)", n, d.ReofferCount))
		a.demandSubject = SubjectDemandReoffered
		return
	}
	if !d.GetNeedsAttention() {
		a.flag("no eligible product is left to propose; staff should follow up")
	}
}
