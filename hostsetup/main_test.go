package hostsetup

import (
	"context"
	"os"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/openvpc/openvpc/internal/ovstest"
)

// Tests share one private OVS (ovsdb-server + ovs-vswitchd) in a fresh
// network namespace, started by TestMain.
var shared ovstest.Shared

func TestMain(m *testing.M) { os.Exit(ovstest.Main(m, "ovhs", &shared)) }

func needOVS(t *testing.T) *ovsproc.OVS { return shared.Need(t) }

func testCtx(t *testing.T) context.Context { return ovstest.Ctx(t) }

func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	ovstest.Eventually(ctx, t, what, cond)
}

func testLog(t *testing.T) logrus.FieldLogger { return ovstest.Log(t) }
