package sim

import (
	"testing"

	"github.com/openvpc/openvpc/ofrules"
)

func TestConjunctionAndPriorities(t *testing.T) {
	ip := ofrules.Exact(ofrules.EthType, ofrules.EthTypeIPv4)
	flows := []ofrules.Flow{
		// table 0: a plain allow above the conjunction, the conjunction
		// (port 1 × nw_src 10.0.0.0/8 × tcp 80), its conj_id flow, and a miss.
		{Table: 0, Priority: 200, Match: ofrules.NewMatch(ip, ofrules.Exact(ofrules.InPort, 9)), Actions: []ofrules.Action{ofrules.Output{Port: 99}}},
		{Table: 0, Priority: 100, Match: ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 1)), Actions: []ofrules.Action{ofrules.Conjunction{ID: 7, Clause: 1, NClauses: 3}}},
		{Table: 0, Priority: 100, Match: ofrules.NewMatch(ip, ofrules.Masked(ofrules.IPv4Src, 0x0a000000, 0xff000000)), Actions: []ofrules.Action{ofrules.Conjunction{ID: 7, Clause: 2, NClauses: 3}}},
		{Table: 0, Priority: 100, Match: ofrules.NewMatch(ip, ofrules.Exact(ofrules.IPProto, 6), ofrules.Exact(ofrules.TCPDst, 80)), Actions: []ofrules.Action{ofrules.Conjunction{ID: 7, Clause: 3, NClauses: 3}}},
		{Table: 0, Priority: 100, Match: ofrules.NewMatch(ofrules.Exact(ofrules.ConjID, 7)), Actions: []ofrules.Action{
			ofrules.SetField{Field: ofrules.Reg(6), Value: 7}, ofrules.Goto{Table: 5}}},
		{Table: 0, Priority: 0},
		// table 5: conntrack, then commit the rule id into the label.
		{Table: 5, Priority: 100, Match: ofrules.NewMatch(ip), Actions: []ofrules.Action{ofrules.CT{Table: 6, ZoneField: ofrules.Reg(5), ZoneBits: 16}}},
		{Table: 6, Priority: 100, Match: ofrules.NewMatch(ip, ofrules.Masked(ofrules.CtState, ofrules.CtEst|ofrules.CtTrk, ofrules.CtNew|ofrules.CtEst|ofrules.CtTrk)), Actions: []ofrules.Action{ofrules.Output{Port: 2}}},
		{Table: 6, Priority: 90, Match: ofrules.NewMatch(ip, ofrules.Exact(ofrules.CtState, ofrules.CtNew|ofrules.CtTrk)), Actions: []ofrules.Action{
			ofrules.CT{Commit: true, Table: -1, Zone: 3, Exec: []ofrules.Action{ofrules.Move{Src: ofrules.Reg(6), Dst: ofrules.CtLabel, NBits: 32}}},
			ofrules.Output{Port: 3}}},
	}
	sw := New(flows)
	pkt, err := ParsePacket("tcp,in_port=1,nw_src=10.1.2.3,nw_dst=10.9.9.9,tp_dst=80,reg5=42")
	if err != nil {
		t.Fatal(err)
	}
	r := sw.Trace(pkt, Options{})
	if r.Steps[0].Conj != 7 || len(r.Outputs) != 1 || r.Outputs[0] != 3 || len(r.Committed) != 1 || r.Committed[0].Label != 7 || r.Committed[0].Zone != 3 {
		t.Fatalf("allowed new connection: %+v", r)
	}
	if r.Final[ofrules.CtZone] != 42 {
		t.Errorf("ct zone from reg5: %d", r.Final[ofrules.CtZone])
	}
	// Established: the other ct_state branch.
	if r := sw.Trace(pkt, Options{CtState: ofrules.CtEst}); len(r.Outputs) != 1 || r.Outputs[0] != 2 {
		t.Fatalf("established: %+v", r.Outputs)
	}
	// One clause missing (port 81, or a source outside 10/8): the miss flow drops.
	for _, spec := range []string{"tcp,in_port=1,nw_src=10.1.2.3,tp_dst=81", "tcp,in_port=1,nw_src=11.1.2.3,tp_dst=80", "udp,in_port=1,nw_src=10.1.2.3,tp_dst=80"} {
		p, err := ParsePacket(spec)
		if err != nil {
			t.Fatal(err)
		}
		if r := sw.Trace(p, Options{}); !r.Dropped() || r.Steps[0].Flow.Priority != 0 {
			t.Errorf("%s: %+v", spec, r)
		}
	}
	// A plain flow of higher priority wins without any conjunction.
	p, _ := ParsePacket("ip,in_port=9")
	if r := sw.Trace(p, Options{}); len(r.Outputs) != 1 || r.Outputs[0] != 99 || r.Steps[0].Conj != 0 {
		t.Errorf("plain flow: %+v", r)
	}
}

func TestParsePacket(t *testing.T) {
	p, err := ParsePacket("udp,dl_src=02:00:00:00:00:01,nw_dst=10.0.0.5,tp_dst=53,tun_id=0x64")
	if err != nil {
		t.Fatal(err)
	}
	if p[ofrules.EthType] != 0x800 || p[ofrules.IPProto] != 17 || p[ofrules.UDPDst] != 53 || p[ofrules.EthSrc] != 0x020000000001 || p[ofrules.IPv4Dst] != 0x0a000005 || p[ofrules.TunID] != 0x64 {
		t.Fatalf("%v", p)
	}
	for _, bad := range []string{"tcpp", "nw_dst=10.0.0", "tp_dst=80", "icmp_type=300", "frob=1"} {
		if _, err := ParsePacket(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
