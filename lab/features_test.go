package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pingDF pings dst from a VM with `size` bytes of ICMP payload and the DF
// bit set, and returns how many of n replies came back (-1: no summary).
func pingDF(t *testing.T, ctx context.Context, v *VM, dst netip.Addr, size, n int) int {
	t.Helper()
	out, err := v.Exec(ctx, "ping", "-n", "-M", "do", "-s", strconv.Itoa(size), "-c", strconv.Itoa(n), "-i", "0.1", "-W", "0.5", dst.String())
	r, perr := parsePing(out)
	if perr != nil {
		return -1
	}
	if err != nil && exitCode(err) != 1 {
		t.Fatalf("ping: %v", err)
	}
	return r.Received
}

func linkMTU(t *testing.T, ctx context.Context, netns, dev string) int {
	t.Helper()
	out, err := ip(ctx, netns, "-j", "link", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		MTU     int `json:"mtu"`
		IfIndex int `json:"ifindex"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse %s: %v", out, err)
	}
	return links[0].MTU
}

func ifindex(t *testing.T, ctx context.Context, netns, dev string) int {
	t.Helper()
	out, err := ip(ctx, netns, "-j", "link", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		IfIndex int `json:"ifindex"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse %s: %v", out, err)
	}
	return links[0].IfIndex
}

