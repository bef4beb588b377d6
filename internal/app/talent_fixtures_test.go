package app_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
)

func (a *testApp) talent() talentv1.TalentServiceClient {
	return talentv1.NewTalentServiceClient(a.conn)
}

// talentEvent is a valid event of host (empty: the district). soon: it
// starts within the hour, so check-in is open; else in 30 days.
func talentEvent(host string, soon bool) *talentv1.Event {
	start := time.Now().Add(30 * 24 * time.Hour)
	if soon {
		start = time.Now().Add(time.Hour)
	}
	return &talentv1.Event{
		HostInstitutionId: host,
		TitleZh:           "碳排放管理员（核算员）培训班",
		Kind:              talentv1.EventKind_EVENT_KIND_TRAINING,
		StartTime:         timestamppb.New(start),
		EndTime:           timestamppb.New(start.Add(8 * time.Hour)),
		Venue:             "武汉市武昌区中北路 86 号",
		Capacity:          50,
		TrainingHours:     8,
	}
}

// eventOf is an event hosted by an ACTIVE institution of org that the
// talent base's view of the registry already holds ACTIVE, DRAFT or
// (publish) PUBLISHED.
func (a *testApp) eventOf(t testing.TB, org string, publish, soon bool) *talentv1.Event {
	t.Helper()
	in := a.inState(t, org, registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE)
	// The view follows the registry's events: CreateEvent answers
	// FailedPrecondition until it holds the institution ACTIVE.
	deadline := time.Now().Add(10 * time.Second)
	var ev *talentv1.Event
	for {
		r, err := a.talent().CreateEvent(a.staff(t), &talentv1.CreateEventRequest{Event: talentEvent(in.GetId(), soon)})
		if err == nil {
			ev = r.GetEvent()
			break
		}
		if status.Code(err) != codes.FailedPrecondition || time.Now().After(deadline) {
			t.Fatalf("the talent base does not see institution %s as ACTIVE: %v", in.GetId(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !publish {
		return ev
	}
	r, err := a.talent().PublishEvent(a.staff(t), &talentv1.PublishEventRequest{Id: ev.GetId(), Version: ev.GetVersion()})
	if err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	return r.GetEvent()
}

var attendeeSeq atomic.Int64

// attendee is a person no other call of the run returns.
func attendee() *talentv1.Attendee {
	n := attendeeSeq.Add(1)
	return &talentv1.Attendee{Name: fmt.Sprintf("学员%d", n), Organization: "武昌示范钢铁有限公司",
		Phone: fmt.Sprintf("139 %04d %04d", n/10000%10000, n%10000), Email: fmt.Sprintf("trainee%d@wcsteel.example", n)}
}

// registrationOf is a registration, filed by staff, for a PUBLISHED event
// hosted by org; attended: checked in.
func (a *testApp) registrationOf(t testing.TB, org string, soon, attended bool) *talentv1.Registration {
	t.Helper()
	ev := a.eventOf(t, org, true, soon)
	r, err := a.talent().RegisterForEvent(a.staff(t), &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: attendee()})
	if err != nil {
		t.Fatalf("RegisterForEvent: %v", err)
	}
	if !attended {
		return r.GetRegistration()
	}
	c, err := a.talent().CheckIn(a.staff(t), &talentv1.CheckInRequest{Id: r.GetRegistration().GetId()})
	if err != nil {
		t.Fatalf("CheckIn: %v", err)
	}
	return c.GetRegistration()
}

// talentOf is a talent profile of org.
func (a *testApp) talentOf(t testing.TB, org string) *talentv1.Talent {
	t.Helper()
	p := attendee()
	r, err := a.talent().CreateTalent(a.staff(t), &talentv1.CreateTalentRequest{Talent: &talentv1.Talent{
		Name: p.GetName(), Organization: p.GetOrganization(), OrganizationCreditCode: org, Phone: p.GetPhone(), Skills: []string{"碳核算"}}})
	if err != nil {
		t.Fatalf("CreateTalent: %v", err)
	}
	return r.GetTalent()
}

// onEvent, onRegistration and onTalent are calls acting on an object: a
// refused write leaves it as staff read it.
func onEvent(a *testApp, ev *talentv1.Event, req proto.Message) call {
	return call{req: req, object: ev.GetId(), snapshot: func(t *testing.T) proto.Message {
		r, err := a.talent().GetEvent(a.staff(t), &talentv1.GetEventRequest{Id: ev.GetId()})
		if err != nil {
			t.Fatalf("GetEvent %s as staff: %v", ev.GetId(), err)
		}
		return r.GetEvent()
	}}
}

func onRegistration(a *testApp, r *talentv1.Registration, req proto.Message) call {
	return call{req: req, object: r.GetId(), snapshot: func(t *testing.T) proto.Message {
		g, err := a.talent().GetRegistration(a.staff(t), &talentv1.GetRegistrationRequest{Id: r.GetId()})
		if err != nil {
			t.Fatalf("GetRegistration %s as staff: %v", r.GetId(), err)
		}
		return g.GetRegistration()
	}}
}

func onTalent(a *testApp, p *talentv1.Talent, req proto.Message) call {
	return call{req: req, object: p.GetId(), snapshot: func(t *testing.T) proto.Message {
		g, err := a.talent().GetTalent(a.staff(t), &talentv1.GetTalentRequest{Id: p.GetId()})
		if err != nil {
			t.Fatalf("GetTalent %s as staff: %v", p.GetId(), err)
		}
		return g.GetTalent()
	}}
}

// talentFixtures are the matrix fixtures of the talent base's RPCs. An
// event's object is hosted by org's institution; a registration is filed
// by staff for an event org hosts, so org is its host and nobody's
// registrant; a talent is kept by org. Objects that must not be public are
// DRAFT events.
func talentFixtures() map[string]fixture {
	return map[string]fixture{
		talentv1.TalentService_CreateEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, false, false) // the view holds the host
				return call{req: &talentv1.CreateEventRequest{Event: talentEvent(ev.GetHostInstitutionId(), false)}}
			},
		},
		talentv1.TalentService_GetEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, false, false)
				return onEvent(a, ev, &talentv1.GetEventRequest{Id: ev.GetId()})
			},
		},
		talentv1.TalentService_ListEvents_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, false, false)
				return onEvent(a, ev, &talentv1.ListEventsRequest{HostInstitutionId: ev.GetHostInstitutionId(), PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				var out []string
				for _, ev := range resp.(*talentv1.ListEventsResponse).GetEvents() {
					out = append(out, ev.GetId())
				}
				return out
			},
		},
		talentv1.TalentService_UpdateEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, false, false)
				return onEvent(a, ev, &talentv1.UpdateEventRequest{Id: ev.GetId(), Version: ev.GetVersion(),
					Event: &talentv1.Event{Description: "课程表已更新"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
			},
		},
		talentv1.TalentService_PublishEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, false, false)
				return onEvent(a, ev, &talentv1.PublishEventRequest{Id: ev.GetId(), Version: ev.GetVersion()})
			},
		},
		talentv1.TalentService_CloseEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				// A published event is public; closing it is still a write
				// on an object the caller does not host: NotFound.
				ev := a.eventOf(t, org, true, false)
				return onEvent(a, ev, &talentv1.CloseEventRequest{Id: ev.GetId(), Reason: "名额已满"})
			},
		},
		talentv1.TalentService_CompleteEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, true, true)
				return onEvent(a, ev, &talentv1.CompleteEventRequest{Id: ev.GetId()})
			},
		},
		talentv1.TalentService_CancelEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, true, false)
				return onEvent(a, ev, &talentv1.CancelEventRequest{Id: ev.GetId(), Reason: "讲师行程冲突"})
			},
		},
		talentv1.TalentService_GetEventStats_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, false, false)
				return onEvent(a, ev, &talentv1.GetEventStatsRequest{EventId: ev.GetId()})
			},
		},
		talentv1.TalentService_RegisterForEvent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				ev := a.eventOf(t, org, true, false)
				return call{req: &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: attendee()}}
			},
		},
		talentv1.TalentService_GetRegistration_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				r := a.registrationOf(t, org, false, false)
				return onRegistration(a, r, &talentv1.GetRegistrationRequest{Id: r.GetId()})
			},
		},
		talentv1.TalentService_ListRegistrations_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				r := a.registrationOf(t, org, false, false)
				return onRegistration(a, r, &talentv1.ListRegistrationsRequest{EventId: r.GetEventId(), PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				var out []string
				for _, r := range resp.(*talentv1.ListRegistrationsResponse).GetRegistrations() {
					out = append(out, r.GetId())
				}
				return out
			},
		},
		talentv1.TalentService_CancelRegistration_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				r := a.registrationOf(t, org, false, false)
				return onRegistration(a, r, &talentv1.CancelRegistrationRequest{Id: r.GetId(), Version: r.GetVersion(), Reason: "出差"})
			},
		},
		talentv1.TalentService_CheckIn_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				r := a.registrationOf(t, org, true, false)
				return onRegistration(a, r, &talentv1.CheckInRequest{Id: r.GetId(), Version: r.GetVersion()})
			},
		},
		talentv1.TalentService_CorrectAttendance_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				r := a.registrationOf(t, org, true, true)
				return onRegistration(a, r, &talentv1.CorrectAttendanceRequest{Id: r.GetId(), Version: r.GetVersion(), Reason: "签到后离场"})
			},
		},
		talentv1.TalentService_CreateTalent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := attendee()
				return call{req: &talentv1.CreateTalentRequest{Talent: &talentv1.Talent{
					Name: p.GetName(), Organization: p.GetOrganization(), OrganizationCreditCode: org, Email: p.GetEmail()}}}
			},
		},
		talentv1.TalentService_GetTalent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.talentOf(t, org)
				return onTalent(a, p, &talentv1.GetTalentRequest{Id: p.GetId()})
			},
		},
		talentv1.TalentService_ListTalents_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.talentOf(t, org)
				return onTalent(a, p, &talentv1.ListTalentsRequest{OrganizationCreditCode: org, PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				var out []string
				for _, p := range resp.(*talentv1.ListTalentsResponse).GetTalents() {
					out = append(out, p.GetId())
				}
				return out
			},
		},
		talentv1.TalentService_UpdateTalent_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.talentOf(t, org)
				return onTalent(a, p, &talentv1.UpdateTalentRequest{Id: p.GetId(), Version: p.GetVersion(),
					Talent: &talentv1.Talent{Role: "碳资产经理"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"role"}}})
			},
		},
		talentv1.TalentService_GetHoursLedger_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				p := a.talentOf(t, org)
				return onTalent(a, p, &talentv1.GetHoursLedgerRequest{TalentId: p.GetId()})
			},
		},
	}
}
