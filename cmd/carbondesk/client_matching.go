package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/cli"
)

func demandsCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("demands", "Post, list and withdraw enterprises' demands (matching)", c)
	cmd.AddCommand(demandsList(c), demandsGet(c), demandsPost(c), demandsWithdraw(c))
	return cmd
}

func demandsList(c *conn) *cobra.Command {
	req := &matchingv1.ListDemandsRequest{}
	cmd := &cobra.Command{Use: "list", Short: "List demands", Args: cobra.NoArgs}
	cmd.RunE = c.run("list demands", true, func(s *session, _ []string) error {
		resp, err := s.matching().ListDemands(s.ctx, req)
		if err != nil {
			return err
		}
		defer s.nextPage(resp.GetNextPageToken())
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable("ID", "ENTERPRISE", "KIND", "AMOUNT (YUAN)", "STATE", "DESCRIPTION")
			for _, d := range resp.GetDemands() {
				t.Row(d.GetId(), d.GetEnterpriseName(), key(d.GetKind()), yuan(d.GetAmountYuan()), key(d.GetState()), cli.Truncate(d.GetDescription(), 40))
			}
			return t
		})
	})
	pagingFlags(cmd, &req.PageSize, &req.PageToken)
	enumVar(cmd, &req.State, "state", "only in this state")
	cmd.Flags().StringVar(&req.EnterpriseCreditCode, "enterprise", "", "only this enterprise's (its credit code)")
	cmd.Flags().BoolVar(&req.NeedsAttention, "needs-attention", false, "only those staff should look at")
	return cmd
}

func demandsGet(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "get ID", Short: "Show a demand and its matches", Args: oneArg("ID")}
	cmd.RunE = c.run("get demand", true, func(s *session, args []string) error {
		resp, err := s.matching().GetDemand(s.ctx, &matchingv1.GetDemandRequest{Id: args[0]})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return demandTable(resp.GetDemand(), resp.GetMatches()) })
	})
	return cmd
}

func demandTable(d *matchingv1.Demand, ms []*matchingv1.Match) *cli.Table {
	t := cli.NewTable("FIELD", "VALUE")
	t.Row("id", d.GetId())
	t.Row("enterprise", d.GetEnterpriseName()+" ("+d.GetEnterpriseCreditCode()+")")
	t.Row("sector", key(d.GetSector()))
	t.Row("kind", key(d.GetKind()))
	t.Row("amount (yuan)", yuan(d.GetAmountYuan()))
	t.Row("term (months)", d.GetTermMonths())
	t.Row("description", d.GetDescription())
	t.Row("deadline", showTime(d.GetDeadline()))
	t.Row("state", key(d.GetState()))
	t.Row("version", d.GetVersion())
	for _, m := range ms {
		t.Row("match", fmt.Sprintf("#%d %s product %s score %.2f %s", m.GetRank(), m.GetId(), m.GetProductId(), m.GetScore(), key(m.GetState())))
	}
	return t
}

