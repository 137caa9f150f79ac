package main

import (
	"strings"
	"testing"

	"github.com/openvpc/openvpc/model"
)

func (e *cliEnv) table(name string) *model.RouteTable {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	for _, t := range e.b.p.RouteTables {
		if t.Name == name {
			return &t
		}
	}
	return nil
}

func (e *cliEnv) built() *model.Net {
	e.t.Helper()
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	n, err := model.Build(e.b.p)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestCLIRouteTables(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("acme", cmd("create"), "--set", "cidr=10.2.0.0/16", "vpc", "priv")
	e.ok("acme", cmd("create"), "--vpc", "priv", "--set", "cidr=10.2.1.0/24", "subnet", "priv-a")
	e.ok("acme", cmd("create"), "--set", "subnet=priv-a", "nic", "fw1")

	out := e.ok("acme", cmd("create"), "--vpc", "priv", "route-table", "via-fw")
	if !hasLine(out, "name: via-fw") || !hasLine(out, "main: false") || !hasLine(out, "10.2.0.0/16 local active") {
		t.Fatalf("create printed:\n%s", out)
	}
	if rt := e.table("via-fw"); rt == nil || rt.VPC != "priv" || rt.Main {
		t.Fatalf("created %+v", rt)
	}
	e.fails(`route_table "via-fw" already exists`, "acme", cmd("create"), "--vpc", "priv", "route-table", "via-fw")
	e.fails("not by hand", "acme", cmd("create"), "--vpc", "priv", "--set", "main=true", "route-table", "x")

	// Routes.
	e.ok("acme", cmd("create-route"), "--destination", "0.0.0.0/0", "--nic", "fw1", "via-fw")
	e.ok("acme", cmd("create-route"), "-d", "192.168.0.0/16", "--blackhole", "via-fw")
	e.ok("acme", cmd("create-route"), "-d", "10.50.0.0/16", "--nic", "fw1", "via-fw")
	e.fails("already has a route to 0.0.0.0/0", "acme", cmd("create-route"), "-d", "0.0.0.0/0", "--blackhole", "via-fw")
	e.fails("give one target", "acme", cmd("create-route"), "-d", "10.9.0.0/16", "--blackhole", "--nic", "fw1", "via-fw")
	e.fails("give one target", "acme", cmd("create-route"), "-d", "10.9.0.0/16", "via-fw")
	e.fails("--destination is required", "acme", cmd("create-route"), "--blackhole", "via-fw")
	e.fails(`nic "g1" is in vpc "pub", the table in vpc "priv"`, "acme", cmd("create-route"), "-d", "10.9.0.0/16", "--nic", "g1", "via-fw")
	e.fails("field destination", "acme", cmd("create-route"), "-d", "10.2.0.0/16", "--blackhole", "via-fw")
	e.fails("flags go before the arguments", "acme", cmd("create-route"), "via-fw", "-d", "10.9.0.0/16")
	out = e.ok("acme", cmd("replace-route"), "-d", "10.50.0.0/16", "--blackhole", "via-fw")
	if !hasLine(out, "10.50.0.0/16 blackhole blackhole") {
		t.Fatalf("replace-route printed:\n%s", out)
	}
	e.fails("has no route to 10.51.0.0/16", "acme", cmd("replace-route"), "-d", "10.51.0.0/16", "--blackhole", "via-fw")
	e.ok("acme", cmd("delete-route"), "-d", "10.50.0.0/16", "via-fw")
	e.fails("has no route to 10.50.0.0/16", "acme", cmd("delete-route"), "-d", "10.50.0.0/16", "via-fw")
	if rt := e.table("via-fw"); len(rt.Routes) != 2 || rt.Routes[0].NIC != "fw1" || !rt.Routes[1].Blackhole {
		t.Fatalf("routes %+v", rt.Routes)
	}

	// Association, and the appliance's check.
	out = e.ok("acme", cmd("associate-route-table"), "priv-a", "via-fw")
	if !strings.Contains(out, "via-fw") || e.built().Subnets["priv-a"].RouteTable.Name != "via-fw" {
		t.Fatalf("associate printed:\n%s", out)
	}
	e.fails("want SUBNET TABLE, or --main SUBNET", "acme", cmd("associate-route-table"), "priv-a")
	e.fails(`route table "pub-main" belongs to vpc "pub"`, "acme", cmd("associate-route-table"), "priv-a", "pub-main")
	e.ok("acme", cmd("nic", "set-source-dest-check"), "fw1", "off")
	if e.built().NICs["fw1"].SourceDestCheck {
		t.Fatal("fw1 still checks")
	}
	e.fails(`"maybe": want on or off`, "acme", cmd("nic", "set-source-dest-check"), "fw1", "maybe")
	e.fails(`nic "fw1" not found`, "globex", cmd("nic", "set-source-dest-check"), "fw1", "on")

	// One line per route, the local route first, with target and state.
	out = e.ok("acme", cmd("get"), "route-table", "via-fw")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !hasLine(out, "subnets: priv-a") || !hasLine(lines[5], "DESTINATION TARGET STATE") || !hasLine(lines[6], "10.2.0.0/16 local active") ||
		!hasLine(lines[7], "0.0.0.0/0 nic fw1 active") || !hasLine(lines[8], "192.168.0.0/16 blackhole blackhole") {
		t.Fatalf("get route-table via-fw:\n%s", out)
	}
	out = e.ok("acme", cmd("get"), "route-tables")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	// priv-main (1 line), pub-main (1 line: pub-a uses it), via-fw (3).
	if len(lines) != 1+1+1+3 || !strings.HasPrefix(lines[0], "TABLE") || !hasLine(lines[1], "priv-main priv true - 10.2.0.0/16 local active") ||
		!hasLine(lines[2], "pub-main pub true pub-a 10.1.0.0/16 local active") || !hasLine(lines[3], "via-fw priv false priv-a 10.2.0.0/16 local active") ||
		!strings.HasPrefix(lines[4], " ") {
		t.Fatalf("get route-tables:\n%s", out)
	}
	if out = e.ok("acme", cmd("get"), "-o", "json", "rtb", "via-fw"); !strings.Contains(out, `"route_states"`) || !strings.Contains(out, `"nic": "fw1"`) {
		t.Fatalf("get -o json:\n%s", out)
	}

	// The target NIC goes: its route turns blackhole, saying why.
	e.fails(`route_table "via-fw" is used by subnet "priv-a"`, "acme", cmd("delete"), "route-table", "via-fw")
	e.ok("acme", cmd("delete"), "nic", "fw1")
	out = e.ok("acme", cmd("get"), "route-table", "via-fw")
	if !hasLine(out, `0.0.0.0/0 nic fw1 blackhole (nic "fw1" does not exist)`) {
		t.Fatalf("after deleting the target:\n%s", out)
	}
	// An update round trip keeps the table (computed fields ignored).
	e.ok("acme", cmd("update"), "route-table", "via-fw")

	// Back to the main table; then the table can go, the main one never.
	e.ok("acme", cmd("associate-route-table"), "--main", "priv-a")
	if e.built().Subnets["priv-a"].RouteTable.Name != "priv-main" {
		t.Fatal("priv-a is not back on the main table")
	}
	e.ok("acme", cmd("delete"), "route-table", "via-fw")
	e.fails("is the main table of vpc", "acme", cmd("delete"), "route-table", "priv-main")
	if e.table("via-fw") != nil {
		t.Fatal("via-fw not deleted")
	}
}

func TestCLIRouteTableCompletion(t *testing.T) {
	out, err := runArgv(t, []string{"openvpc", "get", "--generate-bash-completion"})
	if err != nil || !strings.Contains(out, "route-table") {
		t.Fatalf("completion of get:\n%s", out)
	}
	out, err = runArgv(t, []string{"openvpc", "nic", "set-source-dest-check", "fw1", "--generate-bash-completion"})
	if err != nil || !strings.Contains(out, "on\noff") {
		t.Fatalf("completion of set-source-dest-check:\n%s", out)
	}
	app := newApp()
	for _, name := range []string{"create-route", "replace-route", "delete-route", "associate-route-table"} {
		if app.Command(name) == nil {
			t.Errorf("no command %s", name)
		}
	}
	if app.Command("nic").Command("set-source-dest-check") == nil {
		t.Error("no command nic set-source-dest-check")
	}
}
