package model

import (
	"strings"
	"testing"
)

const rtPolicy = good + `
route_tables:
  - name: web-rt
    vpc: acme-vpc
    routes:
      - {destination: 0.0.0.0/0, blackhole: true}
      - {destination: 172.16.0.0/12, nic: db1}
`

func TestRouteTablesBuild(t *testing.T) {
	src := strings.Replace(rtPolicy, "{name: acme-web, vpc: acme-vpc, cidr: 10.0.1.0/24}", "{name: acme-web, vpc: acme-vpc, cidr: 10.0.1.0/24, route_table: web-rt}", 1)
	src = strings.Replace(src, `mac: "02:00:00:00:00:01"}`, `mac: "02:00:00:00:00:01", source_dest_check: false}`, 1)
	p := mustParse(t, src)
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	rt, main := n.RouteTables["web-rt"], n.RouteTables["acme-vpc-main"]
	if rt == nil || main == nil || !main.Main || n.RouteTables["globex-vpc-main"] == nil {
		t.Fatalf("tables %v", n.RouteTableNames)
	}
	if n.Subnets["acme-web"].RouteTable != rt || n.Subnets["acme-db"].RouteTable != main {
		t.Errorf("associations: web → %s, db → %s", n.Subnets["acme-web"].RouteTable.Name, n.Subnets["acme-db"].RouteTable.Name)
	}
	if len(rt.Routes) != 2 || rt.Routes[0].State != RouteBlackhole || rt.Routes[1].NIC != n.NICs["db1"] || rt.Routes[1].State != RouteActive {
		t.Errorf("routes %+v %+v", rt.Routes[0], rt.Routes[1])
	}
	if rt.Key == 0 || rt.Key == main.Key {
		t.Errorf("keys %d %d", rt.Key, main.Key)
	}
	if n.NICs["db1"].SourceDestCheck || !n.NICs["web1"].SourceDestCheck {
		t.Error("source/dest check: db1 off, web1 on by default")
	}
	// The target NIC goes: the route stays, as a blackhole (like AWS).
	var kept []NIC
	for _, x := range p.NICs {
		if x.Name != "db1" {
			kept = append(kept, x)
		}
	}
	p.NICs = kept
	n, err = Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["web-rt"].Routes[1]; r.State != RouteBlackhole || !strings.Contains(r.Why, `"db1" does not exist`) {
		t.Errorf("route to a deleted NIC: %+v", r)
	}
	// A NIC of that name in another VPC does not revive the route.
	p.RouteTables[0].Routes[1].NIC = "gweb1"
	if n, err = Build(p); err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["web-rt"].Routes[1]; r.State != RouteBlackhole || r.NIC != nil || !strings.Contains(r.Why, `is in vpc "globex-vpc"`) {
		t.Errorf("route to a NIC of another VPC: %+v", r)
	}
	// EnsureMainTables stores the main tables, and drops them with their VPC.
	EnsureMainTables(p)
	if len(p.RouteTables) != 3 {
		t.Fatalf("tables after EnsureMainTables: %+v", p.RouteTables)
	}
	p.VPCs = p.VPCs[:1]
	EnsureMainTables(p)
	for _, rt := range p.RouteTables {
		if rt.Name == "globex-vpc-main" {
			t.Fatal("main table outlived its VPC")
		}
	}
}

