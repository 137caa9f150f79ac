package store

import (
	"reflect"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openvpc/openvpc/model"
)

func TestRouteTables(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)

	// A VPC's main table is created and stored with it.
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	got, _ := mustPolicy(t, s)
	var names []string
	for _, rt := range got.RouteTables {
		names = append(names, rt.Name)
	}
	if !slices.Equal(names, []string{"acme-vpc-main", "beta-vpc-main"}) {
		t.Fatalf("stored tables %v, want the two VPCs' main tables", names)
	}
	if m := table(got, "acme-vpc-main"); !m.Main || m.VPC != "acme-vpc" || len(m.Routes) != 0 {
		t.Fatalf("main table %+v", m)
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"route_table/acme-vpc-main"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("no key for the main table: %v", err)
	}

	// A table with routes to an appliance NIC and a blackhole, associated
	// with a subnet; the appliance's source/destination check is off.
	off := false
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.RouteTables = append(p.RouteTables, model.RouteTable{Name: "via-fw", VPC: "acme-vpc", Routes: []model.Route{
			{Destination: "0.0.0.0/0", NIC: "db1"},
			{Destination: "192.168.0.0/16", Blackhole: true},
		}})
		for i := range p.Subnets {
			if p.Subnets[i].Name == "acme-web" {
				p.Subnets[i].RouteTable = "via-fw"
			}
		}
		nic(p, "db1").SourceDestCheck = &off
		// The main table's routes are editable like any other's.
		table(p, "acme-vpc-main").Routes = []model.Route{{Destination: "172.16.0.0/12", NIC: "web1"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	fw := table(got, "via-fw")
	if fw == nil || len(fw.Routes) != 2 || fw.Routes[0].NIC != "db1" || !fw.Routes[1].Blackhole {
		t.Fatalf("stored table %+v", fw)
	}
	if n := nic(got, "db1"); n.SourceDestCheck == nil || *n.SourceDestCheck {
		t.Fatalf("source/destination check of db1 not stored off: %+v", n.SourceDestCheck)
	}
	if m := table(got, "acme-vpc-main"); len(m.Routes) != 1 || m.Routes[0].NIC != "web1" {
		t.Fatalf("edited main table %+v", m)
	}

	// Users: subnets by association (the main table by naming none); a
	// VPC's tables other than main keep it; NICs that are targets do not
	// count.
	for _, tc := range []struct {
		kind, name string
		want       []string
	}{
		{KindRouteTable, "via-fw", []string{"subnet acme-web"}},
		{KindRouteTable, "acme-vpc-main", []string{"subnet acme-db"}},
		{KindRouteTable, "beta-vpc-main", []string{"subnet beta-app"}},
		{KindVPC, "acme-vpc", []string{"route_table via-fw", "subnet acme-db", "subnet acme-web"}},
		{KindVPC, "beta-vpc", []string{"subnet beta-app"}},
		{KindNIC, "db1", nil},
	} {
		if u := InUse(got, tc.kind, tc.name); !slices.Equal(u, tc.want) {
			t.Errorf("InUse(%s %s) = %v, want %v", tc.kind, tc.name, u, tc.want)
		}
	}

	// A table still associated cannot go; Build says which subnet.
	before, beforeRev := mustPolicy(t, s)
	_, err := s.Update(ctx, func(p *model.Policy) error {
		p.RouteTables = slices.DeleteFunc(p.RouteTables, func(rt model.RouteTable) bool { return rt.Name == "via-fw" })
		return nil
	})
	if !fieldErr("subnet", "acme-web", "route_table")(err) {
		t.Fatalf("deleting an associated table: %v", err)
	}
	// (A route to a NIC of another VPC is refused by the API for new routes;
	// the model only marks a stale one blackhole.)
	if after, rev := mustPolicy(t, s); rev != beforeRev || !reflect.DeepEqual(after, before) {
		t.Fatal("a rejected update changed the store")
	}

	// Deleting a route's target NIC is allowed: the route stays, and
	// turns blackhole.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Name == "db1" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if fw := table(got, "via-fw"); len(fw.Routes) != 2 || fw.Routes[0].NIC != "db1" {
		t.Fatalf("the route to the deleted NIC is gone: %+v", fw)
	}
	n, err := model.Build(got)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["via-fw"].Routes[0]; r.State != model.RouteBlackhole || r.Why == "" {
		t.Fatalf("route to the deleted NIC: %+v", r)
	}

	// Deleting a VPC deletes its main table (once its other tables and
	// subnets are gone).
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Subnet == "beta-app" })
		p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.VPC == "beta-vpc" })
		p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Name == "beta-vpc" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if table(got, "beta-vpc-main") != nil {
		t.Fatal("the main table outlived its VPC")
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"route_table/beta-vpc-main"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the main table's key is still there: %v", err)
	}
}

// A policy stored before route tables existed gets its main tables on the
// next write, and a table created by hand may not pose as a main table.
func TestMainTablesAdded(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	// As an older version wrote it: no route_table keys.
	if _, err := s.cli.Delete(ctx, s.prefix+"route_table/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustPolicy(t, s); len(got.RouteTables) != 0 {
		t.Fatalf("tables left: %+v", got.RouteTables)
	}
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.Hosts[0].OVSDB = "unix:/run/ovs9.sock"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustPolicy(t, s); len(got.RouteTables) != 2 {
		t.Fatalf("main tables not restored: %+v", got.RouteTables)
	}
	_, err := s.Update(ctx, func(p *model.Policy) error {
		p.RouteTables = append(p.RouteTables, model.RouteTable{Name: "acme-vpc-main2", VPC: "acme-vpc", Main: true})
		return nil
	})
	if !fieldErr("route_table", "acme-vpc-main2", "name")(err) {
		t.Fatalf("a second main table: %v", err)
	}
}
