package main

// 'carbondesk seed' loads the demo data of seeds/ into a running desk
// through its public gRPC API, as the people it names would type it in:
// staff register the records, the organisations answer and register their
// people. Unlike the services' own LoadSeeds (which run inside the process
// on first start), it needs nothing but the services' addresses and a
// staff token (plus the signing key, to act as the organisations), and it
// is safe to run again: each record is looked up by its natural key first
// and skipped when it is there, and each step taken only while it is still
// to be taken.

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
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
		addrs   seedAddrs
		dataDir string
		keyFile string
		wait    time.Duration
	)
	cmd := nounCmd("seed", "Load the demo data of seeds/ into a running desk over its API (safe to run twice)", c)
	cmd.Long = `Loads the demo data embedded from seeds/ into a running desk through its
public gRPC API: institutions registered and reviewed to their state, the
reference carbon prices, products created for their institutions and
published, paused or retired, the talent profiles, upcoming talent events
created, published, registered for and closed or cancelled, and enterprises'
demands posted, their best-ranked proposals accepted or declined, one
confirmed and its outcome reported, as each seed file says.

The services may run in one process (--server) or each in its own (--registry,
--catalog, --matching, --talent; each defaults to --server), as with
'carbondesk serve' and docker-compose.yml.

It is safe to run twice: every record is looked up first by its natural key
(institution: credit code; product: institution and name; talent: name and
organisation; event: title and host; registration: event and talent;
demand: enterprise and description) and skipped when it is there, and a
proposal is answered only while it is still PROPOSED. Past events (with their
registrations and attendance) are not loaded: the API creates no event that
has started; the desk's own first-start seeding plays them on a clock of its
own.

Staff register institutions, products, talents, events and demands. Answers
and registrations are given as the organisation they belong to (the
institution accepts, declines and reports; the enterprise confirms; a
person's organisation registers them), with tokens minted for it by the key
that signs the staff token: the development key in --data, or --key. Given
only a --token (or $CARBONDESK_TOKEN) and neither --key nor --data, staff
give them instead, which the desk allows.

Without --token, --token-file or $CARBONDESK_TOKEN it mints a short-lived
staff token itself, with the development key in --data (as 'carbondesk
token' does) or with --key.`
	cmd.Example = `  carbondesk seed                          # desk on 127.0.0.1:7070, dev key in ./data
  carbondesk seed --server desk:7070 --token "$STAFF_TOKEN" --json
  carbondesk seed --registry registry:7070 --catalog catalog:7070 \
    --matching matching:7070 --talent talent:7070 --data /data   # one service per process`
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		staff, err := c.bearer()
		if err != nil && c.tokenFile != "" {
			return err
		}
		given := err == nil
		var key ed25519.PrivateKey
		switch {
		case keyFile != "":
			if key, err = auth.LoadPrivateKey(keyFile); err != nil {
				return fmt.Errorf("seed: --key: %w", err)
			}
		case !given:
			// The staff token is minted with the data folder's key (made
			// on first use, as 'carbondesk token' does).
			if key, _, err = auth.LoadOrCreateDevKey(dataDir); err != nil {
				return fmt.Errorf("seed: no token given, and minting one failed: %w", err)
			}
		case cmd.Flags().Changed("data"):
			if key, err = auth.LoadPrivateKey(filepath.Join(dataDir, auth.DevKeyFile)); err != nil {
				return fmt.Errorf("seed: --data: the development key: %w", err)
			}
		}
		var mint func(auth.Caller) (string, error)
		if key != nil {
			iss := auth.Issuer{Key: key, Issuer: auth.DefaultIssuer, Audience: auth.DefaultAudience}
			mint = func(who auth.Caller) (string, error) { return iss.Mint(who, seedTokenTTL) }
		}
		if !given {
			if staff, err = mint(auth.Caller{Subject: seedSubject, Role: auth.Staff}); err != nil {
				return fmt.Errorf("seed: no token given, and minting one failed: %w", err)
			}
		}
		sd, closeConns, err := newSeeder(cmd, c, addrs, staff, mint)
		if err != nil {
			return err
		}
		defer closeConns()
		sd.wait = wait
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
	f.StringVar(&addrs.registry, "registry", "", "gRPC address of the registry service (default: --server)")
	f.StringVar(&addrs.catalog, "catalog", "", "gRPC address of the catalog service (default: --server)")
	f.StringVar(&addrs.matching, "matching", "", "gRPC address of the matching service (default: --server)")
	f.StringVar(&addrs.talent, "talent", "", "gRPC address of the talent service (default: --server)")
	f.StringVar(&dataDir, "data", "data", "data folder of the desk, whose development key mints the staff token when none is given, and the organisations' tokens")
	f.StringVar(&keyFile, "key", "", "mint the tokens with this Ed25519 private key (PKCS#8 PEM) instead")
	f.DurationVar(&wait, "wait", 30*time.Second, "how long to wait for a service to see what another just did (an approved institution)")
	return cmd
}

