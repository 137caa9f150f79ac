// Package secgroups checks security groups with real packets: one lab of two
// hosts (h1, h2) with the controller in-process on its embedded store,
// policy changed by store transactions (env.UpdatePolicy), VMs as network
// namespaces exchanging TCP, UDP and ICMP. Every test asserts both what a
// rule allows and what it does not, waits for a change to show by polling
// with a deadline, and cleans up its VMs, processes and policy objects.
// Needs root.
package secgroups

import (
	"context"
	"flag"
	"fmt"
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
		fmt.Fprintln(os.Stderr, "secgroups: the lab tests need root (network namespaces, OVS); run `make test` as root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	dir, err := os.MkdirTemp("", "ovpsg")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	// Only hosts: every test adds (and removes) its own accounts, VPCs,
	// groups and NICs.
	p := &model.Policy{Hosts: []model.Host{{Name: "h1"}, {Name: "h2"}}}
	name := lab.UniqueName('g')
	env, err = labrun.UpPolicy(ctx, p, labrun.Options{Name: name, Dir: dir, Log: log, Store: true, AuditInterval: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "secgroups: lab up:", err)
		return 1
	}
	defer env.Down(context.Background())
	if err := env.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "secgroups:", err)
		return 1
	}
	fmt.Printf("secgroups: lab %s up and in sync in %v\n", name, time.Since(start).Round(time.Millisecond))
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

// update changes the policy in one store transaction.
func update(t *testing.T, edit func(p *model.Policy)) {
	t.Helper()
	must(t, env.UpdatePolicy(edit))
}

// names is the set of object names of each kind in a policy.
type names struct {
	accounts, vpcs, subnets, nics, groups map[string]bool
}

func namesOf(p *model.Policy) names {
	n := names{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
	for _, o := range p.Accounts {
		n.accounts[o.Name] = true
	}
	for _, o := range p.VPCs {
		n.vpcs[o.Name] = true
	}
	for _, o := range p.Subnets {
		n.subnets[o.Name] = true
	}
	for _, o := range p.NICs {
		n.nics[o.Name] = true
	}
	for _, o := range p.SecurityGroups {
		n.groups[o.Name] = true
	}
	return n
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
		d(before.nics, after.nics), d(before.groups, after.groups)}
}

// create adds a test's objects in one transaction and removes them again
// (with every group of its VPCs) when the test ends.
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
			p.Subnets = slices.DeleteFunc(p.Subnets, func(o model.Subnet) bool { return mine.subnets[o.Name] || mine.vpcs[o.VPC] })
			p.VPCs = slices.DeleteFunc(p.VPCs, func(o model.VPC) bool { return mine.vpcs[o.Name] })
			p.Accounts = slices.DeleteFunc(p.Accounts, func(o model.Account) bool { return mine.accounts[o.Name] })
		})
		if err != nil {
			t.Errorf("cleanup: remove the test's policy objects: %v", err)
		}
	})
}

// nic returns a NIC of the policy for editing (nil if missing).
func nicOf(p *model.Policy, name string) *model.NIC {
	for i := range p.NICs {
		if p.NICs[i].Name == name {
			return &p.NICs[i]
		}
	}
	return nil
}

// groupOf returns a group of the policy for editing (nil if missing).
func groupOf(p *model.Policy, name string) *model.SecurityGroup {
	for i := range p.SecurityGroups {
		if p.SecurityGroups[i].Name == name {
			return &p.SecurityGroups[i]
		}
	}
	return nil
}

// setGroups sets a NIC's security groups (none: its default group).
func setGroups(t *testing.T, nic string, groups ...string) {
	t.Helper()
	update(t, func(p *model.Policy) {
		if n := nicOf(p, nic); n != nil {
			n.SecurityGroups = groups
		}
	})
}

// editGroup changes one security group.
func editGroup(t *testing.T, name string, edit func(g *model.SecurityGroup)) {
	t.Helper()
	found := false
	update(t, func(p *model.Policy) {
		g := groupOf(p, name)
		found = g != nil
		if found {
			edit(g)
		}
	})
	if !found {
		t.Fatalf("security group %s is not in the store", name)
	}
}

// vm is a plugged lab VM with its NIC's primary address.
type vm struct {
	*lab.VM
	name, ip string
}

// plug creates the lab VMs of NICs as the store has them (allocated IP,
// MAC) and removes them when the test ends.
func plug(t *testing.T, nics ...string) map[string]*vm {
	t.Helper()
	n, err := env.Net()
	must(t, err)
	out := map[string]*vm{}
	for _, name := range nics {
		ni := n.NICs[name]
		if ni == nil {
			t.Fatalf("NIC %s not in the store", name)
		}
		v, err := env.Lab.AddVM(ctxT(t), labpolicy.VMSpec(ni))
		must(t, err)
		t.Cleanup(func() {
			if err := env.Lab.RemoveVM(context.Background(), name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		out[name] = &vm{VM: v, name: name, ip: v.IP().String()}
	}
	return out
}

func intp(v int) *int { return &v }

// dumpFlows writes every host's flows and conntrack entries to files (kept
// after the run, for a report) and logs where they are.
func dumpFlows(t *testing.T, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := filepath.Join(os.TempDir(), "openvpc-secgroups-"+env.Lab.Name())
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
		frags, err := h.OVS().Ofctl(ctx, "get-frags", lab.IntegrationBridge)
		fmt.Fprintf(&b, "# frag handling: %s %v\n", strings.TrimSpace(frags), err)
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
}
