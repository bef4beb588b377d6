package matching

import (
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
)

// GetMatchStats reads the desk's figures for the demands posted in a time
// window: how many, how many found an institution (an ACCEPTED match or
// later: the match rate), how many proposals were accepted, how long
// accepting took (median and p90), what is overdue, and the completed
// volume by product category, sector and the institution's zone. It reads
// the window's demands and their matches: a district posts thousands of
// demands a year, not millions, and counters kept beside the records would
// be one more thing to keep consistent.
func (s *Server) GetMatchStats(ctx context.Context, req *matchingv1.GetMatchStatsRequest) (*matchingv1.GetMatchStatsResponse, error) {
	from, to := time.Time{}, s.now().UTC()
	if t := req.GetStartTime(); t != nil {
		from = t.AsTime()
	}
	if t := req.GetEndTime(); t != nil {
		to = t.AsTime()
	}
	if !from.IsZero() && !to.After(from) {
		return nil, errs.Invalid("end_time", "%s is not after start_time %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	now := s.now().UTC()
	resp := &matchingv1.GetMatchStatsResponse{}
	var toAccept []time.Duration
	byCat, bySector, byZone := map[string]*matchingv1.Volume{}, map[string]*matchingv1.Volume{}, map[string]*matchingv1.Volume{}
	add := func(vols map[string]*matchingv1.Volume, key string, o *matchingv1.Outcome) {
		v := vols[key]
		if v == nil {
			v = &matchingv1.Volume{Key: key}
			vols[key] = v
		}
		v.Deals++
		v.AmountYuan += o.GetAmountYuan()
		v.Tonnes += o.GetTonnes()
	}
	err := s.scanDemands(ctx, "", func(d *matchingv1.Demand) error {
		created := d.GetCreateTime().AsTime()
		if created.Before(from) || !created.Before(to) {
			return nil
		}
		resp.DemandsPosted++
		if d.GetNeedsAttention() {
			resp.DemandsNeedingAttention++
		}
		ms, err := s.matchesOf(ctx, d.GetId())
		if err != nil {
			return err
		}
		taken := false
		for _, m := range ms {
			resp.MatchesProposed++
			if m.GetAcceptTime() != nil {
				taken = true
				resp.MatchesAccepted++
				toAccept = append(toAccept, m.GetAcceptTime().AsTime().Sub(m.GetCreateTime().AsTime()))
			}
			if m.GetResponseOverdue() || (m.GetState() == matchProposed && now.After(m.GetResponseDeadline().AsTime())) {
				resp.OverdueResponses++
			}
			if m.GetOutcomeOverdue() || (m.GetState() == matchConfirmed && now.After(m.GetOutcomeDeadline().AsTime())) {
				resp.OverdueOutcomes++
			}
			if m.GetState() == matchCompleted {
				o := m.GetOutcome()
				resp.CompletedDeals++
				resp.CompletedAmountYuan += o.GetAmountYuan()
				resp.CompletedTonnes += o.GetTonnes()
				add(byCat, stateName(m.GetCategory()), o)
				add(bySector, stateName(m.GetSector()), o)
				zone := "UNSPECIFIED"
				if m.GetInstitutionZone() != 0 {
					zone = stateName(m.GetInstitutionZone())
				}
				add(byZone, zone, o)
			}
		}
		if taken {
			resp.DemandsWithAcceptedMatch++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.MatchRateBps = shareBps(resp.DemandsWithAcceptedMatch, resp.DemandsPosted)
	resp.AcceptanceRateBps = shareBps(resp.MatchesAccepted, resp.MatchesProposed)
	if len(toAccept) > 0 {
		slices.Sort(toAccept)
		resp.MedianTimeToAccept = durationpb.New(quantile(toAccept, 0.5))
		resp.P90TimeToAccept = durationpb.New(quantile(toAccept, 0.9))
	}
	resp.CompletedByCategory = sorted(byCat)
	resp.CompletedBySector = sorted(bySector)
	resp.CompletedByZone = sorted(byZone)
	return resp, nil
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sorted(m map[string]*matchingv1.Volume) []*matchingv1.Volume {
	out := make([]*matchingv1.Volume, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *matchingv1.Volume) int {
		if a.AmountYuan != b.AmountYuan {
			if a.AmountYuan > b.AmountYuan {
				return -1
			}
			return 1
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// shareBps is part/whole in basis points, rounded half up; 0 for no whole.
func shareBps(part, whole int64) int32 {
	if whole <= 0 {
		return 0
	}
	return int32((part*10000 + whole/2) / whole)
}
