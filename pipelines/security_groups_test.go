package pipelines

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// PortMasks covers exactly lo..hi with aligned blocks, and no two blocks
// could merge (it is minimal).
func TestPortMasks(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	check := func(lo, hi uint16) {
		ms := PortMasks(lo, hi)
		covered := 0
		for _, m := range ms {
			size := int(^m.Mask) + 1
			if lo == 0 && hi == 65535 {
				size = 65536
			}
			if int(m.Value)&(size-1) != 0 {
				t.Fatalf("%d-%d: block %#x/%#x not aligned", lo, hi, m.Value, m.Mask)
			}
			if int(m.Value) < int(lo) || int(m.Value)+size-1 > int(hi) {
				t.Fatalf("%d-%d: block %#x/%#x outside the range", lo, hi, m.Value, m.Mask)
			}
			covered += size
		}
		if covered != int(hi)-int(lo)+1 {
			t.Fatalf("%d-%d: blocks cover %d ports", lo, hi, covered)
		}
		// Minimal: at most 2 blocks per bit of the range width.
		if len(ms) > 32 {
			t.Fatalf("%d-%d: %d blocks", lo, hi, len(ms))
		}
	}
	check(0, 65535)
	check(80, 80)
	check(1, 65535)
	check(1024, 65535)
	for i := 0; i < 2000; i++ {
		a, b := uint16(rng.Intn(65536)), uint16(rng.Intn(65536))
		if a > b {
			a, b = b, a
		}
		check(a, b)
	}
	if got := PortMasks(80, 81); len(got) != 1 || got[0] != (PortMask{80, 0xfffe}) {
		t.Errorf("80-81: %v", got)
	}
	if got := len(PortMasks(1, 65534)); got != 30 {
		t.Errorf("1-65534: %d blocks, want 30", got)
	}
}

// bigGroupPolicy: one VPC, a group "peers" of `members` NICs spread over
// hosts h1..h4, and a group "svc" whose NICs on h1 admit `ranges` port
// ranges from "peers", one rule each.
func bigGroupPolicy(members, ranges, svcNICs int) *model.Policy {
	p := &model.Policy{
		Accounts: []model.Account{{Name: "a"}},
		VPCs:     []model.VPC{{Name: "v", Account: "a", CIDR: "10.0.0.0/16"}},
	}
	for h := 1; h <= 4; h++ {
		p.Hosts = append(p.Hosts, model.Host{Name: fmt.Sprintf("h%d", h), UnderlayIP: fmt.Sprintf("172.31.0.%d", 10+h)})
	}
	for s := 0; s <= members/250+1; s++ {
		p.Subnets = append(p.Subnets, model.Subnet{Name: fmt.Sprintf("s%d", s), VPC: "v", CIDR: fmt.Sprintf("10.0.%d.0/24", s)})
	}
	ip := func(i int) (string, string) {
		return fmt.Sprintf("s%d", i/250), fmt.Sprintf("10.0.%d.%d", i/250, i%250+4)
	}
	for i := 0; i < members; i++ {
		sn, a := ip(i)
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("p%04d", i), Subnet: sn, IP: a, Host: fmt.Sprintf("h%d", 2+i%3), SecurityGroups: []string{"peers"}})
	}
	for i := 0; i < svcNICs; i++ {
		sn, a := ip(members + i)
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("svc%d", i), Subnet: sn, IP: a, Host: "h1", SecurityGroups: []string{"svc"}})
	}
	svc := model.SecurityGroup{Name: "svc", VPC: "v", Egress: []model.Rule{model.AllEgress()}}
	for r := 0; r < ranges; r++ {
		// Ranges of varying alignment: 1000+20r .. 1000+20r+10.
		lo := 1000 + 20*r
		svc.Ingress = append(svc.Ingress, model.Rule{Protocol: "tcp", Ports: fmt.Sprintf("%d-%d", lo, lo+10), Group: "peers"})
	}
	p.SecurityGroups = []model.SecurityGroup{svc, {Name: "peers", VPC: "v", Egress: []model.Rule{model.AllEgress()}}}
	return p
}

func boundSnapshot(t testing.TB, p *model.Policy) *Snapshot {
	t.Helper()
	n, err := model.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{Net: n, Hosts: map[string]HostState{}}
	for _, h := range n.HostNames {
		st := HostState{Ports: map[string]uint32{}, TunnelPorts: OfflinePorts(n.Hosts[h])}
		if n.Hosts[h].Uplink != nil {
			st.UplinkPort = 2
		}
		s.Hosts[h] = st
	}
	for i, name := range n.NICNames {
		if h := n.NICs[name].Host; h != "" {
			s.Hosts[h].Ports[name] = uint32(10 + i)
		}
	}
	return s
}

