package model

import (
	"strings"
	"testing"
)

const sgPolicy = good + `
security_groups:
  - name: web
    vpc: acme-vpc
    ingress:
      - {protocol: tcp, ports: "80-81", group: db}
      - {protocol: icmp, icmp_type: 8, cidr: 10.0.0.0/8}
    egress:
      - {protocol: all, cidr: 0.0.0.0/0}
  - name: db
    vpc: acme-vpc
    ingress:
      - {id: 77, protocol: tcp, ports: "5432", group: web}
`

func TestSecurityGroupsBuild(t *testing.T) {
	p := mustParse(t, strings.Replace(sgPolicy, "ip: 10.0.2.10, mac", "ip: 10.0.2.10, security_groups: [db], mac", 1))
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	// Default groups are synthesized for every VPC, with the AWS rules.
	d := n.SecurityGroups["acme-vpc-default"]
	if d == nil || !d.Default || len(d.Ingress) != 1 || d.Ingress[0].Peer != d || len(d.Egress) != 1 || d.Egress[0].CIDR.Bits() != 0 {
		t.Fatalf("default group of acme-vpc: %+v", d)
	}
	if n.SecurityGroups["globex-vpc-default"] == nil {
		t.Fatal("globex-vpc has no default group")
	}
	// NICs without groups are in their default group; db1 is in db.
	if g := n.NICs["web1"].Groups; len(g) != 1 || g[0] != d {
		t.Errorf("web1 groups %v", g)
	}
	db := n.SecurityGroups["db"]
	if g := n.NICs["db1"].Groups; len(g) != 1 || g[0] != db || len(db.Members) != 1 {
		t.Errorf("db1 groups %v, db members %v", g, db.Members)
	}
	if db.Ingress[0].ID != 77 {
		t.Errorf("explicit rule id not kept: %d", db.Ingress[0].ID)
	}
	w := n.SecurityGroups["web"]
	r := w.Ingress[0]
	if r.Proto != ProtoTCP || r.PortMin != 80 || r.PortMax != 81 || r.Peer != db || r.ID == 0 || r.ID > maxRuleID {
		t.Errorf("web ingress[0] = %+v", r)
	}
	if got := r.Text(); got != "ingress tcp 80-81 from group db" {
		t.Errorf("Text %q", got)
	}
	if got := w.Ingress[1].Text(); got != "ingress icmp type 8 from 10.0.0.0/8" {
		t.Errorf("Text %q", got)
	}
	// IDs are deterministic and survive Pin + rebuild with new rules.
	Pin(p, n)
	id := p.SecurityGroups[0].Ingress[0].ID
	p.SecurityGroups[0].Ingress = append([]Rule{{Protocol: "udp", Ports: "53", CIDR: "10.0.0.0/8"}}, p.SecurityGroups[0].Ingress...)
	n2, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if n2.SecurityGroups["web"].Ingress[1].ID != id || n2.SecurityGroups["web"].Ingress[0].ID == id {
		t.Errorf("pinned rule id moved: %d → %d", id, n2.SecurityGroups["web"].Ingress[1].ID)
	}
}

