package talent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/instview"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

// SeedPath is where the talent base's demo season sits inside the seeds
// folder.
const SeedPath = "talent/season.json"

// beijing is the district's time zone (UTC+8, no daylight saving): seeded
// events start at local hours.
var beijing = time.FixedZone("CST", 8*3600)

// SeedFile is the JSON shape of SeedPath, shared by LoadSeeds and the
// 'carbondesk seed' client.
type SeedFile struct {
	Note    string       `json:"note"`
	Talents []SeedTalent `json:"talents"`
	Events  []SeedEvent  `json:"events"`
}

// SeedTalent is one person of the talent base, known by Key.
type SeedTalent struct {
	Key            string   `json:"key"`
	Name           string   `json:"name"`
	Organization   string   `json:"organization"`
	CreditCode     string   `json:"organization_credit_code"`
	Role           string   `json:"role"`
	Phone          string   `json:"phone"`
	Email          string   `json:"email"`
	Skills         []string `json:"skills"`
	Certifications []struct {
		JobType       string `json:"job_type"`
		Number        string `json:"certificate_number"`
		IssuedDaysAgo int    `json:"issued_days_ago"`
	} `json:"certifications"`
}

// SeedEvent is one event of the season, its days counted from the day
// the seeds are loaded, with the state it should end in.
type SeedEvent struct {
	Key           string   `json:"key"`
	HostCode      string   `json:"host_credit_code"` // "": the district
	TitleZh       string   `json:"title_zh"`
	TitleEn       string   `json:"title_en"`
	Kind          string   `json:"kind"`
	Description   string   `json:"description"`
	StartInDays   int      `json:"start_in_days"`
	StartHour     int      `json:"start_hour"`
	DurationHours int      `json:"duration_hours"`
	Venue         string   `json:"venue"`
	Zone          string   `json:"zone"`
	Capacity      int32    `json:"capacity"`
	DeadlineDays  int      `json:"deadline_days_before"`
	Categories    []string `json:"categories"`
	Sectors       []string `json:"sectors"`
	JobTypes      []string `json:"job_types"`
	TrainingHours int32    `json:"training_hours"`
	State         string   `json:"state"` // DRAFT, PUBLISHED, CLOSED, COMPLETED or CANCELLED
	Reason        string   `json:"reason"`
	Registrations []struct {
		Talent       string `json:"talent"` // a seeded talent's key
		Name         string `json:"name"`
		Organization string `json:"organization"`
		Role         string `json:"role"`
		Phone        string `json:"phone"`
		Email        string `json:"email"`
		Attended     bool   `json:"attended"`
	} `json:"registrations"`
}

// LoadSeeds loads the demo season of SeedPath in fsys (seeds.FS, or
// os.DirFS("seeds")) through s as the system: each talent and each event
// not loaded before, the events published, registered for and taken to the
// state the file gives. Days count from the day it runs, so the season is
// always around "now"; a past event is played on a clock of its own
// (created 30 days before it starts, attendance 15 minutes after the start,
// completed after the end), so its attendees' hours are in their ledgers.
//
// Hosts are named by credit code and must be ACTIVE in the service's view
// of the registry: LoadSeeds waits for that (up to WithSeedWait, default
// 30 s), so the registry's seeds must be loaded and published and the
// institution feed (Run) running, as for the catalog's seeds.
//
// It is idempotent: each talent and event is marked in the batch that
// creates it, and a marked key is skipped whatever happened since. (A crash
// between creating an event and its later steps leaves those undone.)
func LoadSeeds(ctx context.Context, s *Server, fsys fs.FS) error {
	data, err := fs.ReadFile(fsys, SeedPath)
	if err != nil {
		return fmt.Errorf("talent: seeds: %w", err)
	}
	var f SeedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("talent: seeds: %s: %w", SeedPath, err)
	}
	ctx = events.WithActor(ctx, events.System)
	s.sweeping.Lock() // see Server.sweeping
	defer s.sweeping.Unlock()
	now := s.now().UTC()

	talents := map[string]*talentv1.Talent{}
	created := 0
	for i, sd := range f.Talents {
		if sd.Key == "" {
			return fmt.Errorf("talent: seeds: %s talent %d has no key", SeedPath, i)
		}
		p, ok, err := s.seedTalent(ctx, sd, now)
		if err != nil {
			return fmt.Errorf("talent: seeds: %s talent %s: %w", SeedPath, sd.Key, err)
		}
		talents[sd.Key] = p
		if ok {
			created++
		}
	}

	var todo []SeedEvent
	need := map[string]bool{}
	for i, sd := range f.Events {
		if sd.Key == "" {
			return fmt.Errorf("talent: seeds: %s event %d has no key", SeedPath, i)
		}
		if _, err := s.st.Get(ctx, kindSeed, "event:"+sd.Key); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("talent: seeds: %w", err)
		}
		todo = append(todo, sd)
		if sd.HostCode != "" {
			need[registry.NormalizeCreditCode(sd.HostCode)] = true
		}
	}
	views, err := s.awaitHosts(ctx, need)
	if err != nil {
		return fmt.Errorf("talent: seeds: %w", err)
	}
	day := time.Date(now.In(beijing).Year(), now.In(beijing).Month(), now.In(beijing).Day(), 0, 0, 0, 0, beijing)
	for _, sd := range todo {
		var host *Institution
		if sd.HostCode != "" {
			host = views[registry.NormalizeCreditCode(sd.HostCode)]
		}
		if err := s.seedEvent(ctx, sd, host, talents, day, now); err != nil {
			return fmt.Errorf("talent: seeds: %s event %s: %w", SeedPath, sd.Key, err)
		}
	}
	s.log.InfoContext(ctx, "talent: seeds loaded", "file", SeedPath, "talents_created", created, "events_created", len(todo))
	return nil
}

