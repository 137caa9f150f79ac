package routes

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/pipelines"
)

// 1. The case: subnet a routes subnet b's /24 to a firewall
// appliance in subnet c on another host, subnet b routes subnet a's /24
// back through it (symmetric, so the appliance sees both directions). The
// more specific route beats the local route; the packets really cross the
// appliance (tcpdump there), keep the client's source address (tcpdump at
// the server; the appliance's source/destination check is off, so it may
// send them), and lose exactly one TTL: the appliance's kernel's, never the
// implied router's. With the check on, the route drops: a↔b stops while
// the appliance itself and a↔c still work; off again, a↔b works again.
func TestApplianceRouting(t *testing.T) {
	const a, b, c = "10.71.1.0/24", "10.71.2.0/24", "10.71.3.0/24"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t1", "t1v", "10.71.0.0/16", map[string]string{"t1a": a, "t1b": b, "t1c": c})
		p.RouteTables = append(p.RouteTables,
			table("t1-rt-a", "t1v", toNIC(b, "t1fw")),
			table("t1-rt-b", "t1v", toNIC(a, "t1fw")))
		labtest.SubnetOf(p, "t1a").RouteTable = "t1-rt-a"
		labtest.SubnetOf(p, "t1b").RouteTable = "t1-rt-b"
		p.NICs = append(p.NICs,
			nicAt("t1cli", "t1a", "h1", "10.71.1.10"),  // another host than the appliance
			nicAt("t1cli2", "t1a", "h2", "10.71.1.11"), // the appliance's host
			nicAt("t1srv", "t1b", "h1", "10.71.2.10"),
			nicAt("t1oth", "t1c", "h1", "10.71.3.11"), // subnet c: not routed through the appliance
			appliance("t1fw", "t1c", "h2", "10.71.3.10"))
	})
	v := env.Plug(t, "t1cli", "t1cli2", "t1srv", "t1oth", "t1fw")
	cli, cli2, srv, oth, fw := v["t1cli"], v["t1cli2"], v["t1srv"], v["t1oth"], v["t1fw"]
	labtest.Forwarder(t, fw)
	labtest.Serve(t, srv, "tcp:80", "udp:53")
	labtest.Serve(t, oth, "tcp:80")
	labtest.Serve(t, cli, "tcp:80")
	router := routerMAC(t, "t1v")

	atFW := labtest.Capture(t, fw, "icmp or tcp port 80 or udp port 53")
	atSrv := labtest.Capture(t, srv, "icmp or tcp port 80")
	through := []labtest.Expectation{
		labtest.Ping(cli, srv).OK(), labtest.TCP(cli, srv, 80).OK(), labtest.UDP(cli, srv, 53).OK(),
		labtest.Ping(cli2, srv).OK(), labtest.TCP(cli2, srv, 80).OK(),
		labtest.Ping(srv, cli).OK(), labtest.TCP(srv, cli, 80).OK(),
	}
	direct := []labtest.Expectation{
		labtest.Ping(cli, fw).OK(), labtest.Ping(cli, oth).OK(), labtest.TCP(cli, oth, 80).OK(), labtest.Ping(srv, oth).OK(),
	}
	env.Expect(t, "a↔b through the appliance", append(through, direct...)...)
	// The appliance saw the client's packets (in and forwarded out) and the
	// server's replies (subnet b's route back), from both clients (remote
	// and same host as the appliance).
	for _, want := range [][]string{
		{labtest.IPPair(cli.Addr, srv.Addr), "ICMP echo request"},
		{labtest.IPPair(srv.Addr, cli.Addr), "ICMP echo reply"},
		{labtest.IPPair(cli2.Addr, srv.Addr), "ICMP echo request"},
		{cli.Addr + ".", " > " + srv.Addr + ".80:"},
		{srv.Addr + ".80 > " + cli.Addr + "."},
		{cli.Addr + ".", " > " + srv.Addr + ".53:"},
		{srv.Addr + ".", " > " + cli.Addr + ".80:"},
	} {
		f := env.WaitFrames(t, atFW, "appliance sees a↔b", want...)
		// In on its eth0 from the router, and forwarded out to it.
		if len(labtest.Frames(f, router+" > "+fw.MAC().String())) == 0 || len(labtest.Frames(f, fw.MAC().String()+" > "+router)) == 0 {
			t.Fatalf("appliance: %q not both received from and forwarded to the router %s:\n  %s", want, router, strings.Join(f, "\n  "))
		}
	}
	// Traffic not routed to the appliance does not touch it.
	env.NoFrames(t, atFW.Lines(), "a→c bypasses the appliance", labtest.IPPair(cli.Addr, oth.Addr))
	env.NoFrames(t, atFW.Lines(), "b→c bypasses the appliance", labtest.IPPair(srv.Addr, oth.Addr))
	// The server gets the client's packets with the client's source
	// address, from the router.
	env.WaitFrames(t, atSrv, "server sees the client's source", router+" > "+srv.MAC().String(), labtest.IPPair(cli.Addr, srv.Addr), "ICMP echo request")
	env.WaitFrames(t, atSrv, "server sees the client's source (tcp)", cli.Addr+".", " > "+srv.Addr+".80:")
	env.NoFrames(t, atSrv.Lines(), "no NAT at the appliance", labtest.IPPair(fw.Addr, srv.Addr))
	// TTL: the request and the reply each cross the appliance's kernel
	// (-1) and the implied router twice (never -1).
	if got := labtest.TTLs(t, cli, srv.Addr, 3); !labtest.AllAre(got, 63) {
		t.Errorf("a→b via the appliance: reply TTLs %v, want 63 (64 - 1 by the appliance's kernel)", got)
	}
	if got := labtest.TTLs(t, cli, oth.Addr, 3); !labtest.AllAre(got, 64) {
		t.Errorf("a→c via the implied router only: reply TTLs %v, want 64", got)
	}
	atFW.Stop()
	atSrv.Stop()

	// The check on: the routes to the appliance drop.
	setCheck(t, "t1fw", true)
	blocked := []labtest.Expectation{
		labtest.Ping(cli, srv).Blocked(), labtest.TCP(cli, srv, 80).Blocked(), labtest.UDP(cli, srv, 53).Blocked(),
		labtest.Ping(cli2, srv).Blocked(), labtest.TCP(cli2, srv, 80).Blocked(),
		labtest.Ping(srv, cli).Blocked(), labtest.TCP(srv, cli, 80).Blocked(),
	}
	env.Expect(t, "source/dest check on: a↔b dropped", append(blocked, direct...)...)
	atFW = labtest.Capture(t, fw, "icmp or tcp port 80")
	atSrv = labtest.Capture(t, srv, "icmp or tcp port 80")
	env.Expect(t, "source/dest check on: still dropped", append(blocked, direct...)...)
	lines := atFW.Stop()
	env.NoFrames(t, lines, "check on: the appliance gets nothing of a→b", labtest.IPPair(cli.Addr, srv.Addr))
	env.NoFrames(t, lines, "check on: the appliance gets nothing of a→b (tcp)", cli.Addr+".", " > "+srv.Addr+".80:")
	env.NoFrames(t, lines, "check on: the appliance gets nothing of b→a", labtest.IPPair(srv.Addr, cli.Addr))
	if len(labtest.Frames(lines, labtest.IPPair(cli.Addr, fw.Addr))) == 0 {
		t.Fatalf("check on: the appliance's own traffic is missing from its capture:\n  %s", strings.Join(lines, "\n  "))
	}
	env.NoFrames(t, atSrv.Stop(), "check on: the server gets nothing from a", labtest.IPPair(cli.Addr, srv.Addr))

	// Off again: through the appliance again.
	setCheck(t, "t1fw", false)
	env.Expect(t, "source/dest check off again: a↔b through the appliance", append(through, direct...)...)
}

