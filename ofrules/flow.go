// Package ofrules holds the OpenFlow flow value type used across OpenVPC:
// typed matches and actions, their ovs-ofctl-like text form, flow sets and
// the diff between a desired and an installed set. Encoding to the wire
// (libOpenflow) lives in encode.go/decode.go of this package.
package ofrules

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Field names an OpenFlow/NXM match or set_field target.
type Field uint16

// Fields OpenVPC uses. Values carry the field in its natural width in the low
// bits of a uint64 (MACs: 48 bits, IPv4: 32 bits, ports: 16 bits).
const (
	FieldInvalid Field = iota
	InPort
	EthSrc
	EthDst
	EthType
	ArpOp
	ArpSpa
	ArpTpa
	ArpSha
	ArpTha
	IPProto
	IPv4Src
	IPv4Dst
	TCPSrc
	TCPDst
	UDPSrc
	UDPDst
	ICMPType
	ICMPCode
	Metadata
	TunID
	TunSrc
	TunDst
	CtState
	CtZone
	CtMark
	CtLabel // low 64 bits of the 128-bit label
	ConjID
	IPTTL
	// IPFrag is OVS's nw_frag: bit 0 "is a fragment", bit 1 "is a later
	// fragment" (matched only in the switch's nx-match fragment mode).
	IPFrag
	reg0 // Reg(n) = reg0 + n, n in 0..15
)

const maxReg = 15

// Reg returns the field of NXM register n (0..15).
func Reg(n int) Field {
	if n < 0 || n > maxReg {
		panic(fmt.Sprintf("ofrules: register %d out of range", n))
	}
	return reg0 + Field(n)
}

// IsReg reports whether f is a register and which one.
func (f Field) IsReg() (int, bool) {
	if f >= reg0 && f <= reg0+maxReg {
		return int(f - reg0), true
	}
	return 0, false
}

var fieldNames = map[Field]string{
	InPort: "in_port", EthSrc: "dl_src", EthDst: "dl_dst", EthType: "dl_type",
	ArpOp: "arp_op", ArpSpa: "arp_spa", ArpTpa: "arp_tpa", ArpSha: "arp_sha", ArpTha: "arp_tha",
	IPProto: "nw_proto", IPv4Src: "nw_src", IPv4Dst: "nw_dst",
	TCPSrc: "tcp_src", TCPDst: "tcp_dst", UDPSrc: "udp_src", UDPDst: "udp_dst",
	ICMPType: "icmp_type", ICMPCode: "icmp_code", Metadata: "metadata",
	TunID: "tun_id", TunSrc: "tun_src", TunDst: "tun_dst",
	CtState: "ct_state", CtZone: "ct_zone", CtMark: "ct_mark", CtLabel: "ct_label",
	ConjID: "conj_id", IPTTL: "nw_ttl", IPFrag: "nw_frag",
}

// setFieldNames are the names ovs-ofctl uses on the right of set_field/move.
var setFieldNames = map[Field]string{
	EthSrc: "eth_src", EthDst: "eth_dst", IPv4Src: "ip_src", IPv4Dst: "ip_dst",
	TCPSrc: "tcp_src", TCPDst: "tcp_dst", UDPSrc: "udp_src", UDPDst: "udp_dst",
}

func (f Field) String() string {
	if n, ok := f.IsReg(); ok {
		return fmt.Sprintf("reg%d", n)
	}
	if s, ok := fieldNames[f]; ok {
		return s
	}
	return fmt.Sprintf("field%d", uint16(f))
}

func (f Field) setName() string {
	if s, ok := setFieldNames[f]; ok {
		return s
	}
	return f.String()
}

