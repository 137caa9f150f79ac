package store

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

// gatewayPolicy is basePolicy with a gateway host, a pool of six usable
// addresses, an internet gateway of each account (acme's attached) and
// two public IPs of acme: one to allocate, one named and associated.
func gatewayPolicy() *model.Policy {
	p := basePolicy()
	p.Hosts[0].Uplink = &model.Uplink{Interface: "eth1", IP: "198.51.100.2/24", NextHop: "198.51.100.1", NextHopMAC: "02:00:00:00:99:01"}
	p.PublicIPPools = []model.PublicIPPool{{Name: "pub", CIDR: "203.0.113.0/29"}}
	p.InternetGateways = []model.InternetGateway{
		{Name: "igw1", Account: "acme", VPC: "acme-vpc"},
		{Name: "igw-beta", Account: "beta", VPC: "beta-vpc"},
	}
	p.PublicIPs = []model.PublicIP{
		{Name: "eip-a", Account: "acme", Pool: "pub"},
		{Name: "eip-b", Account: "acme", Pool: "pub", Address: "203.0.113.5", NIC: "web1"},
	}
	return p
}

func TestInternetGatewaysAndPublicIPs(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 60*time.Second)

	// Every field round-trips; the unnamed address is allocated (the
	// lowest usable one of the pool) and stored.
	if _, err := s.Update(ctx, replaceWith(gatewayPolicy())); err != nil {
		t.Fatal(err)
	}
	got, _ := mustPolicy(t, s)
	if want := pinned(t, gatewayPolicy()); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if a := publicIP(got, "eip-a"); a.Address != "203.0.113.1" {
		t.Fatalf("allocated %+v, want 203.0.113.1", a)
	}
	for _, k := range []string{"internet_gateway/igw1", "public_ip_pool/pub", "public_ip/eip-a", "public_ip/eip-b"} {
		if resp, err := s.cli.Get(ctx, s.prefix+k); err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("no key %s: %v", k, err)
		}
	}

	// A route to the gateway makes acme-web public: eip-b carries traffic.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		table(p, "acme-vpc-main").Routes = []model.Route{{Destination: "0.0.0.0/0", Gateway: "igw1"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	n, err := model.Build(got)
	if err != nil {
		t.Fatal(err)
	}
	if b := n.PublicIPs["eip-b"]; !b.Reachable || b.Gateway == nil || b.Gateway.Name != "hv1" || b.PrivateIP.String() != "10.0.1.10" {
		t.Fatalf("eip-b: %+v", b)
	}

	// Allocated addresses never change: a new public IP (named to sort
	// first) gets the next free one.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.PublicIPs = append(p.PublicIPs, model.PublicIP{Name: "aaa", Account: "acme", Pool: "pub"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if a, b := publicIP(got, "aaa"), publicIP(got, "eip-a"); a.Address != "203.0.113.2" || b.Address != "203.0.113.1" {
		t.Fatalf("after a new allocation: aaa %+v, eip-a %+v", a, b)
	}

	// An exhausted pool: the error names the public IP's pool; nothing
	// is stored.
	before, beforeRev := mustPolicy(t, s)
	_, err = s.Update(ctx, func(p *model.Policy) error {
		for _, name := range []string{"x1", "x2", "x3", "x4"} {
			p.PublicIPs = append(p.PublicIPs, model.PublicIP{Name: name, Account: "acme", Pool: "pub"})
		}
		return nil
	})
	if !fieldErr("public_ip", "x4", "pool")(err) || !strings.Contains(err.Error(), "no free address") {
		t.Fatalf("exhausted pool: %v", err)
	}

	// Users and refusals, each with an error on the deleted object.
	for _, tc := range []struct {
		kind, name string
		want       []string
	}{
		{KindVPC, "acme-vpc", []string{"internet_gateway igw1", "subnet acme-db", "subnet acme-web"}},
		{KindPublicIPPool, "pub", []string{"public_ip aaa", "public_ip eip-a", "public_ip eip-b"}},
		{KindAccount, "acme", []string{"internet_gateway igw1", "public_ip aaa", "public_ip eip-a", "public_ip eip-b", "vpc acme-vpc"}},
		{KindNIC, "web1", nil},
		{KindInternetGateway, "igw1", nil},
	} {
		if u := InUse(before, tc.kind, tc.name); !slices.Equal(u, tc.want) {
			t.Errorf("InUse(%s %s) = %v, want %v", tc.kind, tc.name, u, tc.want)
		}
	}
	for _, tc := range []struct {
		what  string
		fn    func(p *model.Policy) error
		check func(error) bool
		msg   string
	}{
		{"vpc with a gateway", func(p *model.Policy) error {
			p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Name == "acme-vpc" })
			return nil
		}, fieldErr("vpc", "acme-vpc", "name"), `detach internet gateway "igw1" first`},
		{"attached gateway", func(p *model.Policy) error {
			p.InternetGateways = slices.DeleteFunc(p.InternetGateways, func(g model.InternetGateway) bool { return g.Name == "igw1" })
			return nil
		}, fieldErr("internet_gateway", "igw1", "vpc"), `attached to vpc "acme-vpc" (detach it first)`},
		{"pool with public IPs", func(p *model.Policy) error {
			p.PublicIPPools = nil
			return nil
		}, fieldErr("public_ip_pool", "pub", "name"), "public_ip aaa, public_ip eip-a, public_ip eip-b"},
		{"account with public IPs", func(p *model.Policy) error {
			p.Accounts = p.Accounts[:1]
			p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Account == "beta" })
			p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.VPC == "beta-vpc" })
			p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Subnet == "beta-app" })
			for i := range p.PublicIPs {
				p.PublicIPs[i].Account = "beta"
			}
			return nil
		}, fieldErr("account", "beta", "name"), "internet_gateway igw-beta, public_ip aaa"},
	} {
		_, err := s.Update(ctx, tc.fn)
		if !tc.check(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want an error containing %q", tc.what, err, tc.msg)
		}
	}
	if after, afterRev := mustPolicy(t, s); afterRev != beforeRev || !reflect.DeepEqual(after, before) {
		t.Fatalf("rejected updates changed the store (rev %d -> %d)", beforeRev, afterRev)
	}

	// A VPC goes with its gateway in one change.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Name == "beta-vpc" })
		p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.VPC == "beta-vpc" })
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Subnet == "beta-app" })
		p.InternetGateways = slices.DeleteFunc(p.InternetGateways, func(g model.InternetGateway) bool { return g.Name == "igw-beta" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Cascade: removing the secondary IP a public IP maps to, or deleting
	// its NIC, disassociates it; the address stays allocated.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		a := publicIP(p, "eip-a")
		a.NIC, a.PrivateIP = "db1", "10.0.2.12"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		nic(p, "db1").SecondaryIPs = []string{"10.0.2.11"}
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Name == "web1" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if a, b := publicIP(got, "eip-a"), publicIP(got, "eip-b"); *a != (model.PublicIP{Name: "eip-a", Account: "acme", Pool: "pub", Address: "203.0.113.1"}) ||
		*b != (model.PublicIP{Name: "eip-b", Account: "acme", Pool: "pub", Address: "203.0.113.5"}) {
		t.Fatalf("after deleting their NIC and address: %+v, %+v", a, b)
	}

	// Detached, the gateway's routes stay and turn blackhole; then it goes.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.InternetGateways[0].VPC = ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if n, err = model.Build(got); err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["acme-vpc-main"].Routes[0]; r.State != model.RouteBlackhole || !strings.Contains(r.Why, "not attached") {
		t.Fatalf("route to a detached gateway: %+v", r)
	}
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.InternetGateways = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if r := table(got, "acme-vpc-main").Routes; len(r) != 1 || r[0].Gateway != "igw1" {
		t.Fatalf("routes after deleting the gateway: %+v", r)
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"internet_gateway/igw1"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the gateway's key stays: %v", err)
	}
}
