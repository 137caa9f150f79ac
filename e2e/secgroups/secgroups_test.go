package secgroups

import (
	"strings"
	"testing"

	"github.com/openvpc/openvpc/model"
)

// allow is a rule for proto on ports ("" = all) with a peer: a CIDR if it
// has a '/', else a security group.
func allow(proto, ports, peer string) model.Rule {
	r := model.Rule{Protocol: proto, Ports: ports}
	if strings.Contains(peer, "/") {
		r.CIDR = peer
	} else {
		r.Group = peer
	}
	return r
}

// icmpType is an icmp rule for one ICMP type.
func icmpType(typ int, peer string) model.Rule {
	r := allow("icmp", "", peer)
	r.ICMPType = intp(typ)
	return r
}

// group is a security group of vpc (of the VPC's account).
func group(name, vpc string, ingress, egress []model.Rule) model.SecurityGroup {
	return model.SecurityGroup{Name: name, VPC: vpc, Ingress: ingress, Egress: egress}
}

func rules(r ...model.Rule) []model.Rule { return r }

// allEgress is a fresh AllEgress rule list (the store pins rule IDs in place:
// groups must not share a slice).
func allEgress() []model.Rule { return rules(model.AllEgress()) }

// vpc adds an account (once), a VPC and its subnets (name → CIDR).
func vpc(p *model.Policy, account, name, cidr string, subnets map[string]string) {
	if !strings.Contains(accountNames(p), "|"+account+"|") {
		p.Accounts = append(p.Accounts, model.Account{Name: account})
	}
	p.VPCs = append(p.VPCs, model.VPC{Name: name, Account: account, CIDR: cidr})
	for s, c := range subnets {
		p.Subnets = append(p.Subnets, model.Subnet{Name: s, VPC: name, CIDR: c})
	}
}

func accountNames(p *model.Policy) string {
	var b strings.Builder
	b.WriteString("|")
	for _, a := range p.Accounts {
		b.WriteString(a.Name + "|")
	}
	return b.String()
}

// nicIn is a NIC on a host in a subnet and groups (none: the default group).
func nicIn(name, subnet, host string, groups ...string) model.NIC {
	return model.NIC{Name: name, Subnet: subnet, Host: host, SecurityGroups: groups}
}