// portsWithID lists the br-int ports of h whose iface-id is id.
func portsWithID(t *testing.T, ctx context.Context, h *Host, id string) []string {
	t.Helper()
	out, err := h.OVS().Vsctl(ctx, "--bare", "--columns=name", "find", "Interface", "external_ids:iface-id="+id)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// TestLabFeatures covers per-host underlay MTUs, VM MTUs, secondary NICs,
// moving VMs between hosts and the baseline pairs, on one lab.
func TestLabFeatures(t *testing.T) {
	requireLabEnv(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := UniqueName('x')
	pfx := netip.MustParsePrefix
	l, err := Up(ctx, Spec{
		Name:  name,
		Hosts: []HostSpec{{Name: "h1", UnderlayMTU: 1500}, {Name: "h2", UnderlayMTU: 1500}, {Name: "h3"}},
		VMs: []VMSpec{
			{Name: "a", Host: "h1", Addrs: []netip.Prefix{pfx("10.0.1.21/24")}, Gateway: gw, MTU: 1450,
				Extra: []NICSpec{{Name: "a-2", MAC: mustMAC("02:00:00:00:02:21"), Addrs: []netip.Prefix{pfx("10.0.2.21/24")}}}},
			{Name: "b", Host: "h2", Addrs: []netip.Prefix{pfx("10.0.1.22/24")}, Gateway: gw, MTU: 1450},
			{Name: "c", Host: "h3", Addrs: []netip.Prefix{pfx("10.0.1.23/24")}, Gateway: gw},
			{Name: "d", Host: "h1", Addrs: []netip.Prefix{pfx("10.0.2.24/24")}},
		},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	h1, h2, h3 := l.Host("h1"), l.Host("h2"), l.Host("h3")
	a, b, c, d := l.VM("a"), l.VM("b"), l.VM("c"), l.VM("d")

	t.Run("underlay-mtu", func(t *testing.T) {
		for _, x := range []struct {
			h   *Host
			mtu int
		}{{h1, 1500}, {h2, 1500}, {h3, 9000}} {
			if x.h.UnderlayMTU() != x.mtu {
				t.Errorf("%s: UnderlayMTU() = %d", x.h.Name(), x.h.UnderlayMTU())
			}
			for _, dev := range [][2]string{{x.h.Netns(), x.h.ulDev}, {x.h.Netns(), PhysicalBridge}, {l.st.UnderlayNetns, x.h.ulDev + "p"}} {
				if m := linkMTU(t, ctx, dev[0], dev[1]); m != x.mtu {
					t.Errorf("%s: %s has MTU %d, want %d", x.h.Name(), dev[1], m, x.mtu)
				}
			}
		}
		// 1472 bytes of ICMP payload make a 1500-byte IP packet.
		if out, err := h1.Exec(ctx, "ping", "-n", "-M", "do", "-s", "1472", "-c", "1", "-W", "0.5", h2.UnderlayIP().String()); err != nil {
			t.Errorf("h1 -> h2 with 1500 bytes: %v %s", err, out)
		}
		if _, err := h1.Exec(ctx, "ping", "-n", "-M", "do", "-s", "1473", "-c", "1", "-W", "0.5", h2.UnderlayIP().String()); err == nil {
			t.Errorf("h1 sent 1501 bytes on a 1500-byte underlay")
		}
		// h3 may send jumbo frames, but the underlay delivers to h1
		// nothing larger than h1's link.
		if out, err := h3.Exec(ctx, "ping", "-n", "-M", "do", "-s", "3000", "-c", "1", "-W", "0.5", h1.UnderlayIP().String()); err == nil {
			t.Errorf("3028 bytes reached h1 over its 1500-byte link: %s", out)
		}
		if _, err := h3.Exec(ctx, "ping", "-n", "-M", "do", "-s", "1472", "-c", "1", "-W", "0.5", h1.UnderlayIP().String()); err != nil {
			t.Errorf("h3 -> h1 with 1500 bytes: %v", err)
		}
		if inv := l.Inventory(); inv.Hosts[0].UnderlayMTU != 1500 || inv.Hosts[2].UnderlayMTU != 9000 {
			t.Errorf("inventory hosts %+v", inv.Hosts)
		}
	})

	// VXLAN between h1 and h2 for a and b (and between h3 and h2 for c,
	// after the moves).
	for _, p := range [][2]*Host{{h1, h2}, {h2, h1}} {
		if _, err := p[0].OVS().Vsctl(ctx, "add-port", IntegrationBridge, "vx", "--", "set", "Interface", "vx",
			"type=vxlan", "ofport_request=100", "options:remote_ip="+p[1].UnderlayIP().String(), "options:key=flow"); err != nil {
			t.Fatal(err)
		}
	}
	tunnel := func(t *testing.T, h *Host, v *VM) {
		t.Helper()
		p := ofport(t, ctx, v)
		addFlows(t, ctx, h,
			fmt.Sprintf("priority=20,in_port=%d,actions=set_field:5->tun_id,output:vx", p),
			"priority=20,in_port=vx,tun_id=5,actions=output:"+strconv.Itoa(p))
	}

	t.Run("vm-mtu", func(t *testing.T) {
		tunnel(t, h1, a)
		tunnel(t, h2, b)
		if m := linkMTU(t, ctx, a.Netns(), VMIface); m != 1450 || a.MTU() != 1450 {
			t.Errorf("a's MTU %d", m)
		}
		// 1450 - 28 = 1422: a full-size packet, 1500 bytes with VXLAN's 50.
		if n := pingDF(t, ctx, a, b.IP(), 1422, 3); n != 3 {
			t.Errorf("full-size packets over the tunnel: %d of 3", n)
		}
		if n := pingDF(t, ctx, a, b.IP(), 1423, 1); n > 0 {
			t.Errorf("a sent more than its MTU: %d", n)
		}
		for _, v := range []*VM{a, b} {
			if err := v.SetMTU(ctx, 1500); err != nil {
				t.Fatal(err)
			}
			if m, hm := linkMTU(t, ctx, v.Netns(), VMIface), linkMTU(t, ctx, v.Host().Netns(), v.NIC()); m != 1500 || hm != 1500 || v.MTU() != 1500 {
				t.Errorf("%s after SetMTU: %d/%d", v.Name(), m, hm)
			}
		}
		// 1500 + 50 does not fit the 1500-byte underlay: dropped.
		if n := pingDF(t, ctx, a, b.IP(), 1472, 3); n != 0 {
			t.Errorf("1550-byte tunnelled packets crossed a 1500-byte underlay: %d of 3", n)
		}
		if n := pingDF(t, ctx, a, b.IP(), 1422, 2); n != 2 {
			t.Errorf("1500-byte tunnelled packets after SetMTU: %d of 2", n)
		}
		// Raising the underlay MTU at run time lets them through.
		for _, h := range []*Host{h1, h2} {
			if err := h.SetUnderlayMTU(ctx, 1600); err != nil {
				t.Fatal(err)
			}
		}
		if n := pingDF(t, ctx, a, b.IP(), 1472, 3); n != 3 {
			t.Errorf("1550-byte tunnelled packets over a 1600-byte underlay: %d of 3", n)
		}
		for _, h := range []*Host{h1, h2} {
			if err := h.SetUnderlayMTU(ctx, 1500); err != nil {
				t.Fatal(err)
			}
			if m := linkMTU(t, ctx, h.Netns(), PhysicalBridge); m != 1500 || h.UnderlayMTU() != 1500 {
				t.Errorf("%s: br-phy MTU %d after SetUnderlayMTU", h.Name(), m)
			}
		}
		if n := pingDF(t, ctx, a, b.IP(), 1472, 2); n != 0 {
			t.Errorf("1550-byte tunnelled packets after lowering the underlay MTU again: %d of 2", n)
		}
	})

	t.Run("secondary-nic", func(t *testing.T) {
		nics := a.NICs()
		if len(nics) != 2 || nics[0].Iface != VMIface || nics[1].Iface != "eth1" || nics[1].Name != "a-2" ||
			nics[1].MAC.String() != "02:00:00:00:02:21" || nics[1].Addrs[0] != pfx("10.0.2.21/24") || nics[0].Dev != a.NIC() {
			t.Fatalf("NICs %+v", nics)
		}
		if l.VMOf("a-2") != a || l.VMOf("a") != a || l.VMOf("zz") != nil {
			t.Errorf("VMOf")
		}
		if ids := portsWithID(t, ctx, h1, "a-2"); !slices.Equal(ids, []string{nics[1].Dev}) {
			t.Errorf("ports with iface-id a-2: %v", ids)
		}
		out, _ := a.Exec(ctx, "ip", "-4", "route", "show")
		if !strings.Contains(out, "default via 10.0.1.1 dev eth0") || !strings.Contains(out, "10.0.2.0/24 dev eth1") ||
			strings.Count(out, "default") != 1 {
			t.Errorf("a's routes:\n%s", out)
		}
		p2, err := a.NICOFPort(ctx, "a-2")
		if err != nil {
			t.Fatal(err)
		}
		pd := ofport(t, ctx, d)
		addFlows(t, ctx, h1,
			fmt.Sprintf("priority=10,in_port=%d,actions=output:%d", p2, pd),
			fmt.Sprintf("priority=10,in_port=%d,actions=output:%d", pd, p2))
		if r := pingN(t, ctx, a, d.IP(), 2); r.Received != 2 {
			t.Errorf("a -> d through eth1: %+v", r)
		}
		c1, err := a.CaptureOn(ctx, "eth1", "icmp")
		if err != nil {
			t.Fatal(err)
		}
		if r := pingN(t, ctx, d, netip.MustParseAddr("10.0.2.21"), 1); r.Received != 1 {
			t.Errorf("d -> a's eth1: %+v", r)
		}
		deadline := time.Now().Add(3 * time.Second)
		for len(c1.Lines()) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if lines := c1.Stop(); len(lines) < 2 {
			t.Errorf("capture on eth1: %q", lines)
		}

		// Hot-plug and unplug.
		n3, err := l.AddNIC(ctx, "a", NICSpec{Name: "a-3", Addrs: []netip.Prefix{pfx("10.0.3.21/24")}, MTU: 1400})
		if err != nil {
			t.Fatal(err)
		}
		if n3.Iface != "eth2" || len(n3.MAC) != 6 || linkMTU(t, ctx, a.Netns(), "eth2") != 1400 || linkMTU(t, ctx, h1.Netns(), n3.Dev) != 1400 {
			t.Errorf("AddNIC: %+v", n3)
		}
		if ids := portsWithID(t, ctx, h1, "a-3"); len(ids) != 1 {
			t.Errorf("a-3 ports %v", ids)
		}
		if _, err := l.AddNIC(ctx, "a", NICSpec{Name: "b"}); err == nil {
			t.Errorf("AddNIC with another VM's name succeeded")
		}
		if inv := l.Inventory(); len(inv.VMs[0].Extra) != 2 || inv.VMs[0].Extra[1].Iface != "eth2" {
			t.Errorf("inventory extras %+v", inv.VMs[0].Extra)
		}
		if err := l.RemoveNIC(ctx, "a", "a-3"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := linkExists(ctx, a.Netns(), "eth2"); ok || len(portsWithID(t, ctx, h1, "a-3")) != 0 || len(a.NICs()) != 2 {
			t.Errorf("a-3 not removed")
		}
	})

	t.Run("move", func(t *testing.T) {
		pc := ofport(t, ctx, c)
		// On h3 b will reach c; c hears any RARP.
		addFlows(t, ctx, h3, fmt.Sprintf("priority=5,dl_type=0x8035,actions=output:%d", pc))
		rarp, err := c.Capture(ctx, "ether proto 0x8035")
		if err != nil {
			t.Fatal(err)
		}
		idx := ifindex(t, ctx, b.Netns(), VMIface)
		oldDev := b.NIC()
		res, err := l.MoveVM(ctx, "b", "h3", MoveOpts{Announce: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("break-before-make: %+v", res)
		if res.From != "h2" || res.To != "h3" || res.Overlap != 0 || res.LinkDown <= 0 || res.Took < res.LinkDown {
			t.Errorf("result %+v", res)
		}
		if b.Host() != h3 || b.NIC() != oldDev || ifindex(t, ctx, b.Netns(), VMIface) != idx {
			t.Errorf("after the move: host %s nic %s", b.Host().Name(), b.NIC())
		}
		if len(portsWithID(t, ctx, h2, "b")) != 0 || !slices.Equal(portsWithID(t, ctx, h3, "b"), []string{oldDev}) {
			t.Errorf("ports: h2 %v h3 %v", portsWithID(t, ctx, h2, "b"), portsWithID(t, ctx, h3, "b"))
		}
		if ok, _ := linkExists(ctx, h2.Netns(), oldDev); ok {
			t.Errorf("%s still in h2", oldDev)
		}
		pb := ofport(t, ctx, b)
		addFlows(t, ctx, h3,
			fmt.Sprintf("priority=10,in_port=%d,actions=output:%d", pb, pc),
			fmt.Sprintf("priority=10,in_port=%d,actions=output:%d", pc, pb))
		if r := pingN(t, ctx, b, c.IP(), 2); r.Received != 2 {
			t.Errorf("b -> c on h3: %+v", r)
		}
		if got := rarp.Stop(); len(got) != 1 || !strings.Contains(got[0], b.MAC().String()+" > ff:ff:ff:ff:ff:ff") {
			t.Errorf("RARP announce: %q", got)
		}
		if st, err := readState(l.Dir()); err != nil || st.vm("b").Host != "h3" {
			t.Errorf("state after the move: %v", err)
		}

		// Back to h2, make-before-break: both hosts have a port for b
		// for a while, and b keeps talking through h3 meanwhile.
		type moved struct {
			res MoveResult
			err error
		}
		done := make(chan moved, 1)
		go func() {
			r, err := l.MoveVM(ctx, "b", "h2", MoveOpts{MakeBeforeBreak: true, Overlap: 1500 * time.Millisecond})
			done <- moved{r, err}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for len(portsWithID(t, ctx, h2, "b")) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n2, n3 := portsWithID(t, ctx, h2, "b"), portsWithID(t, ctx, h3, "b"); len(n2) != 1 || len(n3) != 1 {
			t.Errorf("during the overlap: h2 %v h3 %v", n2, n3)
		}
		if r := pingN(t, ctx, b, c.IP(), 2); r.Received != 2 {
			t.Errorf("b -> c during the overlap: %+v", r)
		}
		m := <-done
		if m.err != nil {
			t.Fatal(m.err)
		}
		t.Logf("make-before-break: %+v", m.res)
		if m.res.Overlap < 1500*time.Millisecond || m.res.LinkDown <= 0 || m.res.LinkDown > m.res.Overlap {
			t.Errorf("result %+v", m.res)
		}
		newDev := b.NIC()
		if b.Host() != h2 || newDev == oldDev || !slices.Equal(portsWithID(t, ctx, h2, "b"), []string{newDev}) ||
			len(portsWithID(t, ctx, h3, "b")) != 0 {
			t.Errorf("after: host %s nic %s, h2 %v h3 %v", b.Host().Name(), newDev, portsWithID(t, ctx, h2, "b"), portsWithID(t, ctx, h3, "b"))
		}
		out, _ := b.Exec(ctx, "ip", "-o", "addr", "show", "dev", VMIface)
		routes, _ := b.Exec(ctx, "ip", "route", "show", "default")
		links, _ := b.Exec(ctx, "ip", "-o", "link", "show")
		if !strings.Contains(out, "10.0.1.22/24") || !strings.Contains(routes, "via 10.0.1.1 dev eth0") ||
			strings.Contains(links, "meth0") || !strings.Contains(links, b.MAC().String()) || linkMTU(t, ctx, b.Netns(), VMIface) != 1500 {
			t.Errorf("b after the switch:\n%s\n%s\n%s", out, routes, links)
		}
		if ok, _ := linkExists(ctx, h3.Netns(), oldDev); ok {
			t.Errorf("old device %s left on h3", oldDev)
		}
		tunnel(t, h2, b)
		if r := pingN(t, ctx, a, b.IP(), 2); r.Received != 2 {
			t.Errorf("a -> b over the tunnel after the move back: %+v", r)
		}

		// A make-before-break move cut short leaves the VM where it was.
		cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = l.MoveVM(cctx, "c", "h1", MoveOpts{MakeBeforeBreak: true, Overlap: 5 * time.Second})
		ccancel()
		if err == nil {
			t.Fatal("a move cut short succeeded")
		}
		links, _ = c.Exec(ctx, "ip", "-o", "link", "show")
		if c.Host() != h3 || len(portsWithID(t, ctx, h1, "c")) != 0 || !slices.Equal(portsWithID(t, ctx, h3, "c"), []string{c.NIC()}) ||
			strings.Contains(links, "meth0") {
			t.Errorf("after a failed move: host %s, h1 %v, links\n%s", c.Host().Name(), portsWithID(t, ctx, h1, "c"), links)
		}
		if p, err := c.OFPort(ctx); err != nil || p != pc {
			t.Errorf("c's port after a failed move: %d %v", p, err)
		}
		if st, err := readState(l.Dir()); err != nil || slices.ContainsFunc(st.Devices, func(d deviceState) bool { return d.Name == "meth0" }) {
			t.Errorf("state after a failed move: %v", err)
		}

		// A VM with two NICs moves whole.
		res, err = l.MoveVM(ctx, "a", "h3", MoveOpts{MakeBeforeBreak: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range a.NICs() {
			if ids := portsWithID(t, ctx, h3, n.Name); !slices.Equal(ids, []string{n.Dev}) || len(portsWithID(t, ctx, h1, n.Name)) != 0 {
				t.Errorf("NIC %s: ports on h3 %v", n.Name, ids)
			}
		}
		routes, _ = a.Exec(ctx, "ip", "-4", "route", "show")
		if !strings.Contains(routes, "default via 10.0.1.1 dev eth0") || !strings.Contains(routes, "10.0.2.0/24 dev eth1") {
			t.Errorf("a's routes after the move:\n%s", routes)
		}
		if _, err := l.MoveVM(ctx, "a", "h3", MoveOpts{}); err == nil {
			t.Errorf("a move to the VM's own host succeeded")
		}
		if _, err := l.MoveVM(ctx, "a", "nope", MoveOpts{}); err == nil {
			t.Errorf("a move to an unknown host succeeded")
		}
	})

	t.Run("pairs", func(t *testing.T) {
		vp, err := l.AddVethPair(ctx, PairSpec{Name: "v"})
		if err != nil {
			t.Fatal(err)
		}
		op, err := l.AddNormalBridgePair(ctx, PairSpec{Name: "o", MTU: 1450,
			Addrs: [2]netip.Prefix{pfx("192.168.7.1/24"), pfx("192.168.7.2/24")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AddVethPair(ctx, PairSpec{Name: "v"}); err == nil {
			t.Errorf("duplicate pair")
		}
		if l.Pair("v") != vp || vp.Kind() != PairVeth || op.Kind() != PairNormal || vp.OVS() != nil || op.OVS() == nil {
			t.Fatalf("pairs")
		}
		flows, err := op.OVS().Ofctl(ctx, "dump-flows", "--no-stats", PairBridge)
		if err != nil || strings.Count(flows, "actions=") != 1 || !strings.Contains(flows, "actions=NORMAL") {
			t.Errorf("flows: %v\n%s", err, flows)
		}
		if m := linkMTU(t, ctx, op.A().Netns(), VMIface); m != 1450 {
			t.Errorf("pair MTU %d", m)
		}
		for _, p := range []*Pair{vp, op} {
			r, err := p.A().Ping(ctx, p.B().IP(), PingOpts{Count: 2, Interval: 100 * time.Millisecond})
			if err != nil || r.Received != 2 {
				t.Errorf("%s: a -> b: %+v %v", p.Name(), r, err)
			}
		}
		if _, err := exec.LookPath("iperf3"); err == nil {
			for _, p := range []*Pair{vp, op} {
				srv := exec.CommandContext(ctx, "ip", "netns", "exec", p.B().Netns(), "iperf3", "-s", "-1", "-B", p.B().IP().String())
				if err := srv.Start(); err != nil {
					t.Fatal(err)
				}
				if err := l.TrackProcess("iperf3/"+p.Name(), srv.Process.Pid); err != nil {
					t.Fatal(err)
				}
				waited := make(chan struct{})
				go func() { _ = srv.Wait(); close(waited) }()
				for i := 0; ; i++ {
					if out, _ := p.B().Exec(ctx, "ss", "-Hltn", "sport = :5201"); strings.Contains(out, "LISTEN") {
						break
					}
					if i == 100 {
						t.Fatal("iperf3 server not listening after 5 s")
					}
					time.Sleep(50 * time.Millisecond)
				}
				out, err := p.A().Exec(ctx, "iperf3", "-c", p.B().IP().String(), "-t", "1", "-J")
				if err != nil {
					t.Errorf("%s: iperf3: %v", p.Name(), err)
				}
				select {
				case <-waited:
				case <-time.After(5 * time.Second):
					_ = srv.Process.Kill()
					<-waited
				}
				l.untrack(srv.Process.Pid)
				var r struct {
					End struct {
						SumReceived struct {
							BitsPerSecond float64 `json:"bits_per_second"`
						} `json:"sum_received"`
					} `json:"end"`
				}
				if json.Unmarshal([]byte(out), &r) != nil || r.End.SumReceived.BitsPerSecond <= 0 {
					t.Errorf("%s: iperf3 output %s", p.Name(), out)
				}
				t.Logf("%s pair: %.2f Gbit/s", p.Kind(), r.End.SumReceived.BitsPerSecond/1e9)
			}
		}
		inv := l.Inventory()
		if len(inv.Pairs) != 2 || inv.Pairs[1].OVSDB == "" || len(inv.Pairs[1].Netns) != 3 {
			t.Errorf("inventory pairs %+v", inv.Pairs)
		}
		// RemovePair; Down removes "o".
		if err := l.RemovePair(ctx, "v"); err != nil {
			t.Fatal(err)
		}
		if ns := labNetns(t, name); slices.Contains(ns, vp.A().Netns()) || slices.Contains(ns, vp.B().Netns()) || l.Pair("v") != nil {
			t.Errorf("pair v not removed: %v", ns)
		}
	})

	t.Run("down", func(t *testing.T) {
		var pids []int
		for _, h := range l.Hosts() {
			x, y := h.PIDs()
			pids = append(pids, x, y)
		}
		l.mu.Lock()
		for _, p := range l.st.Pairs {
			if p.OVS != nil {
				pids = append(pids, p.OVS.OvsdbPID, p.OVS.VswitchdPID)
			}
		}
		l.mu.Unlock()
		if len(pids) != 8 || slices.Contains(pids, 0) {
			t.Fatalf("pids %v", pids)
		}
		// underlay, 3 hosts, 4 VMs, pair o's 3.
		if ns := labNetns(t, name); len(ns) != 11 {
			t.Errorf("lab netns: %v", ns)
		}
		if err := l.Down(ctx); err != nil {
			t.Fatal(err)
		}
		if ns := labNetns(t, name); len(ns) != 0 {
			t.Errorf("netns left after Down: %v", ns)
		}
		for _, pid := range pids {
			if alivePID(pid) {
				t.Errorf("pid %d alive after Down", pid)
			}
		}
		if _, err := os.Stat(l.Dir()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dir %s left after Down: %v", l.Dir(), err)
		}
		if out, _ := exec.Command("ip", "-o", "link", "show").Output(); strings.Contains(string(out), name) {
			t.Errorf("devices named after the lab in the root namespace:\n%s", out)
		}
	})
}
