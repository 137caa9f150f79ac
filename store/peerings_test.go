package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

func TestPeerings(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)

	p := basePolicy()
	p.VPCs = append(p.VPCs, model.VPC{Name: "beta-two", Account: "beta", CIDR: "10.8.0.0/16"})
	if _, err := s.Update(ctx, replaceWith(p)); err != nil {
		t.Fatal(err)
	}
	// Overlapping CIDRs are a Build error on the peering's peer_vpc.
	_, err := s.Update(ctx, func(p *model.Policy) error {
		p.Peerings = append(p.Peerings, model.Peering{Name: "bad", VPC: "acme-vpc", PeerVPC: "beta-vpc"})
		return nil
	})
	var fe *model.FieldError
	if !errors.As(err, &fe) || fe.Kind != KindPeering || fe.Field != "peer_vpc" || !strings.Contains(fe.Msg, "overlaps") {
		t.Fatalf("overlapping peering: %v", err)
	}
	// A peering, a route over it and a rule naming a group across it.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.Peerings = append(p.Peerings, model.Peering{Name: "pcx1", VPC: "acme-vpc", PeerVPC: "beta-two"})
		table(p, "acme-vpc-main").Routes = []model.Route{{Destination: "10.8.0.0/16", Peering: "pcx1"}}
		p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{Name: "acme-app", VPC: "acme-vpc",
			Ingress: []model.Rule{{Protocol: "tcp", Ports: "22", Group: "beta-two-default"}}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := mustPolicy(t, s)
	if len(got.Peerings) != 1 || got.Peerings[0] != (model.Peering{Name: "pcx1", VPC: "acme-vpc", PeerVPC: "beta-two"}) {
		t.Fatalf("stored peerings %+v", got.Peerings)
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"peering/pcx1"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("no key for the peering: %v", err)
	}
	n, err := model.Build(got)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["acme-vpc-main"].Routes[0]; r.State != model.RouteBlackhole {
		t.Fatalf("route over a requested peering: %+v", r)
	}

	// Users: a VPC's peerings keep it; groups naming groups across a
	// peering keep the peering.
	for _, vpc := range []string{"acme-vpc", "beta-two"} {
		if u := InUse(got, KindVPC, vpc); !slices.Contains(u, "peering pcx1") {
			t.Errorf("InUse(vpc %s) = %v", vpc, u)
		}
	}
	if u := InUse(got, KindPeering, "pcx1"); !slices.Equal(u, []string{"security_group acme-app"}) {
		t.Errorf("InUse(peering pcx1) = %v", u)
	}

	// Accepted: the route is active.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.Peerings[0].Accepted = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if n, err = model.Build(got); err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["acme-vpc-main"].Routes[0]; r.State != model.RouteActive || r.Peer == nil || r.Peer.Name != "beta-two" {
		t.Fatalf("route over an accepted peering: %+v", r)
	}

	// Deleting the VPC while the peering names it does not build.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Name == "beta-two" })
		return nil
	}); err == nil {
		t.Fatal("deleted a peered VPC")
	}
	// Without the rule, the peering goes; the route stays, a blackhole.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.SecurityGroups = slices.DeleteFunc(p.SecurityGroups, func(g model.SecurityGroup) bool { return g.Name == "acme-app" })
		p.Peerings = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = mustPolicy(t, s)
	if len(got.Peerings) != 0 {
		t.Fatalf("peerings %+v", got.Peerings)
	}
	if resp, err := s.cli.Get(ctx, s.prefix+"peering/pcx1"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the peering's key stays: %v", err)
	}
	if n, err = model.Build(got); err != nil {
		t.Fatal(err)
	}
	if r := n.RouteTables["acme-vpc-main"].Routes[0]; r.State != model.RouteBlackhole || !strings.Contains(r.Why, "does not exist") {
		t.Fatalf("route over a deleted peering: %+v", r)
	}
}
