package pipelines

import (
	"fmt"
	"testing"

	"github.com/openvpc/openvpc/internal/policygen"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

func genSnapshot(tb testing.TB, p policygen.Params) *Snapshot {
	tb.Helper()
	n, err := model.Build(policygen.Generate(p))
	if err != nil {
		tb.Fatal(err)
	}
	s := &Snapshot{Net: n, Hosts: map[string]HostState{}}
	for h, ports := range policygen.AllBound(n) {
		s.Hosts[h] = HostState{Ports: ports, TunnelPorts: OfflinePorts(n.Hosts[h])}
	}
	return s
}

// BenchmarkCompile compiles one host's flows for 1, 10 and 100 hosts × 50
// NICs, with VPCs spanning 5 hosts ("spread") and one VPC spanning every
// host ("onevpc", the worst case). flows/host is reported as a metric.
func BenchmarkCompile(b *testing.B) {
	for _, shape := range []struct {
		name        string
		hostsPerVPC int
		vpcsPerHost int
	}{{"spread", 5, 5}, {"onevpc", 0, 1}} {
		for _, hosts := range []int{1, 10, 100} {
			p := policygen.Params{Hosts: hosts, NICsPerHost: 50, HostsPerVPC: shape.hostsPerVPC, VPCsPerHost: shape.vpcsPerHost}
			b.Run(fmt.Sprintf("%s/hosts=%d/nics=%d", shape.name, hosts, hosts*50), func(b *testing.B) {
				s := genSnapshot(b, p)
				b.ReportAllocs()
				b.ResetTimer()
				var flows int
				for i := 0; i < b.N; i++ {
					fs, err := Compile(s, "h000")
					if err != nil {
						b.Fatal(err)
					}
					flows = fs.Len()
				}
				b.ReportMetric(float64(flows), "flows/host")
			})
		}
	}
}

// The generated policies are valid and every host gets its NICs' flows.
func TestGeneratedPoliciesCompile(t *testing.T) {
	for _, hosts := range []int{1, 10} {
		s := genSnapshot(t, policygen.Params{Hosts: hosts, NICsPerHost: 50, HostsPerVPC: 5, VPCsPerHost: 5})
		for h, st := range s.Hosts {
			fs, err := Compile(s, h)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Ports) != 50 {
				t.Fatalf("%s: %d bound NICs, want 50", h, len(st.Ports))
			}
			// Classifier, two port-security flows and an output flow per NIC at least.
			if fs.Len() < 4*50 {
				t.Errorf("%s: only %d flows", h, fs.Len())
			}
		}
	}
}

// sgShapes are the security-group scale shapes of BENCHMARKS.md.
func sgShapes() []struct {
	name string
	pol  func() *model.Policy
} {
	return []struct {
		name string
		pol  func() *model.Policy
	}{
		// The OVN yardstick shapes: H hosts × P ports, G groups × 20 rules.
		{"groups=50x20/2x200", func() *model.Policy {
			return policygen.Generate(policygen.Params{Hosts: 2, NICsPerHost: 200, HostsPerVPC: 2, VPCsPerHost: 10, Groups: 50, RulesPerGroup: 20})
		}},
		{"groups=100x20/3x500", func() *model.Policy {
			return policygen.Generate(policygen.Params{Hosts: 3, NICsPerHost: 500, HostsPerVPC: 3, VPCsPerHost: 10, Groups: 100, RulesPerGroup: 20})
		}},
		// 100 groups × 20 rules all in one VPC of 500 NICs per host.
		{"groups=100x20/onevpc", func() *model.Policy {
			return policygen.Generate(policygen.Params{Hosts: 3, NICsPerHost: 500, HostsPerVPC: 3, VPCsPerHost: 1, Groups: 100, RulesPerGroup: 20})
		}},
		// One group of 1,000 members referenced by 50 groups.
		{"bigpeer=1000x50", func() *model.Policy { return bigPeerPolicy(1000, 50) }},
		// 10,000 CIDR peers (one rule each) on one group.
		{"cidrs=10000", func() *model.Policy { return cidrPolicy(10000) }},
	}
}

// bigPeerPolicy: a group "peers" of `members` NICs, and `refs` groups each
// with one NIC on h1 and a rule admitting tcp from "peers".
func bigPeerPolicy(members, refs int) *model.Policy {
	p := bigGroupPolicy(members, 0, 0)
	for g := 0; g < refs; g++ {
		name := fmt.Sprintf("ref%02d", g)
		p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{Name: name, VPC: "v",
			Ingress: []model.Rule{{Protocol: "tcp", Ports: fmt.Sprint(8000 + g), Group: "peers"}},
			Egress:  []model.Rule{model.AllEgress()}})
		i := members + g
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("r%02d", g), Subnet: fmt.Sprintf("s%d", i/250),
			IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+4), Host: "h1", SecurityGroups: []string{name}})
	}
	return p
}

