package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

func (e *env) group(name string) *model.SecurityGroup {
	e.t.Helper()
	for _, g := range e.b.snapshot().SecurityGroups {
		if g.Name == name {
			return &g
		}
	}
	return nil
}

// builtRule returns the built rule of a stored group, to see whether it is
// in force.
func (e *env) builtRule(group string, d model.Direction, i int) *model.RuleInfo {
	e.t.Helper()
	n, err := model.Build(e.b.snapshot())
	if err != nil {
		e.t.Fatalf("backend policy is invalid: %v", err)
	}
	g := n.SecurityGroups[group]
	if g == nil || len(g.Rules(d)) <= i {
		e.t.Fatalf("group %q has no %s rule %d", group, d, i)
	}
	return g.Rules(d)[i]
}

func TestSecurityGroupCRUD(t *testing.T) {
	e := newEnv(t)
	// Every VPC has its default group, stored with it.
	var l list[model.SecurityGroup]
	e.want(200, "GET", "/v1/security-groups", e.acme, nil, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "acme-vpc-default" || !l.Items[0].Default {
		t.Fatalf("acme lists %+v, want only its default group", l.Items)
	}

	// Created without egress, a group allows all egress and no ingress;
	// the account is the token's.
	var g model.SecurityGroup
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups", e.acme, `{"name": "web", "vpc": "acme-vpc", "description": "web tier"}`, &g)
	if g.Account != "acme" || len(g.Ingress) != 0 || len(g.Egress) != 1 || !model.SameRule(g.Egress[0], model.AllEgress()) || g.Egress[0].ID == 0 {
		t.Fatalf("created %+v", g)
	}
	if e.lastHeader.Get("Location") != "/v1/security-groups/web" {
		t.Errorf("Location %q", e.lastHeader.Get("Location"))
	}
	// Explicitly no egress stays so.
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups", e.acme, `{"name": "closed", "vpc": "acme-vpc", "egress": []}`, &g)
	if len(g.Egress) != 0 {
		t.Fatalf("created with egress [] %+v", g)
	}
	e.wantErr(409, api.CodeConflict, "name", `security_group "web" already exists`, "POST", "/v1/security-groups", e.acme, `{"name": "web", "vpc": "acme-vpc"}`)
	e.wantErr(400, api.CodeInvalidArgument, "default", "not by hand", "POST", "/v1/security-groups", e.admin, `{"name": "acme-vpc-x", "vpc": "acme-vpc", "default": true}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", `must be "acme"`, "POST", "/v1/security-groups", e.acme, `{"name": "x", "vpc": "acme-vpc", "account": "globex"}`)
	e.wantErr(400, api.CodeInvalidArgument, "vpc", `vpc "globex-vpc" does not exist`, "POST", "/v1/security-groups", e.acme, `{"name": "x", "vpc": "globex-vpc"}`)
	e.wantErr(400, api.CodeInvalidArgument, "ingress[0].id", "assigned by the controller", "POST", "/v1/security-groups", e.acme,
		`{"name": "x", "vpc": "acme-vpc", "ingress": [{"id": 5, "protocol": "tcp", "cidr": "10.0.0.0/8"}]}`)

	// A PUT without rules keeps them (and their IDs); immutable fields stay.
	var got model.SecurityGroup
	e.want(200, "GET", "/v1/security-groups/web", e.acme, nil, &got)
	before := e.commits()
	g = model.SecurityGroup{}
	e.want(200, "PUT", "/v1/security-groups/web", e.acme, `{"vpc": "acme-vpc", "description": "web tier", "account": "acme"}`, &g)
	if e.commits() != before || g.Egress[0].ID != got.Egress[0].ID {
		t.Fatalf("no-op PUT committed or changed %+v", g)
	}
	g = model.SecurityGroup{}
	e.want(200, "PUT", "/v1/security-groups/web", e.acme, `{"description": "front"}`, &g)
	if g.Description != "front" || len(g.Egress) != 1 || g.Egress[0].ID != got.Egress[0].ID {
		t.Fatalf("updated %+v", g)
	}
	// Restating the rules without IDs keeps them too.
	g = model.SecurityGroup{}
	e.want(200, "PUT", "/v1/security-groups/web", e.acme, `{"egress": [{"protocol": "all", "cidr": "0.0.0.0/0"}, {"protocol": "udp", "ports": "53", "cidr": "10.0.0.2/32"}]}`, &g)
	if len(g.Egress) != 2 || g.Egress[0].ID != got.Egress[0].ID || g.Egress[1].ID == 0 {
		t.Fatalf("updated %+v", g)
	}
	e.wantErr(400, api.CodeInvalidArgument, "vpc", "vpc cannot be changed", "PUT", "/v1/security-groups/web", e.acme, `{"vpc": "other"}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", "account cannot be changed", "PUT", "/v1/security-groups/web", e.admin, `{"account": "globex"}`)
	e.wantErr(400, api.CodeInvalidArgument, "default", "cannot be made a default group", "PUT", "/v1/security-groups/web", e.admin, `{"default": true}`)

	// Default groups: rules editable, not deletable.
	g = model.SecurityGroup{}
	e.want(200, "PUT", "/v1/security-groups/acme-vpc-default", e.acme, `{"ingress": []}`, &g)
	if !g.Default || len(g.Ingress) != 0 || len(g.Egress) != 1 {
		t.Fatalf("edited default group %+v", g)
	}
	e.wantErr(400, api.CodeInvalidArgument, "", "is a default group", "DELETE", "/v1/security-groups/acme-vpc-default", e.acme, nil)

	e.want(200, "GET", "/v1/security-groups", e.acme, nil, &l)
	if len(l.Items) != 3 || l.Items[0].Name != "acme-vpc-default" || l.Items[1].Name != "closed" || l.Items[2].Name != "web" {
		t.Fatalf("list %+v", l.Items)
	}
	e.want(204, "DELETE", "/v1/security-groups/web", e.acme, nil, nil)
	e.want(404, "GET", "/v1/security-groups/web", e.acme, nil, nil)
	e.checkValid()
}

func TestSecurityGroupRules(t *testing.T) {
	e := newEnv(t)
	e.want(201, "POST", "/v1/security-groups", e.acme, `{"name": "web", "vpc": "acme-vpc"}`, nil)

	var g model.SecurityGroup
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups/web/ingress", e.acme, `{"protocol": "tcp", "ports": "22", "cidr": "10.0.0.0/8", "description": "ssh"}`, &g)
	if len(g.Ingress) != 1 || g.Ingress[0].ID == 0 || g.Ingress[0].Description != "ssh" {
		t.Fatalf("after authorize %+v", g)
	}
	ssh := g.Ingress[0].ID
	// The same traffic again is a conflict, however written.
	e.wantErr(409, api.CodeConflict, "", "already has ingress rule", "POST", "/v1/security-groups/web/ingress", e.acme, `{"protocol": "TCP", "ports": "22-22", "cidr": "10.0.0.0/8"}`)
	g = model.SecurityGroup{}
	icmp := e.want(201, "POST", "/v1/security-groups/web/ingress", e.acme, `{"protocol": "icmp", "icmp_type": 8, "icmp_code": 0, "group": "web"}`, &g)
	if len(g.Ingress) != 2 || *g.Ingress[1].ICMPType != 8 || g.Ingress[1].Group != "web" {
		t.Fatalf("after authorize %s", icmp)
	}
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups/web/ingress", e.acme, `{"protocol": "udp", "ports": "8000-8080", "group": "acme-vpc-default"}`, &g)
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups/web/egress", e.acme, `{"protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0"}`, &g)
	if len(g.Ingress) != 3 || len(g.Egress) != 2 {
		t.Fatalf("after authorize %+v", g)
	}
	// The stored rule is in force.
	if r := e.builtRule("web", model.Ingress, 2); r.Inactive != "" || r.Peer == nil || r.PortMin != 8000 || r.PortMax != 8080 {
		t.Fatalf("built rule %+v", r)
	}

	// Revoke by content (matched as model.SameRule does) and by id.
	g = model.SecurityGroup{}
	e.want(200, "POST", "/v1/security-groups/web/ingress/revoke", e.acme, `{"protocol": "icmp", "icmp_type": 8, "icmp_code": 0, "group": "web"}`, &g)
	if len(g.Ingress) != 2 || g.Ingress[0].ID != ssh {
		t.Fatalf("after revoke by content %+v", g.Ingress)
	}
	g = model.SecurityGroup{}
	e.want(200, "POST", "/v1/security-groups/web/ingress/revoke", e.acme, fmt.Sprintf(`{"id": %d}`, ssh), &g)
	if len(g.Ingress) != 1 || g.Ingress[0].Ports != "8000-8080" {
		t.Fatalf("after revoke by id %+v", g.Ingress)
	}
	e.wantErr(404, api.CodeNotFound, "", fmt.Sprintf(`security_group "web" has no ingress rule %d`, ssh), "POST", "/v1/security-groups/web/ingress/revoke", e.acme, fmt.Sprintf(`{"id": %d}`, ssh))
	e.wantErr(404, api.CodeNotFound, "", "has no egress rule allowing that", "POST", "/v1/security-groups/web/egress/revoke", e.acme, `{"protocol": "tcp", "ports": "22", "cidr": "0.0.0.0/0"}`)
	e.wantErr(400, api.CodeInvalidArgument, "protocol", "or give the rule's id", "POST", "/v1/security-groups/web/egress/revoke", e.acme, `{}`)
	g = model.SecurityGroup{}
	e.want(200, "POST", "/v1/security-groups/web/egress/revoke", e.acme, `{"protocol": "all", "cidr": "0.0.0.0/0"}`, &g)
	if len(g.Egress) != 1 || g.Egress[0].Ports != "443" {
		t.Fatalf("after egress revoke %+v", g.Egress)
	}
	e.wantErr(404, api.CodeNotFound, "", `security_group "nope" not found`, "POST", "/v1/security-groups/nope/ingress", e.acme, `{"protocol": "all", "cidr": "10.0.0.0/8"}`)
	e.wantErr(400, api.CodeInvalidArgument, "id", "assigned by the controller", "POST", "/v1/security-groups/web/ingress", e.acme, `{"id": 9, "protocol": "all", "cidr": "10.0.0.0/8"}`)
	e.checkValid()
}

// TestSecurityGroupValidation: errors name the field, as a path into the
// request body, and nothing is written.
func TestSecurityGroupValidation(t *testing.T) {
	group := func(rule string) string {
		return `{"name": "x", "vpc": "acme-vpc", "ingress": [{"protocol": "tcp", "cidr": "10.0.0.0/8"}, ` + rule + `]}`
	}
	cases := []struct {
		name, method, path, body, field, msg string
	}{
		{"ports range", "POST", "/v1/security-groups", group(`{"protocol": "tcp", "ports": "70000", "cidr": "10.0.0.0/8"}`), "ingress[1].ports", `"70000" is out of range`},
		{"ports reversed", "POST", "/v1/security-groups", group(`{"protocol": "udp", "ports": "90-80", "cidr": "10.0.0.0/8"}`), "ingress[1].ports", "first port is greater"},
		{"ports not tcp", "POST", "/v1/security-groups", group(`{"protocol": "icmp", "ports": "80", "cidr": "10.0.0.0/8"}`), "ingress[1].ports", "only tcp and udp"},
		{"icmp type", "POST", "/v1/security-groups", group(`{"protocol": "icmp", "icmp_type": 300, "cidr": "10.0.0.0/8"}`), "ingress[1].icmp_type", "300 is out of range"},
		{"icmp code alone", "POST", "/v1/security-groups", group(`{"protocol": "icmp", "icmp_code": 1, "cidr": "10.0.0.0/8"}`), "ingress[1].icmp_code", "needs icmp_type"},
		{"protocol", "POST", "/v1/security-groups", group(`{"protocol": "sctp", "cidr": "10.0.0.0/8"}`), "ingress[1].protocol", "is not tcp, udp"},
		{"bad cidr", "POST", "/v1/security-groups", group(`{"protocol": "tcp", "cidr": "10.0.0/8"}`), "ingress[1].cidr", "is not"},
		{"no peer", "POST", "/v1/security-groups", group(`{"protocol": "tcp"}`), "ingress[1].cidr", "a peer is required"},
		{"both peers", "POST", "/v1/security-groups", group(`{"protocol": "tcp", "cidr": "10.0.0.0/8", "group": "x"}`), "ingress[1].cidr", "not both"},
		{"duplicate", "POST", "/v1/security-groups", group(`{"protocol": "tcp", "cidr": "10.0.0.0/8"}`), "ingress[1]", "duplicates ingress[0]"},
		{"unknown peer", "POST", "/v1/security-groups", group(`{"protocol": "tcp", "group": "nosuch"}`), "ingress[1].group", `security group "nosuch" does not exist or is not granted to account "acme"`},
		{"egress path", "POST", "/v1/security-groups", `{"name": "x", "vpc": "acme-vpc", "egress": [{"protocol": "tcp", "ports": "1-2-3", "cidr": "0.0.0.0/0"}]}`, "egress[0].ports", "is not a port"},
		{"grant missing account", "POST", "/v1/security-groups", `{"name": "x", "vpc": "acme-vpc", "grants": ["nosuch"]}`, "grants[0]", `account "nosuch" does not exist`},
		{"default name", "POST", "/v1/security-groups", `{"name": "x-default", "vpc": "acme-vpc"}`, "name", "kept for default groups"},
		{"wrong type", "POST", "/v1/security-groups", `{"name": "x", "vpc": "acme-vpc", "ingress": [{"protocol": "tcp", "icmp_type": "8"}]}`, "ingress.icmp_type", "want an integer"},
		{"update", "PUT", "/v1/security-groups/acme-vpc-default", `{"egress": [{"protocol": "tcp", "ports": "0-70000", "cidr": "0.0.0.0/0"}]}`, "egress[0].ports", "out of range"},
		{"authorize ports", "POST", "/v1/security-groups/acme-vpc-default/ingress", `{"protocol": "tcp", "ports": "70000", "cidr": "10.0.0.0/8"}`, "ports", "out of range"},
		{"authorize reversed", "POST", "/v1/security-groups/acme-vpc-default/egress", `{"protocol": "tcp", "ports": "90-80", "cidr": "10.0.0.0/8"}`, "ports", "first port is greater"},
		{"authorize icmp", "POST", "/v1/security-groups/acme-vpc-default/ingress", `{"protocol": "icmp", "icmp_type": 300, "cidr": "10.0.0.0/8"}`, "icmp_type", "out of range"},
		{"authorize cidr", "POST", "/v1/security-groups/acme-vpc-default/ingress", `{"protocol": "all", "cidr": "300.0.0.0/8"}`, "cidr", "is not"},
		{"authorize unknown peer", "POST", "/v1/security-groups/acme-vpc-default/ingress", `{"protocol": "all", "group": "nosuch"}`, "group", "does not exist or is not granted"},
		{"authorize other account's group", "POST", "/v1/security-groups/acme-vpc-default/ingress", `{"protocol": "all", "group": "globex-vpc-default"}`, "group", `security group "globex-vpc-default" does not exist or is not granted`},
		{"authorize unknown field", "POST", "/v1/security-groups/acme-vpc-default/ingress", `{"protocol": "all", "cidr": "10.0.0.0/8", "port": "22"}`, "port", `unknown field "port"`},
		{"apply path", "POST", "/v1/apply", "security_groups:\n  - {name: x, vpc: acme-vpc, ingress: [{protocol: tcp, ports: '70000', cidr: 10.0.0.0/8}]}\n", "security_groups[0].ingress[0].ports", "out of range"},
		{"apply peer", "POST", "/v1/apply", "security_groups:\n  - {name: x, vpc: acme-vpc, ingress: [{protocol: tcp, group: globex-vpc-default}]}\n", "security_groups[0].ingress[0].group", "is not granted"},
		{"apply duplicate", "POST", "/v1/apply", "security_groups: [{name: x, vpc: acme-vpc}, {name: x, vpc: acme-vpc}]\n", "security_groups[1].name", `security_group "x" is also security_groups[0]`},
		{"nic groups", "PUT", "/v1/nics/web1/security-groups", `{"security_groups": ["acme-vpc-default", "nosuch"]}`, "security_groups[1]", `security group "nosuch" does not exist`},
		{"nic groups other account", "PUT", "/v1/nics/web1/security-groups", `{"security_groups": ["globex-vpc-default"]}`, "security_groups[0]", `security group "globex-vpc-default" does not exist`},
		{"nic create groups", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "security_groups": ["nosuch"]}`, "security_groups[0]", "does not exist"},
		{"grant missing", "POST", "/v1/security-groups/acme-vpc-default/grants", `{"account": "nosuch"}`, "account", `account "nosuch" does not exist`},
		{"grant self", "POST", "/v1/security-groups/acme-vpc-default/grants", `{"account": "acme"}`, "account", "owns the group"},
		{"grant empty", "POST", "/v1/security-groups/acme-vpc-default/grants", `{}`, "account", "is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			snap := fmt.Sprint(e.b.snapshot())
			er := e.wantErr(400, api.CodeInvalidArgument, tc.field, tc.msg, tc.method, tc.path, e.acme, tc.body)
			if strings.Contains(er.Message, "globex-vpc\"") || strings.Contains(er.Message, "gweb1") {
				t.Errorf("error names another account's objects: %q", er.Message)
			}
			if e.commits() != 0 || fmt.Sprint(e.b.snapshot()) != snap {
				t.Fatal("an invalid request changed the backend")
			}
		})
	}
}

// sharedEnv adds a shared VPC "pub" of acme with subnet "pub-a", an acme
// NIC and group in it, and a globex NIC and group in it.
func sharedEnv(t testing.TB) *env {
	e := newEnv(t)
	e.want(201, "POST", "/v1/vpcs", e.admin, `{"name": "pub", "account": "acme", "cidr": "10.1.0.0/16", "shared": true}`, nil)
	e.want(201, "POST", "/v1/subnets", e.acme, `{"name": "pub-a", "vpc": "pub", "cidr": "10.1.1.0/24"}`, nil)
	var n model.NIC
	n = model.NIC{}
	e.want(201, "POST", "/v1/nics", e.acme, `{"name": "a1", "subnet": "pub-a"}`, &n)
	if n.IP != "10.1.1.4" || n.Account != "" {
		t.Fatalf("acme's NIC %+v", n)
	}
	e.want(201, "POST", "/v1/security-groups", e.acme, `{"name": "a-web", "vpc": "pub", "ingress": [{"protocol": "tcp", "ports": "80", "cidr": "0.0.0.0/0"}]}`, nil)
	e.want(201, "POST", "/v1/security-groups", e.globex, `{"name": "g-app", "vpc": "pub"}`, nil)
	// globex's NIC is its own, with the next free address of the VPC.
	n = model.NIC{}
	e.want(201, "POST", "/v1/nics", e.globex, `{"name": "g1", "subnet": "pub-a", "security_groups": ["g-app"]}`, &n)
	if n.Account != "globex" || n.IP != "10.1.1.5" {
		t.Fatalf("globex's NIC %+v: want account globex and 10.1.1.5 (10.1.1.4 is acme's)", n)
	}
	return e
}

func TestSharedVPC(t *testing.T) {
	e := sharedEnv(t)
	// globex sees the shared VPC and subnet, read-only.
	var vpcs list[model.VPC]
	e.want(200, "GET", "/v1/vpcs", e.globex, nil, &vpcs)
	if len(vpcs.Items) != 2 || vpcs.Items[1].Name != "pub" || !vpcs.Items[1].Shared {
		t.Fatalf("globex's VPCs %+v", vpcs.Items)
	}
	e.want(200, "GET", "/v1/subnets/pub-a", e.globex, nil, nil)
	before := e.commits()
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "PUT", "/v1/vpcs/pub", e.globex, `{"cidr": "10.1.0.0/16", "shared": true}`)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "DELETE", "/v1/subnets/pub-a", e.globex, nil)
	e.wantErr(403, api.CodePermissionDenied, "vpc", "only it may add subnets", "POST", "/v1/subnets", e.globex, `{"name": "g-sub", "vpc": "pub", "cidr": "10.1.2.0/24"}`)
	e.wantErr(400, api.CodeInvalidArgument, "shared", "only an admin", "POST", "/v1/vpcs", e.globex, `{"name": "g2", "cidr": "10.2.0.0/16", "shared": true}`)
	e.wantErr(400, api.CodeInvalidArgument, "shared", "only an admin", "PUT", "/v1/vpcs/globex-vpc", e.globex, `{"shared": true}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", `must be "globex"`, "POST", "/v1/nics", e.globex, `{"name": "g9", "subnet": "pub-a", "account": "acme"}`)
	// An address acme uses is taken, without naming acme's NIC.
	er := e.wantErr(400, api.CodeInvalidArgument, "ip", "10.1.1.4 is already used", "POST", "/v1/nics", e.globex, `{"name": "g9", "subnet": "pub-a", "ip": "10.1.1.4"}`)
	if strings.Contains(er.Message, "a1") {
		t.Errorf("error names acme's NIC: %q", er.Message)
	}
	if e.commits() != before {
		t.Fatal("a refused request committed")
	}
	// A re-applied export of what globex sees changes nothing.
	code, doc := e.do("GET", "/v1/export", e.globex, nil)
	if code != 200 || !strings.Contains(string(doc), "name: pub") || strings.Contains(string(doc), "a1") || strings.Contains(string(doc), "a-web") {
		t.Fatalf("globex's export:\n%s", doc)
	}
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.globex, doc, &res)
	for _, c := range res.Changes {
		if c.Op != api.OpUnchanged {
			t.Errorf("re-applied export: %+v", c)
		}
	}

	// NICs: each account sees its own; the VPC's owner sees all of its VPC.
	names := func(token string) []string {
		var l list[model.NIC]
		e.want(200, "GET", "/v1/nics", token, nil, &l)
		var out []string
		for _, n := range l.Items {
			out = append(out, n.Name)
		}
		return out
	}
	if got := names(e.globex); !slices.Equal(got, []string{"g1", "gweb1"}) {
		t.Errorf("globex sees NICs %v", got)
	}
	if got := names(e.acme); !slices.Equal(got, []string{"a1", "g1", "web1"}) {
		t.Errorf("acme sees NICs %v", got)
	}
	e.want(404, "GET", "/v1/nics/a1", e.globex, nil, nil)
	// acme sees globex's NIC and group in its VPC, but may not change them.
	e.want(200, "GET", "/v1/nics/g1", e.acme, nil, nil)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "PUT", "/v1/nics/g1", e.acme, `{"host": "h1"}`)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "PUT", "/v1/nics/g1/security-groups", e.acme, `{"security_groups": []}`)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "POST", "/v1/nics/g1/secondary-ips", e.acme, `{"ip": "10.1.1.50"}`)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "DELETE", "/v1/nics/g1/secondary-ips/10.1.1.5", e.acme, nil)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "POST", "/v1/security-groups/g-app/ingress", e.acme, `{"protocol": "all", "cidr": "10.0.0.0/8"}`)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "DELETE", "/v1/security-groups/g-app", e.acme, nil)
	// globex sees its own groups (with its default group of the VPC).
	var l list[model.SecurityGroup]
	e.want(200, "GET", "/v1/security-groups", e.globex, nil, &l)
	var gs []string
	for _, g := range l.Items {
		gs = append(gs, g.Name)
	}
	if !slices.Equal(gs, []string{"g-app", "globex-vpc-default", "pub-globex-default"}) {
		t.Fatalf("globex's groups %v", gs)
	}
	// Its group in use: 409 naming the user.
	e.wantErr(409, api.CodeConflict, "", `security_group "g-app" is used by nic "g1"`, "DELETE", "/v1/security-groups/g-app", e.globex, nil)
	e.checkValid()
}

