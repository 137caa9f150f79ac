// Package routes checks route tables with real packets: one lab of two
// hosts (h1, h2) with the controller in-process reading a policy file
// (env.UpdatePolicy rewrites it and the controller reloads it), VMs as
// network namespaces, appliances as VMs that forward with their own kernel.
// Every test uses its own VPC, asserts both what a route lets through and
// what it stops, waits for each change by polling with a deadline, and
// removes its VMs, processes and policy objects. Needs root.
package routes

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
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

var env *labrun.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "routes: the lab tests need root (network namespaces, OVS); run `make test` as root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	dir, err := os.MkdirTemp("", "ovprt")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	// Only hosts: every test adds (and removes) its own account, VPC,
	// subnets, route tables and NICs. File mode: the controller reads the
	// policy file that UpdatePolicy rewrites.
	p := &model.Policy{Hosts: []model.Host{{Name: "h1"}, {Name: "h2"}}}
	name := lab.UniqueName('r')
	env, err = labrun.UpPolicy(ctx, p, labrun.Options{Name: name, Dir: dir, Log: log, AuditInterval: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "routes: lab up:", err)
		return 1
	}
	defer env.Down(context.Background())
	if err := env.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "routes:", err)
		return 1
	}
	fmt.Printf("routes: lab %s up and in sync in %v\n", name, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// update changes the policy (file mode: the controller reloads the file).
// The edit is first tried on a copy: a policy that does not build fails the
// test and is never written, so the shared lab keeps a valid policy.
func update(t *testing.T, edit func(p *model.Policy)) {
	t.Helper()
	try := env.Policy()
	edit(try)
	if _, err := model.Build(try); err != nil {
		t.Fatalf("policy change does not build: %v", err)
	}
	must(t, env.UpdatePolicy(edit))
}

// names is the set of object names of each kind in a policy.
type names struct {
	accounts, vpcs, subnets, nics, groups, tables map[string]bool
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
		d(before.nics, after.nics), d(before.groups, after.groups), d(before.tables, after.tables)}
}

