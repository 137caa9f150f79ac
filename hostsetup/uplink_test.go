package hostsetup

import (
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/tunnels"
)

// uplinkDev creates a veth pair in the test OVS's network namespace and
// returns the name of the end to use as an uplink device (the peer stays
// out of OVS). Names hold the PID and tag (at most 4 characters); the pair
// is deleted when the test ends.
func uplinkDev(t *testing.T, tag string) string {
	t.Helper()
	o := needOVS(t)
	name := fmt.Sprintf("ovu%d%s", os.Getpid(), tag)
	peer := fmt.Sprintf("ovp%d%s", os.Getpid(), tag)
	ip := func(args ...string) error {
		if ns := o.Netns(); ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := ip("link", "add", name, "type", "veth", "peer", "name", peer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ip("link", "del", name); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	for _, dev := range []string{name, peer} {
		if err := ip("link", "set", dev, "up"); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// checkUplink checks that dev is a port of bridge br with one system
// interface of its name, the uplink role on both rows and an ofport.
func checkUplink(t *testing.T, br, dev string) int {
	t.Helper()
	if got := vsctl(t, "port-to-br", dev); got != br {
		t.Errorf("uplink %s is on %q; want %s", dev, got, br)
	}
	if got := vsctl(t, "get", "Interface", dev, "type"); got != `""` && got != "system" {
		t.Errorf("uplink %s type = %s; want system (empty)", dev, got)
	}
	for _, table := range []string{"Port", "Interface"} {
		if got := vsctl(t, "get", table, dev, "external_ids:"+RoleKey); got != RoleUplink {
			t.Errorf("%s %s external_ids:%s = %s; want %s", table, dev, RoleKey, got, RoleUplink)
		}
	}
	if got := vsctl(t, "get", "Port", dev, "interfaces"); strings.Contains(got, ",") {
		t.Errorf("uplink port %s has several interfaces: %s", dev, got)
	}
	p := ofport(t, dev)
	if p <= 0 {
		t.Errorf("uplink %s ofport = %d", dev, p)
	}
	return p
}

func notAPort(t *testing.T, dev string) {
	t.Helper()
	if out, err := shared.OVS.Vsctl(testCtx(t), "port-to-br", dev); err == nil {
		t.Errorf("%s is still a port of %s", dev, strings.TrimSpace(out))
	}
}

func TestEnsureUplink(t *testing.T) {
	cli := dial(t)
	devA, devB := uplinkDev(t, "a"), uplinkDev(t, "b")
	cfg := testConfig("ovt-uplink")
	cfg.Uplink = devA
	removeBridgeAtEnd(t, cfg.Bridge)
	br := cfg.Bridge

	// Created with the bridge.
	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes, []string{"create bridge " + br}, []string{"add uplink port " + devA, "type=system", RoleKey + "=" + RoleUplink})
	checkConfigured(t, cfg)
	checkUplink(t, br, devA)
	ensureNoChanges(t, cli, cfg)

	// Deleted by hand: re-added. A VM port stays.
	vsctl(t, "add-port", br, "vm1", "--", "set", "Interface", "vm1", "type=internal", "external_ids:iface-id=nic-1")
	vsctl(t, "del-port", br, devA)
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !hasChange(changes, "bridge "+br+": add uplink port "+devA) {
		t.Errorf("repair after del-port: %q", changes)
	}
	before := checkUplink(t, br, devA)
	ensureNoChanges(t, cli, cfg)

	// Its role removed and its type changed by hand: fixed in place, keeping
	// other keys and the port.
	vsctl(t, "remove", "Port", devA, "external_ids", RoleKey, "--", "set", "Port", devA, "external_ids:other=x",
		"--", "remove", "Interface", devA, "external_ids", RoleKey, "--", "set", "Interface", devA, "type=system")
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes, []string{"uplink port " + devA + ": set Port external_ids:" + RoleKey},
		[]string{"uplink port " + devA + ": set Interface external_ids:" + RoleKey})
	if hasChange(changes, "type") || hasChange(changes, "add uplink") {
		t.Errorf("type system treated as drift or port re-added: %q", changes)
	}
	if after := checkUplink(t, br, devA); after != before {
		t.Errorf("uplink ofport changed from %d to %d", before, after)
	}
	if got := vsctl(t, "get", "Port", devA, "external_ids:other"); got != "x" {
		t.Errorf("foreign external_ids key lost: %s", got)
	}
	ensureNoChanges(t, cli, cfg)

	// Another interface type: put back to a system device.
	vsctl(t, "set", "Interface", devA, "type=internal")
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !hasChange(changes, "uplink port "+devA+": type internal -> system") {
		t.Errorf("type repair: %q", changes)
	}
	checkUplink(t, br, devA)
	ensureNoChanges(t, cli, cfg)

	// Another uplink: the old one goes, the new one comes, in one run.
	cfg.Uplink = devB
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes, []string{"remove uplink port " + devA, "the uplink is " + devB}, []string{"add uplink port " + devB})
	if len(changes) != 2 {
		t.Errorf("rename: %d changes; want 2", len(changes))
	}
	notAPort(t, devA)
	checkUplink(t, br, devB)
	ensureNoChanges(t, cli, cfg)

	// A hand-made port of the configured name is adopted as it is.
	cfg.Uplink = devA
	vsctl(t, "add-port", br, devA)
	hand := ofport(t, devA)
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes, []string{"remove uplink port " + devB}, []string{"uplink port " + devA + ": set Port external_ids"})
	if hasChange(changes, "add uplink port") {
		t.Errorf("hand-made port replaced: %q", changes)
	}
	if got := checkUplink(t, br, devA); got != hand {
		t.Errorf("adopted uplink's ofport changed from %d to %d", hand, got)
	}
	ensureNoChanges(t, cli, cfg)

	// No uplink configured: ours goes, the rest stays.
	cfg.Uplink = ""
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !hasChange(changes, "remove uplink port "+devA, "no uplink is configured") {
		t.Errorf("uplink unset: %q", changes)
	}
	notAPort(t, devA)
	if got := vsctl(t, "list-ports", br); got != "ovpn-vxlan\nvm1" {
		t.Errorf("ports = %q", got)
	}
	ensureNoChanges(t, cli, cfg)
	checkConfigured(t, cfg)
}

