package main

import (
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/cli"
)

func institutionsCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("institutions", "List, register and review institutions (registry)", c)
	cmd.AddCommand(institutionsList(c), institutionsGet(c), institutionsRegister(c))
	for _, r := range []struct{ verb, short string }{
		{"approve", "Approve a pending institution (staff)"},
		{"reject", "Reject a pending institution (staff)"},
		{"suspend", "Suspend an active institution (staff)"},
		{"reinstate", "Reinstate a suspended institution (staff)"},
	} {
		cmd.AddCommand(institutionReview(c, r.verb, r.short))
	}
	return cmd
}

func institutionsList(c *conn) *cobra.Command {
	req := &registryv1.ListInstitutionsRequest{}
	cmd := &cobra.Command{Use: "list", Short: "List institutions", Args: cobra.NoArgs}
	cmd.RunE = c.run("list institutions", true, func(s *session, _ []string) error {
		resp, err := s.registry().ListInstitutions(s.ctx, req)
		if err != nil {
			return err
		}
		defer s.nextPage(resp.GetNextPageToken())
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable("ID", "CREDIT CODE", "NAME", "KIND", "TIER", "ZONE", "STATE")
			for _, in := range resp.GetInstitutions() {
				t.Row(in.GetId(), in.GetCreditCode(), in.GetNameZh(), key(in.GetKind()), key(in.GetTier()), key(in.GetZone()), key(in.GetState()))
			}
			return t
		})
	})
	pagingFlags(cmd, &req.PageSize, &req.PageToken)
	enumVar(cmd, &req.State, "state", "only in this state")
	enumVar(cmd, &req.Kind, "kind", "only of this kind")
	enumVar(cmd, &req.Tier, "tier", "only of this tier")
	enumVar(cmd, &req.Zone, "zone", "only in this zone")
	cmd.Flags().StringVar(&req.NameContains, "name", "", "only those whose name contains this")
	return cmd
}

func institutionsGet(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "get ID", Short: "Show one institution", Args: oneArg("ID")}
	cmd.RunE = c.run("get institution", true, func(s *session, args []string) error {
		resp, err := s.registry().GetInstitution(s.ctx, &registryv1.GetInstitutionRequest{Id: args[0]})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return institutionTable(resp.GetInstitution()) })
	})
	return cmd
}

// institutionTable shows one institution as field/value rows.
func institutionTable(in *registryv1.Institution) *cli.Table {
	t := cli.NewTable("FIELD", "VALUE")
	t.Row("id", in.GetId())
	t.Row("credit code", in.GetCreditCode())
	t.Row("name", in.GetNameZh())
	t.Row("name (en)", in.GetNameEn())
	t.Row("kind", key(in.GetKind()))
	t.Row("tier", key(in.GetTier()))
	t.Row("zone", key(in.GetZone()))
	t.Row("address", in.GetAddress())
	t.Row("contact", in.GetContact().GetName()+" "+in.GetContact().GetPhone()+" "+in.GetContact().GetEmail())
	t.Row("state", key(in.GetState()))
	t.Row("version", in.GetVersion())
	for _, r := range in.GetReviews() {
		t.Row("review", showTime(r.GetTime())+" "+key(r.GetAction())+" "+r.GetReason())
	}
	return t
}

func institutionsRegister(c *conn) *cobra.Command {
	var (
		file string
		req  = &registryv1.RegisterInstitutionRequest{Contact: &registryv1.Contact{}}
		flag = &registryv1.RegisterInstitutionRequest{Contact: &registryv1.Contact{}}
	)
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register an institution (staff, or the institution itself)",
		Example: `  carbondesk institutions register --credit-code 91420106MA60H1TDF5 --name-zh 楚江碳金融银行武昌分行 \
    --kind bank --tier branch --zone finance_axis --address "武汉市武昌区中南路 88 号"
  carbondesk institutions register --file institution.json`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = c.run("register institution", true, func(s *session, _ []string) error {
		if err := readRequest(file, req); err != nil {
			return err
		}
		// Flags given override the file.
		f := s.cmd.Flags()
		set := func(name string, apply func()) {
			if f.Changed(name) {
				apply()
			}
		}
		if req.Contact == nil {
			req.Contact = &registryv1.Contact{}
		}
		set("credit-code", func() { req.CreditCode = flag.CreditCode })
		set("name-zh", func() { req.NameZh = flag.NameZh })
		set("name-en", func() { req.NameEn = flag.NameEn })
		set("kind", func() { req.Kind = flag.Kind })
		set("tier", func() { req.Tier = flag.Tier })
		set("zone", func() { req.Zone = flag.Zone })
		set("address", func() { req.Address = flag.Address })
		set("contact-name", func() { req.Contact.Name = flag.Contact.Name })
		set("contact-phone", func() { req.Contact.Phone = flag.Contact.Phone })
		set("contact-email", func() { req.Contact.Email = flag.Contact.Email })
		resp, err := s.registry().RegisterInstitution(s.ctx, req)
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return institutionTable(resp.GetInstitution()) })
	})
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "RegisterInstitutionRequest as protojson; flags given override its fields")
	fl.StringVar(&flag.CreditCode, "credit-code", "", "unified social credit code")
	fl.StringVar(&flag.NameZh, "name-zh", "", "name in Chinese")
	fl.StringVar(&flag.NameEn, "name-en", "", "name in English")
	enumVar(cmd, &flag.Kind, "kind", "kind")
	enumVar(cmd, &flag.Tier, "tier", "tier")
	enumVar(cmd, &flag.Zone, "zone", "zone")
	fl.StringVar(&flag.Address, "address", "", "address")
	fl.StringVar(&flag.Contact.Name, "contact-name", "", "contact person")
	fl.StringVar(&flag.Contact.Phone, "contact-phone", "", "contact phone")
	fl.StringVar(&flag.Contact.Email, "contact-email", "", "contact e-mail")
	return cmd
}

// institutionReview is one of the staff's review verbs.
func institutionReview(c *conn, verb, short string) *cobra.Command {
	var (
		reason  string
		version int64
	)
	cmd := &cobra.Command{Use: verb + " ID", Short: short, Args: oneArg("ID")}
	cmd.RunE = c.run(verb+" institution", true, func(s *session, args []string) error {
		var (
			resp interface {
				proto.Message
				GetInstitution() *registryv1.Institution
			}
			err error
			r   = s.registry()
			id  = args[0]
		)
		switch verb {
		case "approve":
			resp, err = r.ApproveInstitution(s.ctx, &registryv1.ApproveInstitutionRequest{Id: id, Reason: reason, Version: version})
		case "reject":
			resp, err = r.RejectInstitution(s.ctx, &registryv1.RejectInstitutionRequest{Id: id, Reason: reason, Version: version})
		case "suspend":
			resp, err = r.SuspendInstitution(s.ctx, &registryv1.SuspendInstitutionRequest{Id: id, Reason: reason, Version: version})
		case "reinstate":
			resp, err = r.ReinstateInstitution(s.ctx, &registryv1.ReinstateInstitutionRequest{Id: id, Reason: reason, Version: version})
		}
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return institutionTable(resp.GetInstitution()) })
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the review")
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the institution is at this version (0: any)")
	return cmd
}
