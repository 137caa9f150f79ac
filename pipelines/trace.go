package pipelines

import (
	"fmt"
	"strings"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/sim"
)

// TraceInput describes a packet to trace on one host.
type TraceInput struct {
	// FromNIC makes the packet enter from that NIC's port on the host; its
	// MAC and IP are the default source, and the destination MAC is the
	// peer's (same subnet) or the router's.
	FromNIC string
	// FromHost makes the packet arrive over the tunnel from that host, in
	// VPC (tun_id), as routed there.
	FromHost, VPC string
	// FromUplink makes the packet arrive from outside on a gateway host's
	// uplink, sent by its router.
	FromUplink bool
	// Packet is an ovs-ofctl-like description ("tcp,nw_dst=10.0.2.10,tp_dst=5432")
	// whose fields override the defaults.
	Packet string
	// CtState is the conntrack state ct() yields: new (default), est or rel.
	CtState string
}

// Trace runs a packet through flows (compiled, or dumped from the host's
// switch) and explains each step with table names and the policy objects
// behind the flows.
func Trace(snap *Snapshot, hostName string, flows []ofrules.Flow, in TraceInput) (string, sim.Result, error) {
	n := snap.Net
	st := snap.Hosts[hostName]
	if n.Hosts[hostName] == nil {
		return "", sim.Result{}, fmt.Errorf("trace: unknown host %q", hostName)
	}
	spec, err := sim.ParsePacket(in.Packet)
	if err != nil {
		return "", sim.Result{}, err
	}
	pkt := sim.Packet{ofrules.EthType: ofrules.EthTypeIPv4, ofrules.IPTTL: 64}
	dst := spec[ofrules.IPv4Dst]
	sources := 0
	for _, set := range []bool{in.FromNIC != "", in.FromHost != "", in.FromUplink} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		return "", sim.Result{}, fmt.Errorf("trace: give one source: a NIC, a tunnel source host or the uplink")
	case in.FromUplink:
		u := n.Hosts[hostName].Uplink
		if u == nil || st.UplinkPort == 0 {
			return "", sim.Result{}, fmt.Errorf("trace: host %q has no uplink", hostName)
		}
		pkt[ofrules.InPort] = uint64(st.UplinkPort)
		pkt[ofrules.IPv4Src] = ipVal(u.NextHop)
		pkt[ofrules.EthDst] = macVal(u.MAC)
		if m := u.NextHopMAC; m != nil {
			pkt[ofrules.EthSrc] = macVal(m)
		} else if st.NextHopMAC != nil {
			pkt[ofrules.EthSrc] = macVal(st.NextHopMAC)
		}
	case in.FromNIC != "":
		nic := n.NICs[in.FromNIC]
		if nic == nil {
			return "", sim.Result{}, fmt.Errorf("trace: unknown NIC %q", in.FromNIC)
		}
		port, ok := st.Ports[nic.Name]
		if !ok {
			return "", sim.Result{}, fmt.Errorf("trace: NIC %q is not bound on host %q", nic.Name, hostName)
		}
		pkt[ofrules.InPort] = uint64(port)
		pkt[ofrules.EthSrc] = macVal(nic.MAC)
		pkt[ofrules.IPv4Src] = ipVal(nic.IP)
		pkt[ofrules.EthDst] = macVal(nic.Subnet.VPC.RouterMAC)
		if peer := nicByIP(nic.Subnet.VPC, dst); peer != nil && peer.Subnet == nic.Subnet {
			pkt[ofrules.EthDst] = macVal(peer.MAC)
		}
	case in.FromHost != "":
		src, v := n.Hosts[in.FromHost], n.VPCs[in.VPC]
		if src == nil || v == nil {
			return "", sim.Result{}, fmt.Errorf("trace: a tunnelled packet needs a known source host and vpc (got %q, %q)", in.FromHost, in.VPC)
		}
		kind, ok := n.PairEncap(hostName, src.Name)
		if !ok || st.TunnelPorts[kind] == 0 {
			return "", sim.Result{}, fmt.Errorf("trace: host %q has no tunnel to host %q (no encapsulation in common, or its port is not up)", hostName, src.Name)
		}
		pkt[ofrules.InPort] = uint64(st.TunnelPorts[kind])
		pkt[ofrules.TunSrc] = ipVal(src.UnderlayIP)
		pkt[ofrules.TunID] = uint64(v.VNI)
		pkt[ofrules.EthDst] = macVal(v.RouterMAC)
	default:
		return "", sim.Result{}, fmt.Errorf("trace: give the NIC the packet comes from, the host it is tunnelled from, or the uplink")
	}
	for f, v := range spec {
		pkt[f] = v
	}
	opt := sim.Options{}
	switch in.CtState {
	case "", "new":
		opt.CtState = ofrules.CtNew
	case "est":
		opt.CtState = ofrules.CtEst
	case "rel":
		opt.CtState = ofrules.CtRel
	default:
		return "", sim.Result{}, fmt.Errorf("trace: conntrack state %q: want new, est or rel", in.CtState)
	}
	res := sim.New(flows).Trace(pkt, opt)

	var b strings.Builder
	fmt.Fprintf(&b, "packet: %s\n", packetText(pkt))
	for _, s := range res.Steps {
		name := TableName(s.Table)
		if s.Flow == nil {
			fmt.Fprintf(&b, "%3d %-16s no flow matches: dropped\n", s.Table, name)
			continue
		}
		text := s.Flow.Text(TableName)
		text = text[strings.Index(text, "priority="):]
		if s.Conj != 0 {
			text = fmt.Sprintf("(conjunction %d complete) %s", s.Conj, text)
		}
		fmt.Fprintf(&b, "%3d %-16s %s\n", s.Table, name, text)
		if d := Describe(n, s.Flow.Cookie); d != "" {
			fmt.Fprintf(&b, "    %-16s = %s\n", "", d)
		}
		for _, note := range s.Notes {
			fmt.Fprintf(&b, "    %-16s → %s\n", "", note)
		}
	}
	b.WriteString("verdict: " + verdict(n, st, res) + "\n")
	return b.String(), res, nil
}

