// Package peering checks VPC peering with real packets: one lab of two
// hosts (h1, h2) with the controller in-process reading a policy file
// (env.UpdatePolicy rewrites it and the controller reloads it), VMs as
// network namespaces. Every test uses its own VPCs (10.81-10.89), asserts
// both what a peering lets through and what it stops, waits for each change
// by polling with a deadline, and removes its VMs, processes and policy
// objects. Needs root.
package peering

import (
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// env is the package's lab: only hosts, every test adds (and removes) its
// own accounts, VPCs, subnets, route tables, groups, peerings and NICs.
// File mode: the controller reloads the policy at once; changes show
// within about a second.
var env = labtest.New(labtest.Options{Name: "peering", Prefix: 'p', Hosts: []string{"h1", "h2"},
	Settle: 15 * time.Second})

func TestMain(m *testing.M) { env.Main(m) }

// vpc adds an account, a VPC and one subnet.
func vpc(p *model.Policy, account, name, cidr, subnet, subnetCIDR string) {
	p.Accounts = append(p.Accounts, model.Account{Name: account})
	p.VPCs = append(p.VPCs, model.VPC{Name: name, Account: account, CIDR: cidr})
	p.Subnets = append(p.Subnets, model.Subnet{Name: subnet, VPC: name, CIDR: subnetCIDR})
}

// nicAt is a NIC with an address on a host, in the given groups (none: its
// VPC's default group).
func nicAt(name, subnet, host, ip string, groups ...string) model.NIC {
	return model.NIC{Name: name, Subnet: subnet, Host: host, IP: ip, SecurityGroups: groups}
}

// group is a security group with all egress.
func group(name, vpc string, ingress ...model.Rule) model.SecurityGroup {
	return model.SecurityGroup{Name: name, VPC: vpc, Ingress: ingress, Egress: []model.Rule{model.AllEgress()}}
}

// fromCIDR admits all traffic from a CIDR.
func fromCIDR(cidr string) model.Rule { return model.Rule{Protocol: "all", CIDR: cidr} }

// table is a route table of a VPC.
func table(name, vpc string, routes ...model.Route) model.RouteTable {
	return model.RouteTable{Name: name, VPC: vpc, Routes: routes}
}

// viaPeering routes a destination to a peering.
func viaPeering(dst, name string) model.Route {
	return model.Route{Destination: dst, Peering: name}
}

// peering joins two VPCs (requested by vpc).
func peering(name, vpc, peer string, accepted bool) model.Peering {
	return model.Peering{Name: name, VPC: vpc, PeerVPC: peer, Accepted: accepted}
}

// peeringOf returns a peering of the policy for editing (nil if missing).
func peeringOf(p *model.Policy, name string) *model.Peering {
	for i := range p.Peerings {
		if p.Peerings[i].Name == name {
			return &p.Peerings[i]
		}
	}
	return nil
}

// accept sets a peering's accepted flag.
func accept(t *testing.T, name string, accepted bool) {
	t.Helper()
	if peeringOf(env.Policy(), name) == nil {
		t.Fatalf("peering %s is not in the policy", name)
	}
	env.Update(t, func(p *model.Policy) {
		if pe := peeringOf(p, name); pe != nil {
			pe.Accepted = accepted
		}
	})
}