// 2. Longest prefix wins: 192.168.0.0/16 → blackhole, 192.168.72.0/24 →
// the appliance (same host as the client) and 10.0.0.0/8 → blackhole
// (covering the VPC). The /24 reaches the appliance; another address of
// the /16 is dropped before it (the appliance answers for it too, but
// never sees it); the VPC's own addresses go by the local route (/16 beats
// /8). Then /16 → appliance (the other address now works: it was the route
// that dropped it), and a more specific blackhole /24 under it.
func TestLongestPrefix(t *testing.T) {
	const outA, outB, outC = "192.168.72.1", "192.168.73.1", "192.168.74.1"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t2", "t2v", "10.72.0.0/16", map[string]string{"t2a": "10.72.1.0/24", "t2c": "10.72.3.0/24"})
		p.RouteTables = append(p.RouteTables,
			table("t2-rt", "t2v", blackhole("192.168.0.0/16"), toNIC("192.168.72.0/24", "t2fw"), blackhole("10.0.0.0/8")))
		labtest.SubnetOf(p, "t2a").RouteTable = "t2-rt"
		p.NICs = append(p.NICs,
			nicAt("t2cli", "t2a", "h1", "10.72.1.10"),
			nicAt("t2oth", "t2c", "h2", "10.72.3.11"),
			appliance("t2fw", "t2c", "h1", "10.72.3.10"))
	})
	v := env.Plug(t, "t2cli", "t2oth", "t2fw")
	cli, oth, fw := v["t2cli"], v["t2oth"], v["t2fw"]
	for _, ip := range []string{outA, outB, outC} {
		addLocal(t, fw, ip) // the appliance answers for them itself
	}
	labtest.Serve(t, fw, "tcp:80")
	labtest.Serve(t, oth, "tcp:80")

	at := labtest.Capture(t, fw, "icmp or tcp port 80")
	env.Expect(t, "/24 → appliance beats /16 → blackhole; the local /16 beats /8 → blackhole",
		labtest.Ping(cli, fw).At(outA).OK(), labtest.TCP(cli, fw, 80).At(outA).OK(),
		labtest.Ping(cli, fw).At(outB).Blocked(), labtest.TCP(cli, fw, 80).At(outB).Blocked(),
		labtest.Ping(cli, fw).At(outC).Blocked(),
		labtest.Ping(cli, oth).OK(), labtest.TCP(cli, oth, 80).OK(), labtest.Ping(cli, fw).OK(),
		// the other subnet uses the main table: no route outside the VPC
		labtest.Ping(oth, fw).At(outA).Blocked())
	env.WaitFrames(t, at, "the /24 reaches the appliance", labtest.IPPair(cli.Addr, outA), "ICMP echo request")
	env.WaitFrames(t, at, "the appliance answers from the outside address", labtest.IPPair(outA, cli.Addr), "ICMP echo reply")
	lines := at.Stop()
	env.NoFrames(t, lines, "the blackholed address never reaches the appliance", outB)
	env.NoFrames(t, lines, "the blackholed address never reaches the appliance", outC)
	env.NoFrames(t, lines, "the main table has no route to the appliance", labtest.IPPair(oth.Addr, outA))

	// /16 → the appliance: what it dropped now passes.
	env.EditTable(t, "t2-rt", func(rt *model.RouteTable) { rt.Routes[0] = toNIC("192.168.0.0/16", "t2fw") })
	env.Expect(t, "/16 → appliance",
		labtest.Ping(cli, fw).At(outA).OK(), labtest.Ping(cli, fw).At(outB).OK(), labtest.TCP(cli, fw, 80).At(outB).OK(),
		labtest.Ping(cli, fw).At(outC).OK(), labtest.Ping(cli, oth).OK())

	// A more specific blackhole under /16 → appliance.
	env.EditTable(t, "t2-rt", func(rt *model.RouteTable) { rt.Routes = append(rt.Routes, blackhole("192.168.73.0/24")) })
	env.Expect(t, "/24 blackhole beats /16 → appliance",
		labtest.Ping(cli, fw).At(outB).Blocked(), labtest.TCP(cli, fw, 80).At(outB).Blocked(),
		labtest.Ping(cli, fw).At(outA).OK(), labtest.Ping(cli, fw).At(outC).OK(), labtest.Ping(cli, oth).OK())
	at = labtest.Capture(t, fw, "icmp or tcp port 80")
	env.Expect(t, "/24 blackhole: still", labtest.Ping(cli, fw).At(outB).Blocked(), labtest.Ping(cli, fw).At(outC).OK())
	lines = at.Stop()
	env.NoFrames(t, lines, "the /24 blackhole keeps its address from the appliance", outB)
	if len(labtest.Frames(lines, labtest.IPPair(cli.Addr, outC))) == 0 {
		t.Fatalf("/16 → appliance: %s not seen at the appliance:\n  %s", outC, strings.Join(lines, "\n  "))
	}
}

