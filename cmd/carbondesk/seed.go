package main

// 'carbondesk seed' loads the demo data of seeds/ into a running desk
// through its public gRPC API, as a staff member would type it in. Unlike
// the services' own LoadSeeds (which run inside the process on first
// start), it needs nothing but an address and a staff token, and it is
// safe to run again: each record is looked up by its natural key first
// and skipped when it is there.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/cli"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
	"github.com/carbondesk/carbondesk/services/talent"
)

func seedCmd() *cobra.Command {
	var (
		c       = &conn{}
		dataDir string
		keyFile string
		wait    time.Duration
	)
	cmd := nounCmd("seed", "Load the demo data of seeds/ into a running desk over its API (safe to run twice)", c)
	cmd.Long = `Loads the demo data embedded from seeds/ into a running desk through its
public gRPC API, with a staff token: institutions registered and reviewed to
their state, products created for their institutions and published, paused or
retired, enterprises' demands posted, and upcoming talent events created and
published.

It is safe to run twice: every record is looked up first by its natural key
(institution: credit code; product: institution and name; demand: enterprise
and description; event: title and host) and skipped when it is there.

Without --token, --token-file or $CARBONDESK_TOKEN it mints a short-lived
staff token itself, with the development key in --data (as 'carbondesk
token' does) or with --key.`
	cmd.Example = `  carbondesk seed                          # desk on 127.0.0.1:7070, dev key in ./data
  carbondesk seed --server desk:7070 --token "$STAFF_TOKEN" --json`
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if _, err := c.bearer(); err != nil {
			tok, err := mintStaffToken(dataDir, keyFile)
			if err != nil {
				return fmt.Errorf("seed: no token given, and minting one failed: %w", err)
			}
			c.token = tok
		}
		s, err := c.dial(cmd, false)
		if err != nil {
			return err
		}
		defer s.Close()
		sd := &seeder{s: s, prog: cli.NewProgress(cmd.ErrOrStderr()), wait: wait, insts: map[string]*registryv1.Institution{}}
		counts, err := sd.run()
		if err != nil {
			return cli.Wrap("seed", err)
		}
		out := cmd.OutOrStdout()
		if c.json {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(counts)
		}
		t := cli.NewTable("KIND", "CREATED", "SKIPPED", "NOTE")
		for _, ct := range counts {
			t.Row(ct.Kind, ct.Created, ct.Skipped, ct.Note)
		}
		return t.Write(out)
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "data", "data folder of the desk, whose development key mints the staff token when none is given")
	f.StringVar(&keyFile, "key", "", "mint the staff token with this Ed25519 private key (PKCS#8 PEM) instead")
	f.DurationVar(&wait, "wait", 30*time.Second, "how long to wait for a service to see what another just did (an approved institution)")
	return cmd
}

// mintStaffToken signs a ten-minute staff token as 'carbondesk token' does.
func mintStaffToken(dataDir, keyFile string) (string, error) {
	iss := auth.Issuer{Issuer: auth.DefaultIssuer, Audience: auth.DefaultAudience}
	var err error
	if keyFile != "" {
		iss.Key, err = auth.LoadPrivateKey(keyFile)
	} else {
		iss.Key, _, err = auth.LoadOrCreateDevKey(dataDir)
	}
	if err != nil {
		return "", err
	}
	return iss.Mint(auth.Caller{Subject: "carbondesk-seed", Role: auth.Staff}, 10*time.Minute)
}

// seedCount is what one kind of record came to.
type seedCount struct {
	Kind    string `json:"kind"`
	Created int    `json:"created"`
	Skipped int    `json:"skipped"`
	Note    string `json:"note,omitempty"`
}

// seeder loads the files in order, each phase using what the previous
// created (institution IDs by credit code).
type seeder struct {
	s     *session
	prog  *cli.Progress
	wait  time.Duration
	insts map[string]*registryv1.Institution // by credit code
}

