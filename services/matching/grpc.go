package matching

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

// Limits on what a request may carry.
const (
	maxName        = 100
	maxDescription = 2000
	maxReason      = 500
	maxCategories  = 16
	maxAmountYuan  = 1_000_000_000_000
	maxTermMonths  = 360
	maxTonnes      = 1_000_000_000
	maxRateBps     = 5000
	maxDeadline    = 366 * 24 * time.Hour
)

// Server implements matchingv1.MatchingServiceServer over a store.Store and
// the ranking engine. Handlers return domain errors (package errs); the gRPC
// server's interceptor turns them into statuses.
type Server struct {
	matchingv1.UnimplementedMatchingServiceServer

	st     store.Store
	engine *Engine
	cfg    Policy
	now    func() time.Time
	log    *slog.Logger
	dir    *directory
	hub    *watchHub // live watchers' shared feed
	tune   func(*consumer.Config)
	// sweepGate, when set, says whether this replica runs the sweep at a
	// tick (it holds the sweep's lease); nil: always.
	sweepGate func() bool
	// afterRank, tests only: runs between a new demand's ranking and its
	// write, to land a product in that window.
	afterRank func()

	// Set by Run.
	jsMu     sync.RWMutex
	js       jetstream.JetStream
	running  atomic.Bool
	caughtUp atomic.Bool
	caughtCh chan struct{}
	once     sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithPolicy sets the district's policy (zero fields take the defaults).
func WithPolicy(p Policy) Option { return func(s *Server) { s.cfg = p.withDefaults() } }

// WithClock sets the clock (default time.Now); tests pin it.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithConsumerConfig adjusts the durable consumers' configuration (tests
// shorten delays).
func WithConsumerConfig(f func(*consumer.Config)) Option { return func(s *Server) { s.tune = f } }

// WithSweepGate makes Run's sweep loop sweep only at ticks where gate
// returns true: with several replicas, only the one holding the sweep's
// lease sweeps.
func WithSweepGate(gate func() bool) Option { return func(s *Server) { s.sweepGate = gate } }

// New returns the matching service over st (scoped to matching, see
// store.Store) and engine (NewEngine; nil: one with the policy's TopK).
func New(st store.Store, engine *Engine, opts ...Option) *Server {
	s := &Server{st: st, engine: engine, cfg: DefaultPolicy(), now: time.Now, log: slog.New(slog.DiscardHandler),
		dir: newDirectory(), caughtCh: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.engine == nil {
		s.engine = NewEngine(Config{TopK: s.cfg.TopK})
	}
	s.dir.responses = newResponseBook(s.cfg.ResponseWindow)
	s.hub = newWatchHub(s)
	return s
}

// Register registers the service on a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	matchingv1.RegisterMatchingServiceServer(g, s)
}

// ready refuses to rank while Run is replaying the feeds: a demand ranked
// against half an index would get worse matches for good.
func (s *Server) ready() error {
	if s.running.Load() && !s.caughtUp.Load() {
		return errs.New(ErrNotReady, "the matching index is still loading the catalog; retry in a few seconds")
	}
	return nil
}

// PostDemand files a demand and proposes its first matches in one write.
func (s *Server) PostDemand(ctx context.Context, req *matchingv1.PostDemandRequest) (*matchingv1.PostDemandResponse, error) {
	d, err := validateDemand(ctx, req.GetDemand(), s.now())
	if err != nil {
		return nil, err
	}
	if !auth.Owns(ctx, d.GetEnterpriseCreditCode()) {
		return nil, errs.PermissionDenied("an enterprise posts demand only for itself: enterprise_credit_code %s is not your organisation's", d.GetEnterpriseCreditCode())
	}
	if err := s.ready(); err != nil {
		return nil, err
	}
	a, err := s.post(ctx, d)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "matching: demand posted", "id", d.GetId(), "enterprise", d.GetEnterpriseCreditCode(), "proposed", len(a.matches))
	return &matchingv1.PostDemandResponse{Demand: a.demand, Matches: a.matches}, nil
}

