package ofrules

// Decoding of OpenFlow 1.5 wire bytes (flow-stats replies and flow-mods)
// back into Flows. It works on bytes, not on libOpenflow's parsed messages:
// libOpenflow v0.15 loses MAC addresses when unmarshalling match fields,
// panics on NXM tun_id and fails a whole multipart reply on any action it
// does not know. Everything encode.go produces decodes back to a flow with
// identical Text; OVS's own normalisations (registers dumped as 64-bit
// xregs, full masks dropped) are undone here.

import (
	"encoding/binary"
	"fmt"
	"time"
)

// flowDescHeaderLen is the fixed part of ofp_flow_desc before the match.
const flowDescHeaderLen = 24

// flowModHeaderLen is ofp_header plus the fixed part of ofp_flow_mod.
const flowModHeaderLen = 48

// fieldRef identifies a field found on the wire; xreg >= 0 for OpenFlow 1.5
// packet registers, which overlay two 32-bit NXM registers.
type fieldRef struct {
	field Field
	xreg  int
	size  int
}

// fieldFromWire maps an OXM/NXM class and field number to a Field.
func fieldFromWire(class uint16, field uint8) (fieldRef, bool) {
	switch class {
	case oxmClassPacketRegs:
		if field < 8 {
			return fieldRef{xreg: int(field), size: 8}, true
		}
		return fieldRef{}, false
	case oxmClassNXM0:
		// Pre-OXM NXM_OF_* headers; OVS prefers OXM under OF1.5, accepted
		// for robustness.
		if int(field) >= len(nxm0Fields) || nxm0Fields[field] == FieldInvalid {
			return fieldRef{}, false
		}
		f := nxm0Fields[field]
		size := f.Bits() / 8
		if f == InPort {
			size = 2
		}
		return fieldRef{field: f, xreg: -1, size: size}, true
	case oxmClassNXM1:
		if field <= maxReg {
			return fieldRef{field: Reg(int(field)), xreg: -1, size: 4}, true
		}
		switch field {
		case 16: // NXM_NX_TUN_ID
			return fieldRef{field: TunID, xreg: -1, size: 8}, true
		case 17: // NXM_NX_ARP_SHA
			return fieldRef{field: ArpSha, xreg: -1, size: 6}, true
		case 18: // NXM_NX_ARP_THA
			return fieldRef{field: ArpTha, xreg: -1, size: 6}, true
		}
	}
	if f, ok := wireFields[uint32(class)<<8|uint32(field)]; ok {
		o, _ := f.wire()
		return fieldRef{field: f, xreg: -1, size: int(o.size)}, true
	}
	return fieldRef{}, false
}

// nxm0Fields maps NXM_OF_* field numbers (class 0) to fields (read-only).
var nxm0Fields = [...]Field{0: InPort, 1: EthDst, 2: EthSrc, 3: EthType, 6: IPProto, 7: IPv4Src,
	8: IPv4Dst, 9: TCPSrc, 10: TCPDst, 11: UDPSrc, 12: UDPDst, 13: ICMPType, 14: ICMPCode,
	15: ArpOp, 16: ArpSpa, 17: ArpTpa}

// wireFields is a read-only index from (class<<8 | field) to Field for the
// headers encode.go uses.
var wireFields = func() map[uint32]Field {
	m := make(map[uint32]Field)
	for f := InPort; f < reg0; f++ {
		if o, ok := f.wire(); ok {
			m[uint32(o.class)<<8|uint32(o.field)] = f
		}
	}
	return m
}()

func getUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// oxmEntry is one parsed OXM TLV.
type oxmEntry struct {
	class   uint16
	field   uint8
	hasMask bool
	value   []byte
	mask    []byte // nil when unmasked
}

