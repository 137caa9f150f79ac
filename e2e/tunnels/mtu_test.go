package tunnels

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// 4. On a 1500-byte underlay VMs get MTU 1450 (the model's, set as a
// hypervisor would): a 1400- and a 1450-byte ping with DF pass between hosts,
// a bigger one fails in the VM's own kernel. A VM left at MTU 1500 that sends
// a 1500-byte packet with DF gets ICMP "fragmentation needed" (mtu 1450) from
// its gateway — the controller answers for the tunnel — so path MTU
// discovery works and TCP bulk transfers go through instead of stalling.
func TestPathMTU(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t4", "10.94")
		p.NICs = append(p.NICs, nic("t4", "t4a", "s1", "h1", "10.94.1.10"), nic("t4", "t4b", "s1", "h2", "10.94.1.11"))
	})
	v := env.Plug(t, "t4a", "t4b")
	a, b := v["t4a"], v["t4b"]
	if a.MTU() != 1450 || b.MTU() != 1450 {
		t.Fatalf("VM MTUs %d, %d; want 1450 (1500 less the 50 bytes of VXLAN/Geneve)", a.MTU(), b.MTU())
	}
	env.Expect(t, "reachable", labtest.Ping(a, b).OK())
	ping := func(size int) (string, error) {
		return a.Exec(labtest.Ctx(t), "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", fmt.Sprint(size), b.Addr)
	}
	for _, size := range []int{1372, 1422} { // 1400 and 1450 bytes of IP
		if out, err := ping(size); err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Fatalf("DF ping of %d bytes: %v\n%s", size+28, err, out)
		}
	}
	if out, err := ping(1423); err == nil || !strings.Contains(strings.ToLower(out), "message too long") {
		t.Fatalf("DF ping of 1451 bytes at MTU 1450: want a local 'message too long', got %v\n%s", err, out)
	}

	// The VM's MTU left at 1500: the tunnel cannot take its 1500-byte frame.
	labtest.Must(t, a.SetMTU(labtest.Ctx(t), 1500))
	out, _ := ping(1472)
	if !strings.Contains(out, "Frag needed and DF set (mtu = 1450)") || !strings.Contains(out, "From 10.94.1.1 ") {
		t.Fatalf("DF ping of 1500 bytes at VM MTU 1500: want 'Frag needed' from the gateway, got:\n%s", out)
	}
	// The kernel learnt the path MTU: a TCP bulk transfer passes.
	pid := filepath.Join(t.TempDir(), "iperf3.pid")
	labtest.Sh(t, b, "iperf3", "-s", "-1", "-D", "-I", pid)
	if out, err := a.Exec(labtest.Ctx(t), "iperf3", "-c", b.Addr, "-n", "4M", "--connect-timeout", "3000"); err != nil || !strings.Contains(out, "receiver") {
		t.Fatalf("TCP bulk transfer after path MTU discovery: %v\n%s", err, out)
	}
}
