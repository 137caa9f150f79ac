package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/sirupsen/logrus"
)

// UnderlayMTU is the default MTU of the underlay links (HostSpec.UnderlayMTU):
// jumbo, so that a VM with the default MTU of 1500 fits in a tunnel (VXLAN
// adds 50 bytes, Geneve more); the userspace datapath drops what does not
// fit the veth.
const UnderlayMTU = 9000

// Host is a hypervisor: a namespace with a private OVS.
type Host struct {
	lab   *Lab
	name  string
	netns string
	ip    netip.Addr
	ulDev string // underlay veth, host side (on br-phy); the underlay side is ulDev+"p"
	ulMTU int    // guarded by lab.mu after Up
	args  []string
	ovs   *ovsproc.OVS
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

// Netns is the host's network namespace (where its OVS daemons run).
func (h *Host) Netns() string { return h.netns }

// UnderlayIP is the host's address on the underlay (on br-phy).
func (h *Host) UnderlayIP() netip.Addr { return h.ip }

// UnderlayMTU is the MTU of the host's underlay link (its underlay veth and
// br-phy).
func (h *Host) UnderlayMTU() int {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return h.ulMTU
}

// OVS is the host's private Open vSwitch.
func (h *Host) OVS() *ovsproc.OVS { return h.ovs }

// Bridge is the integration bridge VMs are plugged into ("br-int").
func (h *Host) Bridge() string { return IntegrationBridge }

// Exec runs argv inside the host's namespace and returns its combined
// stdout and stderr.
func (h *Host) Exec(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("host %s: exec: empty command", h.name)
	}
	return runCombined(ctx, nsArgv(h.netns, argv)...)
}

// underlayMAC is the fixed MAC of br-phy, so peers' tunnel neighbour caches
// stay valid across ovs-vswitchd restarts.
func (h *Host) underlayMAC() string {
	a := h.ip.As4()
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3])
}

func (h *Host) logger() logrus.FieldLogger { return h.lab.log.WithField("host", h.name) }

// up creates the host's namespace, starts its OVS and connects it to the
// underlay through br-phy.
func (h *Host) up(ctx context.Context) error {
	l := h.lab
	t0 := time.Now()
	if err := l.addNetns(ctx, h.netns, false); err != nil {
		return fmt.Errorf("host %s: %w", h.name, err)
	}
	ovs, err := startOVS(ctx, filepath.Join(l.dir, h.name), h.netns, h.args)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.name, err)
	}
	h.ovs = ovs
	if err := h.recordPIDs(); err != nil {
		return err
	}

	ulPeer := h.ulDev + "p"
	mtu := strconv.Itoa(h.ulMTU)
	if err := l.addDevice(h.netns, h.ulDev); err != nil {
		return fmt.Errorf("host %s: %w", h.name, err)
	}
	if err := l.addDevice(l.st.UnderlayNetns, ulPeer); err != nil {
		return fmt.Errorf("host %s: %w", h.name, err)
	}
	steps := [][]string{
		{"-n", l.st.UnderlayNetns, "link", "add", ulPeer, "mtu", mtu, "type", "veth", "peer", "name", h.ulDev, "mtu", mtu, "netns", h.netns},
		{"-n", l.st.UnderlayNetns, "link", "set", ulPeer, "master", l.st.UnderlayDev, "up"},
		{"-n", h.netns, "link", "set", h.ulDev, "up"},
	}
	for _, s := range steps {
		if _, err := ip(ctx, "", s...); err != nil {
			return fmt.Errorf("host %s: underlay veth: %w", h.name, err)
		}
	}
	if _, err := ovs.Vsctl(ctx,
		"add-br", PhysicalBridge, "--", "set", "bridge", PhysicalBridge, "datapath_type=netdev",
		"other_config:hwaddr="+h.underlayMAC(), "--",
		"add-port", PhysicalBridge, h.ulDev, "--",
		// The MTU of both, so that OVS keeps it (br-phy's device would
		// otherwise get the default 1500).
		"set", "Interface", PhysicalBridge, "mtu_request="+mtu, "--",
		"set", "Interface", h.ulDev, "mtu_request="+mtu); err != nil {
		return fmt.Errorf("host %s: create %s: %w", h.name, PhysicalBridge, err)
	}
	if err := h.configureUnderlayIP(ctx); err != nil {
		return err
	}
	h.logger().WithFields(logrus.Fields{"netns": h.netns, "underlay_ip": h.ip, "took": time.Since(t0).Round(time.Millisecond)}).
		Debug("host up")
	return nil
}

