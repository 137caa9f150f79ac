package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

// memBackend is a minimal in-memory api.Backend with the store's semantics
// (default groups, main tables, allocation, validation, pinning), for driving the CLI
// against the real API handler.
type memBackend struct {
	mu     sync.Mutex
	p      *model.Policy
	rev    int64
	tokens map[string]api.Principal // secret → principal
}

func (m *memBackend) Policy(ctx context.Context) (*model.Policy, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p.Clone(), m.rev, nil
}

func (m *memBackend) Update(ctx context.Context, fn func(p *model.Policy) error) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.p.Clone()
	if err := fn(p); err != nil {
		return 0, err
	}
	model.EnsureDefaultGroups(p)
	model.EnsureMainTables(p)
	if err := model.AllocateIPs(p); err != nil {
		return 0, err
	}
	if err := model.AllocatePublicIPs(p); err != nil {
		return 0, err
	}
	n, err := model.Build(p)
	if err != nil {
		return 0, err
	}
	model.Pin(p, n)
	m.p = p
	m.rev++
	return m.rev, nil
}

func (m *memBackend) Authenticate(ctx context.Context, secret string) (api.Principal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pr, ok := m.tokens[secret]; ok {
		return pr, nil
	}
	return api.Principal{}, fmt.Errorf("token: %w", api.ErrUnauthenticated)
}

func (m *memBackend) CreateToken(ctx context.Context, account, description string) (string, string, error) {
	return "", "", fmt.Errorf("not in this test")
}

func (m *memBackend) ListTokens(ctx context.Context) ([]api.TokenInfo, error) { return nil, nil }

func (m *memBackend) RevokeToken(ctx context.Context, id string) error { return api.ErrNotFound }

const cliSeed = `
accounts: [{name: acme}, {name: globex}]
hosts: [{name: h1, underlay_ip: 172.31.0.11}]
vpcs:
  - {name: pub, account: acme, cidr: 10.1.0.0/16, shared: true}
subnets:
  - {name: pub-a, vpc: pub, cidr: 10.1.1.0/24}
nics:
  - {name: a1, subnet: pub-a, host: h1}
  - {name: g1, subnet: pub-a, host: h1, account: globex}
`

// cliEnv serves the API for the CLI under test.
type cliEnv struct {
	t      *testing.T
	server string
	b      *memBackend
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	p, err := model.ParseYAML([]byte(cliSeed))
	if err != nil {
		t.Fatal(err)
	}
	b := &memBackend{p: &model.Policy{}, tokens: map[string]api.Principal{
		"admin-secret":  {TokenID: "t0", Admin: true},
		"acme-secret":   {TokenID: "t1", Account: "acme"},
		"globex-secret": {TokenID: "t2", Account: "globex"},
	}}
	if _, err := b.Update(context.Background(), func(q *model.Policy) error { *q = *p; return nil }); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	ts := httptest.NewServer(api.New(b, api.Options{Log: log}))
	t.Cleanup(ts.Close)
	// No config file or environment of the machine running the tests.
	t.Setenv("HOME", t.TempDir())
	for _, v := range []string{"OPENVPC_SERVER", "OPENVPC_TOKEN", "OPENVPC_CA"} {
		t.Setenv(v, "")
	}
	return &cliEnv{t: t, server: ts.URL, b: b}
}

// run runs "openvpc CMD... --server S --token T ARGS..." (the connection
// flags go right after the command words, before its own flags and
// arguments) and returns what it printed.
func (e *cliEnv) run(token string, cmd []string, args ...string) (string, error) {
	e.t.Helper()
	return runArgv(e.t, append(append(append([]string{"openvpc"}, cmd...), "--server", e.server, "--token", token+"-secret"), args...))
}

// runArgv runs the CLI and returns what it printed on stdout.
func runArgv(t *testing.T, argv []string) (string, error) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stdout := os.Stdout
	os.Stdout = out
	runErr := newApp().Run(argv)
	os.Stdout = stdout
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b), runErr
}

