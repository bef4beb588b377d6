package talent

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestHoursLedger: after check-ins, completions and a few hundred
// corrections in random order, each talent's total_hours, its ledger's
// entries and their sum all equal the hours of the events it attended;
// every change to the hours was published with the talent's new total.
func TestHoursLedger(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		host := e.host(t, active)
		hours := []int32{8, 3, 0, 16}
		var evs []*talentv1.Event
		for i, h := range hours {
			evs = append(evs, e.published(t, host, capacity(5), func(ev *talentv1.Event) {
				start := t0.AddDate(0, 0, 10+i)
				ev.StartTime, ev.EndTime = timestampOf(start), timestampOf(start.Add(8*time.Hour))
				ev.RegistrationDeadline = timestampOf(start.Add(-time.Hour))
				ev.TrainingHours = h
			}))
		}
		org := newOrg()
		var talents []*talentv1.Talent
		for range 3 {
			talents = append(talents, e.newTalent(t, org))
		}
		hoursOf := map[string]int32{} // event id -> hours
		for i, ev := range evs {
			hoursOf[ev.GetId()] = hours[i]
		}

		// Every talent registers for every event (as its organisation), with
		// a stranger or two beside them; one event has a waitlist.
		type reg struct {
			id, event, talent string
		}
		var regs []reg
		for _, ev := range evs {
			for _, p := range talents {
				r := e.register(t, instCtx(org), ev.GetId(), &talentv1.Attendee{TalentId: p.GetId()})
				if r.GetAttendee().GetName() != p.GetName() || r.GetAttendee().GetPhone() == "" {
					t.Fatalf("the attendee was not filled from the profile: %v", r.GetAttendee())
				}
				regs = append(regs, reg{r.GetId(), ev.GetId(), p.GetId()})
			}
			regs = append(regs, reg{e.register(t, staffCtx(t), ev.GetId(), person()).GetId(), ev.GetId(), ""})
		}

		// Check-in opens for all four; two are completed half way.
		e.clock.set(evs[len(evs)-1].GetStartTime().AsTime())
		attended := map[string]bool{}
		rng := rand.New(rand.NewPCG(1, 2))
		completed := map[string]bool{}
		for step := range 300 {
			if step == 150 {
				for _, ev := range evs[:2] {
					if _, err := e.s.CompleteEvent(staffCtx(t), &talentv1.CompleteEventRequest{Id: ev.GetId()}); err != nil {
						t.Fatal(err)
					}
					completed[ev.GetId()] = true
				}
			}
			r := regs[rng.IntN(len(regs))]
			var err error
			switch op := rng.IntN(3); {
			case op == 0 && !completed[r.event]:
				_, err = e.s.CheckIn(instCtx(host.CreditCode), &talentv1.CheckInRequest{Id: r.id})
				attended[r.id] = true
			case op == 1:
				_, err = e.s.CorrectAttendance(instCtx(host.CreditCode), &talentv1.CorrectAttendanceRequest{Id: r.id, Attended: true, Reason: "补录签到"})
				attended[r.id] = true
			default:
				_, err = e.s.CorrectAttendance(staffCtx(t), &talentv1.CorrectAttendanceRequest{Id: r.id, Attended: false, Reason: "未到场"})
				attended[r.id] = false
			}
			if err != nil {
				t.Fatalf("step %d on %s: %v", step, r.id, err)
			}
		}

		want := map[string]int64{}
		wantEntries := map[string][]string{}
		for _, r := range regs {
			if r.talent != "" && attended[r.id] {
				want[r.talent] += int64(hoursOf[r.event])
				wantEntries[r.talent] = append(wantEntries[r.talent], r.id)
			}
		}
		for _, p := range talents {
			got, err := e.s.GetTalent(instCtx(org), &talentv1.GetTalentRequest{Id: p.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var sum int64
			req := &talentv1.GetHoursLedgerRequest{TalentId: p.GetId(), PageSize: 2}
			for {
				l, err := e.s.GetHoursLedger(instCtx(org), req)
				if err != nil {
					t.Fatal(err)
				}
				if l.GetTotalHours() != want[p.GetId()] {
					t.Errorf("talent %s: ledger total %d; want %d", p.GetId(), l.GetTotalHours(), want[p.GetId()])
				}
				for _, h := range l.GetEntries() {
					ids = append(ids, h.GetRegistrationId())
					sum += int64(h.GetHours())
					if h.GetHours() != hoursOf[h.GetEventId()] {
						t.Errorf("entry %s: %d hours; its event credits %d", h.GetRegistrationId(), h.GetHours(), hoursOf[h.GetEventId()])
					}
				}
				if req.PageToken = l.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			if got.GetTalent().GetTotalHours() != want[p.GetId()] || sum != want[p.GetId()] {
				t.Errorf("talent %s: total_hours %d, entries sum to %d; want %d", p.GetId(), got.GetTalent().GetTotalHours(), sum, want[p.GetId()])
			}
			if !slices.Equal(ids, wantEntries[p.GetId()]) {
				t.Errorf("talent %s: entries %v; want the attended registrations %v", p.GetId(), ids, wantEntries[p.GetId()])
			}
		}

		// The registrations agree, and the last published state of each
		// talent carries its total.
		for _, ev := range evs {
			for _, r := range e.registrations(t, ev.GetId()) {
				if (r.GetState() == regAttended) != attended[r.GetId()] {
					t.Errorf("registration %s is %s; attended %v", r.GetId(), r.GetState(), attended[r.GetId()])
				}
				if want := hoursOf[ev.GetId()]; r.GetState() == regAttended && r.GetHoursCredited() != want {
					t.Errorf("registration %s credited %d hours; want %d", r.GetId(), r.GetHoursCredited(), want)
				}
			}
		}
		last := map[string]int64{}
		for _, p := range pendingEvents(t, st) {
			if p.subject != SubjectTalentHoursCredited && p.subject != SubjectTalentHoursDebited {
				continue
			}
			var msg talentv1.Talent
			if err := proto.Unmarshal(p.payload, &msg); err != nil {
				t.Fatal(err)
			}
			last[msg.GetId()] = msg.GetTotalHours()
		}
		for _, p := range talents {
			if want[p.GetId()] > 0 && last[p.GetId()] != want[p.GetId()] {
				t.Errorf("talent %s: last published total %d; want %d", p.GetId(), last[p.GetId()], want[p.GetId()])
			}
		}
	})
}