func TestEnsureUplinkReplacesMalformedPort(t *testing.T) {
	cli := dial(t)
	dev := uplinkDev(t, "m")
	cfg := testConfig("ovt-upbond")
	cfg.Uplink = dev
	removeBridgeAtEnd(t, cfg.Bridge)
	vsctl(t, "add-br", cfg.Bridge, "--", "set", "Bridge", cfg.Bridge, "datapath_type=netdev",
		"--", "add-bond", cfg.Bridge, dev, "ovt-ub1", "ovt-ub2",
		"--", "set", "Interface", "ovt-ub1", "type=internal",
		"--", "set", "Interface", "ovt-ub2", "type=internal")
	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes, []string{"replace malformed uplink port " + dev}, []string{"add uplink port " + dev})
	checkUplink(t, cfg.Bridge, dev)
	ensureNoChanges(t, cli, cfg)
}

// TestEnsureUplinkElsewhere: an uplink device that is a port of another
// bridge (or a member of another port) is an error naming both, and nothing
// is written.
func TestEnsureUplinkElsewhere(t *testing.T) {
	cli := dial(t)
	dev := uplinkDev(t, "o")
	cfg := testConfig("ovt-upmine")
	other := "ovt-upother"
	removeBridgeAtEnd(t, cfg.Bridge, other)
	vsctl(t, "add-br", other, "--", "set", "Bridge", other, "datapath_type=netdev", "--", "add-port", other, dev)

	check := func(what string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		t.Logf("%s: expected error: %v", what, err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not name %q: %v", what, w, err)
			}
		}
	}

	// New bridge.
	cfg.Uplink = dev
	changes, err := Ensure(testCtx(t), cli, cfg)
	check("new bridge", err, dev, "already a port of bridge "+other, cfg.Bridge)
	if len(changes) != 0 {
		t.Errorf("changes reported: %q", changes)
	}
	if out, err := shared.OVS.Vsctl(testCtx(t), "br-exists", cfg.Bridge); err == nil {
		t.Fatalf("bridge created anyway %s", out)
	}

	// Existing bridge.
	cfg.Uplink = ""
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Uplink = dev
	changes, err = Ensure(testCtx(t), cli, cfg)
	check("existing bridge", err, dev, "already a port of bridge "+other, cfg.Bridge)
	if len(changes) != 0 {
		t.Errorf("changes reported: %q", changes)
	}
	if got := vsctl(t, "port-to-br", dev); got != other {
		t.Errorf("%s moved to %q", dev, got)
	}

	// A member of a bond of the other bridge.
	vsctl(t, "del-port", other, dev, "--", "add-bond", other, "ovt-upb", dev, "ovt-ub3", "--", "set", "Interface", "ovt-ub3", "type=internal")
	_, err = Ensure(testCtx(t), cli, cfg)
	check("bond member", err, dev, "member of port ovt-upb of bridge "+other, cfg.Bridge)
	if got := vsctl(t, "list-ports", cfg.Bridge); got != "ovpn-vxlan" {
		t.Errorf("ports = %q", got)
	}
}

