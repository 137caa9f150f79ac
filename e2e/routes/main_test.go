// Package routes checks route tables with real packets: one lab of two
// hosts (h1, h2) with the controller in-process reading a policy file
// (env.UpdatePolicy rewrites it and the controller reloads it), VMs as
// network namespaces, appliances as VMs that forward with their own kernel.
// Every test uses its own VPC, asserts both what a route lets through and
// what it stops, waits for each change by polling with a deadline, and
// removes its VMs, processes and policy objects. Needs root.
package routes

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// env is the package's lab: only hosts, every test adds (and removes) its
// own account, VPC, subnets, route tables and NICs. File mode: the
// controller reloads the policy at once; changes show within about a
// second.
var env = labtest.New(labtest.Options{Name: "routes", Prefix: 'r', Hosts: []string{"h1", "h2"},
	Settle: 15 * time.Second})

func TestMain(m *testing.M) { env.Main(m) }

// vpc adds an account, a VPC and its subnets (name → CIDR).
func vpc(p *model.Policy, account, name, cidr string, subnets map[string]string) {
	p.Accounts = append(p.Accounts, model.Account{Name: account})
	p.VPCs = append(p.VPCs, model.VPC{Name: name, Account: account, CIDR: cidr})
	for _, s := range slices.Sorted(func(yield func(string) bool) {
		for k := range subnets {
			if !yield(k) {
				return
			}
		}
	}) {
		p.Subnets = append(p.Subnets, model.Subnet{Name: s, VPC: name, CIDR: subnets[s]})
	}
}

// nicAt is a NIC with an address on a host (default group, default
// source/destination check).
func nicAt(name, subnet, host, ip string) model.NIC {
	return model.NIC{Name: name, Subnet: subnet, Host: host, IP: ip}
}

// appliance is a NIC with its source/destination check off.
func appliance(name, subnet, host, ip string) model.NIC {
	n := nicAt(name, subnet, host, ip)
	n.SourceDestCheck = boolp(false)
	return n
}

func boolp(v bool) *bool { return &v }

// table is a route table of a VPC.
func table(name, vpc string, routes ...model.Route) model.RouteTable {
	return model.RouteTable{Name: name, VPC: vpc, Routes: routes}
}

// toNIC routes a destination to an appliance NIC.
func toNIC(dst, nic string) model.Route { return model.Route{Destination: dst, NIC: nic} }

// blackhole drops a destination.
func blackhole(dst string) model.Route { return model.Route{Destination: dst, Blackhole: true} }

// associate makes a subnet use a route table ("": its VPC's main table).
func associate(t *testing.T, subnet, table string) {
	t.Helper()
	env.Update(t, func(p *model.Policy) {
		if s := labtest.SubnetOf(p, subnet); s != nil {
			s.RouteTable = table
		}
	})
}

// setCheck turns a NIC's source/destination check on or off.
func setCheck(t *testing.T, nic string, on bool) {
	t.Helper()
	env.Update(t, func(p *model.Policy) {
		if n := labtest.NICOf(p, nic); n != nil {
			if on {
				n.SourceDestCheck = nil // the default
			} else {
				n.SourceDestCheck = boolp(false)
			}
		}
	})
}

// addLocal gives a VM another address (on lo, a /32), one the policy does
// not know: it answers for it and may send from it. Its ARP requests keep
// naming its own address as sender (arp_announce=2): port security takes
// ARP only from a NIC's own addresses (TestApplianceARPFromOtherAddress
// shows what happens otherwise).
func addLocal(t *testing.T, v *labtest.VM, ip string) {
	t.Helper()
	labtest.Sh(t, v, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf."+lab.VMIface+".arp_announce=2")
	addLocalOnly(t, v, ip)
}

// addLocalOnly is addLocal without the ARP setting: the kernel's default
// takes the sender address of an ARP request from the packet waiting for
// it.
func addLocalOnly(t *testing.T, v *labtest.VM, ip string) {
	t.Helper()
	labtest.Sh(t, v, "ip", "addr", "add", ip+"/32", "dev", "lo")
}

// routerMAC is the VPC's router MAC as the built policy has it.
func routerMAC(t *testing.T, vpc string) string {
	t.Helper()
	n, err := env.Net()
	labtest.Must(t, err)
	v := n.VPCs[vpc]
	if v == nil {
		t.Fatalf("vpc %s not in the policy", vpc)
	}
	return v.RouterMAC.String()
}

// addr parses an address.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