// 2b. A default route (0.0.0.0/0) covers every destination: → the
// appliance, any outside address reaches it (the local route still wins
// inside the VPC); → blackhole, nothing outside does.
func TestDefaultRoute(t *testing.T) {
	const out1, out2 = "192.168.76.1", "172.20.0.1"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t6", "t6v", "10.76.0.0/16", map[string]string{"t6a": "10.76.1.0/24", "t6c": "10.76.3.0/24"})
		p.RouteTables = append(p.RouteTables, table("t6-rt", "t6v", toNIC("0.0.0.0/0", "t6fw")))
		labtest.SubnetOf(p, "t6a").RouteTable = "t6-rt"
		p.NICs = append(p.NICs,
			nicAt("t6cli", "t6a", "h1", "10.76.1.10"),
			nicAt("t6oth", "t6c", "h1", "10.76.3.11"),
			appliance("t6fw", "t6c", "h2", "10.76.3.10"))
	})
	v := env.Plug(t, "t6cli", "t6oth", "t6fw")
	cli, oth, fw := v["t6cli"], v["t6oth"], v["t6fw"]
	addLocal(t, fw, out1)
	addLocal(t, fw, out2)
	at := labtest.Capture(t, fw, "icmp")
	env.Expect(t, "0.0.0.0/0 → appliance",
		labtest.Ping(cli, fw).At(out1).OK(), labtest.Ping(cli, fw).At(out2).OK(),
		labtest.Ping(cli, oth).OK(), labtest.Ping(cli, fw).OK())
	env.WaitFrames(t, at, "the default route reaches the appliance", labtest.IPPair(cli.Addr, out1), "ICMP echo request")
	at.Stop()
	env.EditTable(t, "t6-rt", func(rt *model.RouteTable) { rt.Routes[0] = blackhole("0.0.0.0/0") })
	env.Expect(t, "0.0.0.0/0 → blackhole",
		labtest.Ping(cli, fw).At(out1).Blocked(), labtest.Ping(cli, fw).At(out2).Blocked(),
		labtest.Ping(cli, oth).OK(), labtest.Ping(cli, fw).OK())
}

