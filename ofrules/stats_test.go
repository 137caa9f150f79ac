package ofrules_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	. "github.com/openvpc/openvpc/ofrules"
)

// oxs builds one OXS TLV of class OFPXSC_OPENFLOW_BASIC.
func oxs(field uint8, v []byte) []byte {
	return append([]byte{0x80, 0x02, field << 1, byte(len(v))}, v...)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ofpStats wraps OXS TLVs in an ofp_stats header, padded to 8 bytes as OVS
// sends it.
func ofpStats(tlvs ...[]byte) []byte {
	b := []byte{0, 0, 0, 0}
	for _, t := range tlvs {
		b = append(b, t...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// flowDescStats builds an ofp_flow_desc for f with the given ofp_stats.
func flowDescStats(t *testing.T, f Flow, stats []byte) []byte {
	t.Helper()
	fm, err := MarshalFlowMod(FlowMod{Op: OpAdd, Flow: f}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlen := int(binary.BigEndian.Uint16(fm[flowModHeaderLen+2:]))
	mpad := (mlen + 7) / 8 * 8
	d := make([]byte, flowDescHeaderLen)
	d[4] = f.Table
	binary.BigEndian.PutUint16(d[6:], f.Priority)
	binary.BigEndian.PutUint64(d[16:], f.Cookie)
	d = append(d, fm[flowModHeaderLen:flowModHeaderLen+mpad]...)
	d = append(d, stats...)
	d = append(d, fm[flowModHeaderLen+mpad:]...)
	binary.BigEndian.PutUint16(d, uint16(len(d)))
	return d
}

var statsFlow = Flow{Table: 3, Priority: 100, Cookie: 0xb000000000000012,
	Match:   NewMatch(Exact(InPort, 7), Exact(EthType, EthTypeIPv4)),
	Actions: []Action{SetField{Field: Reg(0), Value: 5}, Goto{Table: 4}}}

func TestDecodeFlowDescStats(t *testing.T) {
	// What OVS 3.1 sends: duration, idle_time, packet_count, byte_count
	// (ox-stat.c oxs_put_stats order). A flow_count and an experimenter
	// field are skipped.
	full := ofpStats(
		oxs(0, be64(5<<32|123000000)),
		oxs(1, be64(3<<32)),
		oxs(4, be64(5)),
		oxs(5, be64(490)),
		oxs(3, []byte{0, 0, 0, 1}),
		[]byte{0xff, 0xff, 9 << 1, 6, 0, 0, 0x23, 0x20, 0xaa, 0xbb},
	)
	onlyDuration := ofpStats(oxs(0, be64(2<<32)))
	empty := ofpStats()
	body := flowDescStats(t, statsFlow, full)
	body = append(body, flowDescStats(t, statsFlow, onlyDuration)...)
	body = append(body, flowDescStats(t, statsFlow, empty)...)
	got, err := DecodeFlowDescs(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d flows", len(got))
	}
	for i := range got {
		if got[i].Text(nil) != statsFlow.Text(nil) || got[i].Key() != statsFlow.Key() {
			t.Errorf("flow %d: %s", i, got[i].Text(nil))
		}
	}
	want := FlowStats{Duration: 5*time.Second + 123*time.Millisecond, IdleAge: 3 * time.Second, Packets: 5, Bytes: 490}
	if got[0].Stats == nil || *got[0].Stats != want {
		t.Errorf("full stats: %+v, want %+v", got[0].Stats, want)
	}
	want = FlowStats{Duration: 2 * time.Second, IdleAge: -1, Packets: StatUnknown, Bytes: StatUnknown}
	if got[1].Stats == nil || *got[1].Stats != want {
		t.Errorf("duration only: %+v, want %+v", got[1].Stats, want)
	}
	if got[2].Stats != nil {
		t.Errorf("empty ofp_stats: %+v, want nil", got[2].Stats)
	}
	if s := got[0].TextWithStats(nil); s != "cookie=0xb000000000000012, duration=5.123s, table=3, n_packets=5, n_bytes=490, idle_age=3, priority=100,in_port=7,dl_type=0x800 actions=set_field:0x5->reg0,goto_table:4" {
		t.Errorf("TextWithStats: %s", s)
	}
	if s := got[1].TextWithStats(nil); s != "cookie=0xb000000000000012, duration=2s, table=3, n_packets=?, n_bytes=?, priority=100,in_port=7,dl_type=0x800 actions=set_field:0x5->reg0,goto_table:4" {
		t.Errorf("TextWithStats: %s", s)
	}

	// A truncated OXS field ends the stats (what came before it is kept);
	// the flow itself still decodes.
	bad := ofpStats(oxs(4, be64(5)), oxs(5, be64(490)))
	binary.BigEndian.PutUint16(bad[2:], 4+12+11)
	got, err = DecodeFlowDescs(flowDescStats(t, statsFlow, bad))
	if err != nil || len(got) != 1 || got[0].Text(nil) != statsFlow.Text(nil) {
		t.Fatalf("truncated OXS: %v %v", got, err)
	}
	want = FlowStats{Duration: -1, IdleAge: -1, Packets: 5, Bytes: StatUnknown}
	if got[0].Stats == nil || *got[0].Stats != want {
		t.Errorf("truncated OXS: %+v, want %+v", got[0].Stats, want)
	}
}

func TestTextWithStats(t *testing.T) {
	names := func(n uint8) string {
		if n == 3 {
			return "L2Filter"
		}
		return ""
	}
	f := statsFlow
	if f.TextWithStats(names) != f.Text(names) {
		t.Errorf("without stats: %s", f.TextWithStats(names))
	}
	plain := f.Text(names)
	f.Stats = &FlowStats{Duration: 1234 * time.Millisecond, IdleAge: 7*time.Second + 900*time.Millisecond, Packets: 1, Bytes: 98}
	if got, want := f.TextWithStats(names), "cookie=0xb000000000000012, duration=1.234s, table=L2Filter, n_packets=1, n_bytes=98, idle_age=7, priority=100,in_port=7,dl_type=0x800 actions=set_field:0x5->reg0,goto_table:4"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if f.Text(names) != plain {
		t.Errorf("Text changed with stats: %s", f.Text(names))
	}
	// ovs-ofctl's duration format (ofp_print_duration).
	for d, want := range map[time.Duration]string{
		0:                                    "duration=0s,",
		7 * time.Second:                      "duration=7s,",
		1500 * time.Microsecond:              "duration=0.0015s,",
		time.Second + 10:                     "duration=1.00000001s,",
		61*time.Second + 50*time.Millisecond: "duration=61.050s,",
	} {
		f.Stats = &FlowStats{Duration: d, IdleAge: -1}
		if s := f.TextWithStats(nil); !strings.Contains(s, " "+want+" table=3, n_packets=0, n_bytes=0, priority=100,") {
			t.Errorf("%v: %s", d, s)
		}
	}
	// An unknown duration is left out.
	f.Stats = &FlowStats{Duration: -1, IdleAge: 0, Packets: 2, Bytes: 3}
	if s := f.TextWithStats(nil); !strings.HasPrefix(s, "cookie=0xb000000000000012, table=3, n_packets=2, n_bytes=3, idle_age=0, priority=100,") {
		t.Errorf("no duration: %s", s)
	}
}

// Stats are not part of a flow: FlowSet and Diff see no change when only
// the counters differ.
func TestStatsIgnoredByDiff(t *testing.T) {
	desired, installed := NewFlowSet(), NewFlowSet()
	desired.Add(statsFlow)
	f := statsFlow
	f.Stats = &FlowStats{Duration: time.Second, IdleAge: 0, Packets: 10, Bytes: 1000}
	if f.Key() != statsFlow.Key() || f.Text(nil) != statsFlow.Text(nil) {
		t.Fatal("stats changed Key or Text")
	}
	installed.Add(f)
	if !installed.Add(statsFlow) {
		t.Error("the same flow without stats conflicts with itself")
	}
	if d := Diff(installed, desired); len(d) != 0 {
		t.Errorf("diff of flows differing only in stats: %v", d)
	}
}