// 1. Each rule allows exactly its protocol, ports or ICMP type, from its
// peer — a CIDR or the members of a group — on the same host and across
// hosts; everything else is dropped.
func TestRulesPerProtocolAndPeer(t *testing.T) {
	const a, b = "10.61.1.0/24", "10.61.2.0/24"
	create(t, func(p *model.Policy) {
		vpc(p, "t1", "t1v", "10.61.0.0/16", map[string]string{"t1a": a, "t1b": b})
		p.SecurityGroups = append(p.SecurityGroups,
			// web (h1): tcp 80 from the client group, udp 53 from subnet b, echo requests from subnet a,
			// a port range from the VPC, IP protocol 253 from subnet a.
			group("t1-web", "t1v", rules(allow("tcp", "80", "t1-client"), allow("udp", "53", b), icmpType(8, a),
				allow("tcp", "8000-8080", "10.61.0.0/16"), allow("253", "", a)), allEgress()),
			// web2 (h2): tcp 80 from subnet a, udp 53 and echo requests from the client group.
			group("t1-web2", "t1v", rules(allow("tcp", "80", a), allow("udp", "53", "t1-client"), icmpType(8, "t1-client")), allEgress()),
			group("t1-client", "t1v", nil, allEgress()),
			group("t1-other", "t1v", nil, allEgress()),
		)
		p.NICs = append(p.NICs,
			nicIn("t1web", "t1a", "h1", "t1-web"), nicIn("t1web2", "t1b", "h2", "t1-web2"),
			nicIn("t1cli1", "t1a", "h1", "t1-client"), nicIn("t1cli2", "t1b", "h2", "t1-client"),
			nicIn("t1oth1", "t1a", "h1", "t1-other"), nicIn("t1oth2", "t1b", "h2", "t1-other"))
	})
	v := plug(t, "t1web", "t1web2", "t1cli1", "t1cli2", "t1oth1", "t1oth2")
	web, web2, cli1, cli2, oth1, oth2 := v["t1web"], v["t1web2"], v["t1cli1"], v["t1cli2"], v["t1oth1"], v["t1oth2"]
	serve(t, web, "tcp:80", "tcp:81", "udp:53", "udp:54", "tcp:7999", "tcp:8000", "tcp:8047", "tcp:8080", "tcp:8081",
		"raw:253", "raw:254")
	serve(t, web2, "tcp:80", "tcp:81", "udp:53", "udp:54")
	expect(t, "rules of web (group peer for tcp, CIDR peers for udp and icmp)",
		// tcp 80 from group t1-client
		tcp(cli1, web, 80).is(OK), tcp(cli2, web, 80).is(OK),
		tcp(cli1, web, 81).is(Blocked), tcp(cli2, web, 81).is(Blocked),
		tcp(oth1, web, 80).is(Blocked), tcp(oth2, web, 80).is(Blocked),
		// udp 53 from subnet b
		udp(cli2, web, 53).is(OK), udp(oth2, web, 53).is(OK),
		udp(cli1, web, 53).is(Blocked), udp(oth1, web, 53).is(Blocked), udp(cli2, web, 54).is(Blocked),
		// icmp type 8 from subnet a
		ping(cli1, web).is(OK), ping(oth1, web).is(OK),
		ping(cli2, web).is(Blocked), ping(oth2, web).is(Blocked),
		icmpTimestamp(cli1, web).is(Blocked),
		// tcp 8000-8080 from the VPC: the range's ends and inside, not beyond
		tcp(oth2, web, 8000).is(OK), tcp(oth1, web, 8047).is(OK), tcp(cli2, web, 8080).is(OK),
		tcp(oth2, web, 7999).is(Blocked), tcp(oth1, web, 8081).is(Blocked),
		// IP protocol 253 from subnet a
		rawIP(cli1, web, 253).is(OK), rawIP(oth1, web, 253).is(OK),
		rawIP(cli2, web, 253).is(Blocked), rawIP(cli1, web, 254).is(Blocked),
	)
	expect(t, "rules of web2 (CIDR peer for tcp, group peers for udp and icmp)",
		// tcp 80 from subnet a
		tcp(cli1, web2, 80).is(OK), tcp(oth1, web2, 80).is(OK),
		tcp(cli2, web2, 80).is(Blocked), tcp(oth2, web2, 80).is(Blocked), tcp(cli1, web2, 81).is(Blocked),
		// udp 53 from group t1-client
		udp(cli1, web2, 53).is(OK), udp(cli2, web2, 53).is(OK),
		udp(oth1, web2, 53).is(Blocked), udp(oth2, web2, 53).is(Blocked), udp(cli2, web2, 54).is(Blocked),
		// icmp type 8 from group t1-client
		ping(cli1, web2).is(OK), ping(cli2, web2).is(OK),
		ping(oth1, web2).is(Blocked), ping(oth2, web2).is(Blocked),
		icmpTimestamp(cli2, web2).is(Blocked),
	)
	// An icmp rule without a type allows other ICMP exchanges too.
	editGroup(t, "t1-web2", func(g *model.SecurityGroup) { g.Ingress[2].ICMPType = nil })
	expect(t, "icmp rule of any type",
		icmpTimestamp(cli2, web2).is(OK), icmpTimestamp(cli1, web2).is(OK), ping(cli2, web2).is(OK),
		icmpTimestamp(oth2, web2).is(Blocked), ping(oth1, web2).is(Blocked))
}

