// Package labpolicy turns a tenant policy into a lab: it assigns what a lab
// must (host underlay addresses, OVSDB endpoints) and describes one VM per
// placed NIC with the NIC's MAC, addresses and gateway. Hosts with an
// uplink (gateway hosts) get the lab's internet behind it.
package labpolicy

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// FarInternetHost is an address the lab's internet owns besides the gateway
// hosts' next hop (on its lo): a "far" host on the internet, to reach from
// VMs through a gateway and to reach them from.
const FarInternetHost = "192.0.2.10"

// Prepare returns a copy of p with lab values filled in (underlay IPs from
// the lab's underlay; VNIs, MACs and port keys pinned), the built network
// and the lab spec.
// OVSDB endpoints are filled by Attach once the lab is up. If hosts have an
// uplink, the spec has an internet (see Internet).
func Prepare(p *model.Policy, name, dir string) (*model.Policy, *model.Net, lab.Spec, error) {
	eff := p.Clone()
	base := netip.MustParsePrefix(lab.UnderlayCIDR).Addr()
	for i := range eff.Hosts {
		if eff.Hosts[i].UnderlayIP == "" {
			a := base.As4()
			a[3] = byte(11 + i)
			eff.Hosts[i].UnderlayIP = netip.AddrFrom4(a).String()
		}
		if eff.Hosts[i].OVSDB == "" {
			// Placeholder so validation sees the host as manageable; Attach sets the real one.
			eff.Hosts[i].OVSDB = "unix:" + filepath.Join(dir, "pending.sock")
		}
	}
	n, err := model.Build(eff)
	if err != nil {
		return nil, nil, lab.Spec{}, err
	}
	spec := lab.Spec{Name: name, Dir: dir}
	for _, hn := range n.HostNames {
		spec.Hosts = append(spec.Hosts, lab.HostSpec{Name: hn, UnderlayIP: n.Hosts[hn].UnderlayIP})
	}
	in, err := Internet(n)
	if err != nil {
		return nil, nil, lab.Spec{}, err
	}
	spec.Internet = in
	model.Pin(eff, n)
	for _, name := range n.NICNames {
		if nic := n.NICs[name]; nic.Host != "" {
			spec.VMs = append(spec.VMs, VMSpec(nic))
		}
	}
	return eff, n, spec, nil
}

// Internet describes the lab's internet for a built policy, nil if no host
// has an uplink: its address is the gateway hosts' next hop on their uplink
// network (all of them must share one network, next hop and pinned next-hop
// MAC), each gateway host gets its uplink device, every public IP pool is
// routed on-link and FarInternetHost is one more address (unless the uplink
// network or a pool holds it).
func Internet(n *model.Net) (*lab.InternetSpec, error) {
	var in *lab.InternetSpec
	var first *model.HostInfo
	ips := map[netip.Addr]string{}
	for _, hn := range n.HostNames {
		h := n.Hosts[hn]
		u := h.Uplink
		if u == nil {
			continue
		}
		addr := netip.PrefixFrom(u.NextHop, u.IP.Bits())
		if in == nil {
			first = h
			in = &lab.InternetSpec{Addr: addr, MAC: u.NextHopMAC}
		} else {
			fu := first.Uplink
			if u.IP.Masked() != fu.IP.Masked() || u.NextHop != fu.NextHop {
				return nil, fmt.Errorf("labpolicy: host %s: uplink network %s with next hop %s differs from host %s's (%s, next hop %s): the lab has one internet network",
					h.Name, u.IP.Masked(), u.NextHop, first.Name, fu.IP.Masked(), fu.NextHop)
			}
			if u.NextHopMAC != nil {
				if in.MAC != nil && in.MAC.String() != u.NextHopMAC.String() {
					return nil, fmt.Errorf("labpolicy: host %s: uplink next-hop MAC %s differs from %s of another gateway host: the lab's internet has one MAC",
						h.Name, u.NextHopMAC, in.MAC)
				}
				in.MAC = u.NextHopMAC
			}
		}
		if o, dup := ips[u.IP.Addr()]; dup {
			return nil, fmt.Errorf("labpolicy: host %s: uplink IP %s is host %s's too", h.Name, u.IP.Addr(), o)
		}
		ips[u.IP.Addr()] = h.Name
		in.Uplinks = append(in.Uplinks, lab.UplinkSpec{Host: h.Name, Interface: u.Interface})
	}
	if in == nil {
		return nil, nil
	}
	far := netip.MustParseAddr(FarInternetHost)
	farOK := !in.Addr.Contains(far)
	for _, name := range slices.Sorted(maps.Keys(n.Pools)) {
		c := n.Pools[name].CIDR
		in.OnLink = append(in.OnLink, c)
		farOK = farOK && !c.Contains(far)
	}
	if farOK {
		in.Extra = []netip.Prefix{netip.PrefixFrom(far, 32)}
	}
	return in, nil
}

// VMSpec describes the lab VM of a NIC.
func VMSpec(nic *model.NICInfo) lab.VMSpec {
	bits := nic.Subnet.CIDR.Bits()
	vm := lab.VMSpec{Name: nic.Name, Host: nic.Host, MAC: nic.MAC, Gateway: nic.Subnet.Gateway}
	for _, ip := range nic.IPs() {
		vm.Addrs = append(vm.Addrs, netip.PrefixFrom(ip, bits))
	}
	return vm
}

// Attach fills every host's OVSDB endpoint from the running lab.
func Attach(p *model.Policy, l *lab.Lab) error {
	for i := range p.Hosts {
		h := l.Host(p.Hosts[i].Name)
		if h == nil {
			return fmt.Errorf("labpolicy: host %q is not in the lab", p.Hosts[i].Name)
		}
		p.Hosts[i].OVSDB = h.OVS().Endpoint()
	}
	return nil
}