func TestSecurityGroupGrants(t *testing.T) {
	e := sharedEnv(t)
	rule := `{"protocol": "tcp", "ports": "5432", "group": "a-web"}`
	// globex can neither see acme's group nor use it until acme grants it.
	e.want(404, "GET", "/v1/security-groups/a-web", e.globex, nil, nil)
	e.wantErr(404, api.CodeNotFound, "", `security_group "a-web" not found`, "POST", "/v1/security-groups/a-web/grants", e.globex, `{"account": "globex"}`)
	e.wantErr(404, api.CodeNotFound, "", `security_group "a-web" not found`, "POST", "/v1/security-groups/a-web/ingress", e.globex, `{"protocol": "all", "cidr": "0.0.0.0/0"}`)
	e.wantErr(400, api.CodeInvalidArgument, "group", `security group "a-web" does not exist or is not granted to account "globex"`,
		"POST", "/v1/security-groups/g-app/ingress", e.globex, rule)

	var g model.SecurityGroup
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups/a-web/grants", e.acme, `{"account": "globex"}`, &g)
	if !slices.Equal(g.Grants, []string{"globex"}) {
		t.Fatalf("after grant %+v", g)
	}
	e.wantErr(409, api.CodeConflict, "account", "already granted", "POST", "/v1/security-groups/a-web/grants", e.acme, `{"account": "globex"}`)
	g = model.SecurityGroup{}
	e.want(201, "POST", "/v1/security-groups/g-app/ingress", e.globex, rule, &g)
	if r := e.builtRule("g-app", model.Ingress, 0); r.Inactive != "" || r.Peer == nil || r.Peer.Name != "a-web" {
		t.Fatalf("granted rule %+v", r)
	}
	// The granted group's rules stay invisible and unchecked for globex;
	// a group of its own may name it on create too.
	e.want(201, "POST", "/v1/security-groups", e.globex, `{"name": "g-db", "vpc": "pub", "ingress": [`+rule+`]}`, nil)

	// Revoking the grant leaves globex's rules, inactive, and globex's
	// unrelated changes to those groups go on.
	e.wantErr(404, api.CodeNotFound, "", `security_group "a-web" not found`, "DELETE", "/v1/security-groups/a-web/grants/globex", e.globex, nil)
	g = model.SecurityGroup{}
	e.want(200, "DELETE", "/v1/security-groups/a-web/grants/globex", e.acme, nil, &g)
	if len(g.Grants) != 0 {
		t.Fatalf("after revoke %+v", g)
	}
	e.wantErr(404, api.CodeNotFound, "", `is not granted to account "globex"`, "DELETE", "/v1/security-groups/a-web/grants/globex", e.acme, nil)
	if r := e.builtRule("g-app", model.Ingress, 0); r.Inactive == "" {
		t.Fatal("the rule of a revoked grant is still in force")
	}
	g = model.SecurityGroup{}
	e.want(200, "PUT", "/v1/security-groups/g-app", e.globex, `{"description": "app tier"}`, &g)
	if len(g.Ingress) != 1 || g.Ingress[0].Group != "a-web" {
		t.Fatalf("globex's group after an unrelated update %+v", g)
	}
	e.want(201, "POST", "/v1/security-groups/g-app/egress", e.globex, `{"protocol": "udp", "ports": "53", "cidr": "10.1.0.2/32"}`, nil)
	// But no new rule may name it.
	e.wantErr(400, api.CodeInvalidArgument, "group", "is not granted", "POST", "/v1/security-groups/g-app/egress", e.globex, `{"protocol": "all", "group": "a-web"}`)
	e.wantErr(400, api.CodeInvalidArgument, "ingress[1].group", "is not granted", "PUT", "/v1/security-groups/g-app", e.globex,
		`{"ingress": [`+rule+`, {"protocol": "all", "group": "a-web"}]}`)
	// acme's group is in use by globex's rules (acme sees them: they are
	// in its VPC).
	e.wantErr(409, api.CodeConflict, "", `security_group "a-web" is used by security_group "g-app", security_group "g-db"`, "DELETE", "/v1/security-groups/a-web", e.acme, nil)
	// globex is not told which of acme's groups use its group.
	e.want(201, "POST", "/v1/security-groups/g-app/grants", e.globex, `{"account": "acme"}`, nil)
	e.want(201, "POST", "/v1/security-groups/a-web/ingress", e.acme, `{"protocol": "all", "group": "g-app"}`, nil)
	e.wantErr(409, api.CodeConflict, "", `security_group "g-app" is used by nic "g1", 1 object of another account`, "DELETE", "/v1/security-groups/g-app", e.globex, nil)
	e.want(200, "POST", "/v1/security-groups/a-web/ingress/revoke", e.acme, `{"protocol": "all", "group": "g-app"}`, nil)
	e.checkValid()

	// Deleting an account takes its grants with it.
	e.want(201, "POST", "/v1/security-groups/a-web/grants", e.acme, `{"account": "globex"}`, nil)
	for _, p := range []string{"/v1/nics/g1", "/v1/security-groups/g-app", "/v1/security-groups/g-db", "/v1/nics/gweb1", "/v1/subnets/globex-web", "/v1/vpcs/globex-vpc"} {
		e.want(204, "DELETE", p, e.globex, nil, nil)
	}
	e.want(204, "DELETE", "/v1/accounts/globex", e.admin, nil, nil)
	if g := e.group("a-web"); g == nil || len(g.Grants) != 0 {
		t.Fatalf("grant outlived its account: %+v", g)
	}
	if e.group("pub-globex-default") != nil {
		t.Fatal("globex's default group outlived it")
	}
	e.checkValid()
}

