package ofrules

import (
	"strings"
	"testing"
)

func flow(prio uint16, ip uint64, acts ...Action) Flow {
	return Flow{Table: 45, Priority: prio, Cookie: 1, Match: NewMatch(Exact(EthType, EthTypeIPv4), Exact(IPv4Dst, ip)), Actions: acts}
}

func TestDiff(t *testing.T) {
	inst, want := NewFlowSet(), NewFlowSet()
	inst.Add(flow(100, 0x0a000001, Output{Port: 1})) // unchanged
	inst.Add(flow(100, 0x0a000002, Output{Port: 2})) // actions change
	inst.Add(flow(100, 0x0a000003, Output{Port: 3})) // removed
	want.Add(flow(100, 0x0a000001, Output{Port: 1}))
	want.Add(flow(100, 0x0a000002, Output{Port: 9}))
	want.Add(flow(100, 0x0a000004, Output{Port: 4})) // added
	recookied := flow(100, 0x0a000005, Output{Port: 5})
	inst.Add(recookied)
	recookied.Cookie = 2
	want.Add(recookied) // cookie change → add

	mods := Diff(inst, want)
	var got []string
	for _, m := range mods {
		got = append(got, m.Op.String()+" "+m.Flow.Match.Text()+" "+ActionsText(m.Flow.Actions, nil))
	}
	exp := []string{
		"delete-strict dl_type=0x800,nw_dst=10.0.0.3 output:3",
		"modify-strict dl_type=0x800,nw_dst=10.0.0.2 output:9",
		"add dl_type=0x800,nw_dst=10.0.0.4 output:4",
		"add dl_type=0x800,nw_dst=10.0.0.5 output:5",
	}
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	if len(Diff(want, want)) != 0 {
		t.Fatal("diff of a set with itself is not empty")
	}
}

func TestConjunctionMergeAndConflict(t *testing.T) {
	s := NewFlowSet()
	m := NewMatch(Exact(EthType, EthTypeIPv4), Exact(IPv4Src, 0x0a000001))
	s.Add(Flow{Table: 30, Priority: 10, Match: m, Actions: []Action{Conjunction{ID: 2, Clause: 1, NClauses: 2}}})
	if !s.Add(Flow{Table: 30, Priority: 10, Match: m, Actions: []Action{Conjunction{ID: 1, Clause: 1, NClauses: 2}}}) {
		t.Fatal("conjunction flows with one match did not merge")
	}
	f, _ := s.Get(Key{Table: 30, Priority: 10, Match: m.key()})
	if got := ActionsText(f.Actions, nil); got != "conjunction(1,1/2),conjunction(2,1/2)" {
		t.Fatalf("merged actions %s", got)
	}
	if s.Add(Flow{Table: 30, Priority: 10, Match: m, Actions: []Action{Output{Port: 1}}}) {
		t.Fatal("conflicting flow accepted")
	}
}

func TestText(t *testing.T) {
	f := Flow{Table: 5, Priority: 100, Cookie: 0xb, Match: NewMatch(
		Exact(InPort, 3), Exact(EthSrc, 0x02000000010a), Exact(EthType, EthTypeIPv4), Masked(IPv4Dst, 0x0a000000, 0xffff0000),
		Masked(Reg(8), 0x17, 0xffff), Masked(CtState, CtTrk|CtEst, CtTrk|CtEst|CtNew)),
		Actions: []Action{
			SetField{Field: Metadata, Value: 0x64}, Move{Src: Metadata, Dst: TunID, NBits: 24},
			CT{Commit: true, Table: -1, ZoneField: Reg(5), ZoneBits: 16, Exec: []Action{SetField{Field: CtLabel, Value: 7}}},
			Output{Port: PortInPort}, Goto{Table: 10},
		}}
	want := "cookie=0xb, table=5, priority=100,in_port=3,dl_src=02:00:00:00:01:0a,dl_type=0x800,nw_dst=10.0.0.0/16,ct_state=-new+est+trk,reg8=0x17/0xffff " +
		"actions=set_field:0x64->metadata,move:metadata[0..23]->tun_id[0..23],ct(commit,zone=reg5[0..15],exec(set_field:0x7->ct_label)),IN_PORT,goto_table:10"
	if got := f.Text(nil); got != want {
		t.Fatalf("text:\n%s\nwant:\n%s", got, want)
	}
}

func TestNewMatchDropsIdenticalFields(t *testing.T) {
	ip := Exact(EthType, EthTypeIPv4)
	m := NewMatch(ip, Exact(IPv4Dst, 1), ip, Exact(Reg(4), 7))
	if got := m.Text(); got != "dl_type=0x800,nw_dst=0.0.0.1,reg4=0x7" {
		t.Fatalf("match %s", got)
	}
	if got := NewMatch(Exact(IPProto, 6), Exact(IPProto, 17)); len(got) != 2 {
		t.Fatalf("conflicting matches merged: %s", got.Text())
	}
}
