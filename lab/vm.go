package lab

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// VMIface is the name of a VM's primary NIC inside its namespace; its
// secondary NICs (VMSpec.Extra, Lab.AddNIC) are eth1, eth2, ...
const VMIface = "eth0"

// maxNICs is the most NICs a VM may have (eth0 to eth15).
const maxNICs = 16

// VM is a namespace with NICs plugged into its host's br-int: its primary
// NIC eth0 (iface-id = the VM's name, the default route) and any secondary
// NICs (on-link routes only).
type VM struct {
	lab   *Lab
	name  string
	netns string
	mac   net.HardwareAddr // eth0's
	gw    netip.Addr

	ops sync.Mutex // serialises changes of the VM's NICs (AddNIC, SetMTU, MoveVM, RemoveVM)

	// Guarded by lab.mu: change when the VM moves.
	host *Host
	nic  string
}

// VMNIC is one NIC of a VM.
type VMNIC struct {
	Name  string           // its iface-id (the VM's name for the primary NIC)
	Iface string           // its device inside the VM: eth0, eth1, ...
	Dev   string           // the host side of its veth: its port on br-int
	MAC   net.HardwareAddr // Iface's MAC
	Addrs []netip.Prefix   // primary first
	MTU   int              // 0 = the kernel's default
}

// Name is the VM's name and its primary port's iface-id.
func (v *VM) Name() string { return v.name }

// Host is the host the VM is plugged into (the new one after MoveVM).
func (v *VM) Host() *Host {
	v.lab.mu.Lock()
	defer v.lab.mu.Unlock()
	return v.host
}

// Netns is the VM's network namespace.
func (v *VM) Netns() string { return v.netns }

// NIC is the name of the host side of the VM's primary veth, i.e. its port
// on br-int (MoveVM with MakeBeforeBreak changes it).
func (v *VM) NIC() string {
	v.lab.mu.Lock()
	defer v.lab.mu.Unlock()
	return v.nic
}

// MAC is the MAC of the VM's eth0.
func (v *VM) MAC() net.HardwareAddr { return slices.Clone(v.mac) }

// Gateway is the VM's default gateway (invalid if none).
func (v *VM) Gateway() netip.Addr { return v.gw }

// Addrs returns the addresses of the VM's eth0, primary first.
func (v *VM) Addrs() []netip.Prefix {
	v.lab.mu.Lock()
	defer v.lab.mu.Unlock()
	if s := v.lab.st.vm(v.name); s != nil {
		return slices.Clone(s.Addrs)
	}
	return nil
}

// IP is the VM's primary address (invalid if it has none).
func (v *VM) IP() netip.Addr {
	if a := v.Addrs(); len(a) > 0 {
		return a[0].Addr()
	}
	return netip.Addr{}
}

// MTU is the MTU of the VM's eth0 (and of its host-side end); 0 = the
// kernel's default.
func (v *VM) MTU() int {
	v.lab.mu.Lock()
	defer v.lab.mu.Unlock()
	if s := v.lab.st.vm(v.name); s != nil {
		return s.MTU
	}
	return 0
}

// NICs returns the VM's NICs, eth0 first.
func (v *VM) NICs() []VMNIC {
	v.lab.mu.Lock()
	defer v.lab.mu.Unlock()
	s := v.lab.st.vm(v.name)
	if s == nil {
		return nil
	}
	return s.nics()
}

// NICByName returns the VM's NIC with iface-id name.
func (v *VM) NICByName(name string) (VMNIC, bool) {
	for _, n := range v.NICs() {
		if n.Name == name {
			return n, true
		}
	}
	return VMNIC{}, false
}

// OFPort returns the OpenFlow port number of the VM's primary port on
// br-int.
func (v *VM) OFPort(ctx context.Context) (int, error) {
	v.lab.mu.Lock()
	h, dev := v.host, v.nic
	v.lab.mu.Unlock()
	return ofportOf(ctx, h, v.name, dev)
}

