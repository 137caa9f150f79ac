package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	inetAddr  = netip.MustParsePrefix("198.51.100.1/24")
	inetFar   = netip.MustParsePrefix("192.0.2.10/32")
	inetPool  = netip.MustParsePrefix("203.0.113.0/24")
	inetVM    = netip.MustParsePrefix("198.51.100.20/24")
	inetPubIP = netip.MustParseAddr("203.0.113.7")
)

// jsonIP runs `ip -j ARGS` in ns and returns the objects it prints.
func jsonIP(t *testing.T, ctx context.Context, ns string, args ...string) []map[string]any {
	t.Helper()
	out, err := ip(ctx, ns, append([]string{"-j"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("ip -j %v: %v: %s", args, err, out)
	}
	return v
}

// addrsOf returns "ADDR/LEN" of every IPv4 address of dev in ns.
func addrsOf(t *testing.T, ctx context.Context, ns, dev string) []string {
	t.Helper()
	var out []string
	for _, l := range jsonIP(t, ctx, ns, "-4", "addr", "show", "dev", dev) {
		infos, _ := l["addr_info"].([]any)
		for _, i := range infos {
			m := i.(map[string]any)
			out = append(out, m["local"].(string)+"/"+jsonNum(m["prefixlen"]))
		}
	}
	return out
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sysctlIn(t *testing.T, ctx context.Context, ns, key string) string {
	t.Helper()
	out, err := run(ctx, nsArgv(ns, []string{"sysctl", "-n", key})...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestInternet brings up a lab of two gateway hosts with uplinks to the
// internet namespace and checks what the lab makes; then, with the uplink
// plugged into br-int by hand and a NORMAL flow (the controller's job), that
// a VM on the uplink network and the internet exchange packets, and that
// on-link routes come and go.
func TestInternet(t *testing.T) {
	requireLabEnv(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := UniqueName('i')
	t0 := time.Now()
	l, err := Up(ctx, Spec{
		Name:  name,
		Hosts: []HostSpec{{Name: "gw"}, {Name: "plain"}},
		VMs:   []VMSpec{{Name: "v", Host: "gw", Addrs: []netip.Prefix{inetVM}, Gateway: inetAddr.Addr()}},
		Internet: &InternetSpec{
			Addr:    inetAddr,
			Extra:   []netip.Prefix{inetFar},
			OnLink:  []netip.Prefix{inetPool},
			Uplinks: []UplinkSpec{{Host: "gw", Interface: "eth1"}, {Host: "plain", Interface: "up.1"}}, // "up.1": a keyword, a dot
		},
		SetupHost: func(ctx context.Context, h *Host) error {
			// The uplink exists before SetupHost (the controller plugs it).
			if h.Name() == "gw" {
				if _, err := ip(ctx, h.Netns(), "link", "show", "dev", "eth1"); err != nil {
					t.Errorf("SetupHost of gw: no eth1 yet: %v", err)
				}
			}
			_, err := h.OVS().Vsctl(ctx, "add-br", IntegrationBridge, "--", "set", "bridge", IntegrationBridge,
				"datapath_type=netdev", "fail_mode=secure")
			return err
		},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	down := false
	t.Cleanup(func() {
		if !down {
			if err := l.Down(context.Background()); err != nil {
				t.Errorf("Down: %v", err)
			}
		}
	})
	t.Logf("lab %s up in %v", name, time.Since(t0).Round(time.Millisecond))
	in := l.Internet()
	gw, vm := l.Host("gw"), l.VM("v")
	if in == nil || in.Netns() != name+"-inet" || in.Uplink("gw") != "eth1" || in.Uplink("plain") != "up.1" || in.Uplink("x") != "" {
		t.Fatalf("Internet() = %+v", in)
	}
	if got := in.Addrs(); !slices.Equal(got, []netip.Addr{inetAddr.Addr(), inetFar.Addr()}) || in.IP() != inetAddr.Addr() {
		t.Errorf("Addrs() = %v", got)
	}

	t.Run("devices", func(t *testing.T) {
		links := jsonIP(t, ctx, gw.Netns(), "link", "show", "dev", "eth1")
		if len(links) != 1 || !slices.Contains(anySlice(links[0]["flags"]), "UP") {
			t.Errorf("eth1 in gw: %v", links)
		}
		if a := addrsOf(t, ctx, gw.Netns(), "eth1"); len(a) != 0 {
			t.Errorf("eth1 has addresses %v", a)
		}
		if v := sysctlIn(t, ctx, gw.Netns(), "net.ipv6.conf.eth1.disable_ipv6"); v != "1" {
			t.Errorf("eth1 disable_ipv6 = %s", v)
		}
		if o, _ := ip(ctx, l.Host("plain").Netns(), "link", "show", "dev", "eth1"); o != "" {
			t.Errorf("eth1 in the other host: %s", o)
		}
		if v := sysctlIn(t, ctx, l.Host("plain").Netns(), "net/ipv6/conf/up.1/disable_ipv6"); v != "1" {
			t.Errorf("up.1 disable_ipv6 = %s", v)
		}
		ports := jsonIP(t, ctx, in.Netns(), "link", "show", "master", in.Bridge())
		var names []string
		for _, p := range ports {
			names = append(names, p["ifname"].(string))
		}
		if slices.Sort(names); !slices.Equal(names, []string{name + "n0", name + "n1"}) { // plugged in parallel: any order
			t.Errorf("ports of %s: %v", in.Bridge(), ports)
		}
		br := jsonIP(t, ctx, in.Netns(), "link", "show", "dev", in.Bridge())
		if len(br) != 1 || br[0]["address"] != in.MAC().String() {
			t.Errorf("bridge %v, want MAC %s", br, in.MAC())
		}
		if a := addrsOf(t, ctx, in.Netns(), in.Bridge()); !slices.Equal(a, []string{inetAddr.String()}) {
			t.Errorf("bridge addresses %v", a)
		}
		if a := addrsOf(t, ctx, in.Netns(), "lo"); !slices.Contains(a, inetFar.String()) {
			t.Errorf("lo addresses %v", a)
		}
		routes, _ := ip(ctx, in.Netns(), "route", "show")
		if !strings.Contains(routes, inetPool.String()+" dev "+in.Bridge()) || strings.Contains(routes, "default") {
			t.Errorf("routes:\n%s", routes)
		}
		if v := sysctlIn(t, ctx, in.Netns(), "net.ipv4.ip_forward"); v != "0" {
			t.Errorf("internet forwards: %s", v)
		}
		links = jsonIP(t, ctx, in.Netns(), "link", "show")
		if len(links) != 4 { // lo, the bridge, two veths
			t.Errorf("links in the internet: %v", links)
		}
		inv := l.Inventory().Internet
		if inv == nil || inv.Netns != in.Netns() || len(inv.Uplinks) != 2 || inv.Uplinks[0] != (UplinkInventory{"gw", "eth1", name + "n0"}) ||
			!slices.Equal(inv.OnLink, []netip.Prefix{inetPool}) {
			t.Errorf("inventory: %+v", inv)
		}
	})

	// What the controller would do: the uplink as a port of br-int.
	if _, err := gw.OVS().Vsctl(ctx, "add-port", IntegrationBridge, "eth1"); err != nil {
		t.Fatal(err)
	}
	addFlows(t, ctx, gw, "priority=1,actions=NORMAL")

	t.Run("traffic", func(t *testing.T) {
		c, err := in.Capture(ctx, "icmp")
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range in.Addrs() {
			if r := pingN(t, ctx, vm, dst, 3); r.Received != 3 {
				t.Errorf("vm -> internet %s: %+v", dst, r)
			}
		}
		r, err := in.Ping(ctx, inetVM.Addr(), PingOpts{Count: 3, Interval: 100 * time.Millisecond})
		if err != nil || r.Received != 3 {
			t.Errorf("internet -> vm: %+v %v", r, err)
		}
		lines := c.Stop()
		if !slices.ContainsFunc(lines, func(s string) bool {
			return strings.Contains(s, inetVM.Addr().String()+" > "+inetFar.Addr().String()+": ICMP echo request")
		}) {
			t.Errorf("capture on the internet:\n%s", strings.Join(lines, "\n"))
		}
		// TCP from the internet through the userspace datapath: needs the
		// internet's side to fill in checksums.
		srv := exec.CommandContext(ctx, "ip", "netns", "exec", vm.Netns(), "nc", "-l", "5001")
		var n countWriter
		srv.Stdout = &n
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		if err := l.TrackProcess("nc-server", srv.Process.Pid); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			out, _ := vm.Exec(ctx, "ss", "-Hltn", "sport = :5001")
			if strings.Contains(out, "LISTEN") {
				break
			}
			if i == 100 {
				t.Fatal("nc server not listening after 5 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
		_, cerr := in.Exec(tctx, "sh", "-c", "head -c 1000000 /dev/zero | nc -N "+inetVM.Addr().String()+" 5001")
		tcancel()
		if cerr != nil {
			t.Fatalf("nc client in the internet: %v", cerr)
		}
		if err := srv.Wait(); err != nil || n != 1000000 {
			t.Errorf("TCP from the internet: server got %d bytes (%v)", n, err)
		}
	})

	t.Run("on-link", func(t *testing.T) {
		// The VM answers ARP for a "public" address, as a gateway would.
		if err := vm.AddAddr(ctx, netip.PrefixFrom(inetPubIP, 32)); err != nil {
			t.Fatal(err)
		}
		pingPub := func() (PingResult, error) {
			return in.Ping(ctx, inetPubIP, PingOpts{Count: 1, Timeout: 500 * time.Millisecond})
		}
		if r, err := pingPub(); err != nil || r.Received != 1 {
			t.Errorf("internet -> %s on-link: %+v %v", inetPubIP, r, err)
		}
		if err := in.DelOnLink(ctx, inetPool); err != nil {
			t.Fatal(err)
		}
		if r, err := pingPub(); err == nil && r.Received != 0 {
			t.Errorf("internet -> %s without the on-link route: %+v", inetPubIP, r)
		}
		if got := in.OnLink(); len(got) != 0 || len(l.Inventory().Internet.OnLink) != 0 {
			t.Errorf("OnLink() after DelOnLink: %v", got)
		}
		if err := in.DelOnLink(ctx, inetPool); err != nil { // not routed: nothing to do
			t.Errorf("DelOnLink again: %v", err)
		}
		for range 2 { // idempotent
			if err := in.AddOnLink(ctx, netip.MustParsePrefix("203.0.113.9/24")); err != nil {
				t.Fatal(err)
			}
		}
		if got := in.OnLink(); !slices.Equal(got, []netip.Prefix{inetPool}) {
			t.Errorf("OnLink() = %v", got)
		}
		if r, err := pingPub(); err != nil || r.Received != 1 {
			t.Errorf("internet -> %s on-link again: %+v %v", inetPubIP, r, err)
		}
	})

	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	down = true
	if got := labNetns(t, name); len(got) != 0 {
		t.Errorf("netns left after Down: %v", got)
	}
}

func anySlice(v any) []string {
	var out []string
	s, _ := v.([]any)
	for _, x := range s {
		if str, ok := x.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

func TestValidateInternet(t *testing.T) {
	base := func(in InternetSpec) Spec {
		return Spec{Name: "ok", Hosts: []HostSpec{{Name: "h"}, {Name: "g"}}, Internet: &in}
	}
	a := netip.MustParsePrefix("198.51.100.1/24")
	for _, s := range []Spec{
		base(InternetSpec{}),
		base(InternetSpec{Addr: netip.MustParsePrefix("198.51.100.0/24")}),
		base(InternetSpec{Addr: netip.MustParsePrefix("198.51.100.1/32")}),
		base(InternetSpec{Addr: netip.MustParsePrefix("2001:db8::1/64")}),
		base(InternetSpec{Addr: a, MAC: mustMAC("01:00:00:00:00:01")}),
		base(InternetSpec{Addr: a, Extra: []netip.Prefix{{}}}),
		base(InternetSpec{Addr: a, OnLink: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "x", Interface: "eth1"}}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: "eth1"}, {Host: "h", Interface: "eth2"}}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: ""}}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: "a/b"}}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: "waytoolongname16"}}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: "br-int"}}}),
		base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: "okv0"}}}),
	} {
		if err := validate(&s); err == nil {
			t.Errorf("accepted %+v", s.Internet)
		}
	}
	s := base(InternetSpec{Addr: a, Uplinks: []UplinkSpec{{Host: "h", Interface: "eth1"}, {Host: "g", Interface: "eth1"}}})
	if err := validate(&s); err != nil {
		t.Errorf("rejected: %v", err)
	}
}
