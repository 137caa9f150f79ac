package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/sirupsen/logrus"
)

// Kinds of baseline pairs.
const (
	PairVeth   = "veth"   // AddVethPair: the two ends of one veth
	PairNormal = "normal" // AddNormalBridgePair: through a private OVS bridge with one NORMAL flow
)

// PairBridge is the OVS bridge of a NORMAL-bridge pair.
const PairBridge = "br0"

// PairSpec describes a baseline pair: two namespaces, a and b, with one
// device eth0 each, joined directly (AddVethPair) or through a private
// OVS bridge (AddNormalBridgePair), for figures to compare the lab's VM
// to VM paths with (e.g. iperf3 throughput).
type PairSpec struct {
	Name string // [a-z0-9]{1,8}, unique among the lab's pairs
	// Addrs of a's and b's eth0; zero: 10.254.0.1/24 and 10.254.0.2/24
	// (each pair is a network of its own).
	Addrs [2]netip.Prefix
	MTU   int // of every device of the pair; 0 = the kernel's default (1500)
	// TxChecksumOff turns TX checksum offload (and with it TSO) off on a
	// veth pair's ends, as on the lab's VMs; a NORMAL-bridge pair has it
	// off always (TCP through the userspace datapath needs real checksums).
	TxChecksumOff bool
}

var pairNameRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// Pair is a baseline pair of namespaces.
type Pair struct {
	lab  *Lab
	name string
	kind string
	a, b *PairEnd
	sw   string       // the switch's namespace (NORMAL pairs)
	ovs  *ovsproc.OVS // NORMAL pairs
}

// PairEnd is one namespace of a pair; like a VM it has Exec, Ping and
// Capture (on its eth0).
type PairEnd struct {
	lab   *Lab
	name  string
	netns string
	addr  netip.Prefix
}

// Name is the pair's name.
func (p *Pair) Name() string { return p.name }

// Kind is PairVeth or PairNormal.
func (p *Pair) Kind() string { return p.kind }

// A is the pair's first end.
func (p *Pair) A() *PairEnd { return p.a }

// B is the pair's second end.
func (p *Pair) B() *PairEnd { return p.b }

// Netns is the namespace of a NORMAL pair's OVS ("" for a veth pair).
func (p *Pair) Netns() string { return p.sw }

// OVS is a NORMAL pair's private Open vSwitch (nil for a veth pair); its
// bridge is PairBridge.
func (p *Pair) OVS() *ovsproc.OVS { return p.ovs }

// Name is "<pair>-a" or "<pair>-b".
func (e *PairEnd) Name() string { return e.name }

// Netns is the end's namespace.
func (e *PairEnd) Netns() string { return e.netns }

// Addr is the address of the end's eth0 with its prefix length.
func (e *PairEnd) Addr() netip.Prefix { return e.addr }

// IP is the address of the end's eth0.
func (e *PairEnd) IP() netip.Addr { return e.addr.Addr() }

// Iface is the end's device, eth0.
func (e *PairEnd) Iface() string { return VMIface }

// Exec runs argv inside the end's namespace and returns its combined stdout
// and stderr.
func (e *PairEnd) Exec(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("%s: exec: empty command", e.name)
	}
	return runCombined(ctx, nsArgv(e.netns, argv)...)
}

// Ping pings dst from the end (see VM.Ping).
func (e *PairEnd) Ping(ctx context.Context, dst netip.Addr, o PingOpts) (PingResult, error) {
	return ping(ctx, e.netns, e.name, dst, o)
}

// Capture starts tcpdump on the end's eth0 (see VM.Capture).
func (e *PairEnd) Capture(ctx context.Context, filter string) (*Capture, error) {
	return e.lab.capture(ctx, e.netns, VMIface, e.name, "tcpdump/"+e.name, filter)
}

// AddVethPair makes a baseline pair joined by one veth: a's eth0 is b's
// eth0's peer. Down removes it.
func (l *Lab) AddVethPair(ctx context.Context, spec PairSpec) (*Pair, error) {
	return l.addPair(ctx, spec, PairVeth)
}