// parseOXM parses one OXM TLV at the start of b and returns its total length.
func parseOXM(b []byte) (oxmEntry, int, error) {
	if len(b) < 4 {
		return oxmEntry{}, 0, fmt.Errorf("truncated OXM header")
	}
	e := oxmEntry{class: binary.BigEndian.Uint16(b), field: b[2] >> 1, hasMask: b[2]&1 == 1}
	n := int(b[3])
	if len(b) < 4+n {
		return oxmEntry{}, 0, fmt.Errorf("truncated OXM field (class %#x field %d)", e.class, e.field)
	}
	payload := b[4 : 4+n]
	if e.class == oxmClassExperimenter {
		if len(payload) < 4 {
			return oxmEntry{}, 0, fmt.Errorf("truncated experimenter OXM")
		}
		return oxmEntry{}, 0, fmt.Errorf("unsupported experimenter OXM %#x field %d", binary.BigEndian.Uint32(payload), e.field)
	}
	if e.hasMask {
		if n%2 != 0 {
			return oxmEntry{}, 0, fmt.Errorf("odd masked OXM length %d", n)
		}
		e.value, e.mask = payload[:n/2], payload[n/2:]
	} else {
		e.value = payload
	}
	return e, 4 + n, nil
}

// entryValue converts an OXM entry of a non-xreg field into value and mask
// (mask 0 = exact, as in MatchField).
func entryValue(ref fieldRef, e oxmEntry) (uint64, uint64, error) {
	if len(e.value) != ref.size {
		return 0, 0, fmt.Errorf("%s: %d value bytes, want %d", ref.field, len(e.value), ref.size)
	}
	f := ref.field
	if f == CtLabel {
		hiV, loV := getUint(e.value[:8]), getUint(e.value[8:])
		hiM, loM := ^uint64(0), ^uint64(0)
		if e.mask != nil {
			hiM, loM = getUint(e.mask[:8]), getUint(e.mask[8:])
		}
		if hiM != 0 || hiV != 0 {
			return 0, 0, fmt.Errorf("ct_label: the high 64 bits are used (value %#x/%#x), only the low 64 are supported", hiV, hiM)
		}
		if loM == ^uint64(0) {
			loM = 0
		}
		return loV & orFull(loM, f), loM, nil
	}
	v := getUint(e.value)
	if f == InPort && ref.size == 2 && v >= 0xff00 {
		v |= 0xffff0000 // 16-bit NXM special ports (IN_PORT, LOCAL, ...)
	}
	if e.mask == nil {
		return v, 0, nil
	}
	m := getUint(e.mask)
	if m == f.fullMask() {
		m = 0
	}
	return v & orFull(m, f), m, nil
}

