// Package storemode runs the lab with the controller on its embedded etcd
// store, driven only through the HTTP API: objects created, changed and
// deleted by API calls reach the switches; a controller restart keeps
// everything; tokens confine accounts. Needs root.
package storemode

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

var env *labrun.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "storemode: the lab tests need root; run `make test` as root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	dir, err := os.MkdirTemp("", "ovpst")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Only hosts: everything else comes through the API.
	p := &model.Policy{Hosts: []model.Host{{Name: "h1"}, {Name: "h2"}}}
	env, err = labrun.UpPolicy(ctx, p, labrun.Options{Name: lab.UniqueName('a'), Dir: dir, Log: log, Store: true, AuditInterval: time.Second, Ephemeral: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "storemode: lab up:", err)
		return 1
	}
	defer env.Down(context.Background())
	return m.Run()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// plug creates the lab VM of a NIC as the store has it (allocated IP, MAC).
func plug(t *testing.T, nic string) *lab.VM {
	t.Helper()
	n, err := env.Net()
	must(t, err)
	ni := n.NICs[nic]
	if ni == nil {
		t.Fatalf("NIC %s not in the store", nic)
	}
	vm, err := env.Lab.AddVM(ctxT(t), labpolicy.VMSpec(ni))
	must(t, err)
	return vm
}

func reach(t *testing.T, from *lab.VM, to string, want bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r, err := from.Ping(ctxT(t), netip.MustParseAddr(to), lab.PingOpts{Count: 1, Timeout: 300 * time.Millisecond})
		if err == nil && (r.Received == 1) == want {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s → %s: reachable=%v still after 30 s", from.Name(), to, !want)
		}
	}
}

func TestAPIDrivesTheDataPlane(t *testing.T) {
	ctx := ctxT(t)
	admin, err := env.Client("")
	must(t, err)
	must(t, admin.Create(ctx, "account", &model.Account{Name: "acme"}))
	must(t, admin.Create(ctx, "account", &model.Account{Name: "globex"}))
	tok, err := admin.CreateToken(ctx, client.TokenRequest{Account: "acme"})
	must(t, err)
	acme, err := env.Client(tok.Secret)
	must(t, err)

	must(t, acme.Create(ctx, "vpc", &model.VPC{Name: "v", Account: "acme", CIDR: "10.1.0.0/16"}))
	must(t, acme.Create(ctx, "subnet", &model.Subnet{Name: "web", VPC: "v", CIDR: "10.1.1.0/24"}))
	must(t, acme.Create(ctx, "subnet", &model.Subnet{Name: "app", VPC: "v", CIDR: "10.1.2.0/24"}))
	n1 := model.NIC{Name: "n1", Subnet: "web", Host: "h1"}
	must(t, acme.Create(ctx, "nic", &n1))
	n2 := model.NIC{Name: "n2", Subnet: "app", Host: "h2"}
	must(t, acme.Create(ctx, "nic", &n2))
	if n1.IP != "10.1.1.4" || n2.IP != "10.1.2.4" || n1.MAC == "" || n1.PortKey == 0 {
		t.Fatalf("allocation: n1 %+v, n2 %+v", n1, n2)
	}
	vm1, vm2 := plug(t, "n1"), plug(t, "n2")
	t.Logf("n1 → n2 (API-created, cross host, routed) reachable after %v", reach(t, vm1, n2.IP, true))
	_ = vm2

	// Restart: everything is still there and forwarding resumes.
	env.StopController()
	must(t, env.StartController(ctx))
	must(t, env.WaitReady(ctx))
	var again model.NIC
	must(t, acme.Get(ctx, "nic", "n1", &again))
	if again.IP != n1.IP || again.MAC != n1.MAC || again.PortKey != n1.PortKey {
		t.Fatalf("n1 after restart %+v, before %+v", again, n1)
	}
	reach(t, vm1, n2.IP, true)

	// A new NIC via the API becomes reachable; a deleted one unreachable.
	n3 := model.NIC{Name: "n3", Subnet: "web", Host: "h2"}
	must(t, acme.Create(ctx, "nic", &n3))
	plug(t, "n3")
	t.Logf("new NIC reachable %v after plugging", reach(t, vm1, n3.IP, true))
	must(t, acme.Delete(ctx, "nic", "n2"))
	t.Logf("deleted NIC unreachable %v after the API call", reach(t, vm1, n2.IP, false))

	// A secondary IP added through the API is reachable.
	_, err = acme.AddSecondaryIP(ctx, "n3", "10.1.1.77")
	must(t, err)
	vm3 := env.Lab.VM("n3")
	must(t, vm3.AddAddr(ctx, netip.MustParsePrefix("10.1.1.77/24")))
	reach(t, vm1, "10.1.1.77", true)

	// Access: globex sees nothing of acme; account tokens cannot manage hosts; bad tokens are refused.
	gt, err := admin.CreateToken(ctx, client.TokenRequest{Account: "globex"})
	must(t, err)
	globex, err := env.Client(gt.Secret)
	must(t, err)
	var nic model.NIC
	if err := globex.Get(ctx, "nic", "n1", &nic); client.StatusOf(err) != 404 {
		t.Errorf("globex reading acme's NIC: %v", err)
	}
	var nics []model.NIC
	must(t, globex.List(ctx, "nic", &nics))
	if len(nics) != 0 {
		t.Errorf("globex lists %d NICs", len(nics))
	}
	if err := globex.Create(ctx, "nic", &model.NIC{Name: "sneak", Subnet: "web"}); client.StatusOf(err) < 400 || client.StatusOf(err) >= 500 {
		t.Errorf("globex creating a NIC in acme's subnet: %v", err)
	}
	if err := acme.Create(ctx, "host", &model.Host{Name: "h9", UnderlayIP: "172.31.0.99"}); client.StatusOf(err) != 403 {
		t.Errorf("account creating a host: %v", err)
	}
	bad, _ := env.Client("ovp_not-a-token")
	if err := bad.List(ctx, "vpc", &nics); client.StatusOf(err) != 401 {
		t.Errorf("bad token: %v", err)
	}
	if _, err := acme.Raw(ctx, "/v1/status", nil); client.StatusOf(err) != 403 {
		t.Errorf("account token reading controller status: %v", err)
	}
}

