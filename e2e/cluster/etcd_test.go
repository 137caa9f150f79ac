package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/store"
)

// startCluster runs an n-member etcd cluster in this process, on loopback.
func startCluster(t *testing.T, n int) ([]*store.Embedded, []string) {
	t.Helper()
	var dirs []string
	for i := 0; i < n; i++ {
		dirs = append(dirs, filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i)))
	}
	members, err := store.StartCluster(ctxFor(t, time.Minute), dirs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, m := range members {
		t.Cleanup(m.Kill)
		endpoints = append(endpoints, m.Endpoints()...)
	}
	return members, endpoints
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// plug creates the lab VM of a NIC as the API reports it.
func plug(ctx context.Context, t *testing.T, env *labrun.Env, cl *client.Client, nic string) *lab.VM {
	t.Helper()
	_, n := netFromAPI(ctx, t, cl)
	ni := n.NICs[nic]
	if ni == nil {
		t.Fatalf("NIC %s not in the store", nic)
	}
	vm, err := env.Lab.AddVM(ctx, labpolicy.VMSpec(ni))
	must(t, err)
	return vm
}

// TestExternalEtcdCluster runs the controller daemon on a 3-member etcd
// cluster (in the test process, on loopback) instead of its embedded one:
// API-created NICs on two lab hosts ping each other; with the etcd leader
// killed a new NIC still becomes reachable; a controller restart (with
// that member still down) keeps forwarding.
func TestExternalEtcdCluster(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 3*time.Minute)
	members, endpoints := startCluster(t, 3)
	env := upLab(t, 'x', "h1", "h2")

	// The lab's hosts (with their OVSDB endpoints) as labrun applied them
	// to the embedded store; then the daemon labrun started makes way for
	// one on the external cluster, on the same sockets.
	lc, err := env.Client("")
	must(t, err)
	hostsDoc, err := lc.Export(ctx)
	must(t, err)
	env.StopController()
	must(t, os.Remove(env.TokenPath)) // the cluster's daemon writes its own
	args := []string{"--etcd-endpoints", strings.Join(endpoints, ","),
		"--openflow", env.OpenFlow, "--openflow-target", env.OFTarget,
		"--listen", env.APIAddr, "--admin-token-file", env.TokenPath}
	logPath := filepath.Join(env.Lab.Dir(), "controller-etcd.log")
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, logPath)
		}
	})
	start := func() *daemon {
		d := startDaemon(t, logPath, args...)
		// Also in the lab's state, so that `openvpc lab down` stops it
		// after a crash of this test.
		must(t, env.Lab.TrackProcess("controller-etcd", d.cmd.Process.Pid))
		return d
	}
	d := start()
	token := readToken(ctx, t, d, env.TokenPath)
	admin, err := client.New(env.APIAddr, token, "")
	must(t, err)
	apiUp(ctx, t, d, admin)
	_, err = admin.Apply(ctx, hostsDoc, false)
	must(t, err)

	must(t, admin.Create(ctx, "account", &model.Account{Name: "acme"}))
	must(t, admin.Create(ctx, "vpc", &model.VPC{Name: "v", Account: "acme", CIDR: "10.1.0.0/16"}))
	must(t, admin.Create(ctx, "subnet", &model.Subnet{Name: "web", VPC: "v", CIDR: "10.1.1.0/24"}))
	n1 := model.NIC{Name: "n1", Subnet: "web", Host: "h1"}
	must(t, admin.Create(ctx, "nic", &n1))
	n2 := model.NIC{Name: "n2", Subnet: "web", Host: "h2"}
	must(t, admin.Create(ctx, "nic", &n2))
	vm1 := plug(ctx, t, env, admin, "n1")
	plug(ctx, t, env, admin, "n2")
	t.Logf("n1 → n2 (cross host, external etcd) reachable after %v", reach(ctx, t, vm1, n2.IP, true).Round(time.Millisecond))

	// Kill the leader: the cluster has to elect another, and the
	// controller's client has to move its requests and its watch.
	var leader *store.Embedded
	for _, m := range members {
		if m.IsLeader() {
			leader = m
		}
	}
	if leader == nil {
		t.Fatal("no etcd leader")
	}
	killed := time.Now()
	leader.Kill()
	t.Logf("killed the etcd leader %s", leader.Endpoints()[0])
	n3 := model.NIC{Name: "n3", Subnet: "web", Host: "h2"}
	must(t, admin.Create(ctx, "nic", &n3))
	t.Logf("NIC n3 created %v after the kill", time.Since(killed).Round(time.Millisecond))
	plug(ctx, t, env, admin, "n3")
	reach(ctx, t, vm1, n3.IP, true)
	t.Logf("n1 → n3 reachable %v after the kill", time.Since(killed).Round(time.Millisecond))

	// Restart the controller, the dead member still in its endpoints.
	d.stop()
	restarted := time.Now()
	d = start()
	apiUp(ctx, t, d, admin)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	must(t, env.WaitReady(wctx))
	t.Logf("restarted controller ready after %v", time.Since(restarted).Round(time.Millisecond))
	var again model.NIC
	must(t, admin.Get(ctx, "nic", "n3", &again))
	if again.IP != n3.IP || again.MAC != n3.MAC || again.PortKey != n3.PortKey {
		t.Fatalf("n3 after the restart %+v, before %+v", again, n3)
	}
	reach(ctx, t, vm1, n2.IP, true)
	reach(ctx, t, vm1, n3.IP, true)
	// And it still follows the store: a deleted NIC becomes unreachable.
	must(t, admin.Delete(ctx, "nic", "n2"))
	t.Logf("n2 deleted after the restart: unreachable after %v", reach(ctx, t, vm1, n2.IP, false).Round(time.Millisecond))
}
