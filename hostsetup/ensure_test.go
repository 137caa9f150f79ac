package hostsetup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/openvpc/openvpc/ovsdb"
	"github.com/openvpc/openvpc/tunnels"
)

var underlay = netip.MustParseAddr("192.0.2.10")

func testConfig(bridge string) Config {
	return Config{
		Bridge:            bridge,
		DatapathType:      "netdev",
		DatapathID:        0xa1,
		Controllers:       []string{"tcp:127.0.0.1:6653"},
		MaxBackoffMS:      1000,
		InactivityProbeMS: 5000,
		Tunnels:           []TunnelPort{{Kind: tunnels.VXLAN, LocalIP: underlay}},
		TableNames:        map[uint8]string{0: "Classifier", 5: "PortSecurity", 70: "Output"},
	}
}

func dial(t *testing.T) client.Client {
	t.Helper()
	o := needOVS(t)
	cli, err := ovsdb.Dial(testCtx(t), o.Endpoint(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Close)
	return cli
}

// vsctl runs ovs-vsctl against the test OVS and returns its trimmed output.
func vsctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := shared.OVS.Vsctl(testCtx(t), args...)
	if err != nil {
		t.Fatalf("ovs-vsctl %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out)
}

// removeBridgeAtEnd deletes the bridge (and with it its ports, among them
// the tunnel ports whose names are fixed) when the test ends.
func removeBridgeAtEnd(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			if _, err := shared.OVS.Vsctl(context.Background(), "--if-exists", "del-br", n); err != nil {
				t.Logf("cleanup: del-br %s: %v", n, err)
			}
		}
	})
}

func ofport(t *testing.T, iface string) int {
	t.Helper()
	n, err := strconv.Atoi(vsctl(t, "get", "Interface", iface, "ofport"))
	if err != nil {
		t.Fatalf("ofport of %s: %v", iface, err)
	}
	return n
}

func hasChange(changes []string, parts ...string) bool {
	for _, c := range changes {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(c, p)
		}
		if all {
			return true
		}
	}
	return false
}

func wantChanges(t *testing.T, changes []string, want ...[]string) {
	t.Helper()
	for _, w := range want {
		if !hasChange(changes, w...) {
			t.Errorf("no change mentions %q in:\n%s", w, strings.Join(changes, "\n"))
		}
	}
}

func ensureNoChanges(t *testing.T, cli client.Client, cfg Config) {
	t.Helper()
	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil || len(changes) != 0 {
		t.Fatalf("Ensure on an up-to-date bridge: changes %q, err %v", changes, err)
	}
}

func checkConfigured(t *testing.T, cfg Config) {
	t.Helper()
	br := cfg.Bridge
	for col, want := range map[string]string{
		"fail_mode":                "secure",
		"protocols":                "[OpenFlow13, OpenFlow15]",
		"datapath_type":            cfg.DatapathType,
		"other_config:datapath-id": fmt.Sprintf(`"%016x"`, cfg.DatapathID),
		// Set by ovs-vswitchd once it applied the configuration.
		"datapath_id": fmt.Sprintf(`"%016x"`, cfg.DatapathID),
	} {
		if got := vsctl(t, "get", "Bridge", br, col); got != want {
			t.Errorf("bridge %s %s = %s; want %s", br, col, got, want)
		}
	}
	if got, want := vsctl(t, "get-controller", br), strings.Join(cfg.Controllers, "\n"); got != want {
		t.Errorf("controllers = %q; want %q", got, want)
	}
	for _, target := range cfg.Controllers {
		got := vsctl(t, "--bare", "--columns=connection_mode,max_backoff,inactivity_probe", "find", "Controller", "target="+strconv.Quote(target))
		want := fmt.Sprintf("out-of-band\n%d\n%d", cfg.MaxBackoffMS, cfg.InactivityProbeMS)
		if got != want {
			t.Errorf("controller %s: %q; want %q", target, got, want)
		}
	}
	for _, tp := range cfg.Tunnels {
		name := tp.Kind.PortName()
		if got := vsctl(t, "port-to-br", name); got != br {
			t.Errorf("tunnel port %s is on %q", name, got)
		}
		if got := vsctl(t, "get", "Interface", name, "type"); got != string(tp.Kind) {
			t.Errorf("%s type = %s", name, got)
		}
		want := fmt.Sprintf(`{key=flow, local_ip="%s", remote_ip=flow}`, tp.LocalIP)
		if got := vsctl(t, "get", "Interface", name, "options"); got != want {
			t.Errorf("%s options = %s; want %s", name, got, want)
		}
		if p := ofport(t, name); p <= 0 {
			t.Errorf("%s ofport = %d", name, p)
		}
	}
	features, err := shared.OVS.Ofctl(testCtx(t), "dump-table-features", br)
	if err != nil {
		t.Fatal(err)
	}
	for tbl, name := range cfg.TableNames {
		if want := fmt.Sprintf("table %d (%q)", tbl, name); !strings.Contains(features, want) {
			t.Errorf("dump-table-features lacks %s", want)
		}
	}
}