// Bits is the width of the field in bits.
func (f Field) Bits() int {
	if _, ok := f.IsReg(); ok {
		return 32
	}
	switch f {
	case InPort, CtMark:
		return 32
	case EthSrc, EthDst, ArpSha, ArpTha:
		return 48
	case EthType, TCPSrc, TCPDst, UDPSrc, UDPDst, CtZone:
		return 16
	case ArpOp:
		return 16
	case ArpSpa, ArpTpa, IPv4Src, IPv4Dst, TunSrc, TunDst, ConjID:
		return 32
	case IPProto, ICMPType, ICMPCode, IPTTL:
		return 8
	case IPFrag:
		return 2 // a byte on the wire, of which OVS uses two bits
	case Metadata, TunID, CtLabel:
		return 64
	case CtState:
		return 32
	}
	return 0
}

func (f Field) fullMask() uint64 {
	b := f.Bits()
	if b >= 64 {
		return ^uint64(0)
	}
	return (uint64(1) << b) - 1
}

// Ethernet types and IP protocols used in matches.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
)

// Special ports.
const (
	PortInPort     uint32 = 0xfffffff8
	PortController uint32 = 0xfffffffd
)

// Conntrack state bits (as in NXM ct_state).
const (
	CtNew = 1 << 0
	CtEst = 1 << 1
	CtRel = 1 << 2
	CtRpl = 1 << 3
	CtInv = 1 << 4
	CtTrk = 1 << 5
)

// MatchField is one field of a match. Mask 0 means an exact match.
type MatchField struct {
	Field Field
	Value uint64
	Mask  uint64
}

// Match is a set of match fields, kept sorted by field so equal matches have
// equal text.
type Match []MatchField

// Exact matches field f exactly against v.
func Exact(f Field, v uint64) MatchField { return MatchField{Field: f, Value: v} }

// Masked matches the bits of mask in field f against v.
func Masked(f Field, v, mask uint64) MatchField {
	if mask == f.fullMask() {
		mask = 0
	}
	if f == CtState && mask != 0 && v&mask == mask {
		// "+est+trk" is Exact(CtState, est|trk): one canonical form, so
		// that Key (which compares masks) equals what decode returns.
		v, mask = mask, 0
	}
	return MatchField{Field: f, Value: v & orFull(mask, f), Mask: mask}
}

func orFull(mask uint64, f Field) uint64 {
	if mask == 0 {
		return f.fullMask()
	}
	return mask
}

// NewMatch builds a canonical match: sorted by field, identical entries
// once. (Two different matches on one field stay, for the encoder to
// reject.)
func NewMatch(fields ...MatchField) Match {
	m := make(Match, 0, len(fields))
	m = append(m, fields...)
	sort.SliceStable(m, func(i, j int) bool { return m[i].Field < m[j].Field })
	// In place: out is a prefix of m that never overtakes the entry read.
	out := m[:0]
	for _, mf := range m {
		dup := false
		for j := len(out) - 1; j >= 0 && out[j].Field == mf.Field; j-- {
			if out[j] == mf {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, mf)
		}
	}
	return out
}

// Get returns the match on field f.
func (m Match) Get(f Field) (MatchField, bool) {
	for _, mf := range m {
		if mf.Field == f {
			return mf, true
		}
	}
	return MatchField{}, false
}

// Action is one OpenFlow action (or instruction such as goto_table).
type Action interface {
	text(names TableNamer) string
}

// Output sends the packet to a port (PortInPort for IN_PORT).
type Output struct{ Port uint32 }

// OutputReg outputs to the port number held in bits of a field (output:reg3).
type OutputReg struct {
	Field Field
	Ofs   int
	NBits int
}

// SetField writes Value (under Mask, 0 = whole field) to Field.
type SetField struct {
	Field Field
	Value uint64
	Mask  uint64
}

// Move copies NBits from Src[SrcOfs..] to Dst[DstOfs..] (copy_field).
type Move struct {
	Src    Field
	SrcOfs int
	Dst    Field
	DstOfs int
	NBits  int
}

// Goto continues in a later table (an instruction; always last).
type Goto struct{ Table uint8 }

// Resubmit runs another table and returns.
type Resubmit struct{ Table uint8 }