func demandsPost(c *conn) *cobra.Command {
	var (
		file, deadline string
		flag           = &matchingv1.Demand{}
	)
	cmd := &cobra.Command{
		Use:   "post",
		Short: "Post an enterprise's demand; the desk proposes matching products",
		Example: `  carbondesk demands post --enterprise 91420106MAEQ000373 --enterprise-name 武昌示范钢铁有限公司 \
    --sector steel --ets-covered --region 420106 --zone other_wuchang --kind financing \
    --category carbon_pledge --amount 20000000 --term-months 12 --cea-tonnes 800000 \
    --description "以富余配额质押融资" --deadline 1080h`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = c.run("post demand", true, func(s *session, _ []string) error {
		req := &matchingv1.PostDemandRequest{}
		if err := readRequest(file, req); err != nil {
			return err
		}
		if req.Demand == nil {
			req.Demand = &matchingv1.Demand{}
		}
		d, f := req.Demand, s.cmd.Flags()
		for name, apply := range map[string]func(){
			"enterprise":      func() { d.EnterpriseCreditCode = flag.EnterpriseCreditCode },
			"enterprise-name": func() { d.EnterpriseName = flag.EnterpriseName },
			"sector":          func() { d.Sector = flag.Sector },
			"ets-covered":     func() { d.EtsCovered = flag.EtsCovered },
			"region":          func() { d.Region = flag.Region },
			"zone":            func() { d.Zone = flag.Zone },
			"kind":            func() { d.Kind = flag.Kind },
			"category":        func() { d.Categories = flag.Categories },
			"amount":          func() { d.AmountYuan = flag.AmountYuan },
			"term-months":     func() { d.TermMonths = flag.TermMonths },
			"cea-tonnes":      func() { d.CeaTonnes = flag.CeaTonnes },
			"ccer-tonnes":     func() { d.CcerTonnes = flag.CcerTonnes },
			"emissions":       func() { d.AnnualEmissionsTonnes = flag.AnnualEmissionsTonnes },
			"description":     func() { d.Description = flag.Description },
		} {
			if f.Changed(name) {
				apply()
			}
		}
		if f.Changed("deadline") {
			ts, err := when(deadline)
			if err != nil {
				return fmt.Errorf("--deadline: %w", err)
			}
			d.Deadline = ts
		}
		resp, err := s.matching().PostDemand(s.ctx, req)
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return demandTable(resp.GetDemand(), resp.GetMatches()) })
	})
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "PostDemandRequest as protojson; flags given override its fields")
	fl.StringVar(&flag.EnterpriseCreditCode, "enterprise", "", "the enterprise's unified social credit code")
	fl.StringVar(&flag.EnterpriseName, "enterprise-name", "", "the enterprise's name")
	enumVar(cmd, &flag.Sector, "sector", "the enterprise's sector")
	fl.BoolVar(&flag.EtsCovered, "ets-covered", false, "the enterprise is covered by the national ETS")
	fl.StringVar(&flag.Region, "region", "", "region, GB/T 2260 code")
	enumVar(cmd, &flag.Zone, "zone", "zone")
	enumVar(cmd, &flag.Kind, "kind", "kind of demand")
	enumsVar(cmd, &flag.Categories, "category", "product categories wanted")
	fl.Int64Var(&flag.AmountYuan, "amount", 0, "amount, yuan")
	fl.Int32Var(&flag.TermMonths, "term-months", 0, "term, months")
	fl.Int64Var(&flag.CeaTonnes, "cea-tonnes", 0, "CEA allowances held, tonnes")
	fl.Int64Var(&flag.CcerTonnes, "ccer-tonnes", 0, "CCERs held, tonnes")
	fl.Int64Var(&flag.AnnualEmissionsTonnes, "emissions", 0, "annual emissions, tonnes")
	fl.StringVar(&flag.Description, "description", "", "what the money is for")
	fl.StringVar(&deadline, "deadline", "", "answer wanted by: RFC 3339, a date, or a duration from now (720h)")
	return cmd
}

func demandsWithdraw(c *conn) *cobra.Command {
	var (
		reason  string
		version int64
	)
	cmd := &cobra.Command{Use: "withdraw ID", Short: "Withdraw a demand", Args: oneArg("ID")}
	cmd.RunE = c.run("withdraw demand", true, func(s *session, args []string) error {
		resp, err := s.matching().WithdrawDemand(s.ctx, &matchingv1.WithdrawDemandRequest{Id: args[0], Version: version, Reason: reason})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return demandTable(resp.GetDemand(), nil) })
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the demand is at this version (0: any)")
	return cmd
}

func matchesCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("matches", "List, answer and follow matches between demands and products", c)
	cmd.AddCommand(matchesList(c), matchesExplain(c), matchesReport(c), matchesWatch(c))
	for _, v := range []struct{ verb, short string }{
		{"accept", "Accept a proposed match (the institution)"},
		{"decline", "Decline a proposed match (the institution)"},
		{"confirm", "Confirm an accepted match (the enterprise)"},
	} {
		cmd.AddCommand(matchAnswer(c, v.verb, v.short))
	}
	return cmd
}

