// Package tunnels checks tunnel kinds, path MTU, hypervisor integration and
// live migration with real packets: one lab of four hosts on a 1500-byte
// underlay whose pairs use different encapsulations (the deployment prefers
// Geneve, then GRE, then VXLAN; h1 has VXLAN and GRE, h2 GRE and Geneve, h3
// Geneve and VXLAN, so h1–h2 use GRE, h2–h3 Geneve and h1–h3 VXLAN), and h4
// configured for STT only, which its userspace datapath cannot send. VMs get
// the MTU the model derives (1450). The controller runs in-process on a
// policy file and re-checks bridges every second. Needs root.
package tunnels

import (
	"flag"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

var perf = flag.Bool("perf", false, "measure throughput per encapsulation and the migration gap (iperf3, repeated moves)")

var env = labtest.New(labtest.Options{Name: "tunnels", Prefix: 't', Hosts: []string{"h1", "h2", "h3", "h4"},
	Settle: 15 * time.Second, EnsureInterval: time.Second,
	Policy: func(p *model.Policy) {
		p.Settings = &model.Settings{Encaps: []string{"geneve", "gre", "vxlan"}}
		kinds := map[string][]string{"h1": {"vxlan", "gre"}, "h2": {"gre", "geneve"}, "h3": {"geneve", "vxlan"}, "h4": {"stt"}}
		for i := range p.Hosts {
			p.Hosts[i].Encaps = kinds[p.Hosts[i].Name]
			p.Hosts[i].UnderlayMTU = 1500
		}
	}})

func TestMain(m *testing.M) { env.Main(m) }

// vpc adds an account, its VPC and subnets s1 (10.N.1.0/24), s2 (10.N.2.0/24)
// and a group "web" admitting ICMP and TCP 80 from anywhere.
func vpc(p *model.Policy, name, cidr16 string) {
	p.Accounts = append(p.Accounts, model.Account{Name: name})
	p.VPCs = append(p.VPCs, model.VPC{Name: name + "v", Account: name, CIDR: cidr16 + ".0.0/16"})
	p.Subnets = append(p.Subnets,
		model.Subnet{Name: name + "s1", VPC: name + "v", CIDR: cidr16 + ".1.0/24"},
		model.Subnet{Name: name + "s2", VPC: name + "v", CIDR: cidr16 + ".2.0/24"})
	p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{Name: name + "web", VPC: name + "v", Account: name,
		Ingress: []model.Rule{{Protocol: "icmp", CIDR: "0.0.0.0/0"}, {Protocol: "tcp", Ports: "80", CIDR: "0.0.0.0/0"},
			{Protocol: "udp", Ports: "53", CIDR: "0.0.0.0/0"}, {Protocol: "tcp", Ports: "5201", CIDR: "0.0.0.0/0"}},
		Egress: []model.Rule{model.AllEgress()}})
}

func nic(test, name, subnet, host, ip string) model.NIC {
	return model.NIC{Name: name, Subnet: test + subnet, Host: host, IP: ip, SecurityGroups: []string{test + "web"}}
}
