// Package labtest is the shared machinery of the lab test packages (e2e
// packages that bring up one lab for all their tests): the lab's setup for
// a TestMain, policy changes that undo themselves when a test ends, VMs
// (and the lab's internet, behind gateway hosts' uplinks), servers and
// probes exchanging real packets, tcpdump captures, and the flows and
// conntrack dump that explains a failure. Every test asserts
// what a policy lets through and what it stops, and waits for a change to
// show by polling with a deadline.
package labtest

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// EncapsEnv names the environment variable that sets the tunnel kinds of
// every lab suite's deployment (comma-separated, in order; default vxlan):
// `OPENVPC_LAB_ENCAPS=gre make test` runs them all over GRE.
const EncapsEnv = "OPENVPC_LAB_ENCAPS"

// Options says what lab a package's tests share.
type Options struct {
	// Name is the package's name, for messages and the dump directory.
	Name string
	// Prefix starts the lab's unique name (lab.UniqueName).
	Prefix byte
	// Hosts are the lab's hosts; the policy starts with them only, every
	// test adds (and removes) its own objects.
	Hosts []string
	// Store runs the controller on its embedded store and changes the
	// policy by store transactions; else (file mode) the controller reads
	// the policy file that every change rewrites.
	Store bool
	// Settle is how long a change may take to show in the data plane.
	Settle time.Duration
	// EnsureInterval is how often the controller re-checks each host's
	// bridge setup (0: its default).
	EnsureInterval time.Duration
	// Policy, if set, amends the starting policy (after Hosts): e.g. a
	// host's uplink and public IP pools, which give the lab its internet
	// (Lab.Internet) from the start.
	Policy func(p *model.Policy)
}

// Lab is the running lab of a package (Env is set once Main brought it up).
type Lab struct {
	*labrun.Env
	// Settle is how long a change may take to show (Options.Settle).
	Settle time.Duration
	opts   Options
}

// New returns the package's lab, to bring up with Main.
func New(o Options) *Lab { return &Lab{Settle: o.Settle, opts: o} }

// Main brings the lab up, runs the package's tests and takes the lab
// down; use it as `func TestMain(m *testing.M) { env.Main(m) }`. It does
// not return.
func (l *Lab) Main(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "%s: the lab tests need root (network namespaces, OVS); run `make test` as root\n", l.opts.Name)
		os.Exit(1)
	}
	os.Exit(l.run(m))
}

