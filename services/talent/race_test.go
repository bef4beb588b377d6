package talent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestRegistrationRace: 1,000 people register at once for 100 seats, each
// through one of two servers sharing the store (two processes of the
// desk), while 100 of them try a second time with their phone spelled
// otherwise. Exactly 100 are CONFIRMED and 900 WAITLISTED; positions run
// 1 to 1,000 without a gap or a repeat, seats go to positions 1–100 and
// the waitlist follows the positions; nobody holds two registrations; and
// a registration that returned before another began holds the earlier
// position (arrival order). Then 50 of the seats are cancelled at once
// (and 25 of those cancellations sent twice): exactly 50 promotions, to
// the first 50 of the waitlist, each with one event.
func TestRegistrationRace(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		const (
			seats  = 100
			people = 1000
			twice  = 100 // people who also register a second time
		)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		c := &clock{now: t0}
		servers := []*Server{New(st, WithClock(c.Now)), New(st, WithClock(c.Now))}
		e := &env{s: servers[0], st: st, clock: c}
		ev := e.published(t, nil, capacity(seats))
		pendingEvents(t, st) // the event's own

		attendees := make([]*talentv1.Attendee, people)
		for i := range attendees {
			attendees[i] = person()
		}
		type result struct {
			person     int
			r          *talentv1.Registration
			err        error
			start, end time.Time // wall clock with monotonic reading
		}
		results := make([]result, people+twice)
		begin := make(chan struct{})
		var wg sync.WaitGroup
		for i := range results {
			who := i % people
			a := attendees[who]
			if i >= people {
				a = &talentv1.Attendee{Name: a.GetName(), Organization: a.GetOrganization(), Phone: "+86 " + a.GetPhone()}
			}
			wg.Go(func() {
				<-begin
				srv := servers[i%len(servers)]
				start := time.Now()
				resp, err := srv.RegisterForEvent(entCtxAt(ctx, fmt.Sprintf("91420106MAEQ%06d", who%7)),
					&talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: a})
				results[i] = result{person: who, r: resp.GetRegistration(), err: err, start: start, end: time.Now()}
			})
		}
		close(begin)
		wg.Wait()

		// Exactly one registration per person; the second tries are refused.
		byPerson := map[int]result{}
		var ok []result
		for _, res := range results {
			switch {
			case res.err == nil:
				if prev, dup := byPerson[res.person]; dup {
					t.Fatalf("person %d registered twice: positions %d and %d", res.person, prev.r.GetPosition(), res.r.GetPosition())
				}
				byPerson[res.person] = res
				ok = append(ok, res)
			case code(res.err) != codes.AlreadyExists:
				t.Fatalf("registration of person %d: %v", res.person, res.err)
			}
		}
		if len(ok) != people {
			t.Fatalf("%d registrations succeeded; want %d, one per person", len(ok), people)
		}

		// Positions 1..1000, seats to the first 100, the waitlist in order.
		slices.SortFunc(ok, func(a, b result) int { return int(a.r.GetPosition() - b.r.GetPosition()) })
		confirmed, waitlisted := 0, 0
		for i, res := range ok {
			r := res.r
			if want := int32(i + 1); r.GetPosition() != want {
				t.Fatalf("the %d-th position is %d: a gap or a repeat", want, r.GetPosition())
			}
			switch {
			case r.GetPosition() <= seats && r.GetState() == regConfirmed && r.GetWaitlistPosition() == 0:
				confirmed++
			case r.GetPosition() > seats && r.GetState() == regWaitlisted && r.GetWaitlistPosition() == r.GetPosition()-seats:
				waitlisted++
			default:
				t.Fatalf("position %d answered %s, waitlist position %d", r.GetPosition(), r.GetState(), r.GetWaitlistPosition())
			}
		}
		if confirmed != seats || waitlisted != people-seats {
			t.Fatalf("%d CONFIRMED and %d WAITLISTED; want %d and %d", confirmed, waitlisted, seats, people-seats)
		}

		// Arrival order: a registration that returned before another was
		// sent holds the earlier position.
		byEnd := slices.Clone(ok)
		slices.SortFunc(byEnd, func(a, b result) int { return a.end.Compare(b.end) })
		var latest result // of those that ended before the current one started, the highest position
		j := 0
		byStart := slices.Clone(ok)
		slices.SortFunc(byStart, func(a, b result) int { return a.start.Compare(b.start) })
		for _, res := range byStart {
			for ; j < len(byEnd) && byEnd[j].end.Before(res.start); j++ {
				if latest.r == nil || byEnd[j].r.GetPosition() > latest.r.GetPosition() {
					latest = byEnd[j]
				}
			}
			if latest.r != nil && latest.r.GetPosition() >= res.r.GetPosition() {
				t.Fatalf("position %d returned before the registration given position %d was sent", latest.r.GetPosition(), res.r.GetPosition())
			}
		}

		// As stored and listed: the same, and one key per person.
		listed := e.registrations(t, ev.GetId())
		wantList := func(cancelled map[int32]bool, promotedUpTo int32) {
			t.Helper()
			if len(listed) != people {
				t.Fatalf("%d registrations listed; want %d", len(listed), people)
			}
			rank := int32(0)
			for i, r := range listed {
				pos := int32(i + 1)
				var want talentv1.RegistrationState
				switch {
				case cancelled[pos]:
					want = regCancelled
				case pos <= promotedUpTo:
					want = regConfirmed
				default:
					want = regWaitlisted
				}
				if want == regWaitlisted {
					rank++
				}
				if r.GetPosition() != pos || r.GetState() != want || (want == regWaitlisted && r.GetWaitlistPosition() != rank) ||
					(want != regWaitlisted && r.GetWaitlistPosition() != 0) || r.GetPromoted() != (pos > seats && want == regConfirmed) {
					t.Fatalf("listed %d-th: position %d %s (waitlist %d, promoted %v); want position %d %s (waitlist %d, promoted %v)",
						i+1, r.GetPosition(), r.GetState(), r.GetWaitlistPosition(), r.GetPromoted(), pos, want, rank, pos > seats && want == regConfirmed)
				}
			}
		}
		wantList(nil, seats)
		n := 0
		if err := e.s.scan(ctx, kindClaim, "", func(store.Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		wantKeys := 0
		for _, res := range ok {
			wantKeys += len(personKeys(res.r.GetAttendee()))
		}
		if n != wantKeys || wantKeys < people {
			t.Errorf("%d person keys claimed; want %d (each registration's phone, and e-mail when given)", n, wantKeys)
		}
		phones := map[string]bool{}
		for _, r := range listed {
			k := contact.PhoneKey(r.GetAttendee().GetPhone())
			if phones[k] {
				t.Fatalf("phone %s holds two registrations", k)
			}
			phones[k] = true
		}
		wantSeats(t, e, ev.GetId(), &talentv1.Seats{Taken: seats, Confirmed: seats, Waitlisted: people - seats, Registrations: people})
		count := countSubjects(t, st)
		if count[SubjectRegistrationConfirmed] != seats || count[SubjectRegistrationWaitlisted] != people-seats {
			t.Errorf("events: %d confirmed, %d waitlisted; want %d and %d", count[SubjectRegistrationConfirmed], count[SubjectRegistrationWaitlisted], seats, people-seats)
		}

		// 50 seats cancelled at once, half of the cancellations sent twice.
		const cancels = 50
		var ids []string
		cancelled := map[int32]bool{}
		for i := range cancels {
			r := ok[2*i].r // positions 1, 3, 5...
			ids = append(ids, r.GetId())
			cancelled[r.GetPosition()] = true
		}
		ids = append(ids, ids[:cancels/2]...)
		promoted := make([]*talentv1.Registration, len(ids))
		begin = make(chan struct{})
		for i, id := range ids {
			wg.Go(func() {
				<-begin
				resp, err := servers[i%len(servers)].CancelRegistration(staffCtxAt(ctx), &talentv1.CancelRegistrationRequest{Id: id, Reason: "行程冲突"})
				if err != nil {
					t.Errorf("cancel %s: %v", id, err)
					return
				}
				promoted[i] = resp.GetPromoted()
			})
		}
		close(begin)
		wg.Wait()
		var got []int32
		for _, p := range promoted {
			if p != nil {
				got = append(got, p.GetPosition())
			}
		}
		slices.Sort(got)
		want := make([]int32, cancels)
		for i := range want {
			want[i] = seats + 1 + int32(i)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("the cancellations promoted positions %v; want %v, each once", got, want)
		}
		listed = e.registrations(t, ev.GetId())
		wantList(cancelled, seats+cancels)
		wantSeats(t, e, ev.GetId(), &talentv1.Seats{Taken: seats, Confirmed: seats, Waitlisted: people - seats - cancels,
			Cancelled: cancels, Promoted: cancels, Registrations: people})
		count = countSubjects(t, st)
		if count[SubjectRegistrationPromoted] != cancels || count[SubjectRegistrationCancelled] != cancels {
			t.Errorf("events: %d promoted, %d cancelled; want %d and %d", count[SubjectRegistrationPromoted], count[SubjectRegistrationCancelled], cancels, cancels)
		}
	})
}

// entCtxAt and staffCtxAt are callers on ctx (its deadline).
func entCtxAt(ctx context.Context, org string) context.Context {
	return auth.WithCaller(ctx, auth.Caller{Subject: "hr-" + org, Role: auth.Enterprise, Org: org})
}

func staffCtxAt(ctx context.Context) context.Context {
	return auth.WithCaller(ctx, auth.Caller{Subject: "staff-ma", Role: auth.Staff, Org: districtOrg})
}

func wantSeats(t *testing.T, e *env, id string, want *talentv1.Seats) {
	t.Helper()
	if got := e.readEvent(t, id).GetSeats(); got.String() != want.String() {
		t.Errorf("seats %v; want %v", got, want)
	}
}

// countSubjects counts the events written since the last read, by subject.
func countSubjects(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	count := map[string]int{}
	for _, p := range pendingEvents(t, st) {
		count[p.subject]++
	}
	return count
}
