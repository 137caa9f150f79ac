package ofconn

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/internal/flowtest"
)

// fakeSwitch speaks just enough OpenFlow 1.5 to drive the controller side.
type fakeSwitch struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (f *fakeSwitch) read() frame {
	f.t.Helper()
	_ = f.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [8]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		f.t.Fatalf("fake switch read: %v", err)
	}
	m := make(frame, binary.BigEndian.Uint16(h[2:]))
	copy(m, h[:])
	if _, err := io.ReadFull(f.r, m[8:]); err != nil {
		f.t.Fatalf("fake switch read: %v", err)
	}
	return m
}

// readType reads messages, answering echo requests, until one of type typ.
func (f *fakeSwitch) readType(typ uint8) frame {
	f.t.Helper()
	for {
		m := f.read()
		if m.typ() == typeEchoRequest {
			f.send(typeEchoReply, m.xid(), m.body())
			continue
		}
		if m.typ() != typ {
			f.t.Fatalf("fake switch: got message type %d, want %d", m.typ(), typ)
		}
		return m
	}
}

func (f *fakeSwitch) send(typ uint8, xid uint32, body []byte) {
	f.t.Helper()
	if _, err := f.c.Write(message(typ, xid, body)); err != nil {
		f.t.Fatalf("fake switch write: %v", err)
	}
}