// seedSubject is the subject of the tokens 'carbondesk seed' mints.
const seedSubject = "carbondesk-seed"

// seedTokenTTL bounds the tokens 'carbondesk seed' mints; a run takes
// seconds, and tokens are minted again when half of it is gone.
const seedTokenTTL = 10 * time.Minute

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
	return iss.Mint(auth.Caller{Subject: seedSubject, Role: auth.Staff}, seedTokenTTL)
}

// seedAddrs are the per-service addresses; empty: --server.
type seedAddrs struct{ registry, catalog, matching, talent string }

// seedCount is what one kind of record came to.
type seedCount struct {
	Kind    string `json:"kind"`
	Created int    `json:"created"`
	Skipped int    `json:"skipped"`
	Note    string `json:"note,omitempty"`
}

// seeder loads the files in order, each phase using what the previous
// created (institution IDs by credit code, talent IDs by key).
type seeder struct {
	ctx     context.Context // the command's, without a token
	timeout time.Duration
	reg     registryv1.RegistryServiceClient
	cat     catalogv1.CatalogServiceClient
	mat     matchingv1.MatchingServiceClient
	tal     talentv1.TalentServiceClient
	prog    *cli.Progress
	wait    time.Duration

	staff  string                             // the staff bearer token
	mint   func(auth.Caller) (string, error)  // nil: staff act for organisations
	tokens map[auth.Caller]mintedToken        // organisations' tokens, by caller
	insts  map[string]*registryv1.Institution // by credit code
	people map[string]*talentv1.Talent        // by seed key
}

type mintedToken struct {
	token string
	at    time.Time
}

// newSeeder dials each service at its address (one connection per
// distinct address) and returns the seeder and the step closing them.
func newSeeder(cmd *cobra.Command, c *conn, a seedAddrs, staff string, mint func(auth.Caller) (string, error)) (*seeder, func(), error) {
	conns := map[string]*grpc.ClientConn{}
	closeAll := func() {
		for _, cc := range conns {
			_ = cc.Close()
		}
	}
	dial := func(flag, addr string) (*grpc.ClientConn, error) {
		if addr == "" {
			flag, addr = "server", c.server
		}
		if cc, ok := conns[addr]; ok {
			return cc, nil
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", flag, addr, err)
		}
		conns[addr] = cc
		return cc, nil
	}
	sd := &seeder{ctx: cmd.Context(), timeout: c.timeout, prog: cli.NewProgress(cmd.ErrOrStderr()),
		staff: staff, mint: mint, tokens: map[auth.Caller]mintedToken{},
		insts: map[string]*registryv1.Institution{}, people: map[string]*talentv1.Talent{}}
	for _, svc := range []struct {
		flag, addr string
		set        func(*grpc.ClientConn)
	}{
		{"registry", a.registry, func(cc *grpc.ClientConn) { sd.reg = registryv1.NewRegistryServiceClient(cc) }},
		{"catalog", a.catalog, func(cc *grpc.ClientConn) { sd.cat = catalogv1.NewCatalogServiceClient(cc) }},
		{"matching", a.matching, func(cc *grpc.ClientConn) { sd.mat = matchingv1.NewMatchingServiceClient(cc) }},
		{"talent", a.talent, func(cc *grpc.ClientConn) { sd.tal = talentv1.NewTalentServiceClient(cc) }},
	} {
		cc, err := dial(svc.flag, svc.addr)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		svc.set(cc)
	}
	return sd, closeAll, nil
}

