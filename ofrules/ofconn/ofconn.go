// Package ofconn is OpenVPC's OpenFlow 1.5 connection layer for a central
// controller that switches dial (OVS controller targets "tcp:", "ssl:" or
// "unix:"). It accepts connections on any net.Listener (TCP, unix socket,
// tls.NewListener), performs the hello/features handshake, answers and
// sends echoes (closing dead connections), correlates replies and errors by
// xid, and offers atomic bundles, complete flow dumps, barriers, and
// packet-in delivery and packet-out (packetio.go).
//
// Framing is done here, in a single reader per connection, so messages are
// handled in the order the switch sent them (libOpenflow's MessageStream
// parses in parallel and reorders messages with different xids, which would
// let a bundle-add error arrive after the barrier reply that should follow
// it). Messages are built with libOpenflow/ofrules encoders; flow-stats
// replies are decoded by ofrules.DecodeFlowDescs.
package ofconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ofrules"
)

// OpenFlow 1.5 message types used here.
const (
	ofVersion         = 6
	typeHello         = 0
	typeError         = 1
	typeEchoRequest   = 2
	typeEchoReply     = 3
	typeExperimenter  = 4
	typeFeaturesReq   = 5
	typeFeaturesReply = 6
	typeSetConfig     = 9
	typePacketIn      = 10
	typeFlowRemoved   = 11
	typePortStatus    = 12
	typeMultipartReq  = 18
	typeMultipartRep  = 19
	typeBarrierReq    = 20
	typeBarrierReply  = 21
	typeRoleStatus    = 30
	typeTableStatus   = 31
	typeBundleControl = 33
	typeBundleAdd     = 34

	multipartFlowDesc  = 1
	multipartReplyMore = 1

	bundleOpenRequest    = 0
	bundleOpenReply      = 1
	bundleCommitRequest  = 4
	bundleCommitReply    = 5
	bundleDiscardRequest = 6
	bundleDiscardReply   = 7
	bundleFlagAtomic     = 1
	bundleFlagOrdered    = 2

	headerLen = 8
)

// Config configures Serve.
type Config struct {
	Log logrus.FieldLogger
	// EchoInterval is how often an echo request is sent (default 5 s).
	EchoInterval time.Duration
	// EchoTimeout closes the connection when nothing (no echo reply, no
	// other message) arrived within this long after an echo request
	// (default 3 × EchoInterval).
	EchoTimeout time.Duration
	// HandshakeTimeout bounds hello + features (default 10 s).
	HandshakeTimeout time.Duration
	// WriteTimeout bounds every write to the switch; a switch that does
	// not drain its socket for this long is disconnected (default
	// max(EchoTimeout, 10 s)).
	WriteTimeout time.Duration
	// MissSendLen is the miss_send_len set on connect: bytes of a packet
	// sent to the controller when a flow does not say (default 128, enough
	// for headers; OpenVPC only uses controller() for traces).
	MissSendLen uint16
	// FragMode is the switch's IP fragment handling set on connect
	// (FragNormal, or FragNXMatch to match nw_frag and see the ports of
	// first fragments). It is a switch-wide setting.
	FragMode uint16
	// PacketInQueue is how many packet-ins per switch may wait for the
	// PacketInHandler before further ones are dropped (default 128).
	PacketInQueue int
}

// IP fragment handling modes (OFPC_FRAG_*; nx-match is OVS's extension).
const (
	FragNormal  uint16 = 0
	FragNXMatch uint16 = 3
)

func (c Config) withDefaults() Config {
	if c.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Log = l
	}
	if c.EchoInterval <= 0 {
		c.EchoInterval = 5 * time.Second
	}
	if c.EchoTimeout <= 0 {
		c.EchoTimeout = 3 * c.EchoInterval
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = max(c.EchoTimeout, 10*time.Second)
	}
	if c.MissSendLen == 0 {
		c.MissSendLen = 128
	}
	if c.PacketInQueue <= 0 {
		c.PacketInQueue = 128
	}
	return c
}

// Handler is told about switches. Connected is called once the handshake
// is done and the switch is usable; Disconnected after the connection is
// gone (Done closed), and only after Connected has returned. Both run on
// the connection's own goroutine: do not block in them for long. A Handler
// that also implements PacketInHandler receives packet-ins.
type Handler interface {
	Connected(sw *Switch)
	Disconnected(sw *Switch)
}

