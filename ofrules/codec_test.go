package ofrules

import (
	"encoding/binary"
	"strings"
	"testing"
)

// OVS dumps registers under OpenFlow 1.5 as 64-bit packet registers
// (xreg N = reg 2N high, reg 2N+1 low); make sure they split back.
func TestDecodeXreg(t *testing.T) {
	tlv := func(field uint8, v, m uint64) []byte {
		b := []byte{0x80, 0x01, field<<1 | 1, 16}
		b = binary.BigEndian.AppendUint64(b, v)
		return binary.BigEndian.AppendUint64(b, m)
	}
	fields := append(tlv(0, 0x0000000700000001, 0x0000ffffffffffff), tlv(3, 0x8000000000000000, 0x8000000000000000)...)
	m, err := decodeMatchFields(fields)
	if err != nil {
		t.Fatal(err)
	}
	want := "reg0=0x7/0xffff,reg1=0x1,reg6=0x80000000/0x80000000"
	if m.Text() != want {
		t.Fatalf("got %s want %s", m.Text(), want)
	}
	// set_field on an xreg splits too.
	sf := append([]byte{0x80, 0x01, 1<<1 | 1, 16}, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 0x0000000500000000), 0xffffffff00000000)...)
	acts, err := decodeSetFieldTLV(sf)
	if err != nil || ActionsText(acts, nil) != "set_field:0x5->reg2" {
		t.Fatalf("got %v %v", ActionsText(acts, nil), err)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := DecodeFlowMod([]byte{1, 2, 3}); err == nil {
		t.Error("garbage decoded")
	}
	// An unknown action type in an otherwise valid flow-mod.
	b, err := MarshalFlowMod(FlowMod{Flow: Flow{Actions: []Action{Output{Port: 1}}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlen := int(binary.BigEndian.Uint16(b[flowModHeaderLen+2:]))
	act := flowModHeaderLen + (mlen+7)/8*8 + 8
	binary.BigEndian.PutUint16(b[act:], 23) // OFPAT_SET_NW_TTL
	if _, err := DecodeFlowMod(b); err == nil || !strings.Contains(err.Error(), "unsupported action type 23") {
		t.Errorf("got %v", err)
	}
}

// Pre-OXM NXM headers (OVS does not use them under OF1.5, but they decode).
func TestDecodeNXMHeaders(t *testing.T) {
	b := []byte{0, 0, 0 << 1, 2, 0xff, 0xfe}              // NXM_OF_IN_PORT=LOCAL
	b = append(b, 0, 0, 1<<1, 6, 2, 0, 0, 0, 0, 1)        // NXM_OF_ETH_DST
	b = append(b, 0, 1, 16<<1, 8, 0, 0, 0, 0, 0, 0, 0, 7) // NXM_NX_TUN_ID
	m, err := decodeMatchFields(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "in_port=4294967294,dl_dst=02:00:00:00:00:01,tun_id=0x7"; m.Text() != want {
		t.Fatalf("got %s want %s", m.Text(), want)
	}
	if _, err := decodeMatchFields([]byte{0, 1, 99 << 1, 4, 0, 0, 0, 0}); err == nil || !strings.Contains(err.Error(), "unsupported match field") {
		t.Fatalf("got %v", err)
	}
}
