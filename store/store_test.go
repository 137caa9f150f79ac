package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openvpc/openvpc/model"
)

func TestCRUDRoundTrip(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 30*time.Second)

	if p, _ := mustPolicy(t, s); !reflect.DeepEqual(p, &model.Policy{}) {
		t.Fatalf("new store is not empty: %+v", p)
	}

	// Create: every field round-trips, and assigned identifiers are stored.
	rev1, err := s.Update(ctx, replaceWith(basePolicy()))
	if err != nil {
		t.Fatal(err)
	}
	got, rev := mustPolicy(t, s)
	if rev != rev1 {
		t.Fatalf("read at revision %d, committed at %d", rev, rev1)
	}
	want := pinned(t, basePolicy())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	auto := nic(got, "auto")
	if auto.IP != "10.0.1.4" || auto.MAC == "" || auto.PortKey == 0 {
		t.Fatalf("auto NIC not assigned: %+v", auto)
	}
	if db := nic(got, "db1"); db.PortKey != 77 || db.MAC != "02:00:00:00:00:01" {
		t.Fatalf("explicit identifiers changed: %+v", db)
	}
	if got.VPCs[0].VNI == 0 || got.VPCs[1].VNI != 4242 {
		t.Fatalf("VNIs: %+v", got.VPCs)
	}

	// No change: no commit, the revision read comes back.
	if r, err := s.Update(ctx, func(p *model.Policy) error { return nil }); err != nil || r != rev1 {
		t.Fatalf("no-op update: rev %d, %v; want %d", r, err, rev1)
	}

	// Modify and delete: only the keys that changed are written.
	modRev := func(kind, name string) int64 {
		resp, err := s.cli.Get(ctx, s.key(kind, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return 0
		}
		return resp.Kvs[0].ModRevision
	}
	dbRev := modRev(KindNIC, "db1")
	rev2, err := s.Update(ctx, func(p *model.Policy) error {
		nic(p, "web1").Host = "hv1"
		nic(p, "auto").SecondaryIPs = []string{"10.0.1.50"}
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Name == "beta1" })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if modRev(KindNIC, "db1") != dbRev || modRev(KindNIC, "web1") != rev2 || modRev(KindNIC, "beta1") != 0 {
		t.Fatal("update did not write exactly the changed keys")
	}
	got, _ = mustPolicy(t, s)
	if nic(got, "web1").Host != "hv1" || !slices.Equal(nic(got, "auto").SecondaryIPs, []string{"10.0.1.50"}) || nic(got, "beta1") != nil {
		t.Fatalf("modification not stored: %+v", got.NICs)
	}
	if nic(got, "auto").PortKey != auto.PortKey || nic(got, "auto").MAC != auto.MAC {
		t.Fatal("pinned identifiers changed on an unrelated update")
	}

	// Invalid changes return the validation error and change nothing.
	before, beforeRev := mustPolicy(t, s)
	if u := InUse(before, KindSubnet, "acme-web"); !slices.Equal(u, []string{"nic auto", "nic web1"}) {
		t.Fatalf("InUse(subnet acme-web) = %v", u)
	}
	if u := InUse(before, KindHost, "hv1"); !slices.Equal(u, []string{"nic db1", "nic web1"}) {
		t.Fatalf("InUse(host hv1) = %v", u)
	}
	sentinel := errors.New("caller says no")
	for _, tc := range []struct {
		name   string
		fn     func(p *model.Policy) error
		check  func(error) bool
		expect string
	}{
		{"subnet in use", func(p *model.Policy) error {
			p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.Name == "acme-web" })
			return nil
		}, fieldErr("nic", "web1", "subnet"), `nic "web1": subnet: subnet "acme-web" does not exist`},
		{"bad cidr", func(p *model.Policy) error {
			p.Subnets = append(p.Subnets, model.Subnet{Name: "x", VPC: "acme-vpc", CIDR: "10.0.3.1/24"})
			return nil
		}, fieldErr("subnet", "x", "cidr"), "host bits set"},
		{"account owns vpcs", func(p *model.Policy) error {
			p.Accounts = p.Accounts[1:]
			return nil
		}, fieldErr("account", "acme", "name"), "still used by vpc acme-vpc"},
		{"duplicate ip", func(p *model.Policy) error {
			p.NICs = append(p.NICs, model.NIC{Name: "dup", Subnet: "acme-web", IP: "10.0.1.10"})
			return nil
		}, fieldErr("nic", "dup", "ip"), "already used"},
		{"caller error", func(p *model.Policy) error {
			p.Accounts = nil
			return sentinel
		}, func(err error) bool { return errors.Is(err, sentinel) }, "caller says no"},
	} {
		_, err := s.Update(ctx, tc.fn)
		if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.expect) {
			t.Errorf("%s: got %v, want a %q error", tc.name, err, tc.expect)
		}
		after, afterRev := mustPolicy(t, s)
		if afterRev != beforeRev || !reflect.DeepEqual(after, before) {
			t.Errorf("%s: rejected update changed the store (rev %d -> %d)", tc.name, beforeRev, afterRev)
		}
	}

	// Deleting an account with everything it owns works.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.Accounts = slices.DeleteFunc(p.Accounts, func(a model.Account) bool { return a.Name == "beta" })
		p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Account == "beta" })
		p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.VPC == "beta-vpc" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if len(got.Accounts) != 1 || len(got.VPCs) != 1 || len(got.Subnets) != 2 {
		t.Fatalf("cascade delete: %+v", got)
	}
}