func TestEnsureCreatesBridge(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-create")
	cfg.Tunnels = append(cfg.Tunnels, TunnelPort{Kind: tunnels.Geneve, LocalIP: underlay})
	removeBridgeAtEnd(t, cfg.Bridge)

	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes, []string{"create bridge ovt-create"}, []string{"add controller tcp:127.0.0.1:6653"},
		[]string{"add tunnel port ovpn-vxlan"}, []string{"add tunnel port ovpn-geneve"}, []string{"name 3 tables"})
	checkConfigured(t, cfg)

	// Table names show in dump-flows.
	ctx := testCtx(t)
	if _, err := shared.OVS.Ofctl(ctx, "add-flow", cfg.Bridge, "table=5,priority=1,actions=drop"); err != nil {
		t.Fatal(err)
	}
	flows, err := shared.OVS.Ofctl(ctx, "--names", "dump-flows", cfg.Bridge)
	if err != nil || !strings.Contains(flows, "table=PortSecurity") {
		t.Errorf("dump-flows does not name table 5: %v\n%s", err, flows)
	}

	ensureNoChanges(t, cli, cfg)
}

func TestEnsureRepairsDrift(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-drift")
	removeBridgeAtEnd(t, cfg.Bridge)
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	br := cfg.Bridge
	vsctl(t, "add-port", br, "vm1", "--", "set", "Interface", "vm1", "type=internal", "external_ids:iface-id=nic-1")

	// Break everything by hand.
	ctl := vsctl(t, "get", "Bridge", br, "controller")
	ctl = strings.Trim(ctl, "[]")
	ft5 := vsctl(t, "get", "Bridge", br, "flow_tables:5")
	vsctl(t, "del-port", br, "ovpn-vxlan",
		"--", "set", "Bridge", br, "fail_mode=standalone", "protocols=OpenFlow10",
		"--", "remove", "Bridge", br, "other_config", "datapath-id",
		"--", "set", "Controller", ctl, "max_backoff=8000", "connection_mode=in-band",
		"--", "set", "Flow_Table", ft5, "name=Wrong",
		"--", "--id=@t", "create", "Flow_Table", "name=Extra",
		"--", "set", "Bridge", br, "flow_tables:7=@t")

	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes,
		[]string{"fail_mode standalone -> secure"},
		[]string{"protocols OpenFlow10 -> OpenFlow13,OpenFlow15"},
		[]string{"other_config:datapath-id unset -> 00000000000000a1"},
		[]string{"max_backoff 8000 -> 1000"},
		[]string{"connection_mode in-band -> out-of-band"},
		[]string{"add tunnel port ovpn-vxlan"},
		[]string{`table 5 name "Wrong" -> "PortSecurity"`},
		[]string{`table 7: remove name "Extra"`},
	)
	checkConfigured(t, cfg)
	if got := vsctl(t, "port-to-br", "vm1"); got != br {
		t.Errorf("VM port vm1 moved to %q", got)
	}
	if got := vsctl(t, "get", "Interface", "vm1", "external_ids:iface-id"); got != "nic-1" {
		t.Errorf("vm1 iface-id = %s", got)
	}
	if got := vsctl(t, "get", "Bridge", br, "flow_tables"); strings.Contains(got, "7=") {
		t.Errorf("flow_tables still names table 7: %s", got)
	}
	ensureNoChanges(t, cli, cfg)

	// Changed tunnel options are put back in place (same ofport).
	before := ofport(t, "ovpn-vxlan")
	vsctl(t, "set", "Interface", "ovpn-vxlan", "options:local_ip=192.0.2.99", "options:csum=true")
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, changes, []string{"tunnel port ovpn-vxlan: options", "csum=true", "local_ip=192.0.2.10"})
	checkConfigured(t, cfg)
	if after := ofport(t, "ovpn-vxlan"); after != before {
		t.Errorf("ofport of ovpn-vxlan changed from %d to %d", before, after)
	}

	// Another encapsulation, controller, dpid and probe.
	cfg.Tunnels = []TunnelPort{{Kind: tunnels.Geneve, LocalIP: underlay}}
	cfg.Controllers = []string{"tcp:127.0.0.1:6654", "unix:/tmp/ovt-nonexistent.sock"}
	cfg.DatapathID = 0xbeef
	cfg.InactivityProbeMS = 0
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	wantChanges(t, changes,
		[]string{"remove tunnel port ovpn-vxlan"}, []string{"add tunnel port ovpn-geneve"},
		[]string{"remove controller tcp:127.0.0.1:6653"}, []string{"add controller tcp:127.0.0.1:6654"},
		[]string{"add controller unix:/tmp/ovt-nonexistent.sock"},
		[]string{"datapath-id 00000000000000a1 -> 000000000000beef"})
	if out, err := shared.OVS.Vsctl(testCtx(t), "port-to-br", "ovpn-vxlan"); err == nil {
		t.Errorf("ovpn-vxlan still on %s", out)
	}
	if got := vsctl(t, "--bare", "--columns=inactivity_probe", "find", "Controller", `target="tcp:127.0.0.1:6654"`); got != "" {
		t.Errorf("inactivity_probe = %q; want unset", got)
	}
	cfg.InactivityProbeMS = 5000 // for checkConfigured's expectations
	changes, err = Ensure(testCtx(t), cli, cfg)
	if err != nil || len(changes) != 2 {
		t.Fatalf("setting inactivity_probe: %q %v", changes, err)
	}
	checkConfigured(t, cfg)
	ensureNoChanges(t, cli, cfg)
}