// decodeMatchFields parses the OXM TLVs of an ofp_match body.
func decodeMatchFields(b []byte) (Match, error) {
	var m Match
	for len(b) > 0 {
		e, n, err := parseOXM(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		ref, ok := fieldFromWire(e.class, e.field)
		if !ok {
			return nil, fmt.Errorf("unsupported match field (class %#x, field %d)", e.class, e.field)
		}
		if ref.xreg >= 0 {
			if len(e.value) != 8 {
				return nil, fmt.Errorf("xreg%d: %d value bytes", ref.xreg, len(e.value))
			}
			v, mask := getUint(e.value), ^uint64(0)
			if e.mask != nil {
				mask = getUint(e.mask)
			}
			for half, shift := range []int{32, 0} {
				hm := uint32(mask >> shift)
				if hm == 0 {
					continue
				}
				hv := uint32(v>>shift) & hm
				mf := MatchField{Field: Reg(2*ref.xreg + half), Value: uint64(hv)}
				if hm != ^uint32(0) {
					mf.Mask = uint64(hm)
				}
				m = append(m, mf)
			}
			continue
		}
		v, mask, err := entryValue(ref, e)
		if err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		if ref.field == CtState {
			// OVS reports masks within the bits it defines; "+est+trk"
			// (mask == value) is the Exact form.
			if mask == 0 {
				mask = CtState.fullMask()
			}
			mask &= ctStateBits
			v &= mask
			if mask == v {
				mask = 0
			}
		}
		m = append(m, MatchField{Field: ref.field, Value: v, Mask: mask})
	}
	return NewMatch(m...), nil
}

// decodeOfpMatch parses an ofp_match (type, length, fields, padding) and
// returns the match and the padded length consumed.
func decodeOfpMatch(b []byte) (Match, int, error) {
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("truncated ofp_match")
	}
	if t := binary.BigEndian.Uint16(b); t != 1 {
		return nil, 0, fmt.Errorf("ofp_match type %d, want OXM (1)", t)
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	padded := (l + 7) / 8 * 8
	if l < 4 || len(b) < padded {
		return nil, 0, fmt.Errorf("bad ofp_match length %d", l)
	}
	m, err := decodeMatchFields(b[4:l])
	return m, padded, err
}

// parseHeaderRef parses a 32-bit (or 64-bit experimenter) OXM header as
// used by copy_field, output:reg and ct zone; it returns the field and the
// header's length in bytes.
func parseHeaderRef(b []byte) (Field, int, error) {
	if len(b) < 4 {
		return 0, 0, fmt.Errorf("truncated field header")
	}
	class := binary.BigEndian.Uint16(b)
	if class == oxmClassExperimenter {
		return 0, 0, fmt.Errorf("unsupported experimenter field header")
	}
	ref, ok := fieldFromWire(class, b[2]>>1)
	if !ok || ref.xreg >= 0 {
		return 0, 0, fmt.Errorf("unsupported field header %#08x", binary.BigEndian.Uint32(b))
	}
	return ref.field, 4, nil
}

func decodeOfsNbits(v uint16) (int, int) { return int(v >> 6), int(v&0x3f) + 1 }

// decodeActions parses a list of actions (apply-actions or ct exec).
func decodeActions(b []byte) ([]Action, error) {
	var out []Action
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("truncated action header")
		}
		t, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if l < 8 || l%8 != 0 || l > len(b) {
			return nil, fmt.Errorf("bad action length %d (type %d)", l, t)
		}
		acts, err := decodeAction(t, b[:l])
		if err != nil {
			return nil, err
		}
		out = append(out, acts...)
		b = b[l:]
	}
	return out, nil
}

func decodeAction(t uint16, a []byte) ([]Action, error) {
	switch t {
	case 0: // OFPAT_OUTPUT
		if len(a) < 16 {
			return nil, fmt.Errorf("short output action")
		}
		port, maxLen := binary.BigEndian.Uint32(a[4:]), binary.BigEndian.Uint16(a[8:])
		if port == PortController && maxLen != ofpcmlNoBuffer {
			return []Action{Controller{MaxLen: maxLen}}, nil
		}
		return []Action{Output{Port: port}}, nil
	case 25: // OFPAT_SET_FIELD
		sf, err := decodeSetFieldTLV(a[4:])
		return sf, err
	case 28: // OFPAT_COPY_FIELD
		if len(a) < 16 {
			return nil, fmt.Errorf("short copy_field action")
		}
		nbits, sofs, dofs := binary.BigEndian.Uint16(a[4:]), binary.BigEndian.Uint16(a[6:]), binary.BigEndian.Uint16(a[8:])
		src, n, err := parseHeaderRef(a[12:])
		if err != nil {
			return nil, fmt.Errorf("copy_field source: %w", err)
		}
		dst, _, err := parseHeaderRef(a[12+n:])
		if err != nil {
			return nil, fmt.Errorf("copy_field destination: %w", err)
		}
		return moveAction(src, int(sofs), dst, int(dofs), int(nbits))
	case 0xffff:
		if len(a) < 10 {
			return nil, fmt.Errorf("short experimenter action")
		}
		if v := binary.BigEndian.Uint32(a[4:]); v != nxExperimenterID {
			return nil, fmt.Errorf("unsupported experimenter %#x action", v)
		}
		return decodeNXAction(binary.BigEndian.Uint16(a[8:]), a)
	}
	return nil, fmt.Errorf("unsupported action type %d", t)
}