// 2. Replies pass without a rule for them: the clients' group has no
// ingress rules, the server's group no egress rules at all.
func TestRepliesNeedNoRule(t *testing.T) {
	create(t, func(p *model.Policy) {
		vpc(p, "t2", "t2v", "10.62.0.0/16", map[string]string{"t2s": "10.62.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t2-srv", "t2v", rules(allow("tcp", "80", "t2-cli"), allow("udp", "53", "t2-cli"), allow("icmp", "", "t2-cli")), nil),
			group("t2-cli", "t2v", nil, allEgress()),
			group("t2-open", "t2v", rules(allow("all", "", "0.0.0.0/0")), allEgress()),
		)
		p.NICs = append(p.NICs,
			nicIn("t2srv", "t2s", "h1", "t2-srv"),
			nicIn("t2cli", "t2s", "h2", "t2-cli"), nicIn("t2cli1", "t2s", "h1", "t2-cli"),
			nicIn("t2open", "t2s", "h2", "t2-open"))
	})
	v := plug(t, "t2srv", "t2cli", "t2cli1", "t2open")
	srv, cli, cli1, open := v["t2srv"], v["t2cli"], v["t2cli1"], v["t2open"]
	for _, x := range []*vm{srv, cli, cli1, open} {
		serve(t, x, "tcp:80", "udp:53")
	}
	expect(t, "replies without rules",
		// Replies pass the server's egress and the clients' ingress.
		tcp(cli, srv, 80).is(OK), udp(cli, srv, 53).is(OK), ping(cli, srv).is(OK),
		tcp(cli1, srv, 80).is(OK), udp(cli1, srv, 53).is(OK), ping(cli1, srv).is(OK),
		// New connections the other way do not: the server has no egress
		// rule, the clients no ingress rule.
		tcp(srv, cli, 80).is(Blocked), udp(srv, cli1, 53).is(Blocked), ping(srv, cli).is(Blocked),
		tcp(srv, open, 80).is(Blocked), ping(srv, open).is(Blocked), // srv's egress alone
		tcp(open, cli, 80).is(Blocked), udp(open, cli1, 53).is(Blocked), ping(open, cli).is(Blocked), // cli's ingress alone
		tcp(cli, open, 80).is(OK), // and open really is open
	)
}

// 3. An ICMP error about an allowed flow reaches its sender, though no rule
// allows ICMP: the destination's group has no ICMP egress rule, the
// source's group no ICMP ingress rule.
func TestICMPErrorOfAllowedFlow(t *testing.T) {
	create(t, func(p *model.Policy) {
		vpc(p, "t3", "t3v", "10.63.0.0/16", map[string]string{"t3s": "10.63.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t3-dst", "t3v",
				rules(allow("udp", "5000-5001", "t3-src"), allow("tcp", "6000", "t3-src")),
				rules(allow("tcp", "443", "0.0.0.0/0"))),
			group("t3-src", "t3v",
				rules(allow("tcp", "22", "0.0.0.0/0")),
				rules(allow("udp", "5000-5010", "0.0.0.0/0"), allow("tcp", "", "0.0.0.0/0"))),
		)
		p.NICs = append(p.NICs,
			nicIn("t3dst", "t3s", "h1", "t3-dst"),
			nicIn("t3src", "t3s", "h2", "t3-src"), nicIn("t3src1", "t3s", "h1", "t3-src"))
	})
	v := plug(t, "t3dst", "t3src", "t3src1")
	dst, src, src1 := v["t3dst"], v["t3src"], v["t3src1"]
	serve(t, dst, "udp:5000") // nothing listens on 5001, 5002, tcp 6000
	expect(t, "ICMP errors of allowed flows",
		udp(src, dst, 5000).is(OK), udp(src1, dst, 5000).is(OK),
		// port unreachable comes back (cross host and same host)
		udp(src, dst, 5001).is(Refused), udp(src1, dst, 5001).is(Refused),
		// a TCP reset too
		tcp(src, dst, 6000).is(Refused), tcp(src1, dst, 6000).is(Refused),
		// not allowed: dropped before the destination could answer
		udp(src, dst, 5002).is(Blocked), udp(src1, dst, 5002).is(Blocked), tcp(src, dst, 6001).is(Blocked),
		// ICMP on its own is not allowed either way
		ping(src, dst).is(Blocked), ping(dst, src1).is(Blocked),
	)
}