func matchRows(t *cli.Table, ms ...*matchingv1.Match) {
	for _, m := range ms {
		t.Row(m.GetId(), m.GetDemandId(), m.GetProductId(), m.GetInstitutionCreditCode(), m.GetRank(), fmt.Sprintf("%.2f", m.GetScore()), key(m.GetState()))
	}
}

var matchHeader = []string{"ID", "DEMAND", "PRODUCT", "INSTITUTION", "RANK", "SCORE", "STATE"}

func matchesList(c *conn) *cobra.Command {
	req := &matchingv1.ListMatchesRequest{}
	cmd := &cobra.Command{Use: "list", Short: "List matches", Args: cobra.NoArgs}
	cmd.RunE = c.run("list matches", true, func(s *session, _ []string) error {
		resp, err := s.matching().ListMatches(s.ctx, req)
		if err != nil {
			return err
		}
		defer s.nextPage(resp.GetNextPageToken())
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable(matchHeader...)
			matchRows(t, resp.GetMatches()...)
			return t
		})
	})
	pagingFlags(cmd, &req.PageSize, &req.PageToken)
	cmd.Flags().StringVar(&req.DemandId, "demand", "", "only this demand's")
	cmd.Flags().StringVar(&req.InstitutionId, "institution", "", "only this institution's (its ID)")
	enumVar(cmd, &req.State, "state", "only in this state")
	cmd.Flags().BoolVar(&req.Overdue, "overdue", false, "only those overdue")
	return cmd
}

func matchesExplain(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "explain DEMAND_ID PRODUCT_ID", Short: "Explain why a product does or does not fit a demand", Args: cobra.ExactArgs(2)}
	cmd.RunE = c.run("explain match", true, func(s *session, args []string) error {
		resp, err := s.matching().ExplainMatch(s.ctx, &matchingv1.ExplainMatchRequest{DemandId: args[0], ProductId: args[1]})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable("CHECK", "OK", "DETAIL")
			t.Row("eligible", resp.GetEligible(), fmt.Sprintf("score %.2f", resp.GetScore()))
			for _, ch := range resp.GetChecks() {
				t.Row(ch.GetName(), ch.GetOk(), ch.GetDetail())
			}
			for _, p := range resp.GetScoreParts() {
				t.Row("score: "+p.GetName(), fmt.Sprintf("%.2f×%.2f", p.GetValue(), p.GetWeight()), p.GetDetail())
			}
			return t
		})
	})
	return cmd
}

func matchAnswer(c *conn, verb, short string) *cobra.Command {
	var (
		reason  string
		version int64
	)
	cmd := &cobra.Command{Use: verb + " ID", Short: short, Args: oneArg("ID")}
	cmd.RunE = c.run(verb+" match", true, func(s *session, args []string) error {
		var (
			resp interface {
				proto.Message
				GetMatch() *matchingv1.Match
			}
			err error
			m   = s.matching()
			id  = args[0]
		)
		switch verb {
		case "accept":
			resp, err = m.AcceptMatch(s.ctx, &matchingv1.AcceptMatchRequest{Id: id, Version: version})
		case "decline":
			resp, err = m.DeclineMatch(s.ctx, &matchingv1.DeclineMatchRequest{Id: id, Version: version, Reason: reason})
		case "confirm":
			resp, err = m.ConfirmMatch(s.ctx, &matchingv1.ConfirmMatchRequest{Id: id, Version: version})
		}
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable(matchHeader...)
			matchRows(t, resp.GetMatch())
			return t
		})
	})
	if verb == "decline" {
		cmd.Flags().StringVar(&reason, "reason", "", "why")
	}
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the match is at this version (0: any)")
	return cmd
}

