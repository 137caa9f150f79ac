package hostsetup

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/openvpc/openvpc/internal/ovstest"
)

// Tests share one private OVS (ovsdb-server + ovs-vswitchd) in a fresh
// network namespace, started by TestMain.
var (
	testOVS    *ovsproc.OVS
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ovs, cleanup, err := ovstest.Start("ovhs")
	defer cleanup()
	testOVS = ovs
	if err != nil {
		// Only a non-root run may skip; as root (CI) a broken OVS fails.
		if os.Geteuid() == 0 {
			fmt.Fprintln(os.Stderr, "private OVS:", err)
			return 1
		}
		skipReason = err.Error()
	}
	return m.Run()
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

func testLog(t *testing.T) logrus.FieldLogger { return ovstest.Log(t) }
