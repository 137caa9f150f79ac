package ofconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"antrea.io/libOpenflow/openflow15"

	"github.com/openvpc/openvpc/ofrules"
)

// arpFrame builds a 60-byte (minimum size, zero-padded) ARP frame.
func arpFrame(op uint16, sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) []byte {
	dst := tha
	if op == 1 {
		dst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	b := append(dst[:], sha[:]...)
	b = append(b, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha[:]...)
	b = append(b, spa[:]...)
	b = append(b, tha[:]...)
	b = append(b, tpa[:]...)
	return append(b, make([]byte, 60-len(b))...)
}

var (
	testMAC1 = [6]byte{0x02, 0x0b, 0, 0, 0, 1}
	testIP1  = [4]byte{10, 66, 0, 1}
	testIP2  = [4]byte{10, 66, 0, 2}
)

// rawPacketIn builds a packet-in message by hand: oxms is the match's
// fields (padding is added), data the frame.
func rawPacketIn(version uint8, xid uint32, reason, table uint8, cookie uint64, totalLen uint16, oxms, data []byte) []byte {
	ml := 4 + len(oxms)
	b := []byte{version, typePacketIn, 0, 0}
	b = binary.BigEndian.AppendUint32(b, xid)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	b = binary.BigEndian.AppendUint16(b, totalLen)
	b = append(b, reason, table)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = append(b, 0, matchTypeOXM)
	b = binary.BigEndian.AppendUint16(b, uint16(ml))
	b = append(b, oxms...)
	b = append(b, make([]byte, (ml+7)/8*8-ml)...)
	b = append(b, 0, 0)
	b = append(b, data...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// hexBytes decodes hex with spaces and "//" comments.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	var h strings.Builder
	for _, l := range strings.Split(s, "\n") {
		l, _, _ = strings.Cut(l, "//")
		h.WriteString(strings.Join(strings.Fields(l), ""))
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodePacketIn(t *testing.T) {
	frame := arpFrame(2, testMAC1, testIP1, [6]byte{2, 0, 0, 0, 0, 9}, testIP2)
	oxms := hexBytes(t, `
		80000408 1122334455667788  // metadata
		00010108 00000005 000000ff  // reg0=5/0xff (NXM_NX_REG0, masked)
		80000004 00000007  // in_port=7
		ffff0208 00002320 00000009  // an experimenter OXM (skipped by length)`)
	msg := rawPacketIn(ofVersion, 99, ReasonApplyAction, 7, 0x0e00000000000042, 60, oxms, frame)
	pi, err := decodePacketIn(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := PacketIn{TableID: 7, Cookie: 0x0e00000000000042, Reason: ReasonApplyAction, InPort: 7, TotalLen: 60, Data: frame}
	if pi.TableID != want.TableID || pi.Cookie != want.Cookie || pi.Reason != want.Reason || pi.InPort != want.InPort ||
		pi.TotalLen != want.TotalLen || !bytes.Equal(pi.Data, frame) {
		t.Fatalf("got %+v\nwant %+v", pi, want)
	}

	// The same packet-in without the experimenter OXM, checked against
	// OVS's own parser: our hand-made bytes are what OVS means.
	std := rawPacketIn(ofVersion, 99, ReasonApplyAction, 7, 0x0e00000000000042, 60, oxms[:32], frame)
	if pi2, err := decodePacketIn(std); err != nil || pi2.InPort != 7 || !bytes.Equal(pi2.Data, frame) {
		t.Fatalf("without experimenter OXM: %+v, %v", pi2, err)
	}
	if out, ok := ofpPrint(t, std); ok {
		for _, s := range []string{"OFPT_PACKET_IN (OF1.5) (xid=0x63)", "total_len=60", "in_port=7", "metadata=0x1122334455667788",
			"reg0=0x5/0xff", "(via action)", "table_id=7", "cookie=0xe00000000000042", "arp_op=2", "arp_spa=10.66.0.1"} {
			if !strings.Contains(out, s) {
				t.Errorf("ovs-ofctl ofp-print does not say %q:\n%s", s, out)
			}
		}
	}

	// OpenFlow 1.3 has the same layout.
	pi, err = decodePacketIn(rawPacketIn(4, 1, ReasonTableMiss, 0, ^uint64(0), 1500, hexBytes(t, "80000004 fffffffe"), frame[:40]))
	if err != nil || pi.InPort != 0xfffffffe || pi.TotalLen != 1500 || len(pi.Data) != 40 || pi.Cookie != ^uint64(0) {
		t.Fatalf("OF1.3, truncated: %+v %v", pi, err)
	}
	// No in_port in the match, no data.
	pi, err = decodePacketIn(rawPacketIn(ofVersion, 1, 0, 0, 0, 0, nil, nil))
	if err != nil || pi.InPort != 0 || len(pi.Data) != 0 {
		t.Fatalf("empty: %+v %v", pi, err)
	}
}

func TestDecodePacketInMalformed(t *testing.T) {
	frame := arpFrame(1, testMAC1, testIP1, [6]byte{}, testIP2)
	good := rawPacketIn(ofVersion, 1, 1, 0, 1, 60, hexBytes(t, "80000004 00000003"), frame)
	for name, msg := range map[string][]byte{
		"bad version":         func() []byte { b := bytes.Clone(good); b[0] = 5; return b }(),
		"not a packet-in":     func() []byte { b := bytes.Clone(good); b[1] = typeError; return b }(),
		"header length":       func() []byte { b := bytes.Clone(good); b[3]++; return b }(),
		"match type":          func() []byte { b := bytes.Clone(good); b[25] = 0; return b }(),
		"match length short":  func() []byte { b := bytes.Clone(good); b[27] = 3; return b }(),
		"match overruns":      func() []byte { b := bytes.Clone(good); binary.BigEndian.PutUint16(b[26:], 200); return b }(),
		"OXM overruns":        func() []byte { b := bytes.Clone(good); b[31] = 9; return b }(),
		"OXM header cut":      rawPacketIn(ofVersion, 1, 1, 0, 1, 60, hexBytes(t, "80000004 00000003 8000"), frame),
		"experimenter OXM":    rawPacketIn(ofVersion, 1, 1, 0, 1, 60, hexBytes(t, "ffff0002 0000"), frame),
		"total_len below len": rawPacketIn(ofVersion, 1, 1, 0, 1, 59, hexBytes(t, "80000004 00000003"), frame),
	} {
		if pi, err := decodePacketIn(msg); err == nil {
			t.Errorf("%s: decoded %+v", name, pi)
		}
	}
	// Every truncation fails cleanly (no panic), whatever the header says.
	for n := 0; n < len(good); n++ {
		b := bytes.Clone(good[:n])
		if n >= 4 {
			binary.BigEndian.PutUint16(b[2:], uint16(n))
		}
		if _, err := decodePacketIn(b); err == nil && n < headerLen+packetInFixed+16+2 {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
}

func TestEncodePacketOut(t *testing.T) {
	frame := arpFrame(1, testMAC1, testIP1, [6]byte{}, testIP2)
	msg, err := encodePacketOut(0x1234, ofrules.PortController, 2, frame)
	if err != nil {
		t.Fatal(err)
	}
	want := append(hexBytes(t, `
		06 0d 006c 00001234  // header: OF1.5 PACKET_OUT, 108 bytes
		ffffffff 0010 0000  // no buffer, 16 bytes of actions
		0001 000c 80000004 fffffffd 00000000  // match: in_port=CONTROLLER, padded
		0000 0010 00000002 0000 000000000000  // output:2`), frame...)
	if !bytes.Equal(msg, want) {
		t.Fatalf("got  %x\nwant %x", msg, want)
	}
	// libOpenflow reads it the same way.
	var po openflow15.PacketOut
	po.Data = new(rawData)
	if err := po.UnmarshalBinary(msg); err != nil {
		t.Fatal(err)
	}
	if po.BufferId != noBuffer || len(po.Match.Fields) != 1 || len(po.Actions) != 1 {
		t.Fatalf("libOpenflow: %+v", po)
	}
	if p, ok := po.Match.Fields[0].Value.(*openflow15.InPortField); !ok || p.InPort != ofrules.PortController {
		t.Errorf("libOpenflow in_port %#v", po.Match.Fields[0].Value)
	}
	if o, ok := po.Actions[0].(*openflow15.ActionOutput); !ok || o.Port != 2 {
		t.Errorf("libOpenflow action %#v", po.Actions[0])
	}
	if !bytes.Equal(po.Data.(*rawData).b, frame) {
		t.Errorf("libOpenflow data %x", po.Data.(*rawData).b)
	}
	// And so does OVS.
	if out, ok := ofpPrint(t, msg); ok {
		for _, s := range []string{"OFPT_PACKET_OUT (OF1.5) (xid=0x1234): in_port=CONTROLLER actions=output:2 data_len=60",
			"arp,", "dl_src=02:0b:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff", "arp_spa=10.66.0.1,arp_tpa=10.66.0.2,arp_op=1"} {
			if !strings.Contains(out, s) {
				t.Errorf("ovs-ofctl ofp-print does not say %q:\n%s", s, out)
			}
		}
	}
	// Output to the controller asks for the whole packet.
	msg, _ = encodePacketOut(1, 5, ofrules.PortController, frame)
	if got := binary.BigEndian.Uint16(msg[8+8+16+8:]); got != 0xffff {
		t.Errorf("max_len %#x for output:CONTROLLER", got)
	}
	if out, ok := ofpPrint(t, msg); ok && !strings.Contains(out, "in_port=5 actions=CONTROLLER:65535") {
		t.Errorf("ofp-print: %s", out)
	}

	for _, n := range []int{0, 13, maxPacketOutData + 1} {
		if _, err := encodePacketOut(1, 1, 2, make([]byte, n)); err == nil {
			t.Errorf("%d-byte frame accepted", n)
		}
	}
	if msg, err := encodePacketOut(1, 1, 2, make([]byte, maxPacketOutData)); err != nil || len(msg) != 0xffff ||
		binary.BigEndian.Uint16(msg[2:]) != 0xffff {
		t.Errorf("largest frame: %d bytes, %v", len(msg), err)
	}
}

type rawData struct{ b []byte }

func (d *rawData) Len() uint16                    { return uint16(len(d.b)) }
func (d *rawData) MarshalBinary() ([]byte, error) { return d.b, nil }
func (d *rawData) UnmarshalBinary(b []byte) error { d.b = bytes.Clone(b); return nil }

// ofpPrint decodes msg with OVS's parser (ovs-ofctl ofp-print), if
// ovs-ofctl is installed.
func ofpPrint(t *testing.T, msg []byte) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Log("ovs-ofctl not installed: not cross-checking with OVS's parser")
		return "", false
	}
	out, err := exec.Command("ovs-ofctl", "ofp-print", hex.EncodeToString(msg)).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl ofp-print: %v: %s", err, out)
	}
	return string(out), true
}

// gatedHandler records packet-ins; Connected and PacketIn wait on their
// gates when those are set.
type gatedHandler struct {
	*recorder
	connGate chan struct{}
	mu       sync.Mutex
	pinGate  chan struct{}
	inPin    chan struct{} // receives when PacketIn starts waiting on pinGate
}

func (h *gatedHandler) setPinGate(gate, in chan struct{}) {
	h.mu.Lock()
	h.pinGate, h.inPin = gate, in
	h.mu.Unlock()
}

func (h *gatedHandler) Connected(sw *Switch) {
	if h.connGate != nil {
		<-h.connGate
	}
	h.recorder.Connected(sw)
}

func (h *gatedHandler) PacketIn(sw *Switch, pi PacketIn) {
	h.mu.Lock()
	gate, in := h.pinGate, h.inPin
	h.mu.Unlock()
	if gate != nil {
		in <- struct{}{}
		<-gate
	}
	h.recorder.pins <- recordedPacketIn{sw, pi}
}

func TestFakeSwitchPacketInOut(t *testing.T) {
	h := &gatedHandler{recorder: newRecorder(), connGate: make(chan struct{})}
	fs := serveFakeWith(t, Config{}, h)
	fs.handshake(0x42, 1<<6)
	frame := arpFrame(2, testMAC1, testIP1, [6]byte{2, 0, 0, 0, 0, 9}, testIP2)

	// A packet-in that arrives while Connected runs is delivered after it.
	fs.send(typePacketIn, 0, rawPacketIn(ofVersion, 0, ReasonApplyAction, 3, 0x77, 60, hexBytes(t, "80000004 00000005"), frame)[8:])
	select {
	case <-h.pins:
		t.Fatal("packet-in delivered before Connected returned")
	case <-time.After(100 * time.Millisecond):
	}
	close(h.connGate)
	sw := h.waitConnected(t, 5*time.Second)
	pi := h.waitPacketIn(t, sw, 5*time.Second)
	if pi.InPort != 5 || pi.TableID != 3 || pi.Cookie != 0x77 || pi.Reason != ReasonApplyAction || !bytes.Equal(pi.Data, frame) {
		t.Fatalf("packet-in %+v", pi)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := make(chan error, 1)

	// A packet-out is followed by a barrier; its reply ends the call.
	go func() { res <- sw.PacketOut(ctx, 0, 4, frame) }()
	po := fs.readType(typePacketOut)
	want, _ := encodePacketOut(po.xid(), ofrules.PortController, 4, frame)
	if !bytes.Equal(po, want) {
		t.Fatalf("packet-out %x\nwant %x", po, want)
	}
	b := fs.readType(typeBarrierReq)
	if b.xid() != po.xid()+1 {
		t.Errorf("barrier xid %d after packet-out xid %d", b.xid(), po.xid())
	}
	fs.send(typeBarrierReply, b.xid(), nil)
	if err := <-res; err != nil {
		t.Fatal(err)
	}

	// An error for the packet-out's xid is returned.
	go func() { res <- sw.PacketOut(ctx, 9, 0, frame) }()
	po = fs.readType(typePacketOut)
	if in := binary.BigEndian.Uint32(po[8+8+8:]); in != 9 {
		t.Errorf("in_port %d", in)
	}
	b = fs.readType(typeBarrierReq)
	fs.send(typeError, po.xid(), []byte{0, 2, 0, 4, 1, 2, 3, 4}) // OFPBAC_BAD_OUT_PORT
	fs.send(typeBarrierReply, b.xid(), nil)
	var ofe *OFError
	if err := <-res; !errors.As(err, &ofe) || ofe.Name() != "OFPBAC_BAD_OUT_PORT" {
		t.Fatalf("got %v", err)
	}
	// Encoding errors are returned before anything is sent.
	if err := sw.PacketOut(ctx, 0, 1, nil); err == nil {
		t.Fatal("empty frame sent")
	}

	// A handler that does not keep up: packet-ins beyond the queue are
	// dropped, and replies still flow.
	gate := make(chan struct{})
	h.setPinGate(gate, make(chan struct{}, 1))
	send := func(cookie uint64) {
		fs.send(typePacketIn, 0, rawPacketIn(ofVersion, 0, 1, 0, cookie, 60, hexBytes(t, "80000004 00000005"), frame)[8:])
	}
	send(1000)
	<-h.inPin // the handler holds the first one (h.inPin is not written again)
	for i := range 128 + 10 {
		send(uint64(1001 + i))
	}
	go func() { res <- sw.Barrier(ctx) }()
	b = fs.readType(typeBarrierReq)
	fs.send(typeBarrierReply, b.xid(), nil)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if d := sw.PacketInsDropped(); d != 10 {
		t.Errorf("%d packet-ins dropped, want 10", d)
	}
	// The queued ones come in order once the handler continues.
	h.setPinGate(nil, nil)
	close(gate)
	for i := range 1 + 128 {
		if c := h.waitPacketIn(t, sw, 5*time.Second).Cookie; c != uint64(1000+i) {
			t.Fatalf("packet-in #%d has cookie %d", i, c)
		}
	}
}

func TestDisconnectedAfterLastPacketIn(t *testing.T) {
	h := &gatedHandler{recorder: newRecorder(), pinGate: make(chan struct{}), inPin: make(chan struct{}, 1)}
	fs := serveFakeWith(t, Config{}, h)
	fs.handshake(0x43, 1<<6)
	sw := h.waitConnected(t, 5*time.Second)
	fs.send(typePacketIn, 0, rawPacketIn(ofVersion, 0, 1, 0, 1, 0, nil, nil)[8:])
	<-h.inPin
	fs.c.Close()
	<-sw.Done()
	select {
	case <-h.disconnected:
		t.Fatal("Disconnected called while PacketIn runs")
	case <-time.After(100 * time.Millisecond):
	}
	close(h.pinGate)
	h.waitDisconnected(t, 5*time.Second)
}

// A handler without PacketIn gets no packet-ins, and they do no harm.
func TestPacketInWithoutHandler(t *testing.T) {
	rec := newRecorder()
	fs := serveFakeWith(t, Config{}, struct{ Handler }{rec})
	fs.handshake(0x44, 1<<6)
	sw := rec.waitConnected(t, 5*time.Second)
	fs.send(typePacketIn, 0, rawPacketIn(ofVersion, 0, 1, 0, 1, 0, nil, nil)[8:])
	fs.send(typePacketIn, 0, []byte{1, 2, 3}) // malformed
	res := make(chan error, 1)
	go func() { res <- sw.Barrier(context.Background()) }()
	b := fs.readType(typeBarrierReq)
	fs.send(typeBarrierReply, b.xid(), nil)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-rec.pins:
		t.Fatalf("packet-in delivered: %+v", p.pi)
	default:
	}
}
