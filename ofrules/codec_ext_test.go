package ofrules_test

import (
	"encoding/binary"
	"strings"
	"testing"

	. "github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/internal/flowtest"
)

var (
	ipv4 = flowtest.IPv4
	ip   = flowtest.IP
)

const (
	flowModHeaderLen  = 48
	flowDescHeaderLen = 24
)

func roundTrip(t *testing.T, m FlowMod) FlowMod {
	t.Helper()
	b, err := MarshalFlowMod(m, 42)
	if err != nil {
		t.Fatalf("encode %s: %v", m.Describe(), err)
	}
	if binary.BigEndian.Uint32(b[4:]) != 42 {
		t.Fatalf("xid not set")
	}
	got, err := DecodeFlowMod(b)
	if err != nil {
		t.Fatalf("decode %s: %v", m.Describe(), err)
	}
	b2, err := MarshalFlowMod(got, 42)
	if err != nil {
		t.Fatalf("re-encode %s: %v", got.Describe(), err)
	}
	if string(b) != string(b2) {
		t.Errorf("re-encoding differs for %s\n%x\n%x", m.Describe(), b, b2)
	}
	return got
}

func TestRoundTripEveryFieldAndAction(t *testing.T) {
	fields := map[Field]bool{}
	actions := map[string]bool{}
	for _, f := range flowtest.Catalogue() {
		got := roundTrip(t, FlowMod{Op: OpAdd, Flow: f})
		if got.Op != OpAdd {
			t.Errorf("op %v", got.Op)
		}
		if want, have := f.Text(nil), got.Flow.Text(nil); want != have {
			t.Errorf("round trip differs:\nwant %s\ngot  %s", want, have)
		}
		for _, mf := range f.Match {
			fields[mf.Field] = true
		}
		var walk func([]Action)
		walk = func(as []Action) {
			for _, a := range as {
				name := typeName(a)
				actions[name] = true
				switch a := a.(type) {
				case SetField:
					fields[a.Field] = true
				case Move:
					fields[a.Src], fields[a.Dst] = true, true
				case CT:
					walk(a.Exec)
				}
			}
		}
		walk(f.Actions)
	}
	for _, fld := range allFields() {
		if !fields[fld] {
			t.Errorf("field %s not covered", fld)
		}
	}
	for _, a := range []string{"Output", "OutputReg", "SetField", "Move", "Goto", "Resubmit", "CT", "Conjunction", "Controller"} {
		if !actions[a] {
			t.Errorf("action %s not covered", a)
		}
	}
}

func typeName(a Action) string {
	switch a.(type) {
	case Output:
		return "Output"
	case OutputReg:
		return "OutputReg"
	case SetField:
		return "SetField"
	case Move:
		return "Move"
	case Goto:
		return "Goto"
	case Resubmit:
		return "Resubmit"
	case CT:
		return "CT"
	case Conjunction:
		return "Conjunction"
	case Controller:
		return "Controller"
	}
	return "?"
}

