package labtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Iperf runs an iperf3 server in srv (one test) and a 10 s TCP client in cli
// towards addr, and returns the received rate in Gbit/s.
func Iperf(t testing.TB, srv, cli Endpoint, addr string) float64 {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "iperf3.pid")
	Sh(t, srv, "iperf3", "-s", "-1", "-D", "-I", pidfile)
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
		out, err = cli.Exec(Ctx(t), "iperf3", "-c", addr, "-t", "10", "-J")
		if err == nil {
			break
		}
		if i == 20 {
			t.Fatalf("iperf3 %s → %s: %v: %s", cli.Name(), addr, err, out)
		}
		Sh(t, cli, "sleep", "0.2")
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
