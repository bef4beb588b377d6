package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
)

// desk is a whole carbondesk (app.Run) started inside the test process on
// a fresh data folder with no demo data, and a staff token it accepts.
type desk struct {
	addr  string
	data  string
	staff string
}

func startDesk(t *testing.T) *desk {
	t.Helper()
	return startDeskSeeded(t, false)
}

// startDeskSeeded is startDesk, with the desk's own first-start demo data
// loaded when seed is set.
func startDeskSeeded(t *testing.T, seed bool) *desk {
	t.Helper()
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = ""
	cfg.Seed = seed
	cfg.ShutdownTimeout = 5 * time.Second

	r, _ := apptest.Start(t, cfg, nil, 60*time.Second)
	tok, err := mintStaffToken(cfg.DataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	return &desk{addr: r.GRPCAddr, data: cfg.DataDir, staff: tok}
}

// cli runs a client command in-process as 'carbondesk args...' with the
// desk's address and the staff token, and returns its stdout.
func (d *desk) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runClient(t, append(args, "--server", d.addr, "--token", d.staff)...)
	return out, err
}

// runClient runs 'carbondesk args...' (the client commands) in-process and
// returns its stdout and stderr.
func runClient(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "carbondesk", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(clientCommands()...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func (d *desk) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := d.cli(t, args...)
	if err != nil {
		t.Fatalf("carbondesk %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestClientVerbs(t *testing.T) {
	d := startDesk(t)

	// Register with flags: the table shows the Chinese name, columns aligned.
	out := d.mustCLI(t, "institutions", "register", "--credit-code", "91420106MA60H1TDF5",
		"--name-zh", "楚江碳金融银行武昌分行", "--name-en", "Chujiang Bank", "--kind", "bank",
		"--tier", "branch", "--zone", "finance_axis", "--address", "武汉市武昌区中南路 88 号",
		"--contact-name", "王晓岚", "--contact-phone", "027-8100 1000", "--contact-email", "desk01@chujiang.example")
	if !strings.Contains(out, "楚江碳金融银行武昌分行") || !strings.Contains(out, "PENDING") {
		t.Fatalf("register printed:\n%s", out)
	}

	// --json prints the response as protojson.
	out = d.mustCLI(t, "institutions", "list", "--json")
	var list registryv1.ListInstitutionsResponse
	if err := protojson.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json is not a ListInstitutionsResponse: %v\n%s", err, out)
	}
	if len(list.GetInstitutions()) != 1 {
		t.Fatalf("list --json: %d institutions, want 1", len(list.GetInstitutions()))
	}
	id := list.GetInstitutions()[0].GetId()

	out = d.mustCLI(t, "institutions", "approve", id, "--reason", "licences checked")
	if !strings.Contains(out, "ACTIVE") {
		t.Fatalf("approve printed:\n%s", out)
	}

	// The table: a header and one row, the STATE column starting at the
	// same display column in both although the name is Chinese.
	out = d.mustCLI(t, "institutions", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("list printed %d lines, want 2:\n%s", len(lines), out)
	}
	if got, want := displayIndex(lines[1], "ACTIVE"), displayIndex(lines[0], "STATE"); got != want {
		t.Errorf("STATE column at cell %d in the row, %d in the header:\n%s", got, want, out)
	}

	// A bad request: the code, the message and each field violation.
	_, err := d.cli(t, "institutions", "register", "--credit-code", "not-a-code", "--name-zh", "某机构")
	if err == nil {
		t.Fatal("register with a bad credit code succeeded")
	}
	for _, want := range []string{"register institution", "InvalidArgument", "credit_code"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Another noun, through --file.
	req := `{"institutionId": "` + id + `", "product": {"nameZh": "碳排放配额质押贷", "category": "PRODUCT_CATEGORY_CARBON_PLEDGE",
		"demandKinds": ["DEMAND_KIND_FINANCING"], "amount": {"minYuan": "1000000", "maxYuan": "5000000"},
		"term": {"minMonths": 6, "maxMonths": 12}, "price": {"annualRate": {"minBps": 400, "maxBps": 500}}, "regions": ["420100"],
		"description": "以配额质押融资", "contact": {"name": "王晓岚", "phone": "027-8100 1000"}}}`
	file := t.TempDir() + "/product.json"
	if err := os.WriteFile(file, []byte(req), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = d.cli(t, "products", "create", "--file", file, "--json")
	for i := 0; err != nil && strings.Contains(err.Error(), "FailedPrecondition") && i < 100; i++ {
		// The catalog learns of the approval from the registry's events.
		time.Sleep(50 * time.Millisecond)
		out, err = d.cli(t, "products", "create", "--file", file, "--json")
	}
	if err != nil {
		t.Fatalf("products create --file: %v", err)
	}
	var created catalogv1.CreateProductResponse
	if err := protojson.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	if created.GetProduct().GetState() != catalogv1.ProductState_PRODUCT_STATE_DRAFT {
		t.Errorf("created product is %v, want DRAFT", created.GetProduct().GetState())
	}

	for _, args := range [][]string{{"stats", "registry"}, {"stats", "catalog"}, {"stats", "matching"}, {"stats", "talent"}, {"events", "list"}, {"talents", "list"}, {"demands", "list"}, {"matches", "list"}} {
		d.mustCLI(t, args...)
	}
}

// displayIndex is the terminal column where sub starts in s.
func displayIndex(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return -1
	}
	n := 0
	for _, r := range s[:i] {
		if r >= 0x2E80 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
