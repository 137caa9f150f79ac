package controller

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules/ofconn"
)

// Path MTU discovery across tunnels: a frame too big for the tunnel it is
// to leave by reaches the controller (table TunnelOut), which answers its
// sender, as a router would, with ICMP "fragmentation needed" carrying the
// largest packet the tunnel takes — from the VM's subnet gateway to a VM,
// or from the gateway's uplink address to a host outside. Frames without
// DF are dropped: OVS cannot fragment, and a VM whose MTU is set right
// (`get nic` shows it) never sends them. At most pmtuBurst replies per
// host per second, so a flood costs the controller little.
const pmtuBurst = 100

// pmtuLimiter is a host's token bucket for ICMP replies.
type pmtuLimiter struct {
	tokens float64
	last   time.Time
}

func (l *pmtuLimiter) allow(now time.Time) bool {
	l.tokens = min(pmtuBurst, l.tokens+now.Sub(l.last).Seconds()*pmtuBurst)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// tooBig answers a frame that was too big for a tunnel.
func (c *Controller) tooBig(sw Switch, pi ofconn.PacketIn) {
	c.mu.Lock()
	h := c.hostByDPIDLocked(sw.DPID())
	n := c.net
	if h == nil || n == nil || h.bindings == nil {
		c.mu.Unlock()
		return
	}
	if !h.pmtu.allow(time.Now()) {
		c.mu.Unlock()
		return
	}
	var srcMAC net.HardwareAddr
	var srcIP netip.Addr
	if u := h.info.Uplink; u != nil && pi.InPort == h.bindings.UplinkPort {
		srcMAC, srcIP = u.MAC, u.IP.Addr()
	} else if nic := nicOnPort(n, h.bindings.Ports, pi.InPort); nic != nil {
		srcMAC, srcIP = nic.Subnet.VPC.RouterMAC, nic.Subnet.Gateway
	}
	// The host's VM MTU: the smallest over its tunnels (the packet-in does
	// not say which peer it was for), so a sender may end a little below
	// what one path would take, never above.
	mtu := h.info.VMMTU
	c.mu.Unlock()
	po, ok := sw.(packetOuter)
	if srcMAC == nil || mtu == 0 || !ok {
		return
	}
	reply := fragNeeded(pi.Data, srcMAC, srcIP, mtu)
	if reply == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := po.PacketOut(ctx, 0, pi.InPort, reply); err != nil {
		c.log.WithError(err).WithField("host", h.name).Debug("ICMP fragmentation needed")
	}
}

func nicOnPort(n *model.Net, ports map[string]uint32, port uint32) *model.NICInfo {
	for name, p := range ports {
		if p == port {
			return n.NICs[name]
		}
	}
	return nil
}

// fragNeeded builds the ICMP "fragmentation needed" (type 3 code 4) reply
// to an Ethernet/IPv4 frame with DF set, from srcMAC/srcIP, announcing mtu;
// nil for anything else (no DF, not IPv4, an ICMP error itself).
func fragNeeded(frame []byte, srcMAC net.HardwareAddr, srcIP netip.Addr, mtu int) []byte {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return nil
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl {
		return nil
	}
	if binary.BigEndian.Uint16(ip[6:])&0x4000 == 0 { // DF
		return nil
	}
	if ip[9] == 1 && len(ip) > ihl && ip[ihl] != 0 && ip[ihl] != 8 {
		return nil // never an ICMP error about an ICMP error
	}
	quote := ip[:min(len(ip), ihl+8)]
	out := make([]byte, 14+20+8+len(quote))
	copy(out[0:6], frame[6:12])
	copy(out[6:12], srcMAC)
	binary.BigEndian.PutUint16(out[12:], 0x0800)
	o := out[14:]
	o[0] = 0x45
	binary.BigEndian.PutUint16(o[2:], uint16(20+8+len(quote)))
	o[8] = 64 // TTL
	o[9] = 1  // ICMP
	s := srcIP.As4()
	copy(o[12:16], s[:])
	copy(o[16:20], ip[12:16]) // back to the sender
	binary.BigEndian.PutUint16(o[10:], checksum(o[:20]))
	icmp := o[20:]
	icmp[0], icmp[1] = 3, 4
	binary.BigEndian.PutUint16(icmp[6:], uint16(mtu))
	copy(icmp[8:], quote)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return out
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
