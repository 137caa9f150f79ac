package controller

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules/ofconn"
	"github.com/openvpc/openvpc/pipelines"
)

// Gateway hosts send outbound packets to their uplink's router, whose MAC
// the controller resolves by ARP (unless the host's config pins it): it
// asks through the uplink with a packet-out, every second until answered
// and every refresh interval after, and the switch hands the router's ARP
// replies back as packet-ins (table GwUplink). A new MAC recompiles the
// host; until the first answer outbound packets are dropped.

const (
	arpRetry   = time.Second
	arpRefresh = 30 * time.Second
)

// neighbour is what the controller knows of a gateway host's router.
type neighbour struct {
	ip      netip.Addr // the next hop the MAC belongs to
	mac     net.HardwareAddr
	learned time.Time
	asked   time.Time
}

// packetOuter is implemented by switches that can send packets (the real
// OpenFlow connection; test fakes need not).
type packetOuter interface {
	PacketOut(ctx context.Context, inPort, outPort uint32, frame []byte) error
}

// resolveLoop asks every gateway host's router for its MAC when due.
func (c *Controller) resolveLoop(ctx context.Context) {
	t := time.NewTicker(arpRetry / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.askRouters(ctx)
		}
	}
}

type arpAsk struct {
	h     *host
	po    packetOuter
	port  uint32
	frame []byte
}

func (c *Controller) askRouters(ctx context.Context) {
	now := time.Now()
	var asks []arpAsk
	c.mu.Lock()
	asks = c.announceLocked()
	for _, h := range c.hosts {
		u := h.info.Uplink
		if u == nil || u.NextHopMAC != nil || h.sw == nil || h.bindings == nil || h.bindings.UplinkPort == 0 {
			continue
		}
		po, ok := h.sw.(packetOuter)
		if !ok {
			continue
		}
		nb := &h.nextHop
		if nb.ip != u.NextHop {
			*nb = neighbour{ip: u.NextHop}
		}
		due := arpRetry
		if nb.mac != nil {
			due = arpRefresh
		}
		if now.Sub(nb.asked) < due || (nb.mac != nil && now.Sub(nb.learned) < due) {
			continue
		}
		nb.asked = now
		asks = append(asks, arpAsk{h: h, po: po, port: h.bindings.UplinkPort, frame: arpRequest(u.MAC, u.IP.Addr(), u.NextHop)})
	}
	c.mu.Unlock()
	for _, a := range asks {
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.po.PacketOut(octx, 0, a.port, a.frame)
		cancel()
		if err != nil {
			c.log.WithError(err).WithField("host", a.h.name).Warn("ARP request to the uplink router")
		}
	}
}

// announceLocked returns gratuitous ARPs for the public IPs each connected
// gateway host has started to serve (at its first connect, or taking over
// from a gateway host that went down), so the outside router sends their
// traffic to it at once instead of when its ARP entry expires.
func (c *Controller) announceLocked() []arpAsk {
	if c.net == nil {
		return nil
	}
	snap := c.snapshotLocked()
	var out []arpAsk
	for _, h := range c.hosts {
		u := h.info.Uplink
		if u == nil || h.sw == nil || h.bindings == nil || h.bindings.UplinkPort == 0 {
			h.announced = nil
			continue
		}
		po, ok := h.sw.(packetOuter)
		if !ok {
			continue
		}
		served := map[netip.Addr]bool{}
		for _, name := range c.net.PublicIPNames {
			pi := c.net.PublicIPs[name]
			if gw := snap.Serving(pi); !pi.Reachable || gw == nil || gw.Name != h.name {
				continue
			}
			served[pi.Address] = true
			if !h.announced[pi.Address] {
				out = append(out, arpAsk{h: h, po: po, port: h.bindings.UplinkPort, frame: arpRequest(u.MAC, pi.Address, pi.Address)})
			}
		}
		h.announced = served
	}
	return out
}

// packetIn dispatches packet-ins by the table that sent them.
func (c *Controller) packetIn(sw Switch, pi ofconn.PacketIn) {
	isIP := len(pi.Data) >= 14 && pi.Data[12] == 0x08 && pi.Data[13] == 0x00
	switch {
	case pi.TableID == pipelines.TableGwUplink && isIP:
		c.icmpAcrossGateway(sw, pi, true)
	case pi.TableID == pipelines.TableGwUplink:
		c.routerARP(sw, pi)
	case pi.TableID == pipelines.TableGwOut:
		c.icmpAcrossGateway(sw, pi, false)
	case pi.TableID == pipelines.TableTunnelOut:
		c.tooBig(sw, pi)
	}
}

