package talent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

var t0 = time.Date(2026, 4, 2, 1, 30, 0, 0, time.UTC) // 09:30 in Wuchang

// clock moves a millisecond per reading, so every change has its own
// time; tests move it further with set and add.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a talent service on one store, on a clock of its own.
type env struct {
	s     *Server
	st    store.Store
	clock *clock
}

func newEnv(t testing.TB, st store.Store, opts ...Option) *env {
	t.Helper()
	c := &clock{now: t0}
	return &env{s: New(st, append([]Option{WithClock(c.Now)}, opts...)...), st: st, clock: c}
}

// staffCtx, instCtx and entCtx carry callers: district staff, an
// institution and an enterprise of an organisation.
func staffCtx(testing.TB) context.Context { return staffCtxAt(context.Background()) }

func instCtx(org string) context.Context {
	return auth.WithCaller(context.Background(), auth.Caller{Subject: "desk-" + org, Role: auth.Institution, Org: org})
}

func entCtx(org string) context.Context { return entCtxAt(context.Background(), org) }

var districtOrg = mustCode("11420106MB0000001")

var codeSeq atomic.Int64

// newOrg is a valid credit code no other call returns.
func newOrg() string { return mustCode(fmt.Sprintf("91420106T%08d", codeSeq.Add(1))) }

func mustCode(first17 string) string {
	code, err := registry.CompleteCreditCode(first17)
	if err != nil {
		panic(err)
	}
	return code
}

// host puts an institution into the view in state, as the feed would.
func (e *env) host(t testing.TB, state registryv1.InstitutionState) *Institution {
	t.Helper()
	n := codeSeq.Add(1)
	in := &Institution{ID: fmt.Sprintf("01INST%020d", n), CreditCode: mustCode(fmt.Sprintf("91420106H%08d", n)),
		NameZh: "楚江碳金融银行武昌分行", State: state, Version: 1}
	if err := e.s.applyInstitution(context.Background(), in); err != nil {
		t.Fatalf("apply institution: %v", err)
	}
	return in
}

// setHost moves an institution of the view to state, as the feed does for
// a registry event (flagging or unflagging its events).
func (e *env) setHost(t testing.TB, in *Institution, state registryv1.InstitutionState) {
	t.Helper()
	next := *in
	next.State, next.Version = state, in.Version+1
	if err := e.s.applyInstitution(context.Background(), &next); err != nil {
		t.Fatalf("apply institution: %v", err)
	}
	*in = next
}

// validEvent is an event request that passes validation, starting days
// after the clock's start.
func validEvent(days int) *talentv1.Event {
	start := t0.AddDate(0, 0, days)
	return &talentv1.Event{
		TitleZh:              "碳排放管理员（核算员）培训班",
		TitleEn:              "Carbon Emission Manager (Accounting) Training",
		Kind:                 talentv1.EventKind_EVENT_KIND_TRAINING,
		Description:          "核算指南与排放报告编制",
		StartTime:            timestamppb.New(start),
		EndTime:              timestamppb.New(start.Add(8 * time.Hour)),
		Venue:                "武汉市武昌区中北路 86 号 三楼培训室",
		Zone:                 registryv1.Zone_ZONE_FINANCE_AXIS,
		Capacity:             30,
		RegistrationDeadline: timestamppb.New(start.Add(-24 * time.Hour)),
		Topics: &talentv1.Topics{
			Categories: []catalogv1.ProductCategory{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE},
			Sectors:    []catalogv1.Sector{catalogv1.Sector_SECTOR_POWER, catalogv1.Sector_SECTOR_STEEL},
			JobTypes:   []talentv1.JobType{talentv1.JobType_JOB_TYPE_ACCOUNTING},
		},
		TrainingHours: 8,
	}
}

// createEvent creates an event as staff for host (nil: the district).
func (e *env) createEvent(t testing.TB, host *Institution, mod ...func(*talentv1.Event)) *talentv1.Event {
	t.Helper()
	ev := validEvent(10)
	for _, m := range mod {
		m(ev)
	}
	if host != nil {
		ev.HostInstitutionId = host.ID
	}
	resp, err := e.s.CreateEvent(staffCtx(t), &talentv1.CreateEventRequest{Event: ev})
	if err != nil {
		t.Fatalf("CreateEvent: %v", err)
	}
	return resp.GetEvent()
}

// published creates and publishes an event.
func (e *env) published(t testing.TB, host *Institution, mod ...func(*talentv1.Event)) *talentv1.Event {
	t.Helper()
	ev := e.createEvent(t, host, mod...)
	resp, err := e.s.PublishEvent(staffCtx(t), &talentv1.PublishEventRequest{Id: ev.GetId(), Version: ev.GetVersion()})
	if err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	return resp.GetEvent()
}

