// Package ovstest starts a private Open vSwitch in a fresh network
// namespace for tests of packages that talk to real OVS, and gives them a
// logger that writes to the test.
package ovstest

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

// Start starts a private OVS (ovsdb-server + ovs-vswitchd) in a new
// namespace named prefix-PID-N with loopback up, its files in a new temp
// dir. cleanup stops the daemons by PID and removes the namespace and dir;
// it is safe to call on error too.
func Start(prefix string) (o *ovsproc.OVS, cleanup func(), err error) {
	cleanup = func() {}
	if os.Geteuid() != 0 {
		return nil, cleanup, fmt.Errorf("needs root (network namespaces, ovs-vswitchd)")
	}
	for _, bin := range []string{"ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovsdb-tool"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, cleanup, fmt.Errorf("%s not installed (run scripts/install-deps.sh)", bin)
		}
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, cleanup, err
	}
	ns := fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), dir[len(dir)-4:])
	cleanup = func() {
		if o != nil {
			_ = o.Stop()
		}
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = os.RemoveAll(dir)
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("ip netns add %s: %v %s", ns, err, out)
	}
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("lo up in %s: %v %s", ns, err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err = ovsproc.Start(ctx, ovsproc.Config{Dir: dir, Netns: ns})
	if err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("start OVS: %w", err)
	}
	return o, cleanup, nil
}

// Log returns a logger that writes to t until the test ends (goroutines of
// libraries may log later; t.Log would panic then).
func Log(t testing.TB) logrus.FieldLogger {
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
	t    testing.TB
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

// Shared is one private OVS shared by a package's tests (see Main).
type Shared struct {
	OVS  *ovsproc.OVS
	skip string
}

// Main starts a shared private OVS, runs the package's tests and cleans
// up; use it as `func TestMain(m *testing.M) { os.Exit(ovstest.Main(m, "pfx", &shared)) }`.
// As root (CI) an OVS that cannot start fails the package; otherwise tests
// that need it skip with the reason.
func Main(m *testing.M, prefix string, s *Shared) int {
	o, cleanup, err := Start(prefix)
	defer cleanup()
	s.OVS = o
	if err != nil {
		if os.Geteuid() == 0 {
			fmt.Fprintln(os.Stderr, "private OVS:", err)
			return 1
		}
		s.skip = err.Error()
	}
	return m.Run()
}

// Need returns the shared OVS or skips the test (non-root runs only).
func (s *Shared) Need(t testing.TB) *ovsproc.OVS {
	t.Helper()
	if s.OVS == nil {
		t.Skip("no private OVS: " + s.skip)
	}
	return s.OVS
}

// Ctx is a context that ends with the test (or after a minute).
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it holds or ctx ends.
func Eventually(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
