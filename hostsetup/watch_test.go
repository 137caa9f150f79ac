package hostsetup

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/openvpc/openvpc/tunnels"
)

// watchBridge runs a Watcher until the test ends and returns its snapshots.
// It also records each snapshot's printed form on arrival, to check later
// that the Watcher never modifies a snapshot it handed out.
func watchBridge(t *testing.T, w *Watcher) (<-chan Bindings, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	snaps := make(chan Bindings, 1000)
	var kept []Bindings
	var printed []string
	w.OnChange = func(b Bindings) {
		kept = append(kept, b)
		printed = append(printed, fmt.Sprint(b))
		snaps <- b
	}
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for i, b := range kept {
			if fmt.Sprint(b) != printed[i] {
				t.Errorf("snapshot %d changed after delivery: %s, was %s", i, fmt.Sprint(b), printed[i])
			}
		}
	})
	return snaps, errc
}

// waitBindings reads snapshots until cond holds.
func waitBindings(t *testing.T, snaps <-chan Bindings, errc <-chan error, what string, cond func(Bindings) bool) Bindings {
	t.Helper()
	ctx := testCtx(t)
	var last Bindings
	for {
		select {
		case b := <-snaps:
			if cond(b) {
				return b
			}
			last = b
		case err := <-errc:
			t.Fatalf("watcher stopped while waiting for %s: %v", what, err)
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s; last snapshot %+v", what, last)
		}
	}
}

func TestWatchBindings(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-watch")
	removeBridgeAtEnd(t, cfg.Bridge, "ovt-other")
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	br := cfg.Bridge
	snaps, errc := watchBridge(t, &Watcher{Client: cli, Bridge: br, Log: testLog(t)})

	// The tunnel port's ofport.
	tun := uint32(ofport(t, "ovpn-vxlan"))
	first := waitBindings(t, snaps, errc, "tunnel ofport", func(b Bindings) bool {
		return b.Tunnels[tunnels.VXLAN] == tun
	})
	if len(first.Ports) != 0 || len(first.Tunnels) != 1 {
		t.Errorf("first snapshot %+v", first)
	}

	// A VM port: its ofport arrives after the row.
	vsctl(t, "add-port", br, "vm-a", "--", "set", "Interface", "vm-a", "type=internal", "external_ids:iface-id=nic-a")
	a := uint32(ofport(t, "vm-a"))
	waitBindings(t, snaps, errc, "nic-a bound", func(b Bindings) bool {
		return b.Ports["nic-a"] == a && len(b.Ports) == 1 && b.Tunnels[tunnels.VXLAN] == tun
	})

	// The iface-id changes.
	vsctl(t, "set", "Interface", "vm-a", "external_ids:iface-id=nic-b")
	waitBindings(t, snaps, errc, "nic-a renamed nic-b", func(b Bindings) bool {
		return reflect.DeepEqual(b.Ports, map[string]uint32{"nic-b": a})
	})

	// A second interface with the same iface-id: the newest (highest ofport)
	// wins. Interfaces in error (ofport -1) and ports on other bridges are
	// ignored.
	vsctl(t, "--no-wait", "add-port", br, "ovt-nosuchdev", "--", "set", "Interface", "ovt-nosuchdev", "external_ids:iface-id=nic-err")
	vsctl(t, "add-br", "ovt-other", "--", "set", "Bridge", "ovt-other", "datapath_type=netdev",
		"--", "add-port", "ovt-other", "vm-x", "--", "set", "Interface", "vm-x", "type=internal", "external_ids:iface-id=nic-x")
	vsctl(t, "add-port", br, "vm-c", "--", "set", "Interface", "vm-c", "type=internal", "external_ids:iface-id=nic-b")
	c := uint32(ofport(t, "vm-c"))
	if c <= a {
		t.Fatalf("vm-c got ofport %d <= vm-a's %d", c, a)
	}
	if got := ofport(t, "ovt-nosuchdev"); got != -1 {
		t.Fatalf("ovt-nosuchdev ofport %d; want -1", got)
	}
	waitBindings(t, snaps, errc, "duplicate nic-b resolved to vm-c", func(b Bindings) bool {
		return reflect.DeepEqual(b.Ports, map[string]uint32{"nic-b": c})
	})

	// The newer one goes: the older binds again.
	vsctl(t, "del-port", br, "vm-c")
	waitBindings(t, snaps, errc, "nic-b back on vm-a", func(b Bindings) bool {
		return reflect.DeepEqual(b.Ports, map[string]uint32{"nic-b": a})
	})

	// Port removed.
	vsctl(t, "del-port", br, "vm-a")
	last := waitBindings(t, snaps, errc, "nic-b gone", func(b Bindings) bool { return len(b.Ports) == 0 })
	if last.Tunnels[tunnels.VXLAN] != tun {
		t.Errorf("tunnel binding lost: %+v", last)
	}

	// Tunnel port removed and re-added by Ensure.
	vsctl(t, "del-port", br, "ovpn-vxlan")
	waitBindings(t, snaps, errc, "tunnel gone", func(b Bindings) bool { return len(b.Tunnels) == 0 })
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	tun2 := uint32(ofport(t, "ovpn-vxlan"))
	waitBindings(t, snaps, errc, "tunnel back", func(b Bindings) bool { return b.Tunnels[tunnels.VXLAN] == tun2 })
}

