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