// A rule naming a group of N members with M port masks costs N + M flows
// (plus one per rule for its conj_id), not N × M: 1,000 members × 50 port
// ranges on a host with 3 member NICs of the service group.
func TestSecurityGroupFlowsAreAdditive(t *testing.T) {
	const members, ranges, local = 1000, 50, 3
	snap := boundSnapshot(t, bigGroupPolicy(members, ranges, local))
	fs, err := Compile(snap, "h1")
	if err != nil {
		t.Fatal(err)
	}
	masks := map[PortMask]bool{}
	for _, r := range snap.Net.SecurityGroups["svc"].Ingress {
		for _, m := range PortMasks(r.PortMin, r.PortMax) {
			masks[m] = true
		}
	}
	got := 0
	for _, f := range fs.Flows() {
		if f.Table == TableIngressSg {
			got++
		}
	}
	// local port-key flows + one per peer address + one per distinct port
	// mask + the later-fragments flow of tcp + one conj_id flow per rule +
	// the miss flow.
	want := local + members + len(masks) + 1 + ranges + 1
	if got != want {
		t.Fatalf("IngressSg has %d flows, want %d (local %d + peers %d + masks %d + later fragments + rules %d + miss)", got, want, local, members, len(masks), ranges)
	}
	if got*10 > members*ranges {
		t.Fatalf("%d flows is not far below the %d of a cross product", got, members*ranges)
	}
	t.Logf("1,000 members × 50 ranges: %d IngressSg flows (%d masks), %d flows on the host in all", got, len(masks), fs.Len())
}

// applyMods applies flow-mods to a flow table the way OVS does.
func applyMods(installed map[ofrules.Key]ofrules.Flow, mods []ofrules.FlowMod) {
	for _, m := range mods {
		k := m.Flow.Key()
		switch m.Op {
		case ofrules.OpAdd, ofrules.OpModifyStrict:
			installed[k] = m.Flow
		case ofrules.OpDeleteStrict:
			delete(installed, k)
		case ofrules.OpDeleteCookie:
			for kk, f := range installed {
				if f.Cookie&m.CookieMask == m.Flow.Cookie&m.CookieMask {
					delete(installed, kk)
				}
			}
		}
	}
}

func setOf(m map[ofrules.Key]ofrules.Flow) *ofrules.FlowSet {
	s := ofrules.NewFlowSet()
	for _, f := range m {
		s.Add(f)
	}
	return s
}

// Over 200 random rule, membership, grant and address changes, what the
// controller does incrementally — skip hosts whose fingerprint did not
// change, otherwise send Diff(installed, compiled) — leaves every host
// with exactly the flows of a full recompute from scratch. Rule and
// membership changes touch only the security-group tables.
func TestSecurityGroupIncrementalEqualsFull(t *testing.T) {
	p := bigGroupPolicy(40, 5, 4)
	p.Accounts = append(p.Accounts, model.Account{Name: "b"})
	p.VPCs[0].Shared = true
	p.SecurityGroups = append(p.SecurityGroups,
		model.SecurityGroup{Name: "extra", VPC: "v", Egress: []model.Rule{{Protocol: "udp", Ports: "53", CIDR: "10.0.0.0/8"}}},
		model.SecurityGroup{Name: "b-grp", VPC: "v", Account: "b", Ingress: []model.Rule{{Protocol: "tcp", Ports: "22", Group: "peers"}}})
	p.NICs = append(p.NICs, model.NIC{Name: "bnic", Subnet: "s0", IP: "10.0.0.250", Host: "h1", Account: "b", SecurityGroups: []string{"b-grp"}})
	groups := []string{"svc", "peers", "extra"}
	checkIncremental(t, p, 200, func(rng *rand.Rand, p *model.Policy) (string, []uint8) {
		desc, sgOnly := mutateSG(rng, p, groups)
		if sgOnly {
			return desc, []uint8{TableEgressSg, TableIngressSg}
		}
		return desc, nil
	})
}