// CT sends the packet through conntrack. ZoneField (with ZoneOfs/ZoneBits)
// takes the zone from a register; otherwise Zone is used. Table < 0 means no
// recirculation.
type CT struct {
	Commit    bool
	Table     int
	Zone      uint16
	ZoneField Field
	ZoneOfs   int
	ZoneBits  int
	Exec      []Action // only SetField/Move to ct_mark/ct_label; needs Commit
}

// Conjunction is one clause (1-based) of a conjunctive match with NClauses.
type Conjunction struct {
	ID       uint32
	Clause   uint8
	NClauses uint8
}

// Controller sends the packet to the controller.
type Controller struct{ MaxLen uint16 }

// CheckPktLarger is OVS's check_pkt_larger(Len)->Dst[Ofs]: it sets bit Ofs
// of Dst to 1 if the frame (Ethernet header included) is larger than Len
// bytes, else to 0. Dst is a writable field, usually a register.
// ovs-actions(7) says VLAN tags do not count; OVS 3.1's userspace
// (netdev) datapath counts them.
type CheckPktLarger struct {
	Len uint16
	Dst Field
	Ofs uint8
}

// TableNamer maps table numbers to names for text output.
type TableNamer func(table uint8) string

// Flow is one OpenFlow flow entry.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  []Action // empty means drop

	// Stats are the counters the switch reported for the flow in a dump
	// (nil for flows not read from a switch). They are not part of the
	// flow: Key, Text, FlowSet and Diff ignore them. Copies of a Flow share
	// the pointer; decoded stats are never modified.
	Stats *FlowStats
}

// StatUnknown is the value of a FlowStats counter the switch did not report.
const StatUnknown = ^uint64(0)

// FlowStats are a flow's statistics as read from the switch (the OXS fields
// of an OpenFlow 1.5 flow description).
type FlowStats struct {
	Duration time.Duration // time since the flow was added; < 0 if not reported
	IdleAge  time.Duration // time since it last matched a packet (OVS: whole seconds); < 0 if not reported
	Packets  uint64        // packets matched; StatUnknown if not reported
	Bytes    uint64        // bytes matched; StatUnknown if not reported
}

// Key identifies a flow the way OVS does (table, priority, match). Match is
// a compact binary encoding of the canonical match, cheap to build and
// compare; it orders like the fields do.
type Key struct {
	Table    uint8
	Priority uint16
	Match    string
}

// Key returns the identity of the flow.
func (f *Flow) Key() Key {
	return Key{Table: f.Table, Priority: f.Priority, Match: f.Match.key()}
}

func (m Match) key() string {
	b := make([]byte, 0, len(m)*18)
	for _, mf := range m {
		b = append(b, byte(mf.Field>>8), byte(mf.Field))
		b = binary.BigEndian.AppendUint64(b, mf.Value)
		b = binary.BigEndian.AppendUint64(b, mf.Mask)
	}
	return string(b)
}

func tableName(n TableNamer, t uint8) string {
	if n != nil {
		if s := n(t); s != "" {
			return s
		}
	}
	return fmt.Sprintf("%d", t)
}

// Text renders the flow like `ovs-ofctl dump-flows --no-stats` with table names.
func (f *Flow) Text(names TableNamer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cookie=%#x, table=%s, ", f.Cookie, tableName(names, f.Table))
	f.writeRule(&b, names)
	return b.String()
}