func TestRoundTripOps(t *testing.T) {
	f := flowtest.Catalogue()[0]
	for _, m := range []FlowMod{
		{Op: OpModifyStrict, Flow: f},
		{Op: OpDeleteStrict, Flow: Flow{Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match}},
		{Op: OpDeleteCookie, Flow: Flow{Cookie: 0xb000000000000000}, CookieMask: 0xff00000000000000},
	} {
		got := roundTrip(t, m)
		if got.Describe() != m.Describe() {
			t.Errorf("got %s want %s", got.Describe(), m.Describe())
		}
	}
	// Delete-strict carries no instructions even if the flow has actions.
	b, err := MarshalFlowMod(FlowMod{Op: OpDeleteStrict, Flow: f}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeFlowMod(b); err != nil || len(got.Flow.Actions) != 0 {
		t.Fatalf("delete-strict: %v %v", got, err)
	}
}

// flowDesc builds an ofp_flow_desc the way OVS would send it from the
// match and instructions of a marshalled flow-mod.
func flowDesc(t testing.TB, fm []byte) []byte {
	t.Helper()
	mlen := int(binary.BigEndian.Uint16(fm[flowModHeaderLen+2:]))
	mpad := (mlen + 7) / 8 * 8
	match := fm[flowModHeaderLen : flowModHeaderLen+mpad]
	instrs := fm[flowModHeaderLen+mpad:]
	// ofp_stats with a duration OXS (4+8 bytes, padded to 16).
	stats := []byte{0, 0, 0, 12, 0x80, 0x02, 0x00, 0x08, 0, 0, 0, 1, 0, 0, 0, 2}
	d := make([]byte, flowDescHeaderLen)
	d[4] = fm[24]                         // table
	copy(d[6:8], fm[30:32])               // priority
	copy(d[16:24], fm[8:16])              // cookie
	binary.BigEndian.PutUint16(d[10:], 7) // hard timeout, ignored
	d = append(d, match...)
	d = append(d, stats...)
	d = append(d, instrs...)
	binary.BigEndian.PutUint16(d, uint16(len(d)))
	return d
}

func TestDecodeFlowDescs(t *testing.T) {
	flows := flowtest.Catalogue()
	var body []byte
	for i, f := range flows {
		b, err := MarshalFlowMod(FlowMod{Op: OpAdd, Flow: f}, uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, flowDesc(t, b)...)
	}
	got, err := DecodeFlowDescs(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(flows) {
		t.Fatalf("got %d flows want %d", len(got), len(flows))
	}
	for i := range flows {
		if w, g := flows[i].Text(nil), got[i].Text(nil); w != g {
			t.Errorf("flow %d:\nwant %s\ngot  %s", i, w, g)
		}
	}
	if _, err := DecodeFlowDescs(body[:len(body)-3]); err == nil {
		t.Error("truncated body decoded without error")
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		m    FlowMod
		want string
	}{
		{"nw_src without dl_type", FlowMod{Flow: Flow{Match: NewMatch(Exact(IPv4Src, 1))}}, "nw_src needs dl_type=0x800"},
		{"tcp_dst without nw_proto", FlowMod{Flow: Flow{Match: NewMatch(ipv4(), Exact(TCPDst, 80))}}, "tcp_dst needs nw_proto=6"},
		{"tcp_dst with udp", FlowMod{Flow: Flow{Match: NewMatch(ipv4(), Exact(IPProto, 17), Exact(TCPDst, 80))}}, "tcp_dst needs nw_proto=6"},
		{"arp_tpa on ip", FlowMod{Flow: Flow{Match: NewMatch(ipv4(), Exact(ArpTpa, 1))}}, "arp_tpa needs dl_type=0x806"},
		{"icmp without proto", FlowMod{Flow: Flow{Match: NewMatch(ipv4(), Exact(ICMPType, 8))}}, "icmp_type needs nw_proto=1"},
		{"masked dl_type prereq", FlowMod{Flow: Flow{Match: NewMatch(Masked(EthType, 0x800, 0xff00), Exact(IPv4Dst, 1))}}, "dl_type cannot be masked"},
		{"set ip_src without ip", FlowMod{Flow: Flow{Actions: []Action{SetField{Field: IPv4Src, Value: 1}}}}, "set_field nw_src needs dl_type=0x800"},
		{"move arp without arp", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{Move{Src: ArpSha, Dst: ArpTha, NBits: 48}}}}, "arp_sha needs dl_type"},
		{"ct without ip", FlowMod{Flow: Flow{Actions: []Action{CT{Table: 1}}}}, "ct needs dl_type"},
		{"goto not last", FlowMod{Flow: Flow{Actions: []Action{Goto{Table: 3}, Output{Port: 1}}}}, "goto_table must be the last action"},
		{"exec without commit", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Table: -1, Exec: []Action{SetField{Field: CtMark, Value: 1}}}}}}, "requires commit"},
		{"ct_mark outside ct", FlowMod{Flow: Flow{Actions: []Action{SetField{Field: CtMark, Value: 1}}}}, "only be written inside ct"},
		{"reg inside ct", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Commit: true, Table: -1, Exec: []Action{SetField{Field: Reg(1), Value: 1}}}}}}, "only ct_mark and ct_label"},
		{"output inside ct", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Commit: true, Table: -1, Exec: []Action{Output{Port: 1}}}}}}, "only set_field and move"},
		{"set in_port", FlowMod{Flow: Flow{Actions: []Action{SetField{Field: InPort, Value: 3}}}}, "in_port is not writable"},
		{"set dl_type", FlowMod{Flow: Flow{Actions: []Action{SetField{Field: EthType, Value: 0x800}}}}, "dl_type is not writable"},
		{"conjunction clause", FlowMod{Flow: Flow{Actions: []Action{Conjunction{ID: 1, Clause: 3, NClauses: 2}}}}, "conjunction clause 3/2"},
		{"conjunction clause 0", FlowMod{Flow: Flow{Actions: []Action{Conjunction{ID: 1, Clause: 0, NClauses: 2}}}}, "conjunction clause 0/2"},
		{"masked in_port", FlowMod{Flow: Flow{Match: NewMatch(Masked(InPort, 2, 0xfe))}}, "in_port cannot be masked"},
		{"value outside width", FlowMod{Flow: Flow{Match: NewMatch(Exact(TCPSrc, 0x10000))}}, "does not fit the 16 bits"},
		{"value outside mask", FlowMod{Flow: Flow{Match: NewMatch(MatchField{Field: Reg(0), Value: 3, Mask: 1})}}, "outside mask"},
		{"set value outside mask", FlowMod{Flow: Flow{Actions: []Action{SetField{Field: Reg(0), Value: 3, Mask: 1}}}}, "outside mask"},
		{"duplicate field", FlowMod{Flow: Flow{Match: NewMatch(Exact(Reg(0), 1), Exact(Reg(0), 2))}}, "reg0 appears twice"},
		{"delete all", FlowMod{Op: OpDeleteCookie}, "mask 0"},
		{"ct_state exact zero", FlowMod{Flow: Flow{Match: NewMatch(Exact(CtState, 0))}}, "exact ct_state"},
		{"ct_state mask bits", FlowMod{Flow: Flow{Match: NewMatch(Masked(CtState, 0, 0x100))}}, "bits OVS does not define"},
		{"ct zone bits", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Table: -1, ZoneField: Reg(5)}}}}, "must be 16 bits"},
		{"ct zone both", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Table: -1, Zone: 3, ZoneField: Reg(5), ZoneBits: 16}}}}, "either Zone or ZoneField"},
		{"ct table", FlowMod{Flow: Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Table: 255}}}}, "ct table 255"},
		{"controller max_len", FlowMod{Flow: Flow{Actions: []Action{Controller{MaxLen: 0xffff}}}}, "max_len"},
		{"move width", FlowMod{Flow: Flow{Actions: []Action{Move{Src: Reg(1), Dst: Reg(2), SrcOfs: 20, NBits: 16}}}}, "outside the 32 bits"},
		{"move nbits 0 unequal", FlowMod{Flow: Flow{Actions: []Action{Move{Src: Reg(1), Dst: Metadata}}}}, "equal width"},
		{"output reg range", FlowMod{Flow: Flow{Actions: []Action{OutputReg{Field: Reg(1), Ofs: 30, NBits: 4}}}}, "outside the 32 bits"},
		{"unknown field", FlowMod{Flow: Flow{Match: NewMatch(Exact(FieldInvalid, 1))}}, "unknown field"},
		{"nil action", FlowMod{Flow: Flow{Actions: []Action{nil}}}, "nil action"},
		{"bad op", FlowMod{Op: Op(17)}, "unknown flow-mod op"},
	}
	for _, c := range cases {
		_, err := EncodeFlowMod(c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
}

func BenchmarkEncode100k(b *testing.B) {
	flows := flowtest.Many(100000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		total := 0
		for j, f := range flows {
			buf, err := MarshalFlowMod(FlowMod{Op: OpAdd, Flow: f}, uint32(j))
			if err != nil {
				b.Fatal(err)
			}
			total += len(buf)
		}
		b.SetBytes(int64(total))
	}
}

func BenchmarkDecode100k(b *testing.B) {
	flows := flowtest.Many(100000, 0)
	var body []byte
	for j, f := range flows {
		buf, err := MarshalFlowMod(FlowMod{Op: OpAdd, Flow: f}, uint32(j))
		if err != nil {
			b.Fatal(err)
		}
		body = append(body, flowDesc(b, buf)...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := DecodeFlowDescs(body)
		if err != nil || len(got) != len(flows) {
			b.Fatal(err)
		}
	}
}

func allFields() []Field {
	fs := []Field{InPort, EthSrc, EthDst, EthType, ArpOp, ArpSpa, ArpTpa, ArpSha, ArpTha, IPProto, IPv4Src, IPv4Dst,
		TCPSrc, TCPDst, UDPSrc, UDPDst, ICMPType, ICMPCode, Metadata, TunID, TunSrc, TunDst, CtState, CtZone, CtMark,
		CtLabel, ConjID, IPTTL, IPFrag}
	for n := 0; n < 16; n++ {
		fs = append(fs, Reg(n))
	}
	return fs
}