// post stores a validated demand with its first proposals, and extra puts
// in the same batch.
func (s *Server) post(ctx context.Context, d *matchingv1.Demand, extra ...store.Put) (*aggregate, error) {
	a := s.newAggregate()
	d.Id = events.NewID(a.now)
	d.State = demandOpen
	d.CreateTime = timestamppb.New(a.now)
	d.UpdateTime = d.CreateTime
	a.demand = d
	seen := s.engine.Changes()
	if a.offer(s.ranker(), s.cfg.TopK, false) == 0 {
		a.flag("no published product fits the demand yet; staff should follow up")
	}
	a.demandSubject = SubjectDemandPosted
	a.extra = extra
	if s.afterRank != nil {
		s.afterRank()
	}
	if err := s.write(ctx, a); err != nil {
		return nil, err
	}
	if s.engine.Changes() != seen {
		if late, err := s.admitLate(ctx, d.GetId()); err != nil {
			// The demand is posted; the product's next change or the
			// deadline sweep's re-offer still reaches it.
			s.log.WarnContext(ctx, "matching: a product indexed while the demand was being posted was not checked against it", "demand", d.GetId(), "error", err)
		} else {
			a = late
		}
	}
	return a, nil
}

// admitLate closes the window between ranking a new demand and storing it:
// a product indexed in that window was not seen by the rank, and its
// reverse matching may have listed the open demands before this one was
// stored, so neither would propose it. The demand is ranked again, and
// each product it now ranks that it has no match of joins its proposals
// as reverse matching would have added it.
func (s *Server) admitLate(ctx context.Context, demandID string) (*aggregate, error) {
	return s.mutate(ctx, demandID, func(a *aggregate) error {
		if a.demand.GetState() != demandOpen || int(a.demand.GetAcceptedCount()) >= s.cfg.MaxAccepted {
			return nil
		}
		r := s.ranker()
		for _, c := range r.rank(a.demand, s.cfg.TopK, a.has) {
			if p, ok := r.product(c.ProductID); ok && !a.has(c.ProductID) {
				a.admit(p, c, s.cfg.TopK)
			}
		}
		return nil
	})
}

