package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// requireLabEnv skips without root or tools, except under CI where the lab
// tests must run.
func requireLabEnv(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ethtool",
		"tcpdump", "ping", "arping", "nc", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("lab tests need %v (they never skip under CI)", missing)
	}
	t.Skipf("lab tests need %v", missing)
}

func testLogger(t *testing.T) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.InfoLevel)
	if testing.Verbose() {
		l.SetLevel(logrus.DebugLevel)
	}
	return l
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func labNetns(t *testing.T, name string) []string {
	return slices.DeleteFunc(netnsList(t), func(n string) bool { return !strings.HasPrefix(n, name+"-") })
}

func alivePID(pid int) bool { _, ok := procStart(pid); return ok }

func ofport(t *testing.T, ctx context.Context, vm *VM) int {
	t.Helper()
	p, err := vm.OFPort(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func addFlows(t *testing.T, ctx context.Context, h *Host, flows ...string) {
	t.Helper()
	for _, f := range flows {
		if _, err := h.OVS().Ofctl(ctx, "add-flow", IntegrationBridge, f); err != nil {
			t.Fatal(err)
		}
	}
}

func pingN(t *testing.T, ctx context.Context, from *VM, to netip.Addr, n int) PingResult {
	t.Helper()
	r, err := from.Ping(ctx, to, PingOpts{Count: n, Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("ping %s -> %s: %v", from.Name(), to, err)
	}
	return r
}

var (
	ip1 = netip.MustParsePrefix("10.0.1.11/24")
	ip2 = netip.MustParsePrefix("10.0.1.12/24")
	ip3 = netip.MustParsePrefix("10.0.1.13/24")
	gw  = netip.MustParseAddr("10.0.1.1")
)

func TestLab(t *testing.T) {
	requireLabEnv(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := UniqueName('t')
	t0 := time.Now()
	l, err := Up(ctx, Spec{
		Name:  name,
		Hosts: []HostSpec{{Name: "h1"}, {Name: "h2"}},
		VMs: []VMSpec{
			{Name: "vm1", Host: "h1", MAC: mustMAC("02:00:00:00:01:11"), Addrs: []netip.Prefix{ip1}, Gateway: gw},
			{Name: "vm2", Host: "h1", MAC: mustMAC("02:00:00:00:01:12"), Addrs: []netip.Prefix{ip2}, Gateway: gw, MTU: 1400},
			{Name: "vm3", Host: "h2", MAC: mustMAC("02:00:00:00:01:13"), Addrs: []netip.Prefix{ip3}, Gateway: gw},
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
	t.Logf("lab %s up in %v", name, time.Since(t0).Round(time.Millisecond))
	h1, h2 := l.Host("h1"), l.Host("h2")
	vm1, vm2, vm3 := l.VM("vm1"), l.VM("vm2"), l.VM("vm3")
	if h1 == nil || h2 == nil || vm1 == nil || vm2 == nil || vm3 == nil || l.Host("nope") != nil {
		t.Fatal("Host/VM lookup")
	}
	if h1.UnderlayIP() != netip.MustParseAddr("172.31.0.11") || h2.UnderlayIP() != netip.MustParseAddr("172.31.0.12") {
		t.Fatalf("underlay IPs %s %s", h1.UnderlayIP(), h2.UnderlayIP())
	}

	t.Run("underlay", func(t *testing.T) {
		for _, p := range [][2]*Host{{h1, h2}, {h2, h1}} {
			if out, err := p[0].Exec(ctx, "ping", "-n", "-c", "1", "-W", "1", p[1].UnderlayIP().String()); err != nil {
				t.Errorf("%s -> %s: %v\n%s", p[0].Name(), p[1].Name(), err, out)
			}
			out, err := p[0].OVS().Appctl(ctx, "tnl/neigh/show")
			if err != nil || !strings.Contains(out, p[1].UnderlayIP().String()) {
				t.Errorf("%s: tunnel neighbour %s not pre-resolved: %v\n%s", p[0].Name(), p[1].UnderlayIP(), err, out)
			}
		}
	})

	t.Run("vm-setup", func(t *testing.T) {
		out, err := vm2.Exec(ctx, "ip", "-o", "link", "show", "eth0")
		if err != nil || !strings.Contains(out, "02:00:00:00:01:12") || !strings.Contains(out, "mtu 1400") {
			t.Errorf("vm2 eth0: %v %s", err, out)
		}
		out, err = vm1.Exec(ctx, "ip", "route", "show", "default")
		if err != nil || !strings.Contains(out, "via 10.0.1.1 dev eth0") {
			t.Errorf("vm1 default route: %v %s", err, out)
		}
		out, err = vm1.Exec(ctx, "ethtool", "-k", "eth0")
		if err != nil || !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("vm1 tx offload not off: %v", err)
		}
		id, err := h1.OVS().Vsctl(ctx, "get", "Interface", vm1.NIC(), "external_ids:iface-id")
		if err != nil || strings.Trim(strings.TrimSpace(id), `"`) != "vm1" {
			t.Errorf("iface-id of %s: %q %v", vm1.NIC(), id, err)
		}
		if !strings.HasPrefix(vm1.NIC(), name) || len(vm1.NIC()) > 15 {
			t.Errorf("NIC name %q", vm1.NIC())
		}
	})

	p1, p2, p3 := ofport(t, ctx, vm1), ofport(t, ctx, vm2), ofport(t, ctx, vm3)

	t.Run("fail-secure", func(t *testing.T) {
		out, err := h1.OVS().Ofctl(ctx, "dump-flows", "--no-stats", IntegrationBridge)
		if err != nil || strings.Contains(out, "actions=") {
			t.Fatalf("br-int should have no flows: %v\n%s", err, out)
		}
		if r := pingN(t, ctx, vm1, ip2.Addr(), 1); r.Received != 0 {
			t.Errorf("vm1 reached vm2 with no flows: %+v", r)
		}
	})

	sameHost := []string{
		fmt.Sprintf("priority=10,in_port=%d,actions=output:%d", p1, p2),
		fmt.Sprintf("priority=10,in_port=%d,actions=output:%d", p2, p1),
	}
	t.Run("same-host", func(t *testing.T) {
		addFlows(t, ctx, h1, sameHost...)
		r := pingN(t, ctx, vm1, ip2.Addr(), 3)
		if r.Sent != 3 || r.Received != 3 || len(r.TTLs) != 3 || r.TTLs[0] != 64 {
			t.Errorf("vm1 -> vm2: %+v", r)
		}
		r, err := vm2.Ping(ctx, ip1.Addr(), PingOpts{Source: ip2.Addr(), Timeout: time.Second})
		if err != nil || r.Received != 1 {
			t.Errorf("vm2 -> vm1 from %s: %+v %v", ip2.Addr(), r, err)
		}
		// IPv6 (addresses added without DAD are usable at once).
		v6a, v6b := netip.MustParsePrefix("fd00:1::11/64"), netip.MustParsePrefix("fd00:1::12/64")
		if err := vm1.AddAddr(ctx, v6a); err != nil {
			t.Fatal(err)
		}
		if err := vm2.AddAddr(ctx, v6b); err != nil {
			t.Fatal(err)
		}
		if r := pingN(t, ctx, vm1, v6b.Addr(), 2); r.Received != 2 || r.TTLs[0] != 64 {
			t.Errorf("vm1 -> vm2 over IPv6: %+v", r)
		}
	})

	t.Run("no-flows-unreachable", func(t *testing.T) {
		if r := pingN(t, ctx, vm3, ip1.Addr(), 2); r.Received != 0 {
			t.Errorf("vm3 (no flows on h2) reached vm1: %+v", r)
		}
		if mac, ok := vm3.ARPing(ctx, ip1.Addr()); ok {
			t.Errorf("vm3 got an ARP reply from %s", mac)
		}
	})

	t.Run("arping", func(t *testing.T) {
		mac, ok := vm1.ARPing(ctx, ip2.Addr())
		if !ok || mac != "02:00:00:00:01:12" {
			t.Errorf("ARPing vm2: %q %v", mac, ok)
		}
		if mac, ok := vm1.ARPing(ctx, netip.MustParseAddr("10.0.1.99")); ok {
			t.Errorf("ARPing a missing IP answered %s", mac)
		}
	})

	t.Run("send-frame-capture", func(t *testing.T) {
		filter := "ether proto 0x88b5"
		c2, err := vm2.Capture(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		c3, err := vm3.Capture(ctx, filter)
		if err != nil {
			c2.Stop()
			t.Fatal(err)
		}
		// Spoofed source MAC, local experimental ethertype.
		frame := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x88, 0xb5},
			bytes.Repeat([]byte("openvpc!"), 6)...)
		if err := vm1.SendFrame(ctx, frame); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for len(c2.Lines()) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		got2, got3 := c2.Stop(), c3.Stop()
		if len(got2) != 1 || !strings.Contains(got2[0], "02:de:ad:be:ef:01 > ff:ff:ff:ff:ff:ff") || !strings.Contains(got2[0], "openvpc!") {
			t.Errorf("vm2 capture: %q", got2)
		}
		if len(got3) != 0 {
			t.Errorf("vm3 (no flows) captured: %q", got3)
		}
		l.mu.Lock()
		n := len(l.st.Processes)
		l.mu.Unlock()
		if n != 0 {
			t.Errorf("stopped captures still tracked: %d", n)
		}
	})

	t.Run("add-del-addr", func(t *testing.T) {
		extra := netip.MustParsePrefix("10.0.1.100/24")
		if err := vm2.AddAddr(ctx, extra); err != nil {
			t.Fatal(err)
		}
		if r := pingN(t, ctx, vm1, extra.Addr(), 1); r.Received != 1 {
			t.Errorf("ping added address: %+v", r)
		}
		if !slices.Contains(vm2.Addrs(), extra) || vm2.IP() != ip2.Addr() {
			t.Errorf("vm2 addrs %v", vm2.Addrs())
		}
		if err := vm2.DelAddr(ctx, extra); err != nil {
			t.Fatal(err)
		}
		if _, err := vm1.Exec(ctx, "ip", "neigh", "flush", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		if r := pingN(t, ctx, vm1, extra.Addr(), 1); r.Received != 0 {
			t.Errorf("ping deleted address: %+v", r)
		}
		if slices.Contains(vm2.Addrs(), extra) {
			t.Errorf("vm2 addrs %v", vm2.Addrs())
		}
	})

	// Cross-host through a VXLAN tunnel over the underlay: the first packet
	// must not be lost (underlay neighbours are pre-resolved).
	tunnelFlows := func(t *testing.T) {
		t.Helper()
		addFlows(t, ctx, h1,
			fmt.Sprintf("priority=20,in_port=%d,actions=output:%d,set_field:5->tun_id,output:vx", p1, p2),
			"priority=20,in_port=vx,tun_id=5,actions=output:"+strconv.Itoa(p1))
		addFlows(t, ctx, h2,
			fmt.Sprintf("priority=20,in_port=%d,actions=set_field:5->tun_id,output:vx", p3),
			"priority=20,in_port=vx,tun_id=5,actions=output:"+strconv.Itoa(p3))
	}
	t.Run("tunnel", func(t *testing.T) {
		for _, p := range [][2]*Host{{h1, h2}, {h2, h1}} {
			if _, err := p[0].OVS().Vsctl(ctx, "add-port", IntegrationBridge, "vx", "--", "set", "Interface", "vx",
				"type=vxlan", "ofport_request=100", "options:remote_ip="+p[1].UnderlayIP().String(), "options:key=flow"); err != nil {
				t.Fatal(err)
			}
		}
		tunnelFlows(t)
		if r := pingN(t, ctx, vm1, ip3.Addr(), 5); r.Received != 5 {
			t.Errorf("vm1 -> vm3 over VXLAN: %+v", r)
		}
		// TCP across hosts (needs tx offload off on the VM side and an
		// underlay MTU that fits full-size tunnelled frames).
		srv := exec.CommandContext(ctx, "ip", "netns", "exec", vm3.Netns(), "nc", "-l", "5001")
		var n countWriter
		srv.Stdout = &n
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		if err := l.TrackProcess("nc-server", srv.Process.Pid); err != nil {
			t.Fatal(err)
		}
		// Connect only once the server listens (nc -l serves one connection;
		// a refused connect exits 1 without a message).
		for i := 0; ; i++ {
			out, _ := vm3.Exec(ctx, "ss", "-Hltn", "sport = :5001")
			if strings.Contains(out, "LISTEN") {
				break
			}
			if i == 100 {
				t.Fatal("nc server not listening after 5 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
		_, cerr := vm1.Exec(tctx, "sh", "-c", "head -c 2000000 /dev/zero | nc -N 10.0.1.13 5001")
		tcancel()
		if cerr != nil {
			t.Fatalf("nc client: %v", cerr)
		}
		if err := srv.Wait(); err != nil || n != 2000000 {
			t.Errorf("TCP over the tunnel: server got %d bytes (%v)", n, err)
		}
	})

	t.Run("add-remove-vm", func(t *testing.T) {
		vm4, err := l.AddVM(ctx, VMSpec{Name: "vm4", Host: "h2", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.14/24")}})
		if err != nil {
			t.Fatal(err)
		}
		if l.VM("vm4") != vm4 || len(vm4.MAC()) != 6 {
			t.Fatalf("AddVM result %v", vm4)
		}
		id, err := h2.OVS().Vsctl(ctx, "get", "Interface", vm4.NIC(), "external_ids:iface-id")
		if err != nil || strings.Trim(strings.TrimSpace(id), `"`) != "vm4" {
			t.Errorf("vm4 iface-id %q %v", id, err)
		}
		if !slices.Contains(netnsList(t), vm4.Netns()) {
			t.Errorf("vm4 netns missing")
		}
		if _, err := l.AddVM(ctx, VMSpec{Name: "vm4", Host: "h2"}); err == nil {
			t.Errorf("duplicate AddVM succeeded")
		}
		if err := l.RemoveVM(ctx, "vm4"); err != nil {
			t.Fatal(err)
		}
		ports, _ := h2.OVS().Vsctl(ctx, "list-ports", IntegrationBridge)
		if strings.Contains(ports, vm4.NIC()) || slices.Contains(netnsList(t), vm4.Netns()) || l.VM("vm4") != nil {
			t.Errorf("vm4 not removed: ports %q", ports)
		}
		if len(l.Inventory().VMs) != 3 {
			t.Errorf("inventory after RemoveVM: %+v", l.Inventory().VMs)
		}
	})

	t.Run("restart-vswitchd", func(t *testing.T) {
		_, old := h1.PIDs()
		if err := h1.RestartVswitchd(ctx); err != nil {
			t.Fatal(err)
		}
		_, pid := h1.PIDs()
		if pid == old || pid <= 1 || alivePID(old) || !alivePID(pid) {
			t.Fatalf("vswitchd pid %d -> %d", old, pid)
		}
		st, err := readState(l.Dir())
		if err != nil || st.host("h1").VswitchdPID != pid {
			t.Errorf("state.json not updated: %v", err)
		}
		if r := pingN(t, ctx, vm1, ip2.Addr(), 1); r.Received != 0 {
			t.Errorf("flows survived a vswitchd restart?")
		}
		addFlows(t, ctx, h1, sameHost...)
		tunnelFlows(t)
		if r := pingN(t, ctx, vm1, ip2.Addr(), 2); r.Received != 2 {
			t.Errorf("vm1 -> vm2 after restart: %+v", r)
		}
		if r := pingN(t, ctx, vm1, ip3.Addr(), 3); r.Received != 3 {
			t.Errorf("vm1 -> vm3 over VXLAN after restart: %+v", r)
		}
	})

	t.Run("inventory", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(l.Dir(), "inventory.json"))
		if err != nil {
			t.Fatal(err)
		}
		var inv Inventory
		if err := json.Unmarshal(b, &inv); err != nil {
			t.Fatal(err)
		}
		if inv.Name != name || len(inv.Hosts) != 2 || len(inv.VMs) != 3 {
			t.Fatalf("inventory: %s", b)
		}
		for _, h := range inv.Hosts {
			if _, err := os.Stat(strings.TrimPrefix(h.OVSDB, "unix:")); err != nil || h.Netns != l.Host(h.Name).Netns() {
				t.Errorf("host %+v: %v", h, err)
			}
		}
		v := inv.VMs[2]
		if v.Name != "vm3" || v.Host != "h2" || v.MAC != "02:00:00:00:01:13" || v.NIC != vm3.NIC() ||
			v.Netns != vm3.Netns() || len(v.IPs) != 1 || v.IPs[0] != ip3.Addr() {
			t.Errorf("vm3 inventory %+v", v)
		}
	})

	t.Run("down", func(t *testing.T) {
		sleeper := exec.Command("ip", "netns", "exec", vm1.Netns(), "sleep", "600")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan struct{})
		go func() { sleeper.Wait(); close(waited) }()
		if err := l.TrackProcess("sleeper", sleeper.Process.Pid); err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, h := range l.Hosts() {
			a, b := h.PIDs()
			pids = append(pids, a, b)
		}
		pids = append(pids, sleeper.Process.Pid)
		if len(labNetns(t, name)) != 6 {
			t.Errorf("lab netns: %v", labNetns(t, name))
		}
		if err := l.Down(ctx); err != nil {
			t.Fatal(err)
		}
		<-waited
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
		if err := l.Down(ctx); err != nil {
			t.Errorf("second Down: %v", err)
		}
	})
}

// TestDownDirAfterCrash brings an ephemeral lab (with an internet) up in a
// child process that exits without Down, then removes it from state.json
// alone (SweepOrphans, which tears down like DownDir).
func TestDownDirAfterCrash(t *testing.T) {
	if os.Getenv("OPENVPC_LAB_CHILD") != "" {
		crashChild(t)
		return
	}
	requireLabEnv(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := UniqueName('c')
	dir := filepath.Join(t.TempDir(), "lab") // does not exist yet: the lab creates it
	t.Cleanup(func() {
		if err := DownDir(context.Background(), dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup DownDir: %v", err)
		}
	})
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDownDirAfterCrash$", "-test.v")
	child.Env = append(os.Environ(), "OPENVPC_LAB_CHILD="+name, "OPENVPC_LAB_DIR="+dir)
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	st, err := readState(dir)
	if err != nil {
		t.Fatalf("state after crash: %v\n%s", err, out)
	}
	// Netns: underlay, host, internet, VM.
	if len(st.Hosts) != 1 || len(st.VMs) != 1 || len(st.Processes) != 1 || len(st.Netns) != 4 || st.Internet == nil {
		t.Fatalf("state: %+v", st)
	}
	// SetupHost ran and made br-int.
	db := "--db=unix:" + filepath.Join(st.Hosts[0].OVSDir, "db.sock")
	if o, err := exec.Command("ovs-vsctl", db, "get", "Bridge", IntegrationBridge, "external_ids:made-by").Output(); err != nil ||
		strings.Trim(strings.TrimSpace(string(o)), `"`) != "setuphost" {
		t.Errorf("SetupHost did not run: %q %v", o, err)
	}
	pids := []int{st.Hosts[0].OvsdbPID, st.Hosts[0].VswitchdPID, st.Processes[0].PID}
	for _, pid := range pids {
		if !alivePID(pid) {
			t.Errorf("pid %d not alive after the crash", pid)
		}
	}
	if got := labNetns(t, name); len(got) != 4 {
		t.Errorf("netns after crash: %v", got)
	}
	// The child made an ephemeral lab and died: the sweep removes it (as
	// DownDir would), while an ephemeral lab of a live process stays.
	live := t.TempDir()
	start, _ := procStart(os.Getpid())
	alive := state{Version: stateVersion, Name: "live", Dir: live, Owner: &procState{Name: "owner", PID: os.Getpid(), Start: start}}
	data, _ := json.Marshal(alive)
	if err := os.WriteFile(filepath.Join(live, stateFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if st.Owner == nil {
		t.Fatal("the child's ephemeral lab has no owner in its state")
	}
	for _, glob := range []string{live, dir} {
		n, err := SweepOrphans(ctx, glob, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{live: 0, dir: 1}[glob]; n != want {
			t.Fatalf("SweepOrphans(%s) removed %d labs, want %d", glob, n, want)
		}
	}
	if _, err := os.Stat(filepath.Join(live, stateFile)); err != nil {
		t.Errorf("the live process's lab was touched: %v", err)
	}
	for _, pid := range pids {
		if alivePID(pid) {
			t.Errorf("pid %d alive after DownDir", pid)
		}
	}
	if got := labNetns(t, name); len(got) != 0 {
		t.Errorf("netns left after DownDir: %v", got)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dir left after DownDir: %v", err)
	}
	if err := DownDir(ctx, dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DownDir on a removed lab: %v", err)
	}
}

// crashChild is the child side of TestDownDirAfterCrash: it brings a lab up
// (a second Up on the same dir first tears the first one down), starts a
// tracked process in a VM and exits without Down.
func crashChild(t *testing.T) {
	ctx := context.Background()
	spec := Spec{
		Name:      os.Getenv("OPENVPC_LAB_CHILD"),
		Dir:       os.Getenv("OPENVPC_LAB_DIR"),
		Hosts:     []HostSpec{{Name: "hv", UnderlayIP: netip.MustParseAddr("172.31.0.50")}},
		VMs:       []VMSpec{{Name: "a", Host: "hv", Addrs: []netip.Prefix{ip1}}},
		Internet:  &InternetSpec{Addr: netip.MustParsePrefix("198.51.100.1/24"), Uplinks: []UplinkSpec{{Host: "hv", Interface: "up"}}}, // a name that is an ip keyword,
		Ephemeral: true,
		SetupHost: func(ctx context.Context, h *Host) error {
			_, err := h.OVS().Vsctl(ctx, "add-br", IntegrationBridge, "--", "set", "bridge", IntegrationBridge,
				"datapath_type=netdev", "fail_mode=secure", "external_ids:made-by=setuphost")
			return err
		},
	}
	first, err := Up(ctx, spec, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	firstPID, _ := first.Host("hv").PIDs()
	l, err := Up(ctx, spec, testLogger(t)) // replaces the first lab
	if err != nil {
		t.Fatal(err)
	}
	if alivePID(firstPID) {
		t.Fatalf("Up on a used dir left the old ovsdb-server %d running", firstPID)
	}
	sleeper := exec.Command("ip", "netns", "exec", l.VM("a").Netns(), "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	if err := l.TrackProcess("sleeper", sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	os.Exit(0) // "crash": no Down
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func TestParsePing(t *testing.T) {
	out := `PING 10.0.1.12 (10.0.1.12) 56(84) bytes of data.
64 bytes from 10.0.1.12: icmp_seq=1 ttl=64 time=0.512 ms
64 bytes from 10.0.1.12: icmp_seq=3 ttl=63 time=0.401 ms

--- 10.0.1.12 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms
`
	r, err := parsePing(out)
	if err != nil || r.Sent != 3 || r.Received != 2 || !slices.Equal(r.TTLs, []int{64, 63}) {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = parsePing("From 10.0.1.11 icmp_seq=1 Destination Host Unreachable\n\n--- x ---\n1 packets transmitted, 0 received, +1 errors, 100% packet loss\n")
	if err != nil || r.Sent != 1 || r.Received != 0 || len(r.TTLs) != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := parsePing("ping: connect: Network is unreachable\n"); err == nil {
		t.Fatal("no summary accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, s := range []Spec{
		{Name: "TooLong1", Hosts: []HostSpec{{Name: "h"}}},
		{Name: "a-b", Hosts: []HostSpec{{Name: "h"}}},
		{Name: "ok"},
		{Name: "ok", Hosts: []HostSpec{{Name: "h"}, {Name: "h"}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h", UnderlayIP: netip.MustParseAddr("10.1.1.1")}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h"}}, VMs: []VMSpec{{Name: "v", Host: "x"}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h/x"}}},
		{Name: "ok", Dir: "/", Hosts: []HostSpec{{Name: "h"}}},
		{Name: "ok", Dir: "/tmp/" + strings.Repeat("x", 90), Hosts: []HostSpec{{Name: "h"}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h", UnderlayMTU: 67}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h", UnderlayMTU: 65536}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h"}}, VMs: []VMSpec{{Name: "v", Host: "h"}, {Name: "w", Host: "h", Extra: []NICSpec{{Name: "v"}}}}},
		{Name: "ok", Hosts: []HostSpec{{Name: "h"}}, VMs: []VMSpec{{Name: "v", Host: "h", Extra: []NICSpec{{Name: "x"}}}, {Name: "x", Host: "h"}}},
	} {
		if err := validate(&s); err == nil {
			t.Errorf("accepted %+v", s)
		}
	}
	s := Spec{Name: "ok", Hosts: []HostSpec{{Name: "h"}}}
	if err := validate(&s); err != nil || s.Dir != "/tmp/openvpc-lab-ok" {
		t.Errorf("%v %q", err, s.Dir)
	}
}

// TestUpFailureCleansUp: an Up that fails half-way (SetupHost errors on one
// host) leaves nothing behind.
func TestUpFailureCleansUp(t *testing.T) {
	requireLabEnv(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := UniqueName('f')
	var mu sync.Mutex
	var pids []int
	_, err := Up(ctx, Spec{
		Name:  name,
		Hosts: []HostSpec{{Name: "a"}, {Name: "b"}},
		VMs:   []VMSpec{{Name: "v", Host: "a"}},
		SetupHost: func(ctx context.Context, h *Host) error {
			a, b := h.PIDs()
			mu.Lock()
			pids = append(pids, a, b)
			mu.Unlock()
			if h.Name() == "b" {
				return errors.New("boom")
			}
			_, err := h.OVS().Vsctl(ctx, "add-br", IntegrationBridge, "--", "set", "bridge", IntegrationBridge, "datapath_type=netdev")
			return err
		},
	}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Up: %v", err)
	}
	if len(pids) != 4 {
		t.Fatalf("SetupHost saw pids %v", pids)
	}
	for _, pid := range pids {
		if pid <= 1 || alivePID(pid) {
			t.Errorf("pid %d alive after failed Up", pid)
		}
	}
	if ns := labNetns(t, name); len(ns) != 0 {
		t.Errorf("netns left after failed Up: %v", ns)
	}
	if _, err := os.Stat("/tmp/openvpc-lab-" + name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dir left after failed Up: %v", err)
	}
}