// SetUnderlayMTU changes the MTU of the host's underlay link at run time:
// both ends of its underlay veth and br-phy.
func (h *Host) SetUnderlayMTU(ctx context.Context, mtu int) error {
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("host %s: underlay MTU %d is not between 68 and 65535", h.name, mtu)
	}
	l := h.lab
	m := strconv.Itoa(mtu)
	if _, err := ip(ctx, l.st.UnderlayNetns, "link", "set", "dev", h.ulDev+"p", "mtu", m); err != nil {
		return fmt.Errorf("host %s: underlay MTU: %w", h.name, err)
	}
	if _, err := h.ovs.Vsctl(ctx, "set", "Interface", PhysicalBridge, "mtu_request="+m, "--",
		"set", "Interface", h.ulDev, "mtu_request="+m); err != nil {
		return fmt.Errorf("host %s: underlay MTU: %w", h.name, err)
	}
	// ovs-vsctl returns once ovs-vswitchd reconfigured; make sure the
	// kernel devices have it.
	for _, dev := range []string{h.ulDev, PhysicalBridge} {
		if _, err := ip(ctx, h.netns, "link", "set", "dev", dev, "mtu", m); err != nil {
			return fmt.Errorf("host %s: underlay MTU: %w", h.name, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	h.ulMTU = mtu
	if hs := l.st.host(h.name); hs != nil {
		hs.UnderlayMTU = mtu
	}
	return l.saveLocked()
}

// configureUnderlayIP puts the underlay address on br-phy's internal port
// (where ovs-vswitchd's route cache finds it for tunnels); idempotent.
func (h *Host) configureUnderlayIP(ctx context.Context) error {
	p := netip.PrefixFrom(h.ip, underlayPrefix.Bits()).String()
	if _, err := ip(ctx, h.netns, "addr", "replace", p, "dev", PhysicalBridge); err != nil {
		return fmt.Errorf("host %s: underlay IP: %w", h.name, err)
	}
	if _, err := ip(ctx, h.netns, "link", "set", PhysicalBridge, "up"); err != nil {
		return fmt.Errorf("host %s: underlay IP: %w", h.name, err)
	}
	return nil
}

func (h *Host) recordPIDs() error {
	dir := h.ovs.Dir()
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	hs := l.st.host(h.name)
	hs.VswitchdPID = readPidfile(filepath.Join(dir, "ovs-vswitchd.pid"))
	hs.OvsdbPID = readPidfile(filepath.Join(dir, "ovsdb-server.pid"))
	return l.saveLocked()
}

// PIDs returns the PIDs of the host's ovsdb-server and ovs-vswitchd.
func (h *Host) PIDs() (ovsdbServer, vswitchd int) {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	hs := h.lab.st.host(h.name)
	return hs.OvsdbPID, hs.VswitchdPID
}

// brPhyMAC reads the MAC of br-phy in the host's namespace.
func (h *Host) brPhyMAC(ctx context.Context) (string, error) {
	out, err := ip(ctx, h.netns, "-j", "link", "show", "dev", PhysicalBridge)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", h.name, err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return "", fmt.Errorf("host %s: parse `ip -j link show %s`: %v", h.name, PhysicalBridge, err)
	}
	return links[0].Address, nil
}

// resolvePeers pings every other host on the underlay (failing if one stays
// unreachable for 10 s) and then sets each peer's br-phy MAC in
// ovs-vswitchd's tunnel neighbour cache, so that the first tunnelled packet
// is not dropped while OVS resolves the neighbour. Entries still age out
// after an hour without tunnelled traffic to that peer (OVS's maximum).
func (h *Host) resolvePeers(ctx context.Context) error {
	// Keep learnt neighbours as long as OVS allows (default 15 min idle).
	if _, err := h.ovs.Appctl(ctx, "tnl/neigh/aging", "3600"); err != nil {
		h.logger().WithError(err).Debug("tnl/neigh/aging not supported")
	}
	for _, p := range h.lab.Hosts() {
		if p == h {
			continue
		}
		if err := h.pingUnderlay(ctx, p.ip, 10*time.Second); err != nil {
			return err
		}
		mac, err := p.brPhyMAC(ctx)
		if err != nil {
			return err
		}
		if _, err := h.ovs.Appctl(ctx, "tnl/neigh/set", PhysicalBridge, p.ip.String(), mac); err != nil {
			return fmt.Errorf("host %s: pre-resolve underlay neighbour %s: %w", h.name, p.name, err)
		}
	}
	return nil
}

// pingUnderlay pings dst from the host's namespace until one reply or the
// timeout.
func (h *Host) pingUnderlay(ctx context.Context, dst netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		_, err := run(ctx, nsArgv(h.netns, []string{"ping", "-n", "-q", "-c", "1", "-W", "1", dst.String()})...)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("host %s: underlay peer %s unreachable: %w", h.name, dst, last)
}

// RestartVswitchd stops the host's ovs-vswitchd by PID and starts it again
// (OpenFlow flows are lost, as on a real host; OVSDB content is kept). It
// then restores br-phy's underlay address and the tunnel neighbour cache.
func (h *Host) RestartVswitchd(ctx context.Context) error {
	if err := h.StopVswitchd(); err != nil {
		return err
	}
	return h.StartVswitchd(ctx)
}

// StopVswitchd stops the host's ovs-vswitchd (the host fails: its bridges
// stop forwarding and its switch leaves the controller); StartVswitchd
// brings it back.
func (h *Host) StopVswitchd() error {
	if err := h.ovs.StopVswitchd(); err != nil {
		return fmt.Errorf("host %s: stop ovs-vswitchd: %w", h.name, err)
	}
	return nil
}

// StartVswitchd starts the host's ovs-vswitchd again after StopVswitchd,
// with its underlay address and neighbours restored.
func (h *Host) StartVswitchd(ctx context.Context) error {
	log := h.logger()
	if err := h.ovs.StartVswitchd(ctx); err != nil {
		return fmt.Errorf("host %s: start ovs-vswitchd: %w", h.name, err)
	}
	if err := h.recordPIDs(); err != nil {
		return err
	}
	if err := h.configureUnderlayIP(ctx); err != nil {
		return err
	}
	if err := h.resolvePeers(ctx); err != nil {
		return err
	}
	_, pid := h.PIDs()
	log.WithField("pid", pid).Info("ovs-vswitchd restarted")
	return nil
}

// hostByName returns the named host (error if unknown).
func (l *Lab) hostByName(name string) (*Host, error) {
	h := l.Host(name)
	if h == nil {
		return nil, fmt.Errorf("lab %s: unknown host %q", l.name, name)
	}
	return h, nil
}

// startOVS starts a private OVS in dir (cleared of a lost lab's files
// first) running in netns.
func startOVS(ctx context.Context, dir, netns string, args []string) (*ovsproc.OVS, error) {
	if err := clearStaleOVSDir(dir); err != nil {
		return nil, err
	}
	ovs, err := ovsproc.Start(ctx, ovsproc.Config{Dir: dir, Netns: netns, VswitchdArgs: args})
	if err != nil {
		return nil, fmt.Errorf("start OVS: %w", err)
	}
	return ovs, nil
}

// clearStaleOVSDir removes what a lab whose state.json is gone left in a
// host's OVS directory (ovsproc would reuse its conf.db), unless one of its
// daemons still runs.
func clearStaleOVSDir(dir string) error {
	for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
		pid := readPidfile(filepath.Join(dir, d+".pid"))
		if pid == 0 {
			continue
		}
		if _, ok := procStart(pid); ok && strings.Contains(procCmdline(pid), dir+"/") {
			return fmt.Errorf("a stale %s (pid %d) still runs in %s; stop it first", d, pid, dir)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	return nil
}
