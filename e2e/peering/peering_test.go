package peering

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// 1. A (10.81/16) and B (10.82/16), each subnet with a route to the other
// VPC through peering p1, each side's group admitting the other VPC's
// CIDR (and its own). Requested but not accepted: nothing crosses (the
// routes are blackholes) while each VPC works inside. Accepted: ping, TCP
// and UDP both ways, across hosts (a1 on h1, b1 on h2) and on one host (a2
// and b1 on h2), with no TTL decrement. B's route removed: A's requests
// still reach b1 (A's route is in force) but its replies have no route
// back, so A gets nothing, and b1 cannot start anything to A. The route
// back: both ways again.
func TestAcceptAndRoutes(t *testing.T) {
	const cidrA, cidrB = "10.81.0.0/16", "10.82.0.0/16"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "p1a", "p1va", cidrA, "p1sa", "10.81.1.0/24")
		vpc(p, "p1b", "p1vb", cidrB, "p1sb", "10.82.1.0/24")
		p.Peerings = append(p.Peerings, peering("p1", "p1va", "p1vb", false))
		p.RouteTables = append(p.RouteTables,
			table("p1-rt-a", "p1va", viaPeering(cidrB, "p1")),
			table("p1-rt-b", "p1vb", viaPeering(cidrA, "p1")))
		labtest.SubnetOf(p, "p1sa").RouteTable = "p1-rt-a"
		labtest.SubnetOf(p, "p1sb").RouteTable = "p1-rt-b"
		p.SecurityGroups = append(p.SecurityGroups,
			group("p1-sg-a", "p1va", fromCIDR(cidrA), fromCIDR(cidrB)),
			group("p1-sg-b", "p1vb", fromCIDR(cidrB), fromCIDR(cidrA)))
		p.NICs = append(p.NICs,
			nicAt("p1a1", "p1sa", "h1", "10.81.1.10", "p1-sg-a"),
			nicAt("p1a2", "p1sa", "h2", "10.81.1.11", "p1-sg-a"),
			nicAt("p1b1", "p1sb", "h2", "10.82.1.10", "p1-sg-b"),
			nicAt("p1b2", "p1sb", "h1", "10.82.1.11", "p1-sg-b"))
	})
	v := env.Plug(t, "p1a1", "p1a2", "p1b1", "p1b2")
	a1, a2, b1, b2 := v["p1a1"], v["p1a2"], v["p1b1"], v["p1b2"]
	for _, x := range []*labtest.VM{a1, a2, b1, b2} {
		labtest.Serve(t, x, "tcp:80", "udp:53")
	}
	inside := []labtest.Expectation{
		labtest.Ping(a1, a2).OK(), labtest.TCP(a1, a2, 80).OK(),
		labtest.Ping(b1, b2).OK(), labtest.TCP(b2, b1, 80).OK(),
	}
	across := []labtest.Expectation{
		labtest.Ping(a1, b1).OK(), labtest.TCP(a1, b1, 80).OK(), labtest.UDP(a1, b1, 53).OK(),
		labtest.Ping(b1, a1).OK(), labtest.TCP(b1, a1, 80).OK(), labtest.UDP(b1, a1, 53).OK(),
		labtest.Ping(a2, b1).OK(), labtest.TCP(a2, b1, 80).OK(), // same host (h2)
		labtest.Ping(b2, a1).OK(), labtest.TCP(b2, a1, 80).OK(), // same host (h1)
		labtest.TCP(a2, b2, 80).OK(), labtest.TCP(b1, a2, 80).OK(),
	}
	blocked := func(exps []labtest.Expectation) []labtest.Expectation {
		out := make([]labtest.Expectation, len(exps))
		for i, e := range exps {
			out[i] = e.Probe.Blocked()
		}
		return out
	}

	n, err := env.Net()
	labtest.Must(t, err)
	if r := n.RouteTables["p1-rt-a"].Routes[0]; r.State != model.RouteBlackhole || !strings.Contains(r.Why, "not accepted") {
		t.Fatalf("route of an unaccepted peering: state %s (%s), want a blackhole (not accepted)", r.State, r.Why)
	}
	at := labtest.Capture(t, b1, "icmp or tcp port 80")
	env.Expect(t, "requested, not accepted: nothing crosses", append(blocked(across), inside...)...)
	env.NoFrames(t, at.Stop(), "not accepted: nothing of A reaches b1", labtest.IPPair(a1.Addr, b1.Addr))

	accept(t, "p1", true)
	env.Expect(t, "accepted, routes on both sides: both ways", append(across, inside...)...)
	// The implied router does not decrement TTL, across the peering either.
	if got := labtest.TTLs(t, a1, b1.Addr, 3); !labtest.AllAre(got, 64) {
		t.Errorf("a1 → b1 across the peering: reply TTLs %v, want 64", got)
	}
	if got := labtest.TTLs(t, b2, a1.Addr, 3); !labtest.AllAre(got, 64) {
		t.Errorf("b2 → a1 across the peering (same host): reply TTLs %v, want 64", got)
	}

	// B's route gone: one-sided.
	env.EditTable(t, "p1-rt-b", func(rt *model.RouteTable) { rt.Routes = nil })
	atB := labtest.Capture(t, b1, "icmp")
	atA := labtest.Capture(t, a1, "icmp")
	env.Expect(t, "B's route removed: no round trip either way", append(blocked(across), inside...)...)
	// The requests of A still arrive (A's route is in force), b1 answers,
	// and the answers never reach a1: they have no route.
	env.WaitFrames(t, atB, "A's requests still reach b1", labtest.IPPair(a1.Addr, b1.Addr), "ICMP echo request")
	env.WaitFrames(t, atB, "b1 answers them", labtest.IPPair(b1.Addr, a1.Addr), "ICMP echo reply")
	linesB, linesA := atB.Stop(), atA.Stop()
	env.NoFrames(t, linesA, "b1's replies have no route to a1", labtest.IPPair(b1.Addr, a1.Addr))
	env.NoFrames(t, linesB, "b1 gets no reply to its own pings (none reach a1)", labtest.IPPair(a1.Addr, b1.Addr), "ICMP echo reply")

	// And back.
	env.EditTable(t, "p1-rt-b", func(rt *model.RouteTable) { rt.Routes = []model.Route{viaPeering(cidrA, "p1")} })
	env.Expect(t, "B's route back: both ways again", append(across, inside...)...)
}

