package pipelines

import (
	"net"
	"net/netip"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// Internet gateway. A route to an internet gateway sends a packet to
// ToGateway (41) on the sending host, which finds the public IP of its
// source and tunnels it to the gateway host serving that address. Gateway
// hosts (an uplink in their config) translate statelessly, 1:1:
//
//	tunnel → DestLookup (no NIC: the VPC's outbound) → GwSnat (nw_src
//	private → public) → GwDnat (hairpin when the destination is a public
//	IP too) → GwOut (router MACs, out the uplink)
//	uplink → GwUplink (ARP; IP) → GwDnat (nw_dst public → private, into
//	the VPC) → DestLookup → the NIC's host, whose ingress groups decide
//
// Security groups and conntrack stay at the VMs' hosts; the gateway keeps
// no state, so any gateway host could translate any address.

// gatewayControllerMaxLen is how much of an ARP frame reaches the
// controller; icmpControllerMaxLen asks for whole ICMP errors (they go back
// into the pipeline).
const (
	gatewayControllerMaxLen = 128
	icmpControllerMaxLen    = 0xffe5
)

// reachablePublicIPs are the public IPs of v that carry traffic.
func (c *compiler) reachablePublicIPs(v *model.VPCInfo) []*model.PublicIPInfo {
	var out []*model.PublicIPInfo
	for _, pi := range c.snap.Net.PublicIPsOf(v) {
		if pi.Reachable {
			out = append(out, pi)
		}
	}
	return out
}

// allReachable is every public IP that carries traffic, by name.
func (c *compiler) allReachable() []*model.PublicIPInfo {
	var out []*model.PublicIPInfo
	for _, name := range c.snap.Net.PublicIPNames {
		if pi := c.snap.Net.PublicIPs[name]; pi.Reachable {
			out = append(out, pi)
		}
	}
	return out
}

// gatewayVPCs are the VPCs whose outbound packets a gateway host
// translates: those with a public IP that carries traffic.
func (c *compiler) gatewayVPCs() []*model.VPCInfo {
	if c.host.Uplink == nil {
		return nil
	}
	seen := map[*model.VPCInfo]bool{}
	var out []*model.VPCInfo
	for _, name := range c.snap.Net.VPCNames {
		v := c.snap.Net.VPCs[name]
		if len(c.reachablePublicIPs(v)) > 0 && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// toGateway (table 41): an outbound packet routed to the internet gateway
// goes to the gateway host serving its source's public IP; a source
// without one is dropped (a private address never leaves, as in AWS).
func (c *compiler) toGateway() {
	any := false
	for _, v := range c.vpcs {
		if v.Gateway == nil {
			continue
		}
		any = true
		for _, pi := range c.reachablePublicIPs(v) {
			m := ofrules.NewMatch(vpcMatch(v), ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Src, ipVal(pi.PrivateIP)))
			ck := cookie(CatGateway, ipVal(pi.Address))
			gw := c.snap.Serving(pi)
			if gw.Name == c.host.Name {
				c.add(TableToGateway, 100, ck, m, gotoT(TableGwSnat))
				continue
			}
			if _, ok := c.tunnelTo(gw); !ok {
				continue
			}
			c.add(TableToGateway, 100, ck, m,
				ofrules.SetField{Field: ofrules.TunDst, Value: ipVal(gw.UnderlayIP)}, flagSet(FlagRemote), gotoT(TableOutput))
		}
	}
	if any {
		c.dropMiss(TableToGateway)
	}
}

// gateway compiles a gateway host's uplink and NAT tables.
func (c *compiler) gateway() {
	u := c.host.Uplink
	if u == nil {
		return
	}
	ck := cookie(CatGateway, 0)
	if c.st.UplinkPort != 0 {
		c.add(TableClassifier, 100, ck, ofrules.NewMatch(ofrules.Exact(ofrules.InPort, uint64(c.st.UplinkPort))),
			flagSet(FlagFromUplink), gotoT(TableGwUplink))
	}
	reach := c.allReachable()

	// GwUplink: answer ARP for the gateway's own address and the public
	// IPs it serves, pass the router's ARP replies to the controller
	// (which resolves its MAC), take IP in.
	c.uplinkARPReply(u, u.IP.Addr(), ck)
	for _, pi := range reach {
		if c.snap.Serving(pi) == c.host {
			c.uplinkARPReply(u, pi.Address, cookie(CatGateway, ipVal(pi.Address)))
		}
	}
	c.add(TableGwUplink, 90, ck,
		ofrules.NewMatch(ethType(ofrules.EthTypeARP), ofrules.Exact(ofrules.ArpOp, 2), ofrules.Exact(ofrules.ArpSpa, ipVal(u.NextHop))),
		ofrules.Controller{MaxLen: gatewayControllerMaxLen})
	// ICMP errors quote the packet they answer: the controller translates
	// the quoted address and puts them back (flagged translated).
	c.icmpErrorsToController(TableGwUplink, 70, ck)
	c.add(TableGwUplink, 50, ck, ofrules.NewMatch(ethType(ofrules.EthTypeIPv4)), gotoT(TableGwDnat))
	c.dropMiss(TableGwUplink)

	// GwDnat: public destination → the NIC's private address, into its VPC
	// as if routed there. No match: from outside, drop; from inside (after
	// GwSnat), out to the internet.
	for _, pi := range reach {
		v := pi.NIC.Subnet.VPC
		c.add(TableGwDnat, 100, cookie(CatGateway, ipVal(pi.Address)),
			ofrules.NewMatch(ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Dst, ipVal(pi.Address))),
			ofrules.SetField{Field: ofrules.IPv4Dst, Value: ipVal(pi.PrivateIP)},
			ofrules.SetField{Field: ofrules.Metadata, Value: uint64(v.VNI)},
			ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(v.RouterMAC)},
			// Delivered like a locally routed packet, wherever the NIC is.
			ofrules.SetField{Field: ofrules.Reg(RegFlags.Reg), Value: 0, Mask: FlagFromTunnel},
			// Back to an earlier table: goto_table only goes forward.
			ofrules.Resubmit{Table: TableDestLookup})
	}
	c.add(TableGwDnat, 10, ck, ofrules.NewMatch(flagMatch(FlagFromUplink, FlagFromUplink)))
	c.add(TableGwDnat, 0, ck, nil, gotoT(TableGwOut))

	// GwSnat: a VPC's outbound packet leaves from its public address.
	for _, pi := range reach {
		c.add(TableGwSnat, 100, cookie(CatGateway, ipVal(pi.Address)),
			ofrules.NewMatch(vpcMatch(pi.NIC.Subnet.VPC), ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Src, ipVal(pi.PrivateIP))),
			ofrules.SetField{Field: ofrules.IPv4Src, Value: ipVal(pi.Address)},
			ofrules.Resubmit{Table: TableGwDnat})
	}
	c.dropMiss(TableGwSnat)

	// GwOut: to the router, once its MAC is known; ICMP errors first by
	// way of the controller (see GwUplink).
	c.icmpErrorsToController(TableGwOut, 110, ck)
	if mac := c.nextHopMAC(); mac != nil && c.st.UplinkPort != 0 {
		c.add(TableGwOut, 100, ck, ofrules.NewMatch(ethType(ofrules.EthTypeIPv4)),
			ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(u.MAC)},
			ofrules.SetField{Field: ofrules.EthDst, Value: macVal(mac)},
			ofrules.Output{Port: c.st.UplinkPort})
	}
	c.dropMiss(TableGwOut)
}