// seedTalent creates one talent unless its key is marked, and returns it
// (false: it was there).
func (s *Server) seedTalent(ctx context.Context, sd SeedTalent, now time.Time) (*talentv1.Talent, bool, error) {
	mark := "talent:" + sd.Key
	if rec, err := s.st.Get(ctx, kindSeed, mark); err == nil {
		p, err := s.getTalent(ctx, string(rec.Data))
		return p, false, err
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	in := &talentv1.Talent{Name: sd.Name, Organization: sd.Organization, OrganizationCreditCode: sd.CreditCode, Role: sd.Role,
		Phone: sd.Phone, Email: sd.Email, Skills: sd.Skills}
	for _, c := range sd.Certifications {
		j, err := protoenum.Parse[talentv1.JobType](c.JobType)
		if err != nil {
			return nil, false, fmt.Errorf("certifications: %w", err)
		}
		in.Certifications = append(in.Certifications, &talentv1.Certification{JobType: j, CertificateNumber: c.Number,
			IssueTime: timestamppb.New(now.AddDate(0, 0, -c.IssuedDaysAgo).Truncate(24 * time.Hour))})
	}
	p := cleanTalent(in)
	var v errs.Violations
	validateTalent(&v, "", p, now)
	if err := v.Err(); err != nil {
		return nil, false, err
	}
	p.Id = events.NewID(now) // known before the batch, for the mark
	err := s.createTalent(ctx, p, now, store.Put{Kind: kindSeed, ID: mark, Expect: store.MustNotExist, Data: []byte(p.GetId())})
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Kind == kindSeed {
		return s.seedTalent(ctx, sd, now) // another loader won: read what it made
	}
	return p, err == nil, err
}

// awaitHosts polls the view until it holds every code of need ACTIVE, and
// returns the views by code.
func (s *Server) awaitHosts(ctx context.Context, need map[string]bool) (map[string]*Institution, error) {
	ctx, cancel := context.WithTimeout(ctx, s.seedWait)
	defer cancel()
	views, missing, err := instview.Await(ctx, s.st, kindInstitution, need, 50*time.Millisecond)
	if len(missing) > 0 {
		return nil, fmt.Errorf("the talent base's view lacks (or does not yet hold ACTIVE) %d hosts (%s) after %s: are the registry's seeds loaded, its outbox relay and the talent feed running?",
			len(missing), strings.Join(missing, ", "), s.seedWait)
	}
	if err != nil {
		return nil, fmt.Errorf("talent: %w", err)
	}
	return views, nil
}

// seedClock is a clock a seed sets, moving a second per reading so every
// change has its own time.
type seedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *seedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func (c *seedClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// withClock is the server on another clock, sharing everything else.
func (s *Server) withClock(now func() time.Time) *Server {
	c := *s
	c.now = now
	return &c
}

// seedEvent creates one event and plays it to its state.
func (s *Server) seedEvent(ctx context.Context, sd SeedEvent, host *Institution, talents map[string]*talentv1.Talent, day, now time.Time) error {
	e, err := sd.event(day)
	if err != nil {
		return err
	}
	target, err := protoenum.Parse[talentv1.EventState](sd.State)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	start, end := e.GetStartTime().AsTime(), e.GetEndTime().AsTime()
	past := !start.After(now)
	if past && target != eventCompleted {
		return fmt.Errorf("a past event is seeded COMPLETED, not %s", sd.State)
	}
	sim := s
	var clock *seedClock
	if past {
		clock = &seedClock{t: start.AddDate(0, 0, -30)}
		sim = s.withClock(clock.now)
	}
	at := sim.now().UTC()
	if host != nil {
		e.HostInstitutionId = host.ID
	}
	e, host, err = sim.newEvent(ctx, e, at)
	if err != nil {
		return err
	}
	mark := store.Put{Kind: kindSeed, ID: "event:" + sd.Key, Expect: store.MustNotExist, Data: []byte(sd.Key)}
	err = sim.createEvent(ctx, e, host, at, mark)
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Kind == kindSeed {
		return nil // another loader got there first
	}
	if err != nil {
		return err
	}
	if target == eventDraft {
		return nil
	}
	if _, err := sim.PublishEvent(ctx, &talentv1.PublishEventRequest{Id: e.GetId()}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	var attend []string
	for i, r := range sd.Registrations {
		a := &talentv1.Attendee{Name: r.Name, Organization: r.Organization, Role: r.Role, Phone: r.Phone, Email: r.Email}
		rctx := ctx
		if r.Talent != "" {
			p := talents[r.Talent]
			if p == nil {
				return fmt.Errorf("registration %d names talent %q, which the seeds do not hold", i, r.Talent)
			}
			a.TalentId = p.GetId()
			rctx = s.registrantCtx(ctx, p.GetOrganizationCreditCode())
		}
		resp, err := sim.RegisterForEvent(rctx, &talentv1.RegisterForEventRequest{EventId: e.GetId(), Attendee: a})
		if err != nil {
			return fmt.Errorf("registration %d: %w", i, err)
		}
		if r.Attended {
			attend = append(attend, resp.GetRegistration().GetId())
		}
	}
	switch target {
	case eventClosed:
		_, err = sim.CloseEvent(ctx, &talentv1.CloseEventRequest{Id: e.GetId(), Reason: sd.Reason})
	case eventCancelled:
		_, err = sim.CancelEvent(ctx, &talentv1.CancelEventRequest{Id: e.GetId(), Reason: sd.Reason})
	case eventCompleted:
		if clock == nil {
			return errors.New("a future event is not seeded COMPLETED")
		}
		clock.set(start.Add(15 * time.Minute))
		for _, id := range attend {
			if _, err := sim.CheckIn(ctx, &talentv1.CheckInRequest{Id: id}); err != nil {
				return fmt.Errorf("check in %s: %w", id, err)
			}
		}
		clock.set(end.Add(30 * time.Minute))
		_, err = sim.CompleteEvent(ctx, &talentv1.CompleteEventRequest{Id: e.GetId()})
	}
	return err
}

// registrantCtx is the context of an organisation registering its people:
// an institution's or enterprise's caller (the system for staff-kept
// profiles).
func (s *Server) registrantCtx(ctx context.Context, org string) context.Context {
	if org == "" {
		return ctx
	}
	role := auth.Enterprise
	if in, err := s.institutionByCode(ctx, org); err == nil && in != nil {
		role = auth.Institution
	}
	return auth.WithCaller(ctx, auth.Caller{Subject: "seed-" + strings.ToLower(string(role)), Role: role, Org: org})
}

// event builds the request's event of a seed, its days counted from day.
func (sd SeedEvent) event(day time.Time) (*talentv1.Event, error) {
	start := day.AddDate(0, 0, sd.StartInDays).Add(time.Duration(sd.StartHour) * time.Hour)
	deadlineDays := sd.DeadlineDays
	if deadlineDays == 0 {
		deadlineDays = 1
	}
	e := &talentv1.Event{
		TitleZh: sd.TitleZh, TitleEn: sd.TitleEn, Description: sd.Description, Venue: sd.Venue,
		StartTime:            timestamppb.New(start.UTC()),
		EndTime:              timestamppb.New(start.Add(time.Duration(sd.DurationHours) * time.Hour).UTC()),
		RegistrationDeadline: timestamppb.New(start.AddDate(0, 0, -deadlineDays).UTC()),
		Capacity:             sd.Capacity,
		TrainingHours:        sd.TrainingHours,
		Topics:               &talentv1.Topics{},
	}
	var err error
	if e.Kind, err = protoenum.Parse[talentv1.EventKind](sd.Kind); err != nil {
		return nil, fmt.Errorf("kind: %w", err)
	}
	if e.Zone, err = protoenum.Parse[registryv1.Zone](sd.Zone); err != nil {
		return nil, fmt.Errorf("zone: %w", err)
	}
	for _, c := range sd.Categories {
		v, err := protoenum.Parse[catalogv1.ProductCategory](c)
		if err != nil {
			return nil, fmt.Errorf("categories: %w", err)
		}
		e.Topics.Categories = append(e.Topics.Categories, v)
	}
	for _, c := range sd.Sectors {
		v, err := protoenum.Parse[catalogv1.Sector](c)
		if err != nil {
			return nil, fmt.Errorf("sectors: %w", err)
		}
		e.Topics.Sectors = append(e.Topics.Sectors, v)
	}
	for _, c := range sd.JobTypes {
		v, err := protoenum.Parse[talentv1.JobType](c)
		if err != nil {
			return nil, fmt.Errorf("job_types: %w", err)
		}
		e.Topics.JobTypes = append(e.Topics.JobTypes, v)
	}
	return e, nil
}
