package pipelines

import (
	"net"
	"net/netip"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// arpResponder (table 15): an ARP request for an IP in use in the VPC, or
// for a subnet gateway, is turned into the reply and sent back out of the
// port it came in on. Every other ARP packet is dropped: ARP never leaves
// the host.
func (c *compiler) arpResponder() {
	for _, v := range c.vpcs {
		for _, nic := range v.NICs {
			for _, ip := range nic.IPs() {
				c.arpReply(v, ip, nic.MAC, cookie(CatARP, uint64(nic.PortKey)))
			}
		}
		for _, s := range v.Subnets {
			c.arpReply(v, s.Gateway, v.RouterMAC, cookie(CatRouter, uint64(v.VNI)))
		}
	}
	c.dropMiss(TableArpResponder)
}

func (c *compiler) arpReply(v *model.VPCInfo, ip netip.Addr, mac net.HardwareAddr, ck uint64) {
	c.add(TableArpResponder, 100, ck,
		ofrules.NewMatch(vpcMatch(v), ethType(ofrules.EthTypeARP), ofrules.Exact(ofrules.ArpOp, 1), ofrules.Exact(ofrules.ArpTpa, ipVal(ip))),
		arpReplyActions(ip, mac)...)
}

// arpReplyActions turn an ARP request for ip into the reply from mac, sent
// back where it came from.
func arpReplyActions(ip netip.Addr, mac net.HardwareAddr) []ofrules.Action {
	return []ofrules.Action{
		ofrules.Move{Src: ofrules.EthSrc, Dst: ofrules.EthDst, NBits: 48},
		ofrules.SetField{Field: ofrules.EthSrc, Value: macVal(mac)},
		ofrules.SetField{Field: ofrules.ArpOp, Value: 2},
		ofrules.Move{Src: ofrules.ArpSha, Dst: ofrules.ArpTha, NBits: 48},
		ofrules.Move{Src: ofrules.ArpSpa, Dst: ofrules.ArpTpa, NBits: 32},
		ofrules.SetField{Field: ofrules.ArpSha, Value: macVal(mac)},
		ofrules.SetField{Field: ofrules.ArpSpa, Value: ipVal(ip)},
		ofrules.Output{Port: ofrules.PortInPort},
	}
}