func moveAction(src Field, sofs int, dst Field, dofs int, nbits int) ([]Action, error) {
	if sofs+nbits > src.Bits() || dofs+nbits > dst.Bits() {
		return nil, fmt.Errorf("move %s[%d+%d]->%s[%d+%d] outside the supported bits", src, sofs, nbits, dst, dofs, nbits)
	}
	return []Action{Move{Src: src, SrcOfs: sofs, Dst: dst, DstOfs: dofs, NBits: nbits}}, nil
}

// decodeSetFieldTLV decodes the OXM TLV of a set_field (or NXAST_REG_LOAD2).
func decodeSetFieldTLV(b []byte) ([]Action, error) {
	e, _, err := parseOXM(b)
	if err != nil {
		return nil, fmt.Errorf("set_field: %w", err)
	}
	ref, ok := fieldFromWire(e.class, e.field)
	if !ok {
		return nil, fmt.Errorf("set_field: unsupported field (class %#x, field %d)", e.class, e.field)
	}
	if ref.xreg >= 0 {
		// Split a 64-bit xreg write into the two 32-bit registers.
		v, mask := getUint(e.value), ^uint64(0)
		if e.mask != nil {
			mask = getUint(e.mask)
		}
		var out []Action
		for half, shift := range []int{32, 0} {
			hm := uint32(mask >> shift)
			if hm == 0 {
				continue
			}
			sf := SetField{Field: Reg(2*ref.xreg + half), Value: uint64(uint32(v>>shift) & hm)}
			if hm != ^uint32(0) {
				sf.Mask = uint64(hm)
			}
			out = append(out, sf)
		}
		return out, nil
	}
	v, mask, err := entryValue(ref, e)
	if err != nil {
		return nil, fmt.Errorf("set_field: %w", err)
	}
	return []Action{SetField{Field: ref.field, Value: v, Mask: mask}}, nil
}

func decodeNXAction(subtype uint16, a []byte) ([]Action, error) {
	switch subtype {
	case 14: // NXAST_RESUBMIT_TABLE
		if len(a) < 16 {
			return nil, fmt.Errorf("short resubmit action")
		}
		inPort, table := binary.BigEndian.Uint16(a[10:]), a[12]
		if inPort != ofppInPort16 || table == ofpttAll {
			return nil, fmt.Errorf("unsupported resubmit(%d,%d)", inPort, table)
		}
		return []Action{Resubmit{Table: table}}, nil
	case 15: // NXAST_OUTPUT_REG
		if len(a) < 24 {
			return nil, fmt.Errorf("short output_reg action")
		}
		ofs, nbits := decodeOfsNbits(binary.BigEndian.Uint16(a[10:]))
		f, _, err := parseHeaderRef(a[12:])
		if err != nil {
			return nil, fmt.Errorf("output_reg: %w", err)
		}
		return []Action{OutputReg{Field: f, Ofs: ofs, NBits: nbits}}, nil
	case 32: // NXAST_OUTPUT_REG2
		if len(a) < 16 {
			return nil, fmt.Errorf("short output_reg2 action")
		}
		ofs, nbits := decodeOfsNbits(binary.BigEndian.Uint16(a[10:]))
		f, _, err := parseHeaderRef(a[14:])
		if err != nil {
			return nil, fmt.Errorf("output_reg2: %w", err)
		}
		return []Action{OutputReg{Field: f, Ofs: ofs, NBits: nbits}}, nil
	case 34: // NXAST_CONJUNCTION
		if len(a) < 16 {
			return nil, fmt.Errorf("short conjunction action")
		}
		return []Action{Conjunction{Clause: a[10] + 1, NClauses: a[11], ID: binary.BigEndian.Uint32(a[12:])}}, nil
	case 35: // NXAST_CT
		return decodeCT(a)
	case nxastCheckPktLarger:
		return decodeCheckPktLarger(a)
	case 6: // NXAST_REG_MOVE
		if len(a) < 24 {
			return nil, fmt.Errorf("short reg_move action")
		}
		nbits, sofs, dofs := binary.BigEndian.Uint16(a[10:]), binary.BigEndian.Uint16(a[12:]), binary.BigEndian.Uint16(a[14:])
		src, n, err := parseHeaderRef(a[16:])
		if err != nil {
			return nil, fmt.Errorf("reg_move source: %w", err)
		}
		dst, _, err := parseHeaderRef(a[16+n:])
		if err != nil {
			return nil, fmt.Errorf("reg_move destination: %w", err)
		}
		return moveAction(src, int(sofs), dst, int(dofs), int(nbits))
	case 7: // NXAST_REG_LOAD
		if len(a) < 24 {
			return nil, fmt.Errorf("short reg_load action")
		}
		ofs, nbits := decodeOfsNbits(binary.BigEndian.Uint16(a[10:]))
		f, _, err := parseHeaderRef(a[12:])
		if err != nil {
			return nil, fmt.Errorf("reg_load: %w", err)
		}
		if ofs+nbits > f.Bits() || f == CtLabel && ofs+nbits > 64 {
			return nil, fmt.Errorf("reg_load: %s[%d+%d] outside the supported bits", f, ofs, nbits)
		}
		mask := (^uint64(0) >> (64 - nbits)) << ofs
		v := binary.BigEndian.Uint64(a[16:]) << ofs & mask
		if mask == f.fullMask() {
			mask = 0
		}
		return []Action{SetField{Field: f, Value: v, Mask: mask}}, nil
	case 33: // NXAST_REG_LOAD2
		return decodeSetFieldTLV(a[10:])
	}
	return nil, fmt.Errorf("unsupported Nicira action subtype %d", subtype)
}

