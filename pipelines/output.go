package pipelines

import (
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/tunnels"
)

// output (table 70): a remote destination is checked against the tunnel's
// MTU (check_pkt_larger) and gets the VPC's key (from metadata) as tun_id,
// then TunnelOut (71) sends it out of the flow-based tunnel port of the kind
// this host uses with the destination host (by its underlay address in
// tun_dst) — or, too big, to the controller, which answers the sender with
// ICMP "fragmentation needed" (path MTU discovery). A local destination
// leaves through its NIC's port, found by its port key.
func (c *compiler) output() {
	for _, name := range c.snap.Net.HostNames {
		h := c.snap.Net.Hosts[name]
		if name == c.host.Name {
			continue
		}
		port, ok := c.tunnelTo(h)
		if !ok {
			continue
		}
		kind, _ := c.snap.Net.PairEncap(c.host.Name, name)
		// The largest inner frame (L2 header included, as
		// check_pkt_larger counts) the underlay carries.
		limit := min(c.host.UnderlayMTU, h.UnderlayMTU) - tunnels.Kind(kind).Overhead() + 14
		dst := ofrules.Exact(ofrules.TunDst, ipVal(h.UnderlayIP))
		c.add(TableOutput, 200, cookie(CatTunnel, h.DatapathID), ofrules.NewMatch(flagMatch(FlagRemote, FlagRemote), dst),
			ofrules.CheckPktLarger{Len: uint16(limit), Dst: ofrules.Reg(RegFlags.Reg), Ofs: flagTooBigBit},
			ofrules.Move{Src: ofrules.Metadata, Dst: ofrules.TunID, NBits: 24},
			gotoT(TableTunnelOut))
		c.add(TableTunnelOut, 100, cookie(CatTunnel, h.DatapathID), ofrules.NewMatch(dst), ofrules.Output{Port: port})
		if c.host.Uplink != nil {
			// A gateway's hairpin (one public IP to another) may come in
			// on the tunnel port it leaves by: OVS never outputs to a
			// packet's own in_port except as IN_PORT.
			c.add(TableTunnelOut, 110, cookie(CatGateway, h.DatapathID),
				ofrules.NewMatch(dst, ofrules.Exact(ofrules.InPort, uint64(port))), ofrules.Output{Port: ofrules.PortInPort})
		}
	}
	if len(c.tunnelPorts()) > 0 {
		c.add(TableTunnelOut, 200, cookie(CatPMTU, 0), ofrules.NewMatch(flagMatch(FlagTooBig, FlagTooBig)),
			ofrules.Controller{MaxLen: pmtuControllerMaxLen})
		c.dropMiss(TableTunnelOut)
	}
	for _, nic := range c.local {
		c.add(TableOutput, 100, cookie(CatPort, uint64(nic.PortKey)),
			ofrules.NewMatch(RegDstPort.Match(uint64(nic.PortKey))),
			ofrules.Output{Port: c.st.Ports[nic.Name]})
	}
	c.dropMiss(TableOutput)
}

// pmtuControllerMaxLen: the controller needs the headers (Ethernet, IP and
// 8 bytes beyond) to build the ICMP error.
const pmtuControllerMaxLen = 128