// NICOFPort returns the OpenFlow port number of the VM's NIC with iface-id
// nic on its host's br-int.
func (v *VM) NICOFPort(ctx context.Context, nic string) (int, error) {
	n, ok := v.NICByName(nic)
	if !ok {
		return 0, fmt.Errorf("vm %s: no NIC %q", v.name, nic)
	}
	return ofportOf(ctx, v.Host(), v.name, n.Dev)
}

func ofportOf(ctx context.Context, h *Host, vm, dev string) (int, error) {
	out, err := h.ovs.Vsctl(ctx, "get", "Interface", dev, "ofport")
	if err != nil {
		return 0, fmt.Errorf("vm %s: ofport: %w", vm, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("vm %s: port %s has no ofport (%q)", vm, dev, strings.TrimSpace(out))
	}
	return n, nil
}

// VMOf returns the VM holding the NIC with iface-id nic (a VM's name names
// its primary NIC), or nil.
func (l *Lab) VMOf(nic string) *VM {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := l.vms[nic]; v != nil {
		return v
	}
	for _, s := range l.st.VMs {
		for _, e := range s.Extra {
			if e.Name == nic {
				return l.vms[s.Name]
			}
		}
	}
	return nil
}

// AddVM plugs a VM into a running lab.
func (l *Lab) AddVM(ctx context.Context, spec VMSpec) (*VM, error) {
	vm, err := l.newVM(spec)
	if err != nil {
		return nil, err
	}
	if err := vm.plug(ctx); err != nil {
		if rerr := l.RemoveVM(context.WithoutCancel(ctx), spec.Name); rerr != nil {
			l.log.WithError(rerr).Warn("cleanup after failed AddVM")
		}
		return nil, err
	}
	return vm, nil
}

func checkMTU(mtu int) bool { return mtu == 0 || (mtu >= 68 && mtu <= 65535) }

// checkNIC validates the parts of a NIC's spec common to primary and
// secondary NICs.
func (l *Lab) checkNIC(vm, name string, mac net.HardwareAddr, mtu int, addrs []netip.Prefix) error {
	if !vmNameRE.MatchString(name) {
		return fmt.Errorf("lab %s: VM %s: NIC name %q must match %s", l.name, vm, name, vmNameRE)
	}
	if mac != nil && len(mac) != 6 {
		return fmt.Errorf("lab %s: VM %s: NIC %s: MAC %s is not an Ethernet address", l.name, vm, name, mac)
	}
	if !checkMTU(mtu) {
		return fmt.Errorf("lab %s: VM %s: NIC %s: bad MTU %d", l.name, vm, name, mtu)
	}
	for _, p := range addrs {
		if !p.IsValid() {
			return fmt.Errorf("lab %s: VM %s: NIC %s: invalid address", l.name, vm, name)
		}
	}
	return nil
}

// nicNameUsedLocked says whether a VM or a NIC is already called name.
func (l *Lab) nicNameUsedLocked(name string) bool {
	if _, dup := l.vms[name]; dup {
		return true
	}
	for _, s := range l.st.VMs {
		for _, e := range s.Extra {
			if e.Name == name {
				return true
			}
		}
	}
	return false
}

// nextDevLocked reserves the next host-side device index and returns its
// name and the default MAC that goes with it.
func (l *Lab) nextDevLocked() (string, net.HardwareAddr, error) {
	idx := l.st.NextVM
	l.st.NextVM++
	dev := fmt.Sprintf("%sv%d", l.name, idx)
	if len(dev) > 15 {
		return "", nil, fmt.Errorf("lab %s: too many VM NICs (device name %s)", l.name, dev)
	}
	f := fnv.New32a()
	f.Write([]byte(l.name))
	s := f.Sum32()
	return dev, net.HardwareAddr{0x0a, byte(s >> 16), byte(s >> 8), byte(s), byte(idx >> 8), byte(idx)}, nil
}

// newVM validates spec, reserves the VM's name and device indexes and
// records it in the state (before anything is created).
func (l *Lab) newVM(spec VMSpec) (*VM, error) {
	if !vmNameRE.MatchString(spec.Name) {
		return nil, fmt.Errorf("lab %s: VM name %q must match %s", l.name, spec.Name, vmNameRE)
	}
	h, err := l.hostByName(spec.Host)
	if err != nil {
		return nil, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	if err := l.checkNIC(spec.Name, spec.Name, spec.MAC, spec.MTU, spec.Addrs); err != nil {
		return nil, err
	}
	if len(spec.Extra) >= maxNICs {
		return nil, fmt.Errorf("lab %s: VM %s: more than %d NICs", l.name, spec.Name, maxNICs)
	}
	names := map[string]bool{spec.Name: true}
	for _, e := range spec.Extra {
		if err := l.checkNIC(spec.Name, e.Name, e.MAC, e.MTU, e.Addrs); err != nil {
			return nil, err
		}
		if names[e.Name] {
			return nil, fmt.Errorf("lab %s: VM %s: NIC name %s used twice", l.name, spec.Name, e.Name)
		}
		names[e.Name] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, fmt.Errorf("lab %s is down", l.name)
	}
	for n := range names {
		if l.nicNameUsedLocked(n) {
			if n == spec.Name {
				return nil, fmt.Errorf("lab %s: VM %s already exists", l.name, spec.Name)
			}
			return nil, fmt.Errorf("lab %s: VM %s: a VM or NIC %s already exists", l.name, spec.Name, n)
		}
	}
	dev, mac, err := l.nextDevLocked()
	if err != nil {
		return nil, err
	}
	if spec.MAC != nil {
		mac = slices.Clone(spec.MAC)
	}
	vm := &VM{
		lab:   l,
		name:  spec.Name,
		host:  h,
		netns: l.name + "-v-" + spec.Name,
		nic:   dev,
		mac:   mac,
		gw:    spec.Gateway.Unmap(),
	}
	vs := vmState{
		Name: spec.Name, Host: spec.Host, Netns: vm.netns, NIC: dev, MAC: mac.String(),
		Addrs: slices.Clone(spec.Addrs), Gateway: vm.gw, MTU: spec.MTU,
	}
	l.st.Devices = append(l.st.Devices, deviceState{Netns: h.netns, Name: dev}, deviceState{Netns: vm.netns, Name: VMIface})
	for i, e := range spec.Extra {
		dev, mac, err := l.nextDevLocked()
		if err != nil {
			return nil, err
		}
		if e.MAC != nil {
			mac = slices.Clone(e.MAC)
		}
		ns := nicState{Name: e.Name, Iface: fmt.Sprintf("eth%d", i+1), NIC: dev, MAC: mac.String(),
			Addrs: slices.Clone(e.Addrs), MTU: e.MTU}
		vs.Extra = append(vs.Extra, ns)
		l.st.Devices = append(l.st.Devices, deviceState{Netns: h.netns, Name: dev}, deviceState{Netns: vm.netns, Name: ns.Iface})
	}
	l.vms[spec.Name] = vm
	l.st.VMs = append(l.st.VMs, vs)
	if err := l.saveLocked(); err != nil {
		return nil, err
	}
	return vm, nil
}

// plug creates the VM's namespace and NICs and adds their host ends to
// br-int.
func (v *VM) plug(ctx context.Context) error {
	if err := v.lab.addNetns(ctx, v.netns, true); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	h := v.Host()
	nics := v.NICs()
	for i, n := range nics {
		if err := v.makeVeth(ctx, h, n.Dev, n.Iface, n); err != nil {
			return err
		}
		if err := v.configure(ctx, n.Iface, n, i == 0); err != nil {
			return err
		}
	}
	if err := v.attach(ctx, h, nics); err != nil {
		return err
	}
	v.lab.log.WithFields(logrus.Fields{"vm": v.name, "host": h.name, "nic": nics[0].Dev, "mac": v.mac.String(), "nics": len(nics)}).Debug("VM plugged")
	return nil
}

// makeVeth creates a NIC's veth: dev in h's namespace (up, with the NIC's
// MTU) and iface in the VM's namespace with the NIC's MAC and MTU and TX
// checksum offload off, still down.
func (v *VM) makeVeth(ctx context.Context, h *Host, dev, iface string, n VMNIC) error {
	var mtu []string
	if n.MTU > 0 {
		mtu = []string{"mtu", strconv.Itoa(n.MTU)}
	}
	steps := [][]string{
		{"ip", "-n", h.netns, "link", "add", dev, "type", "veth", "peer", "name", iface, "netns", v.netns},
		append([]string{"ip", "-n", v.netns, "link", "set", "dev", iface, "address", n.MAC.String()}, mtu...),
		// TCP through the userspace datapath needs checksums filled in by the sender.
		nsArgv(v.netns, []string{"ethtool", "-K", iface, "tx", "off"}),
		append([]string{"ip", "-n", h.netns, "link", "set", "dev", dev, "up"}, mtu...),
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("vm %s: NIC %s: %w", v.name, n.Name, err)
		}
	}
	return nil
}

// configure gives the VM's device iface the NIC's addresses and brings it
// up; the primary NIC gets the default route, a secondary one only the
// on-link routes of its addresses (and, as on a multi-homed host, ARP
// answered and sourced per device and no reverse-path filter).
func (v *VM) configure(ctx context.Context, iface string, n VMNIC, primary bool) error {
	var steps [][]string
	if !primary {
		steps = append(steps, nsArgv(v.netns, []string{"sysctl", "-qw",
			"net.ipv4.conf.all.rp_filter=0", "net/ipv4/conf/" + iface + "/rp_filter=0",
			"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"}))
	}
	for _, p := range n.Addrs {
		steps = append(steps, addrCmd(v.netns, iface, "add", p))
	}
	steps = append(steps, []string{"ip", "-n", v.netns, "link", "set", "dev", iface, "up"})
	if !primary {
		// As cloud images do for a secondary interface (AWS's
		// ec2-net-utils): packets from its addresses leave through it
		// (its own routing table, via its subnet's gateway), else replies
		// would leave by eth0 with a source port security refuses there.
		table := strconv.Itoa(100 + secondaryIndex(iface))
		for _, p := range n.Addrs {
			if !p.Addr().Is4() {
				continue
			}
			gw := p.Masked().Addr().Next()
			steps = append(steps,
				[]string{"ip", "-n", v.netns, "route", "replace", p.Masked().String(), "dev", iface, "table", table},
				[]string{"ip", "-n", v.netns, "route", "replace", "default", "via", gw.String(), "dev", iface, "table", table},
				[]string{"ip", "-n", v.netns, "rule", "add", "from", p.Addr().String(), "table", table})
		}
	}
	if primary && v.gw.IsValid() {
		r := []string{"ip", "-n", v.netns}
		if v.gw.Is6() {
			r = append(r, "-6")
		}
		r = append(r, "route", "add", "default", "via", v.gw.String(), "dev", iface)
		if !slices.ContainsFunc(n.Addrs, func(p netip.Prefix) bool { return p.Masked().Contains(v.gw) }) {
			r = append(r, "onlink")
		}
		steps = append(steps, r)
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("vm %s: NIC %s: %w", v.name, n.Name, err)
		}
	}
	return nil
}