// decodeCheckPktLarger decodes NXAST_CHECK_PKT_LARGER (see
// encodeCheckPktLarger). OVS writes the destination with its oldest
// (NXM) header, e.g. NXM_OF_ETH_SRC for eth_src; registers are NXM_NX_REGn.
func decodeCheckPktLarger(a []byte) ([]Action, error) {
	if len(a) < nxCheckPktLargerLength {
		return nil, fmt.Errorf("short check_pkt_larger action")
	}
	pktLen, ofs := binary.BigEndian.Uint16(a[10:]), binary.BigEndian.Uint16(a[12:])
	f, n, err := parseHeaderRef(a[14:])
	if err != nil {
		return nil, fmt.Errorf("check_pkt_larger: %w", err)
	}
	for _, x := range a[14+n:] {
		if x != 0 {
			return nil, fmt.Errorf("check_pkt_larger: non-zero padding")
		}
	}
	if int(ofs) >= f.Bits() {
		return nil, fmt.Errorf("check_pkt_larger: bit %d outside the %d bits of %s", ofs, f.Bits(), f)
	}
	return []Action{CheckPktLarger{Len: pktLen, Dst: f, Ofs: uint8(ofs)}}, nil
}

func decodeCT(a []byte) ([]Action, error) {
	if len(a) < 24 {
		return nil, fmt.Errorf("short ct action")
	}
	flags := binary.BigEndian.Uint16(a[10:])
	zoneSrc := binary.BigEndian.Uint32(a[12:])
	zone := binary.BigEndian.Uint16(a[16:])
	table := a[18]
	alg := binary.BigEndian.Uint16(a[22:])
	if flags&^1 != 0 {
		return nil, fmt.Errorf("ct: unsupported flags %#x", flags)
	}
	if alg != 0 {
		return nil, fmt.Errorf("ct: unsupported alg %d", alg)
	}
	ct := CT{Commit: flags&1 != 0, Table: -1}
	if table != ctRecircNone {
		ct.Table = int(table)
	}
	if zoneSrc != 0 {
		f, _, err := parseHeaderRef(a[12:16])
		if err != nil {
			return nil, fmt.Errorf("ct zone: %w", err)
		}
		ct.ZoneField = f
		ct.ZoneOfs, ct.ZoneBits = decodeOfsNbits(zone)
	} else {
		ct.Zone = zone
	}
	exec, err := decodeActions(a[24:])
	if err != nil {
		return nil, fmt.Errorf("ct exec: %w", err)
	}
	if len(exec) > 0 {
		ct.Exec = exec
	}
	return []Action{ct}, nil
}