// gatewayOutbound (in DestLookup, table 45): on a gateway host a tunnelled
// packet of a translated VPC that is for none of its NICs is outbound
// traffic for the internet; one for the VPC's own range that found no NIC
// is dropped (it must not leave with a private destination).
func (c *compiler) gatewayOutbound() {
	for _, v := range c.gatewayVPCs() {
		ck := cookie(CatGateway, uint64(v.VNI))
		base := []ofrules.MatchField{vpcMatch(v), flagMatch(FlagFromTunnel, FlagFromTunnel), ethType(ofrules.EthTypeIPv4)}
		c.add(TableDestLookup, 20, ck, ofrules.NewMatch(append(base, prefixMatch(ofrules.IPv4Dst, v.CIDR))...))
		c.add(TableDestLookup, 10, ck, ofrules.NewMatch(base...), gotoT(TableGwSnat))
	}
}

// gatewayNICs are NICs a gateway host delivers to (public IPs' NICs).
func (c *compiler) gatewayNICs() []*model.NICInfo {
	if c.host.Uplink == nil {
		return nil
	}
	var out []*model.NICInfo
	for _, pi := range c.allReachable() {
		out = append(out, pi.NIC)
	}
	return out
}

func (c *compiler) nextHopMAC() net.HardwareAddr {
	if m := c.host.Uplink.NextHopMAC; m != nil {
		return m
	}
	return c.st.NextHopMAC
}

func (c *compiler) uplinkARPReply(u *model.UplinkInfo, ip netip.Addr, ck uint64) {
	c.add(TableGwUplink, 100, ck,
		ofrules.NewMatch(ethType(ofrules.EthTypeARP), ofrules.Exact(ofrules.ArpOp, 1), ofrules.Exact(ofrules.ArpTpa, ipVal(ip))),
		arpReplyActions(ip, u.MAC)...)
}

// icmpErrorTypes are the ICMP errors that quote the packet they answer
// (destination unreachable, time exceeded, parameter problem).
var icmpErrorTypes = []uint64{3, 11, 12}

// icmpErrorsToController sends untranslated ICMP errors crossing the
// gateway to the controller.
func (c *compiler) icmpErrorsToController(table uint8, prio uint16, ck uint64) {
	for _, t := range icmpErrorTypes {
		c.add(table, prio, ck, ofrules.NewMatch(ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPProto, 1),
			ofrules.Exact(ofrules.ICMPType, t), flagMatch(0, FlagTranslated)),
			ofrules.Controller{MaxLen: icmpControllerMaxLen})
	}
}
