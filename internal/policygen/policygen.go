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
	// Groups security groups in all, spread round-robin over the VPCs,
	// each with RulesPerGroup ingress rules (see groupRules) and all egress.
	// Every NIC is in GroupsPerNIC (default 2) of its VPC's groups.
	Groups, RulesPerGroup, GroupsPerNIC int
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
	addGroups(pol, p)
	return pol
}

// addGroups adds p.Groups security groups and puts NICs into them.
func addGroups(pol *model.Policy, p Params) {
	if p.Groups <= 0 || len(pol.VPCs) == 0 {
		return
	}
	if p.GroupsPerNIC <= 0 {
		p.GroupsPerNIC = 2
	}
	byVPC := map[string][]string{}
	for g := 0; g < p.Groups; g++ {
		vpc := pol.VPCs[g%len(pol.VPCs)].Name
		byVPC[vpc] = append(byVPC[vpc], fmt.Sprintf("sg%04d", g))
	}
	for g := 0; g < p.Groups; g++ {
		vpc := pol.VPCs[g%len(pol.VPCs)].Name
		peers := byVPC[vpc]
		pol.SecurityGroups = append(pol.SecurityGroups, model.SecurityGroup{
			Name: fmt.Sprintf("sg%04d", g), VPC: vpc,
			Ingress: groupRules(g, p.RulesPerGroup, peers),
			Egress:  []model.Rule{model.AllEgress()},
		})
	}
	vpcOf := map[string]string{}
	for _, s := range pol.Subnets {
		vpcOf[s.Name] = s.VPC
	}
	for i := range pol.NICs {
		gs := byVPC[vpcOf[pol.NICs[i].Subnet]]
		for k := 0; k < p.GroupsPerNIC && k < len(gs); k++ {
			pol.NICs[i].SecurityGroups = append(pol.NICs[i].SecurityGroups, gs[(i+k)%len(gs)])
		}
	}
}

// groupRules is a typical mix: a quarter tcp ports from other groups of
// the VPC, a quarter tcp ranges from CIDRs, a quarter udp from CIDRs, the
// rest ICMP or tcp from the group itself.
func groupRules(g, n int, peers []string) []model.Rule {
	var out []model.Rule
	for k := 0; k < n; k++ {
		cidr := fmt.Sprintf("172.%d.%d.0/24", 16+g%16, k)
		switch k % 4 {
		case 0:
			out = append(out, model.Rule{Protocol: "tcp", Ports: fmt.Sprint(1000 + k), Group: peers[(g+k)%len(peers)]})
		case 1:
			out = append(out, model.Rule{Protocol: "tcp", Ports: fmt.Sprintf("%d-%d", 2000+10*k, 2000+10*k+99), CIDR: cidr})
		case 2:
			out = append(out, model.Rule{Protocol: "udp", Ports: fmt.Sprint(5000 + k), CIDR: cidr})
		default:
			if k%8 == 3 {
				out = append(out, model.Rule{Protocol: "icmp", ICMPType: intp(8), CIDR: cidr})
			} else {
				out = append(out, model.Rule{Protocol: "tcp", Ports: fmt.Sprint(3000 + k), Group: fmt.Sprintf("sg%04d", g)})
			}
		}
	}
	return out
}

func intp(v int) *int { return &v }

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