// AddNormalBridgePair makes a baseline pair joined through a private OVS
// (ovsdb-server and ovs-vswitchd, userspace datapath like the hosts',
// started like theirs) in one more namespace: a bridge PairBridge
// (fail_mode=secure) with one flow, `actions=NORMAL`, and a veth to each
// end's eth0. Down removes it and stops its daemons.
func (l *Lab) AddNormalBridgePair(ctx context.Context, spec PairSpec) (*Pair, error) {
	return l.addPair(ctx, spec, PairNormal)
}

// Pair returns the named pair, or nil.
func (l *Lab) Pair(name string) *Pair {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pairs[name]
}

func (l *Lab) addPair(ctx context.Context, spec PairSpec, kind string) (*Pair, error) {
	if !pairNameRE.MatchString(spec.Name) {
		return nil, fmt.Errorf("lab %s: pair name %q must match %s", l.name, spec.Name, pairNameRE)
	}
	if !checkMTU(spec.MTU) {
		return nil, fmt.Errorf("lab %s: pair %s: bad MTU %d", l.name, spec.Name, spec.MTU)
	}
	if spec.Addrs == [2]netip.Prefix{} {
		spec.Addrs = [2]netip.Prefix{netip.MustParsePrefix("10.254.0.1/24"), netip.MustParsePrefix("10.254.0.2/24")}
	}
	for _, a := range spec.Addrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("lab %s: pair %s: invalid address", l.name, spec.Name)
		}
	}
	base := l.name + "-p-" + spec.Name
	p := &Pair{lab: l, name: spec.Name, kind: kind,
		a: &PairEnd{lab: l, name: spec.Name + "-a", netns: base + "-a", addr: spec.Addrs[0]},
		b: &PairEnd{lab: l, name: spec.Name + "-b", netns: base + "-b", addr: spec.Addrs[1]},
	}
	ps := pairState{Name: spec.Name, Kind: kind, Netns: []string{p.a.netns, p.b.netns}, Addrs: spec.Addrs, MTU: spec.MTU}
	if kind == PairNormal {
		p.sw = base + "-sw"
		ps.Netns = append(ps.Netns, p.sw)
		dir := filepath.Join(l.dir, "pair-"+spec.Name)
		if len(filepath.Join(dir, "ovsdb-server.ctl")) > maxSockPath {
			return nil, fmt.Errorf("lab %s: pair %s: socket path in %s too long for a unix socket", l.name, spec.Name, dir)
		}
		ps.OVS = &hostState{Name: "pair-" + spec.Name, Netns: p.sw, OVSDir: dir}
	}
	l.mu.Lock()
	switch {
	case l.down:
		l.mu.Unlock()
		return nil, fmt.Errorf("lab %s is down", l.name)
	case l.pairs[spec.Name] != nil:
		l.mu.Unlock()
		return nil, fmt.Errorf("lab %s: pair %s already exists", l.name, spec.Name)
	}
	if l.pairs == nil {
		l.pairs = map[string]*Pair{}
	}
	l.pairs[spec.Name] = p
	l.st.Pairs = append(l.st.Pairs, ps)
	err := l.saveLocked()
	l.mu.Unlock()
	if err == nil {
		err = p.up(ctx, spec)
	}
	if err != nil {
		if rerr := l.RemovePair(context.WithoutCancel(ctx), spec.Name); rerr != nil {
			l.log.WithError(rerr).Warn("cleanup after failed pair")
		}
		return nil, fmt.Errorf("lab %s: pair %s: %w", l.name, spec.Name, err)
	}
	l.log.WithFields(logrus.Fields{"pair": spec.Name, "kind": kind}).Debug("pair up")
	return p, nil
}

