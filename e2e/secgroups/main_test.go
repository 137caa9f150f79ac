// Package secgroups checks security groups with real packets: one lab of two
// hosts (h1, h2) with the controller in-process on its embedded store,
// policy changed by store transactions (env.UpdatePolicy), VMs as network
// namespaces exchanging TCP, UDP and ICMP. Every test asserts both what a
// rule allows and what it does not, waits for a change to show by polling
// with a deadline, and cleans up its VMs, processes and policy objects.
// Needs root.
package secgroups

import (
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// env is the package's lab: only hosts, every test adds (and removes) its
// own accounts, VPCs, groups and NICs. A change may take up to 30 s to
// show.
var env = labtest.New(labtest.Options{Name: "secgroups", Prefix: 'g', Hosts: []string{"h1", "h2"},
	Store: true, Settle: 30 * time.Second})

func TestMain(m *testing.M) { env.Main(m) }

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
	env.Update(t, func(p *model.Policy) {
		if n := labtest.NICOf(p, nic); n != nil {
			n.SecurityGroups = groups
		}
	})
}

// editGroup changes one security group.
func editGroup(t *testing.T, name string, edit func(g *model.SecurityGroup)) {
	t.Helper()
	found := false
	env.Update(t, func(p *model.Policy) {
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

func intp(v int) *int { return &v }