// 2. Peerings are not transitive: A (10.83/16)–B (10.84/16) and B–C
// (10.85/16), both accepted. A routes B and C to the A–B peering, B routes
// A and C to their peerings, C routes A and B to the B–C peering; every
// group admits all three CIDRs. A↔B and B↔C work; A→C does not (its
// packets, put into B by the A–B peering, do not go on to C), nor C→A (put
// into B by the B–C peering), and c never sees a packet of a.
func TestNotTransitive(t *testing.T) {
	const cidrA, cidrB, cidrC = "10.83.0.0/16", "10.84.0.0/16", "10.85.0.0/16"
	all := []model.Rule{fromCIDR(cidrA), fromCIDR(cidrB), fromCIDR(cidrC)}
	env.Create(t, func(p *model.Policy) {
		vpc(p, "p2a", "p2va", cidrA, "p2sa", "10.83.1.0/24")
		vpc(p, "p2b", "p2vb", cidrB, "p2sb", "10.84.1.0/24")
		vpc(p, "p2c", "p2vc", cidrC, "p2sc", "10.85.1.0/24")
		p.Peerings = append(p.Peerings, peering("p2ab", "p2va", "p2vb", true), peering("p2bc", "p2vb", "p2vc", true))
		p.RouteTables = append(p.RouteTables,
			table("p2-rt-a", "p2va", viaPeering(cidrB, "p2ab"), viaPeering(cidrC, "p2ab")),
			table("p2-rt-b", "p2vb", viaPeering(cidrA, "p2ab"), viaPeering(cidrC, "p2bc")),
			table("p2-rt-c", "p2vc", viaPeering(cidrB, "p2bc"), viaPeering(cidrA, "p2bc")))
		labtest.SubnetOf(p, "p2sa").RouteTable = "p2-rt-a"
		labtest.SubnetOf(p, "p2sb").RouteTable = "p2-rt-b"
		labtest.SubnetOf(p, "p2sc").RouteTable = "p2-rt-c"
		p.SecurityGroups = append(p.SecurityGroups,
			group("p2-sg-a", "p2va", all...), group("p2-sg-b", "p2vb", all...), group("p2-sg-c", "p2vc", all...))
		p.NICs = append(p.NICs,
			nicAt("p2a", "p2sa", "h1", "10.83.1.10", "p2-sg-a"),
			nicAt("p2b", "p2sb", "h2", "10.84.1.10", "p2-sg-b"),
			nicAt("p2c", "p2sc", "h1", "10.85.1.10", "p2-sg-c"),  // a's host
			nicAt("p2c2", "p2sc", "h2", "10.85.1.11", "p2-sg-c")) // b's host
	})
	v := env.Plug(t, "p2a", "p2b", "p2c", "p2c2")
	a, b, c, c2 := v["p2a"], v["p2b"], v["p2c"], v["p2c2"]
	for _, x := range []*labtest.VM{a, b, c, c2} {
		labtest.Serve(t, x, "tcp:80")
	}
	atC := labtest.Capture(t, c, "icmp or tcp port 80")
	atC2 := labtest.Capture(t, c2, "icmp or tcp port 80")
	env.Expect(t, "A–B and B–C peered: A↔B and B↔C, never A↔C",
		labtest.Ping(a, b).OK(), labtest.TCP(a, b, 80).OK(), labtest.Ping(b, a).OK(), labtest.TCP(b, a, 80).OK(),
		labtest.Ping(b, c).OK(), labtest.TCP(b, c, 80).OK(), labtest.Ping(c, b).OK(), labtest.TCP(c2, b, 80).OK(), labtest.Ping(b, c2).OK(),
		labtest.Ping(c, c2).OK(),
		labtest.Ping(a, c).Blocked(), labtest.TCP(a, c, 80).Blocked(),
		labtest.Ping(a, c2).Blocked(), labtest.TCP(a, c2, 80).Blocked(),
		labtest.Ping(c, a).Blocked(), labtest.TCP(c, a, 80).Blocked(),
		labtest.Ping(c2, a).Blocked(), labtest.TCP(c2, a, 80).Blocked())
	env.NoFrames(t, atC.Stop(), "no packet of a reaches c (same host)", a.Addr+" > "+c.Addr)
	env.NoFrames(t, atC2.Stop(), "no packet of a reaches c2 (other host)", a.Addr+" > "+c2.Addr)
}

