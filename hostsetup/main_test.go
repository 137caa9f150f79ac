package hostsetup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/internal/ovsproc"
)

// Tests share one private OVS (ovsdb-server + ovs-vswitchd) in a fresh
// network namespace, started by TestMain.
var (
	testOVS    *ovsproc.OVS
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ovs, cleanup, reason := startOVS("ovhs")
	testOVS, skipReason = ovs, reason
	defer cleanup()
	return m.Run()
}

// startOVS starts a private OVS in a new namespace named prefix-PID, or
// returns why it cannot.
func startOVS(prefix string) (*ovsproc.OVS, func(), string) {
	nothing := func() {}
	if os.Geteuid() != 0 {
		return nil, nothing, "needs root (network namespaces, ovs-vswitchd)"
	}
	for _, bin := range []string{"ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, nothing, bin + " not installed"
		}
	}
	ns := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return nil, nothing, fmt.Sprintf("ip netns add %s: %v %s", ns, err, out)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		return nil, nothing, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := ovsproc.Start(ctx, ovsproc.Config{Dir: dir, Netns: ns})
	cleanup := func() {
		if o != nil {
			_ = o.Stop()
		}
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = os.RemoveAll(dir)
	}
	if err != nil {
		cleanup()
		return nil, nothing, fmt.Sprintf("start OVS: %v", err)
	}
	return o, cleanup, ""
}

func needOVS(t *testing.T) *ovsproc.OVS {
	t.Helper()
	if testOVS == nil {
		t.Skip("no private OVS: " + skipReason)
	}
	return testOVS
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// testLog logs to t until the test ends (libovsdb's goroutines may log
// later; t.Log would panic then).
func testLog(t *testing.T) logrus.FieldLogger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	l.SetOutput(w)
	return l.WithField("test", t.Name())
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}
