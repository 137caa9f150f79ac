package pipelines

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/openvpc/openvpc/internal/policygen"
	"github.com/openvpc/openvpc/model"
)

// Equal fingerprints must mean equal flows: over many random changes to a
// generated cloud, whenever a host's fingerprint stays the same its
// compiled flows stay the same too; and a change to a VPC a host does not
// carry leaves that host's fingerprint alone (so it is really skipped).
func TestFingerprintSafeAndSelective(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	base := policygen.Generate(policygen.Params{Hosts: 6, NICsPerHost: 12, HostsPerVPC: 2, VPCsPerHost: 3})
	skipped, total := 0, 0
	for step := 0; step < 300; step++ {
		p := base.Clone()
		ports := policygen.AllBound(mustBuild(t, p))
		desc := mutate(rng, p, ports)
		n, err := model.Build(p)
		if err != nil {
			continue // an invalid mutation; the controller would reject it
		}
		before := snapshotOf(t, mustBuild(t, base), policygen.AllBound(mustBuild(t, base)))
		after := snapshotOf(t, n, ports)
		for _, h := range n.HostNames {
			fa, fb := Fingerprint(before, h), Fingerprint(after, h)
			total++
			if fa != fb {
				continue
			}
			skipped++
			a, _ := Compile(before, h)
			b, _ := Compile(after, h)
			if dump(a) != dump(b) {
				t.Fatalf("step %d (%s): %s fingerprint unchanged but flows differ", step, desc, h)
			}
		}
	}
	if skipped == 0 || skipped == total {
		t.Fatalf("fingerprints skipped %d of %d host compiles; expected some but not all", skipped, total)
	}
	t.Logf("%d of %d host compiles skippable", skipped, total)
}

func mustBuild(t *testing.T, p *model.Policy) *model.Net {
	t.Helper()
	n, err := model.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func snapshotOf(t *testing.T, n *model.Net, ports map[string]map[string]uint32) *Snapshot {
	s := &Snapshot{Net: n, Hosts: map[string]HostState{}}
	for h, p := range ports {
		s.Hosts[h] = HostState{Ports: p, TunnelPorts: OfflinePorts(n.Hosts[h])}
	}
	return s
}

// mutate changes one thing of p (or of the bindings) at random.
func mutate(rng *rand.Rand, p *model.Policy, ports map[string]map[string]uint32) string {
	i := rng.Intn(len(p.NICs))
	nic := &p.NICs[i]
	switch rng.Intn(8) {
	case 0:
		nic.SecondaryIPs = append(nic.SecondaryIPs, fmt.Sprintf("10.0.0.%d", 200+rng.Intn(50)))
		return "secondary ip on " + nic.Name
	case 1:
		nic.MAC = fmt.Sprintf("02:00:00:00:%02x:%02x", rng.Intn(256), rng.Intn(256))
		return "mac of " + nic.Name
	case 2:
		p.NICs = append(p.NICs[:i], p.NICs[i+1:]...)
		return "remove nic"
	case 3:
		for h := range ports {
			if _, ok := ports[h][nic.Name]; ok {
				ports[h][nic.Name] = 1000 + uint32(rng.Intn(100))
			}
		}
		return "re-plug " + nic.Name
	case 4:
		for h := range ports {
			delete(ports[h], nic.Name)
		}
		return "unplug " + nic.Name
	case 5:
		v := &p.VPCs[rng.Intn(len(p.VPCs))]
		v.VNI = uint32(5000 + rng.Intn(1000))
		return "vni of " + v.Name
	case 6:
		h := &p.Hosts[rng.Intn(len(p.Hosts))]
		h.UnderlayIP = fmt.Sprintf("172.16.9.%d", 1+rng.Intn(200))
		return "underlay of " + h.Name
	default:
		nic.PortKey = uint32(100000 + rng.Intn(1000))
		return "port key of " + nic.Name
	}
}
