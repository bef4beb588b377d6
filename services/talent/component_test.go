package talent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TestComponent runs the talent base as production does (a real gRPC
// server with the platform's interceptors, the Redis store, the outbox
// relay, the institution feed and the sweep on an embedded JetStream) and
// drives it through the generated client: an institution approved in the
// registry hosts an event, an enterprise registers its people and sees
// their contacts masked, the host sees them in full, a cancellation
// promotes the waitlist, check-in credits a talent's hours, and errors
// arrive with their codes and field violations.
func TestComponent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	e := startFeed(t, testenv.RedisStore(t))

	// A real server; the callers' headers stand in for verified tokens.
	srv := grpcx.New(slog.New(slog.DiscardHandler), grpcx.Options{Unary: []grpc.UnaryServerInterceptor{testenv.CallerInterceptor}})
	e.s.Register(srv.Server)
	cc := testenv.ServeGRPC(t, srv)
	client := talentv1.NewTalentServiceClient(cc)
	as := func(role auth.Role, org string) context.Context { return testenv.AsCaller(ctx, role, org) }
	code, ent := newOrg(), newOrg()
	bank, firm := as(auth.Institution, code), as(auth.Enterprise, ent)

	reg := &registryv1.Institution{Id: "01JCOMPONENT0000000000001", CreditCode: code, NameZh: "楚江碳金融银行武昌分行",
		Kind: registryv1.InstitutionKind_INSTITUTION_KIND_BANK, State: active, Version: 2}
	e.publish(t, registry.SubjectApproved, reg)
	e.view(t, reg.GetId(), 2)

	ev := validEvent(10)
	ev.Capacity = 1
	created, err := client.CreateEvent(bank, &talentv1.CreateEventRequest{Event: ev})
	if err != nil {
		t.Fatalf("CreateEvent: %v", err)
	}
	id := created.GetEvent().GetId()
	if h := created.GetEvent(); h.GetHostInstitutionId() != reg.GetId() || h.GetHostCreditCode() != code || h.GetHostName() != reg.GetNameZh() {
		t.Errorf("host %q %q %q", h.GetHostInstitutionId(), h.GetHostCreditCode(), h.GetHostName())
	}
	if _, err := client.PublishEvent(bank, &talentv1.PublishEventRequest{Id: id, Version: 1}); err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	list, err := client.ListEvents(firm, &talentv1.ListEventsRequest{JobType: talentv1.JobType_JOB_TYPE_ACCOUNTING, TitleContains: "核算"})
	if err != nil || len(list.GetEvents()) != 1 || list.GetEvents()[0].GetId() != id {
		t.Fatalf("the enterprise lists %v, %v; want event %s", list.GetEvents(), err, id)
	}

	p, err := client.CreateTalent(firm, &talentv1.CreateTalentRequest{Talent: &talentv1.Talent{
		Name: "黄志强", Organization: "武昌示范钢铁有限公司", Role: "能源管理部主管", Phone: "139 0271 0009", Email: "huang.zhiqiang@wcsteel.example",
	}})
	if err != nil {
		t.Fatalf("CreateTalent: %v", err)
	}
	seat, err := client.RegisterForEvent(firm, &talentv1.RegisterForEventRequest{EventId: id, Attendee: &talentv1.Attendee{TalentId: p.GetTalent().GetId()}})
	if err != nil {
		t.Fatalf("RegisterForEvent: %v", err)
	}
	if a := seat.GetRegistration().GetAttendee(); a.GetPhone() != "139****0009" || a.GetEmail() != "h***@wcsteel.example" || !seat.GetRegistration().GetContactMasked() {
		t.Errorf("the registrant sees %q %q", a.GetPhone(), a.GetEmail())
	}
	waiting, err := client.RegisterForEvent(firm, &talentv1.RegisterForEventRequest{EventId: id, Attendee: person()})
	if err != nil || waiting.GetRegistration().GetState() != regWaitlisted {
		t.Fatalf("second registration: %v, %v", waiting.GetRegistration().GetState(), err)
	}
	full, err := client.ListRegistrations(bank, &talentv1.ListRegistrationsRequest{EventId: id})
	if err != nil || len(full.GetRegistrations()) != 2 || full.GetRegistrations()[0].GetAttendee().GetPhone() != "139 0271 0009" {
		t.Fatalf("the host lists %v, %v; want both, in full", full.GetRegistrations(), err)
	}

	// The second person takes the seat the first one frees; the first
	// registers again and waits.
	if _, err := client.CancelRegistration(firm, &talentv1.CancelRegistrationRequest{Id: seat.GetRegistration().GetId()}); err != nil {
		t.Fatal(err)
	}
	again, err := client.RegisterForEvent(firm, &talentv1.RegisterForEventRequest{EventId: id, Attendee: &talentv1.Attendee{TalentId: p.GetTalent().GetId()}})
	if err != nil || again.GetRegistration().GetWaitlistPosition() != 1 {
		t.Fatalf("registering again: %v, %v", again.GetRegistration(), err)
	}
	_, err = client.RegisterForEvent(firm, &talentv1.RegisterForEventRequest{EventId: id, Attendee: &talentv1.Attendee{TalentId: p.GetTalent().GetId()}})
	testenv.WantStatus(t, err, codes.AlreadyExists, "talent "+p.GetTalent().GetId()+" is already registered for event "+id+"; one registration per person")
	if _, err := client.UpdateEvent(bank, &talentv1.UpdateEventRequest{Id: id, Version: 2, Event: &talentv1.Event{Capacity: 2}}); err != nil {
		t.Fatalf("UpdateEvent: %v", err)
	}
	_, err = client.UpdateEvent(bank, &talentv1.UpdateEventRequest{Id: id, Version: 1, Event: &talentv1.Event{TitleEn: "Late"}})
	testenv.WantStatus(t, err, codes.Aborted, "version 1 of event "+id+" is stale; it is at version 3; read it again")

	// At the door: the host checks the talent in; its hours are credited.
	e.clock.set(ev.GetStartTime().AsTime())
	if _, err := client.CheckIn(bank, &talentv1.CheckInRequest{Id: again.GetRegistration().GetId()}); err != nil {
		t.Fatalf("CheckIn: %v", err)
	}
	ledger, err := client.GetHoursLedger(firm, &talentv1.GetHoursLedgerRequest{TalentId: p.GetTalent().GetId()})
	if err != nil || ledger.GetTotalHours() != 8 || len(ledger.GetEntries()) != 1 {
		t.Fatalf("ledger %v, %v; want 8 hours in one entry", ledger, err)
	}

	// Errors keep their codes over the wire.
	_, err = client.CheckIn(firm, &talentv1.CheckInRequest{Id: again.GetRegistration().GetId()})
	testenv.WantStatus(t, err, codes.PermissionDenied, "only the event's host or district staff record attendance")
	_, err = client.GetTalent(as(auth.Enterprise, newOrg()), &talentv1.GetTalentRequest{Id: p.GetTalent().GetId()})
	testenv.WantStatus(t, err, codes.NotFound, `talent "`+p.GetTalent().GetId()+`" not found`)
	bad := validEvent(10)
	bad.Capacity, bad.TrainingHours = 0, -1
	_, err = client.CreateEvent(bank, &talentv1.CreateEventRequest{Event: bad})
	if got := testenv.FieldViolations(err); !cmp.Equal(got, []string{"event.capacity", "event.training_hours"}) {
		t.Errorf("create with bad capacity and hours: %v; fields %v", err, got)
	}

	// The TALENT stream holds each change of the event (the sweep closed
	// registration when the clock passed the deadline).
	want := []string{"talent.event.created v1", "talent.event.published v2", "talent.event.updated v3", "talent.event.closed v4"}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(e.eventChanges(t, id)) >= len(want) })
	if diff := cmp.Diff(want, e.eventChanges(t, id)); diff != "" {
		t.Errorf("TALENT stream (-want +got):\n%s", diff)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, c := range e.eventChanges(t, p.GetTalent().GetId()) {
			if strings.HasPrefix(c, "talent.talent.hours_credited") {
				return true
			}
		}
		return false
	})
	if ServiceName != talentv1.TalentService_ServiceDesc.ServiceName {
		t.Errorf("ServiceName %q, generated %q", ServiceName, talentv1.TalentService_ServiceDesc.ServiceName)
	}
}