// Serve accepts switch connections on ln until ctx is done, then closes the
// listener and every connection, waits for their Disconnected calls and
// returns nil. It returns an error if the listener fails.
func Serve(ctx context.Context, ln net.Listener, cfg Config, h Handler) error {
	cfg = cfg.withDefaults()
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: connections close, then we wait
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if retryableAccept(err) {
				cfg.Log.WithError(err).Warn("openflow accept failed, retrying")
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("ofconn: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 5 * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, c, cfg, h)
		}()
	}
}

func retryableAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func serveConn(ctx context.Context, c net.Conn, cfg Config, h Handler) {
	s := newSwitch(c, cfg)
	if err := s.handshake(ctx); err != nil {
		s.log.WithError(err).Warn("openflow handshake failed")
		s.closeWith(err)
		return
	}
	s.log = s.log.WithField("dpid", fmt.Sprintf("%016x", s.dpid))
	s.log.Info("switch connected")
	ph, wantPins := h.(PacketInHandler)
	if wantPins {
		s.pins = make(chan PacketIn, cfg.PacketInQueue) // before the reader starts
	}
	go s.readLoop()
	go s.watchdog()
	stop := context.AfterFunc(ctx, func() { s.closeWith(fmt.Errorf("controller shutting down: %w", context.Cause(ctx))) })
	defer stop()
	h.Connected(s)
	// Packet-ins that arrived during Connected waited in the queue. The
	// last PacketIn call has returned before Disconnected is called.
	pinsStopped := closedChan
	if wantPins {
		pinsStopped = s.deliverPacketIns(ph)
	}
	<-s.done
	<-pinsStopped
	s.log.WithError(s.Err()).Info("switch disconnected")
	h.Disconnected(s)
}

var closedChan = func() <-chan struct{} { c := make(chan struct{}); close(c); return c }()

// frame is one OpenFlow message, header included.
type frame []byte

func (f frame) typ() uint8   { return f[1] }
func (f frame) xid() uint32  { return binary.BigEndian.Uint32(f[4:]) }
func (f frame) body() []byte { return f[headerLen:] }

// waiter receives the replies (and errors) for one xid.
type waiter struct {
	ch   chan frame
	gone chan struct{} // closed when the requester stops listening
}

// errRange collects errors whose xid falls in [lo, lo+n): the flow-mods of
// a bundle.
type errRange struct {
	lo, n uint32
	mu    sync.Mutex
	errs  []rangeErr
	total int
}

type rangeErr struct {
	idx int
	err *OFError
}

const maxListedErrors = 16

func (r *errRange) add(xid uint32, e *OFError) bool {
	if xid-r.lo >= r.n {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.errs) < maxListedErrors {
		r.errs = append(r.errs, rangeErr{idx: int(xid - r.lo), err: e})
	}
	return true
}

func (r *errRange) snapshot() ([]rangeErr, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rangeErr(nil), r.errs...), r.total
}

// Switch is one connected switch. All methods are safe for concurrent use.
type Switch struct {
	conn net.Conn
	cfg  Config
	log  logrus.FieldLogger
	rd   *bufio.Reader

	dpid    uint64
	nTables uint8

	wmu sync.Mutex
	w   *bufio.Writer

	xmu     sync.Mutex
	nextXid uint32

	pmu     sync.Mutex
	pending map[uint32]*waiter
	ranges  []*errRange

	bundleSem chan struct{} // serialises bundles
	bundleID  atomic.Uint32

	lastRecv atomic.Int64 // unix nanos of the last message received

	pins       chan PacketIn // nil when the handler takes no packet-ins
	pinDropped atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	err       error // why the connection ended; set before done is closed
}

