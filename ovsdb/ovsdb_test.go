package ovsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/openvpc/openvpc/internal/ovstest"
	"github.com/openvpc/openvpc/ovsdb/vswitchd"
)

func testLog(t *testing.T) logrus.FieldLogger { return ovstest.Log(t) }

func TestModelMatchesSchemas(t *testing.T) {
	dbModel, err := Model()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Bridge", "Controller", "Flow_Table", "Interface", "Open_vSwitch", "Port"}
	var got []string
	for table := range dbModel.Types() {
		got = append(got, table)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("model tables = %v; want %v", got, want)
	}
	// The trimmed schema the models were generated from.
	if _, errs := model.NewDatabaseModel(vswitchd.Schema(), dbModel); len(errs) > 0 {
		t.Errorf("model vs trimmed schema: %v", errs)
	}
	// The installed full schema (what a server would send).
	b, err := os.ReadFile(ovsproc.SchemaPath)
	if err != nil {
		t.Skipf("no installed schema: %v", err)
	}
	var full libovsdb.DatabaseSchema
	if err := json.Unmarshal(b, &full); err != nil {
		t.Fatal(err)
	}
	if _, errs := model.NewDatabaseModel(full, dbModel); len(errs) > 0 {
		t.Errorf("model vs %s: %v", ovsproc.SchemaPath, errs)
	}
}

func TestColumns(t *testing.T) {
	cols := Columns(reflect.TypeOf(&vswitchd.Interface{}))
	for _, c := range []string{"name", "type", "options", "ofport", "external_ids", "error"} {
		if !slices.Contains(cols, c) {
			t.Errorf("Interface columns %v lack %s", cols, c)
		}
	}
	if slices.Contains(cols, "_uuid") || slices.Contains(cols, "statistics") {
		t.Errorf("Interface columns %v", cols)
	}
}

func TestDialBadEndpoints(t *testing.T) {
	ctx := testCtx(t)
	for _, ep := range []string{"", "db.sock", "http://x", "ssl:127.0.0.1:6640", "tcp:", "unix:/nonexistent/db.sock"} {
		if c, err := Dial(ctx, ep, testLog(t)); err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", ep)
		}
	}
}

