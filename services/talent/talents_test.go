package talent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestTalentProfiles: an organisation keeps profiles of its own people
// only, sees nobody else's, and finds them by skill (case, width and
// spacing ignored), certification and organisation; only staff move a
// profile to another organisation; hours are never set by hand.
func TestTalentProfiles(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	org, other := newOrg(), newOrg()
	own := entCtx(org)
	create := func(ctx context.Context, p *talentv1.Talent) (*talentv1.Talent, error) {
		resp, err := e.s.CreateTalent(ctx, &talentv1.CreateTalentRequest{Talent: p})
		return resp.GetTalent(), err
	}
	base := func(name string, mod func(*talentv1.Talent)) *talentv1.Talent {
		p := &talentv1.Talent{Name: name, Organization: "武昌示范钢铁有限公司", Role: "碳排放管理员", Phone: "139 0271 5555", Email: "hr@wcsteel.example"}
		if mod != nil {
			mod(p)
		}
		return p
	}
	zhou, err := create(own, base("周雨桐", func(p *talentv1.Talent) {
		p.Skills = []string{"ISO 14064", "碳核算"}
		p.Certifications = []*talentv1.Certification{{JobType: talentv1.JobType_JOB_TYPE_MONITORING, CertificateNumber: "HBTP-1"}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if zhou.GetOrganizationCreditCode() != org || zhou.GetVersion() != 1 || zhou.GetTotalHours() != 0 {
		t.Fatalf("created %v; want the caller's organisation, version 1, no hours", zhou)
	}
	li, err := create(own, base("李明轩", func(p *talentv1.Talent) { p.Skills = []string{"碳交易"} }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = create(own, base("王思远", func(p *talentv1.Talent) { p.OrganizationCreditCode = other }))
	wantCode(t, "an enterprise creates a profile for another organisation", err, codes.PermissionDenied)
	for name, p := range map[string]*talentv1.Talent{
		"a bad credit code":   base("王", func(p *talentv1.Talent) { p.OrganizationCreditCode = "91420106MA4K00010H" }),
		"a skill twice":       base("王", func(p *talentv1.Talent) { p.Skills = []string{"ISO 14064", "iso14064"} }),
		"a job type twice":    base("王", func(p *talentv1.Talent) { p.Certifications = []*talentv1.Certification{{JobType: 2}, {JobType: 2}} }),
		"an unknown job type": base("王", func(p *talentv1.Talent) { p.Certifications = []*talentv1.Certification{{JobType: 7}} }),
		"a certificate from 2099": base("王", func(p *talentv1.Talent) {
			p.Certifications = []*talentv1.Certification{{JobType: 2, IssueTime: timestampOf(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))}}
		}),
		"no contact": base("王", func(p *talentv1.Talent) { p.Phone, p.Email = "", "" }),
	} {
		_, err := create(own, p)
		wantCode(t, name, err, codes.InvalidArgument)
	}
	kept, err := create(staffCtx(t), base("马天宇", func(p *talentv1.Talent) { p.Organization = "个人会员" }))
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		ctx  context.Context
		id   string
		want codes.Code
	}{
		{"own", own, zhou.GetId(), codes.OK},
		{"another organisation", entCtx(other), zhou.GetId(), codes.NotFound},
		{"an institution", instCtx(other), zhou.GetId(), codes.NotFound},
		{"staff", staffCtx(t), zhou.GetId(), codes.OK},
		{"own, a staff-kept profile", own, kept.GetId(), codes.NotFound},
	} {
		_, err := e.s.GetTalent(tt.ctx, &talentv1.GetTalentRequest{Id: tt.id})
		wantCode(t, "GetTalent by "+tt.name, err, tt.want)
		_, err = e.s.GetHoursLedger(tt.ctx, &talentv1.GetHoursLedgerRequest{TalentId: tt.id})
		wantCode(t, "GetHoursLedger by "+tt.name, err, tt.want)
	}

	list := func(ctx context.Context, req *talentv1.ListTalentsRequest) []string {
		t.Helper()
		resp, err := e.s.ListTalents(ctx, req)
		if err != nil {
			t.Fatalf("ListTalents %v: %v", req, err)
		}
		var ids []string
		for _, p := range resp.GetTalents() {
			ids = append(ids, p.GetId())
		}
		return ids
	}
	for _, tt := range []struct {
		name string
		ctx  context.Context
		req  *talentv1.ListTalentsRequest
		want []string
	}{
		{"own, all", own, &talentv1.ListTalentsRequest{}, []string{zhou.GetId(), li.GetId()}},
		{"own, by skill", own, &talentv1.ListTalentsRequest{Skill: " ｉｓｏ14064 "}, []string{zhou.GetId()}},
		{"own, by certification", own, &talentv1.ListTalentsRequest{Certification: talentv1.JobType_JOB_TYPE_MONITORING}, []string{zhou.GetId()}},
		{"own, by name", own, &talentv1.ListTalentsRequest{NameContains: "明轩"}, []string{li.GetId()}},
		{"own, another organisation's code", own, &talentv1.ListTalentsRequest{OrganizationCreditCode: other}, nil},
		{"another organisation", entCtx(other), &talentv1.ListTalentsRequest{}, nil},
		{"staff, by organisation", staffCtx(t), &talentv1.ListTalentsRequest{OrganizationCreditCode: org}, []string{zhou.GetId(), li.GetId()}},
		{"staff, by organisation name", staffCtx(t), &talentv1.ListTalentsRequest{OrganizationContains: "个人"}, []string{kept.GetId()}},
		{"staff, by skill", staffCtx(t), &talentv1.ListTalentsRequest{Skill: "碳交易"}, []string{li.GetId()}},
	} {
		if got := list(tt.ctx, tt.req); !slices.Equal(got, tt.want) {
			t.Errorf("%s: listed %v; want %v", tt.name, got, tt.want)
		}
	}

	update := func(ctx context.Context, version int64, mask []string, p *talentv1.Talent) (*talentv1.Talent, error) {
		resp, err := e.s.UpdateTalent(ctx, &talentv1.UpdateTalentRequest{Id: zhou.GetId(), Version: version, Talent: p,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}})
		return resp.GetTalent(), err
	}
	got, err := update(own, 1, []string{"skills"}, &talentv1.Talent{Skills: []string{"碳核算", "MRV"}})
	if err != nil {
		t.Fatal(err)
	}
	want := changed(zhou, func(p *talentv1.Talent) {
		p.Skills, p.Version, p.UpdateTime = []string{"碳核算", "MRV"}, 2, got.GetUpdateTime()
	})
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}
	_, err = update(own, 1, []string{"role"}, &talentv1.Talent{Role: "主管"})
	wantCode(t, "a stale version", err, codes.Aborted)
	_, err = update(own, 2, []string{"total_hours"}, &talentv1.Talent{TotalHours: 999})
	wantCode(t, "setting the hours", err, codes.InvalidArgument)
	_, err = update(own, 2, []string{"organization_credit_code"}, &talentv1.Talent{OrganizationCreditCode: other})
	wantCode(t, "an enterprise moves a profile away", err, codes.PermissionDenied)
	_, err = update(entCtx(other), 2, []string{"role"}, &talentv1.Talent{Role: "主管"})
	wantCode(t, "another organisation updates", err, codes.NotFound)
	if moved, err := update(staffCtx(t), 2, []string{"organization_credit_code"}, &talentv1.Talent{OrganizationCreditCode: other}); err != nil || moved.GetOrganizationCreditCode() != other {
		t.Errorf("staff move a profile: %v, %v", moved.GetOrganizationCreditCode(), err)
	}
	if got := list(own, &talentv1.ListTalentsRequest{}); !slices.Equal(got, []string{li.GetId()}) {
		t.Errorf("after the move the old organisation lists %v", got)
	}
}

// changed is a copy of p changed by mod.
func changed(p *talentv1.Talent, mod func(*talentv1.Talent)) *talentv1.Talent {
	out := proto.CloneOf(p)
	mod(out)
	return out
}

// TestEventStats: fill rate, waitlist length, attendance rate and hours by
// topic of one event, and the totals of what a host (or the district)
// holds; others read none of it.
func TestEventStats(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	host := e.host(t, active)
	ev := e.published(t, host, capacity(4))
	var regs []*talentv1.Registration
	for range 6 {
		regs = append(regs, e.register(t, staffCtx(t), ev.GetId(), person()))
	}
	if _, err := e.s.CancelRegistration(staffCtx(t), &talentv1.CancelRegistrationRequest{Id: regs[0].GetId()}); err != nil {
		t.Fatal(err)
	}
	second := e.published(t, host, capacity(10), func(ev *talentv1.Event) { ev.TrainingHours = 2; ev.Topics = nil })
	e.register(t, staffCtx(t), second.GetId(), person())
	e.published(t, e.host(t, active)) // another host's
	cancelled := e.published(t, host)
	if _, err := e.s.CancelEvent(staffCtx(t), &talentv1.CancelEventRequest{Id: cancelled.GetId(), Reason: "改期"}); err != nil {
		t.Fatal(err)
	}

	e.clock.set(ev.GetStartTime().AsTime())
	for _, r := range regs[1:4] {
		if _, err := e.s.CheckIn(staffCtx(t), &talentv1.CheckInRequest{Id: r.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	stats := func(ctx context.Context, id string) (*talentv1.GetEventStatsResponse, error) {
		return e.s.GetEventStats(ctx, &talentv1.GetEventStatsRequest{EventId: id})
	}
	got, err := stats(instCtx(host.CreditCode), ev.GetId())
	if err != nil {
		t.Fatal(err)
	}
	want := &talentv1.GetEventStatsResponse{
		Events: 1, Capacity: 4, Taken: 4, Waitlisted: 1, Attended: 3, Cancelled: 1, Promoted: 1,
		FillRateBps: 10000, WaitlistLength: 1, AttendanceRateBps: 7500, HoursCredited: 24,
		HoursByCategory: []*talentv1.TopicHours{{Topic: "CARBON_PLEDGE", Hours: 24}},
		HoursBySector:   []*talentv1.TopicHours{{Topic: "POWER", Hours: 24}, {Topic: "STEEL", Hours: 24}},
		HoursByJobType:  []*talentv1.TopicHours{{Topic: "ACCOUNTING", Hours: 24}},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("one event's figures (-want +got):\n%s", diff)
	}

	// The host's totals: both its live events, not the cancelled one.
	got, err = stats(instCtx(host.CreditCode), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetEvents() != 2 || got.GetCapacity() != 14 || got.GetTaken() != 5 || got.GetFillRateBps() != 3571 || got.GetAttendanceRateBps() != 6000 || got.GetHoursCredited() != 24 {
		t.Errorf("the host's totals: %v", got)
	}
	if got, err := stats(staffCtx(t), ""); err != nil || got.GetEvents() != 3 {
		t.Errorf("the district's totals: %v events (%v); want 3", got.GetEvents(), err)
	}
	other := instCtx(newOrg())
	_, err = stats(other, ev.GetId())
	wantCode(t, "another institution reads an event's figures", err, codes.NotFound)
	if got, err := stats(other, ""); err != nil || got.GetEvents() != 0 {
		t.Errorf("an institution hosting nothing: %v events (%v)", got.GetEvents(), err)
	}
}
