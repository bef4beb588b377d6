package main

import (
	"fmt"

	"github.com/spf13/cobra"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/cli"
)

// statsCmd shows each service's district figures (staff).
func statsCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("stats", "District figures of each service (staff)", c)

	reg := &cobra.Command{Use: "registry", Short: "Institutions by kind, tier, zone and state", Args: cobra.NoArgs}
	reg.RunE = c.run("registry stats", true, func(s *session, _ []string) error {
		r, err := s.registry().GetRegistryStats(s.ctx, &registryv1.GetRegistryStatsRequest{})
		if err != nil {
			return err
		}
		return s.print(r, func() *cli.Table {
			t := cli.NewTable("FIGURE", "VALUE")
			t.Row("total", r.GetTotal())
			t.Row("active", r.GetActive())
			t.Row("active on the finance axis", r.GetActiveOnFinanceAxis())
			t.Row("finance axis share", bps(r.GetFinanceAxisShareBps()))
			for _, g := range []struct {
				name string
				cs   []*registryv1.Count
			}{{"kind", r.GetByKind()}, {"tier", r.GetByTier()}, {"zone", r.GetByZone()}, {"state", r.GetByState()}} {
				for _, ct := range g.cs {
					t.Row(g.name+" "+ct.GetKey(), ct.GetCount())
				}
			}
			return t
		})
	})

	cat := &cobra.Command{Use: "catalog", Short: "Products by category, state and institution kind", Args: cobra.NoArgs}
	cat.RunE = c.run("catalog stats", true, func(s *session, _ []string) error {
		r, err := s.catalog().GetCatalogStats(s.ctx, &catalogv1.GetCatalogStatsRequest{})
		if err != nil {
			return err
		}
		return s.print(r, func() *cli.Table {
			t := cli.NewTable("FIGURE", "VALUE")
			t.Row("total", r.GetTotal())
			t.Row("published", r.GetPublished())
			for _, g := range []struct {
				name string
				cs   []*catalogv1.Count
			}{{"category", r.GetByCategory()}, {"state", r.GetByState()}, {"institution kind", r.GetByInstitutionKind()}} {
				for _, ct := range g.cs {
					t.Row(g.name+" "+ct.GetKey(), ct.GetCount())
				}
			}
			return t
		})
	})

	mat := &cobra.Command{Use: "matching", Short: "Demands, matches, acceptance and completed deals", Args: cobra.NoArgs}
	mat.RunE = c.run("matching stats", true, func(s *session, _ []string) error {
		r, err := s.matching().GetMatchStats(s.ctx, &matchingv1.GetMatchStatsRequest{})
		if err != nil {
			return err
		}
		return s.print(r, func() *cli.Table {
			t := cli.NewTable("FIGURE", "VALUE")
			t.Row("demands posted", r.GetDemandsPosted())
			t.Row("demands with an accepted match", r.GetDemandsWithAcceptedMatch())
			t.Row("match rate", bps(r.GetMatchRateBps()))
			t.Row("matches proposed", r.GetMatchesProposed())
			t.Row("matches accepted", r.GetMatchesAccepted())
			t.Row("acceptance rate", bps(r.GetAcceptanceRateBps()))
			t.Row("median time to accept", r.GetMedianTimeToAccept().AsDuration())
			t.Row("p90 time to accept", r.GetP90TimeToAccept().AsDuration())
			t.Row("overdue responses", r.GetOverdueResponses())
			t.Row("overdue outcomes", r.GetOverdueOutcomes())
			t.Row("demands needing attention", r.GetDemandsNeedingAttention())
			t.Row("completed deals", r.GetCompletedDeals())
			t.Row("completed amount (yuan)", yuan(r.GetCompletedAmountYuan()))
			t.Row("completed tonnes", r.GetCompletedTonnes())
			return t
		})
	})

	var eventID string
	tal := &cobra.Command{Use: "talent", Short: "Seats, attendance and training hours of events", Args: cobra.NoArgs}
	tal.RunE = c.run("talent stats", true, func(s *session, _ []string) error {
		r, err := s.talent().GetEventStats(s.ctx, &talentv1.GetEventStatsRequest{EventId: eventID})
		if err != nil {
			return err
		}
		return s.print(r, func() *cli.Table {
			t := cli.NewTable("FIGURE", "VALUE")
			t.Row("events", r.GetEvents())
			t.Row("capacity", r.GetCapacity())
			t.Row("taken", r.GetTaken())
			t.Row("waitlisted", r.GetWaitlisted())
			t.Row("attended", r.GetAttended())
			t.Row("fill rate", bps(r.GetFillRateBps()))
			t.Row("attendance rate", bps(r.GetAttendanceRateBps()))
			t.Row("hours credited", r.GetHoursCredited())
			for _, h := range r.GetHoursByJobType() {
				t.Row("hours "+h.GetTopic(), h.GetHours())
			}
			return t
		})
	})
	tal.Flags().StringVar(&eventID, "event", "", "only this event's figures")

	cmd.AddCommand(reg, cat, mat, tal)
	return cmd
}

// bps shows basis points as a percentage.
func bps(n int32) string { return fmt.Sprintf("%.2f%%", float64(n)/100) }