func (sd *seeder) run() ([]seedCount, error) {
	var out []seedCount
	for _, phase := range []func() (seedCount, error){sd.institutions, sd.products, sd.demands, sd.talents, sd.events, sd.prices} {
		c, err := phase()
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// call runs one RPC with the --timeout deadline, slowing down and trying
// again while the desk says the caller writes too fast.
func (sd *seeder) call(rpc func(ctx context.Context) error) error {
	for {
		ctx, cancel := context.WithTimeout(sd.s.ctx, sd.s.timeout)
		err := rpc(ctx)
		cancel()
		if status.Code(err) != codes.ResourceExhausted {
			return err
		}
		select {
		case <-sd.s.ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// settle runs rpc until it stops failing with FailedPrecondition, for at
// most --wait: the services learn of institutions from each other's events,
// so a product or event for an institution approved a moment ago can be
// refused until the news arrives.
func (sd *seeder) settle(rpc func(ctx context.Context) error) error {
	deadline := time.Now().Add(sd.wait)
	for {
		err := sd.call(rpc)
		if status.Code(err) != codes.FailedPrecondition || time.Now().After(deadline) {
			return err
		}
		select {
		case <-sd.s.ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readSeed(path string, v any) error {
	data, err := fs.ReadFile(seeds.FS, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// parseEnums reads short enum names, failing on the first unknown one.
func parseEnums[P protoenum.Enum](names []string) ([]P, error) {
	out := make([]P, 0, len(names))
	for _, n := range names {
		v, err := protoenum.Parse[P](n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func normCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// ----- institutions -----

func (sd *seeder) institutions() (seedCount, error) {
	count := seedCount{Kind: "institutions"}
	var file registry.SeedFile
	if err := readSeed(registry.SeedPath, &file); err != nil {
		return count, err
	}
	// What is there already, by credit code.
	req := &registryv1.ListInstitutionsRequest{PageSize: 100}
	for {
		var resp *registryv1.ListInstitutionsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = sd.s.registry().ListInstitutions(ctx, req)
			return err
		})
		if err != nil {
			return count, fmt.Errorf("list institutions: %w", err)
		}
		for _, in := range resp.GetInstitutions() {
			sd.insts[normCode(in.GetCreditCode())] = in
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}

	sd.prog.Start("institutions", len(file.Institutions))
	for _, si := range file.Institutions {
		code := normCode(si.CreditCode)
		if _, ok := sd.insts[code]; ok {
			count.Skipped++
			sd.prog.Step()
			continue
		}
		in, err := sd.registerInstitution(si)
		if err != nil {
			return count, fmt.Errorf("institution %s: %w", si.CreditCode, err)
		}
		sd.insts[code] = in
		count.Created++
		sd.prog.Step()
	}
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there", count.Created, count.Skipped))
	return count, nil
}

// registerInstitution registers si and reviews it to its state.
func (sd *seeder) registerInstitution(si registry.SeedInstitution) (*registryv1.Institution, error) {
	req := &registryv1.RegisterInstitutionRequest{
		CreditCode: si.CreditCode, NameZh: si.NameZh, NameEn: si.NameEn, Address: si.Address,
		Contact: &registryv1.Contact{Name: si.Contact.Name, Phone: si.Contact.Phone, Email: si.Contact.Email},
	}
	for _, l := range si.Licences {
		req.Licences = append(req.Licences, &registryv1.Licence{Name: l.Name, Number: l.Number, Issuer: l.Issuer})
	}
	var err error
	if req.Kind, err = protoenum.Parse[registryv1.InstitutionKind](si.Kind); err != nil {
		return nil, err
	}
	if req.Tier, err = protoenum.Parse[registryv1.Tier](si.Tier); err != nil {
		return nil, err
	}
	if req.Zone, err = protoenum.Parse[registryv1.Zone](si.Zone); err != nil {
		return nil, err
	}
	reg := sd.s.registry()
	var in *registryv1.Institution
	if err := sd.call(func(ctx context.Context) error {
		resp, err := reg.RegisterInstitution(ctx, req)
		in = resp.GetInstitution()
		return err
	}); err != nil {
		return nil, err
	}
	reason := si.Reason
	if reason == "" {
		reason = "demo data"
	}
	approve := func(ctx context.Context) error {
		resp, err := reg.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: in.GetId(), Reason: reason})
		in = cmpOr(resp.GetInstitution(), in)
		return err
	}
	var steps []func(context.Context) error
	switch strings.ToUpper(si.State) {
	case "ACTIVE":
		steps = append(steps, approve)
	case "REJECTED":
		steps = append(steps, func(ctx context.Context) error {
			resp, err := reg.RejectInstitution(ctx, &registryv1.RejectInstitutionRequest{Id: in.GetId(), Reason: reason})
			in = cmpOr(resp.GetInstitution(), in)
			return err
		})
	case "SUSPENDED":
		steps = append(steps, approve, func(ctx context.Context) error {
			resp, err := reg.SuspendInstitution(ctx, &registryv1.SuspendInstitutionRequest{Id: in.GetId(), Reason: reason})
			in = cmpOr(resp.GetInstitution(), in)
			return err
		})
	}
	for _, step := range steps {
		if err := sd.call(step); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// cmpOr is the first of a, b that is not nil.
func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// ----- products -----

// productProto is sp as the API's product.
func productProto(sp catalog.SeedProduct) (*catalogv1.Product, error) {
	p := &catalogv1.Product{
		NameZh: sp.NameZh, NameEn: sp.NameEn, Regions: sp.Regions, Description: sp.Description,
		Amount:  &catalogv1.AmountRange{MinYuan: sp.Amount[0], MaxYuan: sp.Amount[1]},
		Term:    &catalogv1.TermRange{MinMonths: int32(sp.Term[0]), MaxMonths: int32(sp.Term[1])},
		Contact: &catalogv1.Contact{Name: sp.Contact.Name, Phone: sp.Contact.Phone, Email: sp.Contact.Email},
	}
	var err error
	if p.Category, err = protoenum.Parse[catalogv1.ProductCategory](sp.Category); err != nil {
		return nil, err
	}
	if p.DemandKinds, err = parseEnums[catalogv1.DemandKind](sp.DemandKinds); err != nil {
		return nil, err
	}
	if p.Sectors, err = parseEnums[catalogv1.Sector](sp.Sectors); err != nil {
		return nil, err
	}
	switch {
	case sp.RateBps != nil:
		p.Price = &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: int32(sp.RateBps[0]), MaxBps: int32(sp.RateBps[1])}}}
	case sp.FeeYuan != nil:
		p.Price = &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: *sp.FeeYuan}}
	}
	if c := sp.Collateral; c != nil {
		a, err := protoenum.Parse[catalogv1.CarbonAsset](c.Asset)
		if err != nil {
			return nil, err
		}
		p.Collateral = &catalogv1.Collateral{Asset: a, PledgeRateBps: c.PledgeBps}
	}
	return p, nil
}

func (sd *seeder) products() (seedCount, error) {
	count := seedCount{Kind: "products"}
	var file catalog.SeedFile
	if err := readSeed(catalog.SeedPath, &file); err != nil {
		return count, err
	}
	cat := sd.s.catalog()
	// What is there already: institution ID + name.
	have := map[[2]string]bool{}
	req := &catalogv1.ListProductsRequest{PageSize: 100}
	for {
		var resp *catalogv1.ListProductsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = cat.ListProducts(ctx, req)
			return err
		})
		if err != nil {
			return count, fmt.Errorf("list products: %w", err)
		}
		for _, p := range resp.GetProducts() {
			have[[2]string{p.GetInstitutionId(), p.GetNameZh()}] = true
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}

	sd.prog.Start("products", len(file.Products))
	for _, sp := range file.Products {
		in, ok := sd.insts[normCode(sp.CreditCode)]
		if !ok {
			return count, fmt.Errorf("product %q: institution %s is not in the registry", sp.NameZh, sp.CreditCode)
		}
		if have[[2]string{in.GetId(), sp.NameZh}] {
			count.Skipped++
			sd.prog.Step()
			continue
		}
		if err := sd.createProduct(in.GetId(), sp); err != nil {
			return count, fmt.Errorf("product %q: %w", sp.NameZh, err)
		}
		have[[2]string{in.GetId(), sp.NameZh}] = true
		count.Created++
		sd.prog.Step()
	}
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there", count.Created, count.Skipped))
	return count, nil
}

func (sd *seeder) createProduct(institutionID string, sp catalog.SeedProduct) error {
	p, err := productProto(sp)
	if err != nil {
		return err
	}
	cat := sd.s.catalog()
	var id string
	if err := sd.settle(func(ctx context.Context) error {
		resp, err := cat.CreateProduct(ctx, &catalogv1.CreateProductRequest{InstitutionId: institutionID, Product: p})
		id = resp.GetProduct().GetId()
		return err
	}); err != nil {
		return err
	}
	reason := sp.Reason
	if reason == "" {
		reason = "demo data"
	}
	publish := func(ctx context.Context) error {
		_, err := cat.PublishProduct(ctx, &catalogv1.PublishProductRequest{Id: id})
		return err
	}
	switch strings.ToUpper(sp.State) {
	case "PUBLISHED":
		return sd.settle(publish)
	case "PAUSED":
		if err := sd.settle(publish); err != nil {
			return err
		}
		return sd.call(func(ctx context.Context) error {
			_, err := cat.PauseProduct(ctx, &catalogv1.PauseProductRequest{Id: id, Reason: reason})
			return err
		})
	case "RETIRED":
		return sd.call(func(ctx context.Context) error {
			_, err := cat.RetireProduct(ctx, &catalogv1.RetireProductRequest{Id: id, Reason: reason})
			return err
		})
	}
	return nil
}

// ----- demands -----

func (sd *seeder) demands() (seedCount, error) {
	count := seedCount{Kind: "demands", Note: "posted by staff for the enterprise; proposals are not answered"}
	var file matching.SeedFile
	if err := readSeed(matching.SeedPath, &file); err != nil {
		return count, err
	}
	ents := map[string]matching.SeedEnterprise{}
	for _, e := range file.Enterprises {
		ents[e.Key] = e
	}
	mat := sd.s.matching()
	have := map[[2]string]bool{} // enterprise credit code + description
	req := &matchingv1.ListDemandsRequest{PageSize: 100}
	for {
		var resp *matchingv1.ListDemandsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = mat.ListDemands(ctx, req)
			return err
		})
		if err != nil {
			return count, fmt.Errorf("list demands: %w", err)
		}
		for _, d := range resp.GetDemands() {
			have[[2]string{normCode(d.GetEnterpriseCreditCode()), d.GetDescription()}] = true
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}

	sd.prog.Start("demands", len(file.Demands))
	for _, sdm := range file.Demands {
		e, ok := ents[sdm.Enterprise]
		if !ok {
			return count, fmt.Errorf("demand %q: unknown enterprise %q", sdm.Description, sdm.Enterprise)
		}
		k := [2]string{normCode(e.CreditCode), sdm.Description}
		if have[k] {
			count.Skipped++
			sd.prog.Step()
			continue
		}
		d := &matchingv1.Demand{
			EnterpriseCreditCode: e.CreditCode, EnterpriseName: e.Name, EtsCovered: e.ETSCovered, Region: e.Region,
			AmountYuan: sdm.AmountYuan, TermMonths: sdm.TermMonths, CeaTonnes: sdm.CEATonnes, CcerTonnes: sdm.CCERTonnes,
			AnnualEmissionsTonnes: e.Emissions, Description: sdm.Description,
			Deadline: timestamppb.New(time.Now().Add(time.Duration(sdm.DeadlineDays) * 24 * time.Hour)),
		}
		var err error
		if d.Sector, err = protoenum.Parse[catalogv1.Sector](e.Sector); err == nil {
			if d.Zone, err = protoenum.Parse[registryv1.Zone](e.Zone); err == nil {
				if d.Kind, err = protoenum.Parse[catalogv1.DemandKind](sdm.Kind); err == nil {
					d.Categories, err = parseEnums[catalogv1.ProductCategory](sdm.Categories)
				}
			}
		}
		if err != nil {
			return count, fmt.Errorf("demand %q: %w", sdm.Description, err)
		}
		if err := sd.call(func(ctx context.Context) error {
			_, err := mat.PostDemand(ctx, &matchingv1.PostDemandRequest{Demand: d})
			return err
		}); err != nil {
			return count, fmt.Errorf("demand %q: %w", sdm.Description, err)
		}
		have[k] = true
		count.Created++
		sd.prog.Step()
	}
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there", count.Created, count.Skipped))
	return count, nil
}

// ----- talent events -----

// eventProto is se's event for the season starting on day (midnight, Beijing).
func eventProto(se talent.SeedEvent, day time.Time) (*talentv1.Event, error) {
	start := day.AddDate(0, 0, se.StartInDays).Add(time.Duration(se.StartHour) * time.Hour)
	deadlineDays := se.DeadlineDays
	if deadlineDays == 0 {
		deadlineDays = 1
	}
	e := &talentv1.Event{
		TitleZh: se.TitleZh, TitleEn: se.TitleEn, Description: se.Description, Venue: se.Venue,
		StartTime:            timestamppb.New(start.UTC()),
		EndTime:              timestamppb.New(start.Add(time.Duration(se.DurationHours) * time.Hour).UTC()),
		RegistrationDeadline: timestamppb.New(start.AddDate(0, 0, -deadlineDays).UTC()),
		Capacity:             se.Capacity, TrainingHours: se.TrainingHours,
		Topics: &talentv1.Topics{},
	}
	var err error
	if e.Kind, err = protoenum.Parse[talentv1.EventKind](se.Kind); err != nil {
		return nil, err
	}
	if e.Zone, err = protoenum.Parse[registryv1.Zone](se.Zone); err != nil {
		return nil, err
	}
	if e.Topics.Categories, err = parseEnums[catalogv1.ProductCategory](se.Categories); err != nil {
		return nil, err
	}
	if e.Topics.Sectors, err = parseEnums[catalogv1.Sector](se.Sectors); err != nil {
		return nil, err
	}
	if e.Topics.JobTypes, err = parseEnums[talentv1.JobType](se.JobTypes); err != nil {
		return nil, err
	}
	return e, nil
}

func (sd *seeder) events() (seedCount, error) {
	count := seedCount{Kind: "events"}
	var file talent.SeedFile
	if err := readSeed(talent.SeedPath, &file); err != nil {
		return count, err
	}
	tal := sd.s.talent()
	// An event's natural key is its title and host: the season's start
	// dates are relative to the day seed runs, so a second run on a later
	// day must still find the events of the first.
	have := map[string]bool{}
	eventKey := func(title, hostID string) string { return title + "@" + hostID }
	req := &talentv1.ListEventsRequest{PageSize: 100}
	for {
		var resp *talentv1.ListEventsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = tal.ListEvents(ctx, req)
			return err
		})
		if err != nil {
			return count, fmt.Errorf("list events: %w", err)
		}
		for _, e := range resp.GetEvents() {
			have[eventKey(e.GetTitleZh(), e.GetHostInstitutionId())] = true
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}

	now := time.Now().In(beijing)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, beijing)
	past := 0
	sd.prog.Start("events", len(file.Events))
	for _, se := range file.Events {
		e, err := eventProto(se, day)
		if err != nil {
			return count, fmt.Errorf("event %q: %w", se.TitleZh, err)
		}
		if se.HostCode != "" {
			in, ok := sd.insts[normCode(se.HostCode)]
			if !ok {
				return count, fmt.Errorf("event %q: host %s is not in the registry", se.TitleZh, se.HostCode)
			}
			e.HostInstitutionId = in.GetId()
		}
		k := eventKey(se.TitleZh, e.GetHostInstitutionId())
		switch {
		case have[k]:
			count.Skipped++
		case se.StartInDays < 0:
			// A past event is played on the service's own clock by its
			// LoadSeeds; the API rightly refuses to create one.
			count.Skipped++
			past++
		default:
			if err := sd.createEvent(e, se); err != nil {
				return count, fmt.Errorf("event %q: %w", se.TitleZh, err)
			}
			have[k] = true
			count.Created++
		}
		sd.prog.Step()
	}
	if past > 0 {
		count.Note = fmt.Sprintf("%d past events not loadable over the API", past)
	}
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there or in the past", count.Created, count.Skipped))
	return count, nil
}

func (sd *seeder) createEvent(e *talentv1.Event, se talent.SeedEvent) error {
	tal := sd.s.talent()
	var id string
	if err := sd.settle(func(ctx context.Context) error {
		resp, err := tal.CreateEvent(ctx, &talentv1.CreateEventRequest{Event: e})
		id = resp.GetEvent().GetId()
		return err
	}); err != nil {
		return err
	}
	reason := se.Reason
	if reason == "" {
		reason = "demo data"
	}
	publish := func(ctx context.Context) error {
		_, err := tal.PublishEvent(ctx, &talentv1.PublishEventRequest{Id: id})
		return err
	}
	switch strings.ToUpper(se.State) {
	case "DRAFT":
		return nil
	case "CANCELLED":
		return sd.call(func(ctx context.Context) error {
			_, err := tal.CancelEvent(ctx, &talentv1.CancelEventRequest{Id: id, Reason: reason})
			return err
		})
	case "CLOSED":
		if err := sd.settle(publish); err != nil {
			return err
		}
		return sd.call(func(ctx context.Context) error {
			_, err := tal.CloseEvent(ctx, &talentv1.CloseEventRequest{Id: id, Reason: reason})
			return err
		})
	}
	return sd.settle(publish)
}

// ----- talents -----

// talents creates the talent base's people; a person is known by name and
// organisation's credit code.
func (sd *seeder) talents() (seedCount, error) {
	count := seedCount{Kind: "talents"}
	var file talent.SeedFile
	if err := readSeed(talent.SeedPath, &file); err != nil {
		return count, err
	}
	tal := sd.s.talent()
	key := func(name, code string) string { return name + "@" + normCode(code) }
	have := map[string]bool{}
	req := &talentv1.ListTalentsRequest{PageSize: 100}
	for {
		var resp *talentv1.ListTalentsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = tal.ListTalents(ctx, req)
			return err
		})
		if err != nil {
			return count, fmt.Errorf("list talents: %w", err)
		}
		for _, p := range resp.GetTalents() {
			have[key(p.GetName(), p.GetOrganizationCreditCode())] = true
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	sd.prog.Start("talents", len(file.Talents))
	for _, st := range file.Talents {
		k := key(st.Name, st.CreditCode)
		if have[k] {
			count.Skipped++
			sd.prog.Step()
			continue
		}
		p := &talentv1.Talent{Name: st.Name, Organization: st.Organization, OrganizationCreditCode: st.CreditCode, Role: st.Role,
			Phone: st.Phone, Email: st.Email, Skills: st.Skills}
		for _, c := range st.Certifications {
			j, err := protoenum.Parse[talentv1.JobType](c.JobType)
			if err != nil {
				return count, fmt.Errorf("talent %q: %w", st.Name, err)
			}
			p.Certifications = append(p.Certifications, &talentv1.Certification{JobType: j, CertificateNumber: c.Number,
				IssueTime: timestamppb.New(today.AddDate(0, 0, -c.IssuedDaysAgo))})
		}
		if err := sd.call(func(ctx context.Context) error {
			_, err := tal.CreateTalent(ctx, &talentv1.CreateTalentRequest{Talent: p})
			return err
		}); err != nil {
			return count, fmt.Errorf("talent %q: %w", st.Name, err)
		}
		have[k] = true
		count.Created++
		sd.prog.Step()
	}
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there", count.Created, count.Skipped))
	return count, nil
}

// ----- reference prices -----

// prices sets the catalog's reference carbon prices from the seed file
// unless staff have set some already.
func (sd *seeder) prices() (seedCount, error) {
	count := seedCount{Kind: "reference prices"}
	var file catalog.SeedFile
	if err := readSeed(catalog.SeedPath, &file); err != nil {
		return count, err
	}
	if file.ReferencePrices.CEA == 0 && file.ReferencePrices.CCER == 0 {
		return count, nil
	}
	cat := sd.s.catalog()
	var current *catalogv1.ReferencePrices
	if err := sd.call(func(ctx context.Context) error {
		resp, err := cat.GetReferencePrices(ctx, &catalogv1.GetReferencePricesRequest{})
		current = resp.GetCurrent()
		return err
	}); err != nil {
		return count, fmt.Errorf("get reference prices: %w", err)
	}
	if current.GetVersion() != 0 {
		count.Skipped++
		return count, nil
	}
	if err := sd.call(func(ctx context.Context) error {
		_, err := cat.SetReferencePrices(ctx, &catalogv1.SetReferencePricesRequest{
			CeaYuanPerTonne: file.ReferencePrices.CEA, CcerYuanPerTonne: file.ReferencePrices.CCER, Source: file.ReferencePrices.Source,
		})
		return err
	}); err != nil {
		return count, fmt.Errorf("set reference prices: %w", err)
	}
	count.Created++
	return count, nil
}