func nicByIP(v *model.VPCInfo, ip uint64) *model.NICInfo {
	for _, nic := range v.NICs {
		for _, a := range nic.IPs() {
			if ipVal(a) == ip {
				return nic
			}
		}
	}
	return nil
}

func packetText(p sim.Packet) string {
	var parts []string
	for _, f := range []ofrules.Field{ofrules.InPort, ofrules.TunSrc, ofrules.TunID, ofrules.EthSrc, ofrules.EthDst, ofrules.EthType,
		ofrules.IPv4Src, ofrules.IPv4Dst, ofrules.IPProto, ofrules.TCPDst, ofrules.UDPDst, ofrules.ICMPType, ofrules.ICMPCode} {
		if v, ok := p[f]; ok {
			parts = append(parts, f.String()+"="+ofrules.FormatValue(f, v, 0))
		}
	}
	return strings.Join(parts, ",")
}

func verdict(n *model.Net, st HostState, r sim.Result) string {
	if r.Dropped() {
		last := r.Steps[len(r.Steps)-1]
		return fmt.Sprintf("dropped in table %s", TableName(last.Table))
	}
	tunnelKind := map[uint32]string{}
	for k, p := range st.TunnelPorts {
		if p != 0 {
			tunnelKind[p] = k
		}
	}
	var outs []string
	for _, o := range r.Outputs {
		if _, ok := tunnelKind[uint32(r.Final[ofrules.InPort])]; o == ofrules.PortInPort && ok {
			o = uint32(r.Final[ofrules.InPort]) // a gateway's hairpin: back out of the tunnel port
		}
		switch {
		case o == ofrules.PortInPort:
			outs = append(outs, "back out of its port (IN_PORT)")
		case o == st.UplinkPort && st.UplinkPort != 0:
			outs = append(outs, fmt.Sprintf("the uplink (port %d) from %s to %s", o,
				ofrules.FormatValue(ofrules.IPv4Src, r.Final[ofrules.IPv4Src], 0), ofrules.FormatValue(ofrules.IPv4Dst, r.Final[ofrules.IPv4Dst], 0)))
		case tunnelKind[o] != "":
			dst := r.Final[ofrules.TunDst]
			to := ofrules.FormatValue(ofrules.TunDst, dst, 0)
			for _, h := range n.HostNames {
				if ipVal(n.Hosts[h].UnderlayIP) == dst {
					to = h + " (" + to + ")"
				}
			}
			outs = append(outs, fmt.Sprintf("tunnel to %s, key %#x (%s)", to, r.Final[ofrules.TunID], tunnelKind[o]))
		default:
			name := fmt.Sprintf("port %d", o)
			for nic, p := range st.Ports {
				if p == o {
					name = "NIC " + nic + " (port " + fmt.Sprint(o) + ")"
				}
			}
			outs = append(outs, name)
		}
	}
	return "output to " + strings.Join(outs, ", ")
}
