package talent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// The fuzz targets below call the handlers as the gRPC server would, on a
// talent base over a bolt store holding hosts in several registry states,
// events in every state, registrations and talent profiles, as callers of
// every kind. Whatever arrives, a handler never panics and never answers
// Internal; it refuses with the caller's codes; a refused call changes
// nothing; nobody changes or reads what is not theirs; an attendee's
// contact reaches only the host and staff in full; and every event's
// roster agrees with its registrations.

// fuzzWorld is the talent base the iterations of one fuzz target share.
type fuzzWorld struct {
	*env
	active, suspended *Institution
	ent, other        string // an enterprise that registers people, and a stranger
	events            []string
	regs              []string
	talents           []string
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	e := newEnv(f, testenv.BoltStore(f))
	w := &fuzzWorld{env: e, ent: newOrg(), other: newOrg()}
	w.active, w.suspended = e.host(f, active), e.host(f, active)
	soon := func(ev *talentv1.Event) { // check-in is open for the whole run
		start := t0.Add(time.Hour)
		ev.StartTime, ev.EndTime, ev.RegistrationDeadline = timestamppb.New(start), timestamppb.New(start.Add(48*time.Hour)), timestamppb.New(start)
	}
	draft := e.createEvent(f, w.active)
	pub := e.published(f, w.active, capacity(3))
	closed := e.published(f, w.active)
	district := e.published(f, nil, capacity(2))
	flagged := e.published(f, w.suspended)
	today := e.published(f, w.active, capacity(2), soon)
	done := e.published(f, w.active, soon)
	cancelled := e.published(f, w.active)
	w.events = []string{draft.GetId(), pub.GetId(), closed.GetId(), district.GetId(), flagged.GetId(), today.GetId(), done.GetId(), cancelled.GetId()}
	w.talents = []string{e.newTalent(f, w.ent).GetId(), e.newTalent(f, w.active.CreditCode).GetId(), e.newTalent(f, "").GetId()}
	for _, id := range []string{pub.GetId(), district.GetId(), flagged.GetId(), today.GetId(), done.GetId(), cancelled.GetId()} {
		for range 3 {
			w.regs = append(w.regs, e.register(f, entCtx(w.ent), id, person()).GetId())
		}
	}
	w.regs = append(w.regs, e.register(f, entCtx(w.ent), pub.GetId(), &talentv1.Attendee{TalentId: w.talents[0]}).GetId())
	must := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	_, err := e.s.CheckIn(staffCtx(f), &talentv1.CheckInRequest{Id: w.regs[12]}) // at the done event
	must(err)
	_, err = e.s.CompleteEvent(staffCtx(f), &talentv1.CompleteEventRequest{Id: done.GetId()})
	must(err)
	_, err = e.s.CloseEvent(staffCtx(f), &talentv1.CloseEventRequest{Id: closed.GetId()})
	must(err)
	_, err = e.s.CancelEvent(staffCtx(f), &talentv1.CancelEventRequest{Id: cancelled.GetId(), Reason: "fuzz world"})
	must(err)
	e.setHost(f, w.suspended, suspended)
	return w
}

// pick is the sel-th of ids, or past them the fuzzer's own.
func pick(ids []string, sel uint8, fuzzed string) string {
	if i := int(sel) % (len(ids) + 1); i < len(ids) {
		return ids[i]
	}
	return fuzzed
}

// fuzzCaller is the sel-th kind of caller: staff, the active host, the
// enterprise that registered the world's people, a stranger institution
// and a stranger enterprise.
func (w *fuzzWorld) fuzzCaller(sel uint8) (context.Context, auth.Caller) {
	callers := []auth.Caller{
		{Subject: "fuzz-staff", Role: auth.Staff},
		{Subject: "fuzz-host", Role: auth.Institution, Org: w.active.CreditCode},
		{Subject: "fuzz-ent", Role: auth.Enterprise, Org: w.ent},
		{Subject: "fuzz-inst", Role: auth.Institution, Org: w.other},
		{Subject: "fuzz-other", Role: auth.Enterprise, Org: w.other},
	}
	c := callers[int(sel)%len(callers)]
	return auth.WithCaller(context.Background(), c), c
}

