package talent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Server implements talentv1.TalentServiceServer over a store.Store.
// Handlers return domain errors (package errs); the gRPC server's
// interceptor turns them into statuses.
type Server struct {
	talentv1.UnimplementedTalentServiceServer

	st       store.Store
	cfg      Policy
	now      func() time.Time
	log      *slog.Logger
	feedCfg  func(*consumer.Config)
	seedWait time.Duration
	lanes    *lanes
	// sweeping is held by Sweep, and by LoadSeeds for as long as it plays
	// the season: a seeded past event runs on a clock of its own, and a
	// sweep on the real clock must not close it half way.
	sweeping *sync.Mutex
	// sweepGate, when set, says whether this replica runs the sweep at a
	// tick (it holds the sweep's lease); nil: always.
	sweepGate func() bool
}

// Option configures a Server.
type Option func(*Server)

// WithPolicy sets the district's policy (zero fields take the defaults).
func WithPolicy(p Policy) Option { return func(s *Server) { s.cfg = p.withDefaults() } }

// WithClock sets the clock (default time.Now); tests pin it.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithFeedConfig adjusts the institution feed's consumer configuration
// (FeedConfig) before Run starts it: replicas of the dead-letter stream,
// retry delays in tests.
func WithFeedConfig(fn func(*consumer.Config)) Option { return func(s *Server) { s.feedCfg = fn } }

// WithSweepGate makes Run sweep only at ticks where gate returns true:
// with several replicas, only the one holding the sweep's lease sweeps.
func WithSweepGate(gate func() bool) Option { return func(s *Server) { s.sweepGate = gate } }

// WithSeedWait sets how long LoadSeeds waits for the institution view to
// hold the seeded hosts (default 30 s).
func WithSeedWait(d time.Duration) Option { return func(s *Server) { s.seedWait = d } }