// 3. A blackhole route for subnet b in subnet a's table stops a→b (and the
// replies of b→a, which a's table routes too), while a reaches subnet c,
// b reaches c by its own (main) table and a's subnet stays on-link.
// Removing the route restores a↔b; adding it again stops it again.
func TestBlackhole(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t3", "t3v", "10.73.0.0/16", map[string]string{"t3a": "10.73.1.0/24", "t3b": "10.73.2.0/24", "t3c": "10.73.3.0/24"})
		p.RouteTables = append(p.RouteTables, table("t3-rt", "t3v", blackhole("10.73.2.0/24")))
		labtest.SubnetOf(p, "t3a").RouteTable = "t3-rt"
		p.NICs = append(p.NICs,
			nicAt("t3a1", "t3a", "h1", "10.73.1.10"), nicAt("t3a2", "t3a", "h2", "10.73.1.11"),
			nicAt("t3b", "t3b", "h2", "10.73.2.10"), nicAt("t3c", "t3c", "h1", "10.73.3.10"))
	})
	v := env.Plug(t, "t3a1", "t3a2", "t3b", "t3c")
	a1, a2, b, c := v["t3a1"], v["t3a2"], v["t3b"], v["t3c"]
	for _, x := range []*labtest.VM{a1, b, c} {
		labtest.Serve(t, x, "tcp:80")
	}
	others := []labtest.Expectation{
		labtest.Ping(a1, c).OK(), labtest.TCP(a1, c, 80).OK(), labtest.Ping(a2, c).OK(),
		labtest.Ping(b, c).OK(), labtest.TCP(b, c, 80).OK(), labtest.Ping(c, b).OK(),
		labtest.Ping(a1, a2).OK(), labtest.Ping(a2, a1).OK(),
	}
	blocked := []labtest.Expectation{
		labtest.Ping(a1, b).Blocked(), labtest.TCP(a1, b, 80).Blocked(), labtest.Ping(a2, b).Blocked(),
		// b's request reaches a; a's reply is routed by a's table
		labtest.Ping(b, a1).Blocked(), labtest.TCP(b, a1, 80).Blocked(),
	}
	at := labtest.Capture(t, b, "icmp or tcp port 80")
	env.Expect(t, "blackhole for b in a's table", append(blocked, others...)...)
	lines := at.Stop()
	env.NoFrames(t, lines, "nothing of a→b reaches b", labtest.IPPair(a1.Addr, b.Addr))
	env.NoFrames(t, lines, "nothing of a→b reaches b", labtest.IPPair(a2.Addr, b.Addr))
	env.NoFrames(t, lines, "nothing of a→b reaches b (tcp)", a1.Addr+".", " > "+b.Addr+".80:")
	if len(labtest.Frames(lines, labtest.IPPair(c.Addr, b.Addr), "echo request")) == 0 {
		t.Fatalf("c → b not seen at b:\n  %s", strings.Join(lines, "\n  "))
	}

	env.EditTable(t, "t3-rt", func(rt *model.RouteTable) { rt.Routes = nil })
	env.Expect(t, "blackhole removed", append([]labtest.Expectation{
		labtest.Ping(a1, b).OK(), labtest.TCP(a1, b, 80).OK(), labtest.Ping(a2, b).OK(), labtest.Ping(b, a1).OK(), labtest.TCP(b, a1, 80).OK(),
	}, others...)...)

	env.EditTable(t, "t3-rt", func(rt *model.RouteTable) { rt.Routes = append(rt.Routes, blackhole("10.73.2.0/24")) })
	env.Expect(t, "blackhole again", append(blocked, others...)...)
}

