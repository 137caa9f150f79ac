package ofrules

// OpenFlow 1.5 encoding of flows and flow-mods into libOpenflow messages.
//
// Rules of the encoding (decode.go undoes exactly these):
//   - Match fields are OXM/NXM TLVs; the encoder never adds fields, but it
//     rejects a match that lacks a prerequisite OVS would require
//     (dl_type for L3 fields, nw_proto for L4 fields), and the same for the
//     fields actions read or write and for ct().
//   - Exact(CtState, v) means the bits set in v must be set ("+est+trk"),
//     exactly as Flow.Text renders it: on the wire it is v/v.
//   - CtLabel is the low 64 bits of the 128-bit label: matches and writes use
//     a 128-bit mask with only the low 64 bits set.
//   - Register loads are set_field (masked when Mask != 0), moves are
//     copy_field (NXAST_REG_LOAD/REG_MOVE are rejected by OVS under OF1.5).
//   - Goto is the goto_table instruction and must be the last action;
//     everything else is in one apply-actions instruction.
//   - Controller{MaxLen} is output:CONTROLLER with that max_len (<= 0xffe5);
//     Output{Port: PortController} is output:CONTROLLER with max_len
//     0xffff (whole packet).
//   - CheckPktLarger is NXAST_CHECK_PKT_LARGER (libOpenflow has none),
//     written by hand: 24 bytes, pkt_len and the bit offset as be16, then
//     the destination's 4-byte OXM/NXM header, zero padding.
//
// libOpenflow's typed match values have bugs (MACs are not unmarshalled,
// NXM tun_id decodes to nil, FlowMod writes out_port twice), so match and
// set-field values are carried as raw bytes and decoding works on wire bytes
// (decode.go) rather than on libOpenflow's parsed structures.

import (
	"encoding/binary"
	"fmt"

	"antrea.io/libOpenflow/openflow15"
)

// OpenFlow constants used by the encoder and decoder.
const (
	ofVersion15 = 6

	oxmClassNXM0         = 0x0000
	oxmClassNXM1         = 0x0001
	oxmClassBasic        = 0x8000
	oxmClassPacketRegs   = 0x8001
	oxmClassExperimenter = 0xffff

	ofppInPort16     = 0xfff8     // 16-bit OFPP_IN_PORT used by resubmit
	ofpcmlMax        = 0xffe5     // largest max_len requesting a byte count
	ofpcmlNoBuffer   = 0xffff     // whole packet
	ofpttAll         = 0xff       // all tables
	ofppAny          = 0xffffffff // wildcard port
	ofpgAny          = 0xffffffff // wildcard group
	ofpNoBuffer      = 0xffffffff
	nxExperimenterID = 0x00002320
	ctRecircNone     = 0xff

	nxastCheckPktLarger    = 49 // Nicira action subtype
	nxCheckPktLargerLength = 24

	// ctStateBits are the ct_state bits OVS defines (new, est, rel, rpl,
	// inv, trk, snat, dnat); it reports a full ct_state mask as 0xff.
	ctStateBits = 0xff
)

// oxm describes a field on the wire: class, field number and payload size.
type oxm struct {
	class uint16
	field uint8
	size  uint8 // bytes of the unmasked payload
}

// header is the unmasked 32-bit OXM/NXM header, as used by ct zone
// sources.
func (o oxm) header() uint32 {
	return uint32(o.class)<<16 | uint32(o.field)<<9 | uint32(o.size)
}