// create adds a test's objects in one change and removes them again (with
// every NIC, group and route table of its VPCs) when the test ends.
func create(t *testing.T, edit func(p *model.Policy)) {
	t.Helper()
	var mine names
	update(t, func(p *model.Policy) {
		before := namesOf(p)
		edit(p)
		mine = added(before, namesOf(p))
	})
	t.Cleanup(func() {
		err := env.UpdatePolicy(func(p *model.Policy) {
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
	})
}

// vpc adds an account, a VPC and its subnets (name → CIDR).
func vpc(p *model.Policy, account, name, cidr string, subnets map[string]string) {
	p.Accounts = append(p.Accounts, model.Account{Name: account})
	p.VPCs = append(p.VPCs, model.VPC{Name: name, Account: account, CIDR: cidr})
	for _, s := range slices.Sorted(func(yield func(string) bool) {
		for k := range subnets {
			if !yield(k) {
				return
			}
		}
	}) {
		p.Subnets = append(p.Subnets, model.Subnet{Name: s, VPC: name, CIDR: subnets[s]})
	}
}

// nicAt is a NIC with an address on a host (default group, default
// source/destination check).
func nicAt(name, subnet, host, ip string) model.NIC {
	return model.NIC{Name: name, Subnet: subnet, Host: host, IP: ip}
}

// appliance is a NIC with its source/destination check off.
func appliance(name, subnet, host, ip string) model.NIC {
	n := nicAt(name, subnet, host, ip)
	n.SourceDestCheck = boolp(false)
	return n
}

func boolp(v bool) *bool { return &v }

// table is a route table of a VPC.
func table(name, vpc string, routes ...model.Route) model.RouteTable {
	return model.RouteTable{Name: name, VPC: vpc, Routes: routes}
}

// toNIC routes a destination to an appliance NIC.
func toNIC(dst, nic string) model.Route { return model.Route{Destination: dst, NIC: nic} }

// blackhole drops a destination.
func blackhole(dst string) model.Route { return model.Route{Destination: dst, Blackhole: true} }

// nicOf returns a NIC of the policy for editing (nil if missing).
func nicOf(p *model.Policy, name string) *model.NIC {
	for i := range p.NICs {
		if p.NICs[i].Name == name {
			return &p.NICs[i]
		}
	}
	return nil
}

// tableOf returns a route table of the policy for editing (nil if missing).
func tableOf(p *model.Policy, name string) *model.RouteTable {
	for i := range p.RouteTables {
		if p.RouteTables[i].Name == name {
			return &p.RouteTables[i]
		}
	}
	return nil
}

// subnetOf returns a subnet of the policy for editing (nil if missing).
func subnetOf(p *model.Policy, name string) *model.Subnet {
	for i := range p.Subnets {
		if p.Subnets[i].Name == name {
			return &p.Subnets[i]
		}
	}
	return nil
}

// editTable changes one route table.
func editTable(t *testing.T, name string, edit func(rt *model.RouteTable)) {
	t.Helper()
	if tableOf(env.Policy(), name) == nil {
		t.Fatalf("route table %s is not in the policy", name)
	}
	update(t, func(p *model.Policy) {
		if rt := tableOf(p, name); rt != nil {
			edit(rt)
		}
	})
}

// associate makes a subnet use a route table ("": its VPC's main table).
func associate(t *testing.T, subnet, table string) {
	t.Helper()
	update(t, func(p *model.Policy) {
		if s := subnetOf(p, subnet); s != nil {
			s.RouteTable = table
		}
	})
}

// setCheck turns a NIC's source/destination check on or off.
func setCheck(t *testing.T, nic string, on bool) {
	t.Helper()
	update(t, func(p *model.Policy) {
		if n := nicOf(p, nic); n != nil {
			if on {
				n.SourceDestCheck = nil // the default
			} else {
				n.SourceDestCheck = boolp(false)
			}
		}
	})
}

// vm is a plugged lab VM with its NIC's primary address.
type vm struct {
	*lab.VM
	name, ip string
}

// plug creates the lab VMs of NICs as the policy builds them (address, MAC,
// gateway) and removes them when the test ends (unless already removed).
func plug(t *testing.T, nics ...string) map[string]*vm {
	t.Helper()
	n, err := env.Net()
	must(t, err)
	out := map[string]*vm{}
	for _, name := range nics {
		ni := n.NICs[name]
		if ni == nil {
			t.Fatalf("NIC %s not in the policy", name)
		}
		v, err := env.Lab.AddVM(ctxT(t), labpolicy.VMSpec(ni))
		must(t, err)
		t.Cleanup(func() {
			if env.Lab.VM(name) == nil {
				return
			}
			if err := env.Lab.RemoveVM(context.Background(), name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		out[name] = &vm{VM: v, name: name, ip: v.IP().String()}
	}
	return out
}

// sh runs a command in a VM and fails the test if it fails.
func sh(t *testing.T, v *vm, argv ...string) string {
	t.Helper()
	out, err := v.Exec(ctxT(t), argv...)
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", v.name, strings.Join(argv, " "), err, out)
	}
	return out
}

// forwarder makes a VM an IPv4 router: it forwards what it receives for
// other addresses back out of eth0 through its default route (its subnet's
// gateway), without ICMP redirects.
func forwarder(t *testing.T, v *vm) {
	t.Helper()
	sh(t, v, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf."+lab.VMIface+".send_redirects=0",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf."+lab.VMIface+".rp_filter=0")
}

// addLocal gives a VM another address (on lo, a /32), one the policy does
// not know: it answers for it and may send from it. Its ARP requests keep
// naming its own address as sender (arp_announce=2): port security takes
// ARP only from a NIC's own addresses (TestApplianceARPFromOtherAddress
// shows what happens otherwise).
func addLocal(t *testing.T, v *vm, ip string) {
	t.Helper()
	sh(t, v, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf."+lab.VMIface+".arp_announce=2")
	addLocalOnly(t, v, ip)
}

// addLocalOnly is addLocal without the ARP setting: the kernel's default
// takes the sender address of an ARP request from the packet waiting for
// it.
func addLocalOnly(t *testing.T, v *vm, ip string) {
	t.Helper()
	sh(t, v, "ip", "addr", "add", ip+"/32", "dev", "lo")
}

// capture starts a tcpdump in a VM, stopped when the test ends.
func capture(t *testing.T, v *vm, filter string) *lab.Capture {
	t.Helper()
	c, err := v.Capture(ctxT(t), filter)
	must(t, err)
	t.Cleanup(func() { c.Stop() })
	return c
}

// frames returns the captured frames whose line holds every one of parts.
func frames(lines []string, parts ...string) []string {
	var out []string
	for _, l := range lines {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			out = append(out, l)
		}
	}
	return out
}

// ipPair is the "SRC > DST" tcpdump prints for an IPv4 packet (ICMP: the
// addresses alone; TCP/UDP: prefixes of "SRC.PORT > DST.PORT").
func ipPair(src, dst string) string { return src + " > " + dst + ":" }

// routerMAC is the VPC's router MAC as the built policy has it.
func routerMAC(t *testing.T, vpc string) string {
	t.Helper()
	n, err := env.Net()
	must(t, err)
	v := n.VPCs[vpc]
	if v == nil {
		t.Fatalf("vpc %s not in the policy", vpc)
	}
	return v.RouterMAC.String()
}

// addr parses an address.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// dumpFlows writes every host's flows and conntrack entries to files (kept
// after the run, for a report) and logs where they are.
func dumpFlows(t *testing.T, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := filepath.Join(os.TempDir(), "openvpc-routes-"+env.Lab.Name())
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Logf("dump: %v", err)
		return
	}
	for _, h := range env.Lab.Hosts() {
		var b strings.Builder
		fmt.Fprintf(&b, "# %s: %s at %s\n", t.Name(), why, time.Now().Format(time.RFC3339Nano))
		out, err := h.OVS().Ofctl(ctx, "dump-flows", lab.IntegrationBridge)
		if err != nil {
			fmt.Fprintf(&b, "# dump-flows: %v\n", err)
		}
		b.WriteString(out)
		ct, err := h.OVS().Appctl(ctx, "dpctl/dump-conntrack", "-m")
		if err != nil {
			fmt.Fprintf(&b, "# dump-conntrack: %v\n", err)
		}
		b.WriteString("# conntrack\n" + ct)
		f := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_")+"-"+h.Name()+".txt")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Logf("dump: %v", err)
			continue
		}
		t.Logf("flows and conntrack of %s: %s", h.Name(), f)
	}
	b, err := os.ReadFile(env.PolicyPath)
	if err == nil {
		f := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_")+"-policy.yaml")
		if os.WriteFile(f, b, 0o644) == nil {
			t.Logf("policy: %s", f)
		}
	}
}