// validateDemand checks a posted demand and returns its clean copy. The
// enterprise's code defaults to the caller's organisation.
func validateDemand(ctx context.Context, in *matchingv1.Demand, now time.Time) (*matchingv1.Demand, error) {
	var v errs.Violations
	if in == nil {
		return nil, errs.Invalid("demand", "is required")
	}
	code := strings.TrimSpace(in.GetEnterpriseCreditCode())
	if c, ok := auth.CallerFrom(ctx); ok && c.Role == auth.Enterprise && code == "" {
		code = c.Org
	}
	norm, err := registry.ValidateCreditCode(code)
	var cce *registry.CreditCodeError
	switch {
	case code == "":
		v.Add("demand.enterprise_credit_code", "is required: the enterprise's unified social credit code")
	case errors.As(err, &cce):
		v.Add("demand.enterprise_credit_code", "%q: %s", errs.Shorten(code, 40), cce.Problem)
	}
	name := strings.TrimSpace(in.GetEnterpriseName())
	checkText(&v, "demand.enterprise_name", name, maxName, true)
	if _, ok := catalogv1.Sector_name[int32(in.GetSector())]; !ok || in.GetSector() == 0 {
		v.Add("demand.sector", "%d: give the enterprise's sector (SECTOR_POWER ... SECTOR_OTHER)", in.GetSector())
	}
	region := strings.TrimSpace(in.GetRegion())
	if !isRegion(region) {
		v.Add("demand.region", "%q: a six-digit GB/T 2260 code such as 420106 (Wuchang)", errs.Shorten(region, 20))
	}
	if _, ok := registryv1.Zone_name[int32(in.GetZone())]; !ok {
		v.Add("demand.zone", "unknown value %d", in.GetZone())
	}
	if _, ok := catalogv1.DemandKind_name[int32(in.GetKind())]; !ok || in.GetKind() == 0 {
		v.Add("demand.kind", "%d: give what the enterprise asks for (DEMAND_KIND_FINANCING ...)", in.GetKind())
	}
	if n := len(in.GetCategories()); n > maxCategories {
		v.Add("demand.categories", "has %d entries; at most %d", n, maxCategories)
	}
	for i, c := range in.GetCategories() {
		if _, ok := catalogv1.ProductCategory_name[int32(c)]; !ok || c == 0 {
			v.Add(fmt.Sprintf("demand.categories[%d]", i), "unknown category %d", c)
		}
	}
	if a := in.GetAmountYuan(); a < 1 || a > maxAmountYuan {
		v.Add("demand.amount_yuan", "%d: whole yuan, 1 to %d", a, int64(maxAmountYuan))
	}
	if t := in.GetTermMonths(); t < 0 || t > maxTermMonths {
		v.Add("demand.term_months", "%d: 0 (no term) to %d months", t, maxTermMonths)
	}
	for _, f := range []struct {
		name string
		val  int64
	}{{"demand.cea_tonnes", in.GetCeaTonnes()}, {"demand.ccer_tonnes", in.GetCcerTonnes()}, {"demand.annual_emissions_tonnes", in.GetAnnualEmissionsTonnes()}} {
		if f.val < 0 || f.val > maxTonnes {
			v.Add(f.name, "%d: whole tonnes, 0 to %d", f.val, maxTonnes)
		}
	}
	desc := strings.TrimSpace(in.GetDescription())
	checkText(&v, "demand.description", desc, maxDescription, false)
	switch dl := in.GetDeadline(); {
	case dl == nil:
		v.Add("demand.deadline", "is required: until when the enterprise needs an answer")
	case !dl.AsTime().After(now):
		v.Add("demand.deadline", "%s is not in the future", dl.AsTime().UTC().Format(time.RFC3339))
	case dl.AsTime().Sub(now) > maxDeadline:
		v.Add("demand.deadline", "%s is more than a year away", dl.AsTime().UTC().Format(time.RFC3339))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return &matchingv1.Demand{
		EnterpriseCreditCode:  norm,
		EnterpriseName:        name,
		Sector:                in.GetSector(),
		EtsCovered:            in.GetEtsCovered(),
		Region:                region,
		Zone:                  in.GetZone(),
		Kind:                  in.GetKind(),
		Categories:            in.GetCategories(),
		AmountYuan:            in.GetAmountYuan(),
		TermMonths:            in.GetTermMonths(),
		CeaTonnes:             in.GetCeaTonnes(),
		CcerTonnes:            in.GetCcerTonnes(),
		AnnualEmissionsTonnes: in.GetAnnualEmissionsTonnes(),
		Description:           desc,
		Deadline:              timestamppb.New(in.GetDeadline().AsTime().UTC()),
	}, nil
}

func checkText(v *errs.Violations, field, s string, max int, required bool) {
	switch n := utf8.RuneCountInString(s); {
	case n == 0 && required:
		v.Add(field, "is required")
	case n > max:
		v.Add(field, "is %d characters long; at most %d", n, max)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }):
		v.Add(field, "contains control characters")
	}
}