// cidrPolicy: one group with n ingress rules, each tcp 443 from its own /32
// outside the VPC, on 50 NICs of h1.
func cidrPolicy(n int) *model.Policy {
	p := bigGroupPolicy(0, 0, 50)
	for i := range p.SecurityGroups {
		if p.SecurityGroups[i].Name == "svc" {
			for k := 0; k < n; k++ {
				p.SecurityGroups[i].Ingress = append(p.SecurityGroups[i].Ingress,
					model.Rule{Protocol: "tcp", Ports: "443", CIDR: fmt.Sprintf("100.%d.%d.%d/32", 64+k/65536, k/256%256, k%256)})
			}
		}
	}
	return p
}

// BenchmarkCompileSecurityGroups compiles h1 (h000) of each shape, and
// measures what one rule added to (then removed from) a group costs the
// controller: rebuilding the policy, compiling the host and diffing
// against its installed flows. Metrics: flows/host, sg-flows (tables
// 30/55), mods per change.
func BenchmarkCompileSecurityGroups(b *testing.B) {
	for _, sh := range sgShapes() {
		pol := sh.pol()
		host := "h1"
		if len(pol.Hosts) > 0 && pol.Hosts[0].Name == "h000" {
			host = "h000"
		}
		b.Run(sh.name+"/compile", func(b *testing.B) {
			s := boundSnapshot(b, pol)
			b.ReportAllocs()
			b.ResetTimer()
			var fs *ofrules.FlowSet
			for i := 0; i < b.N; i++ {
				var err error
				if fs, err = Compile(s, host); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fs.Len()), "flows/host")
			b.ReportMetric(float64(sgFlows(fs)), "sg-flows")
		})
		b.Run(sh.name+"/rule-add-remove", func(b *testing.B) {
			base := boundSnapshot(b, pol)
			installed, err := Compile(base, host)
			if err != nil {
				b.Fatal(err)
			}
			// The rule goes into a group with members on the host.
			grp := base.Net.NICs[hostNIC(base, host)].Groups[0].Name
			b.ReportAllocs()
			b.ResetTimer()
			var mods int
			for i := 0; i < b.N; i++ {
				p := pol.Clone()
				for j := range p.SecurityGroups {
					if p.SecurityGroups[j].Name == grp {
						p.SecurityGroups[j].Ingress = append(p.SecurityGroups[j].Ingress, model.Rule{Protocol: "tcp", Ports: "9999", CIDR: "192.0.2.0/24"})
					}
				}
				for _, pp := range []*model.Policy{p, pol} { // add, then remove
					s := boundSnapshot(b, pp)
					fs, err := Compile(s, host)
					if err != nil {
						b.Fatal(err)
					}
					mods = len(ofrules.Diff(installed, fs))
					installed = fs
				}
			}
			b.ReportMetric(float64(mods), "mods/change")
		})
	}
}

func hostNIC(s *Snapshot, host string) string {
	for name := range s.Hosts[host].Ports {
		if len(s.Net.NICs[name].Groups) > 0 && !s.Net.NICs[name].Groups[0].Default {
			return name
		}
	}
	for name := range s.Hosts[host].Ports {
		return name
	}
	return ""
}

func sgFlows(fs *ofrules.FlowSet) int {
	n := 0
	for _, f := range fs.Flows() {
		if f.Table == TableEgressSg || f.Table == TableIngressSg {
			n++
		}
	}
	return n
}

// routeTablePolicy: one VPC 10.0.0.0/16 with `tables` subnets (/24), each
// with its own route table of `routes` routes (every fifth a blackhole, the
// rest to one of 10 appliances), 4 NICs per subnet spread over 2 hosts.
func routeTablePolicy(tables, routes int) *model.Policy {
	p := &model.Policy{
		Accounts: []model.Account{{Name: "a"}},
		VPCs:     []model.VPC{{Name: "v", Account: "a", CIDR: "10.0.0.0/16"}},
		Hosts:    []model.Host{{Name: "h1", UnderlayIP: "172.31.0.11"}, {Name: "h2", UnderlayIP: "172.31.0.12"}},
	}
	off := false
	for s := 0; s < tables; s++ {
		sn := fmt.Sprintf("s%02d", s)
		p.Subnets = append(p.Subnets, model.Subnet{Name: sn, VPC: "v", CIDR: fmt.Sprintf("10.0.%d.0/24", s), RouteTable: "rt" + sn})
		for i := 0; i < 4; i++ {
			p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("n%02d-%d", s, i), Subnet: sn, Host: fmt.Sprintf("h%d", 1+i%2),
				IP: fmt.Sprintf("10.0.%d.%d", s, 10+i)})
		}
		rt := model.RouteTable{Name: "rt" + sn, VPC: "v"}
		for r := 0; r < routes; r++ {
			route := model.Route{Destination: fmt.Sprintf("%d.%d.0.0/16", 100+r/200, r%200)}
			if r%5 == 0 {
				route.Blackhole = true
			} else {
				route.NIC = fmt.Sprintf("fw%d", r%10)
			}
			rt.Routes = append(rt.Routes, route)
		}
		p.RouteTables = append(p.RouteTables, rt)
	}
	for f := 0; f < 10; f++ {
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("fw%d", f), Subnet: "s00", Host: fmt.Sprintf("h%d", 1+f%2),
			IP: fmt.Sprintf("10.0.0.%d", 100+f), SourceDestCheck: &off})
	}
	return p
}