// wire returns the OXM/NXM header used to encode f.
func (f Field) wire() (oxm, bool) {
	if n, ok := f.IsReg(); ok {
		return oxm{oxmClassNXM1, uint8(n), 4}, true
	}
	switch f {
	case InPort:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_IN_PORT, 4}, true
	case EthDst:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ETH_DST, 6}, true
	case EthSrc:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ETH_SRC, 6}, true
	case EthType:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ETH_TYPE, 2}, true
	case ArpOp:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ARP_OP, 2}, true
	case ArpSpa:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ARP_SPA, 4}, true
	case ArpTpa:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ARP_TPA, 4}, true
	case ArpSha:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ARP_SHA, 6}, true
	case ArpTha:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ARP_THA, 6}, true
	case IPProto:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_IP_PROTO, 1}, true
	case IPv4Src:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_IPV4_SRC, 4}, true
	case IPv4Dst:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_IPV4_DST, 4}, true
	case TCPSrc:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_TCP_SRC, 2}, true
	case TCPDst:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_TCP_DST, 2}, true
	case UDPSrc:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_UDP_SRC, 2}, true
	case UDPDst:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_UDP_DST, 2}, true
	case ICMPType:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ICMPV4_TYPE, 1}, true
	case ICMPCode:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_ICMPV4_CODE, 1}, true
	case Metadata:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_METADATA, 8}, true
	case TunID:
		return oxm{oxmClassBasic, openflow15.OXM_FIELD_TUNNEL_ID, 8}, true
	case TunSrc:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_TUN_IPV4_SRC, 4}, true
	case TunDst:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_TUN_IPV4_DST, 4}, true
	case CtState:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_CT_STATE, 4}, true
	case CtZone:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_CT_ZONE, 2}, true
	case CtMark:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_CT_MARK, 4}, true
	case CtLabel:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_CT_LABEL, 16}, true
	case ConjID:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_CONJ_ID, 4}, true
	case IPTTL:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_IP_TTL, 1}, true
	case IPFrag:
		return oxm{oxmClassNXM1, openflow15.NXM_NX_IP_FRAG, 1}, true
	}
	return oxm{}, false
}

// maskable reports whether OVS accepts a mask on f (in matches and set_field).
func (f Field) maskable() bool {
	switch f {
	case InPort, EthType, ArpOp, IPProto, ICMPType, ICMPCode, CtZone, ConjID, IPTTL:
		return false
	}
	return true
}

// writable reports whether f may be the destination of set_field or move.
// in_port is writable in OVS only through its 16-bit NXM header; OVS 3.1
// rejects set_field on OXM in_port (OFPBAC_BAD_SET_ARGUMENT), and OpenVPC
// never needs it (IN_PORT output is the Output{PortInPort} action).
func (f Field) writable() bool {
	switch f {
	case InPort, EthType, IPProto, CtState, CtZone, ConjID, IPFrag, FieldInvalid:
		return false
	}
	_, ok := f.wire()
	return ok
}

// ctOnly reports whether f may only be written inside ct(exec(...)).
func (f Field) ctOnly() bool { return f == CtMark || f == CtLabel }

// prereq is one alternative set of exact matches a field needs.
type prereq struct {
	ethTypes []uint64
	proto    uint64 // 0 = none
}

// prerequisites returns what the match must contain for f to be usable.
func (f Field) prerequisites() (prereq, bool) {
	ip := []uint64{EthTypeIPv4, 0x86dd}
	switch f {
	case ArpOp, ArpSpa, ArpTpa, ArpSha, ArpTha:
		return prereq{ethTypes: []uint64{EthTypeARP, 0x8035}}, true
	case IPProto, IPTTL, IPFrag:
		return prereq{ethTypes: ip}, true
	case IPv4Src, IPv4Dst:
		return prereq{ethTypes: []uint64{EthTypeIPv4}}, true
	case TCPSrc, TCPDst:
		return prereq{ethTypes: ip, proto: ProtoTCP}, true
	case UDPSrc, UDPDst:
		return prereq{ethTypes: ip, proto: ProtoUDP}, true
	case ICMPType, ICMPCode:
		return prereq{ethTypes: []uint64{EthTypeIPv4}, proto: ProtoICMP}, true
	}
	return prereq{}, false
}