// 5. The default group: NICs naming no group are in their account's
// "<vpc>-default" (all ingress from its members, all egress); a group
// without rules admits and emits nothing; a new group with AllEgress emits
// everything and admits nothing.
func TestDefaultGroup(t *testing.T) {
	create(t, func(p *model.Policy) {
		vpc(p, "t5", "t5v", "10.65.0.0/16", map[string]string{"t5s": "10.65.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t5-iso", "t5v", nil, nil),
			group("t5-fresh", "t5v", nil, allEgress()),
			group("t5-open", "t5v", rules(allow("all", "", "0.0.0.0/0")), nil),
		)
		p.NICs = append(p.NICs,
			nicIn("t5d1", "t5s", "h1"), nicIn("t5d2", "t5s", "h2"), nicIn("t5d3", "t5s", "h1"),
			nicIn("t5iso", "t5s", "h2", "t5-iso"), nicIn("t5new", "t5s", "h1", "t5-fresh"),
			nicIn("t5open", "t5s", "h2", "t5-open"))
	})
	n, err := env.Net()
	must(t, err)
	if gs := n.NICs["t5d1"].Groups; len(gs) != 1 || gs[0].Name != "t5v-default" {
		t.Fatalf("t5d1 is in %v, want the default group t5v-default", gs)
	}
	v := plug(t, "t5d1", "t5d2", "t5d3", "t5iso", "t5new", "t5open")
	d1, d2, d3, iso, fresh, open := v["t5d1"], v["t5d2"], v["t5d3"], v["t5iso"], v["t5new"], v["t5open"]
	for _, x := range []*vm{d1, d2, d3, iso, fresh, open} {
		serve(t, x, "tcp:80", "udp:53", "raw:253")
	}
	expect(t, "default group and groups without rules",
		// default members talk to each other, every protocol, both ways
		tcp(d1, d2, 80).is(OK), udp(d1, d2, 53).is(OK), ping(d1, d2).is(OK), icmpTimestamp(d1, d2).is(OK),
		tcp(d2, d1, 80).is(OK), udp(d2, d1, 53).is(OK), ping(d2, d1).is(OK),
		tcp(d1, d3, 80).is(OK), ping(d3, d1).is(OK), udp(d3, d1, 53).is(OK),
		rawIP(d1, d2, 253).is(OK), rawIP(d3, d1, 253).is(OK), rawIP(fresh, d1, 253).is(Blocked),
		// a group without rules: nothing in, nothing out
		tcp(d1, iso, 80).is(Blocked), ping(d2, iso).is(Blocked), udp(d3, iso, 53).is(Blocked),
		tcp(iso, d1, 80).is(Blocked), ping(iso, d2).is(Blocked), tcp(iso, open, 80).is(Blocked),
		// a new group: all egress (to an open NIC), no ingress
		tcp(fresh, open, 80).is(OK), udp(fresh, open, 53).is(OK), ping(fresh, open).is(OK),
		tcp(d1, fresh, 80).is(Blocked), ping(d2, fresh).is(Blocked), tcp(open, fresh, 80).is(Blocked),
		// the default group admits only its members
		tcp(fresh, d1, 80).is(Blocked), ping(fresh, d2).is(Blocked), udp(open, d3, 53).is(Blocked),
		// and lets them out to anyone who admits them
		tcp(d2, open, 80).is(OK),
	)
}