func TestWatchUplink(t *testing.T) {
	cli := dial(t)
	dev := uplinkDev(t, "w")
	cfg := testConfig("ovt-upwatch")
	cfg.Uplink = dev
	removeBridgeAtEnd(t, cfg.Bridge)
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	br := cfg.Bridge
	// Even with an iface-id the uplink is no NIC.
	vsctl(t, "set", "Interface", dev, "external_ids:iface-id=nic-up")
	vsctl(t, "add-port", br, "vm-u", "--", "set", "Interface", "vm-u", "type=internal", "external_ids:iface-id=nic-u")
	up, vm, tun := uint32(ofport(t, dev)), uint32(ofport(t, "vm-u")), uint32(ofport(t, "ovpn-vxlan"))

	snaps, errc := watchBridge(t, &Watcher{Client: cli, Bridge: br, Uplink: dev, Log: testLog(t)})
	want := Bindings{Ports: map[string]uint32{"nic-u": vm}, Tunnels: map[tunnels.Kind]uint32{tunnels.VXLAN: tun}, Uplink: up}
	waitBindings(t, snaps, errc, "uplink ofport", func(b Bindings) bool { return b.Equal(want) })

	// Deleted: 0, and still no NIC. Re-added by Ensure: its new ofport.
	vsctl(t, "del-port", br, dev)
	waitBindings(t, snaps, errc, "uplink gone", func(b Bindings) bool {
		return b.Uplink == 0 && reflect.DeepEqual(b.Ports, map[string]uint32{"nic-u": vm})
	})
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	vsctl(t, "set", "Interface", dev, "external_ids:iface-id=nic-up")
	up2 := uint32(ofport(t, dev))
	waitBindings(t, snaps, errc, "uplink back", func(b Bindings) bool {
		return b.Uplink == up2 && up2 > 0 && reflect.DeepEqual(b.Ports, map[string]uint32{"nic-u": vm})
	})

	// A watcher without the uplink's name sees its iface-id like any NIC's.
	snaps2, errc2 := watchBridge(t, &Watcher{Client: cli, Bridge: br, Log: testLog(t)})
	waitBindings(t, snaps2, errc2, "uplink as a NIC without Watcher.Uplink", func(b Bindings) bool {
		return b.Uplink == 0 && reflect.DeepEqual(b.Ports, map[string]uint32{"nic-u": vm, "nic-up": up2})
	})
}

// TestUplinkInError: an uplink interface ovs-vswitchd cannot open (ofport
// -1) is reported as 0, not as a NIC.
func TestUplinkInError(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-uperr")
	removeBridgeAtEnd(t, cfg.Bridge)
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	missing := fmt.Sprintf("ovu%dx", os.Getpid()) // no such device
	vsctl(t, "--no-wait", "add-port", cfg.Bridge, missing, "--", "set", "Interface", missing, "external_ids:iface-id=nic-x")
	ctx := testCtx(t)
	eventually(ctx, t, missing+" in error", func() bool {
		out, err := shared.OVS.Vsctl(ctx, "get", "Interface", missing, "ofport")
		return err == nil && strings.TrimSpace(out) == "-1"
	})
	if err := syncCache(ctx, cli); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "cache shows ofport -1", func() bool {
		b, warnings, ok, err := computeBindings(ctx, cli, cfg.Bridge, missing)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || len(warnings) == 0 {
			return false
		}
		if b.Uplink != 0 || len(b.Ports) != 0 {
			t.Fatalf("bindings with the uplink in error: %+v", b)
		}
		return true
	})
}
