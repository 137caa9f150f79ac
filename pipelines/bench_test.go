package pipelines

import (
	"fmt"
	"testing"

	"github.com/openvpc/openvpc/internal/policygen"
	"github.com/openvpc/openvpc/model"
)

func genSnapshot(tb testing.TB, p policygen.Params) *Snapshot {
	tb.Helper()
	n, err := model.Build(policygen.Generate(p))
	if err != nil {
		tb.Fatal(err)
	}
	s := &Snapshot{Net: n, Hosts: map[string]HostState{}}
	for h, ports := range policygen.AllBound(n) {
		s.Hosts[h] = HostState{Ports: ports, TunnelPort: 1}
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