// 20 API clients create NICs in one subnet at once: each gets a distinct
// IP, MAC and port key, or a clear conflict error — never a duplicate.
func TestConcurrentNICCreates(t *testing.T) {
	ctx := ctxT(t)
	admin, err := env.Client("")
	must(t, err)
	must(t, admin.Create(ctx, "account", &model.Account{Name: "conc"}))
	must(t, admin.Create(ctx, "vpc", &model.VPC{Name: "cv", Account: "conc", CIDR: "10.7.0.0/16"}))
	must(t, admin.Create(ctx, "subnet", &model.Subnet{Name: "cs", VPC: "cv", CIDR: "10.7.1.0/24"}))
	type res struct {
		nic model.NIC
		err error
	}
	out := make(chan res, 20)
	for i := 0; i < 20; i++ {
		go func(i int) {
			cl, err := env.Client("")
			if err != nil {
				out <- res{err: err}
				return
			}
			n := model.NIC{Name: fmt.Sprintf("c%02d", i), Subnet: "cs"}
			out <- res{n, cl.Create(ctx, "nic", &n)}
		}(i)
	}
	ips, macs, keys := map[string]string{}, map[string]string{}, map[uint32]string{}
	created := 0
	for i := 0; i < 20; i++ {
		r := <-out
		if r.err != nil {
			if client.StatusOf(r.err) != 409 {
				t.Errorf("create %s: %v (want success or a 409 conflict)", r.nic.Name, r.err)
			}
			continue
		}
		created++
		for _, kv := range []struct {
			m map[string]string
			v string
		}{{ips, r.nic.IP}, {macs, r.nic.MAC}} {
			if o, dup := kv.m[kv.v]; dup {
				t.Errorf("%s and %s both got %s", o, r.nic.Name, kv.v)
			}
			kv.m[kv.v] = r.nic.Name
		}
		if o, dup := keys[r.nic.PortKey]; dup {
			t.Errorf("%s and %s both got port key %d", o, r.nic.Name, r.nic.PortKey)
		}
		keys[r.nic.PortKey] = r.nic.Name
	}
	var stored []model.NIC
	must(t, admin.List(ctx, "nic", &stored))
	n := 0
	for _, s := range stored {
		if s.Subnet == "cs" {
			n++
		}
	}
	if n != created || created == 0 {
		t.Fatalf("%d creates succeeded, %d NICs stored in the subnet", created, n)
	}
	t.Logf("%d of 20 concurrent creates succeeded, all distinct", created)
}