func newSwitch(c net.Conn, cfg Config) *Switch {
	return &Switch{
		conn:      c,
		cfg:       cfg,
		log:       cfg.Log.WithField("remote", c.RemoteAddr().String()),
		rd:        bufio.NewReaderSize(c, 64<<10),
		w:         bufio.NewWriterSize(c, 64<<10),
		nextXid:   1,
		pending:   make(map[uint32]*waiter),
		bundleSem: make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// DPID is the switch's datapath id.
func (s *Switch) DPID() uint64 { return s.dpid }

// NumTables is the number of flow tables the switch reported.
func (s *Switch) NumTables() int { return int(s.nTables) }

// RemoteAddr is the address the switch connected from.
func (s *Switch) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Done is closed when the connection has ended.
func (s *Switch) Done() <-chan struct{} { return s.done }

// Err says why the connection ended (nil while it is up).
func (s *Switch) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the connection. The switch will reconnect on its own (OVS
// retries its controller targets).
func (s *Switch) Close() error {
	s.closeWith(errors.New("closed by controller"))
	return nil
}

func (s *Switch) closeWith(reason error) {
	s.closeOnce.Do(func() {
		s.err = reason
		s.conn.Close()
		close(s.done)
	})
}

func (s *Switch) errClosed() error {
	return fmt.Errorf("switch %016x disconnected: %w", s.dpid, s.err)
}

// allocXids reserves n consecutive xids (never 0) and returns the first.
func (s *Switch) allocXids(n int) uint32 {
	s.xmu.Lock()
	defer s.xmu.Unlock()
	if uint64(s.nextXid)+uint64(n) > 1<<32-1 {
		s.nextXid = 1
	}
	x := s.nextXid
	s.nextXid += uint32(n)
	return x
}

func header(typ uint8, length int, xid uint32) []byte {
	b := make([]byte, headerLen, length)
	b[0], b[1] = ofVersion, typ
	binary.BigEndian.PutUint16(b[2:], uint16(length))
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

// message builds a complete message of type typ with body.
func message(typ uint8, xid uint32, body []byte) []byte {
	b := header(typ, headerLen+len(body), xid)
	return append(b, body...)
}

// write sends whole messages under the write lock. ctx is checked before
// writing only: a write cut short would corrupt the stream, so writes are
// bounded by WriteTimeout instead, and a failed write closes the
// connection.
func (s *Switch) write(ctx context.Context, msgs ...[]byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return s.errClosed()
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	for _, m := range msgs {
		if _, err := s.w.Write(m); err != nil {
			s.closeWith(fmt.Errorf("write: %w", err))
			return s.errClosed()
		}
	}
	if err := s.w.Flush(); err != nil {
		s.closeWith(fmt.Errorf("write: %w", err))
		return s.errClosed()
	}
	return nil
}

func (s *Switch) register(xid uint32, buf int) *waiter { return s.registerN(xid, 1, buf) }

func (s *Switch) unregister(xid uint32, w *waiter) { s.unregisterN(xid, 1, w) }

// registerN registers one waiter for the n xids from xid.
func (s *Switch) registerN(xid uint32, n, buf int) *waiter {
	w := &waiter{ch: make(chan frame, buf), gone: make(chan struct{})}
	s.pmu.Lock()
	for i := range uint32(n) {
		s.pending[xid+i] = w
	}
	s.pmu.Unlock()
	return w
}

func (s *Switch) unregisterN(xid uint32, n int, w *waiter) {
	s.pmu.Lock()
	for i := range uint32(n) {
		if s.pending[xid+i] == w {
			delete(s.pending, xid+i)
		}
	}
	s.pmu.Unlock()
	close(w.gone)
}

func (s *Switch) addRange(r *errRange) {
	s.pmu.Lock()
	s.ranges = append(s.ranges, r)
	s.pmu.Unlock()
}

func (s *Switch) removeRange(r *errRange) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for i, x := range s.ranges {
		if x == r {
			s.ranges = append(s.ranges[:i], s.ranges[i+1:]...)
			return
		}
	}
}

// wait returns the next frame for w, or an error on ctx or disconnect.
func (s *Switch) wait(ctx context.Context, w *waiter) (frame, error) {
	select {
	case f := <-w.ch:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		// A reply may have raced with the disconnect.
		select {
		case f := <-w.ch:
			return f, nil
		default:
		}
		return nil, s.errClosed()
	}
}

// request sends one message and returns its first reply; an OpenFlow error
// reply is returned as *OFError.
func (s *Switch) request(ctx context.Context, typ uint8, body []byte) (frame, error) {
	xid := s.allocXids(1)
	w := s.register(xid, 1)
	defer s.unregister(xid, w)
	if err := s.write(ctx, message(typ, xid, body)); err != nil {
		return nil, err
	}
	f, err := s.wait(ctx, w)
	if err != nil {
		return nil, err
	}
	if f.typ() == typeError {
		return nil, parseOFError(f)
	}
	return f, nil
}

// readFrame reads one message.
func (s *Switch) readFrame() (frame, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(s.rd, h[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint16(h[2:]))
	if l < headerLen {
		return nil, fmt.Errorf("bad OpenFlow message length %d", l)
	}
	f := make(frame, l)
	copy(f, h[:])
	if _, err := io.ReadFull(s.rd, f[headerLen:]); err != nil {
		return nil, err
	}
	return f, nil
}

// handshake exchanges hellos (OpenFlow 1.5 only), sets the switch config
// and reads the datapath id from the features reply.
func (s *Switch) handshake(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Hello with a version bitmap containing only 1.5.
	hello := message(typeHello, s.allocXids(1), []byte{0, 1, 0, 8, 0, 0, 0, 1 << ofVersion})
	if err := s.writeRaw(hello); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	f, err := s.readFrame()
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if f.typ() != typeHello {
		return fmt.Errorf("expected hello, got message type %d", f.typ())
	}
	if !helloSupports15(f) {
		msg := "OpenVPC speaks OpenFlow 1.5 only; add OpenFlow15 to the bridge's protocols"
		body := append([]byte{0, 0, 0, 0}, msg...) // OFPET_HELLO_FAILED, OFPHFC_INCOMPATIBLE
		_ = s.writeRaw(message(typeError, f.xid(), body))
		return fmt.Errorf("switch does not offer OpenFlow 1.5 (hello version %d); set protocols=OpenFlow15 on the bridge", f[0])
	}
	fxid := s.allocXids(1)
	cfg := make([]byte, 4)
	binary.BigEndian.PutUint16(cfg, s.cfg.FragMode)
	binary.BigEndian.PutUint16(cfg[2:], s.cfg.MissSendLen)
	if err := s.writeRaw(append(message(typeSetConfig, s.allocXids(1), cfg), message(typeFeaturesReq, fxid, nil)...)); err != nil {
		return fmt.Errorf("send features request: %w", err)
	}
	for {
		f, err := s.readFrame()
		if err != nil {
			return fmt.Errorf("read features reply: %w", err)
		}
		switch {
		case f[0] != ofVersion:
			return fmt.Errorf("switch sent OpenFlow version %d after negotiating 1.5", f[0])
		case f.typ() == typeEchoRequest:
			if err := s.writeRaw(message(typeEchoReply, f.xid(), f.body())); err != nil {
				return err
			}
		case f.typ() == typeError:
			return fmt.Errorf("switch refused handshake: %w", parseOFError(f))
		case f.typ() == typeFeaturesReply && f.xid() == fxid:
			if len(f) < 32 {
				return fmt.Errorf("short features reply")
			}
			s.dpid = binary.BigEndian.Uint64(f[8:])
			s.nTables = f[20]
			_ = s.conn.SetDeadline(time.Time{})
			s.lastRecv.Store(time.Now().UnixNano())
			return nil
		}
	}
}

// writeRaw writes during the handshake (no other writers yet).
func (s *Switch) writeRaw(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.w.Flush()
}

func helloSupports15(f frame) bool {
	elems := f.body()
	for len(elems) >= 4 {
		t, l := binary.BigEndian.Uint16(elems), int(binary.BigEndian.Uint16(elems[2:]))
		if l < 4 || l > len(elems) {
			break
		}
		if t == 1 { // OFPHET_VERSIONBITMAP: bit n = version n
			return l >= 8 && binary.BigEndian.Uint32(elems[4:])&(1<<ofVersion) != 0
		}
		padded := (l + 7) / 8 * 8
		if padded > len(elems) {
			break
		}
		elems = elems[padded:]
	}
	return f[0] >= ofVersion
}

// readLoop reads and dispatches messages in order until the connection ends.
func (s *Switch) readLoop() {
	for {
		f, err := s.readFrame()
		if err != nil {
			select {
			case <-s.done:
			default:
				s.closeWith(fmt.Errorf("read: %w", err))
			}
			return
		}
		s.lastRecv.Store(time.Now().UnixNano())
		s.dispatch(f)
	}
}

func (s *Switch) dispatch(f frame) {
	switch f.typ() {
	case typeEchoRequest:
		reply := message(typeEchoReply, f.xid(), f.body())
		// Never write from the reader: the switch may be blocked sending
		// to us while we wait for the write lock.
		go func() { _ = s.write(context.Background(), reply) }()
		return
	case typePacketIn:
		s.enqueuePacketIn(f)
		return
	case typeFlowRemoved, typePortStatus, typeRoleStatus, typeTableStatus, typeExperimenter:
		s.log.WithField("type", f.typ()).Debug("ignoring asynchronous message")
		return
	}
	s.pmu.Lock()
	w := s.pending[f.xid()]
	var r *errRange
	if w == nil && f.typ() == typeError {
		for _, x := range s.ranges {
			if f.xid()-x.lo < x.n {
				r = x
				break
			}
		}
	}
	s.pmu.Unlock()
	switch {
	case w != nil:
		select {
		case w.ch <- f:
		case <-w.gone:
		case <-s.done:
		}
	case r != nil:
		r.add(f.xid(), parseOFError(f))
	case f.typ() == typeError:
		s.log.WithField("xid", f.xid()).WithError(parseOFError(f)).Warn("unsolicited OpenFlow error")
	default:
		s.log.WithFields(logrus.Fields{"type": f.typ(), "xid": f.xid()}).Debug("unexpected OpenFlow message")
	}
}

// watchdog sends an echo request every EchoInterval and closes the
// connection when nothing arrives within EchoTimeout of one.
func (s *Switch) watchdog() {
	t := time.NewTimer(s.cfg.EchoInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		sent := time.Now()
		xid := s.allocXids(1)
		w := s.register(xid, 1)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.EchoTimeout)
		err := s.write(ctx, message(typeEchoRequest, xid, nil))
		if err == nil {
			_, err = s.wait(ctx, w)
		}
		cancel()
		s.unregister(xid, w)
		if err != nil && errors.Is(err, context.DeadlineExceeded) {
			if time.Unix(0, s.lastRecv.Load()).Before(sent) {
				s.closeWith(fmt.Errorf("no echo reply within %v", s.cfg.EchoTimeout))
				return
			}
		}
		t.Reset(s.cfg.EchoInterval)
	}
}

// Barrier waits until the switch has processed every message sent before.
func (s *Switch) Barrier(ctx context.Context) error {
	if _, err := s.request(ctx, typeBarrierReq, nil); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// bundleCtrl sends a bundle control request and checks the reply type.
func (s *Switch) bundleCtrl(ctx context.Context, id uint32, typ, want uint16) error {
	body := make([]byte, 8)
	binary.BigEndian.PutUint32(body, id)
	binary.BigEndian.PutUint16(body[4:], typ)
	binary.BigEndian.PutUint16(body[6:], bundleFlagAtomic|bundleFlagOrdered)
	f, err := s.request(ctx, typeBundleControl, body)
	if err != nil {
		return err
	}
	if f.typ() != typeBundleControl || len(f) < 16 || binary.BigEndian.Uint16(f[12:]) != want {
		return fmt.Errorf("unexpected reply (type %d) to bundle control %d", f.typ(), typ)
	}
	return nil
}

// chunkSize is how many bytes of bundle messages are written per lock.
const chunkSize = 256 << 10

// Bundle applies mods as one atomic, ordered OpenFlow bundle: open, add
// every flow-mod, barrier, then commit if the switch rejected none of them
// (OVS drops a rejected add from the bundle and would commit the rest), or
// discard otherwise. It returns nil only after the commit reply. Encoding
// errors are returned before anything is sent; switch rejections as
// *BundleError naming each offending flow. Concurrent bundles on one switch
// are serialised.
func (s *Switch) Bundle(ctx context.Context, mods []ofrules.FlowMod) error {
	if len(mods) == 0 {
		return nil
	}
	id := s.bundleID.Add(1)
	base := s.allocXids(len(mods))
	// Encode everything first: a bad flow must fail before the switch sees
	// anything. Chunks end on message boundaries so that other writers
	// (echo, dumps) can interleave between them.
	var chunks [][]byte
	cur := make([]byte, 0, chunkSize+4096)
	for i, m := range mods {
		xid := base + uint32(i)
		fm, err := ofrules.MarshalFlowMod(m, xid)
		if err != nil {
			return fmt.Errorf("bundle: flow-mod #%d (%s): %w", i, m.Describe(), err)
		}
		l := headerLen + 8 + len(fm)
		if l > 0xffff {
			return fmt.Errorf("bundle: flow-mod #%d (%s): %d bytes, too large for one message", i, m.Describe(), l)
		}
		cur = binary.BigEndian.AppendUint16(append(cur, ofVersion, typeBundleAdd), uint16(l))
		cur = binary.BigEndian.AppendUint32(cur, xid)
		cur = binary.BigEndian.AppendUint32(cur, id)
		cur = append(cur, 0, 0)
		cur = binary.BigEndian.AppendUint16(cur, bundleFlagAtomic|bundleFlagOrdered)
		cur = append(cur, fm...)
		if len(cur) >= chunkSize {
			chunks = append(chunks, cur)
			cur = make([]byte, 0, chunkSize+4096)
		}
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}

	select {
	case s.bundleSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("bundle: %w", ctx.Err())
	case <-s.done:
		return fmt.Errorf("bundle: %w", s.errClosed())
	}
	defer func() { <-s.bundleSem }()

	errs := &errRange{lo: base, n: uint32(len(mods))}
	s.addRange(errs)
	defer s.removeRange(errs)

	if err := s.bundleCtrl(ctx, id, bundleOpenRequest, bundleOpenReply); err != nil {
		return s.bundleFailed(mods, "open", err, errs)
	}
	opened := true
	defer func() {
		if opened { // discard on any early return (ctx, write errors)
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.bundleCtrl(dctx, id, bundleDiscardRequest, bundleDiscardReply); err != nil {
				s.log.WithError(err).Debug("bundle discard failed")
			}
		}
	}()
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if err := s.write(ctx, c); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	// Add errors arrive before the barrier reply (one ordered reader).
	if err := s.Barrier(ctx); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if _, n := errs.snapshot(); n > 0 {
		return s.bundleFailed(mods, "", nil, errs)
	}
	opened = false // a commit, failed or not, ends the bundle
	if err := s.bundleCtrl(ctx, id, bundleCommitRequest, bundleCommitReply); err != nil {
		return s.bundleFailed(mods, "commit", err, errs)
	}
	return nil
}

// bundleFailed builds the error for a rejected bundle.
func (s *Switch) bundleFailed(mods []ofrules.FlowMod, stage string, err error, errs *errRange) error {
	var ofe *OFError
	if err != nil && !errors.As(err, &ofe) {
		return fmt.Errorf("bundle %s: %w", stage, err)
	}
	list, total := errs.snapshot()
	be := &BundleError{N: len(mods), More: total - len(list)}
	for _, e := range list {
		be.Mods = append(be.Mods, ModError{Index: e.idx, Mod: mods[e.idx], Err: e.err})
	}
	switch stage {
	case "commit":
		be.Commit = ofe
	case "":
	default:
		be.Other = ofe
	}
	return be
}

// DumpFlows reads every flow whose cookie matches cookie/mask (mask 0:
// all flows), collecting all parts of the multipart reply. Flows come in
// the switch's order.
func (s *Switch) DumpFlows(ctx context.Context, cookie, mask uint64) ([]ofrules.Flow, error) {
	body := make([]byte, 8, 48)
	binary.BigEndian.PutUint16(body, multipartFlowDesc)
	body = append(body, 0xff, 0, 0, 0) // all tables
	body = binary.BigEndian.AppendUint32(body, 0xffffffff)
	body = binary.BigEndian.AppendUint32(body, 0xffffffff)
	body = append(body, 0, 0, 0, 0)
	body = binary.BigEndian.AppendUint64(body, cookie&mask)
	body = binary.BigEndian.AppendUint64(body, mask)
	body = append(body, 0, 1, 0, 4, 0, 0, 0, 0) // empty OXM match

	xid := s.allocXids(1)
	w := s.register(xid, 64)
	defer s.unregister(xid, w)
	if err := s.write(ctx, message(typeMultipartReq, xid, body)); err != nil {
		return nil, fmt.Errorf("dump flows: %w", err)
	}
	var flows []ofrules.Flow
	for part := 0; ; part++ {
		f, err := s.wait(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("dump flows: %w", err)
		}
		if f.typ() == typeError {
			return nil, fmt.Errorf("dump flows: %w", parseOFError(f))
		}
		if f.typ() != typeMultipartRep || len(f) < 16 || binary.BigEndian.Uint16(f[8:]) != multipartFlowDesc {
			return nil, fmt.Errorf("dump flows: unexpected reply type %d", f.typ())
		}
		fs, err := ofrules.DecodeFlowDescs(f[16:])
		if err != nil {
			return nil, fmt.Errorf("dump flows: reply part %d: %w", part, err)
		}
		flows = append(flows, fs...)
		if binary.BigEndian.Uint16(f[10:])&multipartReplyMore == 0 {
			return flows, nil
		}
	}
}
