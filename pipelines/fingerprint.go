package pipelines

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"sort"

	"github.com/openvpc/openvpc/model"
)

// Fingerprint hashes every input Compile reads for one host: its own
// bindings, every host's underlay address, and everything about the VPCs
// that have NICs bound on it (subnets, NICs with their addresses, keys and
// where they are). Equal fingerprints mean equal compiled flows, so the
// controller skips hosts a change does not concern. It costs a walk over
// the host's VPCs, far less than compiling them.
func Fingerprint(snap *Snapshot, hostName string) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	str := func(s string) {
		num(uint64(len(s)))
		h.Write([]byte(s))
	}
	addr := func(a netip.Addr) {
		b, _ := a.MarshalBinary()
		str(string(b))
	}
	str(hostName)
	hi := snap.Net.Hosts[hostName]
	if hi == nil {
		return 0
	}
	st := snap.Hosts[hostName]
	for _, k := range hi.Usable {
		str(k)
		num(uint64(st.TunnelPorts[k]))
	}
	num(uint64(st.UplinkPort))
	str(st.NextHopMAC.String())
	if u := hi.Uplink; u != nil {
		str(u.Interface)
		str(u.IP.String())
		addr(u.NextHop)
		str(u.NextHopMAC.String())
		str(u.MAC.String())
	}
	// Public IPs concern every host (the senders pick the gateway, the
	// gateways translate them all); they change rarely.
	for _, name := range snap.Net.PublicIPNames {
		pi := snap.Net.PublicIPs[name]
		str(name)
		addr(pi.Address)
		if !pi.Reachable {
			continue
		}
		num(1)
		str(snap.Serving(pi).Name)
		addr(pi.PrivateIP)
		v := pi.NIC.Subnet.VPC
		num(uint64(v.VNI))
		str(v.RouterMAC.String())
		str(v.CIDR.String())
		fingerprintNIC(snap, pi.NIC, str, num, addr)
	}
	names := make([]string, 0, len(st.Ports))
	for n := range st.Ports {
		names = append(names, n)
	}
	sort.Strings(names)
	vpcs := map[string]bool{}
	peers := map[string]bool{}
	for _, n := range names {
		str(n)
		num(uint64(st.Ports[n]))
		num(st.Since[n])
		if nic := snap.Net.NICs[n]; nic != nil {
			vpcs[nic.Subnet.VPC.Name] = true
		}
	}
	// A peered VPC's NICs and groups matter too (destination lookup, peer
	// groups in rules).
	for vn := range vpcs {
		if v := snap.Net.VPCs[vn]; v != nil {
			for _, p := range snap.Net.PeersOf(v) {
				peers[p.Name] = true
			}
		}
	}
	for p := range peers {
		vpcs[p] = true
	}
	for _, name := range snap.Net.PeeringNames {
		p := snap.Net.Peerings[name]
		if vpcs[p.VPC.Name] || vpcs[p.PeerVPC.Name] {
			str(name)
			str(p.VPC.Name)
			str(p.PeerVPC.Name)
			if p.Accepted {
				num(1)
			}
		}
	}
	for _, n := range snap.Net.HostNames {
		o := snap.Net.Hosts[n]
		str(n)
		addr(o.UnderlayIP)
		num(o.DatapathID)
		num(uint64(o.UnderlayMTU)) // the tunnel's size limit (check_pkt_larger)
		k, _ := snap.Net.PairEncap(hostName, n)
		str(k)
	}
	for _, vn := range snap.Net.VPCNames {
		if !vpcs[vn] {
			continue
		}
		v := snap.Net.VPCs[vn]
		str(vn)
		num(uint64(v.VNI))
		str(v.CIDR.String())
		str(v.RouterMAC.String())
		if v.Gateway != nil {
			str(v.Gateway.Name)
		}
		for _, s := range v.Subnets {
			str(s.Name)
			str(s.CIDR.String())
			num(uint64(s.Key))
		}
		for _, nic := range v.NICs {
			fingerprintNIC(snap, nic, str, num, addr)
		}
		// Security groups live in a VPC and name only groups of it, so
		// hashing the VPC's groups covers every rule and peer a local NIC
		// can depend on.
		for _, tn := range snap.Net.RouteTableNames {
			if t := snap.Net.RouteTables[tn]; t.VPC == v {
				str(t.Name)
				num(uint64(t.Key))
				for _, s := range t.Subnets {
					str(s.Name)
				}
				for _, r := range t.Routes {
					str(r.Destination.String())
					str(string(r.State))
					if r.NIC != nil {
						str(r.NIC.Name)
					}
					if r.Gateway != nil {
						str(r.Gateway.Name)
					}
				}
			}
		}
		for _, gn := range snap.Net.SGNames {
			if g := snap.Net.SecurityGroups[gn]; g.VPC == v {
				fingerprintGroup(g, str, num)
			}
		}
	}
	return h.Sum64()
}

func fingerprintGroup(g *model.SGInfo, str func(string), num func(uint64)) {
	str(g.Name)
	for _, m := range g.Members {
		str(m.Name)
	}
	for _, d := range []model.Direction{model.Ingress, model.Egress} {
		for _, r := range g.Rules(d) {
			num(uint64(r.ID))
			str(r.Text())
			str(r.Inactive)
		}
	}
}

func fingerprintNIC(snap *Snapshot, nic *model.NICInfo, str func(string), num func(uint64), addr func(netip.Addr)) {
	str(nic.Name)
	str(nic.Subnet.Name)
	str(nic.MAC.String())
	num(uint64(nic.PortKey))
	str(nic.Host)
	num(uint64(nic.CtZone))
	if nic.SourceDestCheck {
		num(1)
	} else {
		num(0)
	}
	for _, ip := range nic.IPs() {
		addr(ip)
	}
	loc, ok := snap.Locate(nic)
	if !ok {
		str("-")
		return
	}
	str(loc.Host)
	num(uint64(loc.OFPort))
}
