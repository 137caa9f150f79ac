package hostsetup

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/tunnels"
)

// syncBuffer is a log destination safe for the goroutines that log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func captureLog() (logrus.FieldLogger, *syncBuffer) {
	buf := &syncBuffer{}
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.InfoLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableColors: true, DisableTimestamp: true})
	return l, buf
}

// startWatch runs RunWatch until the test ends (it must then return nil).
func startWatch(t *testing.T, endpoint string, cfg Config, interval time.Duration, log logrus.FieldLogger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWatch(ctx, endpoint, cfg, interval, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunWatch returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunWatch did not stop with its context")
		}
	})
}

// within polls cond for at most d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), d)
	defer cancel()
	eventually(ctx, t, what, cond)
}

func vsctlOK(args ...string) (string, bool) {
	out, err := shared.OVS.Vsctl(context.Background(), args...)
	return strings.TrimSpace(out), err == nil
}

// TestRunWatchRepairs: --watch mode puts back, within moments and long
// before its interval, a deleted tunnel port, a changed fail_mode, a
// removed controller and a deleted bridge, and logs each repair.
func TestRunWatchRepairs(t *testing.T) {
	o := needOVS(t)
	cfg := testConfig("ovt-watch")
	cfg.Tunnels = append(cfg.Tunnels, TunnelPort{Kind: tunnels.Geneve, LocalIP: underlay})
	br := cfg.Bridge
	removeBridgeAtEnd(t, br) // after the watch stops (cleanups run last first)
	log, logs := captureLog()
	startWatch(t, o.Endpoint(), cfg, time.Hour, log)

	within(t, 10*time.Second, "the bridge set up", func() bool {
		fm, ok1 := vsctlOK("get", "Bridge", br, "fail_mode")
		p, ok2 := vsctlOK("port-to-br", "ovpn-geneve")
		return ok1 && ok2 && fm == "secure" && p == br
	})
	// Logged once Ensure returned: ovs-vswitchd applied it.
	within(t, 5*time.Second, "the set-up logged", func() bool {
		return strings.Contains(logs.String(), "set up: bridge ovt-watch: add tunnel port ovpn-geneve")
	})
	checkConfigured(t, cfg)

	// A deleted tunnel port comes back.
	vsctl(t, "del-port", br, "ovpn-vxlan")
	within(t, 5*time.Second, "ovpn-vxlan re-added", func() bool {
		p, ok := vsctlOK("port-to-br", "ovpn-vxlan")
		return ok && p == br
	})
	// A changed fail_mode is put back.
	vsctl(t, "set", "Bridge", br, "fail_mode=standalone")
	within(t, 5*time.Second, "fail_mode secure again", func() bool {
		fm, ok := vsctlOK("get", "Bridge", br, "fail_mode")
		return ok && fm == "secure"
	})
	// So is a removed controller.
	vsctl(t, "del-controller", br)
	within(t, 5*time.Second, "the controller back", func() bool {
		c, ok := vsctlOK("get-controller", br)
		return ok && c == "tcp:127.0.0.1:6653"
	})
	// And a bridge deleted by hand (VM ports aside) comes back whole.
	vsctl(t, "del-br", br)
	within(t, 10*time.Second, "the bridge re-created", func() bool {
		p, ok := vsctlOK("port-to-br", "ovpn-geneve")
		fm, ok2 := vsctlOK("get", "Bridge", br, "fail_mode")
		return ok && ok2 && p == br && fm == "secure"
	})
	within(t, 5*time.Second, "the re-creation logged", func() bool {
		return strings.Contains(logs.String(), "repaired: bridge ovt-watch: add tunnel port ovpn-geneve")
	})
	checkConfigured(t, cfg)

	out := logs.String()
	t.Logf("log:\n%s", out)
	for _, want := range []string{
		"repaired: bridge ovt-watch: add tunnel port ovpn-vxlan",
		"fail_mode standalone -> secure",
		"add controller tcp:127.0.0.1:6653",
		"create bridge ovt-watch",
		`trigger="ovsdb change"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `trigger=interval`) {
		t.Errorf("repaired by the interval, not by the OVSDB events:\n%s", out)
	}
}

// TestRunWatchInterval: without events, the interval re-runs Ensure; a
// drift it finds is repaired too.
func TestRunWatchInterval(t *testing.T) {
	o := needOVS(t)
	cfg := testConfig("ovt-wint")
	removeBridgeAtEnd(t, cfg.Bridge)
	log, logs := captureLog()
	log.(*logrus.Logger).SetLevel(logrus.DebugLevel)
	startWatch(t, o.Endpoint(), cfg, 300*time.Millisecond, log)
	within(t, 10*time.Second, "the bridge set up", func() bool {
		fm, ok := vsctlOK("get", "Bridge", cfg.Bridge, "fail_mode")
		return ok && fm == "secure"
	})
	within(t, 5*time.Second, "checks by the interval", func() bool { return strings.Count(logs.String(), "trigger=interval") >= 2 })
	vsctl(t, "set", "Bridge", cfg.Bridge, "protocols=OpenFlow10")
	within(t, 5*time.Second, "protocols repaired", func() bool {
		p, ok := vsctlOK("get", "Bridge", cfg.Bridge, "protocols")
		return ok && p == "[OpenFlow13, OpenFlow15]"
	})
}

// TestRunWatchErrors: an invalid config and a kind the datapath cannot use
// end it at once; an OVSDB server that is not there is waited for until
// the context ends.
func TestRunWatchErrors(t *testing.T) {
	ctx := testCtx(t)
	bad := testConfig("ovt-wbad")
	bad.DatapathID = 0
	if err := RunWatch(ctx, "unix:/nonexistent", bad, time.Second, testLog(t)); err == nil || !strings.Contains(err.Error(), "invalid config") {
		t.Errorf("invalid config: %v", err)
	}
	if err := RunWatch(ctx, "unix:/nonexistent", testConfig("ovt-wbad"), -time.Second, testLog(t)); err == nil {
		t.Error("negative interval accepted")
	}

	log, logs := captureLog()
	wctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := RunWatch(wctx, "unix:"+filepath.Join(t.TempDir(), "db.sock"), testConfig("ovt-wbad"), 200*time.Millisecond, log); err != nil {
		t.Errorf("no OVSDB server: %v", err)
	}
	if time.Since(start) < 600*time.Millisecond {
		t.Errorf("gave up after %v, before its context ended", time.Since(start))
	}
	if n := strings.Count(logs.String(), "cannot reach OVSDB"); n != 1 {
		t.Errorf("warned %d times:\n%s", n, logs.String())
	}

	o := needOVS(t)
	stt := testConfig("ovt-wstt")
	stt.Tunnels = []TunnelPort{{Kind: tunnels.STT, LocalIP: underlay}}
	removeBridgeAtEnd(t, stt.Bridge)
	if err := RunWatch(ctx, o.Endpoint(), stt, time.Second, testLog(t)); !errors.Is(err, tunnels.ErrUnsupportedDatapath) {
		t.Errorf("stt on netdev: %v", err)
	}
}