func capacity(n int32) func(*talentv1.Event) { return func(e *talentv1.Event) { e.Capacity = n } }

var personSeq atomic.Int64

// person is an attendee no other call returns (own phone and e-mail).
func person() *talentv1.Attendee {
	n := personSeq.Add(1)
	return &talentv1.Attendee{
		Name: fmt.Sprintf("测试学员%d", n), Organization: "武昌示范钢铁有限公司", Role: "碳排放管理员",
		Phone: fmt.Sprintf("139 %04d %04d", n/10000%10000, n%10000), Email: fmt.Sprintf("trainee%d@wcsteel.example", n),
	}
}

// register registers a as ctx's caller.
func (e *env) register(t testing.TB, ctx context.Context, eventID string, a *talentv1.Attendee) *talentv1.Registration {
	t.Helper()
	resp, err := e.s.RegisterForEvent(ctx, &talentv1.RegisterForEventRequest{EventId: eventID, Attendee: a})
	if err != nil {
		t.Fatalf("RegisterForEvent: %v", err)
	}
	return resp.GetRegistration()
}

func (e *env) readEvent(t testing.TB, id string) *talentv1.Event {
	t.Helper()
	resp, err := e.s.GetEvent(staffCtx(t), &talentv1.GetEventRequest{Id: id})
	if err != nil {
		t.Fatalf("GetEvent %s: %v", id, err)
	}
	return resp.GetEvent()
}

// registrations lists every registration of an event as staff, in order
// of arrival.
func (e *env) registrations(t testing.TB, eventID string) []*talentv1.Registration {
	t.Helper()
	var out []*talentv1.Registration
	req := &talentv1.ListRegistrationsRequest{EventId: eventID, PageSize: 200}
	for {
		resp, err := e.s.ListRegistrations(staffCtx(t), req)
		if err != nil {
			t.Fatalf("ListRegistrations: %v", err)
		}
		out = append(out, resp.GetRegistrations()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// newTalent creates a profile of org as staff.
func (e *env) newTalent(t testing.TB, org string) *talentv1.Talent {
	t.Helper()
	a := person()
	resp, err := e.s.CreateTalent(staffCtx(t), &talentv1.CreateTalentRequest{Talent: &talentv1.Talent{
		Name: a.GetName(), Organization: a.GetOrganization(), OrganizationCreditCode: org, Role: a.GetRole(),
		Phone: a.GetPhone(), Email: a.GetEmail(), Skills: []string{"碳核算", "ISO 14064"},
		Certifications: []*talentv1.Certification{{JobType: talentv1.JobType_JOB_TYPE_ACCOUNTING, CertificateNumber: "HBTP-2025-ACC-0001"}},
	}})
	if err != nil {
		t.Fatalf("CreateTalent: %v", err)
	}
	return resp.GetTalent()
}

func code(err error) codes.Code {
	st, _ := errs.Status(err)
	return st.Code()
}

func wantCode(t testing.TB, what string, err error, want codes.Code) {
	t.Helper()
	if got := code(err); got != want {
		t.Errorf("%s: %v (%s), want %s", what, err, got, want)
	}
}

func violationFields(err error) []string {
	var inv *errs.InvalidError
	if !errors.As(err, &inv) {
		return nil
	}
	var fields []string
	for _, v := range inv.Violations {
		fields = append(fields, v.Field)
	}
	return fields
}

// pending reads the outbox as "subject entity vN" lines (see pendingEvents).
func pending(t testing.TB, st store.Store) []string {
	t.Helper()
	var out []string
	for _, p := range pendingEvents(t, st) {
		out = append(out, fmt.Sprintf("%s %s v%d", p.subject, p.env.GetEntityId(), p.env.GetEntityVersion()))
	}
	return out
}

// outboxEvent is one event written to the outbox, its payload's bytes
// (a talentv1 message) apart.
type outboxEvent struct {
	subject string
	env     *eventv1.Envelope
	payload []byte
}

// pendingEvents reads the outbox and marks what it read as sent: each call
// returns the events written since the last.
func pendingEvents(t testing.TB, st store.Store) []outboxEvent {
	t.Helper()
	var out []outboxEvent
	for {
		ps, err := st.Pending(context.Background(), store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return out
		}
		seqs := make([]string, len(ps))
		for i, p := range ps {
			env, err := events.Decode(p.Data)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, outboxEvent{subject: p.Subject, env: env, payload: env.GetPayload().GetValue()})
			seqs[i] = p.Seq
		}
		if err := st.MarkSent(context.Background(), seqs...); err != nil {
			t.Fatal(err)
		}
	}
}

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