// TestWatchBridgeAppears: watching a bridge that does not exist yet gives an
// empty snapshot, then the bindings once it is created.
func TestWatchBridgeAppears(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-late")
	removeBridgeAtEnd(t, cfg.Bridge)
	snaps, errc := watchBridge(t, &Watcher{Client: cli, Bridge: cfg.Bridge, Log: testLog(t)})
	waitBindings(t, snaps, errc, "empty first snapshot", func(b Bindings) bool {
		return b.Ports != nil && b.Tunnels != nil && len(b.Ports) == 0 && len(b.Tunnels) == 0
	})
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	vsctl(t, "add-port", cfg.Bridge, "vm-l", "--", "set", "Interface", "vm-l", "type=internal", "external_ids:iface-id=nic-l")
	tun, vm := uint32(ofport(t, "ovpn-vxlan")), uint32(ofport(t, "vm-l"))
	waitBindings(t, snaps, errc, "bindings after creation", func(b Bindings) bool {
		return b.Equal(Bindings{Ports: map[string]uint32{"nic-l": vm}, Tunnels: map[tunnels.Kind]uint32{tunnels.VXLAN: tun}})
	})
	// Bridge deleted: empty again.
	vsctl(t, "del-br", cfg.Bridge)
	waitBindings(t, snaps, errc, "empty after del-br", func(b Bindings) bool { return len(b.Ports) == 0 && len(b.Tunnels) == 0 })
}

func TestWatchStopsWithContext(t *testing.T) {
	cli := dial(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	calls := 0
	errc := make(chan error, 1)
	go func() {
		errc <- Watch(ctx, cli, "ovt-none", func(Bindings) { calls++; cancel() })
	}()
	if err := <-errc; err != nil {
		t.Fatalf("Watch returned %v after cancel", err)
	}
	if calls != 1 {
		t.Errorf("onChange called %d times; want 1 (initial snapshot)", calls)
	}
}

func TestBindingsCloneEqual(t *testing.T) {
	b := Bindings{Ports: map[string]uint32{"a": 1}, Tunnels: map[tunnels.Kind]uint32{tunnels.GRE: 2}, Uplink: 5}
	c := b.Clone()
	if !c.Equal(b) || c.Uplink != 5 {
		t.Fatal("clone differs")
	}
	c.Uplink = 6
	if c.Equal(b) {
		t.Fatal("Equal ignores Uplink")
	}
	c.Ports["a"] = 3
	c.Tunnels[tunnels.VXLAN] = 4
	if b.Ports["a"] != 1 || len(b.Tunnels) != 1 || c.Equal(b) {
		t.Fatalf("clone shares maps: %+v %+v", b, c)
	}
	if !(Bindings{}).Equal(Bindings{Ports: map[string]uint32{}}) {
		t.Error("nil and empty maps should be equal")
	}
}

// restartOVS stops both daemons and starts them again on the same database.
func restartOVS(t *testing.T) {
	t.Helper()
	old := shared.OVS
	if err := old.Stop(); err != nil {
		t.Fatalf("stop OVS: %v", err)
	}
	o, err := ovsproc.Start(testCtx(t), ovsproc.Config{Dir: old.Dir(), Netns: old.Netns()})
	if err != nil {
		shared.OVS = nil
		t.Fatalf("restart OVS: %v", err)
	}
	shared.OVS = o
}

// TestWatchSurvivesRestart: the client reconnects by itself after an OVS
// restart and the Watcher keeps reporting.
func TestWatchSurvivesRestart(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-rst")
	removeBridgeAtEnd(t, cfg.Bridge)
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	vsctl(t, "add-port", cfg.Bridge, "vm-r", "--", "set", "Interface", "vm-r", "type=internal", "external_ids:iface-id=nic-r")
	vm := uint32(ofport(t, "vm-r"))
	snaps, errc := watchBridge(t, &Watcher{Client: cli, Bridge: cfg.Bridge, Log: testLog(t)})
	waitBindings(t, snaps, errc, "nic-r bound", func(b Bindings) bool { return b.Ports["nic-r"] == vm })

	restartOVS(t)
	vsctl(t, "add-port", cfg.Bridge, "vm-s", "--", "set", "Interface", "vm-s", "type=internal", "external_ids:iface-id=nic-s")
	vsctl(t, "del-port", cfg.Bridge, "vm-r")
	s := uint32(ofport(t, "vm-s"))
	waitBindings(t, snaps, errc, "bindings after restart", func(b Bindings) bool {
		return reflect.DeepEqual(b.Ports, map[string]uint32{"nic-s": s}) && b.Tunnels[tunnels.VXLAN] > 0
	})
	// Ensure works on the reconnected client too.
	ensureNoChanges(t, cli, cfg)
}

// TestEnsureWithoutVswitchd: with ovs-vswitchd down, Ensure writes the
// changes but reports that they were not applied; once it runs again the
// bridge is up to date.
func TestEnsureWithoutVswitchd(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-novsd")
	removeBridgeAtEnd(t, cfg.Bridge)
	if err := shared.OVS.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	stopped := true
	t.Cleanup(func() {
		if stopped {
			if err := shared.OVS.StartVswitchd(context.Background()); err != nil {
				t.Errorf("restart ovs-vswitchd: %v", err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	changes, err := Ensure(ctx, cli, cfg)
	if err == nil || !strings.Contains(err.Error(), "is ovs-vswitchd running") || len(changes) == 0 {
		t.Fatalf("Ensure without vswitchd: changes %q, err %v", changes, err)
	}
	t.Logf("expected error: %v", err)
	if err := shared.OVS.StartVswitchd(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	stopped = false
	ensureNoChanges(t, cli, cfg)
	checkConfigured(t, cfg)
}