func TestSecurityGroupErrors(t *testing.T) {
	cases := []struct{ name, edit, want string }{
		{"port out of range", `ports: "80-81"|ports: "80-70000"`, `security_group "web": ingress[0].ports: "80-70000" is out of range`},
		{"port order", `ports: "80-81"|ports: "90-80"`, `ingress[0].ports: "90-80": the first port is greater`},
		{"port syntax", `ports: "80-81"|ports: "http"`, `ingress[0].ports: "http" is not a port`},
		{"ports on icmp", `{protocol: icmp, icmp_type: 8|{protocol: icmp, ports: "1", icmp_type: 8`, `ingress[1].ports: only tcp and udp rules have ports`},
		{"icmp type", `icmp_type: 8|icmp_type: 300`, `ingress[1].icmp_type: 300 is out of range 0-255`},
		{"icmp code", `icmp_type: 8|icmp_type: 8, icmp_code: -2`, `ingress[1].icmp_code: -2 is out of range`},
		{"protocol", `{protocol: tcp, ports: "80-81"|{protocol: tcpp, ports: "80-81"`, `ingress[0].protocol: "tcpp" is not tcp`},
		{"protocol number", `{protocol: tcp, ports: "80-81"|{protocol: "256", ports: "80-81"`, `ingress[0].protocol: "256" is not`},
		{"bad cidr", `cidr: 10.0.0.0/8}|cidr: 10.0.0.0/33}`, `ingress[1].cidr: "10.0.0.0/33" is not an IPv4 CIDR`},
		{"no peer", `ports: "5432", group: web}|ports: "5432"}`, `security_group "db": ingress[0].cidr: a peer is required`},
		{"both peers", `ports: "5432", group: web}|ports: "5432", group: web, cidr: 10.0.0.0/8}`, `give either cidr or group`},
		{"dangling peer", `ports: "5432", group: web}|ports: "5432", group: nosuch}`, `ingress[0].group: security group "nosuch" does not exist`},
		{"duplicate rule", `{protocol: icmp, icmp_type: 8, cidr: 10.0.0.0/8}|{protocol: tcp, ports: "80-81", group: db}`, `ingress[1]: duplicates ingress[0]`},
		{"duplicate id", `{protocol: icmp, icmp_type: 8|{id: 77, protocol: icmp, icmp_type: 8`, `id: 77 is already used`},
		{"dangling vpc", `name: db
    vpc: acme-vpc|name: db
    vpc: nosuch`, `security_group "db": vpc: vpc "nosuch" does not exist`},
		{"reserved name", `name: db
|name: db-default
`, `names ending in -default are kept`},
		{"duplicate name", `name: db
|name: web
`, `security_group "web": name: is a duplicate`},
		{"peer in other vpc", `ports: "5432", group: web}|ports: "5432", group: globex-vpc-default}`, `is in vpc "globex-vpc"; rules name groups of their own vpc or of a peered one`},
		{"nic group unknown", `ip: 10.0.2.10, mac|ip: 10.0.2.10, security_groups: [nope], mac`, `nic "db1": security_groups[0]: security group "nope" does not exist`},
		{"nic group other vpc", `{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}|{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10, security_groups: [web]}`, `nic "gweb1": security_groups[0]: security group "web" is in vpc "acme-vpc"`},
		{"nic account not shared", `{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}|{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10, account: acme}`, `nic "gweb1": account: vpc "globex-vpc" belongs to account "globex" and is not shared`},
		{"group account not shared", `name: db
    vpc: acme-vpc|name: db
    account: globex
    vpc: acme-vpc`, `security_group "db": account: vpc "acme-vpc" belongs to account "acme" and is not shared`},
		{"grant unknown account", `name: db
    vpc: acme-vpc|name: db
    grants: [nosuch]
    vpc: acme-vpc`, `security_group "db": grants[0]: account "nosuch" does not exist`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts := strings.SplitN(tc.edit, "|", 2)
			if !strings.Contains(sgPolicy, parts[0]) {
				t.Fatalf("edit %q does not apply", parts[0])
			}
			_, err := Build(mustParse(t, strings.Replace(sgPolicy, parts[0], parts[1], 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("error %v has no FieldError", err)
			}
		})
	}
}

// In a shared VPC, another account's rule naming a group is inactive until
// the group's owner grants it; granting makes it active.
func TestSharedVPCGrants(t *testing.T) {
	src := `
accounts: [{name: a}, {name: b}]
hosts: [{name: h1, underlay_ip: 172.31.0.11}]
vpcs: [{name: v, account: a, cidr: 10.0.0.0/16, shared: true}]
subnets: [{name: s, vpc: v, cidr: 10.0.1.0/24}]
nics:
  - {name: an, subnet: s, host: h1, ip: 10.0.1.10, security_groups: [a-web]}
  - {name: bn, subnet: s, host: h1, ip: 10.0.1.11, account: b}
security_groups:
  - {name: a-web, vpc: v}
  - name: b-app
    vpc: v
    account: b
    ingress: [{protocol: tcp, ports: "80", group: a-web}]
`
	p := mustParse(t, src)
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if n.NICs["bn"].Account != "b" || n.NICs["bn"].Groups[0].Name != "v-b-default" {
		t.Fatalf("bn: account %q groups %v", n.NICs["bn"].Account, n.NICs["bn"].Groups)
	}
	if r := n.SecurityGroups["b-app"].Ingress[0]; r.Inactive == "" {
		t.Fatal("rule naming an ungranted group is active")
	}
	p.SecurityGroups[0].Grants = []string{"b"}
	n, err = Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.SecurityGroups["b-app"].Ingress[0]; r.Inactive != "" {
		t.Fatalf("granted rule inactive: %s", r.Inactive)
	}
	// EnsureDefaultGroups stores both accounts' default groups, and drops
	// them with their VPC.
	EnsureDefaultGroups(p)
	names := map[string]bool{}
	for _, g := range p.SecurityGroups {
		names[g.Name] = true
	}
	if !names["v-default"] || !names["v-b-default"] || len(p.SecurityGroups) != 4 {
		t.Fatalf("defaults: %v", names)
	}
	p.VPCs = nil
	EnsureDefaultGroups(p)
	for _, g := range p.SecurityGroups {
		if g.Default {
			t.Fatalf("default group %s outlived its VPC", g.Name)
		}
	}
}

func TestParsePortsAndSameRule(t *testing.T) {
	for in, want := range map[string][2]uint16{"": {0, 65535}, "22": {22, 22}, "8000-8080": {8000, 8080}, "0-65535": {0, 65535}} {
		lo, hi, err := ParsePorts(in)
		if err != nil || lo != want[0] || hi != want[1] {
			t.Errorf("ParsePorts(%q) = %d, %d, %v", in, lo, hi, err)
		}
	}
	if !SameRule(Rule{Protocol: "TCP", Ports: "22", CIDR: "10.0.0.0/8"}, Rule{ID: 5, Protocol: "6", Ports: "22-22", CIDR: "10.0.0.0/8", Description: "x"}) {
		t.Error("equal rules differ")
	}
	if SameRule(Rule{Protocol: "tcp", Ports: "22", CIDR: "10.0.0.0/8"}, Rule{Protocol: "tcp", Ports: "23", CIDR: "10.0.0.0/8"}) {
		t.Error("different rules equal")
	}
}
