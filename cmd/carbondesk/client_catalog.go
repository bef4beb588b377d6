package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/internal/cli"
)

func productsCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("products", "List, create and publish products (catalog)", c)
	cmd.AddCommand(productsList(c), productsGet(c), productsCreate(c))
	for _, v := range []struct{ verb, short string }{
		{"publish", "Publish a draft or paused product"},
		{"pause", "Pause a published product"},
		{"retire", "Retire a product for good"},
	} {
		cmd.AddCommand(productTransition(c, v.verb, v.short))
	}
	return cmd
}

func productsList(c *conn) *cobra.Command {
	req := &catalogv1.ListProductsRequest{}
	cmd := &cobra.Command{Use: "list", Short: "List products", Args: cobra.NoArgs}
	cmd.RunE = c.run("list products", true, func(s *session, _ []string) error {
		resp, err := s.catalog().ListProducts(s.ctx, req)
		if err != nil {
			return err
		}
		defer s.nextPage(resp.GetNextPageToken())
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable("ID", "INSTITUTION", "NAME", "CATEGORY", "AMOUNT (YUAN)", "STATE")
			for _, p := range resp.GetProducts() {
				t.Row(p.GetId(), p.GetInstitutionCreditCode(), p.GetNameZh(), key(p.GetCategory()),
					yuan(p.GetAmount().GetMinYuan())+"–"+yuan(p.GetAmount().GetMaxYuan()), key(p.GetState()))
			}
			return t
		})
	})
	pagingFlags(cmd, &req.PageSize, &req.PageToken)
	f := cmd.Flags()
	f.StringVar(&req.InstitutionId, "institution", "", "only this institution's (its ID)")
	enumVar(cmd, &req.Category, "category", "only of this category")
	enumVar(cmd, &req.State, "state", "only in this state")
	enumVar(cmd, &req.Sector, "sector", "only serving this sector")
	f.StringVar(&req.Region, "region", "", "only serving this region (GB/T 2260 code)")
	f.Int64Var(&req.AmountYuan, "amount", 0, "only those lending this amount (yuan)")
	f.StringVar(&req.NameContains, "name", "", "only those whose name contains this")
	return cmd
}

func productsGet(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "get ID", Short: "Show one product", Args: oneArg("ID")}
	cmd.RunE = c.run("get product", true, func(s *session, args []string) error {
		resp, err := s.catalog().GetProduct(s.ctx, &catalogv1.GetProductRequest{Id: args[0]})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return productTable(resp.GetProduct()) })
	})
	return cmd
}

func productTable(p *catalogv1.Product) *cli.Table {
	t := cli.NewTable("FIELD", "VALUE")
	t.Row("id", p.GetId())
	t.Row("institution", p.GetInstitutionId()+" ("+p.GetInstitutionCreditCode()+")")
	t.Row("name", p.GetNameZh())
	t.Row("name (en)", p.GetNameEn())
	t.Row("category", key(p.GetCategory()))
	kinds := make([]string, 0, len(p.GetDemandKinds()))
	for _, k := range p.GetDemandKinds() {
		kinds = append(kinds, key(k))
	}
	t.Row("demand kinds", strings.Join(kinds, ", "))
	t.Row("amount (yuan)", yuan(p.GetAmount().GetMinYuan())+"–"+yuan(p.GetAmount().GetMaxYuan()))
	t.Row("term (months)", fmt.Sprintf("%d–%d", p.GetTerm().GetMinMonths(), p.GetTerm().GetMaxMonths()))
	switch pr := p.GetPrice(); {
	case pr.GetAnnualRate() != nil:
		t.Row("annual rate (bps)", fmt.Sprintf("%d–%d", pr.GetAnnualRate().GetMinBps(), pr.GetAnnualRate().GetMaxBps()))
	case pr != nil:
		t.Row("fee (yuan)", yuan(pr.GetFeeYuan()))
	}
	sectors := make([]string, 0, len(p.GetSectors()))
	for _, sc := range p.GetSectors() {
		sectors = append(sectors, key(sc))
	}
	t.Row("sectors", strings.Join(sectors, ", "))
	t.Row("regions", strings.Join(p.GetRegions(), ", "))
	t.Row("description", p.GetDescription())
	t.Row("state", strings.TrimSpace(key(p.GetState())+" "+p.GetStateReason()))
	t.Row("version", p.GetVersion())
	return t
}