// BenchmarkCompileRouteTables: 50 route tables × 50 routes, compile one
// host, and one route changed (added, then removed) as the controller
// handles it: rebuild, compile the host, diff.
func BenchmarkCompileRouteTables(b *testing.B) {
	pol := routeTablePolicy(50, 50)
	b.Run("tables=50x50/compile", func(b *testing.B) {
		s := boundSnapshot(b, pol)
		b.ReportAllocs()
		var fs *ofrules.FlowSet
		for i := 0; i < b.N; i++ {
			var err error
			if fs, err = Compile(s, "h1"); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		for _, f := range fs.Flows() {
			if f.Table == TableL3Route {
				n++
			}
		}
		b.ReportMetric(float64(fs.Len()), "flows/host")
		b.ReportMetric(float64(n), "route-flows")
	})
	b.Run("tables=50x50/route-add-remove", func(b *testing.B) {
		installed, err := Compile(boundSnapshot(b, pol), "h1")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		var mods int
		for i := 0; i < b.N; i++ {
			p := pol.Clone()
			p.RouteTables[0].Routes = append(p.RouteTables[0].Routes, model.Route{Destination: "198.51.100.0/24", Blackhole: true})
			for _, pp := range []*model.Policy{p, pol} {
				fs, err := Compile(boundSnapshot(b, pp), "h1")
				if err != nil {
					b.Fatal(err)
				}
				mods = len(ofrules.Diff(installed, fs))
				installed = fs
			}
		}
		b.ReportMetric(float64(mods), "mods/change")
	})
}

// gatewayPolicy: one VPC of 1,000 NICs on h1 and h2, each with a public IP,
// a public subnet (0.0.0.0/0 → the gateway) and one gateway host h3.
func gatewayBenchPolicy(n int) *model.Policy {
	p := routeTablePolicy(1, 0)
	p.Hosts = append(p.Hosts, model.Host{Name: "h3", UnderlayIP: "172.31.0.13",
		Uplink: &model.Uplink{Interface: "eth1", IP: "198.51.100.2/24", NextHop: "198.51.100.1", NextHopMAC: "02:99:00:00:00:01"}})
	p.InternetGateways = []model.InternetGateway{{Name: "igw", Account: "a", VPC: "v"}}
	p.PublicIPPools = []model.PublicIPPool{{Name: "pool", CIDR: "203.0.0.0/16"}}
	p.RouteTables[0].Routes = []model.Route{{Destination: "0.0.0.0/0", Gateway: "igw"}}
	p.Subnets[0].CIDR = "10.0.0.0/20"
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("x%04d", i)
		p.NICs = append(p.NICs, model.NIC{Name: name, Subnet: "s00", Host: fmt.Sprintf("h%d", 1+i%2), IP: fmt.Sprintf("10.0.%d.%d", 1+i/200, 10+i%200)})
		p.PublicIPs = append(p.PublicIPs, model.PublicIP{Name: "p" + name, Pool: "pool", Address: fmt.Sprintf("203.0.%d.%d", i/200, 10+i%200), NIC: name})
	}
	return p
}

func BenchmarkCompileGateway(b *testing.B) {
	pol := gatewayBenchPolicy(1000)
	for _, host := range []string{"h3", "h1"} {
		b.Run("publicips=1000/"+host, func(b *testing.B) {
			s := boundSnapshot(b, pol)
			b.ReportAllocs()
			var fs *ofrules.FlowSet
			for i := 0; i < b.N; i++ {
				var err error
				if fs, err = Compile(s, host); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fs.Len()), "flows/host")
		})
	}
	b.Run("publicips=1000/associate", func(b *testing.B) {
		installed, err := Compile(boundSnapshot(b, pol), "h3")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		var mods int
		for i := 0; i < b.N; i++ {
			p := pol.Clone()
			p.PublicIPs[0].NIC = ""
			for _, pp := range []*model.Policy{p, pol} {
				fs, err := Compile(boundSnapshot(b, pp), "h3")
				if err != nil {
					b.Fatal(err)
				}
				mods = len(ofrules.Diff(installed, fs))
				installed = fs
			}
		}
		b.ReportMetric(float64(mods), "mods/change")
	})
}