// wantCodes fails unless err maps to one of the codes.
func wantCodes(t *testing.T, err error, ok ...codes.Code) codes.Code {
	t.Helper()
	got := code(err)
	if !slices.Contains(ok, got) {
		t.Fatalf("answered %s (%v); want one of %v", got, err, ok)
	}
	return got
}

// stored reads an event as stored, or nil.
func (w *fuzzWorld) stored(t *testing.T, id string) *talentv1.Event {
	t.Helper()
	if id == "" || len(id) > maxID {
		return nil
	}
	e, err := w.s.eventWithSeats(context.Background(), id)
	if code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("read event %q: %v", id, err)
	}
	return e
}

// checkRoster fails unless an event's seat counts are its registrations'.
func (w *fuzzWorld) checkRoster(t *testing.T, id string) {
	t.Helper()
	ev := w.stored(t, id)
	if ev == nil {
		return
	}
	var got talentv1.Seats
	err := w.s.scan(context.Background(), kindRegistration, termEvent+id, func(rec store.Record) error {
		r, err := decodeRegistration(rec)
		if err != nil {
			return err
		}
		got.Registrations++
		switch r.GetState() {
		case regConfirmed:
			got.Confirmed++
		case regAttended:
			got.Attended++
		case regWaitlisted:
			got.Waitlisted++
		case regCancelled:
			got.Cancelled++
		}
		if r.GetPromoted() {
			got.Promoted++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got.Taken = got.Confirmed + got.Attended
	if !proto.Equal(&got, ev.GetSeats()) {
		t.Fatalf("event %s: roster %v, registrations %v", id, ev.GetSeats(), &got)
	}
	if got.Taken > ev.GetCapacity() && got.Waitlisted > 0 || got.Waitlisted > 0 && got.Taken < ev.GetCapacity() {
		t.Fatalf("event %s: %d of %d seats taken with %d waitlisted", id, got.Taken, ev.GetCapacity(), got.Waitlisted)
	}
}

// checkMasked fails unless a registration answered to a caller shows the
// attendee's contact in full only to the host and staff.
func checkMasked(t *testing.T, ctx context.Context, ev *talentv1.Event, r *talentv1.Registration) {
	t.Helper()
	if ownsEvent(ctx, ev) {
		return
	}
	a := r.GetAttendee()
	if !r.GetContactMasked() || strings.Count(a.GetPhone(), "*") < 4 && a.GetPhone() != "" ||
		a.GetEmail() != "" && !strings.Contains(a.GetEmail(), "***") {
		t.Fatalf("a caller who is not the host sees %q %q", a.GetPhone(), a.GetEmail())
	}
}

// fuzzEvent is an event request built from fuzzed primitives.
type fuzzEvent struct {
	titleZh, titleEn       string
	kind, zone             int32
	startSecs, lengthSecs  int64
	deadlineSecs           int64
	venue                  string
	capacity, hours        int32
	categories, sectors    []byte
	jobs                   []byte
	hasDeadline, hasTopics bool
}

func (fe fuzzEvent) proto(now time.Time) *talentv1.Event {
	start := now.Unix() + fe.startSecs%(1<<40)
	ev := &talentv1.Event{
		TitleZh: fe.titleZh, TitleEn: fe.titleEn, Kind: talentv1.EventKind(fe.kind), Zone: registryv1.Zone(fe.zone),
		StartTime: &timestamppb.Timestamp{Seconds: start}, EndTime: &timestamppb.Timestamp{Seconds: start + fe.lengthSecs%(1<<40)},
		Venue: fe.venue, Capacity: fe.capacity, TrainingHours: fe.hours,
		// Output-only fields, sent anyway.
		State: talentv1.EventState(fe.kind), Version: fe.startSecs, NeedsAttention: true, Seats: &talentv1.Seats{Taken: 9},
	}
	if fe.hasDeadline {
		ev.RegistrationDeadline = &timestamppb.Timestamp{Seconds: start - fe.deadlineSecs%(1<<40)}
	}
	if fe.hasTopics {
		ev.Topics = &talentv1.Topics{}
		for _, b := range fe.categories {
			ev.Topics.Categories = append(ev.Topics.Categories, catalogv1.ProductCategory(int8(b)))
		}
		for _, b := range fe.sectors {
			ev.Topics.Sectors = append(ev.Topics.Sectors, catalogv1.Sector(int8(b)))
		}
		for _, b := range fe.jobs {
			ev.Topics.JobTypes = append(ev.Topics.JobTypes, talentv1.JobType(int8(b)))
		}
	}
	return ev
}

// addEventSeeds adds seeds whose tail is a fuzzEvent: a valid one and
// variations past its bounds.
func addEventSeeds(f *testing.F, head ...any) {
	day := int64(24 * 3600)
	valid := []any{"碳排放管理员培训", "Training", int32(1), int32(1), 10 * day, int64(8 * 3600), day, "武昌区中北路 86 号", int32(30), int32(8),
		[]byte{2}, []byte{1, 2}, []byte{2}, true, true}
	variants := [][]any{valid}
	for _, mod := range []func(a []any){
		func(a []any) { a[0], a[1] = "Training", strings.Repeat("x", 201) },              // no Han; too long
		func(a []any) { a[2], a[3] = int32(0), int32(99) },                               // kind unset, zone unknown
		func(a []any) { a[4], a[5] = -day, int64(-1) },                                   // past, end before start
		func(a []any) { a[5], a[6] = 32*day, -day },                                      // too long, deadline after start
		func(a []any) { a[4] = int64(1 << 62) },                                          // far future
		func(a []any) { a[8], a[9] = int32(0), int32(201) },                              // capacity, hours
		func(a []any) { a[8], a[9] = int32(10001), int32(-1) },                           //
		func(a []any) { a[10], a[11], a[12] = []byte{0, 0xff}, []byte{1, 1}, []byte{7} }, // bad topics
		func(a []any) { a[7], a[13], a[14] = " \x00 ", false, false },                    // control venue, no deadline or topics
	} {
		v := slices.Clone(valid)
		mod(v)
		variants = append(variants, v)
	}
	for _, v := range variants {
		f.Add(append(slices.Clone(head), v...)...)
	}
}

// FuzzCreateEvent: arbitrary events for any host by every kind of caller.
// Refusals are InvalidArgument, PermissionDenied or FailedPrecondition;
// nobody hosts for another organisation, nor as a host that is not ACTIVE;
// what is created is a DRAFT at version 1, clean and valid, stored as
// answered, with no seats taken.
func FuzzCreateEvent(f *testing.F) {
	w := newFuzzWorld(f)
	addEventSeeds(f, uint8(0), uint8(0), "")
	addEventSeeds(f, uint8(1), uint8(3), "")
	addEventSeeds(f, uint8(3), uint8(0), "")
	addEventSeeds(f, uint8(1), uint8(1), "")
	addEventSeeds(f, uint8(0), uint8(2), "01NOSUCHINSTITUTION")
	f.Fuzz(func(t *testing.T, callerSel, hostSel uint8, fuzzedHost string, titleZh, titleEn string, kind, zone int32,
		startSecs, lengthSecs, deadlineSecs int64, venue string, capacity, hours int32, cats, secs, jobs []byte, hasDeadline, hasTopics bool) {
		ctx, caller := w.fuzzCaller(callerSel)
		fe := fuzzEvent{titleZh, titleEn, kind, zone, startSecs, lengthSecs, deadlineSecs, venue, capacity, hours, cats, secs, jobs, hasDeadline, hasTopics}
		ev := fe.proto(w.clock.Now())
		ev.HostInstitutionId = pick([]string{"", w.active.ID, w.suspended.ID}, hostSel, fuzzedHost)
		resp, err := w.s.CreateEvent(ctx, testenv.Wire(t, &talentv1.CreateEventRequest{Event: ev}))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition) != codes.OK {
			return
		}
		got := resp.GetEvent()
		if caller.Role != auth.Staff && got.GetHostCreditCode() != caller.Org {
			t.Fatalf("%s of %s created an event hosted by %q", caller.Role, caller.Org, got.GetHostCreditCode())
		}
		if got.GetHostInstitutionId() == w.suspended.ID {
			t.Fatal("created an event hosted by a SUSPENDED institution")
		}
		if got.GetState() != eventDraft || got.GetVersion() != 1 || got.GetNeedsAttention() || got.GetSeats().GetTaken() != 0 {
			t.Fatalf("created %v; want a DRAFT at v1 with nothing taken", got)
		}
		stored := w.stored(t, got.GetId())
		if !proto.Equal(stored, got) {
			t.Fatalf("answered %v, stored %v", got, stored)
		}
		var v errs.Violations
		validateEvent("", stored, &v)
		if v.Err() != nil || !proto.Equal(cleanEvent(stored), cleanEvent(cleanEvent(stored))) {
			t.Fatalf("stored event is not clean and valid: %v", v.Err())
		}
	})
}

// FuzzUpdateEvent: arbitrary updates (ids, versions, masks, fields,
// output-only fields) of the world's events by every kind of caller.
// Refusals are InvalidArgument, NotFound, Aborted or FailedPrecondition; a
// refused update changes nothing; another's event is NotFound and never
// changes; host and state never change; more seats promote the waitlist.
func FuzzUpdateEvent(f *testing.F) {
	w := newFuzzWorld(f)
	addEventSeeds(f, uint8(0), uint8(1), "", int64(1), "capacity,title_zh")
	addEventSeeds(f, uint8(1), uint8(0), "", int64(1), "")
	addEventSeeds(f, uint8(2), uint8(1), "", int64(1), "venue")
	addEventSeeds(f, uint8(0), uint8(5), "", int64(0), "*")
	addEventSeeds(f, uint8(0), uint8(1), "", int64(2), "state,seats")
	addEventSeeds(f, uint8(0), uint8(9), "nosuchevent", int64(1), "venue")
	f.Fuzz(func(t *testing.T, callerSel, eventSel uint8, fuzzedID string, version int64, mask string,
		titleZh, titleEn string, kind, zone int32, startSecs, lengthSecs, deadlineSecs int64, venue string, capacity, hours int32,
		cats, secs, jobs []byte, hasDeadline, hasTopics bool) {
		ctx, caller := w.fuzzCaller(callerSel)
		id := pick(w.events, eventSel, fuzzedID)
		before := w.stored(t, id)
		fe := fuzzEvent{titleZh, titleEn, kind, zone, startSecs, lengthSecs, deadlineSecs, venue, capacity, hours, cats, secs, jobs, hasDeadline, hasTopics}
		req := &talentv1.UpdateEventRequest{Id: id, Version: version, Event: fe.proto(w.clock.Now())}
		if before != nil && version == 1 {
			req.Version = before.GetVersion() // often the right one
		}
		if mask != "" {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: strings.Split(mask, ",")}
		}
		resp, err := w.s.UpdateEvent(ctx, testenv.Wire(t, req))
		got := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.Aborted, codes.FailedPrecondition)
		after := w.stored(t, id)
		if got != codes.OK {
			if !proto.Equal(before, after) {
				t.Fatalf("a refused update (%s) changed the event:\nbefore %v\nafter  %v", got, before, after)
			}
			if got == codes.Aborted && before != nil && !ownsEvent(ctx, before) {
				t.Fatalf("%s of %s learned another's event exists (Aborted)", caller.Role, caller.Org)
			}
			return
		}
		if !ownsEvent(ctx, before) {
			t.Fatalf("%s of %s updated an event of %q", caller.Role, caller.Org, before.GetHostCreditCode())
		}
		if after.GetHostInstitutionId() != before.GetHostInstitutionId() || after.GetState() != before.GetState() || after.GetPublishTime().AsTime() != before.GetPublishTime().AsTime() {
			t.Fatalf("an update moved host or state: %v -> %v", before, after)
		}
		if !proto.Equal(resp.GetEvent(), after) {
			t.Fatalf("answered %v, stored %v", resp.GetEvent(), after)
		}
		w.checkRoster(t, id)
	})
}