// 6. A NIC in several groups gets the union of their rules.
func TestUnionOfGroups(t *testing.T) {
	create(t, func(p *model.Policy) {
		vpc(p, "t6", "t6v", "10.66.0.0/16", map[string]string{"t6s": "10.66.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t6-a", "t6v", rules(allow("tcp", "80", "10.66.0.0/16")), allEgress()),
			group("t6-b", "t6v", rules(allow("tcp", "81", "t6-cli")), nil),
			group("t6-cli", "t6v", nil, allEgress()),
		)
		p.NICs = append(p.NICs,
			nicIn("t6both", "t6s", "h1", "t6-a", "t6-b"), nicIn("t6onlya", "t6s", "h2", "t6-a"),
			nicIn("t6cli", "t6s", "h2", "t6-cli"), nicIn("t6cli1", "t6s", "h1", "t6-cli"))
	})
	v := plug(t, "t6both", "t6onlya", "t6cli", "t6cli1")
	both, onlya, cli, cli1 := v["t6both"], v["t6onlya"], v["t6cli"], v["t6cli1"]
	serve(t, both, "tcp:80", "tcp:81", "tcp:82")
	serve(t, onlya, "tcp:80", "tcp:81", "tcp:82")
	expect(t, "union of two groups",
		tcp(cli, both, 80).is(OK), tcp(cli, both, 81).is(OK), tcp(cli, both, 82).is(Blocked),
		tcp(cli1, both, 80).is(OK), tcp(cli1, both, 81).is(OK), tcp(cli1, both, 82).is(Blocked),
		tcp(cli, onlya, 80).is(OK), tcp(cli, onlya, 81).is(Blocked),
		tcp(cli1, onlya, 80).is(OK), tcp(cli1, onlya, 81).is(Blocked),
		// egress is the union too: t6-b has none, t6-a all
		tcp(both, onlya, 80).is(OK),
	)
	setGroups(t, "t6both", "t6-b")
	expect(t, "after leaving t6-a",
		tcp(cli, both, 81).is(OK), tcp(cli1, both, 81).is(OK),
		tcp(cli, both, 80).is(Blocked), tcp(cli1, both, 80).is(Blocked), tcp(both, onlya, 80).is(Blocked))
}

// 7. Joining a peer group opens access within a reconcile; leaving closes
// it for new connections; a NIC created in the peer group is admitted.
func TestMembershipChurn(t *testing.T) {
	const c2nd = "10.67.1.200"
	create(t, func(p *model.Policy) {
		vpc(p, "t7", "t7v", "10.67.0.0/16", map[string]string{"t7s": "10.67.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t7-srv", "t7v", rules(allow("tcp", "80", "t7-peers"), allow("icmp", "", "t7-peers")), allEgress()),
			group("t7-peers", "t7v", nil, allEgress()),
			group("t7-base", "t7v", nil, allEgress()),
		)
		p.NICs = append(p.NICs,
			nicIn("t7srv", "t7s", "h1", "t7-srv"),
			nicIn("t7c", "t7s", "h2", "t7-base"), nicIn("t7c1", "t7s", "h1", "t7-base"))
		p.NICs[len(p.NICs)-2].SecondaryIPs = []string{c2nd} // peers are all addresses of the members
	})
	v := plug(t, "t7srv", "t7c", "t7c1")
	srv, c, c1 := v["t7srv"], v["t7c"], v["t7c1"]
	serve(t, srv, "tcp:80", "tcp:81")
	expect(t, "no member of t7-peers",
		tcp(c, srv, 80).is(Blocked), ping(c, srv).is(Blocked), tcp(c1, srv, 80).is(Blocked), ping(c1, srv).is(Blocked),
		tcp(c, srv, 80).via(c2nd).is(Blocked))

	setGroups(t, "t7c", "t7-base", "t7-peers")
	expect(t, "t7c joined t7-peers",
		tcp(c, srv, 80).is(OK), ping(c, srv).is(OK), tcp(c, srv, 81).is(Blocked),
		tcp(c, srv, 80).via(c2nd).is(OK), ping(c, srv).via(c2nd).is(OK),
		tcp(c1, srv, 80).is(Blocked), ping(c1, srv).is(Blocked))

	setGroups(t, "t7c1", "t7-peers")
	expect(t, "t7c1 joined t7-peers",
		tcp(c1, srv, 80).is(OK), ping(c1, srv).is(OK), tcp(c, srv, 80).is(OK))

	setGroups(t, "t7c", "t7-base")
	expect(t, "t7c left t7-peers",
		tcp(c, srv, 80).is(Blocked), ping(c, srv).is(Blocked), tcp(c1, srv, 80).is(OK),
		tcp(c, srv, 80).via(c2nd).is(Blocked))

	// A NIC created as a member of the peer group.
	update(t, func(p *model.Policy) { p.NICs = append(p.NICs, nicIn("t7c2", "t7s", "h2", "t7-peers")) })
	c2 := plug(t, "t7c2")["t7c2"]
	expect(t, "new NIC t7c2 in t7-peers", tcp(c2, srv, 80).is(OK), ping(c2, srv).is(OK), tcp(c, srv, 80).is(Blocked))
	// Moving it out of the peer group takes its address out of the peer set.
	update(t, func(p *model.Policy) {
		if n := nicOf(p, "t7c2"); n != nil {
			n.SecurityGroups = []string{"t7-base"}
		}
	})
	expect(t, "t7c2 left t7-peers", tcp(c2, srv, 80).is(Blocked), tcp(c1, srv, 80).is(OK))
}

