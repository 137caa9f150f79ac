package igw

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// TestGatewayThroughput (-perf) measures TCP throughput with iperf3 for 10 s:
// a VM (h1) → the internet host through the gateway host (tunnel, NAT,
// uplink), against VM → VM across hosts (tunnel only). It prints a RESULT
// line for scripts/bench.sh.
func TestGatewayThroughput(t *testing.T) {
	if !*perf {
		t.Skip("throughput figures only with -perf (scripts/bench.sh)")
	}
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i9", "10.89.0.0/16", "10.89.1.0/24", "10.89.2.0/24")
		// iperf3's control connection uses port 5201.
		g := &p.SecurityGroups[len(p.SecurityGroups)-1]
		g.Ingress = append(g.Ingress, model.Rule{Protocol: "tcp", Ports: "5201", CIDR: "0.0.0.0/0"})
		p.NICs = append(p.NICs, nic("i9", "i9a", "pub", "h1", "10.89.1.10"), nic("i9", "i9b", "pub", "h2", "10.89.1.11"))
		p.PublicIPs = append(p.PublicIPs, public("i9", "i9a", 91))
	})
	v := env.Plug(t, "i9a", "i9b")
	a, b := v["i9a"], v["i9b"]
	inet := env.Internet(t)
	env.Expect(t, "paths up", labtest.Ping(a, inet).At(far).OK(), labtest.Ping(a, b).OK())

	internet := iperf(t, inet, a, far)
	vmvm := iperf(t, b, a, b.Addr)
	fmt.Printf("RESULT igw vm-internet-gbps=%.2f vm-vm-gbps=%.2f\n", internet, vmvm)
}

// iperf runs an iperf3 server in srv (one test) and a 10 s client in cli
// towards addr, and returns the received rate in Gbit/s.
func iperf(t *testing.T, srv labtest.Endpoint, cli labtest.Endpoint, addr string) float64 {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "iperf3.pid")
	labtest.Sh(t, srv, "iperf3", "-s", "-1", "-D", "-I", pidfile)
	t.Cleanup(func() {
		// The one-off server exits after its test; stop it (by its own
		// PID) if the client never came.
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	})
	var out string
	for i := 0; ; i++ { // the daemon may take a moment to listen
		var err error
		out, err = cli.Exec(labtest.Ctx(t), "iperf3", "-c", addr, "-t", "10", "-J")
		if err == nil {
			break
		}
		if i == 20 {
			t.Fatalf("iperf3 %s → %s: %v: %s", cli.Name(), addr, err, out)
		}
		labtest.Sh(t, cli, "sleep", "0.2")
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.End.SumReceived.BitsPerSecond == 0 {
		t.Fatalf("iperf3 %s → %s: %v: %s", cli.Name(), addr, err, out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9
}