// attach adds the NICs' host-side devices to h's br-int with their
// iface-ids, in one OVSDB transaction, and checks they got an OpenFlow
// port.
func (v *VM) attach(ctx context.Context, h *Host, nics []VMNIC) error {
	var args []string
	for _, n := range nics {
		if len(args) > 0 {
			args = append(args, "--")
		}
		args = append(args, "add-port", IntegrationBridge, n.Dev, "--",
			"set", "Interface", n.Dev,
			"external_ids:iface-id="+n.Name,
			"external_ids:attached-mac="+n.MAC.String(),
			"external_ids:iface-status=active")
	}
	if _, err := h.ovs.Vsctl(ctx, args...); err != nil {
		return fmt.Errorf("vm %s: plug into %s on %s: %w", v.name, IntegrationBridge, h.name, err)
	}
	for _, n := range nics {
		if _, err := ofportOf(ctx, h, v.name, n.Dev); err != nil {
			return err
		}
	}
	return nil
}

// detach deletes the devices' ports from h's br-int (if they exist), in
// one OVSDB transaction.
func detach(ctx context.Context, h *Host, devs []string) error {
	if h.ovs == nil || len(devs) == 0 {
		return nil
	}
	var args []string
	for _, d := range devs {
		if len(args) > 0 {
			args = append(args, "--")
		}
		args = append(args, "--if-exists", "del-port", IntegrationBridge, d)
	}
	_, err := h.ovs.Vsctl(ctx, args...)
	return err
}