// 3. A rule naming a group of the peered VPC: B's server is in p3-web,
// which admits tcp 80 from A's group p3-cli (and nothing else). A and B
// belong to two accounts, so the rule is inactive until A's account grants
// p3-cli to B's: then A's client in p3-cli reaches tcp 80 (not 81, not
// ping); another A NIC in A's default group does not, though its route
// works (it reaches b2, whose group admits A's CIDR); put into p3-cli, it
// does.
func TestGroupOfPeeredVPC(t *testing.T) {
	const cidrA, cidrB = "10.86.0.0/16", "10.87.0.0/16"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "p3a", "p3va", cidrA, "p3sa", "10.86.1.0/24")
		vpc(p, "p3b", "p3vb", cidrB, "p3sb", "10.87.1.0/24")
		p.Peerings = append(p.Peerings, peering("p3", "p3vb", "p3va", true)) // B requested this time
		p.RouteTables = append(p.RouteTables,
			table("p3-rt-a", "p3va", viaPeering(cidrB, "p3")),
			table("p3-rt-b", "p3vb", viaPeering(cidrA, "p3")))
		labtest.SubnetOf(p, "p3sa").RouteTable = "p3-rt-a"
		labtest.SubnetOf(p, "p3sb").RouteTable = "p3-rt-b"
		p.SecurityGroups = append(p.SecurityGroups,
			group("p3-cli", "p3va"),
			group("p3-web", "p3vb", model.Rule{Protocol: "tcp", Ports: "80", Group: "p3-cli"}),
			group("p3-open", "p3vb", fromCIDR(cidrA)))
		p.NICs = append(p.NICs,
			nicAt("p3cli", "p3sa", "h1", "10.86.1.10", "p3-cli"),
			nicAt("p3oth", "p3sa", "h1", "10.86.1.11"), // A's default group
			nicAt("p3web", "p3sb", "h2", "10.87.1.10", "p3-web"),
			nicAt("p3b2", "p3sb", "h2", "10.87.1.11", "p3-open"))
	})
	rule := func(inForce bool) {
		t.Helper()
		n, err := env.Net()
		labtest.Must(t, err)
		r := n.SecurityGroups["p3-web"].Ingress[0]
		if r.Peer == nil || r.Peer.Name != "p3-cli" || (r.Inactive == "") != inForce {
			t.Fatalf("p3-web's rule naming p3-cli: peer %v, inactive %q; want p3-cli, in force %v", r.Peer != nil, r.Inactive, inForce)
		}
	}
	rule(false)
	v := env.Plug(t, "p3cli", "p3oth", "p3web", "p3b2")
	cli, oth, web, b2 := v["p3cli"], v["p3oth"], v["p3web"], v["p3b2"]
	labtest.Serve(t, web, "tcp:80", "tcp:81")
	labtest.Serve(t, b2, "tcp:80")
	labtest.Serve(t, oth, "tcp:80")
	env.Expect(t, "p3-cli not granted to B's account: the rule naming it admits nothing",
		labtest.TCP(cli, web, 80).Blocked(), labtest.TCP(oth, web, 80).Blocked(),
		labtest.TCP(oth, b2, 80).OK(), labtest.TCP(cli, b2, 80).OK())

	env.Update(t, func(p *model.Policy) {
		for i := range p.SecurityGroups {
			if p.SecurityGroups[i].Name == "p3-cli" {
				p.SecurityGroups[i].Grants = []string{"p3b"}
			}
		}
	})
	rule(true)
	env.Expect(t, "granted: tcp 80 from the peered VPC's group only",
		labtest.TCP(cli, web, 80).OK(),
		labtest.TCP(cli, web, 81).Blocked(), labtest.Ping(cli, web).Blocked(),
		labtest.TCP(oth, web, 80).Blocked(), labtest.Ping(oth, web).Blocked(),
		labtest.TCP(oth, b2, 80).OK(), labtest.TCP(cli, b2, 80).OK(), // the route works for both
		labtest.TCP(web, oth, 80).Blocked()) // A's default group admits only its members

	env.Update(t, func(p *model.Policy) { labtest.NICOf(p, "p3oth").SecurityGroups = []string{"p3-cli"} })
	env.Expect(t, "the other NIC in the client group: it reaches tcp 80 too",
		labtest.TCP(cli, web, 80).OK(), labtest.TCP(oth, web, 80).OK(),
		labtest.TCP(oth, web, 81).Blocked(), labtest.Ping(oth, web).Blocked())
}

