package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/hostsetup"
	"github.com/openvpc/openvpc/tunnels"
)

func (e *cliEnv) settings() []string {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	if e.b.p.Settings == nil {
		return nil
	}
	return slices.Clone(e.b.p.Settings.Encaps)
}

func TestCLISettings(t *testing.T) {
	e := newCLIEnv(t)
	if out := e.ok("acme", cmd("get"), "settings"); !hasLine(out, "ENCAPS IN_FORCE") || !hasLine(out, "- (default) vxlan") {
		t.Fatalf("get settings:\n%s", out)
	}
	e.fails("needs an admin token", "acme", cmd("set-encaps"), "geneve")
	out := e.ok("admin", cmd("set-encaps"), "geneve", "VXLAN")
	if !hasLine(out, "geneve,vxlan geneve,vxlan") || !slices.Equal(e.settings(), []string{"geneve", "vxlan"}) {
		t.Fatalf("set-encaps printed:\n%s\nstored %v", out, e.settings())
	}
	if out := e.ok("globex", cmd("get"), "-o", "json", "setting"); !strings.Contains(out, `"effective_encaps": [`) {
		t.Fatalf("get -o json settings:\n%s", out)
	}
	e.fails(`settings: encaps[0]: "pigeon" is not a tunnel kind`, "admin", cmd("set-encaps"), "pigeon")
	e.fails("want KIND", "admin", cmd("set-encaps"))
	e.fails("not both", "admin", cmd("set-encaps"), "--default", "gre")
	e.fails("flags go before the arguments", "admin", cmd("set-encaps"), "gre", "--default")

	out = e.ok("admin", cmd("update"), "--set", "encaps=gre,vxlan", "settings")
	if !hasLine(out, "gre,vxlan gre,vxlan") || !slices.Equal(e.settings(), []string{"gre", "vxlan"}) {
		t.Fatalf("update settings printed:\n%s\nstored %v", out, e.settings())
	}
	e.fails("encaps[1]: gre is listed twice", "admin", cmd("update"), "--set", "encaps=gre,gre", "settings")
	e.fails("without a name", "admin", cmd("update"), "--set", "encaps=gre", "settings", "x")
	out = e.ok("admin", cmd("update"), "--set", "encaps=", "settings")
	if !hasLine(out, "- (default) vxlan") || e.settings() != nil {
		t.Fatalf("update --set encaps= printed:\n%s\nstored %v", out, e.settings())
	}
	e.ok("admin", cmd("set-encaps"), "geneve,gre")
	e.ok("admin", cmd("set-encaps"), "--default")
	if e.settings() != nil {
		t.Fatalf("--default left %v", e.settings())
	}
	e.fails("one object that always exists", "admin", cmd("create"), "settings")
	e.fails("one object that always exists", "admin", cmd("delete"), "settings", "x")
}

func TestCLIHostTunnels(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("admin", cmd("set-encaps"), "geneve", "vxlan")
	e.ok("admin", cmd("create"), "--set", "underlay_ip=172.31.0.12", "--set", "encaps=stt,gre", "--set", "datapath_type=netdev",
		"--set", "underlay_mtu=9000", "host", "h2")
	out := e.ok("admin", cmd("get"), "hosts")
	if !hasLine(out, "NAME UNDERLAY_IP DATAPATH ENCAPS UNDERLAY_MTU VM_MTU TUNNELS UPLINK PROBLEMS") ||
		!hasLine(out, "h1 172.31.0.11 netdev geneve,vxlan 1500 1450 - - no encapsulation in common with host h2") ||
		!hasLine(out, "h2 172.31.0.12 netdev gre 9000 8958 - - encap stt unusable") {
		t.Fatalf("get hosts:\n%s", out)
	}
	// Both kinds in common now; the pair uses the deployment's first.
	out = e.ok("admin", cmd("update"), "--set", "encaps=vxlan,geneve,gre", "--set", "datapath_type=system", "host", "h2")
	if !hasLine(out, "h2 172.31.0.12 system vxlan,geneve,gre 9000 1450 h1=geneve - -") {
		t.Fatalf("update host printed:\n%s", out)
	}
	e.fails("underlay_mtu", "admin", cmd("update"), "--set", "underlay_mtu=100", "host", "h2")
	e.fails(`"x" is not a number`, "admin", cmd("update"), "--set", "underlay_mtu=x", "host", "h2")
	// A NIC's MTU is its host's VM MTU.
	out = e.ok("acme", cmd("get"), "nic", "a1")
	if !hasLine(out, "MTU") || !strings.Contains(out, " 1450 ") {
		t.Fatalf("get nic:\n%s", out)
	}
	e.ok("admin", cmd("update"), "--set", "underlay_mtu=9000", "host", "h1")
	if out := e.ok("acme", cmd("get"), "-o", "yaml", "nic", "a1"); !hasLine(out, "mtu: 8950") {
		t.Fatalf("get nic -o yaml:\n%s", out)
	}
}