func addrCmd(ns, iface, op string, p netip.Prefix) []string {
	c := []string{"ip", "-n", ns, "addr", op, p.String(), "dev", iface}
	if op == "add" && p.Addr().Is6() {
		c = append(c, "nodad")
	}
	return c
}

// RemoveVM unplugs a VM: deletes its ports from br-int and its namespace
// (which destroys the veths).
func (l *Lab) RemoveVM(ctx context.Context, name string) error {
	l.mu.Lock()
	vm := l.vms[name]
	l.mu.Unlock()
	if vm == nil {
		return fmt.Errorf("lab %s: no VM %q", l.name, name)
	}
	vm.ops.Lock()
	defer vm.ops.Unlock()
	var devs []string
	for _, n := range vm.NICs() {
		devs = append(devs, n.Dev)
	}
	var errs []error
	if err := detach(ctx, vm.Host(), devs); err != nil {
		errs = append(errs, fmt.Errorf("vm %s: unplug: %w", name, err))
	}
	l.mu.Lock()
	made := slices.Contains(l.st.Netns, vm.netns) // not one that was there before
	l.mu.Unlock()
	if made && netnsExists(vm.netns) {
		if _, err := run(ctx, "ip", "netns", "del", vm.netns); err != nil {
			errs = append(errs, fmt.Errorf("vm %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.vms, name)
	l.st.VMs = slices.DeleteFunc(l.st.VMs, func(s vmState) bool { return s.Name == name })
	l.dropNetns(vm.netns, devs...)
	l.log.WithField("vm", name).Debug("VM removed")
	return l.saveLocked()
}

// Exec runs argv inside the VM's namespace and returns its combined stdout
// and stderr.
func (v *VM) Exec(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("vm %s: exec: empty command", v.name)
	}
	return runCombined(ctx, nsArgv(v.netns, argv)...)
}

// AddAddr adds an address to the VM's eth0 (recorded in the inventory).
func (v *VM) AddAddr(ctx context.Context, p netip.Prefix) error {
	if _, err := run(ctx, addrCmd(v.netns, VMIface, "add", p)...); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	return v.updateAddrs(func(a []netip.Prefix) []netip.Prefix { return append(a, p) })
}

// DelAddr removes an address from the VM's eth0.
func (v *VM) DelAddr(ctx context.Context, p netip.Prefix) error {
	if _, err := run(ctx, addrCmd(v.netns, VMIface, "del", p)...); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	return v.updateAddrs(func(a []netip.Prefix) []netip.Prefix {
		return slices.DeleteFunc(a, func(q netip.Prefix) bool { return q == p })
	})
}

func (v *VM) updateAddrs(f func([]netip.Prefix) []netip.Prefix) error {
	l := v.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.st.vm(v.name); s != nil {
		s.Addrs = f(s.Addrs)
	}
	return l.saveLocked()
}

// PingOpts tunes VM.Ping. Zero values mean: 1 probe, 0.2 s apart, 1 s wait
// for each reply, the kernel's choice of source address.
type PingOpts struct {
	Count    int
	Interval time.Duration
	Timeout  time.Duration // how long to wait for a reply (after the last probe)
	Source   netip.Addr
}

// PingResult is what iputils ping reported.
type PingResult struct {
	Sent, Received int
	TTLs           []int // TTL (hop limit) of each reply, in order
}

var (
	pingSummaryRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)
	pingTTLRE     = regexp.MustCompile(`\bttl=(\d+)`)
)

// Ping pings dst from the VM with iputils ping. Lost replies are not an
// error (see PingResult); a ping that cannot run or send (e.g. no route) is.
func (v *VM) Ping(ctx context.Context, dst netip.Addr, o PingOpts) (PingResult, error) {
	return ping(ctx, v.netns, "vm "+v.name, dst, o)
}

// ping runs iputils ping in a namespace; who names it in errors.
func ping(ctx context.Context, netns, who string, dst netip.Addr, o PingOpts) (PingResult, error) {
	if o.Count <= 0 {
		o.Count = 1
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
	argv := []string{"ping", "-n", "-c", strconv.Itoa(o.Count), "-i", secs(o.Interval), "-W", secs(o.Timeout)}
	if o.Source.IsValid() {
		argv = append(argv, "-I", o.Source.String())
	}
	argv = append(argv, dst.String())
	out, err := runCombined(ctx, nsArgv(netns, argv)...)
	res, perr := parsePing(out)
	if err != nil && (exitCode(err) != 1 || perr != nil) {
		return res, fmt.Errorf("%s: %w", who, err)
	}
	if perr != nil {
		return res, fmt.Errorf("%s: ping %s: %w", who, dst, perr)
	}
	return res, nil
}

func parsePing(out string) (PingResult, error) {
	var r PingResult
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " from ") && strings.Contains(line, "icmp_seq=") {
			if m := pingTTLRE.FindStringSubmatch(line); m != nil {
				t, _ := strconv.Atoi(m[1])
				r.TTLs = append(r.TTLs, t)
			}
		}
	}
	m := pingSummaryRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no summary in ping output: %s", lastLines(out, 3))
	}
	r.Sent, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	return r, nil
}