// l3RouteFlows returns the L3Route flows a host has installed for a
// destination (as its match text shows it).
func l3RouteFlows(t *testing.T, host, dst string) []string {
	t.Helper()
	flows, err := env.Controller().DumpFlows(labtest.Ctx(t), host)
	labtest.Must(t, err)
	var out []string
	for _, f := range flows {
		if f.Table == pipelines.TableL3Route && strings.Contains(f.Match.Text(), "nw_dst="+dst) {
			out = append(out, f.Text(nil))
		}
	}
	return out
}

// 4. Deleting the appliance a route targets turns the route into a
// blackhole: a→b stops (it does not fall back to the local route), the
// built policy shows the route as blackhole with the reason, and the
// client's host has the route's flow as a drop. Removing the route then
// restores the local route.
func TestTargetDeletedIsBlackhole(t *testing.T) {
	const b = "10.74.2.0/24"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t4", "t4v", "10.74.0.0/16", map[string]string{"t4a": "10.74.1.0/24", "t4b": b, "t4c": "10.74.3.0/24"})
		p.RouteTables = append(p.RouteTables, table("t4-rt", "t4v", toNIC(b, "t4fw")))
		labtest.SubnetOf(p, "t4a").RouteTable = "t4-rt"
		p.NICs = append(p.NICs,
			nicAt("t4cli", "t4a", "h1", "10.74.1.10"), nicAt("t4srv", "t4b", "h2", "10.74.2.10"),
			nicAt("t4oth", "t4c", "h1", "10.74.3.11"),
			appliance("t4fw", "t4c", "h2", "10.74.3.10"))
	})
	v := env.Plug(t, "t4cli", "t4srv", "t4oth", "t4fw")
	cli, srv, oth, fw := v["t4cli"], v["t4srv"], v["t4oth"], v["t4fw"]
	labtest.Forwarder(t, fw)
	labtest.Serve(t, srv, "udp:53")
	// a→b goes through the appliance, b→a directly: exchanges a starts
	// (the appliance sees their requests only; see
	// TestAsymmetricAppliancePath for the others).
	at := labtest.Capture(t, fw, "icmp or udp port 53")
	env.Expect(t, "a→b through the appliance",
		labtest.Ping(cli, srv).OK(), labtest.UDP(cli, srv, 53).OK(), labtest.Ping(cli, oth).OK())
	env.WaitFrames(t, at, "the appliance forwards a→b", labtest.IPPair(cli.Addr, srv.Addr), "ICMP echo request")
	at.Stop()
	if got := l3RouteFlows(t, "h1", b); len(got) != 1 || !strings.Contains(got[0], "actions=set_field") {
		t.Fatalf("h1 L3Route flows for %s: %q, want one delivering to the appliance", b, got)
	}

	// Delete the appliance: its NIC from the policy, then its VM.
	env.Update(t, func(p *model.Policy) {
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Name == "t4fw" })
	})
	labtest.Must(t, env.Lab.RemoveVM(labtest.Ctx(t), fw.Name()))
	n, err := env.Net()
	labtest.Must(t, err)
	rt := n.RouteTables["t4-rt"]
	if rt == nil || len(rt.Routes) != 1 {
		t.Fatalf("built route table t4-rt: %+v, want one route", rt)
	}
	if r := rt.Routes[0]; r.State != model.RouteBlackhole || r.NIC != nil || !strings.Contains(r.Why, "t4fw") {
		t.Fatalf("route %s after its NIC was deleted: state %q, nic %v, why %q; want blackhole because t4fw is gone",
			r.Destination, r.State, r.NIC, r.Why)
	}
	env.Expect(t, "target deleted: blackhole, no fallback to the local route",
		labtest.Ping(cli, srv).Blocked(), labtest.UDP(cli, srv, 53).Blocked(),
		labtest.Ping(srv, cli).Blocked(), // the reply is routed by a's table
		labtest.Ping(cli, oth).OK(), labtest.Ping(srv, oth).OK())
	deadline := time.Now().Add(env.Settle)
	for {
		got := l3RouteFlows(t, "h1", b)
		if len(got) == 1 && strings.HasSuffix(got[0], "actions=drop") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h1 L3Route flows for %s after the target was deleted: %q, want one drop", b, got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Remove the route: the local route takes over.
	env.EditTable(t, "t4-rt", func(rt *model.RouteTable) { rt.Routes = nil })
	env.Expect(t, "route removed: the local route",
		labtest.Ping(cli, srv).OK(), labtest.UDP(cli, srv, 53).OK(), labtest.Ping(srv, cli).OK())
}

