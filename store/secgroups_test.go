package store

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

func TestSecurityGroups(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	watcher := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)

	// A VPC's default group is created and stored with it, rule IDs pinned.
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	got, _ := mustPolicy(t, s)
	if !reflect.DeepEqual(got, pinned(t, basePolicy())) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, pinned(t, basePolicy()))
	}
	var names []string
	for _, g := range got.SecurityGroups {
		names = append(names, g.Name)
	}
	if !slices.Equal(names, []string{"acme-vpc-default", "beta-vpc-default"}) {
		t.Fatalf("stored groups %v, want the two VPCs' default groups", names)
	}
	def := group(got, "acme-vpc-default")
	if !def.Default || len(def.Ingress) != 1 || def.Ingress[0].ID == 0 || len(def.Egress) != 1 || def.Egress[0].ID == 0 {
		t.Fatalf("default group not stored with pinned rule IDs: %+v", def)
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"security_group/acme-vpc-default"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("no key for the default group: %v", err)
	}

	// A group with rules and a member; the watch sees a group-only change.
	if _, err := watcher.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go watcher.Run(runCtx)
	icmp := 8
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{
			Name: "web", VPC: "acme-vpc", Description: "web servers",
			Ingress: []model.Rule{
				{Protocol: "tcp", Ports: "80-443", CIDR: "0.0.0.0/0"},
				{Protocol: "icmp", ICMPType: &icmp, Group: "acme-vpc-default"},
			},
			Egress: []model.Rule{model.AllEgress()},
			Grants: []string{"beta"},
		})
		nic(p, "web1").SecurityGroups = []string{"web"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, watcher, "a new security group")
	got, _ = mustPolicy(t, s)
	web := group(got, "web")
	if web == nil || web.Ingress[0].ID == 0 || web.Ingress[1].ID == 0 || *web.Ingress[1].ICMPType != 8 || !slices.Equal(web.Grants, []string{"beta"}) {
		t.Fatalf("stored group %+v", web)
	}
	ids := []uint32{web.Ingress[0].ID, web.Ingress[1].ID}

	// Default group rules are editable and stay edited.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		group(p, "acme-vpc-default").Ingress = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, watcher, "a default group's rules changed")
	got, _ = mustPolicy(t, s)
	if d := group(got, "acme-vpc-default"); d == nil || len(d.Ingress) != 0 || len(d.Egress) != 1 {
		t.Fatalf("edited default group %+v", d)
	}
	if w := group(got, "web"); w.Ingress[0].ID != ids[0] || w.Ingress[1].ID != ids[1] {
		t.Fatal("rule IDs changed on an unrelated update")
	}

	// Users: NICs naming a group, NICs in a default group by naming none,
	// rules naming it as peer; a VPC's default group does not keep it alive.
	for _, tc := range []struct {
		kind, name string
		want       []string
	}{
		{KindSecurityGroup, "web", []string{"nic web1"}},
		{KindSecurityGroup, "acme-vpc-default", []string{"nic auto", "nic db1", "security_group web"}},
		{KindSecurityGroup, "beta-vpc-default", []string{"nic beta1"}},
		{KindVPC, "acme-vpc", []string{"security_group web", "subnet acme-db", "subnet acme-web"}},
		{KindVPC, "beta-vpc", []string{"subnet beta-app"}},
		{KindAccount, "beta", []string{"vpc beta-vpc"}},
	} {
		if u := InUse(got, tc.kind, tc.name); !slices.Equal(u, tc.want) {
			t.Errorf("InUse(%s %s) = %v, want %v", tc.kind, tc.name, u, tc.want)
		}
	}

	// A group still named by a NIC cannot go; Build says why.
	before, beforeRev := mustPolicy(t, s)
	_, err := s.Update(ctx, func(p *model.Policy) error {
		p.SecurityGroups = slices.DeleteFunc(p.SecurityGroups, func(g model.SecurityGroup) bool { return g.Name == "web" })
		return nil
	})
	if !fieldErr("nic", "web1", "security_groups[0]")(err) {
		t.Fatalf("deleting a used group: %v", err)
	}
	if after, rev := mustPolicy(t, s); rev != beforeRev || !reflect.DeepEqual(after, before) {
		t.Fatal("a rejected update changed the store")
	}

	// Deleting a VPC deletes its default group.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Subnet == "beta-app" })
		p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.VPC == "beta-vpc" })
		p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Name == "beta-vpc" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if group(got, "beta-vpc-default") != nil {
		t.Fatal("the default group outlived its VPC")
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"security_group/beta-vpc-default"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the default group's key is still there: %v", err)
	}
}

