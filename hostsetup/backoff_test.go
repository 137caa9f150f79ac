package hostsetup

import (
	"strings"
	"testing"
)

// RefreshBackoff toggles max_backoff between the configured value and +1,
// and Ensure treats both as in order (it must not undo a refresh).
func TestRefreshBackoff(t *testing.T) {
	cli := dial(t)
	cfg := testConfig("ovt-backoff")
	removeBridgeAtEnd(t, cfg.Bridge)
	if _, err := Ensure(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	get := func() string {
		out, err := shared.OVS.Vsctl(testCtx(t), "--columns=max_backoff", "find", "Controller", "target=\"tcp:127.0.0.1:6653\"")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	if n, err := RefreshBackoff(testCtx(t), cli, cfg); err != nil || n != 1 {
		t.Fatalf("refresh: %d %v", n, err)
	}
	if got := get(); !strings.Contains(got, "1001") {
		t.Fatalf("max_backoff after one refresh: %q, want 1001", got)
	}
	ensureNoChanges(t, cli, cfg)
	if _, err := RefreshBackoff(testCtx(t), cli, cfg); err != nil {
		t.Fatal(err)
	}
	if got := get(); !strings.Contains(got, "1000") {
		t.Fatalf("max_backoff after two refreshes: %q, want 1000", got)
	}
}