func fieldErr(kind, name, field string) func(error) bool {
	return func(err error) bool {
		for _, fe := range model.FieldErrors(err) {
			if fe.Kind == kind && fe.Name == name && fe.Field == field {
				return true
			}
		}
		return false
	}
}

func TestDurability(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testCtx(t, 40*time.Second)

	e1, err := StartEmbedded(ctx, dir, testLog())
	if err != nil {
		t.Fatal(err)
	}
	s1, err := Open(ctx, Config{Endpoints: e1.Endpoints(), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	p1, _, err := s1.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()
	e1.Close()

	e2 := startEmbedded(t, dir)
	s2 := openStore(t, e2.Endpoints())
	p2, _ := mustPolicy(t, s2)
	if !reflect.DeepEqual(p1, p2) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", p2, p1)
	}
	for _, n := range p2.NICs {
		if n.MAC == "" || n.PortKey == 0 || n.IP == "" {
			t.Fatalf("NIC %s lost its identifiers: %+v", n.Name, n)
		}
	}
	// New objects do not disturb pinned identifiers.
	if _, err := s2.Update(ctx, func(p *model.Policy) error {
		p.NICs = append(p.NICs, model.NIC{Name: "aaa", Subnet: "acme-web"})
		p.VPCs = append(p.VPCs, model.VPC{Name: "aaa-vpc", Account: "acme", CIDR: "10.9.0.0/16"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p3, _ := mustPolicy(t, s2)
	for _, n := range p2.NICs {
		if m := nic(p3, n.Name); !reflect.DeepEqual(*m, n) {
			t.Fatalf("NIC %s changed: %+v -> %+v", n.Name, n, *m)
		}
	}
}

func TestConcurrentNICs(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	ctx := testCtx(t, 40*time.Second)
	stores := []*Store{openStore(t, e.Endpoints()), openStore(t, e.Endpoints()), openStore(t, e.Endpoints()), openStore(t, e.Endpoints())}
	if _, err := stores[0].Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = stores[i%len(stores)].Update(ctx, func(p *model.Policy) error {
				p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("c%02d", i), Subnet: "acme-db"})
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	ok, conflicts := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrConflict):
			conflicts++
		default:
			t.Fatalf("NIC c%02d: %v", i, err)
		}
	}
	t.Logf("%d created, %d gave up with ErrConflict", ok, conflicts)
	if ok == 0 {
		t.Fatal("no update succeeded")
	}
	p, _ := mustPolicy(t, stores[0])
	if _, err := model.Build(p); err != nil {
		t.Fatalf("final policy invalid: %v", err)
	}
	ips, macs, keys := map[string]bool{}, map[string]bool{}, map[uint32]bool{}
	created := 0
	for _, nc := range p.NICs {
		if !strings.HasPrefix(nc.Name, "c") {
			continue
		}
		created++
		if nc.IP == "" || nc.MAC == "" || nc.PortKey == 0 || ips[nc.IP] || macs[nc.MAC] || keys[nc.PortKey] {
			t.Fatalf("NIC %s: missing or duplicate identifiers: %+v", nc.Name, nc)
		}
		ips[nc.IP], macs[nc.MAC], keys[nc.PortKey] = true, true, true
	}
	if created != ok {
		t.Fatalf("%d NICs stored, %d updates succeeded", created, ok)
	}
}

// Commits whose answer is lost are resolved from the generation history:
// never applied twice, never reported as failed when they landed.
func TestUpdateOutcomeUnknown(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	other := openStore(t, e.Endpoints())
	ctx := testCtx(t, 30*time.Second)
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	lost := status.Error(codes.Unavailable, "injected: connection lost")
	addNIC := func(name string) func(p *model.Policy) error {
		return func(p *model.Policy) error {
			p.NICs = append(p.NICs, model.NIC{Name: name, Subnet: "acme-web"})
			return nil
		}
	}
	for i, tc := range []struct {
		name string
		hook func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error)
	}{
		{"landed, answer lost", func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
			if _, err := commit(); err != nil {
				t.Error(err)
			}
			return nil, lost
		}},
		{"landed, answer lost, then another commit", func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
			if _, err := commit(); err != nil {
				t.Error(err)
			}
			if _, err := other.Update(ctx, addNIC("other-"+fmt.Sprint(time.Now().UnixNano()))); err != nil {
				t.Error(err)
			}
			return nil, lost
		}},
		{"never sent", func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
			return nil, lost
		}},
		{"never sent, another commit", func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
			if _, err := other.Update(ctx, addNIC("other-"+fmt.Sprint(time.Now().UnixNano()))); err != nil {
				t.Error(err)
			}
			return nil, lost
		}},
	} {
		calls := 0
		s.testHookCommit = func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
			calls++
			if calls == 1 {
				return tc.hook(commit)
			}
			return commit()
		}
		name := fmt.Sprintf("n%d", i)
		rev, err := s.Update(ctx, addNIC(name))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		p, _ := mustPolicy(t, s)
		if nic(p, name) == nil {
			t.Fatalf("%s: change missing", tc.name)
		}
		resp, err := s.cli.Get(ctx, s.key(KindNIC, name))
		if err != nil || resp.Kvs[0].ModRevision != rev {
			t.Fatalf("%s: Update returned revision %d, NIC written at %d (%v)", tc.name, rev, resp.Kvs[0].ModRevision, err)
		}
	}
	s.testHookCommit = nil

	// The caller's deadline ends the retries: the outcome is unknown.
	s.testHookCommit = func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
		return nil, lost
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.Update(short, addNIC("never")); err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("want outcome unknown, got %v", err)
	}
}