func (sd *seeder) run() ([]seedCount, error) {
	var out []seedCount
	one := func(phase func() (seedCount, error)) func() ([]seedCount, error) {
		return func() ([]seedCount, error) {
			c, err := phase()
			return []seedCount{c}, err
		}
	}
	// The reference prices come before the products and demands, as in the
	// desk's own seeding: collateral is valued at them. The demands come
	// last, so that matching's index has had the products' events.
	for _, phase := range []func() ([]seedCount, error){one(sd.institutions), one(sd.prices), one(sd.products),
		one(sd.talents), sd.events, sd.demands} {
		c, err := phase()
		out = append(out, c...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// acting says who gives the organisations' answers and registrations.
func (sd *seeder) acting() string {
	if sd.mint == nil {
		return "given by staff (no key to mint the organisations' tokens: give --key or --data)"
	}
	return ""
}

// bearer is the token to call as who: staff's for staff (and for everyone
// when the seeder holds no key), else one minted for who.
func (sd *seeder) bearer(who auth.Caller) (string, error) {
	if who.Role == auth.Staff || who.Org == "" || sd.mint == nil {
		return sd.staff, nil
	}
	who.Subject = seedSubject
	if t, ok := sd.tokens[who]; ok && time.Since(t.at) < seedTokenTTL/2 {
		return t.token, nil
	}
	tok, err := sd.mint(who)
	if err != nil {
		return "", fmt.Errorf("mint a token for %s %s: %w", who.Role, who.Org, err)
	}
	sd.tokens[who] = mintedToken{token: tok, at: time.Now()}
	return tok, nil
}

// call runs one RPC as staff; see callAs.
func (sd *seeder) call(rpc func(ctx context.Context) error) error {
	return sd.callAs(auth.Caller{Role: auth.Staff}, rpc)
}

// callAs runs one RPC as who with the --timeout deadline, slowing down and
// trying again while the desk says the caller writes too fast.
func (sd *seeder) callAs(who auth.Caller, rpc func(ctx context.Context) error) error {
	tok, err := sd.bearer(who)
	if err != nil {
		return err
	}
	base := metadata.AppendToOutgoingContext(sd.ctx, "authorization", "Bearer "+tok)
	for {
		ctx, cancel := context.WithTimeout(base, sd.timeout)
		err := rpc(ctx)
		cancel()
		if status.Code(err) == codes.Unauthenticated && tok != sd.staff {
			return fmt.Errorf("the desk refuses the token minted for %s %s with the key of --data or --key: is it the key the desk trusts? (%w)", who.Role, who.Org, err)
		}
		if status.Code(err) != codes.ResourceExhausted {
			return err
		}
		select {
		case <-sd.ctx.Done():
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
		case <-sd.ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// orgCaller is the caller of an organisation: an institution when the
// registry holds its code, else an enterprise; staff for none.
func (sd *seeder) orgCaller(code string) auth.Caller {
	switch {
	case code == "":
		return auth.Caller{Role: auth.Staff}
	case sd.insts[normCode(code)] != nil:
		return auth.Caller{Role: auth.Institution, Org: normCode(code)}
	}
	return auth.Caller{Role: auth.Enterprise, Org: normCode(code)}
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
			resp, err = sd.reg.ListInstitutions(ctx, req)
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
	reg := sd.reg
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
	cat := sd.cat
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
	cat := sd.cat
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

// ----- demands and their answers -----

// demands posts each seeded demand not there yet, as staff for its
// enterprise, then plays its steps on its proposals (see answer).
func (sd *seeder) demands() ([]seedCount, error) {
	count := seedCount{Kind: "demands", Note: "posted by staff for the enterprise"}
	answers := seedCount{Kind: "match answers", Note: sd.acting()}
	out := func() []seedCount { return []seedCount{count, answers} }
	var file matching.SeedFile
	if err := readSeed(matching.SeedPath, &file); err != nil {
		return out(), err
	}
	ents := map[string]matching.SeedEnterprise{}
	for _, e := range file.Enterprises {
		ents[e.Key] = e
	}
	have := map[[2]string]string{} // enterprise credit code + description → demand id
	req := &matchingv1.ListDemandsRequest{PageSize: 100}
	for {
		var resp *matchingv1.ListDemandsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = sd.mat.ListDemands(ctx, req)
			return err
		})
		if err != nil {
			return out(), fmt.Errorf("list demands: %w", err)
		}
		for _, d := range resp.GetDemands() {
			have[[2]string{normCode(d.GetEnterpriseCreditCode()), d.GetDescription()}] = d.GetId()
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}

	sd.prog.Start("demands", len(file.Demands))
	for _, sdm := range file.Demands {
		e, ok := ents[sdm.Enterprise]
		if !ok {
			return out(), fmt.Errorf("demand %q: unknown enterprise %q", sdm.Description, sdm.Enterprise)
		}
		k := [2]string{normCode(e.CreditCode), sdm.Description}
		var (
			demand  *matchingv1.Demand
			matches []*matchingv1.Match
		)
		if id, ok := have[k]; ok {
			if err := sd.call(func(ctx context.Context) error {
				resp, err := sd.mat.GetDemand(ctx, &matchingv1.GetDemandRequest{Id: id})
				demand, matches = resp.GetDemand(), resp.GetMatches()
				return err
			}); err != nil {
				return out(), fmt.Errorf("demand %q: %w", sdm.Description, err)
			}
			count.Skipped++
		} else {
			d, err := demandProto(e, sdm)
			if err != nil {
				return out(), fmt.Errorf("demand %q: %w", sdm.Description, err)
			}
			if err := sd.call(func(ctx context.Context) error {
				resp, err := sd.mat.PostDemand(ctx, &matchingv1.PostDemandRequest{Demand: d})
				demand, matches = resp.GetDemand(), resp.GetMatches()
				return err
			}); err != nil {
				return out(), fmt.Errorf("demand %q: %w", sdm.Description, err)
			}
			have[k] = demand.GetId()
			count.Created++
		}
		if err := sd.answer(sdm, demand, matches, &answers); err != nil {
			return out(), fmt.Errorf("demand %q: %w", sdm.Description, err)
		}
		sd.prog.Step()
	}
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there; %d answers given, %d already given",
		count.Created, count.Skipped, answers.Created, answers.Skipped))
	return out(), nil
}

func demandProto(e matching.SeedEnterprise, sdm matching.SeedDemand) (*matchingv1.Demand, error) {
	d := &matchingv1.Demand{
		EnterpriseCreditCode: e.CreditCode, EnterpriseName: e.Name, EtsCovered: e.ETSCovered, Region: e.Region,
		AmountYuan: sdm.AmountYuan, TermMonths: sdm.TermMonths, CeaTonnes: sdm.CEATonnes, CcerTonnes: sdm.CCERTonnes,
		AnnualEmissionsTonnes: e.Emissions, Description: sdm.Description,
		Deadline: timestamppb.New(time.Now().Add(time.Duration(sdm.DeadlineDays) * 24 * time.Hour)),
	}
	var err error
	if d.Sector, err = protoenum.Parse[catalogv1.Sector](e.Sector); err != nil {
		return nil, err
	}
	if d.Zone, err = protoenum.Parse[registryv1.Zone](e.Zone); err != nil {
		return nil, err
	}
	if d.Kind, err = protoenum.Parse[catalogv1.DemandKind](sdm.Kind); err != nil {
		return nil, err
	}
	if d.Categories, err = parseEnums[catalogv1.ProductCategory](sdm.Categories); err != nil {
		return nil, err
	}
	return d, nil
}

// seedDeclineReason is the reason seeded declines give, as the desk's own
// seeding does.
const seedDeclineReason = "超出本行授信范围"

// answer plays a seeded demand's steps, as the desk's own seeding does, on
// its proposals in rank order (those made when it was posted: not the
// product side's later ones, nor re-offers): the first Accept accepted and
// the next Decline declined by their institutions, the best accepted one
// confirmed by the enterprise and its outcome reported by the institution.
// Each step is taken only while its match is still where the step starts
// (PROPOSED, ACCEPTED, CONFIRMED), and counted as already given otherwise,
// so a second run, or a run after the desk's own seeding, answers nothing
// and counts the same steps.
func (sd *seeder) answer(sdm matching.SeedDemand, demand *matchingv1.Demand, all []*matchingv1.Match, count *seedCount) error {
	var ranked []*matchingv1.Match
	for _, m := range all {
		if !m.GetReverse() && !m.GetReoffer() {
			ranked = append(ranked, m)
		}
	}
	slices.SortStableFunc(ranked, func(a, b *matchingv1.Match) int { return cmp.Compare(a.GetRank(), b.GetRank()) })
	inst := func(m *matchingv1.Match) auth.Caller {
		return auth.Caller{Role: auth.Institution, Org: normCode(m.GetInstitutionCreditCode())}
	}
	var accepted []*matchingv1.Match
	for i, m := range ranked {
		switch {
		case i < sdm.Accept:
			if m.GetState() == matchingv1.MatchState_MATCH_STATE_PROPOSED {
				if err := sd.callAs(inst(m), func(ctx context.Context) error {
					resp, err := sd.mat.AcceptMatch(ctx, &matchingv1.AcceptMatchRequest{Id: m.GetId(), Version: m.GetVersion()})
					m = cmpOr(resp.GetMatch(), m)
					return err
				}); err != nil {
					return fmt.Errorf("accept match %s: %w", m.GetId(), err)
				}
				count.Created++
			} else {
				count.Skipped++
			}
			switch m.GetState() {
			case matchingv1.MatchState_MATCH_STATE_ACCEPTED, matchingv1.MatchState_MATCH_STATE_CONFIRMED,
				matchingv1.MatchState_MATCH_STATE_COMPLETED, matchingv1.MatchState_MATCH_STATE_FAILED:
				accepted = append(accepted, m)
			}
		case i < sdm.Accept+sdm.Decline:
			if m.GetState() != matchingv1.MatchState_MATCH_STATE_PROPOSED {
				count.Skipped++
				continue
			}
			if err := sd.callAs(inst(m), func(ctx context.Context) error {
				_, err := sd.mat.DeclineMatch(ctx, &matchingv1.DeclineMatchRequest{Id: m.GetId(), Version: m.GetVersion(), Reason: seedDeclineReason})
				return err
			}); err != nil {
				return fmt.Errorf("decline match %s: %w", m.GetId(), err)
			}
			count.Created++
		}
	}
	if !sdm.Confirm || len(accepted) == 0 {
		return nil
	}

	chosen := accepted[0]
	if id := demand.GetConfirmedMatchId(); id != "" {
		// Confirmed already (this match or, by someone since, another).
		for _, m := range append(accepted, all...) {
			if m.GetId() == id {
				chosen = m
				break
			}
		}
		count.Skipped++
	} else if chosen.GetState() == matchingv1.MatchState_MATCH_STATE_ACCEPTED {
		ent := auth.Caller{Role: auth.Enterprise, Org: normCode(demand.GetEnterpriseCreditCode())}
		if err := sd.callAs(ent, func(ctx context.Context) error {
			resp, err := sd.mat.ConfirmMatch(ctx, &matchingv1.ConfirmMatchRequest{Id: chosen.GetId(), Version: chosen.GetVersion()})
			chosen = cmpOr(resp.GetMatch(), chosen)
			return err
		}); err != nil {
			return fmt.Errorf("confirm match %s: %w", chosen.GetId(), err)
		}
		count.Created++
	} else {
		count.Skipped++
	}

	o := sdm.Outcome
	if o == nil {
		return nil
	}
	switch chosen.GetState() {
	case matchingv1.MatchState_MATCH_STATE_CONFIRMED:
	case matchingv1.MatchState_MATCH_STATE_COMPLETED, matchingv1.MatchState_MATCH_STATE_FAILED:
		count.Skipped++
		return nil
	default:
		return nil
	}
	req := &matchingv1.ReportOutcomeRequest{Id: chosen.GetId(), Version: chosen.GetVersion()}
	if c := o.Completed; c != nil {
		req.Result = &matchingv1.ReportOutcomeRequest_Completed{Completed: &matchingv1.Deal{
			AmountYuan: c.AmountYuan, RateBps: c.RateBps, TermMonths: c.TermMonths, Tonnes: c.Tonnes, Note: c.Note}}
	} else {
		reason, err := protoenum.Parse[matchingv1.FailureReason](o.Failed)
		if err != nil {
			return fmt.Errorf("outcome: %w", err)
		}
		req.Result = &matchingv1.ReportOutcomeRequest_Failed{Failed: &matchingv1.Failure{Reason: reason, Note: o.Note}}
	}
	if err := sd.callAs(inst(chosen), func(ctx context.Context) error {
		_, err := sd.mat.ReportOutcome(ctx, req)
		return err
	}); err != nil {
		return fmt.Errorf("report the outcome of match %s: %w", chosen.GetId(), err)
	}
	count.Created++
	return nil
}

// ----- talent events and registrations -----

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

// events creates each upcoming seeded event not there yet, publishes it,
// files its registrations and takes it to its state; for an event there
// already, it files the registrations it lacks while it takes them.
func (sd *seeder) events() ([]seedCount, error) {
	count := seedCount{Kind: "events"}
	regs := seedCount{Kind: "registrations", Note: sd.acting()}
	out := func() []seedCount { return []seedCount{count, regs} }
	var file talent.SeedFile
	if err := readSeed(talent.SeedPath, &file); err != nil {
		return out(), err
	}
	// An event's natural key is its title and host: the season's start
	// dates are relative to the day seed runs, so a second run on a later
	// day must still find the events of the first.
	have := map[string]*talentv1.Event{}
	eventKey := func(title, hostID string) string { return title + "@" + hostID }
	req := &talentv1.ListEventsRequest{PageSize: 100}
	for {
		var resp *talentv1.ListEventsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = sd.tal.ListEvents(ctx, req)
			return err
		})
		if err != nil {
			return out(), fmt.Errorf("list events: %w", err)
		}
		for _, e := range resp.GetEvents() {
			have[eventKey(e.GetTitleZh(), e.GetHostInstitutionId())] = e
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}

	now := time.Now().In(beijing)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, beijing)
	past, pastRegs, shut := 0, 0, 0
	sd.prog.Start("events", len(file.Events))
	for _, se := range file.Events {
		e, err := eventProto(se, day)
		if err != nil {
			return out(), fmt.Errorf("event %q: %w", se.TitleZh, err)
		}
		if se.HostCode != "" {
			in, ok := sd.insts[normCode(se.HostCode)]
			if !ok {
				return out(), fmt.Errorf("event %q: host %s is not in the registry", se.TitleZh, se.HostCode)
			}
			e.HostInstitutionId = in.GetId()
		}
		k := eventKey(se.TitleZh, e.GetHostInstitutionId())
		switch ev := have[k]; {
		case ev != nil:
			count.Skipped++
			n, err := sd.registrations(ev, se, &regs)
			if err != nil {
				return out(), fmt.Errorf("event %q: %w", se.TitleZh, err)
			}
			shut += n
		case se.StartInDays < 0:
			// A past event is played on the service's own clock by its
			// LoadSeeds; the API rightly refuses to create one.
			count.Skipped++
			past++
			pastRegs += len(se.Registrations)
		default:
			ev, err := sd.createEvent(e, se, &regs)
			if err != nil {
				return out(), fmt.Errorf("event %q: %w", se.TitleZh, err)
			}
			have[k] = ev
			count.Created++
		}
		sd.prog.Step()
	}
	notes := []string{regs.Note}
	if past > 0 {
		count.Note = fmt.Sprintf("%d past events not loadable over the API", past)
		notes = append(notes, fmt.Sprintf("%d registrations (and their attendance) of past events not loadable over the API", pastRegs))
	}
	if shut > 0 {
		notes = append(notes, fmt.Sprintf("%d missing from events that no longer take registrations", shut))
	}
	regs.Note = strings.Join(slices.DeleteFunc(notes, func(n string) bool { return n == "" }), "; ")
	sd.prog.Finish(fmt.Sprintf("%d created, %d already there or in the past; %d registrations filed, %d already there",
		count.Created, count.Skipped, regs.Created, regs.Skipped))
	return out(), nil
}

// createEvent creates, publishes, registers for and closes or cancels one
// event, as its seed says.
func (sd *seeder) createEvent(e *talentv1.Event, se talent.SeedEvent, regs *seedCount) (*talentv1.Event, error) {
	var ev *talentv1.Event
	if err := sd.settle(func(ctx context.Context) error {
		resp, err := sd.tal.CreateEvent(ctx, &talentv1.CreateEventRequest{Event: e})
		ev = resp.GetEvent()
		return err
	}); err != nil {
		return nil, err
	}
	if strings.EqualFold(se.State, "DRAFT") {
		return ev, nil
	}
	if err := sd.settle(func(ctx context.Context) error {
		resp, err := sd.tal.PublishEvent(ctx, &talentv1.PublishEventRequest{Id: ev.GetId()})
		ev = cmpOr(resp.GetEvent(), ev)
		return err
	}); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if _, err := sd.registrations(ev, se, regs); err != nil {
		return nil, err
	}
	reason := se.Reason
	if reason == "" {
		reason = "demo data"
	}
	var err error
	switch strings.ToUpper(se.State) {
	case "CANCELLED":
		err = sd.call(func(ctx context.Context) error {
			resp, err := sd.tal.CancelEvent(ctx, &talentv1.CancelEventRequest{Id: ev.GetId(), Reason: reason})
			ev = cmpOr(resp.GetEvent(), ev)
			return err
		})
	case "CLOSED":
		err = sd.call(func(ctx context.Context) error {
			resp, err := sd.tal.CloseEvent(ctx, &talentv1.CloseEventRequest{Id: ev.GetId(), Reason: reason})
			ev = cmpOr(resp.GetEvent(), ev)
			return err
		})
	}
	return ev, err
}

// registrations files se's registrations for ev that it does not hold yet
// (a person is known by talent profile, else by name and phone or e-mail),
// in the seed's order, each by the organisation of the person's profile. It
// returns how many are missing because ev no longer takes registrations.
func (sd *seeder) registrations(ev *talentv1.Event, se talent.SeedEvent, count *seedCount) (int, error) {
	if len(se.Registrations) == 0 {
		return 0, nil
	}
	held := map[string]bool{}
	personKeys := func(a *talentv1.Attendee) []string {
		if a.GetTalentId() != "" {
			return []string{"t:" + a.GetTalentId()}
		}
		var keys []string
		if a.GetPhone() != "" {
			keys = append(keys, "p:"+a.GetName()+"|"+a.GetPhone())
		}
		if a.GetEmail() != "" {
			keys = append(keys, "e:"+a.GetName()+"|"+strings.ToLower(a.GetEmail()))
		}
		return keys
	}
	req := &talentv1.ListRegistrationsRequest{EventId: ev.GetId(), PageSize: 100}
	for {
		var resp *talentv1.ListRegistrationsResponse
		if err := sd.call(func(ctx context.Context) (err error) {
			resp, err = sd.tal.ListRegistrations(ctx, req)
			return err
		}); err != nil {
			return 0, fmt.Errorf("list registrations: %w", err)
		}
		for _, r := range resp.GetRegistrations() {
			for _, k := range personKeys(r.GetAttendee()) {
				held[k] = true
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	open := ev.GetState() == talentv1.EventState_EVENT_STATE_PUBLISHED && time.Now().Before(ev.GetRegistrationDeadline().AsTime())
	shut := 0
	for i, r := range se.Registrations {
		a := &talentv1.Attendee{Name: r.Name, Organization: r.Organization, Role: r.Role, Phone: r.Phone, Email: r.Email}
		who := auth.Caller{Role: auth.Staff}
		if r.Talent != "" {
			p := sd.people[r.Talent]
			if p == nil {
				return shut, fmt.Errorf("registration %d names talent %q, which the seeds do not hold", i, r.Talent)
			}
			a.TalentId = p.GetId()
			who = sd.orgCaller(p.GetOrganizationCreditCode())
		}
		if slices.ContainsFunc(personKeys(a), func(k string) bool { return held[k] }) {
			count.Skipped++
			continue
		}
		if !open {
			shut++
			continue
		}
		err := sd.callAs(who, func(ctx context.Context) error {
			_, err := sd.tal.RegisterForEvent(ctx, &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: a})
			return err
		})
		switch {
		case status.Code(err) == codes.AlreadyExists:
			count.Skipped++ // filed under another key (phone, e-mail)
		case err != nil:
			return shut, fmt.Errorf("registration %d: %w", i, err)
		default:
			count.Created++
		}
	}
	return shut, nil
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
	key := func(name, code string) string { return name + "@" + normCode(code) }
	have := map[string]*talentv1.Talent{}
	req := &talentv1.ListTalentsRequest{PageSize: 100}
	for {
		var resp *talentv1.ListTalentsResponse
		err := sd.call(func(ctx context.Context) (err error) {
			resp, err = sd.tal.ListTalents(ctx, req)
			return err
		})
		if err != nil {
			return count, fmt.Errorf("list talents: %w", err)
		}
		for _, p := range resp.GetTalents() {
			have[key(p.GetName(), p.GetOrganizationCreditCode())] = p
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	sd.prog.Start("talents", len(file.Talents))
	for _, st := range file.Talents {
		k := key(st.Name, st.CreditCode)
		if p, ok := have[k]; ok {
			sd.people[st.Key] = p
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
			resp, err := sd.tal.CreateTalent(ctx, &talentv1.CreateTalentRequest{Talent: p})
			p = cmpOr(resp.GetTalent(), p)
			return err
		}); err != nil {
			return count, fmt.Errorf("talent %q: %w", st.Name, err)
		}
		have[k] = p
		sd.people[st.Key] = p
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
	cat := sd.cat
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