// 4. Sticky removal: an established connection outlives the rule or the
// membership that admitted it; new connections are refused at once.
func TestStickyRemoval(t *testing.T) {
	create(t, func(p *model.Policy) {
		vpc(p, "t4", "t4v", "10.64.0.0/16", map[string]string{"t4s": "10.64.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t4-srv", "t4v", rules(allow("tcp", "7000", "t4-cli"), allow("tcp", "7001", "t4-cli")), allEgress()),
			group("t4-cli", "t4v", nil, rules(allow("tcp", "7000-7010", "10.64.0.0/16"))),
			group("t4-base", "t4v", nil, allEgress()),
		)
		p.NICs = append(p.NICs,
			nicIn("t4srv", "t4s", "h1", "t4-srv"),
			nicIn("t4cli", "t4s", "h2", "t4-cli"), nicIn("t4cli1", "t4s", "h1", "t4-cli"))
	})
	v := plug(t, "t4srv", "t4cli", "t4cli1")
	srv, cli, cli1 := v["t4srv"], v["t4cli"], v["t4cli1"]
	serve(t, srv, "tcp:7000", "tcp:7001", "tcp:7002")
	expect(t, "before",
		tcp(cli, srv, 7000).is(OK), tcp(cli1, srv, 7001).is(OK), tcp(cli, srv, 7001).is(OK),
		tcp(cli, srv, 7002).is(Blocked), ping(cli, srv).is(Blocked))

	// Each case: an established stream, a change that denies new
	// connections of its kind, then the stream must keep going — 20 more
	// lines echoed (about 2 s) after new connections are seen refused.
	sticky := func(s *stream, what string, after ...expectation) {
		t.Helper()
		expect(t, what, after...)
		n, _ := s.state()
		got := s.waitMore(t, n, 20)
		t.Logf("%s: %d lines echoed after new connections were refused; %s still open", what, got-n, s.name)
	}

	s := openStream(t, cli, srv, 7000) // cross host
	editGroup(t, "t4-srv", func(g *model.SecurityGroup) { g.Ingress = g.Ingress[1:] })
	sticky(s, "ingress rule tcp 7000 removed",
		tcp(cli, srv, 7000).is(Blocked), tcp(cli1, srv, 7000).is(Blocked), tcp(cli, srv, 7001).is(OK))
	s.p.stop()

	s = openStream(t, cli1, srv, 7001) // same host
	setGroups(t, "t4cli1", "t4-base")
	sticky(s, "t4cli1 left t4-cli (the peer group of tcp 7001)",
		tcp(cli1, srv, 7001).is(Blocked), tcp(cli, srv, 7001).is(OK))
	s.p.stop()

	s = openStream(t, cli, srv, 7001) // cross host
	editGroup(t, "t4-cli", func(g *model.SecurityGroup) { g.Egress = nil })
	sticky(s, "egress rule of t4-cli removed",
		tcp(cli, srv, 7001).is(Blocked), tcp(cli1, srv, 7002).is(Blocked))
	s.p.stop()
}

