// Package policygen generates synthetic policies for benchmarks and scale
// tests: many hosts, NICs spread over VPCs in a controlled way.
package policygen

import (
	"fmt"

	"github.com/openvpc/openvpc/model"
)

// Params shape a generated policy.
type Params struct {
	Hosts       int
	NICsPerHost int
	// HostsPerVPC is how many hosts each VPC spans (1..Hosts). A VPC's NICs
	// are spread evenly over its hosts. Hosts == HostsPerVPC gives one VPC
	// across the whole cloud (the worst case for per-host flow counts).
	HostsPerVPC int
	// VPCsPerHost is how many VPCs have NICs on each host.
	VPCsPerHost int
}

// Generate returns a valid policy. Every VPC uses 10.0.0.0/16 (overlapping
// tenants) with subnets 10.0.<n>.0/24 of up to 250 NICs each.
func Generate(p Params) *model.Policy {
	if p.HostsPerVPC <= 0 || p.HostsPerVPC > p.Hosts {
		p.HostsPerVPC = p.Hosts
	}
	if p.VPCsPerHost <= 0 {
		p.VPCsPerHost = 1
	}
	pol := &model.Policy{}
	for h := 0; h < p.Hosts; h++ {
		pol.Hosts = append(pol.Hosts, model.Host{Name: fmt.Sprintf("h%03d", h),
			UnderlayIP: fmt.Sprintf("172.16.%d.%d", h/250, h%250+1)})
	}
	// Host groups of HostsPerVPC hosts; each group carries VPCsPerHost VPCs.
	groups := (p.Hosts + p.HostsPerVPC - 1) / p.HostsPerVPC
	nicsPerVPCPerHost := p.NICsPerHost / p.VPCsPerHost
	nic := 0
	for g := 0; g < groups; g++ {
		for k := 0; k < p.VPCsPerHost; k++ {
			acct := fmt.Sprintf("acct%d-%d", g, k)
			vpc := fmt.Sprintf("vpc%d-%d", g, k)
			pol.Accounts = append(pol.Accounts, model.Account{Name: acct})
			pol.VPCs = append(pol.VPCs, model.VPC{Name: vpc, Account: acct, CIDR: "10.0.0.0/16"})
			used := 0 // NICs placed in this VPC
			subnets := 0
			for h := g * p.HostsPerVPC; h < (g+1)*p.HostsPerVPC && h < p.Hosts; h++ {
				for i := 0; i < nicsPerVPCPerHost; i++ {
					sn := used / 250
					for subnets <= sn {
						pol.Subnets = append(pol.Subnets, model.Subnet{Name: fmt.Sprintf("%s-s%d", vpc, subnets), VPC: vpc,
							CIDR: fmt.Sprintf("10.0.%d.0/24", subnets)})
						subnets++
					}
					pol.NICs = append(pol.NICs, model.NIC{Name: fmt.Sprintf("nic%06d", nic), Subnet: fmt.Sprintf("%s-s%d", vpc, sn),
						Host: fmt.Sprintf("h%03d", h), IP: fmt.Sprintf("10.0.%d.%d", sn, used%250+4)})
					used++
					nic++
				}
			}
		}
	}
	return pol
}

// AllBound returns compiler host states with every placed NIC bound (ofports
// from 10 upwards) and the tunnel port at 1.
func AllBound(n *model.Net) map[string]map[string]uint32 {
	out := map[string]map[string]uint32{}
	for _, h := range n.HostNames {
		out[h] = map[string]uint32{}
	}
	next := map[string]uint32{}
	for _, name := range n.NICNames {
		h := n.NICs[name].Host
		if h == "" {
			continue
		}
		if next[h] == 0 {
			next[h] = 10
		}
		out[h][name] = next[h]
		next[h]++
	}
	return out
}
