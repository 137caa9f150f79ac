package model

import (
	"strings"
	"testing"
)

func tunnelPolicy() *Policy {
	return &Policy{
		Settings: &Settings{Encaps: []string{"geneve", "vxlan", "gre"}},
		Hosts: []Host{
			{Name: "a", UnderlayIP: "172.31.0.11"},                                   // the deployment's kinds
			{Name: "b", UnderlayIP: "172.31.0.12", Encaps: []string{"gre", "vxlan"}}, // no geneve
			{Name: "c", UnderlayIP: "172.31.0.13", Encaps: []string{"gre"}},          // gre only
			{Name: "d", UnderlayIP: "172.31.0.14", Encaps: []string{"stt"}},          // userspace: unusable
			{Name: "e", UnderlayIP: "172.31.0.15", Encaps: []string{"geneve"}, UnderlayMTU: 9000},
		},
	}
}

// A pair uses the first kind of the deployment's order both can use; a
// host whose only kind its datapath cannot send with is reported, and its
// peers with it; pairs without a common kind are reported on both sides.
func TestPairEncap(t *testing.T) {
	n, err := Build(tunnelPolicy())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ a, z, want string }{
		{"a", "b", "vxlan"}, {"b", "a", "vxlan"}, {"a", "c", "gre"}, {"b", "c", "gre"}, {"a", "e", "geneve"},
		{"a", "d", ""}, {"c", "e", ""}, {"a", "a", ""},
	} {
		got, ok := n.PairEncap(tc.a, tc.z)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("PairEncap(%s, %s) = %q, %v; want %q", tc.a, tc.z, got, ok, tc.want)
		}
	}
	d := n.Hosts["d"]
	if len(d.Usable) != 0 || !strings.Contains(strings.Join(d.Problems, "\n"), "encap stt unusable") ||
		!strings.Contains(strings.Join(d.Problems, "\n"), "no usable encapsulation") {
		t.Errorf("d: usable %v, problems %q", d.Usable, d.Problems)
	}
	if p := strings.Join(n.Hosts["c"].Problems, "\n"); !strings.Contains(p, "no encapsulation in common with host e (c: gre; e: geneve)") {
		t.Errorf("c's problems: %q", p)
	}
	if p := n.Hosts["a"].Problems; len(p) != 0 {
		t.Errorf("a has problems %q", p) // d is reported on d, not on every peer
	}
	if got := n.Hosts["a"].Usable; strings.Join(got, ",") != "geneve,vxlan,gre" {
		t.Errorf("a's kinds: %v", got)
	}
}

// The VM MTU is the underlay MTU less the overhead of the kind used with
// each peer (and the peer's MTU), the smallest over the peers.
func TestVMMTU(t *testing.T) {
	p := tunnelPolicy()
	p.NICs = nil
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{
		"a": 1450, // vxlan with b, geneve with e (both 50); gre with c (42)
		"b": 1450, // vxlan with a
		"c": 1458, // gre with a and b
		"e": 1450, // geneve with a (a's underlay is 1500)
		"d": 1500, // no usable kind, so no tunnel and no peer
	} {
		if got := n.Hosts[host].VMMTU; got != want {
			t.Errorf("%s: VM MTU %d, want %d", host, got, want)
		}
	}
	one := &Policy{Hosts: []Host{{Name: "solo", UnderlayIP: "172.31.0.11", UnderlayMTU: 9000}},
		Accounts: []Account{{Name: "x"}}, VPCs: []VPC{{Name: "v", Account: "x", CIDR: "10.0.0.0/16"}},
		Subnets: []Subnet{{Name: "s", VPC: "v", CIDR: "10.0.1.0/24"}},
		NICs:    []NIC{{Name: "n", Subnet: "s", Host: "solo", IP: "10.0.1.10"}}}
	n, err = Build(one)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.NICs["n"].MTU; got != 8950 {
		t.Errorf("NIC on a lone 9000-byte host with vxlan: MTU %d, want 8950", got)
	}
}

func TestTunnelValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(p *Policy)
		want string
	}{
		{"unknown kind", func(p *Policy) { p.Hosts[1].Encaps[0] = "ipip" }, `host "b": encaps[0]: "ipip" is not a tunnel kind`},
		{"twice", func(p *Policy) { p.Hosts[1].Encaps = []string{"gre", "GRE"} }, `host "b": encaps[1]: gre is listed twice`},
		{"both forms", func(p *Policy) { p.Hosts[1].Encap = "gre" }, `host "b": encap: give encaps or encap, not both`},
		{"mtu", func(p *Policy) { p.Hosts[0].UnderlayMTU = 100 }, `host "a": underlay_mtu`},
		{"settings", func(p *Policy) { p.Settings.Encaps = []string{"vxlan", "nvgre"} }, `settings: encaps[1]`},
	} {
		p := tunnelPolicy()
		tc.edit(p)
		_, err := Build(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
