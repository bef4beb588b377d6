package talent

import (
	"context"
	"slices"
	"strings"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

// The figures of GetEventStats, over one event or many:
//
//   - fill rate: seats taken (CONFIRMED + ATTENDED) over capacity;
//   - waitlist length: WAITLISTED registrations;
//   - attendance rate: ATTENDED over seats taken, i.e. of the people holding
//     a seat, the share who came (0 until check-in starts);
//   - hours credited: ATTENDED × the event's training hours; by topic, an
//     event's hours count under each of its categories, sectors and job
//     types (topics tag an event, they do not split it).
//
// Rates are basis points, rounded down; 0 when the denominator is.
// Counting many events leaves out drafts never published and CANCELLED
// events: they hold no seats that count.

// tally sums the figures of events.
type tally struct {
	events, capacity, taken, waitlisted, attended, cancelled, promoted, hours int64

	cat map[catalogv1.ProductCategory]int64
	sec map[catalogv1.Sector]int64
	job map[talentv1.JobType]int64
}

func newTally() *tally {
	return &tally{cat: map[catalogv1.ProductCategory]int64{}, sec: map[catalogv1.Sector]int64{}, job: map[talentv1.JobType]int64{}}
}

func (t *tally) add(e *talentv1.Event, r roster) {
	t.events++
	t.capacity += int64(e.GetCapacity())
	t.taken += int64(r.taken())
	t.waitlisted += int64(r.Waitlisted)
	t.attended += int64(r.Attended)
	t.cancelled += int64(r.Cancelled)
	t.promoted += int64(r.Promoted)
	hours := int64(r.Attended) * int64(e.GetTrainingHours())
	t.hours += hours
	for _, c := range e.GetTopics().GetCategories() {
		t.cat[c] += hours
	}
	for _, s := range e.GetTopics().GetSectors() {
		t.sec[s] += hours
	}
	for _, j := range e.GetTopics().GetJobTypes() {
		t.job[j] += hours
	}
}

func bps(num, den int64) int32 {
	if den <= 0 {
		return 0
	}
	return int32(num * 10000 / den)
}

// topicHours lists a breakdown in the enum's order.
func topicHours[P protoenum.Enum](m map[P]int64) []*talentv1.TopicHours {
	keys := make([]P, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*talentv1.TopicHours, len(keys))
	for i, k := range keys {
		out[i] = &talentv1.TopicHours{Topic: key(k), Hours: m[k]}
	}
	return out
}

func (t *tally) response() *talentv1.GetEventStatsResponse {
	return &talentv1.GetEventStatsResponse{
		Events: t.events, Capacity: t.capacity, Taken: t.taken, Waitlisted: t.waitlisted, Attended: t.attended,
		Cancelled: t.cancelled, Promoted: t.promoted, HoursCredited: t.hours,
		FillRateBps: bps(t.taken, t.capacity), WaitlistLength: t.waitlisted, AttendanceRateBps: bps(t.attended, t.taken),
		HoursByCategory: topicHours(t.cat), HoursBySector: topicHours(t.sec), HoursByJobType: topicHours(t.job),
	}
}

// GetEventStats reads the figures of one event the caller hosts, or of
// every event it hosts (staff: every event).
func (s *Server) GetEventStats(ctx context.Context, req *talentv1.GetEventStatsRequest) (*talentv1.GetEventStatsResponse, error) {
	var v errs.Violations
	id := strings.TrimSpace(req.GetEventId())
	checkID(&v, "event_id", id, false)
	if err := v.Err(); err != nil {
		return nil, err
	}
	t := newTally()
	if id != "" {
		e, err := s.getEvent(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ownsEvent(ctx, e) {
			return nil, errs.NotFound("event", id)
		}
		r, _, err := s.getRoster(ctx, id)
		if err != nil {
			return nil, err
		}
		t.add(e, r)
		return t.response(), nil
	}
	term := ""
	if !auth.IsStaff(ctx) {
		c, _ := auth.CallerFrom(ctx)
		in, err := s.institutionByCode(ctx, c.Org)
		if err != nil {
			return nil, err
		}
		if in == nil {
			return t.response(), nil // hosts nothing
		}
		term = termHost + in.ID
	}
	err := s.scanEvents(ctx, term, func(e *talentv1.Event) error {
		if e.GetPublishTime() == nil || e.GetState() == eventCancelled || !ownsEvent(ctx, e) {
			return nil
		}
		r, _, err := s.getRoster(ctx, e.GetId())
		if err != nil {
			return err
		}
		t.add(e, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t.response(), nil
}
