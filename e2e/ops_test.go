package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func status(t *testing.T) controller.Status {
	t.Helper()
	resp, err := labrun.HTTPClient(env.APIAddr).Get("http://openvpc/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st controller.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func apiFlows(t *testing.T, host, table string) string {
	t.Helper()
	url := "http://openvpc/v1/hosts/" + host + "/flows"
	if table != "" {
		url += "?table=" + table
	}
	resp, err := labrun.HTTPClient(env.APIAddr).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

// waitPing polls until a ping from→to gives want (reachable or not).
func waitPing(t *testing.T, from, to string, want bool) time.Duration {
	t.Helper()
	start := time.Now()
	v := env.Lab.VM(from)
	for {
		r, err := v.Ping(ctxT(t, 10*time.Second), netip.MustParseAddr(to), lab.PingOpts{Count: 1, Timeout: 300 * time.Millisecond})
		if err == nil && (r.Received == 1) == want {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s → %s: still reachable=%v after 30 s", from, to, !want)
		}
	}
}

// openvpc builds the CLI once for the tests that drive it.
func openvpc(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("openvpc-e2e-%d", os.Getpid()))
	if _, err := os.Stat(bin); err != nil {
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/openvpc").CombinedOutput(); err != nil {
			t.Fatalf("build openvpc: %v\n%s", err, out)
		}
		t.Cleanup(func() { os.Remove(bin) })
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// The operator's view: show and dump-flows (through the CLI and the API)
// agree with what OVS itself has installed, with table names.
func TestShowAndDumpFlows(t *testing.T) {
	st := status(t)
	if len(st.Hosts) != 3 {
		t.Fatalf("%d hosts in status", len(st.Hosts))
	}
	for _, h := range st.Hosts {
		if !h.Connected || !h.InSync || h.Flows == 0 {
			t.Errorf("host %s: connected=%v in_sync=%v flows=%d", h.Name, h.Connected, h.InSync, h.Flows)
		}
		for _, vm := range env.Lab.Inventory().VMs {
			if vm.Host != h.Name {
				continue
			}
			port, err := env.Lab.VM(vm.Name).OFPort(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := h.BoundNICs[vm.Name]; got != uint32(port) {
				t.Errorf("host %s: NIC %s bound at %d, OVS says ofport %d", h.Name, vm.Name, got, port)
			}
		}
	}
	out, err := openvpc(t, "show", "--server", env.APIAddr)
	if err != nil || !regexp.MustCompile(`(?m)^h1\s+\S+\s+172\.31\.0\.11\s+vxlan\s+up\s+yes\s+\d+`).MatchString(out) {
		t.Errorf("openvpc show: %v\n%s", err, out)
	}
	ours := strings.Split(strings.TrimSpace(apiFlows(t, "h1", "")), "\n")
	ofctl, err := env.Lab.Host("h1").OVS().Ofctl(ctxT(t, 10*time.Second), "--names", "dump-flows", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	var theirs []string
	for _, l := range strings.Split(strings.TrimSpace(ofctl), "\n") {
		if strings.Contains(l, "cookie=0xb") {
			theirs = append(theirs, l)
		}
	}
	if len(ours) != len(theirs) || len(ours) < 30 {
		t.Errorf("dump-flows shows %d flows, ovs-ofctl %d", len(ours), len(theirs))
	}
	for _, name := range []string{"Classifier", "PortSecurity", "L2Filter", "ArpResponder", "RouterLocal", "L3Route", "DestLookup", "Output"} {
		if !strings.Contains(ofctl, "table="+name) {
			t.Errorf("ovs-ofctl does not show table name %s", name)
		}
	}
	out, err = openvpc(t, "dump-flows", "--server", env.APIAddr, "h1", "L3Route")
	if err != nil {
		t.Fatalf("openvpc dump-flows: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, "table=L3Route,") {
			t.Errorf("dump-flows h1 L3Route printed %q", l)
		}
	}
	if out, err := openvpc(t, "dump-flows", "--server", env.APIAddr, "nosuch"); err == nil || !strings.Contains(out, `unknown host "nosuch"`) {
		t.Errorf("dump-flows of an unknown host: %v %s", err, out)
	}
}

// A bad edit of the policy file is reported, and the network keeps running
// on the previous policy; fixing the file clears the error.
func TestBadPolicyEditKeepsForwarding(t *testing.T) {
	good := env.Policy()
	t.Cleanup(func() { env.UpdatePolicy(func(p *model.Policy) { *p = *good }) })
	if err := env.UpdatePolicy(func(p *model.Policy) {
		for i := range p.NICs {
			if p.NICs[i].Name == "a-web2" {
				p.NICs[i].IP = "10.0.1.1"
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for status(t).PolicyError == "" {
		if time.Now().After(deadline) {
			t.Fatal("bad policy not reported")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if msg := status(t).PolicyError; !strings.Contains(msg, `nic "a-web2": ip: 10.0.1.1 is reserved`) {
		t.Errorf("policy error %q", msg)
	}
	waitPing(t, "a-web1", "10.0.1.11", true)
	env.UpdatePolicy(func(p *model.Policy) { *p = *good })
	deadline = time.Now().Add(10 * time.Second)
	for status(t).PolicyError != "" {
		if time.Now().After(deadline) {
			t.Fatal("policy error not cleared")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Removing a NIC from the policy makes it unreachable and removes its flows
// everywhere; restoring it brings it back, without restarts.
func TestNICRemovedAndRestored(t *testing.T) {
	good := env.Policy()
	n, _ := model.Build(good)
	key := fmt.Sprintf("reg2=%#x", n.NICs["a-app2"].PortKey)
	waitPing(t, "a-web1", "10.0.2.11", true)
	env.UpdatePolicy(func(p *model.Policy) {
		for i := range p.NICs {
			if p.NICs[i].Name == "a-app2" {
				p.NICs = append(p.NICs[:i], p.NICs[i+1:]...)
				break
			}
		}
	})
	took := waitPing(t, "a-web1", "10.0.2.11", false)
	t.Logf("unreachable %v after removal", took)
	for _, h := range []string{"h1", "h2", "h3"} {
		if strings.Contains(apiFlows(t, h, ""), key) {
			t.Errorf("%s still has flows for the removed NIC (%s)", h, key)
		}
	}
	env.UpdatePolicy(func(p *model.Policy) { *p = *good })
	t.Logf("reachable again %v after restore", waitPing(t, "a-web1", "10.0.2.11", true))
}

// A NIC added to the policy and plugged into a host (iface-id) becomes
// reachable; unplugging the port removes its flows on that host.
func TestPlugAndUnplug(t *testing.T) {
	const name, ip = "a-web4", "10.0.1.13"
	good := env.Policy()
	t.Cleanup(func() {
		env.Lab.RemoveVM(context.Background(), name)
		env.UpdatePolicy(func(p *model.Policy) { *p = *good })
	})
	env.UpdatePolicy(func(p *model.Policy) {
		p.NICs = append(p.NICs, model.NIC{Name: name, Subnet: "acme-web", Host: "h3", IP: ip})
	})
	n, err := env.Net()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Lab.AddVM(ctxT(t, time.Minute), labpolicy.VMSpec(n.NICs[name])); err != nil {
		t.Fatal(err)
	}
	t.Logf("new VM on h3 reachable %v after plugging", waitPing(t, "a-web1", ip, true))
	waitPing(t, "a-app1", ip, true) // routed, from h2
	port, err := env.Lab.VM(name).OFPort(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	inPort := fmt.Sprintf("in_port=%d ", port)
	if !strings.Contains(apiFlows(t, "h3", "Classifier")+" ", inPort) {
		t.Fatalf("h3 has no classifier flow for the new port %d", port)
	}
	if err := env.Lab.RemoveVM(ctxT(t, time.Minute), name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Contains(apiFlows(t, "h3", "Classifier")+" ", inPort) {
		if time.Now().After(deadline) {
			t.Fatal("flows of the unplugged port remain on h3")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Flows deleted behind the controller's back are restored by its audit.
func TestAuditRepairsDrift(t *testing.T) {
	ovs := env.Lab.Host("h2").OVS()
	count := func() int {
		out, err := ovs.Ofctl(ctxT(t, 10*time.Second), "dump-flows", "br-int", "table=45")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(out, "cookie=")
	}
	repairs := func() int {
		for _, h := range status(t).Hosts {
			if h.Name == "h2" {
				return h.DriftRepairs
			}
		}
		t.Fatal("no h2 in status")
		return 0
	}
	before, repairsBefore := count(), repairs()
	if _, err := ovs.Ofctl(ctxT(t, 10*time.Second), "del-flows", "br-int", "table=45"); err != nil {
		t.Fatal(err)
	}
	// The audit runs every second in these tests: the table is empty now
	// (unless the audit already ran) and full again soon.
	start := time.Now()
	for count() != before || repairs() == repairsBefore {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("DestLookup on h2 has %d flows 30 s after they were deleted, want %d", count(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("h2's DestLookup table restored %v after its flows were deleted", time.Since(start).Round(time.Millisecond))
	waitPing(t, "a-web1", "10.0.1.12", true)
}

// Restarting the controller again and again must not push the bridges into
// OVS's long reconnect backoff (OVS 3.1 applies max_backoff only to a live
// connection, so the controller re-applies it after each connect).
func TestRepeatedControllerRestarts(t *testing.T) {
	logs := map[string]int{}
	for _, h := range env.Lab.Hosts() {
		b, _ := os.ReadFile(filepath.Join(h.OVS().Dir(), "ovs-vswitchd.log"))
		logs[h.Name()] = len(b)
	}
	backoff := func(h *lab.Host) (mb string, applied bool) {
		ctx := ctxT(t, 10*time.Second)
		out, err1 := h.OVS().Vsctl(ctx, "--columns=max_backoff", "--bare", "find", "Controller")
		cfg, err2 := h.OVS().Vsctl(ctx, "get", "Open_vSwitch", ".", "next_cfg", "cur_cfg")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		f := strings.Fields(cfg)
		return strings.TrimSpace(out), len(f) == 2 && f[0] == f[1]
	}
	for i := 0; i < 4; i++ {
		prev := map[string]string{}
		for _, h := range env.Lab.Hosts() {
			prev[h.Name()], _ = backoff(h)
		}
		env.StopController()
		if err := env.StartController(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := env.WaitReady(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		t.Logf("restart %d: in sync after %v", i+1, time.Since(start).Round(time.Millisecond))
		// The next restart must come after the agents re-applied the
		// backoff (max_backoff toggled, and ovs-vswitchd has applied the
		// configuration: cur_cfg caught up with next_cfg).
		for _, h := range env.Lab.Hosts() {
			for {
				mb, applied := backoff(h)
				if mb != prev[h.Name()] && applied {
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatalf("%s: max_backoff still %q (applied=%v) after restart %d", h.Name(), mb, applied, i+1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	long := regexp.MustCompile(`br-int<->\S+: waiting ([2-9]) seconds before reconnect`)
	for _, h := range env.Lab.Hosts() {
		b, err := os.ReadFile(filepath.Join(h.OVS().Dir(), "ovs-vswitchd.log"))
		if err != nil {
			t.Fatal(err)
		}
		if m := long.FindString(string(b[logs[h.Name()]:])); m != "" {
			t.Errorf("%s: bridge fell into a long reconnect backoff: %q", h.Name(), m)
		}
	}
	waitPing(t, "a-web1", "10.0.2.10", true)
}
