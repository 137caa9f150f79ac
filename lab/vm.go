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

// VMIface is the name of a VM's NIC inside its namespace.
const VMIface = "eth0"

// VM is a namespace with one NIC plugged into its host's br-int.
type VM struct {
	lab   *Lab
	name  string
	host  *Host
	netns string
	nic   string // host-side veth = OVS port name on br-int
	mac   net.HardwareAddr
	gw    netip.Addr
	mtu   int
}

// Name is the VM's name and its port's iface-id.
func (v *VM) Name() string { return v.name }

// Host is the host the VM is plugged into.
func (v *VM) Host() *Host { return v.host }

// Netns is the VM's network namespace.
func (v *VM) Netns() string { return v.netns }

// NIC is the name of the host side of the VM's veth, i.e. its port on br-int.
func (v *VM) NIC() string { return v.nic }

// MAC is the MAC of the VM's eth0.
func (v *VM) MAC() net.HardwareAddr { return slices.Clone(v.mac) }

// Gateway is the VM's default gateway (invalid if none).
func (v *VM) Gateway() netip.Addr { return v.gw }

// Addrs returns the VM's addresses, primary first.
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

// OFPort returns the OpenFlow port number of the VM's port on br-int.
func (v *VM) OFPort(ctx context.Context) (int, error) {
	out, err := v.host.ovs.Vsctl(ctx, "get", "Interface", v.nic, "ofport")
	if err != nil {
		return 0, fmt.Errorf("vm %s: ofport: %w", v.name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("vm %s: port %s has no ofport (%q)", v.name, v.nic, strings.TrimSpace(out))
	}
	return n, nil
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

// newVM validates spec, reserves the VM's name and device index and records
// it in the state (before anything is created).
func (l *Lab) newVM(spec VMSpec) (*VM, error) {
	if !vmNameRE.MatchString(spec.Name) {
		return nil, fmt.Errorf("lab %s: VM name %q must match %s", l.name, spec.Name, vmNameRE)
	}
	h, err := l.hostByName(spec.Host)
	if err != nil {
		return nil, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	if spec.MAC != nil && len(spec.MAC) != 6 {
		return nil, fmt.Errorf("lab %s: VM %s: MAC %s is not an Ethernet address", l.name, spec.Name, spec.MAC)
	}
	if spec.MTU < 0 || (spec.MTU != 0 && spec.MTU < 68) {
		return nil, fmt.Errorf("lab %s: VM %s: bad MTU %d", l.name, spec.Name, spec.MTU)
	}
	for _, p := range spec.Addrs {
		if !p.IsValid() {
			return nil, fmt.Errorf("lab %s: VM %s: invalid address", l.name, spec.Name)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, fmt.Errorf("lab %s is down", l.name)
	}
	if _, dup := l.vms[spec.Name]; dup {
		return nil, fmt.Errorf("lab %s: VM %s already exists", l.name, spec.Name)
	}
	idx := l.st.NextVM
	l.st.NextVM++
	mac := slices.Clone(spec.MAC)
	if mac == nil {
		f := fnv.New32a()
		f.Write([]byte(l.name))
		s := f.Sum32()
		mac = net.HardwareAddr{0x0a, byte(s >> 16), byte(s >> 8), byte(s), byte(idx >> 8), byte(idx)}
	}
	vm := &VM{
		lab:   l,
		name:  spec.Name,
		host:  h,
		netns: l.name + "-v-" + spec.Name,
		nic:   fmt.Sprintf("%sv%d", l.name, idx),
		mac:   mac,
		gw:    spec.Gateway.Unmap(),
		mtu:   spec.MTU,
	}
	if len(vm.nic) > 15 {
		return nil, fmt.Errorf("lab %s: too many VMs (device name %s)", l.name, vm.nic)
	}
	l.vms[spec.Name] = vm
	l.st.VMs = append(l.st.VMs, vmState{
		Name: spec.Name, Host: spec.Host, Netns: vm.netns, NIC: vm.nic, MAC: mac.String(),
		Addrs: slices.Clone(spec.Addrs), Gateway: vm.gw, MTU: spec.MTU,
	})
	l.st.Devices = append(l.st.Devices, deviceState{Netns: h.netns, Name: vm.nic}, deviceState{Netns: vm.netns, Name: VMIface})
	if err := l.saveLocked(); err != nil {
		return nil, err
	}
	return vm, nil
}

// plug creates the VM's namespace and veth and adds the host end to br-int.
func (v *VM) plug(ctx context.Context) error {
	h := v.host
	if err := v.lab.addNetns(ctx, v.netns, true); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	vmCmd := func(argv ...string) []string { return nsArgv(v.netns, argv) }
	mtu := []string{}
	if v.mtu > 0 {
		mtu = []string{"mtu", strconv.Itoa(v.mtu)}
	}
	steps := [][]string{
		{"ip", "-n", h.netns, "link", "add", v.nic, "type", "veth", "peer", "name", VMIface, "netns", v.netns},
		append([]string{"ip", "-n", v.netns, "link", "set", VMIface, "address", v.mac.String()}, mtu...),
		// TCP through the userspace datapath needs checksums filled in by the sender.
		vmCmd("ethtool", "-K", VMIface, "tx", "off"),
	}
	for _, p := range v.Addrs() {
		steps = append(steps, addrCmd(v.netns, "add", p))
	}
	steps = append(steps,
		[]string{"ip", "-n", v.netns, "link", "set", VMIface, "up"},
		append([]string{"ip", "-n", h.netns, "link", "set", v.nic, "up"}, mtu...),
	)
	if v.gw.IsValid() {
		r := []string{"ip", "-n", v.netns}
		if v.gw.Is6() {
			r = append(r, "-6")
		}
		r = append(r, "route", "add", "default", "via", v.gw.String(), "dev", VMIface)
		if !slices.ContainsFunc(v.Addrs(), func(p netip.Prefix) bool { return p.Masked().Contains(v.gw) }) {
			r = append(r, "onlink")
		}
		steps = append(steps, r)
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("vm %s: %w", v.name, err)
		}
	}
	if _, err := h.ovs.Vsctl(ctx, "add-port", IntegrationBridge, v.nic, "--",
		"set", "Interface", v.nic,
		"external_ids:iface-id="+v.name,
		"external_ids:attached-mac="+v.mac.String(),
		"external_ids:iface-status=active"); err != nil {
		return fmt.Errorf("vm %s: plug into %s on %s: %w", v.name, IntegrationBridge, h.name, err)
	}
	if _, err := v.OFPort(ctx); err != nil {
		return err
	}
	v.lab.log.WithFields(logrus.Fields{"vm": v.name, "host": h.name, "nic": v.nic, "mac": v.mac.String()}).Debug("VM plugged")
	return nil
}

func addrCmd(ns, op string, p netip.Prefix) []string {
	c := []string{"ip", "-n", ns, "addr", op, p.String(), "dev", VMIface}
	if op == "add" && p.Addr().Is6() {
		c = append(c, "nodad")
	}
	return c
}

// RemoveVM unplugs a VM: deletes its port from br-int and its namespace
// (which destroys the veth).
func (l *Lab) RemoveVM(ctx context.Context, name string) error {
	l.mu.Lock()
	vm := l.vms[name]
	l.mu.Unlock()
	if vm == nil {
		return fmt.Errorf("lab %s: no VM %q", l.name, name)
	}
	var errs []error
	if vm.host.ovs != nil {
		if _, err := vm.host.ovs.Vsctl(ctx, "--if-exists", "del-port", IntegrationBridge, vm.nic); err != nil {
			errs = append(errs, fmt.Errorf("vm %s: unplug: %w", name, err))
		}
	}
	if netnsExists(vm.netns) {
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
	l.dropNetns(vm.netns, vm.nic)
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
	if _, err := run(ctx, addrCmd(v.netns, "add", p)...); err != nil {
		return fmt.Errorf("vm %s: %w", v.name, err)
	}
	return v.updateAddrs(func(a []netip.Prefix) []netip.Prefix { return append(a, p) })
}

// DelAddr removes an address from the VM's eth0.
func (v *VM) DelAddr(ctx context.Context, p netip.Prefix) error {
	if _, err := run(ctx, addrCmd(v.netns, "del", p)...); err != nil {
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
	if len(frame) < 14 {
		return fmt.Errorf("vm %s: frame of %d bytes is shorter than an Ethernet header", v.name, len(frame))
	}
	if _, err := run(ctx, nsArgv(v.netns, []string{"/usr/bin/python3", "-c", sendFrameScript, VMIface, hex.EncodeToString(frame)})...); err != nil {
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
	return v.lab.capture(ctx, v.netns, VMIface, "vm "+v.name, "tcpdump/"+v.name, filter)
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
