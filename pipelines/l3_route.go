package pipelines

import "github.com/openvpc/openvpc/ofrules"

// l3Route (table 40): the implied router. A packet sent to the router MAC
// and destined inside the VPC takes the local route: its source MAC becomes
// the router's and it goes on to the destination lookup. TTL is never
// decremented. A packet sent without the router (on-link) must stay in the
// sender's subnet. Per-subnet route tables (reg4) extend this stage later.
func (c *compiler) l3Route() {
	for _, v := range c.vpcs {
		c.add(TableL3Route, uint16(200+v.CIDR.Bits()), cookie(CatRouter, uint64(v.VNI)),
			ofrules.NewMatch(vpcMatch(v), ofrules.Exact(ofrules.EthDst, macVal(v.RouterMAC)), ethType(ofrules.EthTypeIPv4),
				prefixMatch(ofrules.IPv4Dst, v.CIDR)),
			ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(v.RouterMAC)},
			gotoT(TableDestLookup))
	}
	for _, s := range c.subnets {
		c.add(TableL3Route, uint16(100+s.CIDR.Bits()), cookie(CatRouter, uint64(s.VPC.VNI)),
			ofrules.NewMatch(RegSrcSubnet.Match(uint64(s.Key)), ethType(ofrules.EthTypeIPv4), prefixMatch(ofrules.IPv4Dst, s.CIDR)),
			gotoT(TableDestLookup))
	}
	c.dropMiss(TableL3Route)
}