func TestEnsureAdoptsHandMadeBridge(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-hand")
	cfg.DatapathType = "" // keep what the hypervisor chose
	removeBridgeAtEnd(t, cfg.Bridge)
	vsctl(t, "add-br", cfg.Bridge, "--", "set", "Bridge", cfg.Bridge, "datapath_type=netdev", "fail_mode=standalone",
		"--", "add-port", cfg.Bridge, "vm1", "--", "set", "Interface", "vm1", "type=internal", "external_ids:iface-id=nic-1")

	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes:\n%s", strings.Join(changes, "\n"))
	if hasChange(changes, "create bridge") || hasChange(changes, "datapath_type") {
		t.Errorf("existing bridge recreated or its datapath type changed: %q", changes)
	}
	cfg.DatapathType = "netdev"
	checkConfigured(t, cfg)
	if got := vsctl(t, "list-ports", cfg.Bridge); got != "ovpn-vxlan\nvm1" {
		t.Errorf("ports = %q", got)
	}
	if got := vsctl(t, "get", "Interface", "vm1", "external_ids:iface-id"); got != "nic-1" {
		t.Errorf("vm1 iface-id = %s", got)
	}
	ensureNoChanges(t, cli, cfg)
}

func TestEnsureReplacesMalformedTunnelPort(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-bond")
	removeBridgeAtEnd(t, cfg.Bridge)
	vsctl(t, "add-br", cfg.Bridge, "--", "set", "Bridge", cfg.Bridge, "datapath_type=netdev",
		"--", "add-bond", cfg.Bridge, "ovpn-vxlan", "ovt-i1", "ovt-i2",
		"--", "set", "Interface", "ovt-i1", "type=internal",
		"--", "set", "Interface", "ovt-i2", "type=internal")
	changes, err := Ensure(testCtx(t), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, changes, []string{"replace malformed tunnel port ovpn-vxlan"})
	checkConfigured(t, cfg)
	if got := vsctl(t, "get", "Port", "ovpn-vxlan", "interfaces"); strings.Count(got, ",") != 0 {
		t.Errorf("ovpn-vxlan interfaces = %s", got)
	}
	ensureNoChanges(t, cli, cfg)
}

