// Package deploy_test checks the deployment files against the binary they
// run: every carbondesk command line in docker-compose.yml and deploy/k8s/
// names a real subcommand and only its real flags, listens on the ports the
// file exposes, and points at the NATS and Redis the file defines. No Docker
// or Kubernetes needed: it builds carbondesk once and reads its --help.
package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

const composeFile = "../docker-compose.yml"

// natsURLs are the three JetStream nodes every service must be given.
var natsURLs = []string{"nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"}

// ---- the binary's command tree, from --help ----

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	helpMu    sync.Mutex
	helpCache = map[string]*cmdHelp{}
)

// carbondesk builds the binary once per test run.
func carbondesk(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "carbondesk-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "carbondesk")
		cmd := exec.Command(goTool(), "build", "-o", binPath, "../cmd/carbondesk")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/carbondesk: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// cmdHelp is what --help says of one command.
type cmdHelp struct {
	path  string            // "carbondesk serve registry", from the Usage line
	flags map[string]string // name → type ("" for a bool)
}

var (
	usageLine = regexp.MustCompile(`^\s+(carbondesk(?: [a-z][a-z-]*)*)(?: \[flags\]| \[command\])?\s*$`)
	flagLine  = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)(?: ([a-zA-Z0-9]+))?(?:\s|$)`)
)

// help runs `carbondesk <path...> --help` and parses its usage and flags.
func help(t testing.TB, path []string) *cmdHelp {
	t.Helper()
	key := strings.Join(path, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helpCache[key]; ok {
		return h
	}
	var out bytes.Buffer
	cmd := exec.Command(carbondesk(t), append(slices.Clone(path), "--help")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("carbondesk %s --help: %v\n%s", key, err, out.String())
	}
	h, err := parseHelp(out.String())
	if err != nil {
		t.Fatalf("carbondesk %s --help: %v\n%s", key, err, out.String())
	}
	helpCache[key] = h
	return h
}

func parseHelp(text string) (*cmdHelp, error) {
	h := &cmdHelp{flags: map[string]string{}}
	section := ""
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if line != "" && !strings.HasPrefix(line, " ") {
			section = strings.TrimSuffix(line, ":")
			continue
		}
		switch section {
		case "Usage":
			if m := usageLine.FindStringSubmatch(line); m != nil && h.path == "" {
				h.path = m[1]
			}
		case "Flags", "Global Flags":
			if m := flagLine.FindStringSubmatch(line); m != nil {
				h.flags[m[1]] = m[2]
			}
		}
	}
	if h.path == "" {
		return nil, errors.New("no Usage line")
	}
	if len(h.flags) == 0 {
		return nil, errors.New("no flags listed")
	}
	return h, nil
}

// invocation is one parsed carbondesk command line.
type invocation struct {
	path  []string            // subcommand path: serve registry
	flags map[string][]string // flag → values given
}

// checkCommand parses args (a container's command) against the binary's
// help: the subcommand must exist and every flag must be one of its flags.
func checkCommand(t testing.TB, where string, args []string) invocation {
	t.Helper()
	inv := invocation{flags: map[string][]string{}}
	i := 0
	for i < len(args) && !strings.HasPrefix(args[i], "-") {
		inv.path = append(inv.path, args[i])
		i++
	}
	h := help(t, inv.path)
	if want := strings.Join(append([]string{"carbondesk"}, inv.path...), " "); h.path != want {
		t.Errorf("%s: %q is not a carbondesk command (the binary resolves it to %q)", where, want, h.path)
		return inv
	}
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q: want --flag=value (positional arguments after the flags are not accepted)", where, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		typ, ok := h.flags[name]
		if !ok {
			t.Errorf("%s: %s has no flag --%s (its flags: %s)", where, h.path, name, strings.Join(sortedKeys(h.flags), " "))
			continue
		}
		if !hasVal && typ != "" { // --flag value
			if i+1 >= len(args) {
				t.Errorf("%s: --%s needs a value", where, name)
				continue
			}
			i++
			val = args[i]
		}
		inv.flags[name] = append(inv.flags[name], val)
	}
	return inv
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ---- docker-compose.yml ----

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     []string       `yaml:"command"`
	Expose      []string       `yaml:"expose"`
	Ports       []string       `yaml:"ports"`
	Volumes     []string       `yaml:"volumes"`
	DependsOn   map[string]any `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	NoHealthcheck string `yaml:"x-healthcheck-none"`
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	return f.Services
}