// sendFrameScript writes one raw frame (hex in argv[2]) out of argv[1].
const sendFrameScript = `import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
s.send(bytes.fromhex(sys.argv[2]))
`

// SendFrame writes a raw Ethernet frame (destination MAC first, no FCS) out
// of the VM's eth0 through an AF_PACKET socket: nothing is checked or
// rewritten, so it may carry any source MAC or IP (spoofing tests).
func (v *VM) SendFrame(ctx context.Context, frame []byte) error {
	return v.SendFrameOn(ctx, VMIface, frame)
}

// SendFrameOn is SendFrame out of another of the VM's devices (eth1, ...).
func (v *VM) SendFrameOn(ctx context.Context, iface string, frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("vm %s: frame of %d bytes is shorter than an Ethernet header", v.name, len(frame))
	}
	if _, err := run(ctx, nsArgv(v.netns, []string{"/usr/bin/python3", "-c", sendFrameScript, iface, hex.EncodeToString(frame)})...); err != nil {
		return fmt.Errorf("vm %s: send frame: %w", v.name, err)
	}
	return nil
}

var macRE = regexp.MustCompile(`(?i)\b([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b`)

// ARPing sends ARP requests for ip from the VM's eth0 and returns the MAC
// that answered first; ok is false if nothing answered within about 1 s.
func (v *VM) ARPing(ctx context.Context, ip netip.Addr) (mac string, ok bool) {
	l := v.lab
	l.arpingOnce.Do(func() {
		out, _ := runCombined(ctx, "arping", "--help")
		l.arpingHabets = strings.Contains(out, "Habets")
	})
	var argv []string
	if l.arpingHabets {
		argv = []string{"arping", "-i", VMIface, "-c", "4", "-C", "1", "-W", "0.25", "-w", "1", "-r", ip.String()}
	} else { // iputils
		argv = []string{"arping", "-I", VMIface, "-c", "2", "-w", "1", "-f", ip.String()}
	}
	out, err := runCombined(ctx, nsArgv(v.netns, argv)...)
	if err != nil && exitCode(err) != 1 {
		l.log.WithError(err).WithField("vm", v.name).Warn("arping failed")
	}
	if err != nil {
		return "", false
	}
	m := macRE.FindStringSubmatch(out)
	if m == nil {
		return "", false
	}
	return strings.ToLower(m[1]), true
}

