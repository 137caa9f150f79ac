package store

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/model"
)

// testLog writes warnings and errors to stderr, which go test shows only
// for failing packages (or with -v).
func testLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.WarnLevel)
	return l
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func startEmbedded(t *testing.T, dir string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(testCtx(t, 30*time.Second), dir, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func openStore(t *testing.T, endpoints []string) *Store {
	t.Helper()
	s, err := Open(testCtx(t, 30*time.Second), Config{Endpoints: endpoints, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// basePolicy uses every field of every kind.
func basePolicy() *model.Policy {
	return &model.Policy{
		Accounts: []model.Account{{Name: "acme"}, {Name: "beta"}},
		VPCs: []model.VPC{
			{Name: "acme-vpc", Account: "acme", CIDR: "10.0.0.0/16"},
			{Name: "beta-vpc", Account: "beta", CIDR: "10.0.0.0/16", VNI: 4242},
		},
		Subnets: []model.Subnet{
			{Name: "acme-db", VPC: "acme-vpc", CIDR: "10.0.2.0/24"},
			{Name: "acme-web", VPC: "acme-vpc", CIDR: "10.0.1.0/24"},
			{Name: "beta-app", VPC: "beta-vpc", CIDR: "10.0.1.0/24"},
		},
		NICs: []model.NIC{
			{Name: "auto", Subnet: "acme-web"}, // IP, MAC, port key assigned
			{Name: "beta1", Subnet: "beta-app", IP: "10.0.1.10"},
			{Name: "db1", Subnet: "acme-db", Host: "hv1", IP: "10.0.2.10", SecondaryIPs: []string{"10.0.2.11", "10.0.2.12"}, MAC: "02:00:00:00:00:01", PortKey: 77},
			{Name: "web1", Subnet: "acme-web", Host: "hv2", IP: "10.0.1.10"},
		},
		Hosts: []model.Host{
			{Name: "hv1", UnderlayIP: "192.0.2.1", Encap: "geneve", OVSDB: "unix:/run/ovs1.sock", DatapathType: "system"},
			{Name: "hv2", UnderlayIP: "192.0.2.2", Encaps: []string{"geneve", "vxlan"}, UnderlayMTU: 9000, OVSDB: "tcp:127.0.0.1:6640", DatapathType: "netdev"},
		},
		Settings: &model.Settings{Encaps: []string{"geneve", "vxlan"}},
	}
}

// pinned is what the store should hold for p: IPs allocated, identifiers
// pinned, objects sorted by name.
func pinned(t *testing.T, p *model.Policy) *model.Policy {
	t.Helper()
	p = p.Clone()
	model.EnsureDefaultGroups(p)
	model.EnsureMainTables(p)
	if err := model.AllocateIPs(p); err != nil {
		t.Fatal(err)
	}
	if err := model.AllocatePublicIPs(p); err != nil {
		t.Fatal(err)
	}
	n, err := model.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	model.Pin(p, n)
	sort.Slice(p.Accounts, func(i, j int) bool { return p.Accounts[i].Name < p.Accounts[j].Name })
	sort.Slice(p.VPCs, func(i, j int) bool { return p.VPCs[i].Name < p.VPCs[j].Name })
	sort.Slice(p.Subnets, func(i, j int) bool { return p.Subnets[i].Name < p.Subnets[j].Name })
	sort.Slice(p.NICs, func(i, j int) bool { return p.NICs[i].Name < p.NICs[j].Name })
	sort.Slice(p.Hosts, func(i, j int) bool { return p.Hosts[i].Name < p.Hosts[j].Name })
	sort.Slice(p.SecurityGroups, func(i, j int) bool { return p.SecurityGroups[i].Name < p.SecurityGroups[j].Name })
	sort.Slice(p.RouteTables, func(i, j int) bool { return p.RouteTables[i].Name < p.RouteTables[j].Name })
	sort.Slice(p.Peerings, func(i, j int) bool { return p.Peerings[i].Name < p.Peerings[j].Name })
	sort.Slice(p.InternetGateways, func(i, j int) bool { return p.InternetGateways[i].Name < p.InternetGateways[j].Name })
	sort.Slice(p.PublicIPPools, func(i, j int) bool { return p.PublicIPPools[i].Name < p.PublicIPPools[j].Name })
	sort.Slice(p.PublicIPs, func(i, j int) bool { return p.PublicIPs[i].Name < p.PublicIPs[j].Name })
	return p
}

func replaceWith(src *model.Policy) func(p *model.Policy) error {
	return func(p *model.Policy) error {
		*p = *src.Clone()
		return nil
	}
}

func mustPolicy(t *testing.T, s *Store) (*model.Policy, int64) {
	t.Helper()
	p, rev, err := s.Policy(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return p, rev
}

func nic(p *model.Policy, name string) *model.NIC {
	for i := range p.NICs {
		if p.NICs[i].Name == name {
			return &p.NICs[i]
		}
	}
	return nil
}

func table(p *model.Policy, name string) *model.RouteTable {
	for i := range p.RouteTables {
		if p.RouteTables[i].Name == name {
			return &p.RouteTables[i]
		}
	}
	return nil
}

func group(p *model.Policy, name string) *model.SecurityGroup {
	for i := range p.SecurityGroups {
		if p.SecurityGroups[i].Name == name {
			return &p.SecurityGroups[i]
		}
	}
	return nil
}

func publicIP(p *model.Policy, name string) *model.PublicIP {
	for i := range p.PublicIPs {
		if p.PublicIPs[i].Name == name {
			return &p.PublicIPs[i]
		}
	}
	return nil
}
