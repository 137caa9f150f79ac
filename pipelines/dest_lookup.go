package pipelines

import (
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// destLookup (table 45): (VPC, destination IP) → destination MAC and port
// key; a local destination continues to the ingress stages, a remote one
// gets its host's underlay address as tunnel destination and goes straight
// to output (its ingress stages run on the destination host). Packets that
// came from a tunnel are delivered only to local NICs: no hairpin.
func (c *compiler) destLookup() {
	done := map[*model.NICInfo]bool{}
	dest := func(nic *model.NICInfo) {
		if done[nic] {
			return
		}
		done[nic] = true
		deliver, remote := c.deliver(nic)
		if deliver == nil {
			return
		}
		ck := cookie(CatDest, uint64(nic.PortKey))
		for _, ip := range nic.IPs() {
			m := []ofrules.MatchField{vpcMatch(nic.Subnet.VPC), ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Dst, ipVal(ip))}
			if remote {
				m = append(m, flagMatch(0, FlagFromTunnel))
			}
			acts := append([]ofrules.Action{
				ofrules.SetField{Field: ofrules.EthDst, Value: macVal(nic.MAC)},
				RegDstPort.Load(uint64(nic.PortKey)),
			}, deliver...)
			c.add(TableDestLookup, 100, ck, ofrules.NewMatch(m...), acts...)
		}
	}
	for _, v := range c.lookupVPCs() {
		for _, nic := range v.NICs {
			dest(nic)
		}
	}
	// A gateway host delivers inbound traffic to the public IPs' NICs.
	for _, nic := range c.gatewayNICs() {
		dest(nic)
	}
	c.gatewayOutbound()
	// An appliance (source/destination check off) on this host also takes
	// tunnelled packets routed to it: the sending host addressed them to
	// its MAC, whatever their destination IP (which may be a NIC of this
	// host: the MAC decides). They are flagged as routed to an appliance;
	// packets for its own addresses are not.
	for _, nic := range c.local {
		if nic.SourceDestCheck {
			continue
		}
		ck := cookie(CatDest, uint64(nic.PortKey))
		byMAC := []ofrules.MatchField{vpcMatch(nic.Subnet.VPC), flagMatch(FlagFromTunnel, FlagFromTunnel), ethType(ofrules.EthTypeIPv4),
			ofrules.Exact(ofrules.EthDst, macVal(nic.MAC))}
		to := []ofrules.Action{RegDstPort.Load(uint64(nic.PortKey)), RegZone.Load(uint64(c.zones[nic.Name])), gotoT(TableIngressCt)}
		for _, ip := range nic.IPs() {
			c.add(TableDestLookup, 160, ck, ofrules.NewMatch(append(byMAC, ofrules.Exact(ofrules.IPv4Dst, ipVal(ip)))...), to...)
		}
		c.add(TableDestLookup, 150, ck, ofrules.NewMatch(byMAC...), append([]ofrules.Action{flagSet(FlagFwdIn)}, to...)...)
	}
	c.dropMiss(TableDestLookup)
}

// lookupVPCs are the VPCs whose destinations this host must know: those
// with local NICs, and the VPCs peered with them (a peering route moves a
// packet into the peer VPC on the sending host).
func (c *compiler) lookupVPCs() []*model.VPCInfo {
	seen := map[*model.VPCInfo]bool{}
	var out []*model.VPCInfo
	add := func(v *model.VPCInfo) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, v := range c.vpcs {
		add(v)
	}
	for _, v := range c.vpcs {
		for _, p := range c.snap.Net.PeersOf(v) {
			add(p)
		}
	}
	return out
}
