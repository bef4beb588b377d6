package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/carbondesk/carbondesk"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TestEveryRPCHasARESTPath walks the generated descriptors of every public
// service and fails for an RPC without an HTTP rule: generation leaves such
// an RPC out of the OpenAPI description (and out of the gateway's routes).
// The fix is a rule in proto/carbondesk/gateway/http.yaml and buf generate.
func TestEveryRPCHasARESTPath(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(carbondesk.OpenAPI, &doc); err != nil {
		t.Fatalf("gen/openapiv2/carbondesk.swagger.json: %v", err)
	}
	ops := map[string]bool{}
	for _, methods := range doc.Paths {
		for _, op := range methods {
			ops[op.OperationID] = true
		}
	}
	n := 0
	for _, s := range services() {
		methods := s.desc.Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			n++
			if id := string(s.desc.Name()) + "_" + string(m.Name()); !ops[id] {
				t.Errorf("%s has no REST path: add a rule for selector %s to proto/carbondesk/gateway/http.yaml and run buf generate",
					m.FullName(), m.FullName())
			}
		}
	}
	if n < 50 {
		t.Errorf("walked only %d RPCs; the service list looks wrong", n)
	}
}

// TestEveryServiceIsServed fails when a proto under proto/ declares a
// service the gateway does not register.
func TestEveryServiceIsServed(t *testing.T) {
	served := map[string]bool{}
	for _, s := range services() {
		served[string(s.desc.FullName())] = true
	}
	pkgRE := regexp.MustCompile(`(?m)^package\s+([\w.]+);`)
	svcRE := regexp.MustCompile(`(?m)^service\s+(\w+)`)
	files, err := filepath.Glob("../../proto/carbondesk/*/*/*.proto")
	if err != nil || len(files) == 0 {
		t.Fatalf("no protos found: %v", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pkg := pkgRE.FindSubmatch(src)
		for _, m := range svcRE.FindAllSubmatch(src, -1) {
			name := string(pkg[1]) + "." + string(m[1])
			if !served[name] {
				t.Errorf("%s (%s) is not served by the gateway: add it to services() in gateway.go", name, f)
			}
		}
	}
}

func TestSeedIdentities(t *testing.T) {
	ids, err := SeedIdentities(seeds.FS)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	count := map[auth.Role]int{}
	for _, id := range ids {
		if seen[id.ID] {
			t.Errorf("identity %q listed twice", id.ID)
		}
		seen[id.ID] = true
		count[id.Role]++
		if id.Name == "" || !id.Role.Valid() {
			t.Errorf("identity %+v lacks a name or a valid role", id)
		}
		if id.Role == auth.Staff {
			continue
		}
		if _, err := registry.ValidateCreditCode(id.Org); err != nil || !strings.HasSuffix(id.ID, ":"+id.Org) {
			t.Errorf("identity %+v: organisation is not a valid credit code named in its id: %v", id, err)
		}
	}
	if count[auth.Staff] != 1 || count[auth.Institution] < 5 || count[auth.Enterprise] < 3 {
		t.Errorf("identities by role = %v; want one staff, several institutions and enterprises", count)
	}
	if !slices.ContainsFunc(ids, func(id Identity) bool { return id.ID == "staff" }) {
		t.Error(`no "staff" identity`)
	}
}