// TestCLIHostSetupFlags: the flags of `host setup` become the bridge's
// configuration (one tunnel port per kind) and the watch settings; bad ones
// are refused before anything connects.
func TestCLIHostSetupFlags(t *testing.T) {
	type call struct {
		endpoint string
		cfg      hostsetup.Config
		watch    bool
		interval time.Duration
	}
	var got *call
	saved := hostSetup
	t.Cleanup(func() { hostSetup = saved })
	hostSetup = func(_ context.Context, endpoint string, cfg hostsetup.Config, watch bool, interval time.Duration) error {
		got = &call{endpoint, cfg, watch, interval}
		return nil
	}
	base := []string{"openvpc", "host", "setup", "--controller", "tcp:10.0.0.1:6653", "--datapath-id", "00000000000000a1", "--local-ip", "192.0.2.11"}
	run := func(args ...string) (*call, error) {
		t.Helper()
		got = nil
		_, err := runArgv(t, append(slices.Clone(base), args...))
		return got, err
	}
	kinds := func(c *call) []tunnels.Kind {
		var out []tunnels.Kind
		for _, tp := range c.cfg.Tunnels {
			if tp.LocalIP.String() != "192.0.2.11" {
				t.Errorf("tunnel %s local IP %v", tp.Kind, tp.LocalIP)
			}
			out = append(out, tp.Kind)
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want []tunnels.Kind
	}{
		{nil, []tunnels.Kind{tunnels.VXLAN}},
		{[]string{"--encaps", "geneve,vxlan"}, []tunnels.Kind{tunnels.Geneve, tunnels.VXLAN}},
		{[]string{"--encaps", "gre", "--encaps", "Geneve"}, []tunnels.Kind{tunnels.GRE, tunnels.Geneve}},
		{[]string{"--encap", "gre"}, []tunnels.Kind{tunnels.GRE}},
		{[]string{"--encaps", "stt"}, []tunnels.Kind{tunnels.STT}}, // the kernel datapath (the default) sends stt
	} {
		c, err := run(tc.args...)
		if err != nil || c == nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !slices.Equal(kinds(c), tc.want) || c.watch || c.endpoint != "unix:/var/run/openvswitch/db.sock" ||
			c.cfg.DatapathID != 0xa1 || c.cfg.DatapathType != "system" || c.cfg.Bridge != "br-int" || len(c.cfg.TableNames) == 0 {
			t.Errorf("%v: %+v", tc.args, c)
		}
	}
	c, err := run("--watch", "--interval", "2s", "--ovsdb", "tcp:127.0.0.1:6640", "--uplink", "eth1", "--datapath-type", "netdev")
	if err != nil || c == nil || !c.watch || c.interval != 2*time.Second || c.endpoint != "tcp:127.0.0.1:6640" || c.cfg.Uplink != "eth1" || c.cfg.DatapathType != "netdev" {
		t.Fatalf("--watch: %+v %v", c, err)
	}
	if c, err := run("--watch"); err != nil || c.interval != hostsetup.DefaultWatchInterval {
		t.Fatalf("--watch default interval: %+v %v", c, err)
	}
	for want, args := range map[string][]string{
		"cannot transmit":            {"--datapath-type", "netdev", "--encaps", "vxlan,stt"},
		"listed twice":               {"--encaps", "vxlan,geneve,vxlan"},
		`unknown tunnel kind "ipip"`: {"--encaps", "ipip"},
		"only with --watch":          {"--interval", "5s"},
		"must be positive":           {"--watch", "--interval", "0s"},
		"want system or netdev":      {"--datapath-type", "dpdk"},
		"--local-ip":                 {"--local-ip", "x"},
		"unexpected arguments":       {"extra"},
	} {
		args := args
		if want == "--local-ip" {
			args = []string{"--local-ip", "x"}
		}
		if c, err := run(args...); err == nil || !strings.Contains(err.Error(), want) || c != nil {
			t.Errorf("%v: %v (ran: %v), want an error containing %q", args, err, c != nil, want)
		}
	}
}

// TestCLIShowTunnels: `show` prints each host's usable kinds and VM MTU,
// and its problems under the table.
func TestCLIShowTunnels(t *testing.T) {
	st := controller.Status{Hosts: []controller.HostStatus{
		{Name: "h1", DatapathID: "00000000000000a1", UnderlayIP: "172.31.0.11", Encaps: []string{"geneve", "vxlan"}, VMMTU: 1450,
			Connected: true, InSync: true, Flows: 42, BoundNICs: map[string]uint32{"web1": 5}},
		{Name: "h2", DatapathID: "00000000000000a2", UnderlayIP: "172.31.0.12", Encaps: []string{"gre"},
			Problems: []string{"encap stt unusable: ...", "no encapsulation in common with host h1 (h2: gre; h1: geneve,vxlan)"}},
	}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(ts.Close)
	t.Setenv("HOME", t.TempDir())
	out, err := runArgv(t, []string{"openvpc", "show", "--server", ts.URL, "--token", "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"HOST DPID UNDERLAY ENCAPS OPENFLOW SYNC FLOWS VM_MTU NICS ERROR",
		"h1 00000000000000a1 172.31.0.11 geneve,vxlan up yes 42 1450 web1@5",
		"h2 00000000000000a2 172.31.0.12 gre down no 0 -",
		"host h2: encap stt unusable: ...",
		"host h2: no encapsulation in common with host h1",
	} {
		if !hasLine(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
}