func (p *Pair) up(ctx context.Context, spec PairSpec) error {
	l := p.lab
	for _, ns := range []string{p.a.netns, p.b.netns} {
		if err := l.addNetns(ctx, ns, false); err != nil {
			return err
		}
	}
	var mtu []string
	if spec.MTU > 0 {
		mtu = []string{"mtu", strconv.Itoa(spec.MTU)}
	}
	var steps [][]string
	switch p.kind {
	case PairVeth:
		steps = append(steps, slices.Concat([]string{"ip", "-n", p.a.netns, "link", "add", VMIface}, mtu,
			[]string{"type", "veth", "peer", "name", VMIface}, mtu, []string{"netns", p.b.netns}))
		if spec.TxChecksumOff {
			for _, e := range []*PairEnd{p.a, p.b} {
				steps = append(steps, nsArgv(e.netns, []string{"ethtool", "-K", VMIface, "tx", "off"}))
			}
		}
	case PairNormal:
		if err := l.addNetns(ctx, p.sw, false); err != nil {
			return err
		}
		ovs, err := startOVS(ctx, filepath.Join(l.dir, "pair-"+p.name), p.sw, nil)
		if err != nil {
			return err
		}
		p.ovs = ovs
		l.mu.Lock()
		for i := range l.st.Pairs {
			if l.st.Pairs[i].Name == p.name {
				l.st.Pairs[i].OVS.OvsdbPID = readPidfile(filepath.Join(ovs.Dir(), "ovsdb-server.pid"))
				l.st.Pairs[i].OVS.VswitchdPID = readPidfile(filepath.Join(ovs.Dir(), "ovs-vswitchd.pid"))
			}
		}
		err = l.saveLocked()
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if _, err := ovs.Vsctl(ctx, "add-br", PairBridge, "--", "set", "bridge", PairBridge,
			"datapath_type=netdev", "fail_mode=secure"); err != nil {
			return err
		}
		if _, err := ovs.Ofctl(ctx, "add-flow", PairBridge, "actions=NORMAL"); err != nil {
			return err
		}
		for _, e := range []*PairEnd{p.a, p.b} {
			port := "to-" + e.name[len(e.name)-1:]
			steps = append(steps,
				slices.Concat([]string{"ip", "-n", e.netns, "link", "add", VMIface}, mtu,
					[]string{"type", "veth", "peer", "name", port}, mtu, []string{"netns", p.sw}),
				[]string{"ip", "-n", p.sw, "link", "set", "dev", port, "up"},
				nsArgv(e.netns, []string{"ethtool", "-K", VMIface, "tx", "off"}),
			)
		}
	}
	for _, e := range []*PairEnd{p.a, p.b} {
		steps = append(steps,
			[]string{"ip", "-n", e.netns, "addr", "add", e.addr.String(), "dev", VMIface},
			[]string{"ip", "-n", e.netns, "link", "set", "dev", VMIface, "up"})
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return err
		}
	}
	if p.kind == PairNormal {
		for _, port := range []string{"to-a", "to-b"} {
			if _, err := p.ovs.Vsctl(ctx, "add-port", PairBridge, port); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemovePair stops a pair's OVS (if any) and deletes its namespaces.
func (l *Lab) RemovePair(ctx context.Context, name string) error {
	l.mu.Lock()
	p := l.pairs[name]
	var ps *pairState
	for i := range l.st.Pairs {
		if l.st.Pairs[i].Name == name {
			ps = &l.st.Pairs[i]
		}
	}
	var st pairState
	if ps != nil {
		st = *ps
		// Only the namespaces the lab made (a failed addNetns left out
		// one that was there before).
		st.Netns = slices.DeleteFunc(slices.Clone(st.Netns), func(ns string) bool { return !slices.Contains(l.st.Netns, ns) })
	}
	l.mu.Unlock()
	if p == nil || ps == nil {
		return fmt.Errorf("lab %s: no pair %q", l.name, name)
	}
	var errs []error
	if st.OVS != nil {
		if err := stopHostOVS(*st.OVS, l.log); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range slices.Backward(st.Netns) {
		if netnsExists(ns) {
			if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if st.OVS != nil && strings.HasPrefix(st.OVS.OVSDir, l.dir+"/") {
		if err := os.RemoveAll(st.OVS.OVSDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab %s: remove pair %s: %w", l.name, name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pairs, name)
	l.st.Pairs = slices.DeleteFunc(l.st.Pairs, func(s pairState) bool { return s.Name == name })
	for _, ns := range st.Netns {
		l.dropNetns(ns)
	}
	return l.saveLocked()
}