func productsCreate(c *conn) *cobra.Command {
	var (
		file             string
		flag             = &catalogv1.Product{Contact: &catalogv1.Contact{}}
		amtMin, amtMax   int64
		termMin, termMax int32
		rateMin, rateMax int32
		feeYuan          int64
		institutionID    string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a draft product for an institution",
		Example: `  carbondesk products create --institution 01J... --name-zh 碳排放配额质押贷 --category carbon_pledge \
    --demand-kind financing --amount-min 5000000 --amount-max 60000000 --term-min 6 --term-max 36 \
    --rate-min-bps 435 --rate-max-bps 525 --region 420100 --contact-name 王晓岚 --contact-phone "027-8100 1000"`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = c.run("create product", true, func(s *session, _ []string) error {
		req := &catalogv1.CreateProductRequest{}
		if err := readRequest(file, req); err != nil {
			return err
		}
		if req.Product == nil {
			req.Product = &catalogv1.Product{}
		}
		p, f := req.Product, s.cmd.Flags()
		if f.Changed("institution") {
			req.InstitutionId = institutionID
		}
		if f.Changed("name-zh") {
			p.NameZh = flag.NameZh
		}
		if f.Changed("name-en") {
			p.NameEn = flag.NameEn
		}
		if f.Changed("category") {
			p.Category = flag.Category
		}
		if f.Changed("demand-kind") {
			p.DemandKinds = flag.DemandKinds
		}
		if f.Changed("amount-min") || f.Changed("amount-max") {
			p.Amount = &catalogv1.AmountRange{MinYuan: amtMin, MaxYuan: amtMax}
		}
		if f.Changed("term-min") || f.Changed("term-max") {
			p.Term = &catalogv1.TermRange{MinMonths: termMin, MaxMonths: termMax}
		}
		if f.Changed("rate-min-bps") || f.Changed("rate-max-bps") {
			p.Price = &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: rateMin, MaxBps: rateMax}}}
		}
		if f.Changed("fee-yuan") {
			p.Price = &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: feeYuan}}
		}
		if f.Changed("sector") {
			p.Sectors = flag.Sectors
		}
		if f.Changed("region") {
			p.Regions = flag.Regions
		}
		if f.Changed("description") {
			p.Description = flag.Description
		}
		if f.Changed("contact-name") || f.Changed("contact-phone") || f.Changed("contact-email") {
			if p.Contact == nil {
				p.Contact = &catalogv1.Contact{}
			}
			for name, apply := range map[string]func(){
				"contact-name":  func() { p.Contact.Name = flag.Contact.Name },
				"contact-phone": func() { p.Contact.Phone = flag.Contact.Phone },
				"contact-email": func() { p.Contact.Email = flag.Contact.Email },
			} {
				if f.Changed(name) {
					apply()
				}
			}
		}
		resp, err := s.catalog().CreateProduct(s.ctx, req)
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return productTable(resp.GetProduct()) })
	})
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "CreateProductRequest as protojson; flags given override its fields")
	f.StringVar(&institutionID, "institution", "", "ID of the institution offering it")
	f.StringVar(&flag.NameZh, "name-zh", "", "name in Chinese")
	f.StringVar(&flag.NameEn, "name-en", "", "name in English")
	enumVar(cmd, &flag.Category, "category", "category")
	enumsVar(cmd, &flag.DemandKinds, "demand-kind", "demand kinds it serves")
	f.Int64Var(&amtMin, "amount-min", 0, "smallest amount, yuan")
	f.Int64Var(&amtMax, "amount-max", 0, "largest amount, yuan")
	f.Int32Var(&termMin, "term-min", 0, "shortest term, months")
	f.Int32Var(&termMax, "term-max", 0, "longest term, months")
	f.Int32Var(&rateMin, "rate-min-bps", 0, "lowest annual rate, basis points")
	f.Int32Var(&rateMax, "rate-max-bps", 0, "highest annual rate, basis points")
	f.Int64Var(&feeYuan, "fee-yuan", 0, "flat fee, yuan (instead of a rate)")
	enumsVar(cmd, &flag.Sectors, "sector", "sectors served (none: all)")
	f.StringSliceVar(&flag.Regions, "region", nil, "regions served, GB/T 2260 codes")
	f.StringVar(&flag.Description, "description", "", "description")
	f.StringVar(&flag.Contact.Name, "contact-name", "", "contact person")
	f.StringVar(&flag.Contact.Phone, "contact-phone", "", "contact phone")
	f.StringVar(&flag.Contact.Email, "contact-email", "", "contact e-mail")
	return cmd
}

func productTransition(c *conn, verb, short string) *cobra.Command {
	var (
		reason  string
		version int64
	)
	cmd := &cobra.Command{Use: verb + " ID", Short: short, Args: oneArg("ID")}
	cmd.RunE = c.run(verb+" product", true, func(s *session, args []string) error {
		var (
			resp interface {
				proto.Message
				GetProduct() *catalogv1.Product
			}
			err error
			cat = s.catalog()
			id  = args[0]
		)
		switch verb {
		case "publish":
			resp, err = cat.PublishProduct(s.ctx, &catalogv1.PublishProductRequest{Id: id, Version: version})
		case "pause":
			resp, err = cat.PauseProduct(s.ctx, &catalogv1.PauseProductRequest{Id: id, Version: version, Reason: reason})
		case "retire":
			resp, err = cat.RetireProduct(s.ctx, &catalogv1.RetireProductRequest{Id: id, Version: version, Reason: reason})
		}
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return productTable(resp.GetProduct()) })
	})
	if verb != "publish" {
		cmd.Flags().StringVar(&reason, "reason", "", "why")
	}
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the product is at this version (0: any)")
	return cmd
}
