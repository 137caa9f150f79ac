package pipelines

import "github.com/openvpc/openvpc/ofrules"

// routerLocal (table 25): the implied router answers ICMP echo on the
// gateway of the sender's own subnet; any other packet to a gateway address
// of the VPC is dropped.
func (c *compiler) routerLocal() {
	for _, s := range c.subnets {
		v := s.VPC
		c.add(TableRouterLocal, 200, cookie(CatRouter, uint64(v.VNI)),
			ofrules.NewMatch(RegSrcSubnet.Match(uint64(s.Key)), ethType(ofrules.EthTypeIPv4),
				ofrules.Exact(ofrules.IPProto, ofrules.ProtoICMP), ofrules.Exact(ofrules.ICMPType, 8),
				ofrules.Exact(ofrules.IPv4Dst, ipVal(s.Gateway))),
			ofrules.Move{Src: ofrules.EthSrc, Dst: ofrules.EthDst, NBits: 48},
			ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(v.RouterMAC)},
			ofrules.Move{Src: ofrules.IPv4Src, Dst: ofrules.IPv4Dst, NBits: 32},
			ofrules.SetField{Field: ofrules.IPv4Src, Value: ipVal(s.Gateway)},
			ofrules.SetField{Field: ofrules.ICMPType, Value: 0},
			ofrules.Output{Port: ofrules.PortInPort})
	}
	for _, v := range c.vpcs {
		for _, s := range v.Subnets {
			c.add(TableRouterLocal, 100, cookie(CatRouter, uint64(v.VNI)),
				ofrules.NewMatch(vpcMatch(v), ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Dst, ipVal(s.Gateway))))
		}
	}
	c.passThrough(TableRouterLocal, TableEgressSg)
}