func TestDialUnixAndTransact(t *testing.T) {
	o := needOVS(t)
	ctx := testCtx(t)
	cli, err := Dial(ctx, o.Endpoint(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Close)

	var roots []vswitchd.OpenvSwitch
	if err := cli.List(ctx, &roots); err != nil || len(roots) != 1 {
		t.Fatalf("Open_vSwitch rows: %v %v", roots, err)
	}

	// A Port without interfaces violates the schema: Transact must say so,
	// although the JSON-RPC call itself succeeds (the error is in the
	// results).
	ops, err := cli.Create(&vswitchd.Port{Name: "broken"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Transact(ctx, cli, ops...)
	if err == nil || !strings.Contains(err.Error(), "violation") {
		t.Fatalf("Transact of an invalid row: err = %v; want a constraint or referential integrity violation", err)
	}
	t.Logf("expected error: %v", err)

	// A valid change shows up in the cache.
	root := &vswitchd.OpenvSwitch{UUID: roots[0].UUID}
	ops, err = cli.Where(root).Mutate(root, model.Mutation{
		Field: &root.ExternalIDs, Mutator: libovsdb.MutateOperationInsert, Value: map[string]string{"ovpn-test": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Transact(ctx, cli, ops...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = o.Vsctl(context.Background(), "remove", "Open_vSwitch", ".", "external_ids", "ovpn-test")
	})
	eventually(ctx, t, "external_ids in cache", func() bool {
		var rs []vswitchd.OpenvSwitch
		return cli.List(ctx, &rs) == nil && len(rs) == 1 && rs[0].ExternalIDs["ovpn-test"] == "1"
	})
	if out, err := o.Vsctl(ctx, "get", "Open_vSwitch", ".", "external_ids:ovpn-test"); err != nil || strings.TrimSpace(out) != `"1"` {
		t.Fatalf("ovs-vsctl sees %q, %v", out, err)
	}
}

// TestDialTCP lets ovsdb-server listen on TCP inside its namespace and
// dials it from a thread that entered that namespace.
func TestDialTCP(t *testing.T) {
	o := needOVS(t)
	ctx := testCtx(t)
	if out, err := exec.Command("ip", "netns", "exec", o.Netns(), "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	ctl := filepath.Join(o.Dir(), "ovsdb-server.ctl")
	remote := "ptcp:16640:127.0.0.1"
	if out, err := exec.Command("ovs-appctl", "-t", ctl, "ovsdb-server/add-remote", remote).CombinedOutput(); err != nil {
		t.Fatalf("add-remote: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ovs-appctl", "-t", ctl, "ovsdb-server/remove-remote", remote).Run() })

	cli, err := dialInNetns(ctx, o.Netns(), "tcp:127.0.0.1:16640", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Close)
	var roots []vswitchd.OpenvSwitch
	if err := cli.List(ctx, &roots); err != nil || len(roots) != 1 {
		t.Fatalf("Open_vSwitch rows over tcp: %v %v", roots, err)
	}
	if got := cli.CurrentEndpoint(); got != "tcp:127.0.0.1:16640" {
		t.Errorf("CurrentEndpoint = %q", got)
	}
}

// dialInNetns runs Dial on an OS thread that has entered the namespace, so
// the TCP socket lives there. The thread is never unlocked: it exits with
// the goroutine instead of returning to the pool in the wrong namespace.
func dialInNetns(ctx context.Context, ns, endpoint string, log logrus.FieldLogger) (client.Client, error) {
	type result struct {
		cli client.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		cli, err := Dial(ctx, endpoint, log)
		ch <- result{cli, err}
	}()
	r := <-ch
	return r.cli, r.err
}

// restartOVS stops both daemons and starts them again on the same database.
func restartOVS(ctx context.Context, t *testing.T, between func()) {
	t.Helper()
	old := shared.OVS
	if err := old.Stop(); err != nil {
		t.Fatalf("stop OVS: %v", err)
	}
	if between != nil {
		between()
	}
	o, err := ovsproc.Start(ctx, ovsproc.Config{Dir: old.Dir(), Netns: old.Netns()})
	if err != nil {
		shared.OVS = nil
		t.Fatalf("restart OVS: %v", err)
	}
	shared.OVS = o
}

func TestReconnect(t *testing.T) {
	needOVS(t)
	ctx := testCtx(t)
	cli, err := Dial(ctx, shared.OVS.Endpoint(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Close)

	restartOVS(ctx, t, nil)
	// A change made after the restart reaches the old client's cache.
	if _, err := shared.OVS.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "external_ids:ovpn-reconnect=2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = shared.OVS.Vsctl(context.Background(), "--no-wait", "remove", "Open_vSwitch", ".", "external_ids", "ovpn-reconnect")
	})
	eventually(ctx, t, "change after restart in cache", func() bool {
		var rs []vswitchd.OpenvSwitch
		return cli.List(ctx, &rs) == nil && len(rs) == 1 && rs[0].ExternalIDs["ovpn-reconnect"] == "2"
	})
	// And it can write again.
	var rs []vswitchd.OpenvSwitch
	if err := cli.List(ctx, &rs); err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	root := &vswitchd.OpenvSwitch{UUID: rs[0].UUID}
	ops, err := cli.Where(root).Mutate(root, model.Mutation{
		Field: &root.ExternalIDs, Mutator: libovsdb.MutateOperationDelete, Value: []string{"ovpn-reconnect"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Transact(ctx, cli, ops...); err != nil {
		t.Fatalf("transact after reconnect: %v", err)
	}
}

var sessionsRE = regexp.MustCompile(`sessions:(\d+)`)

// serverSessions is the number of JSON-RPC sessions ovsdb-server has open.
func serverSessions(ctx context.Context, t *testing.T) int {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ovs-appctl", "-t", filepath.Join(shared.OVS.Dir(), "ovsdb-server.ctl"), "memory/show").CombinedOutput()
	if err != nil {
		t.Fatalf("memory/show: %v %s", err, out)
	}
	m := sessionsRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestCloseWhileReconnecting: a client closed while its connection is down
// must not stay connected when the server comes back. (libovsdb v0.8.1
// alone keeps such a client reconnecting and connected forever.)
func TestCloseWhileReconnecting(t *testing.T) {
	needOVS(t)
	ctx := testCtx(t)
	cli, err := Dial(ctx, shared.OVS.Endpoint(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	c := cli.(*conn)
	restartOVS(ctx, t, func() {
		eventually(ctx, t, "client notices the disconnect", func() bool { return c.Client.CurrentEndpoint() == "" })
		cli.Close()
	})
	select {
	case <-c.reaped:
	case <-ctx.Done():
		t.Fatal("the closed client's pending reconnect was never closed again")
	}
	eventually(ctx, t, "closed client disconnected", func() bool { return c.Client.CurrentEndpoint() == "" })
	eventually(ctx, t, "only ovs-vswitchd's session left on ovsdb-server", func() bool { return serverSessions(ctx, t) == 1 })
}