// New returns the talent service over st, which must be scoped to the
// talent service (see store.Store).
func New(st store.Store, opts ...Option) *Server {
	s := &Server{st: st, cfg: DefaultPolicy(), now: time.Now, log: slog.New(slog.DiscardHandler), seedWait: 30 * time.Second,
		lanes: newLanes(), sweeping: &sync.Mutex{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register registers the service on a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	talentv1.RegisterTalentServiceServer(g, s)
}

// Who sees and does what (the rules of auth.Table()).

// ownsEvent: the caller hosts the event (its organisation is the host
// institution's), or is staff. District events are staff's alone.
func ownsEvent(ctx context.Context, e *talentv1.Event) bool {
	return auth.Owns(ctx, e.GetHostCreditCode())
}

// visibleEvent: an event once published is public; a draft is its host's
// and staff's.
func visibleEvent(ctx context.Context, e *talentv1.Event) bool {
	return e.GetPublishTime() != nil || ownsEvent(ctx, e)
}

// seesRegistration: the event's host, staff, and the organisation that
// filed the registration.
func seesRegistration(ctx context.Context, e *talentv1.Event, r *talentv1.Registration) bool {
	return ownsEvent(ctx, e) || (r.GetRegistrantOrg() != "" && auth.Owns(ctx, r.GetRegistrantOrg()))
}

// toProtoRegistration is a registration as the caller may see it: the
// attendee's phone and e-mail masked unless the caller hosts the event or
// is staff, and its place in the waitlist (rank; 0 keeps what it holds).
func toProtoRegistration(ctx context.Context, e *talentv1.Event, r *talentv1.Registration, rank int32) *talentv1.Registration {
	out := proto.CloneOf(r)
	if !ownsEvent(ctx, e) {
		if a := out.GetAttendee(); a != nil {
			a.Phone = contact.MaskPhone(a.GetPhone())
			a.Email = contact.MaskEmail(a.GetEmail())
		}
		out.ContactMasked = true
	}
	switch {
	case out.GetState() != regWaitlisted:
		out.WaitlistPosition = 0
	case rank > 0:
		out.WaitlistPosition = rank
	}
	return out
}

// withSeats is the event of a change with its seat counts.
func withSeats(t *tx) *talentv1.Event {
	e := proto.CloneOf(t.ev)
	e.Seats = t.ros.seats()
	return e
}

// checkVersion compares the version a caller read with the current one (0:
// no check).
func checkVersion(what, id string, want, have int64) error {
	if want == 0 || want == have {
		return nil
	}
	return errs.New(ErrStaleVersion, "version %d of %s %s is stale; it is at version %d; read it again", want, what, id, have)
}

// Events.

// CreateEvent files a new DRAFT event.
func (s *Server) CreateEvent(ctx context.Context, req *talentv1.CreateEventRequest) (*talentv1.CreateEventResponse, error) {
	now := s.now().UTC()
	e, host, err := s.newEvent(ctx, req.GetEvent(), now)
	if err != nil {
		return nil, err
	}
	if err := s.createEvent(ctx, e, host, now); err != nil {
		return nil, err
	}
	return &talentv1.CreateEventResponse{Event: e}, nil
}

// newEvent validates a new event and finds its host (nil: the district).
func (s *Server) newEvent(ctx context.Context, in *talentv1.Event, now time.Time) (*talentv1.Event, *Institution, error) {
	if in == nil {
		return nil, nil, errs.Invalid("event", "is required")
	}
	var v errs.Violations
	e := cleanEvent(in)
	if e.RegistrationDeadline == nil {
		e.RegistrationDeadline = e.GetStartTime()
	}
	validateEvent("event.", e, &v)
	hostID := strings.TrimSpace(in.GetHostInstitutionId())
	checkID(&v, "event.host_institution_id", hostID, false)
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	checkAhead(&v, "event.start_time", e.GetStartTime(), now)
	if !e.GetRegistrationDeadline().AsTime().After(now) {
		v.Add("event.registration_deadline", "%s is not in the future", rfc3339(e.GetRegistrationDeadline()))
	}
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	host, err := s.host(ctx, hostID)
	if err != nil {
		return nil, nil, err
	}
	return e, host, nil
}

// host finds the host of a new event: the institution named, for an
// institution caller its own, and for staff naming none the district
// (nil). Only an ACTIVE institution hosts.
func (s *Server) host(ctx context.Context, id string) (*Institution, error) {
	c, isCaller := auth.CallerFrom(ctx)
	var in *Institution
	var err error
	switch {
	case id != "":
		in, err = s.institution(ctx, id)
	case !auth.IsStaff(ctx):
		in, err = s.institutionByCode(ctx, c.Org)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if in == nil {
		if id == "" {
			return nil, errs.New(ErrUnknownHost, "the talent base knows no institution with credit code %q; register at the registry first (a new registration takes a moment to reach the talent base)", c.Org)
		}
		return nil, errs.New(ErrUnknownHost, "the talent base knows no institution %q; register it at the registry first (a new registration takes a moment to reach the talent base)", id)
	}
	if isCaller && !auth.Owns(ctx, in.CreditCode) {
		return nil, errs.PermissionDenied("an institution hosts its own events only: institution %s is not your organisation", in.ID)
	}
	if !in.Active() {
		return nil, errs.New(ErrHostNotActive, "institution %s is %s in the registry; only an ACTIVE institution hosts events", in.ID, key(in.State))
	}
	return in, nil
}

// createEvent stores a validated event as a DRAFT of host (nil: the
// district) with its roster and event, and extra puts in the same batch.
func (s *Server) createEvent(ctx context.Context, e *talentv1.Event, host *Institution, now time.Time, extra ...store.Put) error {
	e.Id = events.NewID(now)
	if host != nil {
		e.HostInstitutionId, e.HostCreditCode, e.HostName = host.ID, host.CreditCode, host.NameZh
	}
	e.State = eventDraft
	e.CreateTime = timestamppb.New(now)
	t := s.newTx(ctx, e)
	t.now = now
	t.touchEvent(SubjectEventCreated)
	t.puts = append(t.puts, extra...)
	if err := t.commit(); err != nil {
		return err
	}
	e.Seats = t.ros.seats()
	s.log.InfoContext(ctx, "talent: event created", "id", e.GetId(), "host", e.GetHostInstitutionId(), "actor", t.actor.Subject)
	return nil
}

// GetEvent reads one event.
func (s *Server) GetEvent(ctx context.Context, req *talentv1.GetEventRequest) (*talentv1.GetEventResponse, error) {
	var v errs.Violations
	checkID(&v, "id", req.GetId(), true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	e, err := s.eventWithSeats(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !visibleEvent(ctx, e) {
		return nil, errs.NotFound("event", req.GetId())
	}
	return &talentv1.GetEventResponse{Event: e}, nil
}

// eventFilter is what ListEvents selects on.
type eventFilter struct {
	host      string
	district  bool
	kind      talentv1.EventKind
	state     talentv1.EventState
	category  catalogv1.ProductCategory
	sector    catalogv1.Sector
	job       talentv1.JobType
	after     time.Time
	before    time.Time
	title     string // folded
	needsAttn bool
}

func (f eventFilter) fingerprint() string {
	return paging.Fingerprint(fmt.Appendf(nil, "%s|%t|%d|%d|%d|%d|%d|%d|%d|%s|%t",
		f.host, f.district, f.kind, f.state, f.category, f.sector, f.job, f.after.UnixNano(), f.before.UnixNano(), f.title, f.needsAttn))
}

// term picks the index to scan, the likely smallest first.
func (f eventFilter) term(publicOnly bool) string {
	switch {
	case f.host != "":
		return termHost + f.host
	case f.district:
		return termHost + hostDistrict
	case f.needsAttn:
		return termAttn
	case f.job != 0:
		return termJob + key(f.job)
	case f.category != 0:
		return termCategory + key(f.category)
	case f.sector != 0:
		return termSector + key(f.sector)
	case f.kind != 0:
		return termKind + key(f.kind)
	case f.state != 0:
		return termState + key(f.state)
	case publicOnly:
		return termPublic
	}
	return ""
}

func (f eventFilter) matches(e *talentv1.Event) bool {
	tp := e.GetTopics()
	start := e.GetStartTime().AsTime()
	return (f.host == "" || e.GetHostInstitutionId() == f.host) &&
		(!f.district || e.GetHostInstitutionId() == "") &&
		(f.kind == 0 || e.GetKind() == f.kind) &&
		(f.state == 0 || e.GetState() == f.state) &&
		(f.category == 0 || slices.Contains(tp.GetCategories(), f.category)) &&
		(f.sector == 0 || slices.Contains(tp.GetSectors(), f.sector)) &&
		(f.job == 0 || slices.Contains(tp.GetJobTypes(), f.job)) &&
		(f.after.IsZero() || !start.Before(f.after)) &&
		(f.before.IsZero() || start.Before(f.before)) &&
		(!f.needsAttn || e.GetNeedsAttention()) &&
		(f.title == "" || strings.Contains(foldText(e.GetTitleZh()), f.title) || strings.Contains(foldText(e.GetTitleEn()), f.title))
}

// ListEvents lists events in creation order (ids are ULIDs), filtered and
// paged; an event created while a caller pages sorts after every earlier
// one, so paging neither loses nor repeats one.
func (s *Server) ListEvents(ctx context.Context, req *talentv1.ListEventsRequest) (*talentv1.ListEventsResponse, error) {
	var v errs.Violations
	size := paging.Size(&v, req.GetPageSize())
	f := eventFilter{host: strings.TrimSpace(req.GetHostInstitutionId()), district: req.GetDistrictHosted(), kind: req.GetKind(),
		state: req.GetState(), category: req.GetCategory(), sector: req.GetSector(), job: req.GetJobType(), needsAttn: req.GetNeedsAttention()}
	checkID(&v, "host_institution_id", f.host, false)
	if f.host != "" && f.district {
		v.Add("district_hosted", "give host_institution_id or district_hosted, not both")
	}
	if protoenum.Known(f.kind) != f.kind {
		v.Add("kind", "unknown value %d", f.kind)
	}
	if protoenum.Known(f.state) != f.state {
		v.Add("state", "unknown value %d", f.state)
	}
	if protoenum.Known(f.category) != f.category {
		v.Add("category", "unknown value %d", f.category)
	}
	if protoenum.Known(f.sector) != f.sector {
		v.Add("sector", "unknown value %d", f.sector)
	}
	if protoenum.Known(f.job) != f.job {
		v.Add("job_type", "unknown value %d", f.job)
	}
	if checkTime(&v, "start_after", req.GetStartAfter(), false) {
		f.after = req.GetStartAfter().AsTime()
	}
	if checkTime(&v, "start_before", req.GetStartBefore(), false) {
		f.before = req.GetStartBefore().AsTime()
	}
	title := strings.TrimSpace(req.GetTitleContains())
	if n := utf8.RuneCountInString(title); n > maxContains {
		v.Add("title_contains", "is %d characters long; at most %d", n, maxContains)
	}
	f.title = foldText(title)
	after := paging.Check{Refilter: "repeat the first call's filters"}.After(&v, req.GetPageToken(), f.fingerprint())
	if err := v.Err(); err != nil {
		return nil, err
	}

	// Enterprises see public events only; scanning that index spares
	// reading drafts. Institutions also see their own drafts.
	c, _ := auth.CallerFrom(ctx)
	publicOnly := !auth.IsStaff(ctx) && c.Role != auth.Institution
	match := func(rec store.Record) bool {
		e, err := decodeEvent(rec)
		return err != nil || (f.matches(e) && visibleEvent(ctx, e)) // a bad record surfaces as an error below
	}
	recs, next, err := paging.List(ctx, s.st, kindEvent, store.Query{Index: f.term(publicOnly), After: after, Match: match}, size, f.fingerprint())
	if err != nil {
		return nil, fmt.Errorf("talent: list events: %w", err)
	}
	resp := &talentv1.ListEventsResponse{NextPageToken: next, Events: make([]*talentv1.Event, 0, len(recs))}
	for _, rec := range recs {
		e, err := decodeEvent(rec)
		if err != nil {
			return nil, err
		}
		r, _, err := s.getRoster(ctx, e.GetId())
		if err != nil {
			return nil, err
		}
		e.Seats = r.seats()
		resp.Events = append(resp.Events, e)
	}
	return resp, nil
}

// eventPaths are the update_mask paths UpdateEvent applies.
var eventPaths = []string{"title_zh", "title_en", "kind", "description", "start_time", "end_time", "venue", "zone",
	"capacity", "registration_deadline", "topics", "training_hours"}

// textPaths may change after the event has started.
var textPaths = []string{"title_zh", "title_en", "description", "venue"}

// fixedEventPaths are Event fields an update may not name, with why.
var fixedEventPaths = map[string]string{
	"id":                  "is assigned at creation",
	"host_institution_id": "is the host; create the event anew under another host",
	"host_credit_code":    "is the host's",
	"host_name":           "is the host's",
	"state":               "changes only through PublishEvent, CloseEvent, CompleteEvent and CancelEvent",
	"state_reason":        "is set with the state",
	"needs_attention":     "is set by the desk",
	"attention_reason":    "is set by the desk",
	"seats":               "are counted by the desk",
	"version":             "is the store's; give the version you read in the request's version field",
	"create_time":         "is set by the service",
	"update_time":         "is set by the service",
	"publish_time":        "is set by PublishEvent",
}

// maskPaths reads an update mask against the updatable and fixed paths.
func maskPaths(v *errs.Violations, paths, updatable []string, fixed map[string]string) []string {
	var out []string
	for _, p := range paths {
		switch {
		case p == "*":
			out = append(out, updatable...)
		case fixed[p] != "":
			v.Add("update_mask", "path %q cannot be changed here: %s", p, fixed[p])
		case !slices.Contains(updatable, p):
			v.Add("update_mask", "unknown path %q; updatable paths are %s", errs.Shorten(p, 40), strings.Join(updatable, ", "))
		default:
			out = append(out, p)
		}
	}
	return out
}

// impliedEventPaths: every updatable field given a value (AIP-134);
// output-only fields are ignored so a client may send back what it read.
func impliedEventPaths(m *talentv1.Event) []string {
	var p []string
	add := func(set bool, path string) {
		if set {
			p = append(p, path)
		}
	}
	add(m.GetTitleZh() != "", "title_zh")
	add(m.GetTitleEn() != "", "title_en")
	add(m.GetKind() != 0, "kind")
	add(m.GetDescription() != "", "description")
	add(m.GetStartTime() != nil, "start_time")
	add(m.GetEndTime() != nil, "end_time")
	add(m.GetVenue() != "", "venue")
	add(m.GetZone() != 0, "zone")
	add(m.GetCapacity() != 0, "capacity")
	add(m.GetRegistrationDeadline() != nil, "registration_deadline")
	add(m.GetTopics() != nil, "topics")
	add(m.GetTrainingHours() != 0, "training_hours")
	return p
}

// applyEventPaths copies the named fields of patch onto e.
func applyEventPaths(e, patch *talentv1.Event, paths []string) {
	for _, p := range paths {
		switch p {
		case "title_zh":
			e.TitleZh = patch.GetTitleZh()
		case "title_en":
			e.TitleEn = patch.GetTitleEn()
		case "kind":
			e.Kind = patch.GetKind()
		case "description":
			e.Description = patch.GetDescription()
		case "start_time":
			e.StartTime = patch.GetStartTime()
		case "end_time":
			e.EndTime = patch.GetEndTime()
		case "venue":
			e.Venue = patch.GetVenue()
		case "zone":
			e.Zone = patch.GetZone()
		case "capacity":
			e.Capacity = patch.GetCapacity()
		case "registration_deadline":
			e.RegistrationDeadline = patch.GetRegistrationDeadline()
		case "topics":
			e.Topics = patch.GetTopics()
		case "training_hours":
			e.TrainingHours = patch.GetTrainingHours()
		}
	}
}

// UpdateEvent changes an event's details, expecting the version read.
func (s *Server) UpdateEvent(ctx context.Context, req *talentv1.UpdateEventRequest) (*talentv1.UpdateEventResponse, error) {
	var v errs.Violations
	checkID(&v, "id", req.GetId(), true)
	if req.GetVersion() <= 0 {
		v.Add("version", "%d: give the version you read (GetEvent's event.version)", req.GetVersion())
	}
	msg := req.GetEvent()
	if msg == nil {
		v.Add("event", "is required: the new values of the fields to change")
		return nil, v.Err()
	}
	if msg.GetId() != "" && msg.GetId() != req.GetId() {
		v.Add("event.id", "%q differs from id %q; leave it empty or the same", errs.Shorten(msg.GetId(), 40), errs.Shorten(req.GetId(), 40))
	}
	var paths []string
	if mask := req.GetUpdateMask(); len(mask.GetPaths()) > 0 {
		paths = maskPaths(&v, mask.GetPaths(), eventPaths, fixedEventPaths)
	} else if paths = impliedEventPaths(msg); len(paths) == 0 {
		v.Add("event", "sets no field to change; set one of %s, or name fields to clear in update_mask", strings.Join(eventPaths, ", "))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	patch := cleanEvent(msg)
	t, err := s.mutate(ctx, req.GetId(), func(t *tx) error {
		e := t.ev
		if !ownsEvent(ctx, e) {
			return errs.NotFound("event", e.GetId())
		}
		if err := checkVersion("event", e.GetId(), req.GetVersion(), e.GetVersion()); err != nil {
			return err
		}
		if s := e.GetState(); s == eventCompleted || s == eventCancelled {
			return errs.New(ErrInvalidTransition, "event %s is %s; it no longer changes", e.GetId(), key(s))
		}
		next := cleanEvent(e)
		applyEventPaths(next, patch, paths)
		next = cleanEvent(next)
		if next.RegistrationDeadline == nil {
			next.RegistrationDeadline = next.GetStartTime() // cleared: registration closes at the start
		}
		var v errs.Violations
		validateEvent("event.", next, &v)
		if err := v.Err(); err != nil {
			return err
		}
		if err := t.checkUpdate(next); err != nil {
			return err
		}
		if proto.Equal(next, cleanEvent(e)) {
			return nil
		}
		grew := next.GetCapacity() > e.GetCapacity()
		e.TitleZh, e.TitleEn, e.Kind, e.Description = next.TitleZh, next.TitleEn, next.Kind, next.Description
		e.StartTime, e.EndTime, e.Venue, e.Zone = next.StartTime, next.EndTime, next.Venue, next.Zone
		e.Capacity, e.RegistrationDeadline, e.Topics, e.TrainingHours = next.Capacity, next.RegistrationDeadline, next.Topics, next.TrainingHours
		t.touchEvent(SubjectEventUpdated)
		if grew {
			_, err := t.fillSeats()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &talentv1.UpdateEventResponse{Event: withSeats(t)}, nil
}

// checkUpdate holds an update of the event to what its state and its
// registrations allow.
func (t *tx) checkUpdate(next *talentv1.Event) error {
	e := t.ev
	if !t.now.Before(e.GetStartTime().AsTime()) {
		cur := cleanEvent(e)
		applyEventPaths(cur, next, textPaths)
		if !proto.Equal(cur, next) {
			return errs.New(ErrInvalidTransition, "event %s started at %s; only %s change now", e.GetId(), rfc3339(e.GetStartTime()), strings.Join(textPaths, ", "))
		}
		return nil
	}
	var v errs.Violations
	if !proto.Equal(next.GetStartTime(), e.GetStartTime()) || !proto.Equal(next.GetEndTime(), e.GetEndTime()) {
		checkAhead(&v, "event.start_time", next.GetStartTime(), t.now)
	}
	if err := v.Err(); err != nil {
		return err
	}
	switch {
	case next.GetKind() != e.GetKind() && e.GetState() != eventDraft:
		return errs.New(ErrInvalidTransition, "event %s is %s; its kind changes only while DRAFT (people registered for a %s)", e.GetId(), key(e.GetState()), key(e.GetKind()))
	case next.GetCapacity() < t.ros.taken():
		return errs.New(ErrInvalidTransition, "event %s has %d seats taken; capacity %d is below that (cancel registrations first)", e.GetId(), t.ros.taken(), next.GetCapacity())
	case next.GetTrainingHours() != e.GetTrainingHours() && t.ros.Attended > 0:
		return errs.New(ErrInvalidTransition, "event %s has %d attendees credited with %d hours each; its training hours no longer change", e.GetId(), t.ros.Attended, e.GetTrainingHours())
	}
	return nil
}

// eventAction runs a state change on an event the caller hosts, after
// checking the version the caller read.
func (s *Server) eventAction(ctx context.Context, id string, version int64, fn func(t *tx) error) (*tx, error) {
	var v errs.Violations
	checkID(&v, "id", id, true)
	if version < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0", version)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.mutate(ctx, id, func(t *tx) error {
		if !ownsEvent(ctx, t.ev) {
			return errs.NotFound("event", id)
		}
		if err := checkVersion("event", id, version, t.ev.GetVersion()); err != nil {
			return err
		}
		return fn(t)
	})
}

// PublishEvent opens a DRAFT event for registration. The host must be
// ACTIVE in the view, which is written back under a version check in the
// same batch (the fence against a suspension arriving meanwhile).
func (s *Server) PublishEvent(ctx context.Context, req *talentv1.PublishEventRequest) (*talentv1.PublishEventResponse, error) {
	t, err := s.eventAction(ctx, req.GetId(), req.GetVersion(), func(t *tx) error {
		if id := t.ev.GetHostInstitutionId(); id != "" && t.ev.GetState() == eventDraft {
			in, err := s.institution(t.ctx, id)
			if err != nil {
				return err
			}
			if in == nil || !in.Active() {
				state := "unknown"
				if in != nil {
					state = key(in.State)
				}
				return errs.New(ErrHostNotActive, "the host institution %s is %s; only an ACTIVE institution publishes events", id, state)
			}
			fence, err := in.Put(kindInstitution)
			if err != nil {
				return fmt.Errorf("talent: %w", err)
			}
			t.puts = append(t.puts, fence)
		}
		return t.publish()
	})
	if err != nil {
		return nil, err
	}
	return &talentv1.PublishEventResponse{Event: withSeats(t)}, nil
}

// CloseEvent closes registration of a PUBLISHED event.
func (s *Server) CloseEvent(ctx context.Context, req *talentv1.CloseEventRequest) (*talentv1.CloseEventResponse, error) {
	if err := checkReason("reason", req.GetReason(), false); err != nil {
		return nil, err
	}
	t, err := s.eventAction(ctx, req.GetId(), req.GetVersion(), func(t *tx) error {
		reason := strings.TrimSpace(req.GetReason())
		if reason == "" {
			reason = "registration closed by the host"
		}
		return t.move(eventClosed, reason)
	})
	if err != nil {
		return nil, err
	}
	return &talentv1.CloseEventResponse{Event: withSeats(t)}, nil
}

// CompleteEvent marks an event as held.
func (s *Server) CompleteEvent(ctx context.Context, req *talentv1.CompleteEventRequest) (*talentv1.CompleteEventResponse, error) {
	t, err := s.eventAction(ctx, req.GetId(), req.GetVersion(), func(t *tx) error { return t.complete() })
	if err != nil {
		return nil, err
	}
	return &talentv1.CompleteEventResponse{Event: withSeats(t)}, nil
}

// CancelEvent cancels an event and every live registration, each with its
// own event: the first chunk in the cancellation's batch, the rest in
// further batches (a crash in between leaves the rest to the sweep, which
// finds the roster marked for draining).
func (s *Server) CancelEvent(ctx context.Context, req *talentv1.CancelEventRequest) (*talentv1.CancelEventResponse, error) {
	if err := checkReason("reason", req.GetReason(), true); err != nil {
		return nil, err
	}
	var n int
	t, err := s.eventAction(ctx, req.GetId(), req.GetVersion(), func(t *tx) error {
		var err error
		n, err = t.cancelEvent(strings.TrimSpace(req.GetReason()))
		return err
	})
	if err != nil {
		return nil, err
	}
	total := n
	for t.ros.live() > 0 && n > 0 {
		if t, err = s.drainEvent(ctx, req.GetId(), &n); err != nil {
			return nil, err
		}
		total += n
	}
	s.log.InfoContext(ctx, "talent: event cancelled", "id", req.GetId(), "registrations_cancelled", total, "actor", events.ActorFrom(ctx).Subject)
	return &talentv1.CancelEventResponse{Event: withSeats(t), RegistrationsCancelled: int32(total)}, nil
}

// drainEvent cancels the next chunk of a cancelled event's registrations;
// n is set to how many.
func (s *Server) drainEvent(ctx context.Context, id string, n *int) (*tx, error) {
	return s.mutate(ctx, id, func(t *tx) error {
		var err error
		*n, err = t.drain(drainChunk)
		return err
	})
}

func checkReason(field, reason string, required bool) error {
	var v errs.Violations
	checkText(&v, field, strings.TrimSpace(reason), maxReason, required)
	return v.Err()
}

// Registrations.

// RegisterForEvent registers one person.
func (s *Server) RegisterForEvent(ctx context.Context, req *talentv1.RegisterForEventRequest) (*talentv1.RegisterForEventResponse, error) {
	var v errs.Violations
	checkID(&v, "event_id", req.GetEventId(), true)
	if req.GetAttendee() == nil {
		v.Add("attendee", "is required: the person to register")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	a := cleanAttendee(req.GetAttendee())
	checkID(&v, "attendee.talent_id", a.GetTalentId(), false)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if id := a.GetTalentId(); id != "" {
		p, err := s.getTalent(ctx, id)
		if errors.Is(err, errs.ErrNotFound) || (err == nil && !ownsTalent(ctx, p)) {
			return nil, errs.Invalid("attendee.talent_id", "%q is no talent profile of yours; leave it empty or give one your organisation keeps", errs.Shorten(id, 40))
		}
		if err != nil {
			return nil, err
		}
		fill := func(dst *string, src string) {
			if *dst == "" {
				*dst = src
			}
		}
		fill(&a.Name, p.GetName())
		fill(&a.Organization, p.GetOrganization())
		fill(&a.Role, p.GetRole())
		fill(&a.Phone, p.GetPhone())
		fill(&a.Email, p.GetEmail())
	}
	validateAttendee(&v, a)
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, _ := auth.CallerFrom(ctx)
	registrant := c.Subject
	if registrant == "" {
		registrant = events.ActorFrom(ctx).Subject
	}
	var r *talentv1.Registration
	t, err := s.mutate(ctx, req.GetEventId(), func(t *tx) error {
		if !visibleEvent(ctx, t.ev) {
			return errs.NotFound("event", req.GetEventId())
		}
		var err error
		r, err = t.register(proto.CloneOf(a), c.Org, registrant)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &talentv1.RegisterForEventResponse{Registration: toProtoRegistration(ctx, t.ev, r, 0)}, nil
}

// registrationAction runs fn on a registration in its event's change. who
// says what the caller must be: seesRegistration for a registrant's
// actions, ownsEvent for the host's. Anyone else's registration answers
// NotFound; a registrant acting where only the host may, PermissionDenied.
func (s *Server) registrationAction(ctx context.Context, id string, version int64, hostOnly bool, fn func(t *tx, r *talentv1.Registration) error) (*tx, *talentv1.Registration, error) {
	var v errs.Violations
	checkID(&v, "id", id, true)
	if version < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0", version)
	}
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	eventID, ok := eventOf(id)
	if !ok {
		return nil, nil, errs.NotFound("registration", id)
	}
	// A registration that exists names an event that exists: reading it
	// first keeps an id naming no event from answering about events.
	if _, err := s.getRegistration(ctx, id); err != nil {
		return nil, nil, err
	}
	var r *talentv1.Registration
	t, err := s.mutate(ctx, eventID, func(t *tx) error {
		var err error
		if r, err = t.registration(id); err != nil {
			return err
		}
		if !seesRegistration(ctx, t.ev, r) {
			return errs.NotFound("registration", id)
		}
		if hostOnly && !ownsEvent(ctx, t.ev) {
			return errs.PermissionDenied("only the event's host or district staff record attendance")
		}
		if err := checkVersion("registration", id, version, r.GetVersion()); err != nil {
			return err
		}
		return fn(t, r)
	})
	return t, r, err
}

// GetRegistration reads one registration.
func (s *Server) GetRegistration(ctx context.Context, req *talentv1.GetRegistrationRequest) (*talentv1.GetRegistrationResponse, error) {
	var v errs.Violations
	id := req.GetId()
	checkID(&v, "id", id, true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	eventID, ok := eventOf(id)
	if !ok {
		return nil, errs.NotFound("registration", id)
	}
	r, err := s.getRegistration(ctx, id)
	if err != nil {
		return nil, err
	}
	e, err := s.getEvent(ctx, eventID)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, errs.NotFound("registration", id)
	}
	if err != nil {
		return nil, err
	}
	if !seesRegistration(ctx, e, r) {
		return nil, errs.NotFound("registration", id)
	}
	var rank int32
	if r.GetState() == regWaitlisted {
		ranks, err := s.waitlistRanks(ctx, eventID)
		if err != nil {
			return nil, err
		}
		rank = ranks[id]
	}
	return &talentv1.GetRegistrationResponse{Registration: toProtoRegistration(ctx, e, r, rank)}, nil
}

// ListRegistrations lists registrations in id order: per event, the order
// of arrival.
func (s *Server) ListRegistrations(ctx context.Context, req *talentv1.ListRegistrationsRequest) (*talentv1.ListRegistrationsResponse, error) {
	var v errs.Violations
	size := paging.Size(&v, req.GetPageSize())
	eventID := strings.TrimSpace(req.GetEventId())
	talentID := strings.TrimSpace(req.GetTalentId())
	state := req.GetState()
	checkID(&v, "event_id", eventID, false)
	checkID(&v, "talent_id", talentID, false)
	if protoenum.Known(state) != state {
		v.Add("state", "unknown value %d", state)
	}
	fp := paging.Fingerprint(fmt.Appendf(nil, "%s|%s|%d", eventID, talentID, state))
	after := paging.Check{Refilter: "repeat the first call's filters"}.After(&v, req.GetPageToken(), fp)
	if err := v.Err(); err != nil {
		return nil, err
	}

	c, _ := auth.CallerFrom(ctx)
	staff := auth.IsStaff(ctx)
	hosted := map[string]*talentv1.Event{} // events read for this page
	var term string
	switch {
	case eventID != "":
		e, err := s.getEvent(ctx, eventID)
		if err != nil {
			return nil, err
		}
		if !visibleEvent(ctx, e) {
			return nil, errs.NotFound("event", eventID)
		}
		hosted[eventID] = e
		term = termEvent + eventID
		if state != 0 {
			term = evStateTerm(eventID, state)
		}
	case !staff:
		if c.Org == "" {
			return &talentv1.ListRegistrationsResponse{}, nil
		}
		term = termOrg + c.Org // what the caller's organisation filed
	case talentID != "":
		term = termTalent + talentID
	case state != 0:
		term = termState + key(state)
	}
	match := func(rec store.Record) bool {
		r, err := decodeRegistration(rec)
		if err != nil {
			return true // surfaces as an error below
		}
		if (eventID != "" && r.GetEventId() != eventID) || (state != 0 && r.GetState() != state) ||
			(talentID != "" && r.GetAttendee().GetTalentId() != talentID) {
			return false
		}
		if staff {
			return true
		}
		if e := hosted[r.GetEventId()]; e != nil && ownsEvent(ctx, e) {
			return true
		}
		return r.GetRegistrantOrg() != "" && r.GetRegistrantOrg() == c.Org
	}
	recs, next, err := paging.List(ctx, s.st, kindRegistration, store.Query{Index: term, After: after, Match: match}, size, fp)
	if err != nil {
		return nil, fmt.Errorf("talent: list registrations: %w", err)
	}
	resp := &talentv1.ListRegistrationsResponse{NextPageToken: next, Registrations: make([]*talentv1.Registration, 0, len(recs))}
	ranks := map[string]map[string]int32{}
	for _, rec := range recs {
		r, err := decodeRegistration(rec)
		if err != nil {
			return nil, err
		}
		e := hosted[r.GetEventId()]
		if e == nil {
			if e, err = s.getEvent(ctx, r.GetEventId()); err != nil {
				return nil, err
			}
			hosted[r.GetEventId()] = e
		}
		var rank int32
		if r.GetState() == regWaitlisted {
			if ranks[r.GetEventId()] == nil {
				if ranks[r.GetEventId()], err = s.waitlistRanks(ctx, r.GetEventId()); err != nil {
					return nil, err
				}
			}
			rank = ranks[r.GetEventId()][r.GetId()]
		}
		resp.Registrations = append(resp.Registrations, toProtoRegistration(ctx, e, r, rank))
	}
	return resp, nil
}

// CancelRegistration cancels a registration; a freed seat goes to the first
// WAITLISTED registration in the same write.
func (s *Server) CancelRegistration(ctx context.Context, req *talentv1.CancelRegistrationRequest) (*talentv1.CancelRegistrationResponse, error) {
	if err := checkReason("reason", req.GetReason(), false); err != nil {
		return nil, err
	}
	var promoted []*talentv1.Registration
	t, r, err := s.registrationAction(ctx, req.GetId(), req.GetVersion(), false, func(t *tx, r *talentv1.Registration) error {
		var err error
		promoted, err = t.cancelRegistration(r, strings.TrimSpace(req.GetReason()))
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &talentv1.CancelRegistrationResponse{Registration: toProtoRegistration(ctx, t.ev, r, 0)}
	if len(promoted) > 0 {
		resp.Promoted = toProtoRegistration(ctx, t.ev, promoted[0], 0)
	}
	return resp, nil
}

// CheckIn records a CONFIRMED attendee as ATTENDED.
func (s *Server) CheckIn(ctx context.Context, req *talentv1.CheckInRequest) (*talentv1.CheckInResponse, error) {
	t, r, err := s.registrationAction(ctx, req.GetId(), req.GetVersion(), true, func(t *tx, r *talentv1.Registration) error {
		return t.checkIn(r)
	})
	if err != nil {
		return nil, err
	}
	return &talentv1.CheckInResponse{Registration: toProtoRegistration(ctx, t.ev, r, 0)}, nil
}

// CorrectAttendance records attendance after the fact, or undoes it.
func (s *Server) CorrectAttendance(ctx context.Context, req *talentv1.CorrectAttendanceRequest) (*talentv1.CorrectAttendanceResponse, error) {
	if err := checkReason("reason", req.GetReason(), true); err != nil {
		return nil, err
	}
	t, r, err := s.registrationAction(ctx, req.GetId(), req.GetVersion(), true, func(t *tx, r *talentv1.Registration) error {
		return t.correct(r, req.GetAttended(), strings.TrimSpace(req.GetReason()))
	})
	if err != nil {
		return nil, err
	}
	return &talentv1.CorrectAttendanceResponse{Registration: toProtoRegistration(ctx, t.ev, r, 0)}, nil
}
