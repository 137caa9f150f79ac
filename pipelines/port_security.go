package pipelines

import "github.com/openvpc/openvpc/ofrules"

// portSecurity (table 5): a VM may send only with its own MAC and IPs, ARP
// only with its own sender MAC/IP, and never DHCP server replies. A NIC
// with source/destination check off (an appliance) may send IPv4 and ARP
// from any address, still with its own MAC (its ARP never leaves the
// host); IPv4 not from its own addresses is flagged as forwarded.
func (c *compiler) portSecurity() {
	c.add(TablePortSecurity, 200, cookie(CatPipeline, uint64(TablePortSecurity)),
		ofrules.NewMatch(ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPProto, ofrules.ProtoUDP), ofrules.Exact(ofrules.UDPSrc, 67)))
	for _, nic := range c.local {
		port := ofrules.Exact(ofrules.InPort, uint64(c.st.Ports[nic.Name]))
		mac := ofrules.Exact(ofrules.EthSrc, macVal(nic.MAC))
		ck := cookie(CatPort, uint64(nic.PortKey))
		if !nic.SourceDestCheck {
			c.add(TablePortSecurity, 90, ck, ofrules.NewMatch(port, mac, ethType(ofrules.EthTypeIPv4)), flagSet(FlagFwdOut), gotoT(TableL2Filter))
			c.add(TablePortSecurity, 90, ck, ofrules.NewMatch(port, mac, ethType(ofrules.EthTypeARP), ofrules.Exact(ofrules.ArpSha, macVal(nic.MAC))),
				gotoT(TableL2Filter))
		}
		for _, ip := range nic.IPs() {
			c.add(TablePortSecurity, 100, ck,
				ofrules.NewMatch(port, mac, ethType(ofrules.EthTypeIPv4), ofrules.Exact(ofrules.IPv4Src, ipVal(ip))),
				gotoT(TableL2Filter))
			c.add(TablePortSecurity, 100, ck,
				ofrules.NewMatch(port, mac, ethType(ofrules.EthTypeARP), ofrules.Exact(ofrules.ArpSpa, ipVal(ip)), ofrules.Exact(ofrules.ArpSha, macVal(nic.MAC))),
				gotoT(TableL2Filter))
		}
	}
	c.dropMiss(TablePortSecurity)
}