// Capture is a tcpdump running in a lab namespace (a VM's or the
// internet's).
type Capture struct {
	lab   *Lab
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed when stdout is drained
	once  sync.Once
	res   []string
}

// Capture starts `tcpdump -e -n -l -i eth0 FILTER` in the VM's namespace and
// returns once tcpdump listens. Stop returns the captured lines; killing the
// capture with ctx also ends it. The tcpdump is tracked in state.json until
// stopped.
func (v *VM) Capture(ctx context.Context, filter string) (*Capture, error) {
	return v.CaptureOn(ctx, VMIface, filter)
}

// CaptureOn is Capture on another of the VM's devices (a secondary NIC's
// eth1, ..., or "any").
func (v *VM) CaptureOn(ctx context.Context, iface, filter string) (*Capture, error) {
	return v.lab.capture(ctx, v.netns, iface, "vm "+v.name, "tcpdump/"+v.name, filter)
}

// capture starts `tcpdump -e -n -l -i IFACE FILTER` in netns, tracked as
// track; who names it in errors.
func (l *Lab) capture(ctx context.Context, netns, iface, who, track, filter string) (*Capture, error) {
	argv := nsArgv(netns, []string{"tcpdump", "-e", "-n", "-l", "-i", iface})
	if filter = strings.TrimSpace(filter); filter != "" {
		argv = append(argv, filter)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 5 * time.Second
	// If this process dies, so does the capture.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start tcpdump: %w", who, err)
	}
	c := &Capture{lab: l, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.TrimSpace(line) == "" {
				continue
			}
			c.mu.Lock()
			// Continuation lines (hex dumps of unknown ethertypes, verbose
			// decodes) start with white space: keep one entry per frame.
			if n := len(c.lines); n > 0 && (line[0] == ' ' || line[0] == '\t') {
				c.lines[n-1] += " " + strings.TrimSpace(line)
			} else {
				c.lines = append(c.lines, line)
			}
			c.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	ready := make(chan struct{})
	var errOut strings.Builder
	var errMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			errMu.Lock()
			errOut.WriteString(sc.Text() + "\n")
			errMu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "listening on") {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	if err := l.TrackProcess(track, cmd.Process.Pid); err != nil {
		c.kill()
		return nil, err
	}
	select {
	case <-ready:
		return c, nil
	case <-c.done:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	c.kill()
	errMu.Lock()
	defer errMu.Unlock()
	return nil, fmt.Errorf("%s: tcpdump %q did not start: %s", who, filter, lastLines(errOut.String(), 3))
}

func (c *Capture) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
	_ = c.cmd.Wait()
	c.lab.untrack(c.cmd.Process.Pid)
}

// Lines returns the frames captured so far (one entry per frame).
func (c *Capture) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

// Stop ends the capture (SIGINT, so tcpdump flushes) and returns what it
// printed, one entry per frame (continuation lines joined to their frame's). Calling it again returns the same lines.
func (c *Capture) Stop() []string {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		_ = c.cmd.Wait()
		c.lab.untrack(c.cmd.Process.Pid)
		c.res = c.Lines()
	})
	return slices.Clone(c.res)
}

// secondaryIndex is the number of a VM device named ethN (0 otherwise).
func secondaryIndex(iface string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(iface, "eth"))
	if err != nil {
		return 0
	}
	return n
}
