package main

import (
	"testing"
)

func TestCLIPeerings(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("acme", cmd("create"), "--set", "cidr=10.2.0.0/16", "vpc", "app")
	e.ok("globex", cmd("create"), "--set", "cidr=10.3.0.0/16", "vpc", "db")
	e.ok("globex", cmd("create"), "--set", "cidr=10.2.0.0/16", "vpc", "olap")

	out := e.ok("acme", cmd("create"), "--vpc", "app", "--peer-vpc", "db", "peering", "app-db")
	if !hasLine(out, "app-db false db app") {
		t.Fatalf("create printed:\n%s", out)
	}
	e.fails("does not exist or cannot be peered", "acme", cmd("create"), "--vpc", "app", "--peer-vpc", "olap", "pcx", "x")
	e.fails("field accepted", "acme", cmd("create"), "--vpc", "app", "--set", "peer_vpc=db", "--set", "accepted=true", "peering", "x")

	// Both sides list it.
	for _, tok := range []string{"acme", "globex"} {
		if out := e.ok(tok, cmd("get"), "peerings"); !hasLine(out, "NAME ACCEPTED PEER_VPC VPC") || !hasLine(out, "app-db false db app") {
			t.Fatalf("get peerings as %s:\n%s", tok, out)
		}
	}

	// A route over it is a blackhole until the accepter accepts.
	out = e.ok("acme", cmd("create-route"), "--destination", "10.3.0.0/16", "--peering", "app-db", "app-main")
	if !hasLine(out, `10.3.0.0/16 peering app-db blackhole (peering "app-db" is not accepted yet)`) {
		t.Fatalf("create-route printed:\n%s", out)
	}
	e.fails("give one target", "acme", cmd("create-route"), "-d", "10.4.0.0/16", "--peering", "app-db", "--blackhole", "app-main")
	e.fails(`peering "nosuch" does not exist`, "acme", cmd("create-route"), "-d", "10.4.0.0/16", "--peering", "nosuch", "app-main")

	e.fails(`only the account of vpc "db"`, "acme", cmd("accept-peering"), "app-db")
	out = e.ok("globex", cmd("accept-peering"), "app-db")
	if !hasLine(out, "app-db true db app") {
		t.Fatalf("accept-peering printed:\n%s", out)
	}
	if out := e.ok("acme", cmd("get"), "route-table", "app-main"); !hasLine(out, "10.3.0.0/16 peering app-db active") {
		t.Fatalf("get route-table:\n%s", out)
	}
	n := e.built()
	if !n.Peered(n.VPCs["app"], n.VPCs["db"]) {
		t.Fatal("not peered")
	}

	e.fails(`vpc "db" is used by peering "app-db"`, "globex", cmd("delete"), "vpc", "db")
	e.ok("globex", cmd("delete"), "peering", "app-db")
	if out := e.ok("acme", cmd("get"), "route-table", "app-main"); !hasLine(out, "10.3.0.0/16 peering app-db blackhole") {
		t.Fatalf("get route-table after delete:\n%s", out)
	}
	e.ok("globex", cmd("delete"), "vpc", "db")
}
