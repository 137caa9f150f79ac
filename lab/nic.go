package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sirupsen/logrus"
)

// AddNIC hot-plugs a secondary NIC into a running VM: the next free ethN
// (N >= 1) in the VM's namespace, a veth whose other end is a port of the
// VM's host's br-int with external_ids:iface-id=spec.Name. The NIC gets the
// on-link routes of its addresses only (the default route stays on eth0);
// the VM then answers and sources ARP per device (arp_ignore=1,
// arp_announce=2) and does not filter by reverse path, as a multi-homed
// host is usually set up.
func (l *Lab) AddNIC(ctx context.Context, vm string, spec NICSpec) (VMNIC, error) {
	v := l.VM(vm)
	if v == nil {
		return VMNIC{}, fmt.Errorf("lab %s: no VM %q", l.name, vm)
	}
	if err := l.checkNIC(vm, spec.Name, spec.MAC, spec.MTU, spec.Addrs); err != nil {
		return VMNIC{}, err
	}
	v.ops.Lock()
	defer v.ops.Unlock()

	l.mu.Lock()
	s := l.st.vm(vm)
	switch {
	case l.down:
		l.mu.Unlock()
		return VMNIC{}, fmt.Errorf("lab %s is down", l.name)
	case s == nil:
		l.mu.Unlock()
		return VMNIC{}, fmt.Errorf("lab %s: no VM %q", l.name, vm)
	case len(s.Extra)+1 >= maxNICs:
		l.mu.Unlock()
		return VMNIC{}, fmt.Errorf("lab %s: VM %s has %d NICs already", l.name, vm, maxNICs)
	case l.nicNameUsedLocked(spec.Name):
		l.mu.Unlock()
		return VMNIC{}, fmt.Errorf("lab %s: VM %s: a VM or NIC %s already exists", l.name, vm, spec.Name)
	}
	iface := ""
	for i := 1; iface == ""; i++ {
		name := "eth" + strconv.Itoa(i)
		if !slices.ContainsFunc(s.Extra, func(e nicState) bool { return e.Iface == name }) {
			iface = name
		}
	}
	dev, mac, err := l.nextDevLocked()
	if err != nil {
		l.mu.Unlock()
		return VMNIC{}, err
	}
	if spec.MAC != nil {
		mac = slices.Clone(spec.MAC)
	}
	ns := nicState{Name: spec.Name, Iface: iface, NIC: dev, MAC: mac.String(), Addrs: slices.Clone(spec.Addrs), MTU: spec.MTU}
	s.Extra = append(s.Extra, ns)
	h := v.host
	l.st.Devices = append(l.st.Devices, deviceState{Netns: h.netns, Name: dev}, deviceState{Netns: v.netns, Name: iface})
	err = l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return VMNIC{}, err
	}

	n := VMNIC{Name: spec.Name, Iface: iface, Dev: dev, MAC: mac, Addrs: slices.Clone(spec.Addrs), MTU: spec.MTU}
	err = v.makeVeth(ctx, h, dev, iface, n)
	if err == nil {
		err = v.configure(ctx, iface, n, false)
	}
	if err == nil {
		err = v.attach(ctx, h, []VMNIC{n})
	}
	if err != nil {
		if rerr := v.removeNIC(context.WithoutCancel(ctx), spec.Name); rerr != nil {
			l.log.WithError(rerr).Warn("cleanup after failed AddNIC")
		}
		return VMNIC{}, err
	}
	l.log.WithFields(logrus.Fields{"vm": vm, "nic": spec.Name, "iface": iface, "dev": dev}).Debug("NIC plugged")
	return n, nil
}

// RemoveNIC hot-unplugs a secondary NIC of a VM: deletes its port from
// br-int and its veth.
func (l *Lab) RemoveNIC(ctx context.Context, vm, nic string) error {
	v := l.VM(vm)
	if v == nil {
		return fmt.Errorf("lab %s: no VM %q", l.name, vm)
	}
	if nic == vm {
		return fmt.Errorf("lab %s: VM %s: the primary NIC goes with RemoveVM", l.name, vm)
	}
	v.ops.Lock()
	defer v.ops.Unlock()
	return v.removeNIC(ctx, nic)
}

func (v *VM) removeNIC(ctx context.Context, nic string) error {
	l := v.lab
	n, ok := v.NICByName(nic)
	if !ok || nic == v.name {
		return fmt.Errorf("vm %s: no secondary NIC %q", v.name, nic)
	}
	var errs []error
	if err := detach(ctx, v.Host(), []string{n.Dev}); err != nil {
		errs = append(errs, fmt.Errorf("vm %s: unplug %s: %w", v.name, nic, err))
	}
	if ok, err := linkExists(ctx, v.netns, n.Iface); err != nil {
		errs = append(errs, fmt.Errorf("vm %s: %w", v.name, err))
	} else if ok {
		if _, err := ip(ctx, v.netns, "link", "del", "dev", n.Iface); err != nil {
			errs = append(errs, fmt.Errorf("vm %s: %w", v.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.st.vm(v.name); s != nil {
		s.Extra = slices.DeleteFunc(s.Extra, func(e nicState) bool { return e.Name == nic })
	}
	l.st.Devices = slices.DeleteFunc(l.st.Devices, func(d deviceState) bool {
		return d.Name == n.Dev || (d.Netns == v.netns && d.Name == n.Iface)
	})
	return l.saveLocked()
}

// linkExists says whether netns has a device called dev.
func linkExists(ctx context.Context, netns, dev string) (bool, error) {
	out, err := ip(ctx, netns, "-j", "link", "show")
	if err != nil {
		return false, err
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return false, fmt.Errorf("netns %s: parse `ip -j link show`: %w", netns, err)
	}
	for _, k := range links {
		if k.Name == dev {
			return true, nil
		}
	}
	return false, nil
}

// SetMTU sets the MTU of both ends of the VM's primary veth (eth0 and its
// port on br-int), as a guest and its hypervisor would.
func (v *VM) SetMTU(ctx context.Context, mtu int) error { return v.SetNICMTU(ctx, v.name, mtu) }

// SetNICMTU sets the MTU of both ends of one of the VM's NICs' veth (by
// iface-id).
func (v *VM) SetNICMTU(ctx context.Context, nic string, mtu int) error {
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("vm %s: bad MTU %d", v.name, mtu)
	}
	v.ops.Lock()
	defer v.ops.Unlock()
	n, ok := v.NICByName(nic)
	if !ok {
		return fmt.Errorf("vm %s: no NIC %q", v.name, nic)
	}
	m := strconv.Itoa(mtu)
	if _, err := ip(ctx, v.netns, "link", "set", "dev", n.Iface, "mtu", m); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	if _, err := ip(ctx, v.Host().netns, "link", "set", "dev", n.Dev, "mtu", m); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	l := v.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.st.vm(v.name); s != nil {
		s.setNIC(nic, func(_ *string, p *int) { *p = mtu })
	}
	return l.saveLocked()
}
