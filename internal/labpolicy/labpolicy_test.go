package labpolicy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

func gwPolicy() *model.Policy {
	return &model.Policy{
		Hosts: []model.Host{
			{Name: "h1"},
			{Name: "gw2", Uplink: &model.Uplink{Interface: "eth1", IP: "198.51.100.3/24", NextHop: "198.51.100.1"}},
			{Name: "gw1", Uplink: &model.Uplink{Interface: "up0", IP: "198.51.100.2/24", NextHop: "198.51.100.1"}},
		},
		PublicIPPools: []model.PublicIPPool{{Name: "b", CIDR: "203.0.113.0/25"}, {Name: "a", CIDR: "203.0.113.128/25"}},
	}
}

func TestPrepareInternet(t *testing.T) {
	p := gwPolicy()
	eff, n, spec, err := Prepare(p, "x", "/tmp/openvpc-lab-x")
	if err != nil {
		t.Fatal(err)
	}
	// The gateway hosts are hosts like any other.
	if len(spec.Hosts) != 3 || n.Hosts["gw1"].UnderlayIP != netip.MustParseAddr(eff.Hosts[2].UnderlayIP) || eff.Hosts[2].OVSDB == "" {
		t.Errorf("hosts: %+v %+v", spec.Hosts, eff.Hosts)
	}
	in := spec.Internet
	if in == nil {
		t.Fatal("no internet")
	}
	want := lab.InternetSpec{
		Addr:    netip.MustParsePrefix("198.51.100.1/24"),
		Extra:   []netip.Prefix{netip.MustParsePrefix(FarInternetHost + "/32")},
		OnLink:  []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25"), netip.MustParsePrefix("203.0.113.0/25")},
		Uplinks: []lab.UplinkSpec{{Host: "gw1", Interface: "up0"}, {Host: "gw2", Interface: "eth1"}},
	}
	if in.Addr != want.Addr || in.MAC != nil || !slices.Equal(in.Extra, want.Extra) || !slices.Equal(in.OnLink, want.OnLink) ||
		!slices.Equal(in.Uplinks, want.Uplinks) {
		t.Errorf("internet %+v, want %+v", in, want)
	}
	if p.Hosts[0].UnderlayIP != "" {
		t.Error("Prepare changed its input")
	}

	// No uplink, no internet.
	_, _, spec, err = Prepare(&model.Policy{Hosts: []model.Host{{Name: "h"}}}, "x", "/tmp/x")
	if err != nil || spec.Internet != nil {
		t.Errorf("internet without uplinks: %+v %v", spec.Internet, err)
	}

	// A pinned next-hop MAC is the internet's; a pool holding the far host
	// leaves it out.
	p = gwPolicy()
	p.Hosts[1].Uplink.NextHopMAC = "02:00:00:00:00:01"
	p.PublicIPPools = append(p.PublicIPPools, model.PublicIPPool{Name: "doc", CIDR: "192.0.2.0/24"})
	_, _, spec, err = Prepare(p, "x", "/tmp/x")
	if err != nil || spec.Internet.MAC.String() != "02:00:00:00:00:01" || len(spec.Internet.Extra) != 0 {
		t.Errorf("internet %+v %v", spec.Internet, err)
	}
}

func TestPrepareInternetMismatch(t *testing.T) {
	for what, edit := range map[string]func(p *model.Policy){
		"network":  func(p *model.Policy) { p.Hosts[1].Uplink.IP = "198.51.100.3/25" },
		"next hop": func(p *model.Policy) { p.Hosts[1].Uplink.NextHop = "198.51.100.4" },
		"mac": func(p *model.Policy) {
			p.Hosts[1].Uplink.NextHopMAC = "02:00:00:00:00:01"
			p.Hosts[2].Uplink.NextHopMAC = "02:00:00:00:00:02"
		},
		"same ip": func(p *model.Policy) { p.Hosts[1].Uplink.IP = "198.51.100.2/24" },
	} {
		p := gwPolicy()
		edit(p)
		_, _, _, err := Prepare(p, "x", "/tmp/x")
		if err == nil || !strings.Contains(err.Error(), "host gw2") {
			t.Errorf("%s: %v", what, err)
		}
	}
}

