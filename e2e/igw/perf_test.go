package igw

import (
	"fmt"
	"testing"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// TestGatewayThroughput (-perf) measures TCP throughput with iperf3 for 10 s:
// a VM (h1) → the internet host through the gateway host (tunnel, NAT,
// uplink), against VM → VM across hosts (tunnel only). It prints a RESULT
// line for scripts/bench.sh.
func TestGatewayThroughput(t *testing.T) {
	if !*perf {
		t.Skip("throughput figures only with -perf (scripts/bench.sh)")
	}
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i9", "10.89.0.0/16", "10.89.1.0/24", "10.89.2.0/24")
		// iperf3's control connection uses port 5201.
		g := &p.SecurityGroups[len(p.SecurityGroups)-1]
		g.Ingress = append(g.Ingress, model.Rule{Protocol: "tcp", Ports: "5201", CIDR: "0.0.0.0/0"})
		p.NICs = append(p.NICs, nic("i9", "i9a", "pub", "h1", "10.89.1.10"), nic("i9", "i9b", "pub", "h2", "10.89.1.11"))
		p.PublicIPs = append(p.PublicIPs, public("i9", "i9a", 91))
	})
	v := env.Plug(t, "i9a", "i9b")
	a, b := v["i9a"], v["i9b"]
	inet := env.Internet(t)
	env.Expect(t, "paths up", labtest.Ping(a, inet).At(far).OK(), labtest.Ping(a, b).OK())

	internet := labtest.Iperf(t, inet, a, far)
	vmvm := labtest.Iperf(t, b, a, b.Addr)
	fmt.Printf("RESULT igw vm-internet-gbps=%.2f vm-vm-gbps=%.2f\n", internet, vmvm)
}