// checkIncremental applies steps random changes (mutate may say which
// tables alone the change may touch) and checks after each that the
// controller's incremental path — skip hosts whose fingerprint did not
// change, else send Diff(installed, compiled) — leaves every host with the
// flows of a full recompute.
func checkIncremental(t *testing.T, p *model.Policy, steps int, mutate func(*rand.Rand, *model.Policy) (string, []uint8)) {
	t.Helper()
	rng := rand.New(rand.NewSource(42))
	snap := boundSnapshot(t, p)
	hosts := snap.Net.HostNames
	installed := map[string]map[ofrules.Key]ofrules.Flow{}
	fps := map[string]uint64{}
	for _, h := range hosts {
		fs, err := Compile(snap, h)
		if err != nil {
			t.Fatal(err)
		}
		installed[h] = map[ofrules.Key]ofrules.Flow{}
		applyMods(installed[h], ofrules.ReplaceAll(fs, CookieOpenVPC, CookieMask))
		fps[h] = Fingerprint(snap, h)
	}
	applied, skipped := 0, 0
	for step := 0; step < steps; step++ {
		next := p.Clone()
		desc, only := mutate(rng, next)
		n, err := model.Build(next)
		if err != nil {
			continue // e.g. a duplicate rule: the store would refuse it
		}
		model.Pin(next, n)
		applied++
		p = next
		snap = boundSnapshot(t, p)
		for _, h := range hosts {
			full, err := Compile(snap, h)
			if err != nil {
				t.Fatal(err)
			}
			fp := Fingerprint(snap, h)
			if fp == fps[h] {
				skipped++
				if dump(setOf(installed[h])) != dump(full) {
					t.Fatalf("step %d (%s): %s skipped by fingerprint but its flows changed", step, desc, h)
				}
				continue
			}
			fps[h] = fp
			mods := ofrules.Diff(setOf(installed[h]), full)
			for _, m := range mods {
				if only != nil && !slices.Contains(only, m.Flow.Table) {
					t.Fatalf("step %d (%s): %s: %s touches table %s", step, desc, h, m.Op, TableName(m.Flow.Table))
				}
			}
			applyMods(installed[h], mods)
			if got, want := dump(setOf(installed[h])), dump(full); got != want {
				t.Fatalf("step %d (%s): %s incremental flows differ from a full recompute", step, desc, h)
			}
		}
	}
	if applied < steps*3/4 {
		t.Fatalf("only %d of %d changes were valid", applied, steps)
	}
	t.Logf("%d changes applied, %d host updates skipped by fingerprint", applied, skipped)
}

// mutateSG makes one random security-group change; sgOnly reports whether
// it may only affect the security-group tables.
func mutateSG(rng *rand.Rand, p *model.Policy, groups []string) (string, bool) {
	gi := func(name string) *model.SecurityGroup {
		for i := range p.SecurityGroups {
			if p.SecurityGroups[i].Name == name {
				return &p.SecurityGroups[i]
			}
		}
		return nil
	}
	g := gi(groups[rng.Intn(len(groups))])
	protos := []string{"tcp", "udp", "icmp", "all", "47"}
	switch rng.Intn(9) {
	case 0, 1: // add a rule
		r := model.Rule{Protocol: protos[rng.Intn(len(protos))]}
		if r.Protocol == "tcp" || r.Protocol == "udp" {
			lo := rng.Intn(60000)
			r.Ports = fmt.Sprintf("%d-%d", lo, lo+rng.Intn(2000))
		}
		if rng.Intn(2) == 0 {
			r.Group = groups[rng.Intn(len(groups))]
		} else {
			r.CIDR = fmt.Sprintf("10.%d.0.0/16", rng.Intn(4))
		}
		if rng.Intn(2) == 0 {
			g.Ingress = append(g.Ingress, r)
		} else {
			g.Egress = append(g.Egress, r)
		}
		return "add rule to " + g.Name, true
	case 2, 3: // remove a rule
		if len(g.Ingress) > 0 && rng.Intn(2) == 0 {
			i := rng.Intn(len(g.Ingress))
			g.Ingress = append(g.Ingress[:i], g.Ingress[i+1:]...)
		} else if len(g.Egress) > 0 {
			i := rng.Intn(len(g.Egress))
			g.Egress = append(g.Egress[:i], g.Egress[i+1:]...)
		}
		return "remove rule from " + g.Name, true
	case 4, 5: // a NIC joins or leaves a group
		n := &p.NICs[rng.Intn(len(p.NICs))]
		if n.Account != "" {
			return "no-op", true
		}
		grp := groups[rng.Intn(len(groups))]
		for i, x := range n.SecurityGroups {
			if x == grp {
				n.SecurityGroups = append(n.SecurityGroups[:i], n.SecurityGroups[i+1:]...)
				return n.Name + " leaves " + grp, true
			}
		}
		n.SecurityGroups = append(n.SecurityGroups, grp)
		return n.Name + " joins " + grp, true
	case 6: // a member gets or loses a secondary IP
		n := &p.NICs[rng.Intn(len(p.NICs))]
		if len(n.SecondaryIPs) > 0 {
			n.SecondaryIPs = nil
		} else {
			n.SecondaryIPs = []string{fmt.Sprintf("10.0.3.%d", 4+rng.Intn(240))}
		}
		return "secondary IP of " + n.Name, false
	case 7: // grant or revoke b's use of "peers"
		pg := gi("peers")
		if len(pg.Grants) > 0 {
			pg.Grants = nil
			return "revoke grant", true
		}
		pg.Grants = []string{"b"}
		return "grant", true
	default: // a member moves host
		n := &p.NICs[rng.Intn(len(p.NICs))]
		n.Host = fmt.Sprintf("h%d", 1+rng.Intn(4))
		n.CtZone = 0
		return "move " + n.Name, false
	}
}