// 5. Changing a subnet's route table takes effect without a restart: a's
// table blackholes b; re-associated with the main table, a↔b works (with
// TTL 64: the implied router does not decrement it); back, it stops.
func TestAssociationChange(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t5", "t5v", "10.75.0.0/16", map[string]string{"t5a": "10.75.1.0/24", "t5b": "10.75.2.0/24"})
		p.RouteTables = append(p.RouteTables, table("t5-rt", "t5v", blackhole("10.75.2.0/24")))
		labtest.SubnetOf(p, "t5a").RouteTable = "t5-rt"
		p.NICs = append(p.NICs, nicAt("t5a", "t5a", "h1", "10.75.1.10"), nicAt("t5b", "t5b", "h2", "10.75.2.10"))
	})
	v := env.Plug(t, "t5a", "t5b")
	a, b := v["t5a"], v["t5b"]
	labtest.Serve(t, b, "tcp:80")
	labtest.Serve(t, a, "tcp:80")
	ctl := env.Controller()
	blocked := []labtest.Expectation{labtest.Ping(a, b).Blocked(), labtest.TCP(a, b, 80).Blocked(), labtest.Ping(b, a).Blocked(), labtest.TCP(b, a, 80).Blocked()}
	open := []labtest.Expectation{labtest.Ping(a, b).OK(), labtest.TCP(a, b, 80).OK(), labtest.Ping(b, a).OK(), labtest.TCP(b, a, 80).OK()}
	env.Expect(t, "a uses t5-rt (b blackholed)", blocked...)

	associate(t, "t5a", "")
	n, err := env.Net()
	labtest.Must(t, err)
	if got := n.Subnets["t5a"].RouteTable.Name; got != model.MainTableName("t5v") {
		t.Fatalf("subnet t5a uses %s, want the main table", got)
	}
	env.Expect(t, "a uses the main table", open...)
	if got := labtest.TTLs(t, a, b.Addr, 3); !labtest.AllAre(got, 64) {
		t.Errorf("a→b through the implied router: reply TTLs %v, want 64 (never decremented)", got)
	}

	associate(t, "t5a", "t5-rt")
	env.Expect(t, "a uses t5-rt again", blocked...)
	if env.Controller() != ctl {
		t.Fatal("the controller was restarted")
	}
}

