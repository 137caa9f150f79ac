// Package lab is a local multi-host sandbox: every host is a network
// namespace running its own private ovsdb-server and ovs-vswitchd (userspace
// datapath), the hosts share an underlay (a Linux bridge in one more
// namespace, reached through a veth on each host's OVS bridge br-phy, with a
// per-host MTU), and every VM is a namespace whose eth0 is a veth plugged
// into its host's br-int with external_ids:iface-id=<VM name>, as a
// hypervisor would; a VM may have secondary NICs (eth1, ...) with their own
// iface-ids, and may move to another host (MoveVM). Optionally one more
// namespace stands for the internet behind gateway hosts' uplinks
// (InternetSpec). Baseline pairs (AddVethPair, AddNormalBridgePair) give
// figures to compare the VMs' paths with.
//
// The lab knows nothing about tenant policy. Every namespace and device it
// makes carries the lab name as a prefix, everything it makes is recorded in
// Dir/state.json before it is made, and Down (or DownDir after a crash)
// removes it all, stopping only the processes the lab started or was told to
// track, by PID.
package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/sirupsen/logrus"
)

// IntegrationBridge is the bridge VMs are plugged into on every host.
const IntegrationBridge = "br-int"

// PhysicalBridge is the OVS bridge holding a host's underlay veth and IP.
const PhysicalBridge = "br-phy"

// UnderlayCIDR is the underlay network; hosts get .11 upwards by default.
const UnderlayCIDR = "172.31.0.0/24"

var underlayPrefix = netip.MustParsePrefix(UnderlayCIDR) // read-only

// Spec describes a lab.
type Spec struct {
	Name  string // short lab name [a-z0-9]{1,6}; prefix of every netns/device
	Dir   string // state dir; default /tmp/openvpc-lab-<name>
	Hosts []HostSpec
	VMs   []VMSpec
	// SetupHost, if set, is called for each host after its OVS is up and the
	// underlay between all hosts works, before its VMs are plugged; it must
	// create br-int (datapath_type=netdev). Calls for different hosts run
	// concurrently. If nil, the lab creates br-int itself with ovs-vsctl:
	// datapath_type=netdev, fail_mode=secure, nothing else.
	SetupHost func(ctx context.Context, h *Host) error
	// Internet, if set, adds the outside world behind gateway hosts'
	// uplinks (see InternetSpec); it exists before SetupHost runs.
	Internet *InternetSpec
	// Ephemeral records the process that runs Up as the lab's owner: a lab
	// of a test binary that died before its teardown (a panicking test)
	// is then removed by SweepOrphans. Labs meant to outlive their
	// creator (`openvpc lab up`) leave it false.
	Ephemeral bool
}

// HostSpec describes a hypervisor.
type HostSpec struct {
	Name         string     // [A-Za-z0-9_-]{1,32}
	UnderlayIP   netip.Addr // optional, inside UnderlayCIDR; default .11 upwards
	VswitchdArgs []string   // extra ovs-vswitchd arguments (e.g. --enable-dummy)
	// UnderlayMTU is the MTU of the host's link to the underlay: both ends
	// of its underlay veth and br-phy (which holds its underlay IP), so
	// that tunnelled packets larger than this are dropped on the way out,
	// as on a real network. 0 = UnderlayMTU (9000, jumbo). The underlay
	// bridge forwards nothing larger than the smaller MTU of the two hosts'
	// links.
	UnderlayMTU int
}

// VMSpec describes a VM: its primary NIC (eth0) and any secondary NICs.
type VMSpec struct {
	Name    string           // also the iface-id (external_ids:iface-id) of its primary port; [A-Za-z0-9_.-]{1,64}
	Host    string           // name of its host
	MAC     net.HardwareAddr // nil = a locally administered MAC derived from the lab and VM index
	Addrs   []netip.Prefix   // primary first, with the subnet's prefix length, e.g. 10.0.1.10/24
	Gateway netip.Addr       // default route via this (invalid = no default route)
	MTU     int              // 0 = leave default (set on both ends of the veth)
	// Extra are secondary NICs: eth1, eth2, ... in this order, plugged
	// into the same host's br-int, each with its own iface-id.
	Extra []NICSpec
}

