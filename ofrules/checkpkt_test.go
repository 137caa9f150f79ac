package ofrules_test

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	. "github.com/openvpc/openvpc/ofrules"
)

// checkPktFlows use check_pkt_larger on the destinations OVS accepts:
// registers, an OXM-only field (metadata), a field OVS dumps with its
// NXM_OF_* header (eth_src) and one with an L3 prerequisite.
func checkPktFlows() []Flow {
	return []Flow{
		{Table: 3, Priority: 100, Cookie: 0x31,
			Actions: []Action{CheckPktLarger{Len: 1464, Dst: Reg(0), Ofs: 5}, Resubmit{Table: 4}, Goto{Table: 5}}},
		{Table: 3, Priority: 90, Cookie: 0x32, Match: NewMatch(Exact(InPort, 2)),
			Actions: []Action{CheckPktLarger{Len: 0, Dst: Reg(15), Ofs: 31}, CheckPktLarger{Len: 65535, Dst: Metadata, Ofs: 63},
				CheckPktLarger{Len: 200, Dst: EthSrc, Ofs: 0}, Output{Port: 1}}},
		{Table: 3, Priority: 80, Cookie: 0x33, Match: NewMatch(ipv4()),
			Actions: []Action{CheckPktLarger{Len: 8000, Dst: IPv4Src, Ofs: 7}, CheckPktLarger{Len: 1500, Dst: TunID, Ofs: 40}}},
	}
}

func TestCheckPktLargerText(t *testing.T) {
	want := []string{
		"cookie=0x31, table=3, priority=100 actions=check_pkt_larger(1464)->reg0[5],resubmit(,4),goto_table:5",
		"cookie=0x32, table=3, priority=90,in_port=2 actions=check_pkt_larger(0)->reg15[31],check_pkt_larger(65535)->metadata[63],check_pkt_larger(200)->eth_src[0],output:1",
		"cookie=0x33, table=3, priority=80,dl_type=0x800 actions=check_pkt_larger(8000)->ip_src[7],check_pkt_larger(1500)->tun_id[40]",
	}
	for i, f := range checkPktFlows() {
		if got := f.Text(nil); got != want[i] {
			t.Errorf("text:\ngot  %s\nwant %s", got, want[i])
		}
	}
	names := func(t uint8) string { return map[uint8]string{4: "Next", 5: "Last"}[t] }
	if got := checkPktFlows()[0].Text(names); !strings.HasSuffix(got, "actions=check_pkt_larger(1464)->reg0[5],resubmit(,Next),goto_table:Last") {
		t.Errorf("with table names: %s", got)
	}
}