func (l *Lab) run(m *testing.M) int {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	dir, err := os.MkdirTemp("", "ovp-"+l.opts.Name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	p := &model.Policy{}
	for _, h := range l.opts.Hosts {
		p.Hosts = append(p.Hosts, model.Host{Name: h})
	}
	// EncapsEnv runs a suite over other tunnel kinds (e.g. gre): the
	// deployment's order, unless the suite sets its own.
	if kinds := os.Getenv(EncapsEnv); kinds != "" {
		p.Settings = &model.Settings{Encaps: strings.Split(kinds, ",")}
	}
	if l.opts.Policy != nil {
		l.opts.Policy(p)
	}
	name := lab.UniqueName(l.opts.Prefix)
	l.Env, err = labrun.UpPolicy(ctx, p, labrun.Options{Name: name, Dir: dir, Log: log, Store: l.opts.Store, AuditInterval: time.Second, EnsureInterval: l.opts.EnsureInterval, Ephemeral: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: lab up: %v\n", l.opts.Name, err)
		return 1
	}
	defer l.Down(context.Background())
	if err := l.WaitReady(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", l.opts.Name, err)
		return 1
	}
	kinds := map[string]bool{}
	for _, h := range l.Controller().Status().Hosts {
		for _, k := range h.Tunnels {
			kinds[k] = true
		}
	}
	fmt.Printf("%s: lab %s up and in sync in %v (tunnels: %s)\n", l.opts.Name, name, time.Since(start).Round(time.Millisecond),
		strings.Join(slices.Sorted(maps.Keys(kinds)), ", "))
	return m.Run()
}

// Ctx is a context that ends with the test (or after 3 minutes).
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Must fails the test on an error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Update changes the policy. In file mode the edit is first tried on a
// copy: a policy that does not build fails the test and is never written,
// so the shared lab keeps a valid policy (the store checks its own).
func (l *Lab) Update(t testing.TB, edit func(p *model.Policy)) {
	t.Helper()
	if l.opts.Store {
		Must(t, l.update(edit))
		return
	}
	if err := l.TryUpdate(edit); err != nil {
		t.Fatalf("policy change: %v", err)
	}
}

// TryUpdate applies edit only if the policy it gives builds; else it
// returns the build error and leaves the policy alone.
func (l *Lab) TryUpdate(edit func(p *model.Policy)) error {
	try := l.Policy()
	edit(try)
	if _, err := model.Build(try); err != nil {
		return fmt.Errorf("does not build: %w", err)
	}
	return l.update(edit)
}

// update changes the policy, then routes its public IP pools in the
// internet (labrun.Env.SyncInternet).
func (l *Lab) update(edit func(p *model.Policy)) error {
	if err := l.UpdatePolicy(edit); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.SyncInternet(ctx)
}

// Internet returns the lab's internet, failing the test if the lab has
// none (no host of the starting policy has an uplink; see Options.Policy).
// It is an Endpoint: servers, probes and streams run in it, and probes to
// it go to its address on the uplink network unless At picks another (e.g.
// labpolicy.FarInternetHost).
func (l *Lab) Internet(t testing.TB) *lab.Internet {
	t.Helper()
	in := l.Lab.Internet()
	if in == nil {
		t.Fatal("the lab has no internet: no host of the starting policy has an uplink (labtest.Options.Policy)")
	}
	return in
}

// names is the set of object names of each kind in a policy.
type names struct {
	accounts, vpcs, subnets, nics, groups, tables, peerings, igws, pools, pips map[string]bool
}

func namesOf(p *model.Policy) names {
	set := func(n int, name func(int) string) map[string]bool {
		m := map[string]bool{}
		for i := range n {
			m[name(i)] = true
		}
		return m
	}
	return names{
		set(len(p.Accounts), func(i int) string { return p.Accounts[i].Name }),
		set(len(p.VPCs), func(i int) string { return p.VPCs[i].Name }),
		set(len(p.Subnets), func(i int) string { return p.Subnets[i].Name }),
		set(len(p.NICs), func(i int) string { return p.NICs[i].Name }),
		set(len(p.SecurityGroups), func(i int) string { return p.SecurityGroups[i].Name }),
		set(len(p.RouteTables), func(i int) string { return p.RouteTables[i].Name }),
		set(len(p.Peerings), func(i int) string { return p.Peerings[i].Name }),
		set(len(p.InternetGateways), func(i int) string { return p.InternetGateways[i].Name }),
		set(len(p.PublicIPPools), func(i int) string { return p.PublicIPPools[i].Name }),
		set(len(p.PublicIPs), func(i int) string { return p.PublicIPs[i].Name }),
	}
}

// added returns what after has that before lacks.
func added(before, after names) names {
	d := func(a, b map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k := range b {
			if !a[k] {
				out[k] = true
			}
		}
		return out
	}
	return names{d(before.accounts, after.accounts), d(before.vpcs, after.vpcs), d(before.subnets, after.subnets),
		d(before.nics, after.nics), d(before.groups, after.groups), d(before.tables, after.tables),
		d(before.peerings, after.peerings), d(before.igws, after.igws), d(before.pools, after.pools),
		d(before.pips, after.pips)}
}

// Create adds a test's objects in one change and, when the test ends,
// removes them again in one change, with every NIC, group, route table,
// peering and internet gateway of its VPCs and every public IP of its
// pools, so that tests sharing the lab do not see each other's objects.
func (l *Lab) Create(t testing.TB, edit func(p *model.Policy)) {
	t.Helper()
	var mine names
	l.Update(t, func(p *model.Policy) {
		before := namesOf(p)
		edit(p)
		mine = added(before, namesOf(p))
	})
	t.Cleanup(func() {
		err := l.update(func(p *model.Policy) {
			p.PublicIPs = slices.DeleteFunc(p.PublicIPs, func(o model.PublicIP) bool { return mine.pips[o.Name] || mine.pools[o.Pool] })
			p.PublicIPPools = slices.DeleteFunc(p.PublicIPPools, func(o model.PublicIPPool) bool { return mine.pools[o.Name] })
			p.InternetGateways = slices.DeleteFunc(p.InternetGateways, func(o model.InternetGateway) bool {
				return mine.igws[o.Name] || mine.vpcs[o.VPC]
			})
			p.Peerings = slices.DeleteFunc(p.Peerings, func(o model.Peering) bool {
				return mine.peerings[o.Name] || mine.vpcs[o.VPC] || mine.vpcs[o.PeerVPC]
			})
			p.NICs = slices.DeleteFunc(p.NICs, func(o model.NIC) bool { return mine.nics[o.Name] || mine.subnets[o.Subnet] })
			p.SecurityGroups = slices.DeleteFunc(p.SecurityGroups, func(o model.SecurityGroup) bool {
				return mine.groups[o.Name] || mine.vpcs[o.VPC]
			})
			p.RouteTables = slices.DeleteFunc(p.RouteTables, func(o model.RouteTable) bool {
				return mine.tables[o.Name] || mine.vpcs[o.VPC]
			})
			p.Subnets = slices.DeleteFunc(p.Subnets, func(o model.Subnet) bool { return mine.subnets[o.Name] || mine.vpcs[o.VPC] })
			p.VPCs = slices.DeleteFunc(p.VPCs, func(o model.VPC) bool { return mine.vpcs[o.Name] })
			p.Accounts = slices.DeleteFunc(p.Accounts, func(o model.Account) bool { return mine.accounts[o.Name] })
		})
		if err != nil {
			t.Errorf("cleanup: remove the test's policy objects: %v", err)
		}
		if _, err := l.Net(); err != nil {
			t.Errorf("cleanup: the policy left behind does not build: %v", err)
		}
	})
}

// NICOf returns a NIC of the policy for editing (nil if missing).
func NICOf(p *model.Policy, name string) *model.NIC {
	return find(p.NICs, name, func(o model.NIC) string { return o.Name })
}

// SubnetOf returns a subnet of the policy for editing (nil if missing).
func SubnetOf(p *model.Policy, name string) *model.Subnet {
	return find(p.Subnets, name, func(o model.Subnet) string { return o.Name })
}

// TableOf returns a route table of the policy for editing (nil if missing).
func TableOf(p *model.Policy, name string) *model.RouteTable {
	return find(p.RouteTables, name, func(o model.RouteTable) string { return o.Name })
}

func find[T any](s []T, name string, nameOf func(T) string) *T {
	for i := range s {
		if nameOf(s[i]) == name {
			return &s[i]
		}
	}
	return nil
}

// EditTable changes one route table.
func (l *Lab) EditTable(t testing.TB, name string, edit func(rt *model.RouteTable)) {
	t.Helper()
	if TableOf(l.Policy(), name) == nil {
		t.Fatalf("route table %s is not in the policy", name)
	}
	l.Update(t, func(p *model.Policy) {
		if rt := TableOf(p, name); rt != nil {
			edit(rt)
		}
	})
}

// Plug creates the lab VMs of NICs as the policy builds them (address,
// MAC, gateway; the MTU if the policy sets the host's underlay_mtu, see
// labpolicy.VMSpecFor) and removes them when the test ends (unless
// already removed).
func (l *Lab) Plug(t testing.TB, nics ...string) map[string]*VM {
	t.Helper()
	p, n := l.built(t)
	out := map[string]*VM{}
	for _, name := range nics {
		ni := n.NICs[name]
		if ni == nil {
			t.Fatalf("NIC %s not in the policy", name)
		}
		v, err := l.Lab.AddVM(Ctx(t), labpolicy.VMSpecFor(p, ni))
		Must(t, err)
		l.removeAtEnd(t, name)
		out[name] = &VM{VM: v, Addr: v.IP().String()}
	}
	return out
}

// PlugMulti creates one lab VM holding several NICs of the policy, all
// placed on the same host: the first is its primary NIC (eth0, the VM's
// name, the default route), the others its secondary NICs (eth1, ... in
// order, on-link routes only). It returns an endpoint per NIC: the same VM,
// with the NIC's primary IP as Addr (probes to it go to that NIC). The VM
// is removed when the test ends.
func (l *Lab) PlugMulti(t testing.TB, nics ...string) map[string]*VM {
	t.Helper()
	p, n := l.built(t)
	var infos []*model.NICInfo
	for _, name := range nics {
		ni := n.NICs[name]
		if ni == nil {
			t.Fatalf("NIC %s not in the policy", name)
		}
		infos = append(infos, ni)
	}
	spec, err := labpolicy.MultiVMSpec(p, infos...)
	Must(t, err)
	v, err := l.Lab.AddVM(Ctx(t), spec)
	Must(t, err)
	l.removeAtEnd(t, spec.Name)
	out := map[string]*VM{}
	for _, ni := range infos {
		out[ni.Name] = &VM{VM: v, Addr: ni.IP.String()}
	}
	return out
}

// built returns the current policy and what it builds.
func (l *Lab) built(t testing.TB) (*model.Policy, *model.Net) {
	t.Helper()
	p := l.Policy()
	n, err := model.Build(p)
	Must(t, err)
	return p, n
}

// removeAtEnd removes the VM when the test ends, unless it is gone
// already.
func (l *Lab) removeAtEnd(t testing.TB, vm string) {
	t.Cleanup(func() {
		if l.Lab.VM(vm) == nil {
			return
		}
		if err := l.Lab.RemoveVM(context.Background(), vm); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// Capture starts a tcpdump in a VM (on eth0) or the internet (on its
// bridge), stopped when the test ends.
func Capture(t testing.TB, v Endpoint, filter string) *lab.Capture {
	t.Helper()
	c, err := v.Capture(Ctx(t), filter)
	Must(t, err)
	t.Cleanup(func() { c.Stop() })
	return c
}

// Frames returns the captured frames whose line holds every one of parts.
func Frames(lines []string, parts ...string) []string {
	var out []string
	for _, l := range lines {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			out = append(out, l)
		}
	}
	return out
}

// IPPair is the "SRC > DST:" tcpdump prints for an IPv4 packet (ICMP: the
// addresses alone; TCP/UDP: prefixes of "SRC.PORT > DST.PORT").
func IPPair(src, dst string) string { return src + " > " + dst + ":" }

// WaitFrames polls a capture until at least one frame holds every one of
// parts, within Settle, and returns the frames that do.
func (l *Lab) WaitFrames(t testing.TB, c *lab.Capture, what string, parts ...string) []string {
	t.Helper()
	deadline := time.Now().Add(l.Settle)
	for {
		if f := Frames(c.Lines(), parts...); len(f) > 0 {
			return f
		}
		if time.Now().After(deadline) {
			l.Dump(t, what)
			t.Fatalf("%s: no frame with %q within %v; captured:\n  %s", what, parts, l.Settle, strings.Join(c.Lines(), "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NoFrames fails the test if a stopped capture holds a frame with every
// one of parts.
func (l *Lab) NoFrames(t testing.TB, lines []string, what string, parts ...string) {
	t.Helper()
	if f := Frames(lines, parts...); len(f) > 0 {
		l.Dump(t, what)
		t.Fatalf("%s: %d frames with %q, want none:\n  %s", what, len(f), parts, strings.Join(f, "\n  "))
	}
}

// Dump writes every host's flows, fragment handling and conntrack entries
// (file mode: and the policy) to files under
// /tmp/openvpc-<package>-<lab>/, kept after the run for a report, and logs
// where they are: what a failure needs explained.
func (l *Lab) Dump(t testing.TB, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := filepath.Join(os.TempDir(), "openvpc-"+l.opts.Name+"-"+l.Lab.Name())
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Logf("dump: %v", err)
		return
	}
	file := strings.ReplaceAll(t.Name(), "/", "_")
	for _, h := range l.Lab.Hosts() {
		var b strings.Builder
		fmt.Fprintf(&b, "# %s: %s at %s\n", t.Name(), why, time.Now().Format(time.RFC3339Nano))
		out, err := h.OVS().Ofctl(ctx, "dump-flows", lab.IntegrationBridge)
		if err != nil {
			fmt.Fprintf(&b, "# dump-flows: %v\n", err)
		}
		b.WriteString(out)
		frags, err := h.OVS().Ofctl(ctx, "get-frags", lab.IntegrationBridge)
		fmt.Fprintf(&b, "# frag handling: %s %v\n", strings.TrimSpace(frags), err)
		ct, err := h.OVS().Appctl(ctx, "dpctl/dump-conntrack", "-m")
		if err != nil {
			fmt.Fprintf(&b, "# dump-conntrack: %v\n", err)
		}
		b.WriteString("# conntrack\n" + ct)
		f := filepath.Join(base, file+"-"+h.Name()+".txt")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Logf("dump: %v", err)
			continue
		}
		t.Logf("flows and conntrack of %s: %s", h.Name(), f)
	}
	if in := l.Lab.Internet(); in != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "# %s: %s at %s\n", t.Name(), why, time.Now().Format(time.RFC3339Nano))
		for _, argv := range [][]string{{"ip", "addr"}, {"ip", "route"}, {"ip", "neigh"}, {"bridge", "fdb", "show", "br", in.Bridge()}} {
			out, err := in.Exec(ctx, argv...)
			fmt.Fprintf(&b, "# %s (%v)\n%s", strings.Join(argv, " "), err, out)
		}
		f := filepath.Join(base, file+"-internet.txt")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Logf("dump: %v", err)
		} else {
			t.Logf("internet: %s", f)
		}
	}
	if l.opts.Store {
		return
	}
	if b, err := os.ReadFile(l.PolicyPath); err == nil {
		f := filepath.Join(base, file+"-policy.yaml")
		if os.WriteFile(f, b, 0o644) == nil {
			t.Logf("policy: %s", f)
		}
	}
}

// Sh runs a command in an endpoint's namespace and fails the test if it
// fails.
func Sh(t testing.TB, v Endpoint, argv ...string) string {
	t.Helper()
	out, err := v.Exec(Ctx(t), argv...)
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", v.Name(), strings.Join(argv, " "), err, out)
	}
	return out
}

// Forwarder makes a VM an IPv4 router: it forwards what it receives for
// other addresses back out of its NIC through its default route (its
// subnet's gateway), without ICMP redirects.
func Forwarder(t testing.TB, v *VM) {
	t.Helper()
	Sh(t, v, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf."+lab.VMIface+".send_redirects=0",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf."+lab.VMIface+".rp_filter=0")
}