// handshake plays the switch side of hello/features.
func (f *fakeSwitch) handshake(dpid uint64, bitmap uint32) {
	f.t.Helper()
	f.send(typeHello, 1, binary.BigEndian.AppendUint32([]byte{0, 1, 0, 8}, bitmap))
	if m := f.read(); m.typ() != typeHello {
		f.t.Fatalf("want hello, got %d", m.typ())
	}
	if bitmap&(1<<ofVersion) == 0 {
		return
	}
	sc := f.readType(typeSetConfig)
	if binary.BigEndian.Uint16(sc[10:]) != 128 {
		f.t.Errorf("miss_send_len %d", binary.BigEndian.Uint16(sc[10:]))
	}
	req := f.readType(typeFeaturesReq)
	body := binary.BigEndian.AppendUint64(nil, dpid)
	body = append(body, 0, 0, 0, 0, 254, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	f.send(typeFeaturesReply, req.xid(), body)
}

func selfSignedTLS(t *testing.T) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"controller"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func quietLog(t *testing.T) logrus.FieldLogger {
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	l.SetOutput(testWriter{t})
	return l
}

// serveFake starts Serve on a TLS listener and dials it as a fake switch.
func serveFake(t *testing.T, cfg Config) (*recorder, *fakeSwitch) {
	rec := newRecorder()
	return rec, serveFakeWith(t, cfg, rec)
}

// serveFakeWith is serveFake with the given handler.
func serveFakeWith(t *testing.T, cfg Config, h Handler) *fakeSwitch {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, selfSignedTLS(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.Log = quietLog(t)
	go func() { done <- Serve(ctx, tln, cfg, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeSwitch{t: t, c: c, r: bufio.NewReader(c)}
}

func flowDescOf(t *testing.T, f ofrules.Flow) []byte {
	fm, err := ofrules.MarshalFlowMod(ofrules.FlowMod{Op: ofrules.OpAdd, Flow: f}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlen := int(binary.BigEndian.Uint16(fm[50:]))
	mpad := (mlen + 7) / 8 * 8
	d := make([]byte, 24)
	d[4] = f.Table
	binary.BigEndian.PutUint16(d[6:], f.Priority)
	binary.BigEndian.PutUint64(d[16:], f.Cookie)
	d = append(d, fm[48:48+mpad]...)
	d = append(d, 0, 0, 0, 4, 0, 0, 0, 0) // empty ofp_stats
	d = append(d, fm[48+mpad:]...)
	binary.BigEndian.PutUint16(d, uint16(len(d)))
	return d
}

func TestFakeSwitchOverTLS(t *testing.T) {
	rec, fs := serveFake(t, Config{EchoInterval: 200 * time.Millisecond, EchoTimeout: 600 * time.Millisecond})
	fs.handshake(0x1234, 1<<4|1<<6)
	sw := rec.waitConnected(t, 5*time.Second)
	if sw.DPID() != 0x1234 || sw.NumTables() != 254 {
		t.Fatalf("dpid %#x tables %d", sw.DPID(), sw.NumTables())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Barrier.
	res := make(chan error, 1)
	go func() { res <- sw.Barrier(ctx) }()
	b := fs.readType(typeBarrierReq)
	fs.send(typeBarrierReply, b.xid(), nil)
	if err := <-res; err != nil {
		t.Fatal(err)
	}

	// A bundle whose second add the switch rejects: it must be discarded.
	flows := flowtest.Catalogue()[:3]
	go func() { res <- sw.Bundle(ctx, adds(flows)) }()
	open := fs.readType(typeBundleControl)
	bid := binary.BigEndian.Uint32(open[8:])
	if binary.BigEndian.Uint16(open[12:]) != bundleOpenRequest || binary.BigEndian.Uint16(open[14:]) != bundleFlagAtomic|bundleFlagOrdered {
		t.Fatalf("bad open %x", open)
	}
	fs.send(typeBundleControl, open.xid(), append(open.body()[:4:4], 0, bundleOpenReply, 0, 3))
	var addXids []uint32
	for range flows {
		a := fs.readType(typeBundleAdd)
		inner := a[16:]
		if binary.BigEndian.Uint32(a[8:]) != bid || binary.BigEndian.Uint32(inner[4:]) != a.xid() {
			t.Fatalf("bundle add: bad bundle id or inner xid")
		}
		got, err := ofrules.DecodeFlowMod(inner)
		if err != nil {
			t.Fatal(err)
		}
		if got.Flow.Text(nil) != flows[len(addXids)].Text(nil) {
			t.Errorf("add %d: %s", len(addXids), got.Flow.Text(nil))
		}
		addXids = append(addXids, a.xid())
	}
	// OFPBIC_BAD_TABLE_ID for the 2nd add, then the barrier reply.
	fs.send(typeError, addXids[1], []byte{0, 3, 0, 2, 1, 2, 3, 4})
	b = fs.readType(typeBarrierReq)
	fs.send(typeBarrierReply, b.xid(), nil)
	disc := fs.readType(typeBundleControl)
	if binary.BigEndian.Uint16(disc[12:]) != bundleDiscardRequest {
		t.Fatalf("want discard, got control type %d", binary.BigEndian.Uint16(disc[12:]))
	}
	fs.send(typeBundleControl, disc.xid(), append(disc.body()[:4:4], 0, bundleDiscardReply, 0, 3))
	err := <-res
	var be *BundleError
	if !errors.As(err, &be) || len(be.Mods) != 1 || be.Mods[0].Index != 1 || !strings.Contains(err.Error(), flows[1].Text(nil)) ||
		!strings.Contains(err.Error(), "OFPBIC_BAD_TABLE_ID") {
		t.Fatalf("got %v", err)
	}

	// A successful bundle ends with a commit.
	go func() { res <- sw.Bundle(ctx, adds(flows[:1])) }()
	open = fs.readType(typeBundleControl)
	fs.send(typeBundleControl, open.xid(), append(open.body()[:4:4], 0, bundleOpenReply, 0, 3))
	fs.readType(typeBundleAdd)
	b = fs.readType(typeBarrierReq)
	fs.send(typeBarrierReply, b.xid(), nil)
	commit := fs.readType(typeBundleControl)
	if binary.BigEndian.Uint16(commit[12:]) != bundleCommitRequest {
		t.Fatalf("want commit")
	}
	fs.send(typeBundleControl, commit.xid(), append(commit.body()[:4:4], 0, bundleCommitReply, 0, 3))
	if err := <-res; err != nil {
		t.Fatal(err)
	}

	// A dump answered in two parts.
	type dumpRes struct {
		fs  []ofrules.Flow
		err error
	}
	dres := make(chan dumpRes, 1)
	go func() {
		f, err := sw.DumpFlows(ctx, 0xab00000000000000, 0xff00000000000000)
		dres <- dumpRes{f, err}
	}()
	req := fs.readType(typeMultipartReq)
	if binary.BigEndian.Uint16(req[8:]) != multipartFlowDesc || binary.BigEndian.Uint64(req[32:]) != 0xab00000000000000 ||
		binary.BigEndian.Uint64(req[40:]) != 0xff00000000000000 {
		t.Fatalf("bad flow stats request %x", req)
	}
	all := flowtest.Catalogue()
	part := func(more bool, fl []ofrules.Flow) []byte {
		body := []byte{0, multipartFlowDesc, 0, 0, 0, 0, 0, 0}
		if more {
			body[3] = multipartReplyMore
		}
		for _, f := range fl {
			body = append(body, flowDescOf(t, f)...)
		}
		return body
	}
	fs.send(typeMultipartRep, req.xid(), part(true, all[:10]))
	fs.send(typeMultipartRep, req.xid(), part(false, all[10:]))
	d := <-dres
	if d.err != nil {
		t.Fatal(d.err)
	}
	if len(d.fs) != len(all) {
		t.Fatalf("dump: %d flows, want %d", len(d.fs), len(all))
	}
	for i := range all {
		if d.fs[i].Text(nil) != all[i].Text(nil) {
			t.Errorf("dump flow %d: %s", i, d.fs[i].Text(nil))
		}
	}

	// An error reply to a dump is returned.
	go func() {
		f, err := sw.DumpFlows(ctx, 0, 0)
		dres <- dumpRes{f, err}
	}()
	req = fs.readType(typeMultipartReq)
	fs.send(typeError, req.xid(), []byte{0, 1, 0, 2})
	if d := <-dres; d.err == nil || !strings.Contains(d.err.Error(), "OFPBRC_BAD_MULTIPART") {
		t.Fatalf("got %v", d.err)
	}

	// Stop answering echoes: the watchdog disconnects.
	start := time.Now()
	gone := rec.waitDisconnected(t, 5*time.Second)
	if gone != sw || !strings.Contains(gone.Err().Error(), "no echo reply") {
		t.Fatalf("disconnected: %v", gone.Err())
	}
	t.Logf("disconnected after %v: %v", time.Since(start), gone.Err())
	if err := sw.Barrier(ctx); err == nil {
		t.Fatal("barrier after disconnect succeeded")
	}
}

func TestHelloWithoutOpenFlow15(t *testing.T) {
	rec, fs := serveFake(t, Config{})
	fs.handshake(1, 1<<4) // OpenFlow 1.3 only
	m := fs.read()
	if m.typ() != typeError || binary.BigEndian.Uint16(m[8:]) != 0 {
		t.Fatalf("want HELLO_FAILED, got type %d", m.typ())
	}
	if !strings.Contains(string(m[12:]), "OpenFlow15") {
		t.Errorf("error text %q", m[12:])
	}
	select {
	case <-rec.connected:
		t.Fatal("Connected called for an incompatible switch")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestHelloSupports15(t *testing.T) {
	for _, c := range []struct {
		msg  []byte
		want bool
	}{
		{message(typeHello, 1, nil), true},
		{message(typeHello, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x50}), true},
		{message(typeHello, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x10}), false},
	} {
		if got := helloSupports15(c.msg); got != c.want {
			t.Errorf("%x: got %v", c.msg, got)
		}
	}
	old := message(typeHello, 1, nil)
	old[0] = 4
	if helloSupports15(old) {
		t.Error("OF1.3 hello without bitmap accepted")
	}
}

func TestSendFailsAfterClose(t *testing.T) {
	rec, fs := serveFake(t, Config{})
	fs.handshake(7, 1<<6)
	sw := rec.waitConnected(t, 5*time.Second)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	<-sw.Done()
	rec.waitDisconnected(t, 5*time.Second)
	ctx := context.Background()
	if err := sw.Bundle(ctx, adds(flowtest.Catalogue()[:1])); err == nil {
		t.Error("bundle on closed switch succeeded")
	}
	if _, err := sw.DumpFlows(ctx, 0, 0); err == nil {
		t.Error("dump on closed switch succeeded")
	}
	// Encoding errors are reported before anything is sent.
	err := sw.Bundle(ctx, []ofrules.FlowMod{{Flow: ofrules.Flow{Actions: []ofrules.Action{ofrules.Goto{Table: 1}, ofrules.Goto{Table: 2}}}}})
	if err == nil || !strings.Contains(err.Error(), "flow-mod #0") {
		t.Errorf("got %v", err)
	}
}

type brokenListener struct{ net.Listener }

func (brokenListener) Accept() (net.Conn, error) { return nil, errors.New("boom") }

func TestServeReturnsListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Serve(context.Background(), brokenListener{ln}, Config{}, newRecorder())
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
}
