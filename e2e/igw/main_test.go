// Package igw checks the internet gateway with real packets: one lab of
// four hosts (h1, h2 and the gateway hosts gw and gw2, whose br-ints have
// uplinks to the lab's "internet" namespace: router 198.51.100.1, far host
// 192.0.2.10, public pool 203.0.113.0/24 on-link), the controller in-process
// reading a policy file. The gateway's router MAC is not pinned: the controller
// resolves it by ARP through the uplink. Every test uses its own VPC,
// asserts what passes and what does not, and removes what it made. Needs
// root.
package igw

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

var perf = flag.Bool("perf", false, "measure TCP throughput through the gateway (iperf3, 10 s each)")

// The outside network as the gateway host sees it.
const (
	uplinkIP  = "198.51.100.2/24"
	uplinkIP2 = "198.51.100.3/24"
	router    = "198.51.100.1"
	pool      = "public"
	poolCIDR  = "203.0.113.0/24"
)

var env = labtest.New(labtest.Options{Name: "igw", Prefix: 'i', Hosts: []string{"h1", "h2", "gw", "gw2"},
	Settle: 15 * time.Second,
	Policy: func(p *model.Policy) {
		for i := range p.Hosts {
			switch p.Hosts[i].Name {
			case "gw":
				p.Hosts[i].Uplink = &model.Uplink{Interface: "eth1", IP: uplinkIP, NextHop: router}
			case "gw2":
				p.Hosts[i].Uplink = &model.Uplink{Interface: "eth1", IP: uplinkIP2, NextHop: router}
			}
		}
		p.PublicIPPools = append(p.PublicIPPools, model.PublicIPPool{Name: pool, CIDR: poolCIDR})
	}})

func TestMain(m *testing.M) { env.Main(m) }

// vpc adds an account, its VPC with an internet gateway attached, a public
// subnet (its own table: 0.0.0.0/0 → the gateway) and a private one (the
// main table: local only).
func vpc(p *model.Policy, name, cidr, pub, priv string) {
	p.Accounts = append(p.Accounts, model.Account{Name: name})
	p.VPCs = append(p.VPCs, model.VPC{Name: name + "v", Account: name, CIDR: cidr})
	p.InternetGateways = append(p.InternetGateways, model.InternetGateway{Name: name + "-igw", Account: name, VPC: name + "v"})
	p.RouteTables = append(p.RouteTables, model.RouteTable{Name: name + "-pub", VPC: name + "v",
		Routes: []model.Route{{Destination: "0.0.0.0/0", Gateway: name + "-igw"}}})
	p.Subnets = append(p.Subnets,
		model.Subnet{Name: name + "pub", VPC: name + "v", CIDR: pub, RouteTable: name + "-pub"},
		model.Subnet{Name: name + "priv", VPC: name + "v", CIDR: priv})
	// web: ICMP and TCP 80 from anywhere, everything out.
	p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{Name: name + "web", VPC: name + "v", Account: name,
		Ingress: []model.Rule{{Protocol: "icmp", CIDR: "0.0.0.0/0"}, {Protocol: "tcp", Ports: "80", CIDR: "0.0.0.0/0"}},
		Egress:  []model.Rule{model.AllEgress()}})
}

// nic is a NIC in the VPC's web group.
func nic(test, name, subnet, host, ip string) model.NIC {
	return model.NIC{Name: name, Subnet: test + subnet, Host: host, IP: ip, SecurityGroups: []string{test + "web"}}
}

// public is a public IP of the pool associated with a NIC.
func public(test, nic string, last int) model.PublicIP {
	return model.PublicIP{Name: nic + "-pub", Account: test, Pool: pool, Address: fmt.Sprintf("203.0.113.%d", last), NIC: nic}
}

func publicOf(p *model.Policy, name string) *model.PublicIP {
	for i := range p.PublicIPs {
		if p.PublicIPs[i].Name == name {
			return &p.PublicIPs[i]
		}
	}
	return nil
}
