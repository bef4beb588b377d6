package main

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/talent"
)

// runSeed runs 'carbondesk seed --json args...' in-process and returns
// its counts.
func runSeed(t *testing.T, args ...string) []seedCount {
	t.Helper()
	out, errOut, err := runClient(t, append([]string{"seed", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("carbondesk seed %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	var counts []seedCount
	if err := json.Unmarshal([]byte(out), &counts); err != nil {
		t.Fatalf("seed --json: %v\n%s", err, out)
	}
	return counts
}

// seedKinds are the kinds of record 'carbondesk seed' reports, in order.
var seedKinds = []string{"institutions", "reference prices", "products", "talents", "events", "registrations", "demands", "match answers"}

// checkSeedAgain checks a second run against the first: it created
// nothing, skipped all the first had, and the desk holds the same.
func checkSeedAgain(t *testing.T, first, second []seedCount, firstSeen, secondSeen map[string]int) {
	t.Helper()
	var kinds []string
	for _, c := range first {
		kinds = append(kinds, c.Kind)
	}
	if diff := cmp.Diff(seedKinds, kinds); diff != "" {
		t.Fatalf("seed reports other kinds (-want +got):\n%s", diff)
	}
	for i, c := range second {
		if c.Created != 0 {
			t.Errorf("second run created %d %s, want 0", c.Created, c.Kind)
		}
		if c.Skipped != first[i].Created+first[i].Skipped {
			t.Errorf("second run skipped %d %s, want %d", c.Skipped, c.Kind, first[i].Created+first[i].Skipped)
		}
	}
	if diff := cmp.Diff(firstSeen, secondSeen); diff != "" {
		t.Errorf("the desk holds other records after the second run (-first +second):\n%s", diff)
	}
}

// wantSeeded checks what a first run on an empty desk loaded against the
// seed files and what the desk holds.
func wantSeeded(t *testing.T, first []seedCount, seen map[string]int) {
	t.Helper()
	created := map[string]int{}
	for _, c := range first {
		created[c.Kind] = c.Created
	}
	for _, kind := range []string{"institutions", "products", "demands", "talents", "events", "registrations"} {
		if created[kind] == 0 || seen[kind] != created[kind] {
			t.Errorf("first run created %d %s; the desk lists %d", created[kind], kind, seen[kind])
		}
	}
	// Every step of the demands' files played: the proposals are there
	// (the index had the products), and their answers.
	want := wantAnswers(t)
	if created["match answers"] != want.steps {
		t.Errorf("first run gave %d match answers, want the seed files' %d", created["match answers"], want.steps)
	}
	for state, n := range want.states {
		if seen["matches "+state] != n {
			t.Errorf("%d matches %s, want %d (the seed files' steps)", seen["matches "+state], state, n)
		}
	}
	// Registrations for the upcoming events: those of the season's file
	// whose events start in the future.
	var file talent.SeedFile
	readSeedFile(t, talent.SeedPath, &file)
	regs := 0
	for _, e := range file.Events {
		if e.StartInDays >= 0 && !strings.EqualFold(e.State, "DRAFT") {
			regs += len(e.Registrations)
		}
	}
	if created["registrations"] != regs {
		t.Errorf("first run filed %d registrations, want the %d of upcoming events", created["registrations"], regs)
	}
}

type answers struct {
	steps  int
	states map[string]int // match state → how many the steps leave there
}

// wantAnswers counts the steps of the demands' file, assuming each demand
// has proposals enough for its accepts and declines.
func wantAnswers(t *testing.T) answers {
	t.Helper()
	var file matching.SeedFile
	readSeedFile(t, matching.SeedPath, &file)
	a := answers{states: map[string]int{}}
	for _, d := range file.Demands {
		a.steps += d.Accept + d.Decline
		a.states["DECLINED"] += d.Decline
		if !d.Confirm || d.Accept == 0 {
			continue
		}
		a.steps++
		switch o := d.Outcome; {
		case o == nil:
			a.states["CONFIRMED"]++
		case o.Completed != nil:
			a.steps++
			a.states["COMPLETED"]++
		default:
			a.steps++
			a.states["FAILED"]++
		}
	}
	return a
}

func readSeedFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := fs.ReadFile(seeds.FS, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// A desk in one process, seeded twice: first with a staff token only (the
// answers and registrations given by staff), then again with the desk's
// key (as the organisations): the second run creates and answers nothing
// and the desk holds what it held.
func TestSeedTwice(t *testing.T) {
	d := startDesk(t)
	addr := map[string]string{"": d.addr}

	first := runSeed(t, "--server", d.addr, "--token", d.staff)
	t.Logf("first run: %+v", first)
	firstSeen := snapshot(t, addr, d.staff)
	wantSeeded(t, first, firstSeen)
	if firstSeen["registrations by their organisation"] != 0 {
		t.Errorf("%d registrations filed by an organisation; with a staff token only, staff file them", firstSeen["registrations by their organisation"])
	}

	second := runSeed(t, "--server", d.addr, "--token", d.staff, "--data", d.data)
	checkSeedAgain(t, first, second, firstSeen, snapshot(t, addr, d.staff))
}

// One service per process, as docker-compose.yml runs them (here in the
// test process, against an embedded NATS server and Redis): seed dials
// each service at its own flag (--server names nothing that answers),
// acts as the organisations with the shared development key, and a second
// run loads nothing.
func TestSeedOneServicePerProcess(t *testing.T) {
	ns := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})
	_, prefix := testenv.Redis(t)
	data := t.TempDir() // the development key they all trust
	addrs := map[string]string{}
	for _, service := range app.Services {
		cfg := app.Defaults()
		cfg.DataDir = data
		cfg.Services = []string{service}
		cfg.GRPCAddr = "127.0.0.1:0"
		cfg.HTTPAddr = ""
		cfg.NATSURL = ns.ClientURL()
		cfg.RedisURL = testenv.RedisURL()
		cfg.RedisKeyPrefix = prefix
		cfg.Seed = false
		cfg.LeaseTTL = 1500 * time.Millisecond
		cfg.ShutdownTimeout = 5 * time.Second
		r, _ := apptest.Start(t, cfg, nil, 30*time.Second)
		addrs[service] = r.GRPCAddr
	}
	args := []string{"--server", "127.0.0.1:1", "--data", data, "--timeout", "5s",
		"--registry", addrs["registry"], "--catalog", addrs["catalog"], "--matching", addrs["matching"], "--talent", addrs["talent"]}

	first := runSeed(t, args...)
	t.Logf("first run: %+v", first)
	staff, err := mintStaffToken(data, "")
	if err != nil {
		t.Fatal(err)
	}
	firstSeen := snapshot(t, addrs, staff)
	wantSeeded(t, first, firstSeen)
	if n, all := firstSeen["registrations by their organisation"], firstSeen["registrations of an organisation's people"]; n != all || n == 0 {
		t.Errorf("%d of %d registrations of an organisation's people filed by that organisation; want all (seed holds the key)", n, all)
	}
	for _, c := range first {
		if c.Kind == "match answers" && c.Note != "" {
			t.Errorf("match answers: note %q; the organisations should give them", c.Note)
		}
	}

	second := runSeed(t, args...)
	checkSeedAgain(t, first, second, firstSeen, snapshot(t, addrs, staff))
}

// snapshot counts, as staff, every institution, product, demand, event,
// talent and registration, and the matches by state. addrs holds each
// service's address, or "" for all.
func snapshot(t *testing.T, addrs map[string]string, staff string) map[string]int {
	t.Helper()
	conns := map[string]*grpc.ClientConn{}
	dial := func(service string) *grpc.ClientConn {
		addr, ok := addrs[service]
		if !ok {
			addr = addrs[""]
		}
		if cc, ok := conns[addr]; ok {
			return cc
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		conns[addr] = cc
		return cc
	}
	reg := registryv1.NewRegistryServiceClient(dial("registry"))
	cat := catalogv1.NewCatalogServiceClient(dial("catalog"))
	mat := matchingv1.NewMatchingServiceClient(dial("matching"))
	tal := talentv1.NewTalentServiceClient(dial("talent"))
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+staff)
	got := map[string]int{}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for tok := ""; ; {
		r, err := reg.ListInstitutions(ctx, &registryv1.ListInstitutionsRequest{PageSize: 100, PageToken: tok})
		check(err)
		got["institutions"] += len(r.GetInstitutions())
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	for tok := ""; ; {
		r, err := cat.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 100, PageToken: tok})
		check(err)
		got["products"] += len(r.GetProducts())
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	for tok := ""; ; {
		r, err := mat.ListDemands(ctx, &matchingv1.ListDemandsRequest{PageSize: 100, PageToken: tok})
		check(err)
		got["demands"] += len(r.GetDemands())
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	for tok := ""; ; {
		r, err := mat.ListMatches(ctx, &matchingv1.ListMatchesRequest{PageSize: 100, PageToken: tok})
		check(err)
		for _, m := range r.GetMatches() {
			got["matches "+protoenum.Key(m.GetState())]++
		}
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	for tok := ""; ; {
		r, err := tal.ListEvents(ctx, &talentv1.ListEventsRequest{PageSize: 100, PageToken: tok})
		check(err)
		got["events"] += len(r.GetEvents())
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	orgOf := map[string]string{} // talent id → organisation
	for tok := ""; ; {
		r, err := tal.ListTalents(ctx, &talentv1.ListTalentsRequest{PageSize: 100, PageToken: tok})
		check(err)
		got["talents"] += len(r.GetTalents())
		for _, p := range r.GetTalents() {
			orgOf[p.GetId()] = p.GetOrganizationCreditCode()
		}
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	for tok := ""; ; {
		r, err := tal.ListRegistrations(ctx, &talentv1.ListRegistrationsRequest{PageSize: 100, PageToken: tok})
		check(err)
		got["registrations"] += len(r.GetRegistrations())
		for _, reg := range r.GetRegistrations() {
			if org := orgOf[reg.GetAttendee().GetTalentId()]; org != "" {
				got["registrations of an organisation's people"]++
				if reg.GetRegistrantOrg() == org {
					got["registrations by their organisation"]++
				}
			}
		}
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	return got
}
