// Package labpolicy turns a tenant policy into a lab: it assigns what a lab
// must (host underlay addresses, OVSDB endpoints) and describes one VM per
// placed NIC with the NIC's MAC, addresses and gateway.
package labpolicy

import (
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// Prepare returns a copy of p with lab values filled in (underlay IPs from
// the lab's underlay; VNIs, MACs and port keys pinned), the built network
// and the lab spec.
// OVSDB endpoints are filled by Attach once the lab is up.
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
	model.Pin(eff, n)
	for _, name := range n.NICNames {
		if nic := n.NICs[name]; nic.Host != "" {
			spec.VMs = append(spec.VMs, VMSpec(nic))
		}
	}
	return eff, n, spec, nil
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
