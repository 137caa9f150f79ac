package pipelines

import "github.com/openvpc/openvpc/ofrules"

// output (table 70): a remote destination leaves through the flow-based
// tunnel port with the VPC's key (copied from metadata) as tun_id; a local
// one through its NIC's port, found by its port key.
func (c *compiler) output() {
	if c.st.TunnelPort != 0 {
		c.add(TableOutput, 200, cookie(CatPipeline, uint64(TableOutput)),
			ofrules.NewMatch(flagMatch(FlagRemote, FlagRemote)),
			ofrules.Move{Src: ofrules.Metadata, Dst: ofrules.TunID, NBits: 24},
			ofrules.Output{Port: c.st.TunnelPort})
		if c.host.Uplink != nil {
			// A gateway's hairpin (one public IP to another) came in on
			// the tunnel port and leaves through it: OVS never outputs
			// to a packet's own in_port except as IN_PORT.
			c.add(TableOutput, 210, cookie(CatGateway, 0),
				ofrules.NewMatch(flagMatch(FlagRemote, FlagRemote), ofrules.Exact(ofrules.InPort, uint64(c.st.TunnelPort))),
				ofrules.Move{Src: ofrules.Metadata, Dst: ofrules.TunID, NBits: 24},
				ofrules.Output{Port: ofrules.PortInPort})
		}
	}
	for _, nic := range c.local {
		c.add(TableOutput, 100, cookie(CatPort, uint64(nic.PortKey)),
			ofrules.NewMatch(RegDstPort.Match(uint64(nic.PortKey))),
			ofrules.Output{Port: c.st.Ports[nic.Name]})
	}
	c.dropMiss(TableOutput)
}