func matchesReport(c *conn) *cobra.Command {
	var (
		file, failed string
		deal         = &matchingv1.Deal{}
		version      int64
	)
	cmd := &cobra.Command{
		Use:   "report ID",
		Short: "Report the outcome of a confirmed match (the institution): a deal, or --failed REASON",
		Example: `  carbondesk matches report 01J... --amount 18000000 --rate-bps 430 --term-months 12 --note 已放款
  carbondesk matches report 01J... --failed credit_rejected --note 授信未通过`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.RunE = c.run("report outcome", true, func(s *session, args []string) error {
		req := &matchingv1.ReportOutcomeRequest{}
		if err := readRequest(file, req); err != nil {
			return err
		}
		if len(args) == 1 {
			req.Id = args[0]
		}
		if s.cmd.Flags().Changed("version") {
			req.Version = version
		}
		switch {
		case failed != "":
			var r matchingv1.FailureReason
			if err := (enumFlag[matchingv1.FailureReason]{&r}).Set(failed); err != nil {
				return fmt.Errorf("--failed: %w", err)
			}
			req.Result = &matchingv1.ReportOutcomeRequest_Failed{Failed: &matchingv1.Failure{Reason: r, Note: deal.Note}}
		case file == "" || s.cmd.Flags().Changed("amount"):
			req.Result = &matchingv1.ReportOutcomeRequest_Completed{Completed: deal}
		}
		resp, err := s.matching().ReportOutcome(s.ctx, req)
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable(matchHeader...)
			matchRows(t, resp.GetMatch())
			return t
		})
	})
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "ReportOutcomeRequest as protojson")
	f.Int64Var(&deal.AmountYuan, "amount", 0, "amount lent or paid, yuan")
	f.Int32Var(&deal.RateBps, "rate-bps", 0, "annual rate, basis points")
	f.Int32Var(&deal.TermMonths, "term-months", 0, "term, months")
	f.Int64Var(&deal.Tonnes, "tonnes", 0, "tonnes of carbon assets involved")
	f.StringVar(&deal.Note, "note", "", "note")
	f.StringVar(&failed, "failed", "", "the deal failed, for this reason")
	f.Int64Var(&version, "version", 0, "fail unless the match is at this version (0: any)")
	return cmd
}

// watchLine lays out one streamed event: the columns cannot be measured
// ahead, so they have fixed widths (IDs are 26-character ULIDs).
const watchLine = "%-16s  %-24s  %-26s  %-26s  %-26s  %s\n"

func matchesWatch(c *conn) *cobra.Command {
	var (
		req   = &matchingv1.WatchMatchesRequest{}
		since string
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow match events as they happen (NDJSON with --json)",
		Example: `  carbondesk matches watch --state accepted --category carbon_pledge
  carbondesk matches watch --since 24h --json`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = c.run("watch matches", false, func(s *session, _ []string) error {
		if since != "" {
			ts, err := when("-" + since)
			if err != nil {
				ts, err = when(since)
			}
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			req.StartTime = ts
		}
		stream, err := s.matching().WatchMatches(s.ctx, req)
		if err != nil {
			return err
		}
		out := s.cmd.OutOrStdout()
		if !s.json {
			fmt.Fprintf(out, watchLine, "TIME", "EVENT", "MATCH", "DEMAND", "PRODUCT", "STATE")
		}
		for {
			ev, err := stream.Recv()
			switch {
			case errors.Is(err, io.EOF):
				return nil
			case status.Code(err) == codes.Canceled || status.Code(err) == codes.DeadlineExceeded && s.cmd.Flags().Changed("timeout"):
				return nil
			case err != nil:
				return err
			}
			if s.json {
				if err := cli.JSONLine(out, ev); err != nil {
					return err
				}
				continue
			}
			m := ev.GetMatch()
			fmt.Fprintf(out, watchLine, showTime(ev.GetEventTime()), ev.GetEventType(), m.GetId(), m.GetDemandId(), m.GetProductId(), key(m.GetState()))
		}
	})
	enumsVar(cmd, &req.States, "state", "only matches in these states")
	enumsVar(cmd, &req.Categories, "category", "only of these product categories")
	enumsVar(cmd, &req.Sectors, "sector", "only for these sectors")
	cmd.Flags().StringVar(&req.InstitutionId, "institution", "", "only this institution's (its ID)")
	cmd.Flags().StringVar(&since, "since", "", "replay from this long ago (24h) or this time (RFC 3339), then follow")
	return cmd
}