// 4. Overlapping VPCs cannot peer: X (10.88.0.0/16) and Y (10.88.0.0/20)
// overlap; Z (10.89.0.0/16) is peered with X. A peering of X and Y does not
// build (field peer_vpc of the peering); the guarded update refuses it and
// writes nothing. Written anyway (the controller's own reload path), the
// controller rejects the file and keeps the previous policy: its status
// says why, X↔Z, X and Y inside still work, and a change that removes the
// peering is taken again.
func TestOverlapRefused(t *testing.T) {
	const cidrX, cidrY, cidrZ = "10.88.0.0/16", "10.88.0.0/20", "10.89.0.0/16"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "p4x", "p4vx", cidrX, "p4sx", "10.88.1.0/24")
		vpc(p, "p4y", "p4vy", cidrY, "p4sy", "10.88.1.0/24")
		vpc(p, "p4z", "p4vz", cidrZ, "p4sz", "10.89.1.0/24")
		p.Peerings = append(p.Peerings, peering("p4xz", "p4vx", "p4vz", true))
		p.RouteTables = append(p.RouteTables,
			table("p4-rt-x", "p4vx", viaPeering(cidrZ, "p4xz")),
			table("p4-rt-z", "p4vz", viaPeering(cidrX, "p4xz")))
		labtest.SubnetOf(p, "p4sx").RouteTable = "p4-rt-x"
		labtest.SubnetOf(p, "p4sz").RouteTable = "p4-rt-z"
		p.SecurityGroups = append(p.SecurityGroups,
			group("p4-sg-x", "p4vx", fromCIDR(cidrX), fromCIDR(cidrZ)),
			group("p4-sg-z", "p4vz", fromCIDR(cidrZ), fromCIDR(cidrX)))
		p.NICs = append(p.NICs,
			nicAt("p4x1", "p4sx", "h1", "10.88.1.10", "p4-sg-x"),
			nicAt("p4x2", "p4sx", "h2", "10.88.1.11", "p4-sg-x"),
			nicAt("p4y1", "p4sy", "h1", "10.88.1.20"),
			nicAt("p4y2", "p4sy", "h2", "10.88.1.21"),
			nicAt("p4z1", "p4sz", "h2", "10.89.1.10", "p4-sg-z"))
	})
	v := env.Plug(t, "p4x1", "p4x2", "p4y1", "p4y2", "p4z1")
	x1, x2, y1, y2, z1 := v["p4x1"], v["p4x2"], v["p4y1"], v["p4y2"], v["p4z1"]
	for _, x := range []*labtest.VM{x1, x2, y1, y2, z1} {
		labtest.Serve(t, x, "tcp:80")
	}
	working := []labtest.Expectation{
		labtest.Ping(x1, z1).OK(), labtest.TCP(x1, z1, 80).OK(), labtest.Ping(z1, x2).OK(), labtest.TCP(z1, x1, 80).OK(),
		labtest.Ping(x1, x2).OK(), labtest.Ping(y1, y2).OK(), labtest.TCP(y2, y1, 80).OK(),
		// Overlapping VPCs stay apart: the address of y1 is not in X.
		labtest.Ping(x1, y1).Blocked(), labtest.TCP(x1, y1, 80).Blocked(), labtest.Ping(y2, x2).Blocked(),
	}
	env.Expect(t, "before", working...)

	overlap := func(p *model.Policy) {
		p.Peerings = append(p.Peerings, peering("p4xy", "p4vx", "p4vy", true))
	}
	// model.Build: one error, on the peering's peer_vpc.
	try := env.Policy()
	overlap(try)
	_, err := model.Build(try)
	if err == nil {
		t.Fatal("a peering of overlapping VPCs builds")
	}
	fes := model.FieldErrors(err)
	if len(fes) != 1 || fes[0].Kind != "peering" || fes[0].Name != "p4xy" || fes[0].Field != "peer_vpc" || !strings.Contains(fes[0].Msg, "overlaps") {
		t.Fatalf("build error %q: want one error on peering p4xy's peer_vpc (overlaps): %+v", err, fes)
	}
	// The guarded update refuses it and writes nothing.
	before := env.Policy()
	if err := env.TryUpdate(overlap); err == nil || !errors.As(err, new(*model.FieldError)) {
		t.Fatalf("the guarded update took the overlapping peering: %v", err)
	}
	if peeringOf(env.Policy(), "p4xy") != nil || len(env.Policy().Peerings) != len(before.Peerings) {
		t.Fatal("the refused update changed the policy")
	}

	// Written anyway: the controller rejects the file and keeps the
	// previous policy. Whatever happens, the next test gets a valid file.
	ctl := env.Controller()
	if ctl == nil {
		t.Fatal("no in-process controller")
	}
	gen := ctl.Status().PolicyGeneration
	removeOverlap := func() error {
		return env.UpdatePolicy(func(p *model.Policy) {
			p.Peerings = slices.DeleteFunc(p.Peerings, func(o model.Peering) bool { return o.Name == "p4xy" })
		})
	}
	t.Cleanup(func() {
		if peeringOf(env.Policy(), "p4xy") != nil {
			if err := removeOverlap(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	labtest.Must(t, env.UpdatePolicy(overlap))
	deadline := time.Now().Add(env.Settle)
	for {
		st := ctl.Status()
		if strings.Contains(st.PolicyError, "p4xy") && strings.Contains(st.PolicyError, "peer_vpc") {
			if st.PolicyGeneration != gen {
				t.Fatalf("policy generation %d → %d: the controller installed a policy it should reject", gen, st.PolicyGeneration)
			}
			t.Logf("controller: %s", st.PolicyError)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller reports no error for the overlapping peering within %v (status error %q, generation %d → %d)",
				env.Settle, st.PolicyError, gen, st.PolicyGeneration)
		}
		time.Sleep(50 * time.Millisecond)
	}
	env.Expect(t, "overlapping peering rejected: the lab works as before", working...)

	labtest.Must(t, removeOverlap())
	deadline = time.Now().Add(env.Settle)
	for {
		st := ctl.Status()
		if st.PolicyError == "" && st.PolicyGeneration > gen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller did not take the fixed policy within %v (status error %q, generation %d → %d)",
				env.Settle, st.PolicyError, gen, st.PolicyGeneration)
		}
		time.Sleep(50 * time.Millisecond)
	}
	env.Expect(t, "after the fix", working...)
}