// TestSharedVPCGroups: another account's NIC in a shared VPC brings that
// account's default group; the account's groups there keep it alive, its
// default group does not, and grants to it go with it.
func TestSharedVPCGroups(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)

	p := &model.Policy{
		Accounts: []model.Account{{Name: "acme"}, {Name: "beta"}},
		VPCs:     []model.VPC{{Name: "pub", Account: "acme", CIDR: "10.1.0.0/16", Shared: true}},
		Subnets:  []model.Subnet{{Name: "pub-a", VPC: "pub", CIDR: "10.1.1.0/24"}},
		NICs: []model.NIC{
			{Name: "a1", Subnet: "pub-a"},
			{Name: "b1", Subnet: "pub-a", Account: "beta"},
		},
		SecurityGroups: []model.SecurityGroup{
			{Name: "pub-web", VPC: "pub", Grants: []string{"beta"}, Egress: []model.Rule{model.AllEgress()}},
			{Name: "beta-app", VPC: "pub", Account: "beta", Ingress: []model.Rule{{Protocol: "tcp", Ports: "22", Group: "pub-web"}}},
		},
	}
	if _, err := s.Update(ctx, replaceWith(p)); err != nil {
		t.Fatal(err)
	}
	got, _ := mustPolicy(t, s)
	if d := group(got, "pub-beta-default"); d == nil || !d.Default || d.Account != "beta" {
		t.Fatalf("beta's default group in the shared VPC: %+v", d)
	}
	if a, b := nic(got, "a1"), nic(got, "b1"); a.IP == "" || a.IP == b.IP {
		t.Fatalf("IPs in the shared VPC: %s, %s", a.IP, b.IP)
	}
	if u := InUse(got, KindAccount, "beta"); !slices.Equal(u, []string{"nic b1", "security_group beta-app"}) {
		t.Fatalf("InUse(account beta) = %v", u)
	}
	// A rule of acme naming beta's default group keeps beta in use.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Name == "b1" })
		p.SecurityGroups = slices.DeleteFunc(p.SecurityGroups, func(g model.SecurityGroup) bool { return g.Name == "beta-app" })
		g := group(p, "pub-web")
		g.Ingress = append(g.Ingress, model.Rule{Protocol: "all", Group: "pub-beta-default"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if u := InUse(got, KindAccount, "beta"); !slices.Equal(u, []string{"security_group pub-web"}) {
		t.Fatalf("InUse(account beta) = %v", u)
	}
	_, err := s.Update(ctx, func(p *model.Policy) error {
		p.Accounts = p.Accounts[:1]
		return nil
	})
	if !fieldErr("account", "beta", "name")(err) || !strings.Contains(err.Error(), "security_group pub-web") {
		t.Fatalf("deleting a referenced account: %v", err)
	}
	// Without the rule, beta goes, with its default group and its grant.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		group(p, "pub-web").Ingress = nil
		p.Accounts = p.Accounts[:1]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if group(got, "pub-beta-default") != nil || len(group(got, "pub-web").Grants) != 0 {
		t.Fatalf("beta's default group or grant survived it: %+v", got.SecurityGroups)
	}
	// A grant to an account that never existed is an error, not dropped.
	_, err = s.Update(ctx, func(p *model.Policy) error {
		group(p, "pub-web").Grants = []string{"nosuch"}
		return nil
	})
	if !fieldErr("security_group", "pub-web", "grants[0]")(err) {
		t.Fatalf("grant to a missing account: %v", err)
	}
}

// A change that puts one rule list into two groups is stored with distinct
// rule ids, and the caller's list is left as it was (the store pins ids
// into its own copy).
func TestUpdateDoesNotWriteIntoCallerSlices(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	shared := []model.Rule{model.AllEgress()}
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.SecurityGroups = append(p.SecurityGroups,
			model.SecurityGroup{Name: "g1", VPC: "acme-vpc", Egress: shared},
			model.SecurityGroup{Name: "g2", VPC: "acme-vpc", Egress: shared})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if shared[0].ID != 0 {
		t.Errorf("the caller's rule got id %d", shared[0].ID)
	}
	got, _ := mustPolicy(t, s)
	a, b := group(got, "g1").Egress[0].ID, group(got, "g2").Egress[0].ID
	if a == 0 || b == 0 || a == b {
		t.Fatalf("rule ids %d and %d", a, b)
	}
}