// NICSpec describes a VM's secondary NIC. It gets the on-link routes of its
// addresses only: the default route stays on eth0.
type NICSpec struct {
	Name  string           // its iface-id, unique among the lab's VMs and NICs; [A-Za-z0-9_.-]{1,64}
	MAC   net.HardwareAddr // nil = derived from the lab and its device index
	Addrs []netip.Prefix   // with the subnet's prefix length
	MTU   int              // 0 = leave default (set on both ends of the veth)
}

// Lab is a running sandbox. Its methods are safe for concurrent use.
type Lab struct {
	name      string
	dir       string
	setupHost func(ctx context.Context, h *Host) error
	log       logrus.FieldLogger

	mu    sync.Mutex
	st    state
	hosts map[string]*Host
	vms   map[string]*VM
	pairs map[string]*Pair
	inet  *Internet // nil without Spec.Internet
	down  bool
	seq   int // capture sequence number

	arpingOnce   sync.Once
	arpingHabets bool
}

// UniqueName returns a lab name unique among the labs of running processes:
// the letter prefix followed by this process's PID in base 36 (at most 6
// characters in all). Labs of one process need different prefixes.
func UniqueName(prefix byte) string {
	n := string(prefix) + strconv.FormatInt(int64(os.Getpid()), 36)
	if len(n) > 6 { // PIDs above 36^5 (pid_max is at most 2^22 < 36^5)
		n = n[:1] + n[len(n)-5:]
	}
	return n
}

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9]{1,6}$`)
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	vmNameRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// maxSockPath is the longest unix socket path OVS needs under a host's dir
// (sun_path holds 108 bytes including the NUL; keep a margin).
const maxSockPath = 100

// Up brings a lab up: the underlay, the hosts and the internet (in
// parallel), the uplinks, br-int on each host (SetupHost or a default one),
// then the VMs. It checks that every host
// reaches every other on the underlay and pre-resolves the underlay
// neighbours in each ovs-vswitchd's tunnel neighbour cache. A Dir holding the
// state.json of an earlier lab is torn down first. On error Up removes what
// it made.
func Up(ctx context.Context, spec Spec, log logrus.FieldLogger) (*Lab, error) {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	if err := validate(&spec); err != nil {
		return nil, err
	}
	log = log.WithField("lab", spec.Name)

	if _, err := os.Stat(filepath.Join(spec.Dir, stateFile)); err == nil {
		log.WithField("dir", spec.Dir).Info("tearing down the previous lab in this dir")
		if err := downDir(ctx, spec.Dir, log); err != nil {
			return nil, fmt.Errorf("lab %s: tear down previous lab in %s: %w", spec.Name, spec.Dir, err)
		}
	}
	created := false
	if _, err := os.Stat(spec.Dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab %s: %w", spec.Name, err)
	}

	l := &Lab{
		name:      spec.Name,
		dir:       spec.Dir,
		setupHost: spec.SetupHost,
		log:       log,
		hosts:     map[string]*Host{},
		vms:       map[string]*VM{},
		st: state{
			Version:       stateVersion,
			Name:          spec.Name,
			Dir:           spec.Dir,
			CreatedDir:    created,
			UnderlayNetns: spec.Name + "-ul",
			UnderlayDev:   spec.Name + "ulbr",
		},
	}
	if spec.Ephemeral {
		if start, ok := procStart(os.Getpid()); ok {
			l.st.Owner = &procState{Name: "owner", PID: os.Getpid(), Start: start}
		}
	}
	if err := l.up(ctx, spec); err != nil {
		if derr := l.Down(ctx); derr != nil {
			log.WithError(derr).Warn("cleanup after failed Up")
		}
		return nil, fmt.Errorf("lab %s up: %w", spec.Name, err)
	}
	return l, nil
}

func (l *Lab) up(ctx context.Context, spec Spec) error {
	l.mu.Lock()
	err := l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if err := l.upUnderlay(ctx); err != nil {
		return err
	}

	hosts := make([]*Host, len(spec.Hosts))
	next := underlayPrefix.Addr().As4()
	next[3] = 10
	used := map[netip.Addr]bool{}
	for _, hs := range spec.Hosts {
		used[hs.UnderlayIP] = true
	}
	for i, hs := range spec.Hosts {
		addr := hs.UnderlayIP
		if !addr.IsValid() {
			for {
				next[3]++
				if a := netip.AddrFrom4(next); !used[a] {
					addr = a
					used[a] = true
					break
				}
			}
		}
		hosts[i] = &Host{
			lab:   l,
			name:  hs.Name,
			netns: l.name + "-h-" + hs.Name,
			ip:    addr,
			ulDev: fmt.Sprintf("%su%d", l.name, i),
			ulMTU: cmp.Or(hs.UnderlayMTU, UnderlayMTU),
			args:  slices.Clone(hs.VswitchdArgs),
		}
		l.hosts[hs.Name] = hosts[i]
		l.st.Hosts = append(l.st.Hosts, hostState{
			Name:        hs.Name,
			Netns:       hosts[i].netns,
			OVSDir:      filepath.Join(l.dir, hs.Name),
			UnderlayIP:  addr,
			UnderlayDev: hosts[i].ulDev,
			UnderlayMTU: hosts[i].ulMTU,
		})
	}
	var inet *Internet
	if spec.Internet != nil {
		inet = l.newInternet(spec.Internet)
	}
	l.mu.Lock()
	err = l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}

	pctx, cancel := context.WithCancel(ctx)
	var inetErr error
	var wg sync.WaitGroup
	if inet != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if inetErr = inet.up(pctx); inetErr != nil {
				cancel()
			}
		}()
	}
	err = parallel(hosts, func(h *Host) error {
		err := h.up(pctx)
		if err != nil {
			cancel()
		}
		return err
	})
	wg.Wait() // never leave a creation running behind a failed Up's teardown
	cancel()
	if err := errors.Join(err, inetErr); err != nil {
		return err
	}
	if inet != nil {
		if err := inet.plug(ctx, spec.Internet.OnLink); err != nil {
			return err
		}
	}
	if err := parallel(hosts, func(h *Host) error { return h.resolvePeers(ctx) }); err != nil {
		return err
	}
	if err := parallel(hosts, func(h *Host) error {
		if l.setupHost != nil {
			if err := l.setupHost(ctx, h); err != nil {
				return fmt.Errorf("host %s: SetupHost: %w", h.name, err)
			}
			return nil
		}
		if _, err := h.ovs.Vsctl(ctx, "add-br", IntegrationBridge, "--", "set", "bridge", IntegrationBridge,
			"datapath_type=netdev", "fail_mode=secure"); err != nil {
			return fmt.Errorf("host %s: create %s: %w", h.name, IntegrationBridge, err)
		}
		return nil
	}); err != nil {
		return err
	}

	// Reserve the VM indexes in spec order so device names are stable, then
	// plug in parallel.
	vms := make([]*VM, len(spec.VMs))
	for i, vs := range spec.VMs {
		vm, err := l.newVM(vs)
		if err != nil {
			return err
		}
		vms[i] = vm
	}
	if err := parallel(vms, func(vm *VM) error { return vm.plug(ctx) }); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.saveLocked(); err != nil {
		return err
	}
	l.log.WithFields(logrus.Fields{"hosts": len(hosts), "vms": len(vms), "internet": inet != nil, "dir": l.dir}).Info("lab up")
	return nil
}

func validate(spec *Spec) error {
	if !labNameRE.MatchString(spec.Name) {
		return fmt.Errorf("lab: name %q must match %s", spec.Name, labNameRE)
	}
	if spec.Dir == "" {
		spec.Dir = "/tmp/openvpc-lab-" + spec.Name
	}
	d, err := filepath.Abs(spec.Dir)
	if err != nil {
		return fmt.Errorf("lab %s: dir: %w", spec.Name, err)
	}
	spec.Dir = filepath.Clean(d)
	if spec.Dir == "/" {
		return fmt.Errorf("lab %s: refusing Dir /", spec.Name)
	}
	if len(spec.Hosts) == 0 {
		return fmt.Errorf("lab %s: no hosts", spec.Name)
	}
	hosts := map[string]bool{}
	ips := map[netip.Addr]string{}
	for i, h := range spec.Hosts {
		if !hostNameRE.MatchString(h.Name) {
			return fmt.Errorf("lab %s: host name %q must match %s", spec.Name, h.Name, hostNameRE)
		}
		if hosts[h.Name] {
			return fmt.Errorf("lab %s: duplicate host %q", spec.Name, h.Name)
		}
		hosts[h.Name] = true
		if p := filepath.Join(spec.Dir, h.Name, "ovsdb-server.ctl"); len(p) > maxSockPath {
			return fmt.Errorf("lab %s: socket path %s too long for a unix socket; use a shorter Dir", spec.Name, p)
		}
		if i > 200 {
			return fmt.Errorf("lab %s: too many hosts", spec.Name)
		}
		if !checkMTU(h.UnderlayMTU) {
			return fmt.Errorf("lab %s: host %s: underlay MTU %d is not between 68 and 65535", spec.Name, h.Name, h.UnderlayMTU)
		}
		if h.UnderlayIP.IsValid() {
			a := h.UnderlayIP.Unmap()
			if !underlayPrefix.Contains(a) || a == underlayPrefix.Addr() || a.As4()[3] == 255 {
				return fmt.Errorf("lab %s: host %s: underlay IP %s must be a host address in %s", spec.Name, h.Name, a, underlayPrefix)
			}
			if o, dup := ips[a]; dup {
				return fmt.Errorf("lab %s: hosts %s and %s share underlay IP %s", spec.Name, o, h.Name, a)
			}
			ips[a] = h.Name
			spec.Hosts[i].UnderlayIP = a
		}
	}
	if n := len(spec.Hosts) + len(ips); n > 240 {
		return fmt.Errorf("lab %s: too many hosts for %s", spec.Name, underlayPrefix)
	}
	if err := validateInternet(spec, hosts); err != nil {
		return err
	}
	vms := map[string]bool{}
	for _, v := range spec.VMs {
		if vms[v.Name] {
			return fmt.Errorf("lab %s: duplicate VM %q", spec.Name, v.Name)
		}
		vms[v.Name] = true
		for _, e := range v.Extra {
			if vms[e.Name] {
				return fmt.Errorf("lab %s: VM %s: NIC name %q is another VM's or NIC's", spec.Name, v.Name, e.Name)
			}
			vms[e.Name] = true
		}
		if !hosts[v.Host] {
			return fmt.Errorf("lab %s: VM %s: unknown host %q", spec.Name, v.Name, v.Host)
		}
	}
	return nil
}

// upUnderlay creates the underlay namespace and its Linux bridge.
func (l *Lab) upUnderlay(ctx context.Context) error {
	ns, br := l.st.UnderlayNetns, l.st.UnderlayDev
	if err := l.addNetns(ctx, ns, false); err != nil {
		return err
	}
	if err := l.addDevice(ns, br); err != nil {
		return err
	}
	if _, err := ip(ctx, ns, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return fmt.Errorf("underlay bridge: %w", err)
	}
	if _, err := ip(ctx, ns, "link", "set", br, "up"); err != nil {
		return fmt.Errorf("underlay bridge: %w", err)
	}
	return nil
}

// addNetns records then creates a namespace with loopback up and, unless
// ipv6 is wanted, IPv6 disabled (no router solicitations, MLD or DAD noise).
func (l *Lab) addNetns(ctx context.Context, ns string, ipv6 bool) error {
	if netnsExists(ns) { // not ours: never record (and so never delete) it
		return fmt.Errorf("netns %s already exists (left over from a lab whose state.json is gone? remove it with `ip netns del %s`)", ns, ns)
	}
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return fmt.Errorf("lab %s is down", l.name)
	}
	l.st.Netns = append(l.st.Netns, ns)
	err := l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("create netns: %w", err)
	}
	if _, err := ip(ctx, ns, "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	if !ipv6 {
		if _, err := run(ctx, nsArgv(ns, []string{"sysctl", "-qw",
			"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"})...); err != nil {
			return fmt.Errorf("netns %s: %w", ns, err)
		}
	}
	return nil
}

func (l *Lab) addDevice(ns, name string) error {
	if len(name) > 15 {
		return fmt.Errorf("device name %s longer than 15 characters", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Devices = append(l.st.Devices, deviceState{Netns: ns, Name: name})
	return l.saveLocked()
}

func (l *Lab) dropNetns(ns string, devices ...string) {
	l.st.Netns = slices.DeleteFunc(l.st.Netns, func(s string) bool { return s == ns })
	l.st.Devices = slices.DeleteFunc(l.st.Devices, func(d deviceState) bool {
		return d.Netns == ns || slices.Contains(devices, d.Name)
	})
}

// saveLocked writes state.json; l.mu must be held.
func (l *Lab) saveLocked() error {
	if l.down {
		return nil
	}
	if err := writeJSON(filepath.Join(l.dir, stateFile), &l.st); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return writeJSON(filepath.Join(l.dir, inventoryFile), l.inventoryLocked())
}

// Name is the lab's name (the prefix of its namespaces and devices).
func (l *Lab) Name() string { return l.name }

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return l.dir }

// Host returns the named host, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Hosts returns the hosts in spec order.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Host, 0, len(l.st.Hosts))
	for _, h := range l.st.Hosts {
		out = append(out, l.hosts[h.Name])
	}
	return out
}

// VM returns the named VM, or nil.
func (l *Lab) VM(name string) *VM {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.vms[name]
}

// Down stops every tracked process and both OVS daemons of every host (by
// PID), deletes every namespace the lab made and removes its files. It is
// safe to call more than once; later calls do nothing.
func (l *Lab) Down(ctx context.Context) error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	// Let in-flight operations see the lab is going away and stop saving.
	l.down = true
	st := l.st
	st.Processes = slices.Clone(l.st.Processes)
	st.Hosts = slices.Clone(l.st.Hosts)
	st.Netns = slices.Clone(l.st.Netns)
	st.Pairs = slices.Clone(l.st.Pairs)
	l.mu.Unlock()
	return teardown(ctx, &st, l.log)
}

// TrackProcess records a process (e.g. a controller the test started) in
// state.json; Down and DownDir stop it first (SIGTERM, then SIGKILL after
// 3 s). The process is identified by PID and start time, so a recycled PID is
// never signalled.
func (l *Lab) TrackProcess(name string, pid int) error {
	start, ok := procStart(pid)
	if !ok {
		return fmt.Errorf("lab %s: track %s: no live process %d", l.name, name, pid)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return fmt.Errorf("lab %s is down", l.name)
	}
	l.st.Processes = append(l.st.Processes, procState{Name: name, PID: pid, Start: start})
	return l.saveLocked()
}

func (l *Lab) untrack(pid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Processes = slices.DeleteFunc(l.st.Processes, func(p procState) bool { return p.PID == pid })
	_ = l.saveLocked()
}