// TextWithStats renders the flow like `ovs-ofctl dump-flows` (with table
// names): Text plus duration, n_packets, n_bytes and idle_age, in
// ovs-ofctl's order. Without Stats it is Text.
func (f *Flow) TextWithStats(names TableNamer) string {
	s := f.Stats
	if s == nil {
		return f.Text(names)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cookie=%#x, ", f.Cookie)
	if s.Duration >= 0 {
		b.WriteString("duration=")
		b.WriteString(formatDuration(s.Duration))
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "table=%s, n_packets=%s, n_bytes=%s, ", tableName(names, f.Table), formatCount(s.Packets), formatCount(s.Bytes))
	if s.IdleAge >= 0 {
		fmt.Fprintf(&b, "idle_age=%d, ", s.IdleAge/time.Second)
	}
	f.writeRule(&b, names)
	return b.String()
}

// writeRule writes "priority=N[,match] actions=...", the tail shared by
// Text and TextWithStats.
func (f *Flow) writeRule(b *strings.Builder, names TableNamer) {
	fmt.Fprintf(b, "priority=%d", f.Priority)
	if mt := f.Match.Text(); mt != "" {
		b.WriteString(",")
		b.WriteString(mt)
	}
	b.WriteString(" actions=")
	b.WriteString(ActionsText(f.Actions, names))
}

// formatDuration renders a duration as ovs-ofctl does: whole seconds, then
// milliseconds when the fraction is whole milliseconds, else as many
// nanosecond digits as needed ("5s", "1.234s", "0.0000015s").
func formatDuration(d time.Duration) string {
	sec, nsec := d/time.Second, d%time.Second
	switch {
	case nsec == 0:
		return fmt.Sprintf("%ds", sec)
	case nsec%time.Millisecond == 0:
		return fmt.Sprintf("%d.%03ds", sec, nsec/time.Millisecond)
	}
	return fmt.Sprintf("%d.%ss", sec, strings.TrimRight(fmt.Sprintf("%09d", nsec), "0"))
}

// formatCount renders a counter, "?" when unknown (as ovs-ofctl does).
func formatCount(v uint64) string {
	if v == StatUnknown {
		return "?"
	}
	return fmt.Sprintf("%d", v)
}

// ActionsText renders an action list; an empty list is "drop".
func ActionsText(acts []Action, names TableNamer) string {
	if len(acts) == 0 {
		return "drop"
	}
	parts := make([]string, len(acts))
	for i, a := range acts {
		parts[i] = a.text(names)
	}
	return strings.Join(parts, ",")
}

// Text renders the match in canonical order.
func (m Match) Text() string {
	parts := make([]string, 0, len(m))
	for _, mf := range m {
		parts = append(parts, mf.text())
	}
	return strings.Join(parts, ",")
}

func (mf MatchField) text() string {
	return mf.Field.String() + "=" + FormatValue(mf.Field, mf.Value, mf.Mask)
}

// FormatValue renders a field value (and mask, 0 = exact) as ovs-ofctl does.
func FormatValue(f Field, v, mask uint64) string {
	switch f {
	case EthSrc, EthDst, ArpSha, ArpTha:
		s := formatMAC(v)
		if mask != 0 {
			s += "/" + formatMAC(mask)
		}
		return s
	case ArpSpa, ArpTpa, IPv4Src, IPv4Dst, TunSrc, TunDst:
		s := formatIPv4(uint32(v))
		if mask != 0 {
			if p, ok := prefixLen(uint32(mask)); ok {
				return fmt.Sprintf("%s/%d", s, p)
			}
			s += "/" + formatIPv4(uint32(mask))
		}
		return s
	case CtState:
		return formatCtState(v, mask)
	case IPFrag:
		if name, ok := fragNames[[2]uint64{v, mask}]; ok {
			return name
		}
	case InPort, ArpOp, IPProto, ICMPType, ICMPCode, TCPSrc, TCPDst, UDPSrc, UDPDst, ConjID, IPTTL, CtZone:
		if mask != 0 {
			return fmt.Sprintf("%#x/%#x", v, mask)
		}
		if f == InPort && uint32(v) == PortInPort {
			return "IN_PORT"
		}
		return fmt.Sprintf("%d", v)
	}
	if mask != 0 {
		return fmt.Sprintf("%#x/%#x", v, mask)
	}
	return fmt.Sprintf("%#x", v)
}

// fragNames are ovs-ofctl's names of nw_frag value/mask pairs.
// (Both bits masked is the exact form.)
var fragNames = map[[2]uint64]string{{0, 1}: "no", {1, 1}: "yes", {1, 0}: "first", {3, 0}: "later", {0, 2}: "not_later", {0, 0}: "no"}

// FragLater is the nw_frag value of a later fragment: Exact(IPFrag, FragLater).
const FragLater = 3

func formatMAC(v uint64) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x",
		byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func formatIPv4(v uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func prefixLen(mask uint32) (int, bool) {
	n := 0
	for n < 32 && mask&(1<<(31-n)) != 0 {
		n++
	}
	if mask<<n != 0 && n < 32 {
		return 0, false
	}
	return n, true
}

var ctBits = []struct {
	bit  uint64
	name string
}{{CtNew, "new"}, {CtEst, "est"}, {CtRel, "rel"}, {CtRpl, "rpl"}, {CtInv, "inv"}, {CtTrk, "trk"}}

func formatCtState(v, mask uint64) string {
	if mask == 0 {
		mask = v
	}
	var b strings.Builder
	for _, cb := range ctBits {
		if mask&cb.bit == 0 {
			continue
		}
		if v&cb.bit != 0 {
			b.WriteString("+")
		} else {
			b.WriteString("-")
		}
		b.WriteString(cb.name)
	}
	return b.String()
}

func (a Output) text(TableNamer) string {
	switch a.Port {
	case PortInPort:
		return "IN_PORT"
	case PortController:
		return "CONTROLLER"
	}
	return fmt.Sprintf("output:%d", a.Port)
}

func (a OutputReg) text(TableNamer) string {
	return fmt.Sprintf("output:%s", fieldRange(a.Field, a.Ofs, a.NBits))
}

func (a SetField) text(TableNamer) string {
	v := FormatValue(a.Field, a.Value, 0)
	if a.Mask != 0 && a.Mask != a.Field.fullMask() {
		v = fmt.Sprintf("%#x/%#x", a.Value, a.Mask)
	}
	return fmt.Sprintf("set_field:%s->%s", v, a.Field.setName())
}

func fieldRange(f Field, ofs, nbits int) string {
	if nbits == 0 || (ofs == 0 && nbits == f.Bits()) {
		return f.setName() + "[]"
	}
	return fmt.Sprintf("%s[%d..%d]", f.setName(), ofs, ofs+nbits-1)
}

func (a Move) text(TableNamer) string {
	return fmt.Sprintf("move:%s->%s", fieldRange(a.Src, a.SrcOfs, a.NBits), fieldRange(a.Dst, a.DstOfs, a.NBits))
}

func (a Goto) text(n TableNamer) string { return "goto_table:" + tableName(n, a.Table) }

func (a Resubmit) text(n TableNamer) string { return "resubmit(," + tableName(n, a.Table) + ")" }

func (a CT) text(n TableNamer) string {
	var parts []string
	if a.Commit {
		parts = append(parts, "commit")
	}
	if a.Table >= 0 {
		parts = append(parts, "table="+tableName(n, uint8(a.Table)))
	}
	if a.ZoneField != FieldInvalid {
		parts = append(parts, "zone="+fieldRange(a.ZoneField, a.ZoneOfs, a.ZoneBits))
	} else if a.Zone != 0 {
		parts = append(parts, fmt.Sprintf("zone=%d", a.Zone))
	}
	if len(a.Exec) > 0 {
		parts = append(parts, "exec("+ActionsText(a.Exec, n)+")")
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

func (a Conjunction) text(TableNamer) string {
	return fmt.Sprintf("conjunction(%d,%d/%d)", a.ID, a.Clause, a.NClauses)
}

// text uses our short field names (reg0[5]), as Move does; ovs-ofctl
// prints NXM_NX_REG0[5] but accepts both.
func (a CheckPktLarger) text(TableNamer) string {
	return fmt.Sprintf("check_pkt_larger(%d)->%s[%d]", a.Len, a.Dst.setName(), a.Ofs)
}

func (a Controller) text(TableNamer) string {
	return fmt.Sprintf("controller(max_len=%d)", a.MaxLen)
}