func mtuPolicy() *model.Policy {
	return &model.Policy{
		Hosts:    []model.Host{{Name: "h1", UnderlayMTU: 1500}, {Name: "h2"}, {Name: "h3", UnderlayMTU: 9000}},
		Accounts: []model.Account{{Name: "acct"}},
		VPCs:     []model.VPC{{Name: "v", Account: "acct", CIDR: "10.0.0.0/16"}},
		Subnets: []model.Subnet{
			{Name: "s1", VPC: "v", CIDR: "10.0.1.0/24"},
			{Name: "s2", VPC: "v", CIDR: "10.0.2.0/24"},
		},
		NICs: []model.NIC{
			{Name: "a", Subnet: "s1", Host: "h1", IP: "10.0.1.10"},
			{Name: "a2", Subnet: "s2", Host: "h1", IP: "10.0.2.10", SecondaryIPs: []string{"10.0.2.11"}},
			{Name: "b", Subnet: "s1", Host: "h2", IP: "10.0.1.20"},
			{Name: "c", Subnet: "s1", Host: "h3", IP: "10.0.1.30"},
			{Name: "u", Subnet: "s1", IP: "10.0.1.40"},
		},
	}
}

// An explicit underlay_mtu gives the lab host that MTU and its VMs the
// model's VM MTU; hosts without one get the lab's jumbo underlay (and the
// controller is told so), and their VMs, like those of hosts set to the
// jumbo MTU, keep the default MTU.
func TestPrepareMTU(t *testing.T) {
	p := mtuPolicy()
	_, n, spec, err := Prepare(p, "x", "/tmp/x")
	if err != nil {
		t.Fatal(err)
	}
	mtus := map[string]int{}
	for _, h := range spec.Hosts {
		mtus[h.Name] = h.UnderlayMTU
	}
	if mtus["h1"] != 1500 || mtus["h2"] != lab.UnderlayMTU || mtus["h3"] != 9000 {
		t.Errorf("host underlay MTUs %v", mtus)
	}
	vms := map[string]lab.VMSpec{}
	for _, v := range spec.VMs {
		vms[v.Name] = v
	}
	if len(vms) != 4 || vms["u"].Name != "" {
		t.Fatalf("VMs %+v", spec.VMs)
	}
	if a := vms["a"]; a.MTU != n.NICs["a"].MTU || a.MTU == 0 || a.MTU >= 1500 {
		t.Errorf("a's MTU %d, NIC MTU %d", a.MTU, n.NICs["a"].MTU)
	}
	if vms["b"].MTU != 0 || vms["c"].MTU != 0 || n.Hosts["h2"].UnderlayMTU != lab.UnderlayMTU {
		t.Errorf("b's MTU %d, c's %d (NIC %d)", vms["b"].MTU, vms["c"].MTU, n.NICs["c"].MTU)
	}
	if UnderlayMTU(p, "h2") != 0 || UnderlayMTU(p, "nope") != 0 || UnderlayMTU(p, "h1") != 1500 {
		t.Error("UnderlayMTU")
	}
}

func TestGroupVMs(t *testing.T) {
	p := mtuPolicy()
	eff, n, spec, err := Prepare(p, "x", "/tmp/x")
	if err != nil {
		t.Fatal(err)
	}
	if err := GroupVMs(&spec, [][]string{{"a", "a2"}}); err != nil {
		t.Fatal(err)
	}
	if len(spec.VMs) != 3 || spec.VMs[0].Name != "a" || len(spec.VMs[0].Extra) != 1 {
		t.Fatalf("VMs %+v", spec.VMs)
	}
	e := spec.VMs[0].Extra[0]
	if e.Name != "a2" || e.MAC.String() != n.NICs["a2"].MAC.String() || len(e.Addrs) != 2 ||
		e.Addrs[1] != netip.MustParsePrefix("10.0.2.11/24") || e.MTU != n.NICs["a2"].MTU {
		t.Errorf("extra NIC %+v", e)
	}
	for what, g := range map[string][][]string{
		"other host": {{"a", "b"}},
		"unplaced":   {{"a", "u"}},
		"unknown":    {{"zz"}},
		"twice":      {{"b"}, {"c", "b"}},
	} {
		_, _, spec, _ := Prepare(p, "x", "/tmp/x")
		if err := GroupVMs(&spec, g); err == nil {
			t.Errorf("%s: grouped %v", what, g)
		}
	}

	// MultiVMSpec: the same from NICs.
	vm, err := MultiVMSpec(eff, n.NICs["a"], n.NICs["a2"])
	if err != nil || vm.Name != "a" || vm.Gateway != netip.MustParseAddr("10.0.1.1") || len(vm.Extra) != 1 || vm.Extra[0].Name != "a2" {
		t.Errorf("MultiVMSpec %+v %v", vm, err)
	}
	if _, err := MultiVMSpec(eff, n.NICs["a"], n.NICs["b"]); err == nil {
		t.Error("MultiVMSpec across hosts")
	}
	if _, err := MultiVMSpec(eff, n.NICs["u"]); err == nil {
		t.Error("MultiVMSpec of an unplaced NIC")
	}
}
