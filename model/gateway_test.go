package model

import (
	"strings"
	"testing"
)

func gatewayPolicy() *Policy {
	return &Policy{
		Accounts: []Account{{Name: "a"}, {Name: "b"}},
		Hosts: []Host{{Name: "h1", UnderlayIP: "172.31.0.11"},
			{Name: "gw", UnderlayIP: "172.31.0.12", Uplink: &Uplink{Interface: "eth1", IP: "198.51.100.2/24", NextHop: "198.51.100.1"}}},
		VPCs:    []VPC{{Name: "v", Account: "a", CIDR: "10.0.0.0/16"}, {Name: "w", Account: "b", CIDR: "10.0.0.0/16"}},
		Subnets: []Subnet{{Name: "pub", VPC: "v", CIDR: "10.0.1.0/24", RouteTable: "pub-rt"}, {Name: "priv", VPC: "v", CIDR: "10.0.2.0/24"}},
		NICs: []NIC{{Name: "n1", Subnet: "pub", IP: "10.0.1.10", SecondaryIPs: []string{"10.0.1.11"}, Host: "h1"},
			{Name: "n2", Subnet: "priv", IP: "10.0.2.10", Host: "h1"}},
		RouteTables:      []RouteTable{{Name: "pub-rt", VPC: "v", Routes: []Route{{Destination: "0.0.0.0/0", Gateway: "igw"}}}},
		InternetGateways: []InternetGateway{{Name: "igw", Account: "a", VPC: "v"}},
		PublicIPPools:    []PublicIPPool{{Name: "pool", CIDR: "203.0.113.0/24"}},
		PublicIPs: []PublicIP{{Name: "p1", Account: "a", Pool: "pool", Address: "203.0.113.10", NIC: "n1"},
			{Name: "p2", Account: "a", Pool: "pool", Address: "203.0.113.11", NIC: "n2"}},
	}
}

func TestGatewayBuild(t *testing.T) {
	n, err := Build(gatewayPolicy())
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := n.PublicIPs["p1"], n.PublicIPs["p2"]
	if !p1.Reachable || p1.Gateway == nil || p1.Gateway.Name != "gw" || p1.PrivateIP.String() != "10.0.1.10" {
		t.Errorf("p1: %+v", p1)
	}
	if p2.Reachable || !strings.Contains(p2.Why, `route table "v-main" of subnet "priv" has no route to the internet gateway`) {
		t.Errorf("p2 (private subnet): %+v", p2)
	}
	if r := n.RouteTables["pub-rt"].Routes[0]; r.State != RouteActive || r.Gateway == nil || r.Gateway.Name != "igw" {
		t.Errorf("gateway route: %+v", r)
	}
	u := n.Hosts["gw"].Uplink
	if u == nil || u.MAC == nil || u.NextHop.String() != "198.51.100.1" || len(n.GatewayHosts) != 1 {
		t.Errorf("uplink: %+v", u)
	}
	if got := n.PublicIPsOf(n.VPCs["v"]); len(got) != 2 || got[0].Name != "p1" {
		t.Errorf("PublicIPsOf: %v", got)
	}
}

// Detaching the gateway turns its routes into blackholes (with the reason)
// and makes the public IPs carry nothing; no gateway host likewise.
func TestGatewayStates(t *testing.T) {
	p := gatewayPolicy()
	p.InternetGateways[0].VPC = ""
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["pub-rt"].Routes[0]; r.State != RouteBlackhole || !strings.Contains(r.Why, `not attached to vpc "v"`) {
		t.Errorf("route to a detached gateway: %+v", r)
	}
	if pi := n.PublicIPs["p1"]; pi.Reachable || !strings.Contains(pi.Why, "no internet gateway") {
		t.Errorf("p1 without gateway: %+v", pi)
	}
	p = gatewayPolicy()
	p.Hosts[1].Uplink = nil
	n, err = Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if pi := n.PublicIPs["p1"]; pi.Reachable || pi.Gateway != nil || !strings.Contains(pi.Why, "no host has an uplink") {
		t.Errorf("p1 without gateway host: %+v", pi)
	}
	p = gatewayPolicy()
	p.NICs = p.NICs[1:]
	n, err = Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if pi := n.PublicIPs["p1"]; pi.Reachable || pi.NIC != nil || !strings.Contains(pi.Why, `nic "n1" does not exist`) {
		t.Errorf("p1 with its NIC gone: %+v", pi)
	}
}

func TestGatewayValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(p *Policy)
		want string
	}{
		{"uplink interface", func(p *Policy) { p.Hosts[1].Uplink.Interface = "a b" }, `host "gw": uplink.interface`},
		{"uplink ip", func(p *Policy) { p.Hosts[1].Uplink.IP = "198.51.100.2" }, `host "gw": uplink.ip`},
		{"next hop outside", func(p *Policy) { p.Hosts[1].Uplink.NextHop = "192.0.2.1" }, `host "gw": uplink.next_hop`},
		{"next hop mac", func(p *Policy) { p.Hosts[1].Uplink.NextHopMAC = "01:00:5e:00:00:01" }, `host "gw": uplink.next_hop_mac`},
		{"uplink in pool", func(p *Policy) { p.PublicIPPools[0].CIDR = "198.51.100.0/24"; p.PublicIPs = nil }, `host "gw": uplink.ip`},
		{"gateway vpc", func(p *Policy) { p.InternetGateways[0].VPC = "nope" }, `internet_gateway "igw": vpc`},
		{"two gateways", func(p *Policy) {
			p.InternetGateways = append(p.InternetGateways, InternetGateway{Name: "igw2", Account: "a", VPC: "v"})
		}, `internet_gateway "igw2": vpc: vpc "v" already has internet gateway "igw"`},
		{"other account's vpc", func(p *Policy) { p.InternetGateways[0].VPC = "w" }, `internet_gateway "igw": vpc`},
		{"pool cidr", func(p *Policy) { p.PublicIPPools[0].CIDR = "203.0.113.0/33" }, `public_ip_pool "pool": cidr`},
		{"pool overlap", func(p *Policy) {
			p.PublicIPPools = append(p.PublicIPPools, PublicIPPool{Name: "pool2", CIDR: "203.0.113.128/25"})
		}, `public_ip_pool "pool2": cidr`},
		{"unknown pool", func(p *Policy) { p.PublicIPs[0].Pool = "nope" }, `public_ip "p1": pool`},
		{"address outside pool", func(p *Policy) { p.PublicIPs[0].Address = "198.51.100.9" }, `public_ip "p1": address`},
		{"broadcast address", func(p *Policy) { p.PublicIPs[0].Address = "203.0.113.255" }, `public_ip "p1": address`},
		{"duplicate address", func(p *Policy) { p.PublicIPs[1].Address = "203.0.113.10" }, `public_ip "p2": address: 203.0.113.10 is already public IP "p1"`},
		{"missing address", func(p *Policy) { p.PublicIPs[0].Address = "" }, `public_ip "p1": address`},
		{"private ip", func(p *Policy) { p.PublicIPs[0].PrivateIP = "10.0.1.99" }, `public_ip "p1": private_ip`},
		{"same private ip", func(p *Policy) { p.PublicIPs[1].NIC = "n1" }, `public_ip "p2": private_ip: 10.0.1.10 of nic "n1" already has public IP "p1"`},
		{"other account's nic", func(p *Policy) { p.PublicIPs[0].Account = "b" }, `public_ip "p1": nic`},
		{"two targets", func(p *Policy) { p.RouteTables[0].Routes[0].Blackhole = true }, `route_table "pub-rt": routes[0].nic: give one target`},
	} {
		p := gatewayPolicy()
		tc.edit(p)
		_, err := Build(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestAllocatePublicIPs(t *testing.T) {
	p := gatewayPolicy()
	p.PublicIPPools[0].CIDR = "203.0.113.8/29" // usable .9 - .14
	p.PublicIPs = append(p.PublicIPs, PublicIP{Name: "p3", Pool: "pool"}, PublicIP{Name: "p4", Pool: "pool"})
	if err := AllocatePublicIPs(p); err != nil {
		t.Fatal(err)
	}
	if p.PublicIPs[2].Address != "203.0.113.9" || p.PublicIPs[3].Address != "203.0.113.12" {
		t.Fatalf("allocated %q, %q", p.PublicIPs[2].Address, p.PublicIPs[3].Address)
	}
	if _, err := Build(p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		p.PublicIPs = append(p.PublicIPs, PublicIP{Name: "x" + string(rune('a'+i)), Pool: "pool"})
	}
	if err := AllocatePublicIPs(p); err != nil {
		t.Fatal(err)
	}
	p.PublicIPs = append(p.PublicIPs, PublicIP{Name: "full", Pool: "pool"})
	if err := AllocatePublicIPs(p); err == nil || !strings.Contains(err.Error(), "has no free address") {
		t.Fatalf("exhausted pool: %v", err)
	}
}