func isRegion(s string) bool {
	if len(s) != 6 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// seesDemand: staff see every demand, an enterprise its own, an
// institution those it holds a match on.
func (s *Server) seesDemand(ctx context.Context, d *matchingv1.Demand, ms []*matchingv1.Match) bool {
	if auth.Owns(ctx, d.GetEnterpriseCreditCode()) {
		return true
	}
	c, _ := auth.CallerFrom(ctx)
	if c.Role != auth.Institution {
		return false
	}
	for _, m := range ms {
		if m.GetInstitutionCreditCode() == c.Org {
			return true
		}
	}
	return false
}

// visibleMatches keeps the matches the caller may see.
func visibleMatches(ctx context.Context, ms []*matchingv1.Match) []*matchingv1.Match {
	out := ms[:0:0]
	for _, m := range ms {
		if seesMatch(ctx, m) {
			out = append(out, m)
		}
	}
	return out
}

// seesMatch: staff see all, an institution its own, an enterprise its
// demands'.
func seesMatch(ctx context.Context, m *matchingv1.Match) bool {
	c, ok := auth.CallerFrom(ctx)
	switch {
	case !ok || c.Role == auth.Staff:
		return true
	case c.Role == auth.Institution:
		return c.Org != "" && c.Org == m.GetInstitutionCreditCode()
	case c.Role == auth.Enterprise:
		return c.Org != "" && c.Org == m.GetEnterpriseCreditCode()
	}
	return false
}

// GetDemand reads a demand with the matches the caller may see.
func (s *Server) GetDemand(ctx context.Context, req *matchingv1.GetDemandRequest) (*matchingv1.GetDemandResponse, error) {
	if req.GetId() == "" {
		return nil, errs.Invalid("id", "is required")
	}
	d, err := s.getDemand(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	ms, err := s.matchesOf(ctx, d.GetId())
	if err != nil {
		return nil, err
	}
	if !s.seesDemand(ctx, d, ms) {
		return nil, errs.NotFound("demand", req.GetId())
	}
	return &matchingv1.GetDemandResponse{Demand: d, Matches: visibleMatches(ctx, ms)}, nil
}

// fingerprint binds a page token to the filters it was issued for.
func fingerprint(parts ...any) string { return paging.Fingerprint(fmt.Append(nil, parts...)) }

// pageTokens checks the list calls' page tokens. A token without a
// filter fingerprint counts as issued for other filters.
var pageTokens = paging.Check{Refilter: "repeat the first call's filters", FilterOptional: true}

// ListDemands lists demands in posting order. An enterprise sees its own
// only, whatever enterprise_credit_code says.
func (s *Server) ListDemands(ctx context.Context, req *matchingv1.ListDemandsRequest) (*matchingv1.ListDemandsResponse, error) {
	var v errs.Violations
	if _, ok := matchingv1.DemandState_name[int32(req.GetState())]; !ok {
		v.Add("state", "unknown value %d", req.GetState())
	}
	code := strings.TrimSpace(req.GetEnterpriseCreditCode())
	if c, ok := auth.CallerFrom(ctx); ok && c.Role != auth.Staff {
		code = c.Org
	}
	print := fingerprint(req.GetState(), code, req.GetNeedsAttention())
	size := paging.Size(&v, req.GetPageSize())
	after := pageTokens.After(&v, req.GetPageToken(), print)
	if err := v.Err(); err != nil {
		return nil, err
	}
	term := ""
	switch {
	case code != "":
		term = termEnt + code
	case req.GetNeedsAttention():
		term = termAttn
	case req.GetState() != 0:
		term = termState + stateName(req.GetState())
	}
	match := func(rec store.Record) bool {
		d, err := decodeDemand(rec)
		return err != nil || ((req.GetState() == 0 || d.GetState() == req.GetState()) &&
			(code == "" || d.GetEnterpriseCreditCode() == code) &&
			(!req.GetNeedsAttention() || d.GetNeedsAttention()))
	}
	q := store.Query{Index: term, After: after, Match: match}
	recs, next, err := paging.List(ctx, s.st, kindDemand, q, size, print)
	if err != nil {
		return nil, fmt.Errorf("matching: list %s: %w", kindDemand, err)
	}
	resp := &matchingv1.ListDemandsResponse{NextPageToken: next}
	for _, rec := range recs {
		d, err := decodeDemand(rec)
		if err != nil {
			return nil, err
		}
		resp.Demands = append(resp.Demands, d)
	}
	return resp, nil
}

// WithdrawDemand withdraws an OPEN demand.
func (s *Server) WithdrawDemand(ctx context.Context, req *matchingv1.WithdrawDemandRequest) (*matchingv1.WithdrawDemandResponse, error) {
	var v errs.Violations
	if req.GetId() == "" {
		v.Add("id", "is required")
	}
	if req.GetVersion() < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0 to skip the check", req.GetVersion())
	}
	reason := strings.TrimSpace(req.GetReason())
	checkText(&v, "reason", reason, maxReason, false)
	if err := v.Err(); err != nil {
		return nil, err
	}
	a, err := s.mutate(ctx, req.GetId(), func(a *aggregate) error {
		if !auth.Owns(ctx, a.demand.GetEnterpriseCreditCode()) {
			return errs.NotFound("demand", req.GetId())
		}
		if w := req.GetVersion(); w != 0 && w != a.demand.GetVersion() {
			return errs.New(ErrStaleVersion, "version %d of demand %s is stale; it is at version %d; read it again", w, req.GetId(), a.demand.GetVersion())
		}
		return a.withdraw(reason)
	})
	if err != nil {
		return nil, err
	}
	return &matchingv1.WithdrawDemandResponse{Demand: a.demand}, nil
}

// ListMatches lists matches in proposal order, by demand, institution,
// state or overdue flag; non-staff callers see their own only.
func (s *Server) ListMatches(ctx context.Context, req *matchingv1.ListMatchesRequest) (*matchingv1.ListMatchesResponse, error) {
	var v errs.Violations
	if _, ok := matchingv1.MatchState_name[int32(req.GetState())]; !ok {
		v.Add("state", "unknown value %d", req.GetState())
	}
	print := fingerprint(req.GetDemandId(), req.GetInstitutionId(), req.GetState(), req.GetOverdue())
	size := paging.Size(&v, req.GetPageSize())
	after := pageTokens.After(&v, req.GetPageToken(), print)
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, hasCaller := auth.CallerFrom(ctx)
	term := ""
	switch {
	case req.GetDemandId() != "":
		term = termDemand + req.GetDemandId()
	case req.GetInstitutionId() != "":
		term = termInst + req.GetInstitutionId()
	case hasCaller && c.Role == auth.Institution:
		term = termICode + c.Org
	case hasCaller && c.Role == auth.Enterprise:
		term = termEnt + c.Org
	case req.GetOverdue():
		term = termOverdue
	case req.GetState() != 0:
		term = termState + stateName(req.GetState())
	}
	match := func(rec store.Record) bool {
		m, err := decodeMatch(rec)
		return err != nil || ((req.GetDemandId() == "" || m.GetDemandId() == req.GetDemandId()) &&
			(req.GetInstitutionId() == "" || m.GetInstitutionId() == req.GetInstitutionId()) &&
			(req.GetState() == 0 || m.GetState() == req.GetState()) &&
			(!req.GetOverdue() || overdue(m)) && seesMatch(ctx, m))
	}
	q := store.Query{Index: term, After: after, Match: match}
	recs, next, err := paging.List(ctx, s.st, kindMatch, q, size, print)
	if err != nil {
		return nil, fmt.Errorf("matching: list %s: %w", kindMatch, err)
	}
	resp := &matchingv1.ListMatchesResponse{NextPageToken: next}
	for _, rec := range recs {
		m, err := decodeMatch(rec)
		if err != nil {
			return nil, err
		}
		resp.Matches = append(resp.Matches, m)
	}
	return resp, nil
}

// ExplainMatch explains how a product fares against a demand, matched or
// not: the enterprise for its own demand, staff for any.
func (s *Server) ExplainMatch(ctx context.Context, req *matchingv1.ExplainMatchRequest) (*matchingv1.ExplainMatchResponse, error) {
	var v errs.Violations
	if req.GetDemandId() == "" {
		v.Add("demand_id", "is required")
	}
	if req.GetProductId() == "" {
		v.Add("product_id", "is required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	d, err := s.getDemand(ctx, req.GetDemandId())
	if err != nil {
		return nil, err
	}
	if err := auth.MustOwn(ctx, d.GetEnterpriseCreditCode(), "demand", req.GetDemandId()); err != nil {
		return nil, err
	}
	x, ok := s.engine.Explain(demandView(d), req.GetProductId())
	if !ok {
		return nil, errs.NotFound("product", req.GetProductId())
	}
	// The demand's match of the product, if any: a demand has a few matches
	// (TopK a proposal round), at most one per product.
	ms, err := s.matchesOf(ctx, d.GetId())
	if err != nil {
		return nil, err
	}
	var match *matchingv1.Match
	for _, m := range ms {
		if m.GetProductId() == req.GetProductId() {
			match = m
			break
		}
	}
	// The checks show the product's terms. Those of a product that is not
	// PUBLISHED (a draft, a paused one) are for staff and its institution
	// (the catalog's rule), or for the enterprise it was matched with.
	if !x.Published && match == nil && !auth.IsStaff(ctx) {
		return nil, errs.NotFound("product", req.GetProductId())
	}
	resp := &matchingv1.ExplainMatchResponse{Eligible: x.Eligible, Score: x.Score, Match: match}
	for _, c := range x.Checks {
		resp.Checks = append(resp.Checks, &matchingv1.Check{Name: c.Name, Ok: c.OK, Detail: c.Detail})
	}
	for _, p := range x.Parts {
		resp.ScoreParts = append(resp.ScoreParts, &matchingv1.ScorePart{Name: p.Name, Weight: p.Weight, Value: p.Value, Contribution: p.Contribution, Detail: p.Detail})
	}
	return resp, nil
}

// onMatch applies a rule to one match of the caller's: owner picks whose
// it is (the institution's or the enterprise's credit code); someone else's
// answers NotFound.
func (s *Server) onMatch(ctx context.Context, id string, version int64, owner func(*matchingv1.Match) string, rule func(a *aggregate, m *matchingv1.Match) error) (*matchingv1.Match, error) {
	var v errs.Violations
	if id == "" {
		v.Add("id", "is required")
	}
	if version < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0 to skip the check", version)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	m, err := s.getMatch(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := auth.MustOwn(ctx, owner(m), "match", id); err != nil {
		return nil, err
	}
	var out *matchingv1.Match
	_, err = s.mutate(ctx, m.GetDemandId(), func(a *aggregate) error {
		out = a.match(id)
		if out == nil {
			return errs.NotFound("match", id)
		}
		if err := checkMatchVersion(out, version); err != nil {
			return err
		}
		return rule(a, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func institutionOf(m *matchingv1.Match) string { return m.GetInstitutionCreditCode() }
func enterpriseOf(m *matchingv1.Match) string  { return m.GetEnterpriseCreditCode() }

// AcceptMatch: the institution takes a PROPOSED match.
func (s *Server) AcceptMatch(ctx context.Context, req *matchingv1.AcceptMatchRequest) (*matchingv1.AcceptMatchResponse, error) {
	m, err := s.onMatch(ctx, req.GetId(), req.GetVersion(), institutionOf, func(a *aggregate, m *matchingv1.Match) error { return a.accept(m) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.AcceptMatchResponse{Match: m}, nil
}

// DeclineMatch: the institution passes on a PROPOSED match.
func (s *Server) DeclineMatch(ctx context.Context, req *matchingv1.DeclineMatchRequest) (*matchingv1.DeclineMatchResponse, error) {
	reason := strings.TrimSpace(req.GetReason())
	var v errs.Violations
	checkText(&v, "reason", reason, maxReason, false)
	if err := v.Err(); err != nil {
		return nil, err
	}
	m, err := s.onMatch(ctx, req.GetId(), req.GetVersion(), institutionOf, func(a *aggregate, m *matchingv1.Match) error { return a.decline(m, reason) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.DeclineMatchResponse{Match: m}, nil
}

// ConfirmMatch: the enterprise picks one of its ACCEPTED matches.
func (s *Server) ConfirmMatch(ctx context.Context, req *matchingv1.ConfirmMatchRequest) (*matchingv1.ConfirmMatchResponse, error) {
	m, err := s.onMatch(ctx, req.GetId(), req.GetVersion(), enterpriseOf, func(a *aggregate, m *matchingv1.Match) error { return a.confirm(m) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.ConfirmMatchResponse{Match: m}, nil
}

// ReportOutcome: the institution reports how a CONFIRMED match ended.
func (s *Server) ReportOutcome(ctx context.Context, req *matchingv1.ReportOutcomeRequest) (*matchingv1.ReportOutcomeResponse, error) {
	var v errs.Violations
	out := &matchingv1.Outcome{}
	completed := false
	switch r := req.GetResult().(type) {
	case *matchingv1.ReportOutcomeRequest_Completed:
		completed = true
		d := r.Completed
		if d.GetAmountYuan() < 1 || d.GetAmountYuan() > maxAmountYuan {
			v.Add("completed.amount_yuan", "%d: the deal's amount in whole yuan, 1 to %d", d.GetAmountYuan(), int64(maxAmountYuan))
		}
		if d.GetRateBps() < 0 || d.GetRateBps() > maxRateBps {
			v.Add("completed.rate_bps", "%d: an annual rate of 0 to %d basis points", d.GetRateBps(), maxRateBps)
		}
		if d.GetTermMonths() < 0 || d.GetTermMonths() > maxTermMonths {
			v.Add("completed.term_months", "%d: 0 to %d months", d.GetTermMonths(), maxTermMonths)
		}
		if d.GetTonnes() < 0 || d.GetTonnes() > maxTonnes {
			v.Add("completed.tonnes", "%d: 0 to %d tonnes", d.GetTonnes(), int64(maxTonnes))
		}
		note := strings.TrimSpace(d.GetNote())
		checkText(&v, "completed.note", note, maxReason, false)
		out = &matchingv1.Outcome{AmountYuan: d.GetAmountYuan(), RateBps: d.GetRateBps(), TermMonths: d.GetTermMonths(), Tonnes: d.GetTonnes(), Note: note}
	case *matchingv1.ReportOutcomeRequest_Failed:
		f := r.Failed
		if _, ok := matchingv1.FailureReason_name[int32(f.GetReason())]; !ok || f.GetReason() == 0 {
			v.Add("failed.reason", "%d: one of CREDIT, COLLATERAL, PRICE, ENTERPRISE_WITHDREW, OTHER", f.GetReason())
		}
		note := strings.TrimSpace(f.GetNote())
		checkText(&v, "failed.note", note, maxReason, false)
		out = &matchingv1.Outcome{FailureReason: f.GetReason(), Note: note}
	default:
		v.Add("result", "give completed (amount, rate, term) or failed (a reason)")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	m, err := s.onMatch(ctx, req.GetId(), req.GetVersion(), institutionOf, func(a *aggregate, m *matchingv1.Match) error { return a.report(m, out, completed) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.ReportOutcomeResponse{Match: m}, nil
}

// demandView is the engine's view of a demand.
func demandView(d *matchingv1.Demand) DemandView {
	zone := ""
	if d.GetZone() != 0 {
		zone = d.GetZone().String()
	}
	return DemandView{
		ID:         d.GetId(),
		Kind:       d.GetKind(),
		Categories: d.GetCategories(),
		AmountYuan: d.GetAmountYuan(),
		TermMonths: d.GetTermMonths(),
		Sector:     d.GetSector(),
		Region:     d.GetRegion(),
		Zone:       zone,
		CEATonnes:  d.GetCeaTonnes(),
		CCERTonnes: d.GetCcerTonnes(),
	}
}

// zoneFromName reads a zone back from its enum name.
func zoneFromName(s string) registryv1.Zone { return registryv1.Zone(registryv1.Zone_value[s]) }

// jetStream returns the JetStream Run was given, nil before.
func (s *Server) jetStream() jetstream.JetStream {
	s.jsMu.RLock()
	defer s.jsMu.RUnlock()
	return s.js
}