// The wire form is OVS's struct nx_action_check_pkt_larger (ovs-ofctl
// ofp-print of these bytes says check_pkt_larger(1464)->NXM_NX_REG0[5]).
func TestCheckPktLargerWire(t *testing.T) {
	b, err := MarshalFlowMod(FlowMod{Flow: Flow{Actions: []Action{CheckPktLarger{Len: 1464, Dst: Reg(0), Ofs: 5}}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlen := int(binary.BigEndian.Uint16(b[flowModHeaderLen+2:]))
	act := b[flowModHeaderLen+(mlen+7)/8*8+8:] // after the apply-actions header
	want := "ffff0018" + "00002320" + "0031" + "05b8" + "0005" + "00010004" + "000000000000"
	if got := hex.EncodeToString(act); got != want {
		t.Fatalf("wire:\ngot  %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		a    CheckPktLarger
		want string // destination header
	}{
		{CheckPktLarger{Len: 1, Dst: Metadata, Ofs: 63}, "80000408"},
		{CheckPktLarger{Len: 1, Dst: Reg(9), Ofs: 0}, "00011204"},
		{CheckPktLarger{Len: 1, Dst: EthSrc, Ofs: 0}, "80000806"},
	} {
		b, err := MarshalFlowMod(FlowMod{Flow: Flow{Actions: []Action{c.a}}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		act := b[flowModHeaderLen+(int(binary.BigEndian.Uint16(b[flowModHeaderLen+2:]))+7)/8*8+8:]
		if got := hex.EncodeToString(act[14:18]); got != c.want || int(binary.BigEndian.Uint16(act[12:])) != int(c.a.Ofs) {
			t.Errorf("%s: header %s ofs %d, want %s", c.a.Dst, got, binary.BigEndian.Uint16(act[12:]), c.want)
		}
	}
}

func TestCheckPktLargerRoundTrip(t *testing.T) {
	flows := checkPktFlows()
	var body []byte
	for i, f := range flows {
		got := roundTrip(t, FlowMod{Op: OpAdd, Flow: f})
		if got.Flow.Text(nil) != f.Text(nil) || !ActionsEqual(got.Flow.Actions, f.Actions) {
			t.Errorf("flow-mod round trip:\nwant %s\ngot  %s", f.Text(nil), got.Flow.Text(nil))
		}
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
	for i := range flows {
		if w, g := flows[i].Text(nil), got[i].Text(nil); w != g || !ActionsEqual(got[i].Actions, flows[i].Actions) {
			t.Errorf("flow desc %d:\nwant %s\ngot  %s", i, w, g)
		}
	}
}

// OVS dumps the destination with its oldest header (nx_put_mff_header with
// version 0): NXM_OF_ETH_SRC, NXM_OF_IP_SRC, NXM_NX_TUN_ID.
func TestCheckPktLargerDecodeNXMHeaders(t *testing.T) {
	for _, c := range []struct {
		hdr  string
		want string
	}{
		{"00000406", "check_pkt_larger(200)->eth_src[3]"},
		{"00000e04", "check_pkt_larger(200)->ip_src[3]"},
		{"00012008", "check_pkt_larger(200)->tun_id[3]"},
		{"00010604", "check_pkt_larger(200)->reg3[3]"},
	} {
		b := patchAction(t, CheckPktLarger{Len: 200, Dst: Reg(3), Ofs: 3}, func(a []byte) {
			h, _ := hex.DecodeString(c.hdr)
			copy(a[14:18], h)
		})
		m, err := DecodeFlowMod(b)
		if err != nil {
			t.Errorf("%s: %v", c.hdr, err)
			continue
		}
		if got := ActionsText(m.Flow.Actions, nil); got != c.want {
			t.Errorf("%s: got %s want %s", c.hdr, got, c.want)
		}
	}
	for _, c := range []struct {
		name  string
		patch func([]byte)
		want  string
	}{
		{"padding", func(a []byte) { a[23] = 1 }, "non-zero padding"},
		{"bit", func(a []byte) { binary.BigEndian.PutUint16(a[12:], 32) }, "bit 32 outside the 32 bits of reg3"},
		{"field", func(a []byte) { copy(a[14:18], []byte{0x00, 0x01, 0x7f << 1, 4}) }, "unsupported field header"},
		{"length", func(a []byte) { binary.BigEndian.PutUint16(a[2:], 16) }, ""},
	} {
		b := patchAction(t, CheckPktLarger{Len: 200, Dst: Reg(3), Ofs: 3}, c.patch)
		_, err := DecodeFlowMod(b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
}

// patchAction marshals a flow-mod whose only action is a and lets patch
// change that action's 24 bytes.
func patchAction(t *testing.T, a Action, patch func([]byte)) []byte {
	t.Helper()
	b, err := MarshalFlowMod(FlowMod{Flow: Flow{Actions: []Action{a}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlen := int(binary.BigEndian.Uint16(b[flowModHeaderLen+2:]))
	off := flowModHeaderLen + (mlen+7)/8*8 + 8
	patch(b[off : off+24])
	return b
}

func TestCheckPktLargerEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		f    Flow
		want string
	}{
		{"bit outside", Flow{Actions: []Action{CheckPktLarger{Len: 1, Dst: Reg(0), Ofs: 32}}}, "bits [32..32] outside the 32 bits of reg0"},
		{"in_port", Flow{Actions: []Action{CheckPktLarger{Len: 1, Dst: InPort}}}, "in_port is not writable"},
		{"no field", Flow{Actions: []Action{CheckPktLarger{Len: 1}}}, "not writable"},
		{"ip_src without ip", Flow{Actions: []Action{CheckPktLarger{Len: 1, Dst: IPv4Src}}}, "needs dl_type=0x800"},
		{"ct_mark", Flow{Match: NewMatch(ipv4()), Actions: []Action{CheckPktLarger{Len: 1, Dst: CtMark}}}, "only be written inside ct"},
		{"inside ct", Flow{Match: NewMatch(ipv4()), Actions: []Action{CT{Commit: true, Table: -1, Exec: []Action{CheckPktLarger{Len: 1, Dst: CtMark}}}}}, "only set_field and move"},
	}
	for _, c := range cases {
		_, err := EncodeFlowMod(FlowMod{Flow: c.f})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
}

// Diff sees a change of the length, destination or bit.
func TestCheckPktLargerDiff(t *testing.T) {
	base := Flow{Table: 3, Priority: 10, Actions: []Action{CheckPktLarger{Len: 1464, Dst: Reg(0), Ofs: 5}, Output{Port: 1}}}
	installed := NewFlowSet()
	installed.Add(base)
	if mods := Diff(installed, setOf(base)); len(mods) != 0 {
		t.Errorf("same flow: %v", mods)
	}
	for _, a := range []CheckPktLarger{{Len: 1465, Dst: Reg(0), Ofs: 5}, {Len: 1464, Dst: Reg(1), Ofs: 5}, {Len: 1464, Dst: Reg(0), Ofs: 6}} {
		f := base
		f.Actions = []Action{a, Output{Port: 1}}
		mods := Diff(installed, setOf(f))
		if len(mods) != 1 || mods[0].Op != OpModifyStrict || mods[0].Flow.Text(nil) != f.Text(nil) {
			t.Errorf("%s: %v", a.Dst, mods)
		}
		if ActionsEqual(base.Actions, f.Actions) {
			t.Errorf("ActionsEqual says %s equals %s", ActionsText(f.Actions, nil), ActionsText(base.Actions, nil))
		}
	}
}

func setOf(fs ...Flow) *FlowSet {
	s := NewFlowSet()
	for _, f := range fs {
		s.Add(f)
	}
	return s
}