func (s composeService) isCarbondesk() bool {
	return s.Build != nil || strings.HasPrefix(s.Image, "carbondesk")
}

// containerPort is the container side of an expose or ports entry.
func containerPort(entry string) string {
	entry, _, _ = strings.Cut(entry, "/") // 8080/tcp
	if i := strings.LastIndex(entry, ":"); i >= 0 {
		return entry[i+1:]
	}
	return entry
}

// listenPort is the port of a host:port flag value.
func listenPort(t testing.TB, where, flag, v string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		t.Errorf("%s: --%s=%q: %v", where, flag, v, err)
	}
	return port
}

func TestCompose(t *testing.T) {
	services := loadCompose(t)

	// NATS: three nodes of the 2.11 image, each with its own config under
	// deploy/nats/ that routes to all three.
	for _, u := range natsURLs {
		name := strings.TrimSuffix(strings.TrimPrefix(u, "nats://"), ":4222")
		s, ok := services[name]
		if !ok {
			t.Errorf("no service %s for %s", name, u)
			continue
		}
		if !strings.HasPrefix(s.Image, "nats:2.11") {
			t.Errorf("%s: image %q, want nats:2.11", name, s.Image)
		}
		conf := ""
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./deploy/nats/") {
				conf = src
			}
		}
		if conf == "" {
			t.Errorf("%s: mounts no config from ./deploy/nats/", name)
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", conf))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		text := string(b)
		for _, want := range []string{"server_name: " + name, "jetstream", "store_dir: /data", "http_port: 8222",
			"nats-route://nats-1:6222", "nats-route://nats-2:6222", "nats-route://nats-3:6222"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: %s lacks %q", name, conf, want)
			}
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
			t.Errorf("%s: the JetStream store dir /data is not on a volume", name)
		}
	}

	// Redis: AOF on.
	if r, ok := services["redis"]; !ok {
		t.Error("no redis service")
	} else if cmd := strings.Join(r.Command, " "); !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis: command %q lacks --appendonly yes", cmd)
	}

	// Health: a check, or the reason there is none.
	for name, s := range services {
		hasCheck := s.Healthcheck != nil && !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 0
		if !hasCheck && strings.TrimSpace(s.NoHealthcheck) == "" {
			t.Errorf("%s: no healthcheck and no x-healthcheck-none saying why", name)
		}
	}

	// The carbondesk containers.
	grpcPort := map[string]string{} // service → its --grpc port
	served := map[string]bool{}
	var gateways []string
	for _, name := range sortedKeys(services) {
		s := services[name]
		if !s.isCarbondesk() {
			continue
		}
		where := composeFile + ": " + name
		if len(s.Command) == 0 {
			t.Errorf("%s: no command", where)
			continue
		}
		inv := checkCommand(t, where, s.Command)
		path := strings.Join(inv.path, " ")

		// Ports: what it listens on is what the file exposes, and back.
		listens := map[string]bool{}
		for _, flag := range []string{"grpc", "http", "metrics"} {
			for _, v := range inv.flags[flag] {
				p := listenPort(t, where, flag, v)
				listens[p] = true
				if flag == "grpc" {
					grpcPort[name] = p
				}
			}
		}
		exposed := map[string]bool{}
		for _, e := range append(slices.Clone(s.Expose), s.Ports...) {
			exposed[containerPort(e)] = true
		}
		for p := range listens {
			if !exposed[p] {
				t.Errorf("%s: listens on %s but does not expose it", where, p)
			}
		}
		for p := range exposed {
			if !listens[p] {
				t.Errorf("%s: exposes %s but listens on %v", where, p, sortedKeys(listens))
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published beyond the host's loopback", where, p)
			}
		}

		switch {
		case path == "serve gateway" || path == "gateway":
			gateways = append(gateways, name)
		case strings.HasPrefix(path, "serve "):
			svc := inv.path[1]
			served[svc] = true
			if name != svc {
				t.Errorf("%s: runs %q; the gateway and the docs expect the container named after its service", where, path)
			}
			nats := inv.flags["nats"]
			if len(nats) != 1 {
				t.Errorf("%s: --nats given %d times", where, len(nats))
			} else if got := strings.Split(nats[0], ","); !slices.Equal(sorted(got), natsURLs) {
				t.Errorf("%s: --nats=%s, want the three nodes %s", where, nats[0], strings.Join(natsURLs, ","))
			}
			if r := inv.flags["redis"]; len(r) != 1 || !strings.HasPrefix(r[0], "redis://redis:6379") {
				t.Errorf("%s: --redis=%v, want redis://redis:6379/...", where, r)
			}
			if r := inv.flags["stream-replicas"]; !slices.Equal(r, []string{"3"}) {
				t.Errorf("%s: --stream-replicas=%v, want 3 on the three-node cluster", where, r)
			}
			for _, n := range []string{"nats-1", "nats-2", "nats-3", "redis"} {
				if _, ok := s.DependsOn[n]; !ok {
					t.Errorf("%s: does not depend on %s", where, n)
				}
			}
			if svc != "registry" {
				if _, ok := s.DependsOn["registry"]; !ok {
					t.Errorf("%s: does not depend on registry (it starts first)", where)
				}
			}
		}
	}
	for _, svc := range []string{"registry", "catalog", "matching", "talent"} {
		if !served[svc] {
			t.Errorf("no container runs serve %s", svc)
		}
	}

	// The gateway: one upstream per service, at that service's --grpc port.
	if len(gateways) != 1 {
		t.Fatalf("gateway containers: %v, want one", gateways)
	}
	gw := services[gateways[0]]
	inv := checkCommand(t, "gateway", gw.Command)
	seen := map[string]bool{}
	for _, u := range inv.flags["upstream"] {
		svc, addr, ok := strings.Cut(u, "=")
		if !ok {
			t.Errorf("gateway: --upstream=%s: want SERVICE=host:port", u)
			continue
		}
		seen[svc] = true
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("gateway: --upstream=%s: %v", u, err)
			continue
		}
		if want, ok := grpcPort[host]; !ok {
			t.Errorf("gateway: --upstream=%s: no carbondesk service %q", u, host)
		} else if port != want {
			t.Errorf("gateway: --upstream=%s: %s listens on %s", u, host, want)
		}
		if _, ok := gw.DependsOn[host]; !ok {
			t.Errorf("gateway: does not depend on its upstream %s", host)
		}
	}
	for svc := range served {
		if !seen[svc] {
			t.Errorf("gateway: no --upstream for %s", svc)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// ---- deploy/k8s ----

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data      map[string]string `yaml:"data"`
	Resources []string          `yaml:"resources"`
	Spec      struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name           string         `yaml:"name"`
	Image          string         `yaml:"image"`
	Args           []string       `yaml:"args"`
	ReadinessProbe map[string]any `yaml:"readinessProbe"`
	LivenessProbe  map[string]any `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	EnvFrom []struct {
		ConfigMapRef struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func TestKubernetes(t *testing.T) {
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s/")
	}
	var objs []k8sObject
	byFile := map[string]bool{}
	for _, f := range files {
		byFile[filepath.Base(f)] = true
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for n := 0; ; n++ {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, n, err)
			}
			if o.Kind == "" {
				t.Errorf("%s document %d: no kind", f, n)
			}
			objs = append(objs, o)
		}
	}

	configMaps := map[string]map[string]string{}
	services := map[string]bool{}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Service":
			services[o.Metadata.Name] = true
		case "Kustomization":
			for _, r := range o.Resources {
				if !byFile[r] {
					t.Errorf("kustomization.yaml: resource %s is not in deploy/k8s/", r)
				}
			}
		}
	}

	deployments := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		name := o.Metadata.Name
		deployments[name] = true
		where := "deploy/k8s Deployment " + name
		if r := o.Spec.Replicas; r == nil || *r < 2 {
			t.Errorf("%s: replicas %v, want at least 2", where, r)
		}
		if !o.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod securityContext lacks runAsNonRoot", where)
		}
		if !services[name] {
			t.Errorf("%s: no Service of the same name", where)
		}
		if len(o.Spec.Template.Spec.Containers) == 0 {
			t.Errorf("%s: no containers", where)
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			cw := where + " container " + c.Name
			if len(c.ReadinessProbe) == 0 || len(c.LivenessProbe) == 0 {
				t.Errorf("%s: want readinessProbe and livenessProbe", cw)
			}
			if len(c.Resources.Requests) == 0 || len(c.Resources.Limits) == 0 {
				t.Errorf("%s: want resource requests and limits", cw)
			}
			if !c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("%s: root filesystem not read-only", cw)
			}
			if c.Image != "carbondesk" && !strings.Contains(c.Image, "carbondesk") {
				continue
			}
			inv := checkCommand(t, cw, c.Args)

			// $(VAR) in args must come from the container's env or its ConfigMaps.
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
			}
			for _, ef := range c.EnvFrom {
				cm, ok := configMaps[ef.ConfigMapRef.Name]
				if !ok {
					t.Errorf("%s: envFrom ConfigMap %q is not in deploy/k8s/", cw, ef.ConfigMapRef.Name)
				}
				for k := range cm {
					env[k] = true
				}
			}
			for _, a := range c.Args {
				for _, m := range envRef.FindAllStringSubmatch(a, -1) {
					if !env[m[1]] {
						t.Errorf("%s: argument %q refers to $(%s), which no env or ConfigMap defines", cw, a, m[1])
					}
				}
			}

			// gRPC services: native gRPC readiness probe on the --grpc port.
			if len(inv.path) == 2 && inv.path[0] == "serve" && inv.path[1] != "gateway" {
				port := ""
				for _, v := range inv.flags["grpc"] {
					port = listenPort(t, cw, "grpc", v)
				}
				g, ok := c.ReadinessProbe["grpc"].(map[string]any)
				if !ok {
					t.Errorf("%s: readinessProbe is not a grpc probe", cw)
				} else if fmt.Sprint(g["port"]) != port {
					t.Errorf("%s: grpc readinessProbe on port %v, --grpc on %s", cw, g["port"], port)
				}
				if r := inv.flags["token-public-keys"]; len(r) == 0 {
					t.Errorf("%s: no --token-public-keys: it would run on a development key", cw)
				}
			}
			declared := map[string]bool{}
			for _, p := range c.Ports {
				declared[fmt.Sprint(p.ContainerPort)] = true
			}
			for _, flag := range []string{"grpc", "http", "metrics"} {
				for _, v := range inv.flags[flag] {
					if p := listenPort(t, cw, flag, v); !declared[p] {
						t.Errorf("%s: --%s=%s but the container declares no port %s", cw, flag, v, p)
					}
				}
			}
		}
	}
	for _, want := range []string{"registry", "catalog", "matching", "talent", "gateway"} {
		if !deployments[want] {
			t.Errorf("deploy/k8s: no Deployment %s", want)
		}
	}
}

// TestHelpParser keeps the --help parsing honest: a misspelt flag or
// subcommand must be reported.
func TestHelpParser(t *testing.T) {
	for _, tc := range []struct {
		args []string
		bad  string
	}{
		{[]string{"serve", "registry", "--nats=nats://x:4222", "--stream-replica=3"}, "no flag --stream-replica"},
		{[]string{"serve", "regsitry", "--nats=nats://x:4222"}, "is not a carbondesk command"},
		{[]string{"serve", "gateway", "--upstreams=registry=r:7070"}, "no flag --upstreams"},
	} {
		ft := &fakeT{TB: t}
		checkCommand(ft, "test", tc.args)
		if !strings.Contains(ft.errs.String(), tc.bad) {
			t.Errorf("%v: want an error containing %q, got %q", tc.args, tc.bad, ft.errs.String())
		}
	}
}

// fakeT records errors instead of failing the test.
type fakeT struct {
	testing.TB
	errs strings.Builder
}

func (f *fakeT) Errorf(format string, args ...any) {
	fmt.Fprintf(&f.errs, format+"\n", args...)
}