// routerARP takes a router's ARP reply from a gateway host's uplink.
func (c *Controller) routerARP(sw Switch, pi ofconn.PacketIn) {
	spa, sha, ok := parseARPReply(pi.Data)
	if !ok {
		return
	}
	c.mu.Lock()
	h := c.hostByDPIDLocked(sw.DPID())
	if h == nil || h.info.Uplink == nil || h.info.Uplink.NextHop != spa {
		c.mu.Unlock()
		return
	}
	nb := &h.nextHop
	changed := !bytes.Equal(nb.mac, sha) || nb.ip != spa
	*nb = neighbour{ip: spa, mac: sha, learned: time.Now(), asked: nb.asked}
	c.mu.Unlock()
	if changed {
		c.log.WithField("host", h.name).WithField("router", spa.String()+" at "+sha.String()).Info("uplink router resolved")
		kick(h)
	}
}

// nextHopMACLocked is the router MAC learned for h (nil if unknown or
// learned for another next hop).
func nextHopMACLocked(h *host) net.HardwareAddr {
	u := h.info.Uplink
	if u == nil || h.nextHop.ip != u.NextHop {
		return nil
	}
	return h.nextHop.mac
}

// arpRequest builds "who has target? tell ip (mac)", broadcast, padded to
// the Ethernet minimum.
func arpRequest(mac net.HardwareAddr, ip, target netip.Addr) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	binary.BigEndian.PutUint16(f[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], 1) // request
	copy(f[22:28], mac)
	s, t := ip.As4(), target.As4()
	copy(f[28:32], s[:])
	copy(f[38:42], t[:])
	return f
}

// parseARPReply returns the sender of an Ethernet ARP reply.
func parseARPReply(f []byte) (netip.Addr, net.HardwareAddr, bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0806 || binary.BigEndian.Uint16(f[20:]) != 2 ||
		binary.BigEndian.Uint16(f[16:]) != 0x0800 || f[18] != 6 || f[19] != 4 {
		return netip.Addr{}, nil, false
	}
	mac := net.HardwareAddr(append([]byte(nil), f[22:28]...))
	if mac[0]&1 == 1 {
		return netip.Addr{}, nil, false
	}
	return netip.AddrFrom4([4]byte(f[28:32])), mac, true
}

// GatewayStatus is a gateway host's uplink, for `openvpc show`.
type GatewayStatus struct {
	Interface  string `json:"interface"`
	UplinkPort uint32 `json:"uplink_port"`
	IP         string `json:"ip"`
	NextHop    string `json:"next_hop"`
	// NextHopMAC is the router's MAC (pinned or resolved); empty while
	// unresolved, when outbound packets are dropped.
	NextHopMAC string `json:"next_hop_mac,omitempty"`
	Pinned     bool   `json:"pinned,omitempty"`
	// PublicIPs the host answers for on the uplink (its own, and those of
	// gateway hosts that are down).
	PublicIPs []string `json:"public_ips,omitempty"`
}

func gatewayStatusLocked(n *model.Net, snap *pipelines.Snapshot, h *host) *GatewayStatus {
	u := h.info.Uplink
	if u == nil {
		return nil
	}
	gs := &GatewayStatus{Interface: u.Interface, IP: u.IP.String(), NextHop: u.NextHop.String()}
	if h.bindings != nil {
		gs.UplinkPort = h.bindings.UplinkPort
	}
	if u.NextHopMAC != nil {
		gs.NextHopMAC, gs.Pinned = u.NextHopMAC.String(), true
	} else if m := nextHopMACLocked(h); m != nil {
		gs.NextHopMAC = m.String()
	}
	if n != nil {
		for _, name := range n.PublicIPNames {
			if pi := n.PublicIPs[name]; pi.Reachable && snap.Serving(pi) == h.info {
				gs.PublicIPs = append(gs.PublicIPs, pi.Address.String())
			}
		}
	}
	return gs
}

// uplinkIface is a host's uplink interface ("" for none): a change needs
// a new host setup session.
func uplinkIface(h *model.HostInfo) string {
	if h.Uplink == nil {
		return ""
	}
	return h.Uplink.Interface
}
