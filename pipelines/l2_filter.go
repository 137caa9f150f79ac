package pipelines

import "github.com/openvpc/openvpc/ofrules"

// l2Filter (table 10): ARP goes to the responder; every other broadcast or
// multicast frame, and anything that is neither IPv4 nor ARP, is dropped.
func (c *compiler) l2Filter() {
	ck := cookie(CatPipeline, uint64(TableL2Filter))
	c.add(TableL2Filter, 110, ck, ofrules.NewMatch(ethType(ofrules.EthTypeARP)), gotoT(TableArpResponder))
	c.add(TableL2Filter, 100, ck, ofrules.NewMatch(ofrules.Masked(ofrules.EthDst, 0x010000000000, 0x010000000000)))
	c.add(TableL2Filter, 50, ck, ofrules.NewMatch(ethType(ofrules.EthTypeIPv4)), gotoT(TableEgressCt))
	c.dropMiss(TableL2Filter)
}
