package pipelines

import "github.com/openvpc/openvpc/ofrules"

// destLookup (table 45): (VPC, destination IP) → destination MAC and port
// key; a local destination continues to the ingress stages, a remote one
// gets its host's underlay address as tunnel destination and goes straight
// to output (its ingress stages run on the destination host). Packets that
// came from a tunnel are delivered only to local NICs: no hairpin.
func (c *compiler) destLookup() {
	for _, v := range c.vpcs {
		for _, nic := range v.NICs {
			loc, ok := c.snap.Locate(nic)
			if !ok {
				continue
			}
			remote := loc.Host != c.host.Name
			var tunDst uint64
			if remote {
				h := c.snap.Net.Hosts[loc.Host]
				if h == nil || c.st.TunnelPort == 0 {
					continue
				}
				tunDst = ipVal(h.UnderlayIP)
			} else if loc.OFPort == 0 {
				continue
			}
			ck := cookie(CatDest, uint64(nic.PortKey))
			for _, ip := range nic.IPs() {
				m := []ofrules.MatchField{vpcMatch(v), ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Dst, ipVal(ip))}
				acts := []ofrules.Action{
					ofrules.SetField{Field: ofrules.EthDst, Value: macVal(nic.MAC)},
					RegDstPort.Load(uint64(nic.PortKey)),
				}
				if remote {
					m = append(m, flagMatch(0, FlagFromTunnel))
					acts = append(acts, ofrules.SetField{Field: ofrules.TunDst, Value: tunDst}, flagSet(FlagRemote), gotoT(TableOutput))
				} else {
					acts = append(acts, RegZone.Load(uint64(c.zones[nic.Name])), gotoT(TableIngressCt))
				}
				c.add(TableDestLookup, 100, ck, ofrules.NewMatch(m...), acts...)
			}
		}
	}
	c.dropMiss(TableDestLookup)
}