// 7. The source/destination check: a NIC with the default check cannot
// send from an address that is not its own (dropped at its port), an
// appliance (check off) can; with the appliance's check turned on, it no
// longer can. The server's group admits any source, so only the check
// decides.
func TestSourceDestCheck(t *testing.T) {
	const spoofCli, spoofFW = "10.77.1.99", "10.77.3.99"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t7", "t7v", "10.77.0.0/16", map[string]string{"t7a": "10.77.1.0/24", "t7b": "10.77.2.0/24", "t7c": "10.77.3.0/24"})
		p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{Name: "t7-open", VPC: "t7v",
			Ingress: []model.Rule{{Protocol: "all", CIDR: "0.0.0.0/0"}}, Egress: []model.Rule{model.AllEgress()}})
		srv := nicAt("t7srv", "t7b", "h1", "10.77.2.10")
		srv.SecurityGroups = []string{"t7-open"}
		p.NICs = append(p.NICs, nicAt("t7cli", "t7a", "h1", "10.77.1.10"), srv,
			appliance("t7fw", "t7c", "h2", "10.77.3.10"))
	})
	v := env.Plug(t, "t7cli", "t7srv", "t7fw")
	cli, srv, fw := v["t7cli"], v["t7srv"], v["t7fw"]
	addLocal(t, cli, spoofCli)
	addLocal(t, fw, spoofFW)
	env.Expect(t, "own addresses", labtest.Ping(cli, srv).OK(), labtest.Ping(fw, srv).OK())

	// spoofed sends a few pings from each VM's foreign address and returns
	// what the server captured meanwhile.
	spoofed := func() []string {
		at := labtest.Capture(t, srv, "icmp and (host "+spoofCli+" or host "+spoofFW+")")
		for range 3 {
			for _, s := range []struct {
				v   *labtest.VM
				src string
			}{{cli, spoofCli}, {fw, spoofFW}} {
				// Nobody owns the address: no reply comes back either way.
				_, err := s.v.Ping(labtest.Ctx(t), addr(srv.Addr), lab.PingOpts{Count: 1, Timeout: 200 * time.Millisecond, Source: addr(s.src)})
				labtest.Must(t, err)
			}
		}
		time.Sleep(200 * time.Millisecond) // let tcpdump print what arrived
		return at.Stop()
	}
	// waitFor repeats spoofed until check holds (within env.Settle), then once
	// more.
	waitFor := func(what string, check func(lines []string) string) {
		t.Helper()
		deadline := time.Now().Add(env.Settle)
		for {
			bad := check(spoofed())
			if bad == "" {
				break
			}
			if time.Now().After(deadline) {
				env.Dump(t, what)
				t.Fatalf("%s: %s", what, bad)
			}
		}
		if bad := check(spoofed()); bad != "" {
			env.Dump(t, what)
			t.Fatalf("%s (confirmation): %s", what, bad)
		}
	}
	fromCli := func(l []string) []string {
		return labtest.Frames(l, labtest.IPPair(spoofCli, srv.Addr), "echo request")
	}
	fromFW := func(l []string) []string { return labtest.Frames(l, labtest.IPPair(spoofFW, srv.Addr), "echo request") }
	waitFor("check off: the appliance may send from any address, the client not", func(l []string) string {
		switch {
		case len(fromFW(l)) == 0:
			return fmt.Sprintf("the appliance's packets from %s did not arrive: %q", spoofFW, l)
		case len(fromCli(l)) > 0:
			return fmt.Sprintf("the client's packets from %s arrived: %q", spoofCli, fromCli(l))
		}
		return ""
	})
	setCheck(t, "t7fw", true)
	waitFor("check on: neither may", func(l []string) string {
		if len(l) > 0 {
			return fmt.Sprintf("spoofed packets arrived: %q", l)
		}
		return ""
	})
	env.Expect(t, "check on: own addresses still", labtest.Ping(cli, srv).OK(), labtest.Ping(fw, srv).OK())
}