// decodeInstructions parses an instruction list into actions (apply-actions
// first, goto_table last).
func decodeInstructions(b []byte) ([]Action, error) {
	var acts []Action
	var gotoAct *Goto
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("truncated instruction")
		}
		t, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if l < 8 || l > len(b) {
			return nil, fmt.Errorf("bad instruction length %d (type %d)", l, t)
		}
		switch t {
		case 1: // goto_table
			gotoAct = &Goto{Table: b[4]}
		case 4: // apply-actions
			as, err := decodeActions(b[8:l])
			if err != nil {
				return nil, err
			}
			acts = append(acts, as...)
		default:
			return nil, fmt.Errorf("unsupported instruction type %d", t)
		}
		b = b[l:]
	}
	if gotoAct != nil {
		acts = append(acts, *gotoAct)
	}
	return acts, nil
}

// DecodeFlowDescs decodes the body of an OpenFlow 1.5 OFPMP_FLOW_DESC
// multipart reply (after the 16-byte multipart header) into flows, with
// each flow's Stats taken from its ofp_stats (nil when it holds none of the
// OXS fields decodeStats knows).
func DecodeFlowDescs(body []byte) ([]Flow, error) {
	if len(body) == 0 {
		return nil, nil
	}
	// Count the entries first: one allocation for the flows and one for
	// their stats instead of one per flow.
	n := 0
	for b := body; len(b) >= 2; n++ {
		l := int(binary.BigEndian.Uint16(b))
		if l < flowDescHeaderLen || l > len(b) {
			break // reported with its index below
		}
		b = b[l:]
	}
	out := make([]Flow, 0, n)
	stats := make([]FlowStats, n)
	for i := 0; len(body) > 0; i++ {
		if len(body) < flowDescHeaderLen {
			return nil, fmt.Errorf("flow desc %d: truncated", i)
		}
		l := int(binary.BigEndian.Uint16(body))
		if l < flowDescHeaderLen || l > len(body) {
			return nil, fmt.Errorf("flow desc %d: bad length %d", i, l)
		}
		f, err := decodeFlowDesc(body[:l], &stats[i])
		if err != nil {
			return nil, fmt.Errorf("flow desc %d (table %d, priority %d, cookie %#x): %w",
				i, body[4], binary.BigEndian.Uint16(body[6:]), binary.BigEndian.Uint64(body[16:]), err)
		}
		out = append(out, f)
		body = body[l:]
	}
	return out, nil
}

// decodeFlowDesc decodes one ofp_flow_desc; its stats are decoded into st,
// which the flow points to if any were present.
func decodeFlowDesc(e []byte, st *FlowStats) (Flow, error) {
	f := Flow{Table: e[4], Priority: binary.BigEndian.Uint16(e[6:]), Cookie: binary.BigEndian.Uint64(e[16:])}
	m, n, err := decodeOfpMatch(e[flowDescHeaderLen:])
	if err != nil {
		return Flow{}, err
	}
	f.Match = m
	off := flowDescHeaderLen + n
	if len(e) < off+4 {
		return Flow{}, fmt.Errorf("truncated ofp_stats")
	}
	sl := int(binary.BigEndian.Uint16(e[off+2:]))
	if sl < 4 || len(e) < off+(sl+7)/8*8 {
		return Flow{}, fmt.Errorf("bad ofp_stats length %d", sl)
	}
	if decodeStats(e[off+4:off+sl], st) {
		f.Stats = st
	}
	off += (sl + 7) / 8 * 8
	f.Actions, err = decodeInstructions(e[off:])
	if err != nil {
		return Flow{}, err
	}
	return f, nil
}

