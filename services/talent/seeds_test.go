package talent

import (
	"log/slog"
	"testing"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TestLoadSeeds loads the registry's seeds into a real registry whose relay
// publishes to JetStream, and the talent base's right after, as the binary
// does on first start: LoadSeeds waits for the feed to bring the hosts,
// then plays the season. Every event kind and state is there, past events
// credited their attendees' hours, and a second load creates nothing.
func TestLoadSeeds(t *testing.T) {
	t.Parallel()
	e := startFeed(t, testenv.BoltStore(t))
	regStore := testenv.RedisStore(t)
	relay := outbox.New(regStore, e.js, slog.New(slog.DiscardHandler), outbox.Options{})
	testenv.Background(t, "registry relay", relay.Run)
	if err := registry.LoadSeeds(t.Context(), registry.New(outbox.Notifying(regStore, relay)), seeds.FS); err != nil {
		t.Fatal(err)
	}
	if err := LoadSeeds(t.Context(), e.s, seeds.FS); err != nil {
		t.Fatal(err)
	}

	evs, talents := e.allEvents(t), e.allTalents(t)
	if len(evs) < 12 || len(talents) < 12 {
		t.Fatalf("%d events and %d talents seeded; want at least 12 of each", len(evs), len(talents))
	}
	kinds, states := map[talentv1.EventKind]int{}, map[talentv1.EventState]int{}
	hosted := 0
	for _, ev := range evs {
		kinds[ev.GetKind()]++
		states[ev.GetState()]++
		if ev.GetHostInstitutionId() != "" {
			hosted++
		}
	}
	for _, k := range protoenum.All(func(k talentv1.EventKind) talentv1.EventKind { return k }) {
		if kinds[k] == 0 {
			t.Errorf("no seeded event of kind %s", key(k))
		}
	}
	for _, s := range protoenum.All(func(s talentv1.EventState) talentv1.EventState { return s }) {
		if states[s] == 0 {
			t.Errorf("no seeded event in state %s", key(s))
		}
	}
	if hosted == 0 || hosted == len(evs) {
		t.Errorf("%d of %d events hosted by institutions; want the district and institutions both", hosted, len(evs))
	}

	var credited int64
	waitlisted := 0
	for _, ev := range evs {
		for _, r := range e.registrations(t, ev.GetId()) {
			switch {
			case ev.GetState() == eventCancelled && r.GetState() != regCancelled:
				t.Errorf("registration %s of a cancelled event is %s", r.GetId(), r.GetState())
			case r.GetState() == regWaitlisted:
				waitlisted++
			}
		}
	}
	for _, p := range talents {
		l, err := e.s.GetHoursLedger(staffCtx(t), &talentv1.GetHoursLedgerRequest{TalentId: p.GetId(), PageSize: 200})
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, h := range l.GetEntries() {
			sum += int64(h.GetHours())
		}
		if sum != p.GetTotalHours() {
			t.Errorf("talent %s: ledger sums to %d, total_hours %d", p.GetName(), sum, p.GetTotalHours())
		}
		credited += sum
	}
	if credited == 0 || waitlisted == 0 {
		t.Errorf("the season credits %d hours and waitlists %d people; want some of both", credited, waitlisted)
	}

	if err := LoadSeeds(t.Context(), e.s, seeds.FS); err != nil {
		t.Fatal(err)
	}
	if n, m := len(e.allEvents(t)), len(e.allTalents(t)); n != len(evs) || m != len(talents) {
		t.Errorf("a second load: %d events and %d talents; want %d and %d", n, m, len(evs), len(talents))
	}
}

func (e *env) allEvents(t *testing.T) []*talentv1.Event {
	t.Helper()
	resp, err := e.s.ListEvents(staffCtx(t), &talentv1.ListEventsRequest{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetEvents()
}

func (e *env) allTalents(t *testing.T) []*talentv1.Talent {
	t.Helper()
	resp, err := e.s.ListTalents(staffCtx(t), &talentv1.ListTalentsRequest{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetTalents()
}
