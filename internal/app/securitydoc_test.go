package app_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/carbondesk/carbondesk/internal/auth"
)

var update = flag.Bool("update", false, "rewrite the generated parts of docs/SECURITY.md")

// securityDoc is the document whose authorization table is generated.
var securityDoc = filepath.Join("..", "..", "docs", "SECURITY.md")

// The generated table sits between these lines.
const (
	tableBegin = "<!-- BEGIN authorization table: generated from auth.Table() by TestSecurityDocIsCurrent (go test ./internal/app -run TestSecurityDocIsCurrent -update) -->"
	tableEnd   = "<!-- END authorization table -->"
)

// TestSecurityDocIsCurrent fails when docs/SECURITY.md's authorization table
// is not what auth.Table() says; -update rewrites it.
func TestSecurityDocIsCurrent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	before, rest, ok1 := strings.Cut(doc, tableBegin+"\n")
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the lines that enclose the generated table:\n%s\n%s", securityDoc, tableBegin, tableEnd)
	}
	want := before + tableBegin + "\n" + authzTable(t, auth.Table()) + tableEnd + after
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(securityDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", securityDoc)
		return
	}
	t.Errorf("%s's authorization table is out of date with auth.Table(); run\n\tgo test ./internal/app -run TestSecurityDocIsCurrent -update", securityDoc)
}

// authzTable renders the table as Markdown, one row per RPC, services by
// name and methods in the order their proto declares them.
func authzTable(t *testing.T, table map[string]auth.Rule) string {
	t.Helper()
	type row struct {
		service string
		index   int
		method  string
		rule    auth.Rule
	}
	var rows []row
	for full, rule := range table {
		service, method := splitMethod(full)
		index := -1
		if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service)); err == nil {
			if sd, ok := d.(protoreflect.ServiceDescriptor); ok {
				if md := sd.Methods().ByName(protoreflect.Name(method)); md != nil {
					index = md.Index()
				}
			}
		}
		if index < 0 {
			t.Errorf("auth.Table() names %s, which no linked proto declares", full)
		}
		rows = append(rows, row{service, index, method, rule})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := strings.Compare(a.service, b.service); c != 0 {
			return c
		}
		if a.index != b.index {
			return a.index - b.index
		}
		return strings.Compare(a.method, b.method)
	})

	var b strings.Builder
	b.WriteString("| method | roles | ownership | write-limited | note |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		roles := make([]string, len(r.rule.Roles))
		for i, role := range r.rule.Roles {
			roles[i] = string(role)
		}
		write := "no"
		if r.rule.Write {
			write = "yes"
		}
		short := r.service[strings.LastIndex(r.service, ".")+1:]
		fmt.Fprintf(&b, "| `%s/%s` | %s | %s | %s | %s |\n", short, r.method, strings.Join(roles, ", "),
			ownershipName(r.rule.Ownership), write, strings.ReplaceAll(r.rule.Note, "|", `\|`))
	}
	return b.String()
}

// ownershipName is the rule's constant name with its meaning.
func ownershipName(o auth.Ownership) string {
	names := map[auth.Ownership]string{
		auth.NoObject: "NoObject", auth.OwnObject: "OwnObject", auth.VisibleObject: "VisibleObject",
		auth.FilteredList: "FilteredList", auth.CreateOwn: "CreateOwn",
	}
	name, ok := names[o]
	if !ok {
		name = fmt.Sprintf("Ownership(%d)", int(o))
	}
	return "**" + name + "**: " + o.String()
}
