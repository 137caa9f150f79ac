package ofconn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ofrules"
)

// Packet-in and packet-out.
//
// Both messages are encoded and decoded here rather than with libOpenflow:
// its PacketIn.UnmarshalBinary does no bounds checks (a short message
// panics the reader), and it decodes the whole OXM match through its field
// decoders, which mis-decode some fields and fail on experimenter OXMs
// other than ONF's, losing the packet-in. We only need in_port from the
// match; everything else is skipped by length.
//
// Delivery: the reader decodes a packet-in and puts it on a small buffered
// queue per switch (Config.PacketInQueue); one goroutine per switch calls
// PacketInHandler.PacketIn from it, in order. When the queue is full the
// packet-in is dropped and counted (PacketInsDropped), so a slow handler
// never stalls the reader and with it replies, errors and echoes.

// PacketInHandler is implemented by Handlers that want packet-ins. PacketIn
// is called for a switch only after Connected has returned and before
// Disconnected is called, one call at a time per switch, in the order the
// switch sent them. Do not block in it for long: while it runs, further
// packet-ins from the switch queue up and are dropped once the queue is
// full.
type PacketInHandler interface {
	PacketIn(sw *Switch, pi PacketIn)
}

// PacketIn is a packet sent to the controller by the switch.
type PacketIn struct {
	TableID uint8  // table of the flow that sent it
	Cookie  uint64 // cookie of that flow (all ones on a table miss)
	Reason  uint8  // Reason* constant
	InPort  uint32 // OpenFlow port it arrived on (from the match)
	// TotalLen is the frame's full length; Data is shorter when the switch
	// truncated it (controller action max_len, miss_send_len). OVS 3.1
	// ignores a controller action's max_len and sends whole frames.
	TotalLen uint16
	Data     []byte // the Ethernet frame
}

// Packet-in reasons (ofp_packet_in_reason, OpenFlow 1.5).
const (
	ReasonTableMiss   uint8 = 0 // no matching flow (OFPR_TABLE_MISS)
	ReasonApplyAction uint8 = 1 // output:CONTROLLER in a flow's actions (OFPR_APPLY_ACTION)
	ReasonInvalidTTL  uint8 = 2
	ReasonActionSet   uint8 = 3
	ReasonGroup       uint8 = 4
	// ReasonPacketOut: output:CONTROLLER reached while executing a
	// packet-out (OVS also uses it when the packet-out's packet goes
	// through patch ports or resubmits into a flow that sends it to us).
	ReasonPacketOut uint8 = 5
)

const (
	typePacketOut = 13

	noBuffer     = 0xffffffff // OFP_NO_BUFFER
	oxmInPort    = 0x80000004 // OXM_OF_IN_PORT, 4 bytes, no mask
	oxmClassExp  = 0xffff     // experimenter OXM class
	matchTypeOXM = 1          // OFPMT_OXM

	packetInFixed = 16 // buffer_id .. cookie
	// maxPacketOutData is the largest frame PacketOut can send in one
	// message: 64 KiB minus header, fixed part, in_port match and action.
	maxPacketOutData = 0xffff - headerLen - 8 - 16 - 16
	minFrame         = 14 // an Ethernet header
)