// checkPrereqs returns an error if m lacks what using f requires.
func checkPrereqs(m Match, f Field, use string) error {
	p, ok := f.prerequisites()
	if !ok {
		return nil
	}
	et, ok := m.Get(EthType)
	if !ok || et.Mask != 0 || !contains(p.ethTypes, et.Value) {
		return fmt.Errorf("%s %s needs dl_type=%s in the match", use, f, fmtEthTypes(p.ethTypes))
	}
	if p.proto != 0 {
		pr, ok := m.Get(IPProto)
		if !ok || pr.Mask != 0 || pr.Value != p.proto {
			return fmt.Errorf("%s %s needs nw_proto=%d in the match", use, f, p.proto)
		}
	}
	return nil
}

func contains(vs []uint64, v uint64) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func fmtEthTypes(vs []uint64) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += "|"
		}
		s += fmt.Sprintf("%#x", v)
	}
	return s
}

// putUint writes v big-endian into n bytes.
func putUint(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// wireBytes is a raw OXM payload (value or mask) as a libOpenflow message.
type wireBytes struct{ b []byte }

func (w *wireBytes) Len() uint16                    { return uint16(len(w.b)) }
func (w *wireBytes) MarshalBinary() ([]byte, error) { return w.b, nil }
func (w *wireBytes) UnmarshalBinary(b []byte) error { w.b = append(w.b[:0], b...); return nil }

// fieldBytes renders value v of f in the field's wire size; CtLabel puts it
// in the low 64 bits of the 128-bit label.
func fieldBytes(o oxm, v uint64) []byte {
	b := make([]byte, o.size)
	if o.size > 8 {
		putUint(b[o.size-8:], v)
	} else {
		putUint(b, v)
	}
	return b
}

// oxmTLV builds a libOpenflow match field (also used inside set_field).
// wireMask nil means unmasked.
func oxmTLV(o oxm, value uint64, wireMask *uint64) openflow15.MatchField {
	mf := openflow15.MatchField{Class: o.class, Field: o.field, Length: o.size, Value: &wireBytes{fieldBytes(o, value)}}
	if wireMask != nil {
		mf.HasMask = true
		mf.Length = 2 * o.size
		mf.Mask = &wireBytes{fieldBytes(o, *wireMask)}
	}
	return mf
}

func checkWidth(f Field, what string, v uint64) error {
	if v&^f.fullMask() != 0 {
		return fmt.Errorf("%s %#x does not fit the %d bits of %s", what, v, f.Bits(), f)
	}
	return nil
}

// encodeMatch converts m, checking widths, masks, duplicates and prerequisites.
func encodeMatch(m Match) (*openflow15.Match, error) {
	om := openflow15.NewMatch()
	seen := make(map[Field]bool, len(m))
	for _, mf := range m {
		o, ok := mf.Field.wire()
		if !ok {
			return nil, fmt.Errorf("match: unknown field %s", mf.Field)
		}
		if seen[mf.Field] {
			return nil, fmt.Errorf("match: %s appears twice", mf.Field)
		}
		seen[mf.Field] = true
		if err := checkWidth(mf.Field, "match value", mf.Value); err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		if err := checkWidth(mf.Field, "match mask", mf.Mask); err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		if mf.Field == CtState && mf.Mask&^ctStateBits != 0 {
			return nil, fmt.Errorf("match: ct_state mask %#x has bits OVS does not define (only %#x)", mf.Mask, ctStateBits)
		}
		var wmask *uint64
		switch {
		case mf.Field == CtState && mf.Mask == 0:
			if mf.Value == 0 {
				return nil, fmt.Errorf("match: exact ct_state with no bits set matches everything; use Masked")
			}
			v := mf.Value
			wmask = &v
		case mf.Field == CtLabel:
			v := orFull(mf.Mask, CtLabel)
			wmask = &v
		case mf.Mask != 0 && mf.Mask != mf.Field.fullMask():
			if !mf.Field.maskable() {
				return nil, fmt.Errorf("match: %s cannot be masked", mf.Field)
			}
			v := mf.Mask
			wmask = &v
		}
		if wmask != nil && mf.Value&^*wmask != 0 {
			return nil, fmt.Errorf("match: %s value %#x has bits outside mask %#x", mf.Field, mf.Value, *wmask)
		}
		if err := checkPrereqs(m, mf.Field, "match on"); err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		om.AddField(oxmTLV(o, mf.Value, wmask))
	}
	return om, nil
}

// actionCtx carries what action checks need.
type actionCtx struct {
	match Match
	inCT  bool
}

func (c actionCtx) checkDst(f Field, use string) error {
	if !f.writable() {
		return fmt.Errorf("%s: %s is not writable", use, f)
	}
	if f.ctOnly() && !c.inCT {
		return fmt.Errorf("%s: %s can only be written inside ct(commit,exec(...))", use, f)
	}
	if c.inCT && !f.ctOnly() {
		return fmt.Errorf("%s: only ct_mark and ct_label can be written inside ct exec, not %s", use, f)
	}
	return checkPrereqs(c.match, f, use)
}

func (c actionCtx) checkSrc(f Field, use string) error {
	if _, ok := f.wire(); !ok {
		return fmt.Errorf("%s: unknown field %s", use, f)
	}
	return checkPrereqs(c.match, f, use)
}

// checkRange validates a bit range of f; nbits 0 means the whole field.
func checkRange(f Field, ofs, nbits int, use string) (int, error) {
	if nbits == 0 && ofs == 0 {
		nbits = f.Bits()
	}
	if ofs < 0 || nbits <= 0 || ofs+nbits > f.Bits() {
		return 0, fmt.Errorf("%s: bits [%d..%d] outside the %d bits of %s", use, ofs, ofs+nbits-1, f.Bits(), f)
	}
	return nbits, nil
}

func ofsNbits(ofs, nbits int) uint16 { return uint16(ofs)<<6 | uint16(nbits-1) }

// encodeActions converts the apply-actions part (no Goto) of an action list.
func encodeActions(acts []Action, c actionCtx) ([]openflow15.Action, error) {
	out := make([]openflow15.Action, 0, len(acts))
	for i, a := range acts {
		if a == nil {
			return nil, fmt.Errorf("action %d: nil action", i+1)
		}
		oa, err := encodeAction(a, c)
		if err != nil {
			return nil, fmt.Errorf("action %d (%s): %w", i+1, a.text(nil), err)
		}
		out = append(out, oa)
	}
	return out, nil
}

func encodeAction(a Action, c actionCtx) (openflow15.Action, error) {
	if c.inCT {
		switch a.(type) {
		case SetField, Move:
		default:
			return nil, fmt.Errorf("only set_field and move to ct_mark/ct_label are allowed inside ct exec")
		}
	}
	switch a := a.(type) {
	case Output:
		o := openflow15.NewActionOutput(a.Port)
		if a.Port == PortController {
			o.MaxLen = ofpcmlNoBuffer
		}
		return o, nil
	case Controller:
		if a.MaxLen > ofpcmlMax {
			return nil, fmt.Errorf("controller max_len %d above %d; use Output{Port: PortController} for the whole packet", a.MaxLen, ofpcmlMax)
		}
		o := openflow15.NewActionOutput(PortController)
		o.MaxLen = a.MaxLen
		return o, nil
	case OutputReg:
		if err := c.checkSrc(a.Field, "output"); err != nil {
			return nil, err
		}
		nb, err := checkRange(a.Field, a.Ofs, a.NBits, "output")
		if err != nil {
			return nil, err
		}
		o, _ := a.Field.wire()
		if o.size > 8 {
			return nil, fmt.Errorf("output: %s cannot hold a port", a.Field)
		}
		src := &openflow15.MatchField{Class: o.class, Field: o.field, Length: o.size}
		return openflow15.NewOutputFromField(src, ofsNbits(a.Ofs, nb)), nil
	case SetField:
		if err := c.checkDst(a.Field, "set_field"); err != nil {
			return nil, err
		}
		o, _ := a.Field.wire()
		if err := checkWidth(a.Field, "set_field value", a.Value); err != nil {
			return nil, err
		}
		if err := checkWidth(a.Field, "set_field mask", a.Mask); err != nil {
			return nil, err
		}
		var wmask *uint64
		if a.Mask != 0 && a.Mask != a.Field.fullMask() {
			if !a.Field.maskable() {
				return nil, fmt.Errorf("set_field: %s cannot be written under a mask", a.Field)
			}
			if a.Value&^a.Mask != 0 {
				return nil, fmt.Errorf("set_field: value %#x has bits outside mask %#x", a.Value, a.Mask)
			}
			m := a.Mask
			wmask = &m
		} else if a.Field == CtLabel {
			m := CtLabel.fullMask()
			wmask = &m
		}
		return openflow15.NewActionSetField(oxmTLV(o, a.Value, wmask)), nil
	case Move:
		if err := c.checkSrc(a.Src, "move"); err != nil {
			return nil, err
		}
		if err := c.checkDst(a.Dst, "move"); err != nil {
			return nil, err
		}
		nb := a.NBits
		if nb == 0 {
			if a.Src.Bits() != a.Dst.Bits() || a.SrcOfs != 0 || a.DstOfs != 0 {
				return nil, fmt.Errorf("move: NBits 0 needs fields of equal width and no offsets")
			}
			nb = a.Src.Bits()
		}
		if _, err := checkRange(a.Src, a.SrcOfs, nb, "move source"); err != nil {
			return nil, err
		}
		if _, err := checkRange(a.Dst, a.DstOfs, nb, "move destination"); err != nil {
			return nil, err
		}
		so, _ := a.Src.wire()
		do, _ := a.Dst.wire()
		return openflow15.NewActionCopyField(uint16(nb), uint16(a.SrcOfs), uint16(a.DstOfs),
			openflow15.OxmId{Class: so.class, Field: so.field, Length: so.size},
			openflow15.OxmId{Class: do.class, Field: do.field, Length: do.size}), nil
	case Resubmit:
		return openflow15.NewNXActionResubmitTableAction(ofppInPort16, a.Table), nil
	case CheckPktLarger:
		return encodeCheckPktLarger(a, c)
	case Conjunction:
		if a.NClauses < 2 || a.NClauses > 64 || a.Clause < 1 || a.Clause > a.NClauses {
			return nil, fmt.Errorf("conjunction clause %d/%d invalid (need 1 <= clause <= n, 2 <= n <= 64)", a.Clause, a.NClauses)
		}
		return openflow15.NewNXActionConjunction(a.Clause-1, a.NClauses, a.ID), nil
	case CT:
		return encodeCT(a, c)
	case Goto:
		return nil, fmt.Errorf("goto_table must be the last action")
	case nil:
		return nil, fmt.Errorf("nil action")
	}
	return nil, fmt.Errorf("unsupported action type %T", a)
}

// rawAction is an action marshalled by hand, for what libOpenflow lacks.
type rawAction struct{ b []byte }

func (r *rawAction) Header() *openflow15.ActionHeader {
	return &openflow15.ActionHeader{Type: binary.BigEndian.Uint16(r.b), Length: uint16(len(r.b))}
}
func (r *rawAction) Len() uint16                    { return uint16(len(r.b)) }
func (r *rawAction) MarshalBinary() ([]byte, error) { return r.b, nil }
func (r *rawAction) UnmarshalBinary(b []byte) error { r.b = append(r.b[:0], b...); return nil }

// encodeCheckPktLarger builds OVS's struct nx_action_check_pkt_larger:
// type, len (24), vendor, subtype (49), pkt_len, offset of the result bit,
// the destination's OXM/NXM header, zeros.
func encodeCheckPktLarger(a CheckPktLarger, c actionCtx) (openflow15.Action, error) {
	if err := c.checkDst(a.Dst, "check_pkt_larger"); err != nil {
		return nil, err
	}
	if _, err := checkRange(a.Dst, int(a.Ofs), 1, "check_pkt_larger"); err != nil {
		return nil, err
	}
	o, _ := a.Dst.wire()
	b := make([]byte, nxCheckPktLargerLength)
	binary.BigEndian.PutUint16(b[0:], 0xffff) // OFPAT_EXPERIMENTER
	binary.BigEndian.PutUint16(b[2:], nxCheckPktLargerLength)
	binary.BigEndian.PutUint32(b[4:], nxExperimenterID)
	binary.BigEndian.PutUint16(b[8:], nxastCheckPktLarger)
	binary.BigEndian.PutUint16(b[10:], a.Len)
	binary.BigEndian.PutUint16(b[12:], uint16(a.Ofs))
	binary.BigEndian.PutUint32(b[14:], o.header())
	return &rawAction{b}, nil
}

func encodeCT(a CT, c actionCtx) (openflow15.Action, error) {
	if c.inCT {
		return nil, fmt.Errorf("ct cannot be nested")
	}
	et, ok := c.match.Get(EthType)
	if !ok || et.Mask != 0 || (et.Value != EthTypeIPv4 && et.Value != 0x86dd) {
		return nil, fmt.Errorf("ct needs dl_type=0x800 (or 0x86dd) in the match")
	}
	ct := openflow15.NewNXActionConnTrack()
	if a.Commit {
		ct.Commit()
	}
	if a.Table >= 0 {
		if a.Table >= ctRecircNone {
			return nil, fmt.Errorf("ct table %d out of range", a.Table)
		}
		ct.Table(uint8(a.Table))
	}
	if a.ZoneField != FieldInvalid {
		if a.Zone != 0 {
			return nil, fmt.Errorf("ct: set either Zone or ZoneField, not both")
		}
		if err := c.checkSrc(a.ZoneField, "ct zone"); err != nil {
			return nil, err
		}
		if a.ZoneBits != 16 {
			return nil, fmt.Errorf("ct zone from %s must be 16 bits (ZoneBits: 16), got %d", a.ZoneField, a.ZoneBits)
		}
		if _, err := checkRange(a.ZoneField, a.ZoneOfs, a.ZoneBits, "ct zone"); err != nil {
			return nil, err
		}
		o, _ := a.ZoneField.wire()
		ct.ZoneSrc = o.header()
		ct.ZoneOfsNbits = ofsNbits(a.ZoneOfs, a.ZoneBits)
	} else {
		ct.ZoneImm(a.Zone)
	}
	if len(a.Exec) > 0 {
		if !a.Commit {
			return nil, fmt.Errorf("ct exec(...) requires commit")
		}
		nested, err := encodeActions(a.Exec, actionCtx{match: c.match, inCT: true})
		if err != nil {
			return nil, fmt.Errorf("ct exec: %w", err)
		}
		ct.AddAction(nested...)
	}
	return ct, nil
}

// encodeInstructions splits actions into apply-actions and goto_table.
func encodeInstructions(f *Flow) ([]openflow15.Instruction, error) {
	acts := f.Actions
	var gotoInstr openflow15.Instruction
	if n := len(acts); n > 0 {
		if g, ok := acts[n-1].(Goto); ok {
			gotoInstr = openflow15.NewInstrGotoTable(g.Table)
			acts = acts[:n-1]
		}
	}
	var out []openflow15.Instruction
	if len(acts) > 0 {
		oas, err := encodeActions(acts, actionCtx{match: f.Match})
		if err != nil {
			return nil, err
		}
		apply := openflow15.NewInstrApplyActions()
		for _, oa := range oas {
			if err := apply.AddAction(oa, false); err != nil {
				return nil, err
			}
		}
		out = append(out, apply)
	}
	if gotoInstr != nil {
		out = append(out, gotoInstr)
	}
	return out, nil
}

// EncodeFlowMod converts m into an OpenFlow 1.5 flow-mod. The xid is left
// to the caller (Header.Xid). It returns an error, naming the problem, for
// anything OVS would reject statically: unknown fields, bad widths or masks,
// missing prerequisites, misplaced goto, invalid ct/conjunction arguments.
func EncodeFlowMod(m FlowMod) (*openflow15.FlowMod, error) {
	fm := openflow15.NewFlowMod()
	fm.Header.Xid = 0
	fm.OutPort = ofppAny
	fm.OutGroup = ofpgAny
	fm.BufferId = ofpNoBuffer
	fm.Cookie = m.Flow.Cookie
	fm.Priority = m.Flow.Priority
	fm.TableId = m.Flow.Table
	switch m.Op {
	case OpAdd, OpModifyStrict:
		if m.Op == OpAdd {
			fm.Command = openflow15.FC_ADD
		} else {
			fm.Command = openflow15.FC_MODIFY_STRICT
		}
		match, err := encodeMatch(m.Flow.Match)
		if err != nil {
			return nil, err
		}
		fm.Match = *match
		instrs, err := encodeInstructions(&m.Flow)
		if err != nil {
			return nil, err
		}
		fm.Instructions = instrs
	case OpDeleteStrict:
		fm.Command = openflow15.FC_DELETE_STRICT
		match, err := encodeMatch(m.Flow.Match)
		if err != nil {
			return nil, err
		}
		fm.Match = *match
	case OpDeleteCookie:
		if m.CookieMask == 0 {
			return nil, fmt.Errorf("delete-cookie with mask 0 would delete every flow of every controller")
		}
		fm.Command = openflow15.FC_DELETE
		fm.TableId = ofpttAll
		fm.Priority = 0
		fm.CookieMask = m.CookieMask
		fm.Cookie = m.Flow.Cookie & m.CookieMask
	default:
		return nil, fmt.Errorf("unknown flow-mod op %d", m.Op)
	}
	return fm, nil
}

// EncodeFlow encodes f as an add.
func EncodeFlow(f Flow) (*openflow15.FlowMod, error) {
	return EncodeFlowMod(FlowMod{Op: OpAdd, Flow: f})
}

// MarshalFlowMod encodes m and marshals it with the given xid.
func MarshalFlowMod(m FlowMod, xid uint32) ([]byte, error) {
	fm, err := EncodeFlowMod(m)
	if err != nil {
		return nil, err
	}
	fm.Header.Xid = xid
	b, err := fm.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal flow-mod: %w", err)
	}
	if int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		return nil, fmt.Errorf("marshal flow-mod: length field %d != %d bytes", binary.BigEndian.Uint16(b[2:]), len(b))
	}
	return b, nil
}

// Describe renders a flow-mod for error messages: op and flow text.
func (m FlowMod) Describe() string {
	if m.Op == OpDeleteCookie {
		return fmt.Sprintf("delete-cookie cookie=%#x/%#x", m.Flow.Cookie, m.CookieMask)
	}
	return m.Op.String() + " " + m.Flow.Text(nil)
}

// EncodeActions encodes an action list for a packet-out (no match to check
// prerequisites against: only actions that need none, e.g. register loads,
// outputs and resubmits).
func EncodeActions(acts []Action) ([]byte, error) {
	oas, err := encodeActions(acts, actionCtx{})
	if err != nil {
		return nil, err
	}
	var b []byte
	for _, a := range oas {
		ab, err := a.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = append(b, ab...)
	}
	return b, nil
}