// OXS (OpenFlow 1.5 flow statistics) fields of class OFPXSC_OPENFLOW_BASIC.
const (
	oxsClassBasic  = 0x8002
	oxsDuration    = 0 // uint64: seconds << 32 | nanoseconds
	oxsIdleTime    = 1 // uint64: same format
	oxsPacketCount = 4 // uint64
	oxsByteCount   = 5 // uint64
	// 3 is flow_count (uint32), sent only in aggregate replies.
)

// decodeStats parses the OXS TLVs of an ofp_stats (after its 4-byte
// header) into st and reports whether any field it knows was present.
// Missing fields are left unknown (negative durations, StatUnknown).
// Fields it does not know, or of an unexpected size, are skipped, as OVS's
// own parser does. Statistics are informational: a malformed TLV ends them
// rather than failing the flow (ofp_stats' own length, checked by the
// caller, is what locates the instructions).
func decodeStats(b []byte, st *FlowStats) bool {
	*st = FlowStats{Duration: -1, IdleAge: -1, Packets: StatUnknown, Bytes: StatUnknown}
	found := false
	for len(b) >= 4 {
		class, field, n := binary.BigEndian.Uint16(b), b[2]>>1, int(b[3])
		if len(b) < 4+n {
			break
		}
		v := b[4 : 4+n]
		b = b[4+n:]
		if class != oxsClassBasic || n != 8 {
			continue // flow_count (4 bytes), experimenter or unknown
		}
		x := binary.BigEndian.Uint64(v)
		switch field {
		case oxsDuration:
			st.Duration = oxsTime(x)
		case oxsIdleTime:
			st.IdleAge = oxsTime(x)
		case oxsPacketCount:
			st.Packets = x
		case oxsByteCount:
			st.Bytes = x
		default:
			continue
		}
		found = true
	}
	return found
}

// oxsTime converts an OXS time (seconds in the high 32 bits, nanoseconds in
// the low 32) to a Duration.
func oxsTime(x uint64) time.Duration {
	return time.Duration(x>>32)*time.Second + time.Duration(uint32(x))
}

// DecodeFlowMod decodes a marshalled OpenFlow 1.5 flow-mod (header
// included), the inverse of MarshalFlowMod.
func DecodeFlowMod(b []byte) (FlowMod, error) {
	if len(b) < flowModHeaderLen+8 || b[0] != ofVersion15 || b[1] != 14 {
		return FlowMod{}, fmt.Errorf("not an OpenFlow 1.5 flow-mod")
	}
	if l := int(binary.BigEndian.Uint16(b[2:])); l != len(b) {
		return FlowMod{}, fmt.Errorf("flow-mod length %d != %d bytes", l, len(b))
	}
	var m FlowMod
	m.Flow.Cookie = binary.BigEndian.Uint64(b[8:])
	cookieMask := binary.BigEndian.Uint64(b[16:])
	m.Flow.Table = b[24]
	cmd := b[25]
	m.Flow.Priority = binary.BigEndian.Uint16(b[30:])
	match, n, err := decodeOfpMatch(b[flowModHeaderLen:])
	if err != nil {
		return FlowMod{}, err
	}
	m.Flow.Match = match
	switch cmd {
	case 0:
		m.Op = OpAdd
	case 2:
		m.Op = OpModifyStrict
	case 4:
		m.Op = OpDeleteStrict
	case 3:
		if m.Flow.Table != ofpttAll || len(match) != 0 {
			return FlowMod{}, fmt.Errorf("unsupported non-strict delete (only all-table delete by cookie)")
		}
		m.Op = OpDeleteCookie
		m.CookieMask = cookieMask
		m.Flow.Table = 0
		return m, nil
	default:
		return FlowMod{}, fmt.Errorf("unsupported flow-mod command %d", cmd)
	}
	m.Flow.Actions, err = decodeInstructions(b[flowModHeaderLen+n:])
	if err != nil {
		return FlowMod{}, err
	}
	return m, nil
}