// 8. A one-way route through an appliance (AWS-style: only subnet a's
// table sends subnet b to the firewall; b's main table answers directly).
// Each packet the route sends must reach the appliance and be forwarded:
// a's TCP connections to b (the appliance sees the client's half only),
// and b's pings and connections to a (the appliance sees a's replies only).
// The appliance is in its VPC's default group, which admits everything from
// the VPC's members.
func TestAsymmetricAppliancePath(t *testing.T) {
	const b = "10.78.2.0/24"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t8", "t8v", "10.78.0.0/16", map[string]string{"t8a": "10.78.1.0/24", "t8b": b, "t8c": "10.78.3.0/24"})
		p.RouteTables = append(p.RouteTables, table("t8-rt", "t8v", toNIC(b, "t8fw")))
		labtest.SubnetOf(p, "t8a").RouteTable = "t8-rt"
		p.NICs = append(p.NICs,
			nicAt("t8cli", "t8a", "h1", "10.78.1.10"), nicAt("t8srv", "t8b", "h1", "10.78.2.10"),
			appliance("t8fw", "t8c", "h2", "10.78.3.10"))
	})
	v := env.Plug(t, "t8cli", "t8srv", "t8fw")
	cli, srv, fw := v["t8cli"], v["t8srv"], v["t8fw"]
	labtest.Forwarder(t, fw)
	labtest.Serve(t, srv, "tcp:80")
	labtest.Serve(t, cli, "tcp:80")
	at := labtest.Capture(t, fw, "icmp or tcp port 80")
	// What conntrack takes in one direction works (and proves the path).
	env.Expect(t, "a→b requests through the appliance", labtest.Ping(cli, srv).OK())
	env.WaitFrames(t, at, "the appliance forwards a→b", labtest.IPPair(cli.Addr, srv.Addr), "ICMP echo request")
	env.NoFrames(t, at.Lines(), "b answers a directly", labtest.IPPair(srv.Addr, cli.Addr))
	env.Expect(t, "one-way route through the appliance",
		labtest.TCP(cli, srv, 80).OK(), // the appliance sees SYN, ACK, data: no SYN-ACK
		labtest.Ping(srv, cli).OK(),    // the appliance sees the echo replies only
		labtest.TCP(srv, cli, 80).OK()) // the appliance sees SYN-ACK, data: no SYN
}

// 9. An appliance (check off) that answers from an address it owns but
// the policy does not (like a NAT instance or a load balancer's VIP): with
// the kernel's default ARP, its request for the gateway names that address
// as sender. An appliance may send from any source address, so its ARP
// must be answered too; otherwise it never learns the gateway and nothing
// it sends leaves, not even from its own address.
func TestApplianceARPFromOtherAddress(t *testing.T) {
	const vip = "192.168.79.1"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t9", "t9v", "10.79.0.0/16", map[string]string{"t9a": "10.79.1.0/24", "t9c": "10.79.3.0/24"})
		p.RouteTables = append(p.RouteTables, table("t9-rt", "t9v", toNIC("192.168.79.0/24", "t9fw")))
		labtest.SubnetOf(p, "t9a").RouteTable = "t9-rt"
		p.NICs = append(p.NICs, nicAt("t9cli", "t9a", "h1", "10.79.1.10"), appliance("t9fw", "t9c", "h1", "10.79.3.10"))
	})
	v := env.Plug(t, "t9cli", "t9fw")
	cli, fw := v["t9cli"], v["t9fw"]
	addLocalOnly(t, fw, vip)
	at := labtest.Capture(t, fw, "arp or icmp")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ARP at the appliance:\n  %s", strings.Join(labtest.Frames(at.Lines(), "ARP"), "\n  "))
		}
	})
	// The first packet the appliance sends is the reply from the VIP (its
	// ARP request for the gateway says "tell 192.168.79.1").
	env.Expect(t, "the appliance answers from its VIP", labtest.Ping(cli, fw).At(vip).OK())
	env.WaitFrames(t, at, "the appliance's ARP request from the VIP is answered", "Reply 10.79.3.1 is-at")
	env.WaitFrames(t, at, "the appliance's reply from the VIP", labtest.IPPair(vip, cli.Addr), "ICMP echo reply")
	env.Expect(t, "and from its own address", labtest.Ping(cli, fw).OK(), labtest.Ping(cli, fw).At(vip).OK())
}
