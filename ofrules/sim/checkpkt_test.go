package sim

import (
	"strings"
	"testing"

	"github.com/openvpc/openvpc/ofrules"
)

// check_pkt_larger(200)->reg0[5] sets or clears the bit from the packet
// length (strictly larger), default DefaultPacketLen.
func TestCheckPktLarger(t *testing.T) {
	reg0 := ofrules.Reg(0)
	flows := []ofrules.Flow{
		{Table: 0, Priority: 10, Actions: []ofrules.Action{
			ofrules.CheckPktLarger{Len: 200, Dst: reg0, Ofs: 5}, ofrules.Goto{Table: 1}}},
		{Table: 1, Priority: 20, Match: ofrules.NewMatch(ofrules.Masked(reg0, 0x20, 0x20)), Actions: []ofrules.Action{ofrules.Output{Port: 1}}},
		{Table: 1, Priority: 10, Actions: []ofrules.Action{ofrules.Output{Port: 2}}},
	}
	sw := New(flows)
	for _, c := range []struct {
		len  int
		reg0 uint64 // before
		out  uint32
		bit  uint64
	}{
		{0, 0, 2, 0}, // default 100 bytes
		{60, 0, 2, 0},
		{200, 0, 2, 0},
		{201, 0, 1, 1},
		{1500, 0, 1, 1},
		{100, 0xffffffff, 2, 0}, // clears the bit, keeps the others
		{300, 0x1, 1, 1},
	} {
		r := sw.Trace(Packet{reg0: c.reg0}, Options{PacketLen: c.len})
		if len(r.Outputs) != 1 || r.Outputs[0] != c.out {
			t.Errorf("len %d: outputs %v, want [%d]", c.len, r.Outputs, c.out)
		}
		want := c.reg0&^0x20 | c.bit<<5
		if r.Final[reg0] != want {
			t.Errorf("len %d: reg0 %#x, want %#x", c.len, r.Final[reg0], want)
		}
		if len(r.Steps[0].Notes) != 1 || !strings.HasPrefix(r.Steps[0].Notes[0], "check_pkt_larger: packet length ") {
			t.Errorf("len %d: notes %q", c.len, r.Steps[0].Notes)
		}
	}
	if r := sw.Trace(Packet{}, Options{}); r.Steps[0].Notes[0] != "check_pkt_larger: packet length 100 <= 200, reg0[5]=0" {
		t.Errorf("note: %q", r.Steps[0].Notes[0])
	}
}
