// Package peering checks VPC peering with real packets: one lab of two
// hosts (h1, h2) with the controller in-process reading a policy file
// (env.UpdatePolicy rewrites it and the controller reloads it), VMs as
// network namespaces. Every test uses its own VPCs (10.81-10.89), asserts
// both what a peering lets through and what it stops, waits for each change
// by polling with a deadline, and removes its VMs, processes and policy
// objects. Needs root.
package peering

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
		fmt.Fprintln(os.Stderr, "peering: the lab tests need root (network namespaces, OVS); run `make test` as root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	dir, err := os.MkdirTemp("", "ovppe")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	// Only hosts: every test adds (and removes) its own accounts, VPCs,
	// subnets, route tables, groups, peerings and NICs. File mode: the
	// controller reads the policy file that UpdatePolicy rewrites.
	p := &model.Policy{Hosts: []model.Host{{Name: "h1"}, {Name: "h2"}}}
	name := lab.UniqueName('p')
	env, err = labrun.UpPolicy(ctx, p, labrun.Options{Name: name, Dir: dir, Log: log, AuditInterval: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "peering: lab up:", err)
		return 1
	}
	defer env.Down(context.Background())
	if err := env.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "peering:", err)
		return 1
	}
	fmt.Printf("peering: lab %s up and in sync in %v\n", name, time.Since(start).Round(time.Millisecond))
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
	if err := tryUpdate(edit); err != nil {
		t.Fatalf("policy change: %v", err)
	}
}

// tryUpdate applies edit only if the policy it gives builds; else it
// returns the build error and leaves the policy alone.
func tryUpdate(edit func(p *model.Policy)) error {
	try := env.Policy()
	edit(try)
	if _, err := model.Build(try); err != nil {
		return fmt.Errorf("does not build: %w", err)
	}
	return env.UpdatePolicy(edit)
}

// names is the set of object names of each kind in a policy.
type names struct {
	accounts, vpcs, subnets, nics, groups, tables, peerings map[string]bool
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
		d(before.peerings, after.peerings)}
}

// create adds a test's objects in one change and removes them again (with
// every NIC, group, route table and peering of its VPCs) in one change when
// the test ends.
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
		if _, err := env.Net(); err != nil {
			t.Errorf("cleanup: the policy left behind does not build: %v", err)
		}
	})
}

// vpc adds an account, a VPC and one subnet.
func vpc(p *model.Policy, account, name, cidr, subnet, subnetCIDR string) {
	p.Accounts = append(p.Accounts, model.Account{Name: account})
	p.VPCs = append(p.VPCs, model.VPC{Name: name, Account: account, CIDR: cidr})
	p.Subnets = append(p.Subnets, model.Subnet{Name: subnet, VPC: name, CIDR: subnetCIDR})
}

// nicAt is a NIC with an address on a host, in the given groups (none: its
// VPC's default group).
func nicAt(name, subnet, host, ip string, groups ...string) model.NIC {
	return model.NIC{Name: name, Subnet: subnet, Host: host, IP: ip, SecurityGroups: groups}
}

// group is a security group with all egress.
func group(name, vpc string, ingress ...model.Rule) model.SecurityGroup {
	return model.SecurityGroup{Name: name, VPC: vpc, Ingress: ingress, Egress: []model.Rule{model.AllEgress()}}
}

// fromCIDR admits all traffic from a CIDR.
func fromCIDR(cidr string) model.Rule { return model.Rule{Protocol: "all", CIDR: cidr} }

// table is a route table of a VPC.
func table(name, vpc string, routes ...model.Route) model.RouteTable {
	return model.RouteTable{Name: name, VPC: vpc, Routes: routes}
}

// viaPeering routes a destination to a peering.
func viaPeering(dst, name string) model.Route {
	return model.Route{Destination: dst, Peering: name}
}

// peering joins two VPCs (requested by vpc).
func peering(name, vpc, peer string, accepted bool) model.Peering {
	return model.Peering{Name: name, VPC: vpc, PeerVPC: peer, Accepted: accepted}
}

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

// peeringOf returns a peering of the policy for editing (nil if missing).
func peeringOf(p *model.Policy, name string) *model.Peering {
	for i := range p.Peerings {
		if p.Peerings[i].Name == name {
			return &p.Peerings[i]
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

// accept sets a peering's accepted flag.
func accept(t *testing.T, name string, accepted bool) {
	t.Helper()
	if peeringOf(env.Policy(), name) == nil {
		t.Fatalf("peering %s is not in the policy", name)
	}
	update(t, func(p *model.Policy) {
		if pe := peeringOf(p, name); pe != nil {
			pe.Accepted = accepted
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

// ipPair is the "SRC > DST:" tcpdump prints for an ICMP packet.
func ipPair(src, dst string) string { return src + " > " + dst + ":" }

// waitFrames polls a capture until at least one frame holds every one of
// parts, within settle, and returns the frames that do.
func waitFrames(t *testing.T, c *lab.Capture, what string, parts ...string) []string {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		if f := frames(c.Lines(), parts...); len(f) > 0 {
			return f
		}
		if time.Now().After(deadline) {
			dumpFlows(t, what)
			t.Fatalf("%s: no frame with %q within %v; captured:\n  %s", what, parts, settle, strings.Join(c.Lines(), "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noFrames fails the test if a stopped capture holds a frame with every
// one of parts.
func noFrames(t *testing.T, lines []string, what string, parts ...string) {
	t.Helper()
	if f := frames(lines, parts...); len(f) > 0 {
		dumpFlows(t, what)
		t.Fatalf("%s: %d frames with %q, want none:\n  %s", what, len(f), parts, strings.Join(f, "\n  "))
	}
}

// addr parses an address.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// dumpFlows writes every host's flows and conntrack entries and the policy
// to files (kept after the run, for a report) and logs where they are.
func dumpFlows(t *testing.T, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := filepath.Join(os.TempDir(), "openvpc-peering-"+env.Lab.Name())
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