func TestEnsureRefusesSTTOnNetdev(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-stt")
	cfg.Tunnels = []TunnelPort{{Kind: tunnels.STT, LocalIP: underlay}}
	removeBridgeAtEnd(t, cfg.Bridge)
	changes, err := Ensure(testCtx(t), cli, cfg)
	if !errors.Is(err, tunnels.ErrUnsupportedDatapath) || len(changes) != 0 {
		t.Fatalf("Ensure with stt on netdev: changes %q, err %v; want ErrUnsupportedDatapath", changes, err)
	}
	t.Logf("error: %v", err)
	if out, err := shared.OVS.Vsctl(testCtx(t), "br-exists", cfg.Bridge); err == nil {
		t.Fatalf("bridge created anyway %s", out)
	}

	// Also when the datapath type comes from an existing bridge.
	vsctl(t, "add-br", cfg.Bridge, "--", "set", "Bridge", cfg.Bridge, "datapath_type=netdev")
	cfg.DatapathType = ""
	if _, err := Ensure(testCtx(t), cli, cfg); !errors.Is(err, tunnels.ErrUnsupportedDatapath) {
		t.Fatalf("stt on existing netdev bridge: %v", err)
	}
	if out, err := shared.OVS.Vsctl(testCtx(t), "port-to-br", "ovpn-stt"); err == nil {
		t.Fatalf("stt port created on %s", out)
	}
}

func TestRunPrintsChanges(t *testing.T) {
	o := needOVS(t)
	cfg := testConfig("ovt-run")
	removeBridgeAtEnd(t, cfg.Bridge)
	var out bytes.Buffer
	if err := run(testCtx(t), o.Endpoint(), cfg, testLog(t), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "create bridge ovt-run") || !strings.Contains(out.String(), "changes applied") {
		t.Errorf("first run printed:\n%s", out.String())
	}
	out.Reset()
	if err := run(testCtx(t), o.Endpoint(), cfg, testLog(t), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "bridge ovt-run is up to date\n" {
		t.Errorf("second run printed %q", got)
	}
	cfg.DatapathID = 0
	if err := run(testCtx(t), o.Endpoint(), cfg, testLog(t), &out); err == nil || !strings.Contains(err.Error(), "datapath ID") {
		t.Errorf("run with dpid 0: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := testConfig("br-int")
	good.Uplink = "eth1"
	if _, err := good.normalize(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	n, _ := Config{DatapathID: 1}.normalize()
	if n.Bridge != DefaultBridge || n.MaxBackoffMS != DefaultMaxBackoffMS {
		t.Errorf("defaults: %+v", n)
	}
	for name, mutate := range map[string]func(*Config){
		"dpid":        func(c *Config) { c.DatapathID = 0 },
		"datapath":    func(c *Config) { c.DatapathType = "dpdk" },
		"bridge":      func(c *Config) { c.Bridge = "a very long bridge name" },
		"controller":  func(c *Config) { c.Controllers = []string{"10.0.0.1:6653"} },
		"dup ctl":     func(c *Config) { c.Controllers = []string{"tcp:1.2.3.4", "tcp:1.2.3.4"} },
		"backoff":     func(c *Config) { c.MaxBackoffMS = 500 },
		"probe":       func(c *Config) { c.InactivityProbeMS = -1 },
		"kind":        func(c *Config) { c.Tunnels = []TunnelPort{{Kind: "ipsec", LocalIP: underlay}} },
		"dup kind":    func(c *Config) { c.Tunnels = append(c.Tunnels, c.Tunnels[0]) },
		"no local ip": func(c *Config) { c.Tunnels = []TunnelPort{{Kind: tunnels.GRE}} },
		"0.0.0.0":     func(c *Config) { c.Tunnels = []TunnelPort{{Kind: tunnels.GRE, LocalIP: netip.IPv4Unspecified()}} },
		"table 255":   func(c *Config) { c.TableNames = map[uint8]string{255: "X"} },
		"empty name":  func(c *Config) { c.TableNames = map[uint8]string{3: ""} },
		"long name":   func(c *Config) { c.TableNames = map[uint8]string{3: strings.Repeat("x", 33)} },
		"uplink long": func(c *Config) { c.Uplink = "a-very-long-ifname" },
		"uplink /":    func(c *Config) { c.Uplink = "eth/1" },
		"uplink sp":   func(c *Config) { c.Uplink = "eth 1" },
		"uplink br":   func(c *Config) { c.Uplink = c.Bridge },
		"uplink tun":  func(c *Config) { c.Uplink = tunnels.GRE.PortName() },
	} {
		c := testConfig("br-int")
		mutate(&c)
		if _, err := c.normalize(); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
	// Validation happens before touching OVSDB (no client needed).
	if _, err := Ensure(context.Background(), nil, Config{}); err == nil || !strings.Contains(err.Error(), "invalid config") {
		t.Errorf("Ensure(invalid) = %v", err)
	}
}
