package ofconn

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/ofrules"
)

// TestOVSCheckPktLarger installs check_pkt_larger flows through Bundle,
// reads them back with DumpFlows and ovs-ofctl, installs them by text with
// ovs-ofctl, and runs frames of several lengths through it by packet-out,
// observing the verdict through the cookie of the flow that sent the
// packet-in.
func TestOVSCheckPktLarger(t *testing.T) {
	env := startOVS(t, "unix", Config{})
	sw := env.rec.waitConnected(t, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const (
		cpCookie = 0xcd00000000000000
		ofCookie = 0xce00000000000000 // flows added by ovs-ofctl from our text
	)
	ip := ofrules.Exact(ofrules.EthType, ofrules.EthTypeIPv4)

	t.Run("DumpFlows", func(t *testing.T) {
		// Every kind of destination: registers, an OXM-only field
		// (metadata), fields OVS dumps with their NXM_OF_*/NXM_NX_* header.
		want := []ofrules.Flow{
			{Table: 50, Priority: 100, Cookie: cpCookie | 1,
				Actions: []ofrules.Action{ofrules.CheckPktLarger{Len: 1464, Dst: ofrules.Reg(0), Ofs: 5}, ofrules.Resubmit{Table: 51}, ofrules.Goto{Table: 52}}},
			{Table: 50, Priority: 90, Cookie: cpCookie | 2, Match: ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 2)),
				Actions: []ofrules.Action{ofrules.CheckPktLarger{Len: 0, Dst: ofrules.Reg(15), Ofs: 31}, ofrules.CheckPktLarger{Len: 65535, Dst: ofrules.Metadata, Ofs: 63},
					ofrules.CheckPktLarger{Len: 200, Dst: ofrules.EthSrc, Ofs: 0}, ofrules.Output{Port: 1}}},
			{Table: 50, Priority: 80, Cookie: cpCookie | 3, Match: ofrules.NewMatch(ip),
				Actions: []ofrules.Action{ofrules.CheckPktLarger{Len: 8000, Dst: ofrules.IPv4Src, Ofs: 7}, ofrules.CheckPktLarger{Len: 1500, Dst: ofrules.TunID, Ofs: 40},
					ofrules.CheckPktLarger{Len: 9000, Dst: ofrules.Reg(9), Ofs: 0}}},
		}
		if err := sw.Bundle(ctx, adds(want)); err != nil {
			t.Fatal(err)
		}
		got, err := sw.DumpFlows(ctx, cpCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		sameFlows(t, want, got)
		for i := range got {
			for j := range want {
				if got[i].Key() == want[j].Key() && !ofrules.ActionsEqual(got[i].Actions, want[j].Actions) {
					t.Errorf("decoded actions differ: %#v, want %#v", got[i].Actions, want[j].Actions)
				}
			}
		}

		// ovs-ofctl prints the same actions, with OVS's NXM/OXM names.
		out, err := env.ovs.Ofctl(ctx, "dump-flows", env.bridge, fmt.Sprintf("cookie=%#x/%#x", uint64(cpCookie), uint64(cookieSpace)))
		if err != nil {
			t.Fatal(err)
		}
		ovsNames := strings.NewReplacer("NXM_NX_REG15[", "reg15[", "NXM_NX_REG0[", "reg0[", "NXM_NX_REG9[", "reg9[", "OXM_OF_METADATA[", "metadata[",
			"NXM_OF_ETH_SRC[", "eth_src[", "NXM_OF_IP_SRC[", "ip_src[", "NXM_NX_TUN_ID[", "tun_id[")
		for _, f := range want {
			acts := ofrules.ActionsText(f.Actions, nil)
			found := false
			for _, l := range strings.Split(out, "\n") {
				if _, theirs, ok := strings.Cut(l, " actions="); ok && ovsNames.Replace(theirs) == acts {
					found = true
				}
			}
			if !found {
				t.Errorf("ovs-ofctl dump-flows has no flow with actions=%s:\n%s", acts, out)
			}
		}

		// ovs-ofctl parses our text form: flows it adds from Text decode
		// back to the same flows.
		var mine []ofrules.Flow
		for _, f := range want {
			f.Cookie = ofCookie | f.Cookie&^cookieSpace
			f.Table++
			for i, a := range f.Actions {
				switch a := a.(type) {
				case ofrules.Resubmit:
					a.Table++
					f.Actions[i] = a
				case ofrules.Goto:
					a.Table++
					f.Actions[i] = a
				}
			}
			mine = append(mine, f)
			if out, err := env.ovs.Ofctl(ctx, "add-flow", env.bridge, f.Text(nil)); err != nil {
				t.Fatalf("ovs-ofctl add-flow %q: %v %s", f.Text(nil), err, out)
			}
		}
		got, err = sw.DumpFlows(ctx, ofCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		sameFlows(t, mine, got)
	})

	t.Run("Verdict", func(t *testing.T) {
		const (
			table0  = 0
			table1  = 1
			larger  = cpCookie | 0x11
			smaller = cpCookie | 0x10
			other   = cpCookie | 0x12
			limit   = 200
		)
		reg0 := ofrules.Reg(0)
		// All of reg0 set first, so the not-larger verdict must clear the bit.
		flows := []ofrules.Flow{
			{Table: table0, Priority: 100, Cookie: cpCookie | 0x20, Actions: []ofrules.Action{
				ofrules.SetField{Field: reg0, Value: 0xffffffff},
				ofrules.CheckPktLarger{Len: limit, Dst: reg0, Ofs: 5}, ofrules.Goto{Table: table1}}},
			{Table: table1, Priority: 20, Cookie: larger, Match: ofrules.NewMatch(ofrules.Exact(reg0, 0xffffffff)),
				Actions: []ofrules.Action{ofrules.Output{Port: ofrules.PortController}}},
			{Table: table1, Priority: 20, Cookie: smaller, Match: ofrules.NewMatch(ofrules.Exact(reg0, 0xffffffdf)),
				Actions: []ofrules.Action{ofrules.Output{Port: ofrules.PortController}}},
			{Table: table1, Priority: 10, Cookie: other, Actions: []ofrules.Action{ofrules.Output{Port: ofrules.PortController}}},
		}
		if err := sw.Bundle(ctx, adds(flows)); err != nil {
			t.Fatal(err)
		}
		// Whether the datapath runs check_pkt_len itself or OVS decides in
		// the slow path ("Check pkt length action: Yes" on netdev, 3.1).
		if out, err := env.ovs.Appctl(ctx, "dpif/show-dp-features", env.bridge); err == nil {
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "Check pkt length") {
					t.Logf("datapath: %s", l)
				}
			}
		}
		// ovs-actions(7) says a VLAN tag does not count, but on the
		// userspace (netdev) datapath of OVS 3.1 it does: a tagged frame of
		// limit+4 bytes (limit without the tag) is larger. (The kernel
		// datapath keeps tags out of the packet data.)
		for _, c := range []struct {
			n    int
			vlan bool
			want uint64
		}{{60, false, smaller}, {limit - 1, false, smaller}, {limit, false, smaller}, {limit + 1, false, larger},
			{1500, false, larger}, {64, false, smaller}, {limit, true, smaller}, {limit + 4, true, larger}} {
			frame := lenFrame(c.n)
			if c.vlan {
				frame = vlanFrame(c.n)
			}
			if err := sw.PacketOut(ctx, 0, ofppTable, frame); err != nil {
				t.Fatalf("packet-out of %d bytes: %v", c.n, err)
			}
			pi := env.rec.waitPacketIn(t, sw, 10*time.Second)
			if len(pi.Data) != c.n || int(pi.TotalLen) != c.n {
				t.Errorf("%d-byte frame: packet-in of %d bytes (total_len %d)", c.n, len(pi.Data), pi.TotalLen)
			}
			t.Logf("%d-byte frame: packet-in from table %d, cookie %#x, reason %d", c.n, pi.TableID, pi.Cookie, pi.Reason)
			if pi.Cookie != c.want || pi.TableID != table1 {
				t.Errorf("%d-byte frame (VLAN tag: %v, check_pkt_larger(%d)): packet-in from table %d cookie %#x, want cookie %#x",
					c.n, c.vlan, limit, pi.TableID, pi.Cookie, c.want)
			}
		}
	})
}

// vlanFrame is an n-byte frame with an 802.1Q tag (VID 5), n including
// the 4-byte tag.
func vlanFrame(n int) []byte {
	b := lenFrame(n)
	copy(b[16:], b[12:14])
	copy(b[12:], []byte{0x81, 0x00, 0x00, 0x05})
	return b
}

// ofppTable is OFPP_TABLE: a packet-out output to it runs the pipeline
// from table 0.
const ofppTable = 0xfffffff9

// lenFrame is an n-byte Ethernet frame (local experimental ethertype, zero
// payload) with its length in the first payload bytes.
func lenFrame(n int) []byte {
	b := make([]byte, n)
	copy(b, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	if n >= 16 {
		binary.BigEndian.PutUint16(b[14:], uint16(n))
	}
	return b
}