// 8. In a shared VPC, a group of account B may name a group of account A as
// its peer only while A grants it to B.
func TestSharedVPCGrants(t *testing.T) {
	create(t, func(p *model.Policy) {
		p.Accounts = append(p.Accounts, model.Account{Name: "t8a"}, model.Account{Name: "t8b"})
		p.VPCs = append(p.VPCs, model.VPC{Name: "t8v", Account: "t8a", CIDR: "10.68.0.0/16", Shared: true})
		p.Subnets = append(p.Subnets, model.Subnet{Name: "t8s", VPC: "t8v", CIDR: "10.68.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			group("t8-a-web", "t8v", nil, allEgress()),
			model.SecurityGroup{Name: "t8-b-app", VPC: "t8v", Account: "t8b",
				Ingress: rules(allow("tcp", "80", "t8-a-web"), allow("icmp", "", "t8-a-web")), Egress: allEgress()},
			model.SecurityGroup{Name: "t8-b-cli", VPC: "t8v", Account: "t8b", Egress: allEgress()},
		)
		b1 := nicIn("t8b1", "t8s", "h2", "t8-b-app")
		b1.Account = "t8b"
		b2 := nicIn("t8b2", "t8s", "h1", "t8-b-cli")
		b2.Account = "t8b"
		p.NICs = append(p.NICs, nicIn("t8a1", "t8s", "h1", "t8-a-web"), nicIn("t8a2", "t8s", "h2", "t8-a-web"), b1, b2)
		// In their accounts' default groups (t8v-default, t8v-t8b-default).
		b3, b4 := nicIn("t8b3", "t8s", "h2"), nicIn("t8b4", "t8s", "h1")
		b3.Account, b4.Account = "t8b", "t8b"
		p.NICs = append(p.NICs, nicIn("t8a3", "t8s", "h1"), nicIn("t8a4", "t8s", "h2"), b3, b4)
	})
	n, err := env.Net()
	must(t, err)
	if r := n.SecurityGroups["t8-b-app"].Ingress[0]; r.Inactive == "" {
		t.Fatalf("rule %s is active before the grant", r.Text())
	}
	if g := n.NICs["t8b3"].Groups; len(g) != 1 || g[0].Name != "t8v-t8b-default" {
		t.Fatalf("t8b3 is in %v, want t8v-t8b-default", g)
	}
	v := plug(t, "t8a1", "t8a2", "t8b1", "t8b2", "t8a3", "t8a4", "t8b3", "t8b4")
	a1, a2, b1, b2 := v["t8a1"], v["t8a2"], v["t8b1"], v["t8b2"]
	a3, a4, b3, b4 := v["t8a3"], v["t8a4"], v["t8b3"], v["t8b4"]
	serve(t, b1, "tcp:80", "tcp:81")
	for _, x := range []*vm{a3, a4, b3, b4} {
		serve(t, x, "tcp:80")
	}
	expect(t, "default groups of two accounts in a shared VPC",
		tcp(a3, a4, 80).is(OK), ping(a4, a3).is(OK), tcp(b3, b4, 80).is(OK), ping(b4, b3).is(OK),
		tcp(a3, b3, 80).is(Blocked), ping(a3, b4).is(Blocked), tcp(b3, a4, 80).is(Blocked), ping(b4, a3).is(Blocked))
	expect(t, "before the grant",
		tcp(a1, b1, 80).is(Blocked), ping(a1, b1).is(Blocked), tcp(a2, b1, 80).is(Blocked), ping(a2, b1).is(Blocked),
		tcp(b2, b1, 80).is(Blocked))

	editGroup(t, "t8-a-web", func(g *model.SecurityGroup) { g.Grants = []string{"t8b"} })
	expect(t, "t8a granted t8-a-web to t8b",
		tcp(a1, b1, 80).is(OK), ping(a1, b1).is(OK), tcp(a2, b1, 80).is(OK), ping(a2, b1).is(OK),
		tcp(a1, b1, 81).is(Blocked), tcp(b2, b1, 80).is(Blocked))

	s := openStream(t, a1, b1, 80)
	editGroup(t, "t8-a-web", func(g *model.SecurityGroup) { g.Grants = nil })
	expect(t, "grant revoked",
		tcp(a1, b1, 80).is(Blocked), ping(a1, b1).is(Blocked), tcp(a2, b1, 80).is(Blocked), ping(a2, b1).is(Blocked))
	// Revoking, like removing a rule, leaves established connections be.
	m, _ := s.state()
	s.waitMore(t, m, 20)
}

// 9. Datagrams larger than the MTU travel as IP fragments; only the first
// carries the ports. Rules with ports must still admit them (conntrack
// reassembles them), and must still keep out those to other ports.
func TestFragmentedDatagrams(t *testing.T) {
	create(t, func(p *model.Policy) {
		vpc(p, "t9", "t9v", "10.69.0.0/16", map[string]string{"t9s": "10.69.1.0/24"})
		p.SecurityGroups = append(p.SecurityGroups,
			// ports on both ends: udp 53 in at the server, udp 53 out at the client
			group("t9-srv", "t9v", rules(allow("udp", "53", "10.69.0.0/16")), allEgress()),
			group("t9-cli", "t9v", nil, rules(allow("udp", "53", "10.69.0.0/16"), allow("udp", "54", "10.69.0.0/16"))),
			// no ports: all udp from the VPC
			group("t9-any", "t9v", rules(allow("udp", "", "10.69.0.0/16")), allEgress()),
		)
		p.NICs = append(p.NICs,
			nicIn("t9srv", "t9s", "h1", "t9-srv"), nicIn("t9any", "t9s", "h2", "t9-any"),
			nicIn("t9cli", "t9s", "h2", "t9-cli"), nicIn("t9cli1", "t9s", "h1", "t9-cli"),
			nicIn("t9d", "t9s", "h2"))
	})
	v := plug(t, "t9srv", "t9any", "t9cli", "t9cli1", "t9d")
	srv, anyp, cli, cli1, d := v["t9srv"], v["t9any"], v["t9cli"], v["t9cli1"], v["t9d"]
	serve(t, srv, "udp:53", "udp:54")
	serve(t, anyp, "udp:53")
	expect(t, "fragmented datagrams",
		// rules without ports: fragments pass
		udp(d, anyp, 53).bytes(4000).is(OK), udp(srv, anyp, 53).bytes(3000).is(OK),
		// small datagrams under port rules
		udp(cli, srv, 53).is(OK), udp(cli1, srv, 53).is(OK), udp(d, srv, 53).is(OK),
		// fragmented ones under port rules: ingress (from the default group's all egress) ...
		udp(d, srv, 53).bytes(3000).is(OK),
		// ... and egress and ingress, cross host and same host
		udp(cli, srv, 53).bytes(3000).is(OK), udp(cli1, srv, 53).bytes(4000).is(OK),
		// other ports stay closed to fragments too
		udp(d, srv, 54).bytes(3000).is(Blocked), udp(cli, srv, 54).bytes(3000).is(Blocked),
		udp(cli, anyp, 55).bytes(3000).is(Blocked),
	)
}