// decodePacketIn decodes an OpenFlow 1.3/1.5 packet-in (the two are the
// same on the wire; OpenVPC negotiates 1.5 only). Data aliases msg.
func decodePacketIn(msg []byte) (PacketIn, error) {
	var pi PacketIn
	if len(msg) < headerLen || msg[1] != typePacketIn {
		return pi, errors.New("not a packet-in")
	}
	if v := msg[0]; v != 4 && v != ofVersion {
		return pi, fmt.Errorf("packet-in: unsupported OpenFlow version %d", v)
	}
	if l := int(binary.BigEndian.Uint16(msg[2:])); l != len(msg) {
		return pi, fmt.Errorf("packet-in: header length %d, message %d bytes", l, len(msg))
	}
	b := msg[headerLen:]
	if len(b) < packetInFixed+4 {
		return pi, fmt.Errorf("packet-in: %d bytes, too short", len(msg))
	}
	// buffer_id (b[0:4]) is ignored: OVS never buffers, and Data holds
	// whatever the switch sent either way.
	pi.TotalLen = binary.BigEndian.Uint16(b[4:])
	pi.Reason = b[6]
	pi.TableID = b[7]
	pi.Cookie = binary.BigEndian.Uint64(b[8:])
	m := b[packetInFixed:]
	if t := binary.BigEndian.Uint16(m); t != matchTypeOXM {
		return pi, fmt.Errorf("packet-in: match type %d, want OXM", t)
	}
	ml := int(binary.BigEndian.Uint16(m[2:]))
	padded := (ml + 7) / 8 * 8
	if ml < 4 || padded+2 > len(m) {
		return pi, fmt.Errorf("packet-in: bad match length %d in %d bytes", ml, len(m))
	}
	for oxms := m[4:ml]; len(oxms) > 0; {
		if len(oxms) < 4 {
			return pi, fmt.Errorf("packet-in: truncated OXM header in match")
		}
		h := binary.BigEndian.Uint32(oxms)
		n := 4 + int(h&0xff)
		if n > len(oxms) || (h>>16 == oxmClassExp && n < 8) {
			return pi, fmt.Errorf("packet-in: OXM %#08x overruns the match", h)
		}
		if h == oxmInPort {
			pi.InPort = binary.BigEndian.Uint32(oxms[4:])
		}
		oxms = oxms[n:]
	}
	pi.Data = m[padded+2:]
	if int(pi.TotalLen) < len(pi.Data) {
		return pi, fmt.Errorf("packet-in: total_len %d below the %d bytes of data", pi.TotalLen, len(pi.Data))
	}
	return pi, nil
}

// encodePacketOut builds an OpenFlow 1.5 packet-out: no buffer, in_port in
// the match, one output action, frame as data.
func encodePacketOut(xid, inPort, outPort uint32, frame []byte) ([]byte, error) {
	// ofp_action_output.
	a := []byte{0, 0, 0, 16}
	a = binary.BigEndian.AppendUint32(a, outPort)
	maxLen := uint16(0)
	if outPort == ofrules.PortController {
		maxLen = 0xffff // OFPCML_NO_BUFFER: the whole packet
	}
	a = binary.BigEndian.AppendUint16(a, maxLen)
	a = append(a, 0, 0, 0, 0, 0, 0)
	return encodePacketOutActions(xid, inPort, a, frame)
}