// hasLine reports whether out has a line with want's words, however
// aligned.
func hasLine(out, want string) bool {
	want = strings.Join(strings.Fields(want), " ")
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.Join(strings.Fields(l), " "), want) {
			return true
		}
	}
	return false
}

func (e *cliEnv) ok(token string, cmd []string, args ...string) string {
	e.t.Helper()
	out, err := e.run(token, cmd, args...)
	if err != nil {
		e.t.Fatalf("openvpc %s %s: %v\n%s", strings.Join(cmd, " "), strings.Join(args, " "), err, out)
	}
	return out
}

func (e *cliEnv) fails(want, token string, cmd []string, args ...string) {
	e.t.Helper()
	out, err := e.run(token, cmd, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		e.t.Fatalf("openvpc %s %s: %v, want an error containing %q\n%s", strings.Join(cmd, " "), strings.Join(args, " "), err, want, out)
	}
}

func (e *cliEnv) group(name string) *model.SecurityGroup {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	for _, g := range e.b.p.SecurityGroups {
		if g.Name == name {
			return &g
		}
	}
	return nil
}

func cmd(words ...string) []string { return words }

func TestCLISecurityGroups(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("acme", cmd("create"), "--vpc", "pub", "--description", "web tier", "security-group", "web")
	if !hasLine(out, "name: web") || !hasLine(out, "description: web tier") || !hasLine(out, "egress all 0.0.0.0/0") {
		t.Fatalf("create printed:\n%s", out)
	}
	g := e.group("web")
	if g == nil || g.Account != "acme" || g.VPC != "pub" || len(g.Egress) != 1 {
		t.Fatalf("created %+v", g)
	}
	e.fails(`security_group "web" already exists`, "acme", cmd("create"), "--vpc", "pub", "security-group", "web")
	e.fails("flags go before the arguments", "acme", cmd("create"), "security-group", "x", "--vpc", "pub")

	// Rules.
	e.ok("acme", cmd("authorize-ingress"), "--protocol", "tcp", "--ports", "22", "--cidr", "10.0.0.0/8", "--description", "ssh", "web")
	e.ok("acme", cmd("authorize-ingress"), "--protocol", "icmp", "--icmp-type", "8", "--icmp-code", "0", "--group", "web", "web")
	e.ok("acme", cmd("authorize-egress"), "-p", "udp", "--ports", "53", "--cidr", "10.1.0.2/32", "web")
	g = e.group("web")
	if len(g.Ingress) != 2 || len(g.Egress) != 2 || *g.Ingress[1].ICMPType != 8 || *g.Ingress[1].ICMPCode != 0 || g.Ingress[0].Description != "ssh" {
		t.Fatalf("after authorize %+v", g)
	}
	e.fails("already has ingress rule", "acme", cmd("authorize-ingress"), "--protocol", "tcp", "--ports", "22", "--cidr", "10.0.0.0/8", "web")
	e.fails("give one peer", "acme", cmd("authorize-ingress"), "--protocol", "tcp", "--cidr", "10.0.0.0/8", "--group", "web", "web")
	e.fails("--protocol is required", "acme", cmd("authorize-egress"), "--cidr", "10.0.0.0/8", "web")
	e.fails(`"70000" is out of range`, "acme", cmd("authorize-ingress"), "--protocol", "tcp", "--ports", "70000", "--cidr", "10.0.0.0/8", "web")
	e.fails("field ports", "acme", cmd("authorize-ingress"), "--protocol", "tcp", "--ports", "90-80", "--cidr", "10.0.0.0/8", "web")

	// One line per rule, with id, direction, protocol, ports/icmp, peer.
	out = e.ok("acme", cmd("get"), "security-group", "web")
	for _, want := range []string{
		fmt.Sprintf("%d  ingress    tcp       22          10.0.0.0/8   ssh", g.Ingress[0].ID),
		fmt.Sprintf("%d  ingress    icmp      type 8 code 0  group web", g.Ingress[1].ID),
		"egress     udp       53",
		"grants:       -",
	} {
		if !hasLine(out, want) {
			t.Errorf("get security-group web: no line %q in\n%s", want, out)
		}
	}
	out = e.ok("acme", cmd("get"), "security-groups")
	// acme sees globex's default group too: it is in acme's VPC.
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1+2+2+4 || !strings.HasPrefix(lines[0], "GROUP") ||
		!strings.HasPrefix(lines[1], "pub-default") || !strings.HasPrefix(lines[3], "pub-globex-default") ||
		!strings.HasPrefix(lines[5], "web ") || !strings.HasPrefix(lines[6], " ") || !hasLine(lines[5], "web pub acme false") {
		t.Fatalf("get security-groups:\n%s", out)
	}
	if out = e.ok("acme", cmd("get"), "-o", "json", "security-group", "web"); !strings.Contains(out, `"ports": "22"`) {
		t.Fatalf("get -o json:\n%s", out)
	}
	if out = e.ok("acme", cmd("get"), "-o", "yaml", "sg", "web"); !strings.Contains(out, "icmp_type: 8") {
		t.Fatalf("get -o yaml:\n%s", out)
	}

	// Revoke by the same flags and by id.
	e.ok("acme", cmd("revoke-ingress"), "--protocol", "TCP", "--ports", "22-22", "--cidr", "10.0.0.0/8", "web")
	e.ok("acme", cmd("revoke-egress"), "--id", fmt.Sprint(g.Egress[1].ID), "web")
	if g = e.group("web"); len(g.Ingress) != 1 || len(g.Egress) != 1 || g.Ingress[0].Protocol != "icmp" {
		t.Fatalf("after revoke %+v", g)
	}
	e.fails("has no egress rule", "acme", cmd("revoke-egress"), "--id", "12345", "web")

	// Grants: globex may use acme's group only once granted.
	e.ok("globex", cmd("create"), "--vpc", "pub", "security-group", "app")
	e.fails("is not granted", "globex", cmd("authorize-ingress"), "--protocol", "tcp", "--group", "web", "app")
	e.fails(`security_group "web" not found`, "globex", cmd("grant"), "web", "globex")
	out = e.ok("acme", cmd("grant"), "web", "globex")
	if !hasLine(out, "grants: globex") {
		t.Fatalf("grant printed:\n%s", out)
	}
	e.ok("globex", cmd("authorize-ingress"), "--protocol", "tcp", "--group", "web", "app")
	e.ok("acme", cmd("revoke-grant"), "web", "globex")
	if g = e.group("web"); len(g.Grants) != 0 || len(e.group("app").Ingress) != 1 {
		t.Fatalf("after revoke-grant: web %+v, app %+v", g, e.group("app"))
	}

	// NIC membership.
	out = e.ok("globex", cmd("nic", "set-groups"), "g1", "app")
	if !strings.Contains(out, "app") {
		t.Fatalf("set-groups printed:\n%s", out)
	}
	e.fails(`nic "a1" not found`, "globex", cmd("nic", "set-groups"), "a1", "app")
	e.fails(`security_group "app" is used by nic "g1"`, "globex", cmd("delete"), "security-group", "app")
	e.ok("globex", cmd("nic", "set-groups"), "g1")
	e.b.mu.Lock()
	groups := e.b.p.NICs[1].SecurityGroups
	e.b.mu.Unlock()
	if groups != nil {
		t.Fatalf("g1 groups after reset %v", groups)
	}
	e.ok("globex", cmd("delete"), "security-group", "app")
	e.fails("is a default group", "acme", cmd("delete"), "security-group", "pub-default")
	if e.group("app") != nil {
		t.Fatal("app not deleted")
	}
}

func TestCLICompletion(t *testing.T) {
	out, err := runArgv(t, []string{"openvpc", "get", "--generate-bash-completion"})
	if err != nil || !strings.Contains(out, "security-group") {
		t.Fatalf("completion of get:\n%s", out)
	}
	app := newApp()
	for _, name := range []string{"authorize-ingress", "authorize-egress", "revoke-ingress", "revoke-egress", "grant", "revoke-grant"} {
		if app.Command(name) == nil {
			t.Errorf("no command %s", name)
		}
	}
	if app.Command("nic").Command("set-groups") == nil {
		t.Error("no command nic set-groups")
	}
}
