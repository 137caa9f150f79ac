package pipelines

import (
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// l3Route (table 40): the implied router, one routing table per route
// table used by a local subnet (reg4, loaded by the classifier). A packet
// sent to the router MAC is routed by longest prefix (priority 200 + prefix
// length): the local route (the VPC's CIDR) goes on to the destination
// lookup with the router's MAC as source; a static route drops
// (blackhole) or hands the packet to its appliance NIC. TTL is never
// decremented. A packet sent without the router (on-link) must stay in the
// sender's subnet.
func (c *compiler) l3Route() {
	seen := map[*model.RouteTableInfo]bool{}
	for _, s := range c.subnets {
		t := s.RouteTable
		if seen[t] {
			continue
		}
		seen[t] = true
		v := t.VPC
		ck := cookie(CatRouter, uint64(t.Key))
		routed := func(dst ofrules.MatchField) ofrules.Match {
			return ofrules.NewMatch(RegRouteTable.Match(uint64(t.Key)), ofrules.Exact(ofrules.EthDst, macVal(v.RouterMAC)),
				ethType(ofrules.EthTypeIPv4), dst)
		}
		c.add(TableL3Route, uint16(200+v.CIDR.Bits()), ck, routed(prefixMatch(ofrules.IPv4Dst, v.CIDR)),
			ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(v.RouterMAC)},
			gotoT(TableDestLookup))
		for _, r := range t.Routes {
			dst := prefixMatch(ofrules.IPv4Dst, r.Destination)
			if r.Destination.Bits() == 0 {
				// 0.0.0.0/0: no address match at all (a zero mask would
				// read as an exact match on 0.0.0.0).
				dst = ethType(ofrules.EthTypeIPv4)
			}
			c.add(TableL3Route, uint16(200+r.Destination.Bits()), ck, routed(dst), c.routeTarget(r)...)
		}
	}
	for _, s := range c.subnets {
		c.add(TableL3Route, uint16(100+s.CIDR.Bits()), cookie(CatRouter, uint64(s.VPC.VNI)),
			ofrules.NewMatch(RegSrcSubnet.Match(uint64(s.Key)), ethType(ofrules.EthTypeIPv4), prefixMatch(ofrules.IPv4Dst, s.CIDR)),
			gotoT(TableDestLookup))
	}
	c.dropMiss(TableL3Route)
}

// routeTarget returns the actions of a static route: none (drop) for a
// blackhole, a target NIC with its source/destination check on (it would
// not accept the packets), or one that is nowhere; else delivery to the
// NIC, like the destination lookup does for its own address.
func (c *compiler) routeTarget(r *model.RouteInfo) []ofrules.Action {
	if r.State == model.RouteActive && r.Peer != nil {
		// Peering: the packet goes on in the peer VPC, whose destination
		// lookup this host carries (see peerVPCs), as if routed there.
		return []ofrules.Action{
			ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(r.Peer.RouterMAC)},
			ofrules.SetField{Field: ofrules.Metadata, Value: uint64(r.Peer.VNI)},
			gotoT(TableDestLookup),
		}
	}
	if r.State == model.RouteActive && r.Gateway != nil {
		return []ofrules.Action{gotoT(TableToGateway)}
	}
	nic := r.NIC
	if r.State != model.RouteActive || nic == nil || nic.SourceDestCheck {
		return nil
	}
	acts := []ofrules.Action{
		ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(nic.Subnet.VPC.RouterMAC)},
		ofrules.SetField{Field: ofrules.EthDst, Value: macVal(nic.MAC)},
		RegDstPort.Load(uint64(nic.PortKey)),
		flagSet(FlagFwdIn),
	}
	deliver, _ := c.deliver(nic)
	if deliver == nil {
		return nil
	}
	return append(acts, deliver...)
}

// deliver returns the actions that send a packet to a NIC (its port key in
// reg2): into the ingress stages here, or through the tunnel to its host
// (remote). Nil when it is nowhere to be reached.
func (c *compiler) deliver(nic *model.NICInfo) (acts []ofrules.Action, remote bool) {
	loc, ok := c.snap.Locate(nic)
	switch {
	case !ok:
		return nil, false
	case loc.Host == c.host.Name:
		if loc.OFPort == 0 {
			return nil, false
		}
		return []ofrules.Action{RegZone.Load(uint64(c.zones[nic.Name])), gotoT(TableIngressCt)}, false
	}
	h := c.snap.Net.Hosts[loc.Host]
	if h == nil {
		return nil, true
	}
	if _, ok := c.tunnelTo(h); !ok {
		return nil, true // no tunnel to its host (reported with the hosts' problems)
	}
	return []ofrules.Action{ofrules.SetField{Field: ofrules.TunDst, Value: ipVal(h.UnderlayIP)}, flagSet(FlagRemote), gotoT(TableOutput)}, true
}