// FuzzRegisterForEvent: arbitrary attendees for the world's events by every
// kind of caller. Refusals are InvalidArgument, NotFound, FailedPrecondition
// or AlreadyExists; a draft is NotFound but to its host; a registration is
// the caller's organisation's, masked unless the caller hosts; rosters
// agree with registrations.
func FuzzRegisterForEvent(f *testing.F) {
	w := newFuzzWorld(f)
	for i := range 12 {
		f.Add(uint8(i), uint8(i), "", "王晓岚", "楚江碳金融银行", "经理", "139 0271 8888", "wang@chujiang.example", uint8(i))
	}
	f.Add(uint8(2), uint8(1), "", "", "", "", "", "", uint8(0))
	f.Add(uint8(2), uint8(1), "", "", "", "", "", "", uint8(1))
	f.Add(uint8(0), uint8(1), "", "x", "y", "", "+86 139 0271 8888", "WANG@chujiang.example", uint8(9))
	f.Add(uint8(4), uint8(0), "", "王", "楚江", strings.Repeat("长", 51), "123", "a@b", uint8(9))
	f.Add(uint8(1), uint8(20), "01NOSUCHEVENT", "王", "楚江", "", "139 0271 8888", "", uint8(9))
	f.Fuzz(func(t *testing.T, callerSel, eventSel uint8, fuzzedID, name, org, role, phone, email string, talentSel uint8) {
		ctx, caller := w.fuzzCaller(callerSel)
		id := pick(w.events, eventSel, fuzzedID)
		a := &talentv1.Attendee{Name: name, Organization: org, Role: role, Phone: phone, Email: email, TalentId: pick(w.talents, talentSel, "")}
		before := w.stored(t, id)
		resp, err := w.s.RegisterForEvent(ctx, testenv.Wire(t, &talentv1.RegisterForEventRequest{EventId: id, Attendee: a}))
		got := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists)
		after := w.stored(t, id)
		if got != codes.OK {
			if !proto.Equal(before, after) {
				t.Fatalf("a refused registration (%s) changed the event", got)
			}
			if got == codes.FailedPrecondition && before != nil && !visibleEvent(ctx, before) {
				t.Fatal("a caller learned of another's draft (FailedPrecondition, not NotFound)")
			}
			return
		}
		r := resp.GetRegistration()
		if before.GetState() != eventPublished || !visibleEvent(ctx, before) {
			t.Fatalf("registered for a %s event the caller may see: %v", before.GetState(), visibleEvent(ctx, before))
		}
		if r.GetRegistrantOrg() != caller.Org || r.GetPosition() != after.GetSeats().GetRegistrations() {
			t.Fatalf("registration of %q at position %d; want the caller's %q at %d", r.GetRegistrantOrg(), r.GetPosition(), caller.Org, after.GetSeats().GetRegistrations())
		}
		checkMasked(t, ctx, after, r)
		w.checkRoster(t, id)
	})
}

