package pipelines

import (
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// classifier (table 0): a VM port loads its port key, source subnet and VPC;
// the tunnel port maps tun_id to the VPC (only VPCs with local NICs) and
// marks the packet as tunnelled. Anything else is dropped.
func (c *compiler) classifier() {
	for _, nic := range c.local {
		c.add(TableClassifier, 100, cookie(CatPort, uint64(nic.PortKey)),
			ofrules.NewMatch(ofrules.Exact(ofrules.InPort, uint64(c.st.Ports[nic.Name]))),
			RegSrcPort.Load(uint64(nic.PortKey)),
			RegSrcSubnet.Load(uint64(nic.Subnet.Key)),
			RegZone.Load(uint64(c.zones[nic.Name])),
			RegRouteTable.Load(uint64(nic.Subnet.RouteTable.Key)),
			ofrules.SetField{Field: ofrules.Metadata, Value: uint64(nic.Subnet.VPC.VNI)},
			gotoT(TablePortSecurity))
	}
	for _, port := range c.tunnelPorts() {
		for _, v := range c.tunnelVPCs() {
			c.add(TableClassifier, 100, cookie(CatTunnel, uint64(v.VNI)),
				ofrules.NewMatch(ofrules.Exact(ofrules.InPort, uint64(port)), ofrules.Exact(ofrules.TunID, uint64(v.VNI))),
				ofrules.SetField{Field: ofrules.Metadata, Value: uint64(v.VNI)},
				flagSet(FlagFromTunnel),
				gotoT(TableTunnelSource))
		}
	}
	c.dropMiss(TableClassifier)
}

// tunnelVPCs are the VPCs whose tunnelled packets the host takes: those of
// its NICs, and on a gateway host those it translates.
func (c *compiler) tunnelVPCs() []*model.VPCInfo {
	seen := map[*model.VPCInfo]bool{}
	var out []*model.VPCInfo
	for _, v := range append(append([]*model.VPCInfo(nil), c.vpcs...), c.gatewayVPCs()...) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// tunnelSource (table 1): accept tunnelled packets only from the underlay
// address of a known host.
func (c *compiler) tunnelSource() {
	if len(c.tunnelPorts()) == 0 {
		return
	}
	for _, name := range c.snap.Net.HostNames {
		h := c.snap.Net.Hosts[name]
		if name == c.host.Name {
			continue
		}
		// Each peer sends with the pair's kind: only on that port.
		port, ok := c.tunnelTo(h)
		if !ok {
			continue
		}
		c.add(TableTunnelSource, 100, cookie(CatTunnel, h.DatapathID),
			ofrules.NewMatch(ofrules.Exact(ofrules.InPort, uint64(port)), ofrules.Exact(ofrules.TunSrc, ipVal(h.UnderlayIP))),
			gotoT(TableDestLookup))
	}
	c.dropMiss(TableTunnelSource)
}