// encodePacketOutActions is a packet-out with encoded actions.
func encodePacketOutActions(xid, inPort uint32, actions, frame []byte) ([]byte, error) {
	if len(frame) < minFrame {
		return nil, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	if len(frame) > maxPacketOutData {
		return nil, fmt.Errorf("frame of %d bytes is above the %d a packet-out can carry", len(frame), maxPacketOutData)
	}
	b := header(typePacketOut, headerLen+8+16+len(actions)+len(frame), xid)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	b = binary.BigEndian.AppendUint16(b, uint16(len(actions)))
	b = append(b, 0, 0)
	// ofp_match: type OXM, length 12 (header + in_port), padded to 16.
	b = append(b, 0, matchTypeOXM, 0, 12)
	b = binary.BigEndian.AppendUint32(b, oxmInPort)
	b = binary.BigEndian.AppendUint32(b, inPort)
	b = append(b, 0, 0, 0, 0)
	b = append(b, actions...)
	return append(b, frame...), nil
}

// PacketOut sends frame out of outPort as if it had arrived on inPort (0:
// from the controller, OFPP_CONTROLLER). OVS does not send a packet back
// out of the port it came in on: use ofrules.PortInPort as outPort for
// that. PacketOut sends a barrier after the packet-out and returns once
// the switch has processed it, with the switch's error as *OFError (e.g.
// OFPBRC_BAD_PORT, OFPBAC_BAD_OUT_PORT) if it rejected the packet-out.
// Packet-ins caused by the packet may be delivered before or after it
// returns.
func (s *Switch) PacketOut(ctx context.Context, inPort, outPort uint32, frame []byte) error {
	xid := s.allocXids(2)
	msg, err := encodePacketOut(xid, portOrController(inPort), outPort, frame)
	if err != nil {
		return fmt.Errorf("packet-out: %w", err)
	}
	return s.sendPacketOut(ctx, xid, msg)
}

// PacketOutActions runs frame through acts (e.g. loads and a resubmit into
// the pipeline) as if it had arrived on inPort (0: the controller); like
// PacketOut it returns once the switch has processed it.
func (s *Switch) PacketOutActions(ctx context.Context, inPort uint32, acts []ofrules.Action, frame []byte) error {
	ab, err := ofrules.EncodeActions(acts)
	if err != nil {
		return fmt.Errorf("packet-out: %w", err)
	}
	xid := s.allocXids(2)
	msg, err := encodePacketOutActions(xid, portOrController(inPort), ab, frame)
	if err != nil {
		return fmt.Errorf("packet-out: %w", err)
	}
	return s.sendPacketOut(ctx, xid, msg)
}

func portOrController(p uint32) uint32 {
	if p == 0 {
		return ofrules.PortController
	}
	return p
}

// sendPacketOut writes a packet-out (xid) and a barrier (xid+1) and waits
// for the barrier's reply or the packet-out's error.
func (s *Switch) sendPacketOut(ctx context.Context, xid uint32, msg []byte) error {
	// One waiter for both xids: an error for the packet-out arrives before
	// the barrier reply (one ordered reader).
	w := s.registerN(xid, 2, 2)
	defer s.unregisterN(xid, 2, w)
	if err := s.write(ctx, msg, message(typeBarrierReq, xid+1, nil)); err != nil {
		return fmt.Errorf("packet-out: %w", err)
	}
	for {
		f, err := s.wait(ctx, w)
		if err != nil {
			return fmt.Errorf("packet-out: %w", err)
		}
		switch {
		case f.typ() == typeError && f.xid() == xid:
			return fmt.Errorf("packet-out: %w", parseOFError(f))
		case f.typ() == typeError:
			return fmt.Errorf("packet-out: barrier: %w", parseOFError(f))
		case f.typ() == typeBarrierReply && f.xid() == xid+1:
			return nil
		default:
			s.log.WithFields(logrus.Fields{"type": f.typ(), "xid": f.xid()}).Debug("unexpected reply to packet-out")
		}
	}
}

// PacketInsDropped is how many packet-ins from this switch were dropped
// because the handler did not keep up (or could not be decoded).
func (s *Switch) PacketInsDropped() uint64 { return s.pinDropped.Load() }

// enqueuePacketIn is called by the reader: it never blocks.
func (s *Switch) enqueuePacketIn(f frame) {
	if s.pins == nil {
		s.log.Debug("ignoring packet-in: the handler does not take them")
		return
	}
	pi, err := decodePacketIn(f)
	if err != nil {
		s.pinDropped.Add(1)
		s.log.WithError(err).Warn("dropping malformed packet-in")
		return
	}
	select {
	case s.pins <- pi:
	default:
		// Log the 1st, 2nd, 4th, 8th... drop, not every one.
		if n := s.pinDropped.Add(1); bits.OnesCount64(n) == 1 {
			s.log.WithField("dropped", n).Warn("packet-in queue full, dropping packet-ins")
		}
	}
}

// deliverPacketIns calls ph for queued packet-ins until the connection
// ends; the returned channel is closed when it has stopped (no call is in
// progress any more).
func (s *Switch) deliverPacketIns(ph PacketInHandler) <-chan struct{} {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-s.done:
				return
			case pi := <-s.pins:
				ph.PacketIn(s, pi)
			}
		}
	}()
	return stopped
}
