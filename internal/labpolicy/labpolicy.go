// Package labpolicy turns a tenant policy into a lab: it assigns what a lab
// must (host underlay addresses, OVSDB endpoints) and describes one VM per
// placed NIC with the NIC's MAC, addresses and gateway (GroupVMs, MultiVMSpec:
// several NICs in one VM). Hosts with an uplink (gateway hosts) get the lab's
// internet behind it. A host whose policy sets underlay_mtu gets that
// underlay MTU in the lab and its VMs the MTU the model derives from it
// (as a hypervisor would configure it); other hosts keep the lab's jumbo
// underlay and the VMs' default MTU.
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
		if eff.Hosts[i].UnderlayMTU == 0 {
			// The lab's underlay is jumbo unless the policy says
			// otherwise; the controller must know it (tunnel MTU checks).
			eff.Hosts[i].UnderlayMTU = lab.UnderlayMTU
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
		spec.Hosts = append(spec.Hosts, lab.HostSpec{Name: hn, UnderlayIP: n.Hosts[hn].UnderlayIP, UnderlayMTU: UnderlayMTU(eff, hn)})
	}
	in, err := Internet(n)
	if err != nil {
		return nil, nil, lab.Spec{}, err
	}
	spec.Internet = in
	model.Pin(eff, n)
	for _, name := range n.NICNames {
		if nic := n.NICs[name]; nic.Host != "" {
			spec.VMs = append(spec.VMs, VMSpecFor(eff, nic))
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

// UnderlayMTU is the underlay MTU the policy sets explicitly for a host
// (underlay_mtu), 0 if it sets none: the lab then keeps its jumbo default
// (lab.UnderlayMTU), which the model's default of 1500 fits in.
func UnderlayMTU(p *model.Policy, host string) int {
	for _, h := range p.Hosts {
		if h.Name == host {
			return h.UnderlayMTU
		}
	}
	return 0
}

// VMSpecFor is VMSpec with, if the policy sets the underlay MTU of the
// NIC's host explicitly, the NIC's MTU as the model derives it
// (NICInfo.MTU: the underlay MTU less the tunnel overhead), as a
// hypervisor would configure it.
func VMSpecFor(p *model.Policy, nic *model.NICInfo) lab.VMSpec {
	vm := VMSpec(nic)
	// The lab's jumbo default leaves VMs at their default MTU (1500), as
	// the lab always did: tunnels carry full frames.
	if mtu := UnderlayMTU(p, nic.Host); nic.Host != "" && mtu != 0 && mtu != lab.UnderlayMTU {
		vm.MTU = nic.MTU
	}
	return vm
}

// NICSpec describes a NIC as the secondary NIC of a lab VM (VMSpec less
// the gateway: a secondary NIC gets on-link routes only).
func NICSpec(vm lab.VMSpec) lab.NICSpec {
	return lab.NICSpec{Name: vm.Name, MAC: vm.MAC, Addrs: vm.Addrs, MTU: vm.MTU}
}

// MultiVMSpec describes one lab VM holding several placed NICs of the
// policy: the first is its primary NIC (eth0, the VM's name, the default
// route), the others its secondary NICs (eth1, ...). All must be placed on
// the same host.
func MultiVMSpec(p *model.Policy, nics ...*model.NICInfo) (lab.VMSpec, error) {
	if len(nics) == 0 {
		return lab.VMSpec{}, fmt.Errorf("labpolicy: a VM needs a NIC")
	}
	vm := VMSpecFor(p, nics[0])
	for _, nic := range nics[1:] {
		if nic.Host != vm.Host {
			return lab.VMSpec{}, fmt.Errorf("labpolicy: NIC %s is on host %q, not on %q with NIC %s: a VM's NICs share its host",
				nic.Name, nic.Host, vm.Host, vm.Name)
		}
		vm.Extra = append(vm.Extra, NICSpec(VMSpecFor(p, nic)))
	}
	if vm.Host == "" {
		return lab.VMSpec{}, fmt.Errorf("labpolicy: NIC %s is not placed on a host", vm.Name)
	}
	return vm, nil
}

// GroupVMs merges the VMs of a lab spec (one per NIC, from Prepare) so that
// each group of NIC names becomes one VM: the first NIC's, with the others
// as its secondary NICs in order. The policy cannot say which NICs share a
// VM, so the lab's user does (e.g. labrun.Options.VMGroups).
func GroupVMs(spec *lab.Spec, groups [][]string) error {
	idx := map[string]int{}
	for i, v := range spec.VMs {
		idx[v.Name] = i
	}
	drop, used := map[string]bool{}, map[string]bool{}
	for _, g := range groups {
		for _, name := range g {
			if _, ok := idx[name]; !ok || used[name] {
				return fmt.Errorf("labpolicy: VM group %v: NIC %s is not a VM of the lab (not placed, or in a group already)", g, name)
			}
			used[name] = true
		}
		if len(g) == 0 {
			continue
		}
		pi := idx[g[0]]
		for _, name := range g[1:] {
			i := idx[name]
			if spec.VMs[i].Host != spec.VMs[pi].Host {
				return fmt.Errorf("labpolicy: VM group %v: NIC %s is on host %s, NIC %s on %s: a VM's NICs share its host",
					g, name, spec.VMs[i].Host, g[0], spec.VMs[pi].Host)
			}
			spec.VMs[pi].Extra = append(spec.VMs[pi].Extra, NICSpec(spec.VMs[i]))
			drop[name] = true
		}
	}
	spec.VMs = slices.DeleteFunc(spec.VMs, func(v lab.VMSpec) bool { return drop[v.Name] })
	return nil
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