// FuzzRegistrationActions: cancellations, check-ins and corrections of any
// registration (or the fuzzer's id) with any version and reason, by every
// kind of caller. Refusals are the caller's codes; a refused action
// changes nothing; only the host and staff record attendance; the answer
// is masked but to them; rosters and hours ledgers stay true.
func FuzzRegistrationActions(f *testing.F) {
	w := newFuzzWorld(f)
	for i := range 20 {
		f.Add(uint8(i%5), uint8(i), "", uint8(i%4), int64(0), "出差", i%2 == 0)
	}
	f.Add(uint8(0), uint8(0), "", uint8(0), int64(7), "", false)
	f.Add(uint8(1), uint8(99), "01NOSUCHEVENT0000000000000-000001", uint8(1), int64(0), "", true)
	f.Add(uint8(0), uint8(99), "x-1", uint8(2), int64(-1), strings.Repeat("原", 501), true)
	f.Fuzz(func(t *testing.T, callerSel, regSel uint8, fuzzedID string, action uint8, version int64, reason string, attended bool) {
		ctx, caller := w.fuzzCaller(callerSel)
		id := pick(w.regs, regSel, fuzzedID)
		eventID, _ := eventOf(id)
		before := w.stored(t, eventID)
		var r *talentv1.Registration
		var err error
		ok := []codes.Code{codes.OK, codes.InvalidArgument, codes.NotFound, codes.Aborted, codes.FailedPrecondition}
		switch action % 3 {
		case 0:
			var resp *talentv1.CancelRegistrationResponse
			resp, err = w.s.CancelRegistration(ctx, testenv.Wire(t, &talentv1.CancelRegistrationRequest{Id: id, Version: version, Reason: reason}))
			r = resp.GetRegistration()
		case 1:
			var resp *talentv1.CheckInResponse
			resp, err = w.s.CheckIn(ctx, testenv.Wire(t, &talentv1.CheckInRequest{Id: id, Version: version}))
			r = resp.GetRegistration()
			ok = append(ok, codes.PermissionDenied)
		default:
			var resp *talentv1.CorrectAttendanceResponse
			resp, err = w.s.CorrectAttendance(ctx, testenv.Wire(t, &talentv1.CorrectAttendanceRequest{Id: id, Version: version, Attended: attended, Reason: reason}))
			r = resp.GetRegistration()
			ok = append(ok, codes.PermissionDenied)
		}
		got := wantCodes(t, err, ok...)
		after := w.stored(t, eventID)
		if got != codes.OK {
			if !proto.Equal(before, after) {
				t.Fatalf("a refused action (%s) changed the event's seats: %v -> %v", got, before.GetSeats(), after.GetSeats())
			}
			return
		}
		if action%3 != 0 && !ownsEvent(ctx, after) {
			t.Fatalf("%s of %s recorded attendance at an event of %q", caller.Role, caller.Org, after.GetHostCreditCode())
		}
		checkMasked(t, ctx, after, r)
		w.checkRoster(t, eventID)
		if tid := r.GetAttendee().GetTalentId(); tid != "" {
			p, err := w.s.getTalent(context.Background(), tid)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			if err := w.s.scan(context.Background(), kindHours, termTalent+tid, func(rec store.Record) error {
				h, err := decodeHours(rec)
				sum += int64(h.GetHours())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if sum != p.GetTotalHours() {
				t.Fatalf("talent %s: ledger sums to %d, total_hours %d", tid, sum, p.GetTotalHours())
			}
		}
	})
}

// FuzzListEvents: arbitrary filters, page sizes and tokens by every kind of
// caller. Refusals are InvalidArgument; a page holds at most the size asked
// (200 at most), only events the filters select and the caller may see.
func FuzzListEvents(f *testing.F) {
	w := newFuzzWorld(f)
	first, err := w.s.ListEvents(staffCtx(f), &talentv1.ListEventsRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		f.Fatalf("ListEvents of one: %v, %v", first, err)
	}
	f.Add(uint8(0), int32(0), "", uint8(0), false, int32(0), int32(0), int32(0), int32(0), int32(0), int64(0), int64(0), "", false)
	f.Add(uint8(2), int32(1), first.GetNextPageToken(), uint8(0), false, int32(0), int32(0), int32(0), int32(0), int32(0), int64(0), int64(0), "", false)
	f.Add(uint8(1), int32(5), "", uint8(1), false, int32(1), int32(2), int32(2), int32(1), int32(1), int64(1), int64(1<<40), "核算", false)
	f.Add(uint8(3), int32(-1), "garbage", uint8(3), true, int32(99), int32(-1), int32(17), int32(10), int32(7), int64(-1<<62), int64(1<<62), strings.Repeat("碳", 101), true)
	f.Fuzz(func(t *testing.T, callerSel uint8, size int32, token string, hostSel uint8, district bool, kind, state, category, sector, job int32,
		after, before int64, title string, attn bool) {
		ctx, _ := w.fuzzCaller(callerSel)
		req := &talentv1.ListEventsRequest{PageSize: size, PageToken: token, HostInstitutionId: pick([]string{"", w.active.ID, w.suspended.ID}, hostSel, "x"),
			DistrictHosted: district, Kind: talentv1.EventKind(kind), State: talentv1.EventState(state), Category: catalogv1.ProductCategory(category),
			Sector: catalogv1.Sector(sector), JobType: talentv1.JobType(job), TitleContains: title, NeedsAttention: attn}
		if after != 0 {
			req.StartAfter = &timestamppb.Timestamp{Seconds: after}
		}
		if before != 0 {
			req.StartBefore = &timestamppb.Timestamp{Seconds: before}
		}
		resp, err := w.s.ListEvents(ctx, testenv.Wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument) != codes.OK {
			return
		}
		if n := len(resp.GetEvents()); n > 200 || (size > 0 && n > int(size)) {
			t.Fatalf("a page of %d for page_size %d", n, size)
		}
		for _, ev := range resp.GetEvents() {
			if !visibleEvent(ctx, ev) {
				t.Fatalf("listed event %s, which the caller may not see", ev.GetId())
			}
			if req.GetHostInstitutionId() != "" && ev.GetHostInstitutionId() != req.GetHostInstitutionId() ||
				req.GetState() != 0 && ev.GetState() != req.GetState() || req.GetNeedsAttention() && !ev.GetNeedsAttention() {
				t.Fatalf("listed event %s, which the filters do not select", ev.GetId())
			}
		}
	})
}

// FuzzListRegistrations: arbitrary filters and tokens by every kind of
// caller: only registrations the caller may see, masked but to the host
// and staff.
func FuzzListRegistrations(f *testing.F) {
	w := newFuzzWorld(f)
	for i := range 10 {
		f.Add(uint8(i%5), uint8(i), "", int32(0), "", int32(i%5), uint8(i))
	}
	f.Add(uint8(0), uint8(99), "nosuchevent", int32(-1), "garbage", int32(99), uint8(99))
	f.Fuzz(func(t *testing.T, callerSel, eventSel uint8, fuzzedEvent string, size int32, token string, state int32, talentSel uint8) {
		ctx, caller := w.fuzzCaller(callerSel)
		req := &talentv1.ListRegistrationsRequest{EventId: pick(append([]string{""}, w.events...), eventSel, fuzzedEvent), PageSize: size,
			PageToken: token, State: talentv1.RegistrationState(state), TalentId: pick(w.talents, talentSel, "")}
		resp, err := w.s.ListRegistrations(ctx, testenv.Wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound) != codes.OK {
			return
		}
		for _, r := range resp.GetRegistrations() {
			ev := w.stored(t, r.GetEventId())
			if !seesRegistration(ctx, ev, r) && !(r.GetRegistrantOrg() == caller.Org && caller.Org != "") {
				t.Fatalf("%s of %s listed registration %s", caller.Role, caller.Org, r.GetId())
			}
			checkMasked(t, ctx, ev, r)
			if ownsEvent(ctx, ev) && contact.MaskPhone(r.GetAttendee().GetPhone()) == r.GetAttendee().GetPhone() && r.GetAttendee().GetPhone() != "" {
				t.Fatalf("the host sees a masked phone %q", r.GetAttendee().GetPhone())
			}
		}
	})
}

// FuzzTalent: arbitrary profiles created, then updated, by every kind of
// caller. Refusals are the caller's codes; nobody creates or changes a
// profile of another organisation; hours are never set by hand; what is
// stored is clean and valid.
func FuzzTalent(f *testing.F) {
	w := newFuzzWorld(f)
	for i := range 5 {
		f.Add(uint8(i), "周雨桐", "楚江碳金融银行", "", "经理", "139 0271 0001", "zhou@chujiang.example", "碳核算,ISO 14064", []byte{1, 2}, int64(0), uint8(i), "skills", int64(1))
	}
	f.Add(uint8(2), "", "", "91420106MA4K00010H", strings.Repeat("长", 51), "x", "y", ",,", []byte{0, 7, 1, 1}, int64(1<<40), uint8(9), "total_hours", int64(0))
	f.Add(uint8(0), "王", "个人", "", "", "", "a@b.cn", "ISO 14064,iso14064", []byte{3}, int64(-1), uint8(2), "*", int64(9))
	f.Add(uint8(3), "王", "x", "", "", "1234567", "", "", []byte{}, int64(0), uint8(1), "organization_credit_code", int64(1))
	f.Fuzz(func(t *testing.T, callerSel uint8, name, org, code_, role, phone, email, skills string, certs []byte, issueSecs int64,
		targetSel uint8, mask string, version int64) {
		ctx, caller := w.fuzzCaller(callerSel)
		p := &talentv1.Talent{Name: name, Organization: org, OrganizationCreditCode: code_, Role: role, Phone: phone, Email: email, TotalHours: 77}
		if skills != "" {
			p.Skills = strings.Split(skills, ",")
		}
		for _, b := range certs {
			p.Certifications = append(p.Certifications, &talentv1.Certification{JobType: talentv1.JobType(int8(b)), IssueTime: &timestamppb.Timestamp{Seconds: issueSecs}})
		}
		resp, err := w.s.CreateTalent(ctx, testenv.Wire(t, &talentv1.CreateTalentRequest{Talent: p}))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.PermissionDenied) == codes.OK {
			got := resp.GetTalent()
			if caller.Role != auth.Staff && got.GetOrganizationCreditCode() != caller.Org || got.GetTotalHours() != 0 || got.GetVersion() != 1 {
				t.Fatalf("%s of %s created %v", caller.Role, caller.Org, got)
			}
			var v errs.Violations
			validateTalent(&v, "", got, w.clock.Now())
			if v.Err() != nil {
				t.Fatalf("stored profile is not valid: %v", v.Err())
			}
		}

		id := pick(w.talents, targetSel, name)
		before, _ := w.s.getTalent(context.Background(), id)
		req := &talentv1.UpdateTalentRequest{Id: id, Version: version, Talent: p}
		if before != nil && version == 1 {
			req.Version = before.GetVersion()
		}
		if mask != "" {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: strings.Split(mask, ",")}
		}
		uresp, err := w.s.UpdateTalent(ctx, testenv.Wire(t, req))
		code := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.Aborted, codes.PermissionDenied)
		after, _ := w.s.getTalent(context.Background(), id)
		if code != codes.OK {
			if !proto.Equal(before, after) {
				t.Fatalf("a refused update (%s) changed the profile", code)
			}
			return
		}
		if !ownsTalent(ctx, before) || after.GetTotalHours() != before.GetTotalHours() {
			t.Fatalf("%s of %s updated %v into %v", caller.Role, caller.Org, before, after)
		}
		if caller.Role != auth.Staff && after.GetOrganizationCreditCode() != before.GetOrganizationCreditCode() {
			t.Fatal("a non-staff caller moved a profile to another organisation")
		}
		if !proto.Equal(uresp.GetTalent(), after) {
			t.Fatalf("answered %v, stored %v", uresp.GetTalent(), after)
		}
		if after.GetOrganizationCreditCode() != before.GetOrganizationCreditCode() {
			// Keep the world's profiles where the targets expect them.
			restore := proto.CloneOf(after)
			restore.OrganizationCreditCode = before.GetOrganizationCreditCode()
			if _, err := w.s.UpdateTalent(staffCtx(t), &talentv1.UpdateTalentRequest{Id: id, Version: after.GetVersion(), Talent: restore,
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"organization_credit_code"}}}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