func TestNICSecurityGroups(t *testing.T) {
	e := newEnv(t)
	e.want(201, "POST", "/v1/security-groups", e.acme, `{"name": "web", "vpc": "acme-vpc"}`, nil)
	e.want(201, "POST", "/v1/security-groups", e.acme, `{"name": "ssh", "vpc": "acme-vpc"}`, nil)
	var n model.NIC
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/web1/security-groups", e.acme, `{"security_groups": ["web", "ssh"]}`, &n)
	if !slices.Equal(n.SecurityGroups, []string{"web", "ssh"}) || !slices.Equal(e.nic("web1").SecurityGroups, n.SecurityGroups) {
		t.Fatalf("after set %+v", n)
	}
	// A NIC update without the field keeps the groups; with it, sets them.
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/web1", e.acme, `{"host": "h2"}`, &n)
	if n.Host != "h2" || !slices.Equal(n.SecurityGroups, []string{"web", "ssh"}) {
		t.Fatalf("after update without groups %+v", n)
	}
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/web1", e.acme, `{"host": "h2", "security_groups": ["ssh"]}`, &n)
	if !slices.Equal(n.SecurityGroups, []string{"ssh"}) {
		t.Fatalf("after update with groups %+v", n)
	}
	e.wantErr(409, api.CodeConflict, "", `security_group "ssh" is used by nic "web1"`, "DELETE", "/v1/security-groups/ssh", e.acme, nil)
	e.wantErr(409, api.CodeConflict, "", `vpc "acme-vpc" is used by security_group "ssh", security_group "web", subnet "acme-web"`, "DELETE", "/v1/vpcs/acme-vpc", e.acme, nil)
	// An empty list: the default group.
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/web1/security-groups", e.acme, `{"security_groups": []}`, &n)
	if n.SecurityGroups != nil {
		t.Fatalf("after reset %+v", n)
	}
	n2, err := model.Build(e.b.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if g := n2.NICs["web1"].Groups; len(g) != 1 || g[0].Name != "acme-vpc-default" {
		t.Fatalf("built groups of web1 %v", g)
	}
	e.wantErr(404, api.CodeNotFound, "", `nic "gweb1" not found`, "PUT", "/v1/nics/gweb1/security-groups", e.acme, `{"security_groups": []}`)

	// A VPC goes with its default group once nothing else uses it.
	for _, p := range []string{"/v1/security-groups/ssh", "/v1/security-groups/web", "/v1/nics/web1", "/v1/subnets/acme-web", "/v1/vpcs/acme-vpc"} {
		e.want(204, "DELETE", p, e.acme, nil, nil)
	}
	if e.group("acme-vpc-default") != nil {
		t.Fatal("the default group outlived its VPC")
	}
	e.checkValid()
}

func TestApplySecurityGroups(t *testing.T) {
	e := newEnv(t)
	doc := `
vpcs: [{name: shop, cidr: 10.20.0.0/16}]
subnets: [{name: shop-web, vpc: shop, cidr: 10.20.1.0/24}]
security_groups:
  - name: shop-web
    vpc: shop
    ingress:
      - {protocol: tcp, ports: "443", cidr: 0.0.0.0/0}
      - {protocol: tcp, ports: "22", group: shop-admin}
  - name: shop-admin
    vpc: shop
    egress: []
  - name: shop-default
    vpc: shop
    default: true
    ingress: []
nics: [{name: shop1, subnet: shop-web, security_groups: [shop-web, shop-admin]}]
`
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.acme, doc, &res)
	want := "create vpc shop; create subnet shop-web; create security_group shop-web; create security_group shop-admin; update security_group shop-default; create nic shop1"
	if got := ops(res.Changes); got != want {
		t.Fatalf("changes:\n%s\nwant\n%s", got, want)
	}
	web := e.group("shop-web")
	if web == nil || web.Account != "acme" || len(web.Egress) != 1 || web.Ingress[1].ID == 0 {
		t.Fatalf("applied group %+v", web)
	}
	if g := e.group("shop-default"); g == nil || len(g.Ingress) != 0 || len(g.Egress) != 1 {
		t.Fatalf("applied default group %+v", g)
	}
	// Applying it again changes nothing; rule IDs stay.
	before := e.commits()
	e.want(200, "POST", "/v1/apply", e.acme, doc, &res)
	for _, c := range res.Changes {
		if c.Op != api.OpUnchanged {
			t.Errorf("re-apply: %+v", c)
		}
	}
	if e.commits() != before || e.group("shop-web").Ingress[1].ID != web.Ingress[1].ID {
		t.Fatal("re-apply committed or changed rule IDs")
	}
	// So does its export.
	_, out := e.do("GET", "/v1/export", e.acme, nil)
	e.want(200, "POST", "/v1/apply", e.acme, out, &res)
	if e.commits() != before {
		t.Fatalf("re-applied export changed %+v", res.Changes)
	}
	e.checkValid()
}