func TestRouteTableErrors(t *testing.T) {
	cases := []struct{ name, edit, want string }{
		{"bad cidr", `destination: 0.0.0.0/0,|destination: 0.0.0/0,`, `route_table "web-rt": routes[0].destination: "0.0.0/0" is not an IPv4 CIDR`},
		{"vpc cidr", `destination: 0.0.0.0/0,|destination: 10.0.0.0/16,`, `routes[0].destination: 10.0.0.0/16 is the vpc's own CIDR`},
		{"duplicate destination", `destination: 172.16.0.0/12, nic: db1}|destination: 0.0.0.0/0, nic: db1}`, `routes[1].destination: 0.0.0.0/0 is already the destination of routes[0]`},
		{"two targets", `{destination: 0.0.0.0/0, blackhole: true}|{destination: 0.0.0.0/0, blackhole: true, nic: db1}`, `routes[0].nic: give one target`},
		{"no target", `{destination: 0.0.0.0/0, blackhole: true}|{destination: 0.0.0.0/0}`, `routes[0].nic: a target is required`},
		{"dangling vpc", `vpc: acme-vpc
    routes|vpc: nosuch
    routes`, `route_table "web-rt": vpc: vpc "nosuch" does not exist`},
		{"reserved name", `name: web-rt|name: web-main`, `names ending in -main are kept for main tables`},
		{"association other vpc", `{name: globex-web, vpc: globex-vpc, cidr: 10.0.1.0/24}|{name: globex-web, vpc: globex-vpc, cidr: 10.0.1.0/24, route_table: web-rt}`, `subnet "globex-web": route_table: route table "web-rt" belongs to vpc "acme-vpc", the subnet to vpc "globex-vpc"`},
		{"association unknown", `{name: globex-web, vpc: globex-vpc, cidr: 10.0.1.0/24}|{name: globex-web, vpc: globex-vpc, cidr: 10.0.1.0/24, route_table: nope}`, `subnet "globex-web": route_table: route table "nope" does not exist`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts := strings.SplitN(tc.edit, "|", 2)
			if !strings.Contains(rtPolicy, parts[0]) {
				t.Fatalf("edit %q does not apply", parts[0])
			}
			_, err := Build(mustParse(t, strings.Replace(rtPolicy, parts[0], parts[1], 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("error %v has no FieldError", err)
			}
		})
	}
}

func TestPeerings(t *testing.T) {
	src := good + `
peerings:
  - {name: p1, vpc: acme-vpc, peer_vpc: initech-vpc}
route_tables:
  - name: web-rt
    vpc: acme-vpc
    routes: [{destination: 10.1.0.0/16, peering: p1}]
`
	src = strings.Replace(src, "  - {name: globex-vpc, account: globex, cidr: 10.0.0.0/16, vni: 42}", "  - {name: globex-vpc, account: globex, cidr: 10.0.0.0/16, vni: 42}\n  - {name: initech-vpc, account: globex, cidr: 10.1.0.0/16}", 1)
	p := mustParse(t, src)
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["web-rt"].Routes[0]; r.State != RouteBlackhole || !strings.Contains(r.Why, "not accepted") {
		t.Fatalf("route over a requested peering: %+v", r)
	}
	p.Peerings[0].Accepted = true
	if n, err = Build(p); err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["web-rt"].Routes[0]; r.State != RouteActive || r.Peer != n.VPCs["initech-vpc"] {
		t.Fatalf("route over an accepted peering: %+v", r)
	}
	if !n.Peered(n.VPCs["initech-vpc"], n.VPCs["acme-vpc"]) || n.Peered(n.VPCs["globex-vpc"], n.VPCs["acme-vpc"]) {
		t.Error("Peered")
	}
	for name, edit := range map[string]struct{ from, to, want string }{
		"overlap":   {"peer_vpc: initech-vpc}", "peer_vpc: globex-vpc}", `peering "p1": peer_vpc: vpc "globex-vpc" (10.0.0.0/16) overlaps vpc "acme-vpc"`},
		"self":      {"peer_vpc: initech-vpc}", "peer_vpc: acme-vpc}", "a vpc cannot peer with itself"},
		"dangling":  {"peer_vpc: initech-vpc}", "peer_vpc: nosuch}", `peer_vpc: vpc "nosuch" does not exist`},
		"duplicate": {"peer_vpc: initech-vpc}", "peer_vpc: initech-vpc}\n  - {name: p2, vpc: initech-vpc, peer_vpc: acme-vpc}", `are already peered by "p1"`},
	} {
		_, err := Build(mustParse(t, strings.Replace(src, edit.from, edit.to, 1)))
		if err == nil || !strings.Contains(err.Error(), edit.want) {
			t.Errorf("%s: %v, want %q", name, err, edit.want)
		}
	}
}
