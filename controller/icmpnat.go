package controller

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/ofconn"
	"github.com/openvpc/openvpc/pipelines"
)

// ICMP errors across a gateway: the stateless 1:1 NAT rewrites the outer
// header only, but an error quotes the packet it answers, whose address is
// then the wrong one for the receiver (its conntrack, or the internet host's
// socket, would not recognise it). Gateway hosts send ICMP errors to the
// controller; it rewrites the quoted address — public → private inbound,
// private → public outbound — and puts the packet back where it left off,
// flagged translated. Rate-limited per host like the path-MTU replies.

// packetOutActions is implemented by switches that run packet-outs through
// actions (the real OpenFlow connection).
type packetOutActions interface {
	PacketOutActions(ctx context.Context, inPort uint32, acts []ofrules.Action, frame []byte) error
}

// icmpAcrossGateway translates an ICMP error that reached the controller
// from GwUplink (inbound) or GwOut (outbound, source already public).
func (c *Controller) icmpAcrossGateway(sw Switch, pi ofconn.PacketIn, inbound bool) {
	c.mu.Lock()
	h := c.hostByDPIDLocked(sw.DPID())
	n := c.net
	if h == nil || n == nil || h.info.Uplink == nil || !h.pmtu.allow(time.Now()) {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if int(pi.TotalLen) > len(pi.Data) {
		return // truncated: it cannot go back whole
	}
	frame := append([]byte(nil), pi.Data...)
	var ok bool
	var table uint8
	flags := pipelines.FlagTranslated
	if inbound {
		ok, table = translateQuoted(n, frame, true), pipelines.TableGwUplink
		flags |= pipelines.FlagFromUplink
	} else {
		ok, table = translateQuoted(n, frame, false), pipelines.TableGwOut
	}
	po, can := sw.(packetOutActions)
	if !ok || !can {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	acts := []ofrules.Action{
		ofrules.SetField{Field: ofrules.Reg(pipelines.RegFlags.Reg), Value: flags, Mask: flags},
		ofrules.Resubmit{Table: table},
	}
	if err := po.PacketOutActions(ctx, pi.InPort, acts, frame); err != nil {
		c.log.WithError(err).WithField("host", h.name).Debug("ICMP error across the gateway")
	}
}

// translateQuoted rewrites, in place, the address of a public IP quoted in
// an Ethernet/IPv4 ICMP error: inbound (to a public IP) the quoted source
// becomes the private address; outbound (from a public IP, after the
// gateway's SNAT) the quoted destination becomes the public address. It
// fixes the checksums and reports whether it changed anything.
func translateQuoted(n *model.Net, f []byte, inbound bool) bool {
	if len(f) < 14+20+8+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || ip[9] != 1 || len(ip) < ihl+8+20 {
		return false
	}
	icmp := ip[ihl:]
	inner := icmp[8:]
	if inner[0]>>4 != 4 {
		return false
	}
	outer := func(off int) netip.Addr { return netip.AddrFrom4([4]byte(ip[off : off+4])) }
	var pub *model.PublicIPInfo
	for _, name := range n.PublicIPNames {
		if p := n.PublicIPs[name]; p.Reachable && (inbound && p.Address == outer(16) || !inbound && p.Address == outer(12)) {
			pub = p
		}
	}
	if pub == nil {
		return false
	}
	off, from, to := 12, pub.Address, pub.PrivateIP // inbound: quoted source
	if !inbound {
		off, from, to = 16, pub.PrivateIP, pub.Address // outbound: quoted destination
	}
	if netip.AddrFrom4([4]byte(inner[off:off+4])) != from {
		return false
	}
	t := to.As4()
	copy(inner[off:off+4], t[:])
	innerIHL := int(inner[0]&0x0f) * 4
	if innerIHL >= 20 && len(inner) >= innerIHL {
		inner[10], inner[11] = 0, 0
		binary.BigEndian.PutUint16(inner[10:], checksum(inner[:innerIHL]))
	}
	end := int(binary.BigEndian.Uint16(ip[2:])) - ihl
	if end > len(icmp) || end < 8 {
		return false
	}
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp[:end]))
	return true
}
