package tunnels

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// TestThroughputAndMigrationGap (-perf) measures iperf3 TCP throughput (10 s)
// VM → VM across hosts over each kind (h1–h2 GRE, h2–h3 Geneve, h1–h3
// VXLAN), against two namespaces joined by a plain veth (the machine's
// limit) and by a private OVS bridge with one NORMAL flow — all at the VMs'
// MTU (1450) with TX checksum offload off, as the VMs have it — and the
// migration gap (median of 5 moves under a 10 ms ping). It prints RESULT
// lines for scripts/bench.sh.
func TestThroughputAndMigrationGap(t *testing.T) {
	if !*perf {
		t.Skip("throughput and migration figures only with -perf (scripts/bench.sh)")
	}
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t9", "10.99")
		p.NICs = append(p.NICs, nic("t9", "t9a", "s1", "h1", "10.99.1.10"), nic("t9", "t9b", "s1", "h2", "10.99.1.11"),
			nic("t9", "t9c", "s1", "h3", "10.99.1.12"))
	})
	v := env.Plug(t, "t9a", "t9b", "t9c")
	a, b, c := v["t9a"], v["t9b"], v["t9c"]
	env.Expect(t, "up", labtest.Ping(a, b).OK(), labtest.Ping(b, c).OK(), labtest.Ping(a, c).OK())
	gre := labtest.Iperf(t, b, a, b.Addr)
	geneve := labtest.Iperf(t, c, b, c.Addr)
	vxlan := labtest.Iperf(t, c, a, c.Addr)

	ctx := labtest.Ctx(t)
	spec := lab.PairSpec{MTU: 1450, TxChecksumOff: true}
	spec.Name = "veth"
	vp, err := env.Lab.AddVethPair(ctx, spec)
	labtest.Must(t, err)
	t.Cleanup(func() { env.Lab.RemovePair(ctx, "veth") })
	veth := labtest.Iperf(t, vp.B(), vp.A(), vp.B().IP().String())
	spec.Name = "normal"
	np, err := env.Lab.AddNormalBridgePair(ctx, spec)
	labtest.Must(t, err)
	t.Cleanup(func() { env.Lab.RemovePair(ctx, "normal") })
	normal := labtest.Iperf(t, np.B(), np.A(), np.B().IP().String())
	fmt.Printf("RESULT tunnels gre-gbps=%.2f geneve-gbps=%.2f vxlan-gbps=%.2f veth-gbps=%.2f ovs-normal-gbps=%.2f\n",
		gre, geneve, vxlan, veth, normal)

	var gaps []time.Duration
	hosts := []string{"h2", "h1"}
	for i := 0; i < 5; i++ {
		gaps = append(gaps, migrate(t, a, c, hosts[i%2]))
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	fmt.Printf("RESULT migration gap-ms=%d all=%v\n", gaps[2].Milliseconds(), gaps)
}
