package secgroups

import (
	"strings"
	"testing"

	"github.com/openvpc/openvpc/internal/labtest"
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
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t1web", "t1web2", "t1cli1", "t1cli2", "t1oth1", "t1oth2")
	web, web2, cli1, cli2, oth1, oth2 := v["t1web"], v["t1web2"], v["t1cli1"], v["t1cli2"], v["t1oth1"], v["t1oth2"]
	labtest.Serve(t, web, "tcp:80", "tcp:81", "udp:53", "udp:54", "tcp:7999", "tcp:8000", "tcp:8047", "tcp:8080", "tcp:8081",
		"raw:253", "raw:254")
	labtest.Serve(t, web2, "tcp:80", "tcp:81", "udp:53", "udp:54")
	env.Expect(t, "rules of web (group peer for tcp, CIDR peers for udp and icmp)",
		// tcp 80 from group t1-client
		labtest.TCP(cli1, web, 80).OK(), labtest.TCP(cli2, web, 80).OK(),
		labtest.TCP(cli1, web, 81).Blocked(), labtest.TCP(cli2, web, 81).Blocked(),
		labtest.TCP(oth1, web, 80).Blocked(), labtest.TCP(oth2, web, 80).Blocked(),
		// udp 53 from subnet b
		labtest.UDP(cli2, web, 53).OK(), labtest.UDP(oth2, web, 53).OK(),
		labtest.UDP(cli1, web, 53).Blocked(), labtest.UDP(oth1, web, 53).Blocked(), labtest.UDP(cli2, web, 54).Blocked(),
		// icmp type 8 from subnet a
		labtest.Ping(cli1, web).OK(), labtest.Ping(oth1, web).OK(),
		labtest.Ping(cli2, web).Blocked(), labtest.Ping(oth2, web).Blocked(),
		labtest.ICMPTimestamp(cli1, web).Blocked(),
		// tcp 8000-8080 from the VPC: the range's ends and inside, not beyond
		labtest.TCP(oth2, web, 8000).OK(), labtest.TCP(oth1, web, 8047).OK(), labtest.TCP(cli2, web, 8080).OK(),
		labtest.TCP(oth2, web, 7999).Blocked(), labtest.TCP(oth1, web, 8081).Blocked(),
		// IP protocol 253 from subnet a
		labtest.RawIP(cli1, web, 253).OK(), labtest.RawIP(oth1, web, 253).OK(),
		labtest.RawIP(cli2, web, 253).Blocked(), labtest.RawIP(cli1, web, 254).Blocked(),
	)
	env.Expect(t, "rules of web2 (CIDR peer for tcp, group peers for udp and icmp)",
		// tcp 80 from subnet a
		labtest.TCP(cli1, web2, 80).OK(), labtest.TCP(oth1, web2, 80).OK(),
		labtest.TCP(cli2, web2, 80).Blocked(), labtest.TCP(oth2, web2, 80).Blocked(), labtest.TCP(cli1, web2, 81).Blocked(),
		// udp 53 from group t1-client
		labtest.UDP(cli1, web2, 53).OK(), labtest.UDP(cli2, web2, 53).OK(),
		labtest.UDP(oth1, web2, 53).Blocked(), labtest.UDP(oth2, web2, 53).Blocked(), labtest.UDP(cli2, web2, 54).Blocked(),
		// icmp type 8 from group t1-client
		labtest.Ping(cli1, web2).OK(), labtest.Ping(cli2, web2).OK(),
		labtest.Ping(oth1, web2).Blocked(), labtest.Ping(oth2, web2).Blocked(),
		labtest.ICMPTimestamp(cli2, web2).Blocked(),
	)
	// An icmp rule without a type allows other ICMP exchanges too.
	editGroup(t, "t1-web2", func(g *model.SecurityGroup) { g.Ingress[2].ICMPType = nil })
	env.Expect(t, "icmp rule of any type",
		labtest.ICMPTimestamp(cli2, web2).OK(), labtest.ICMPTimestamp(cli1, web2).OK(), labtest.Ping(cli2, web2).OK(),
		labtest.ICMPTimestamp(oth2, web2).Blocked(), labtest.Ping(oth1, web2).Blocked())
}

// 2. Replies pass without a rule for them: the clients' group has no
// ingress rules, the server's group no egress rules at all.
func TestRepliesNeedNoRule(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t2srv", "t2cli", "t2cli1", "t2open")
	srv, cli, cli1, open := v["t2srv"], v["t2cli"], v["t2cli1"], v["t2open"]
	for _, x := range []*labtest.VM{srv, cli, cli1, open} {
		labtest.Serve(t, x, "tcp:80", "udp:53")
	}
	env.Expect(t, "replies without rules",
		// Replies pass the server's egress and the clients' ingress.
		labtest.TCP(cli, srv, 80).OK(), labtest.UDP(cli, srv, 53).OK(), labtest.Ping(cli, srv).OK(),
		labtest.TCP(cli1, srv, 80).OK(), labtest.UDP(cli1, srv, 53).OK(), labtest.Ping(cli1, srv).OK(),
		// New connections the other way do not: the server has no egress
		// rule, the clients no ingress rule.
		labtest.TCP(srv, cli, 80).Blocked(), labtest.UDP(srv, cli1, 53).Blocked(), labtest.Ping(srv, cli).Blocked(),
		labtest.TCP(srv, open, 80).Blocked(), labtest.Ping(srv, open).Blocked(), // srv's egress alone
		labtest.TCP(open, cli, 80).Blocked(), labtest.UDP(open, cli1, 53).Blocked(), labtest.Ping(open, cli).Blocked(), // cli's ingress alone
		labtest.TCP(cli, open, 80).OK(), // and open really is open
	)
}

// 3. An ICMP error about an allowed flow reaches its sender, though no rule
// allows ICMP: the destination's group has no ICMP egress rule, the
// source's group no ICMP ingress rule.
func TestICMPErrorOfAllowedFlow(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t3dst", "t3src", "t3src1")
	dst, src, src1 := v["t3dst"], v["t3src"], v["t3src1"]
	labtest.Serve(t, dst, "udp:5000") // nothing listens on 5001, 5002, tcp 6000
	env.Expect(t, "ICMP errors of allowed flows",
		labtest.UDP(src, dst, 5000).OK(), labtest.UDP(src1, dst, 5000).OK(),
		// port unreachable comes back (cross host and same host)
		labtest.UDP(src, dst, 5001).Refused(), labtest.UDP(src1, dst, 5001).Refused(),
		// a TCP reset too
		labtest.TCP(src, dst, 6000).Refused(), labtest.TCP(src1, dst, 6000).Refused(),
		// not allowed: dropped before the destination could answer
		labtest.UDP(src, dst, 5002).Blocked(), labtest.UDP(src1, dst, 5002).Blocked(), labtest.TCP(src, dst, 6001).Blocked(),
		// ICMP on its own is not allowed either way
		labtest.Ping(src, dst).Blocked(), labtest.Ping(dst, src1).Blocked(),
	)
}

// 5. The default group: NICs naming no group are in their account's
// "<vpc>-default" (all ingress from its members, all egress); a group
// without rules admits and emits nothing; a new group with AllEgress emits
// everything and admits nothing.
func TestDefaultGroup(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	labtest.Must(t, err)
	if gs := n.NICs["t5d1"].Groups; len(gs) != 1 || gs[0].Name != "t5v-default" {
		t.Fatalf("t5d1 is in %v, want the default group t5v-default", gs)
	}
	v := env.Plug(t, "t5d1", "t5d2", "t5d3", "t5iso", "t5new", "t5open")
	d1, d2, d3, iso, fresh, open := v["t5d1"], v["t5d2"], v["t5d3"], v["t5iso"], v["t5new"], v["t5open"]
	for _, x := range []*labtest.VM{d1, d2, d3, iso, fresh, open} {
		labtest.Serve(t, x, "tcp:80", "udp:53", "raw:253")
	}
	env.Expect(t, "default group and groups without rules",
		// default members talk to each other, every protocol, both ways
		labtest.TCP(d1, d2, 80).OK(), labtest.UDP(d1, d2, 53).OK(), labtest.Ping(d1, d2).OK(), labtest.ICMPTimestamp(d1, d2).OK(),
		labtest.TCP(d2, d1, 80).OK(), labtest.UDP(d2, d1, 53).OK(), labtest.Ping(d2, d1).OK(),
		labtest.TCP(d1, d3, 80).OK(), labtest.Ping(d3, d1).OK(), labtest.UDP(d3, d1, 53).OK(),
		labtest.RawIP(d1, d2, 253).OK(), labtest.RawIP(d3, d1, 253).OK(), labtest.RawIP(fresh, d1, 253).Blocked(),
		// a group without rules: nothing in, nothing out
		labtest.TCP(d1, iso, 80).Blocked(), labtest.Ping(d2, iso).Blocked(), labtest.UDP(d3, iso, 53).Blocked(),
		labtest.TCP(iso, d1, 80).Blocked(), labtest.Ping(iso, d2).Blocked(), labtest.TCP(iso, open, 80).Blocked(),
		// a new group: all egress (to an open NIC), no ingress
		labtest.TCP(fresh, open, 80).OK(), labtest.UDP(fresh, open, 53).OK(), labtest.Ping(fresh, open).OK(),
		labtest.TCP(d1, fresh, 80).Blocked(), labtest.Ping(d2, fresh).Blocked(), labtest.TCP(open, fresh, 80).Blocked(),
		// the default group admits only its members
		labtest.TCP(fresh, d1, 80).Blocked(), labtest.Ping(fresh, d2).Blocked(), labtest.UDP(open, d3, 53).Blocked(),
		// and lets them out to anyone who admits them
		labtest.TCP(d2, open, 80).OK(),
	)
}

// 6. A NIC in several groups gets the union of their rules.
func TestUnionOfGroups(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t6both", "t6onlya", "t6cli", "t6cli1")
	both, onlya, cli, cli1 := v["t6both"], v["t6onlya"], v["t6cli"], v["t6cli1"]
	labtest.Serve(t, both, "tcp:80", "tcp:81", "tcp:82")
	labtest.Serve(t, onlya, "tcp:80", "tcp:81", "tcp:82")
	env.Expect(t, "union of two groups",
		labtest.TCP(cli, both, 80).OK(), labtest.TCP(cli, both, 81).OK(), labtest.TCP(cli, both, 82).Blocked(),
		labtest.TCP(cli1, both, 80).OK(), labtest.TCP(cli1, both, 81).OK(), labtest.TCP(cli1, both, 82).Blocked(),
		labtest.TCP(cli, onlya, 80).OK(), labtest.TCP(cli, onlya, 81).Blocked(),
		labtest.TCP(cli1, onlya, 80).OK(), labtest.TCP(cli1, onlya, 81).Blocked(),
		// egress is the union too: t6-b has none, t6-a all
		labtest.TCP(both, onlya, 80).OK(),
	)
	setGroups(t, "t6both", "t6-b")
	env.Expect(t, "after leaving t6-a",
		labtest.TCP(cli, both, 81).OK(), labtest.TCP(cli1, both, 81).OK(),
		labtest.TCP(cli, both, 80).Blocked(), labtest.TCP(cli1, both, 80).Blocked(), labtest.TCP(both, onlya, 80).Blocked())
}

// 7. Joining a peer group opens access within a reconcile; leaving closes
// it for new connections; a NIC created in the peer group is admitted.
func TestMembershipChurn(t *testing.T) {
	const c2nd = "10.67.1.200"
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t7srv", "t7c", "t7c1")
	srv, c, c1 := v["t7srv"], v["t7c"], v["t7c1"]
	labtest.Serve(t, srv, "tcp:80", "tcp:81")
	env.Expect(t, "no member of t7-peers",
		labtest.TCP(c, srv, 80).Blocked(), labtest.Ping(c, srv).Blocked(), labtest.TCP(c1, srv, 80).Blocked(), labtest.Ping(c1, srv).Blocked(),
		labtest.TCP(c, srv, 80).Via(c2nd).Blocked())

	setGroups(t, "t7c", "t7-base", "t7-peers")
	env.Expect(t, "t7c joined t7-peers",
		labtest.TCP(c, srv, 80).OK(), labtest.Ping(c, srv).OK(), labtest.TCP(c, srv, 81).Blocked(),
		labtest.TCP(c, srv, 80).Via(c2nd).OK(), labtest.Ping(c, srv).Via(c2nd).OK(),
		labtest.TCP(c1, srv, 80).Blocked(), labtest.Ping(c1, srv).Blocked())

	setGroups(t, "t7c1", "t7-peers")
	env.Expect(t, "t7c1 joined t7-peers",
		labtest.TCP(c1, srv, 80).OK(), labtest.Ping(c1, srv).OK(), labtest.TCP(c, srv, 80).OK())

	setGroups(t, "t7c", "t7-base")
	env.Expect(t, "t7c left t7-peers",
		labtest.TCP(c, srv, 80).Blocked(), labtest.Ping(c, srv).Blocked(), labtest.TCP(c1, srv, 80).OK(),
		labtest.TCP(c, srv, 80).Via(c2nd).Blocked())

	// A NIC created as a member of the peer group.
	env.Update(t, func(p *model.Policy) { p.NICs = append(p.NICs, nicIn("t7c2", "t7s", "h2", "t7-peers")) })
	c2 := env.Plug(t, "t7c2")["t7c2"]
	env.Expect(t, "new NIC t7c2 in t7-peers", labtest.TCP(c2, srv, 80).OK(), labtest.Ping(c2, srv).OK(), labtest.TCP(c, srv, 80).Blocked())
	// Moving it out of the peer group takes its address out of the peer set.
	env.Update(t, func(p *model.Policy) {
		if n := labtest.NICOf(p, "t7c2"); n != nil {
			n.SecurityGroups = []string{"t7-base"}
		}
	})
	env.Expect(t, "t7c2 left t7-peers", labtest.TCP(c2, srv, 80).Blocked(), labtest.TCP(c1, srv, 80).OK())
}

// 4. Sticky removal: an established connection outlives the rule or the
// membership that admitted it; new connections are refused at once.
func TestStickyRemoval(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t4srv", "t4cli", "t4cli1")
	srv, cli, cli1 := v["t4srv"], v["t4cli"], v["t4cli1"]
	labtest.Serve(t, srv, "tcp:7000", "tcp:7001", "tcp:7002")
	env.Expect(t, "before",
		labtest.TCP(cli, srv, 7000).OK(), labtest.TCP(cli1, srv, 7001).OK(), labtest.TCP(cli, srv, 7001).OK(),
		labtest.TCP(cli, srv, 7002).Blocked(), labtest.Ping(cli, srv).Blocked())

	// Each case: an established stream, a change that denies new
	// connections of its kind, then the stream must keep going — 20 more
	// lines echoed (about 2 s) after new connections are seen refused.
	sticky := func(s *labtest.Stream, what string, after ...labtest.Expectation) {
		t.Helper()
		env.Expect(t, what, after...)
		n, _ := s.State()
		got := s.WaitMore(t, n, 20)
		t.Logf("%s: %d lines echoed after new connections were refused; %s still open", what, got-n, s.Name)
	}

	s := env.OpenStream(t, cli, srv, 7000) // cross host
	editGroup(t, "t4-srv", func(g *model.SecurityGroup) { g.Ingress = g.Ingress[1:] })
	sticky(s, "ingress rule tcp 7000 removed",
		labtest.TCP(cli, srv, 7000).Blocked(), labtest.TCP(cli1, srv, 7000).Blocked(), labtest.TCP(cli, srv, 7001).OK())
	s.Close()

	s = env.OpenStream(t, cli1, srv, 7001) // same host
	setGroups(t, "t4cli1", "t4-base")
	sticky(s, "t4cli1 left t4-cli (the peer group of tcp 7001)",
		labtest.TCP(cli1, srv, 7001).Blocked(), labtest.TCP(cli, srv, 7001).OK())
	s.Close()

	s = env.OpenStream(t, cli, srv, 7001) // cross host
	editGroup(t, "t4-cli", func(g *model.SecurityGroup) { g.Egress = nil })
	sticky(s, "egress rule of t4-cli removed",
		labtest.TCP(cli, srv, 7001).Blocked(), labtest.TCP(cli1, srv, 7002).Blocked())
	s.Close()
}

// 8. In a shared VPC, a group of account B may name a group of account A as
// its peer only while A grants it to B.
func TestSharedVPCGrants(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	labtest.Must(t, err)
	if r := n.SecurityGroups["t8-b-app"].Ingress[0]; r.Inactive == "" {
		t.Fatalf("rule %s is active before the grant", r.Text())
	}
	if g := n.NICs["t8b3"].Groups; len(g) != 1 || g[0].Name != "t8v-t8b-default" {
		t.Fatalf("t8b3 is in %v, want t8v-t8b-default", g)
	}
	v := env.Plug(t, "t8a1", "t8a2", "t8b1", "t8b2", "t8a3", "t8a4", "t8b3", "t8b4")
	a1, a2, b1, b2 := v["t8a1"], v["t8a2"], v["t8b1"], v["t8b2"]
	a3, a4, b3, b4 := v["t8a3"], v["t8a4"], v["t8b3"], v["t8b4"]
	labtest.Serve(t, b1, "tcp:80", "tcp:81")
	for _, x := range []*labtest.VM{a3, a4, b3, b4} {
		labtest.Serve(t, x, "tcp:80")
	}
	env.Expect(t, "default groups of two accounts in a shared VPC",
		labtest.TCP(a3, a4, 80).OK(), labtest.Ping(a4, a3).OK(), labtest.TCP(b3, b4, 80).OK(), labtest.Ping(b4, b3).OK(),
		labtest.TCP(a3, b3, 80).Blocked(), labtest.Ping(a3, b4).Blocked(), labtest.TCP(b3, a4, 80).Blocked(), labtest.Ping(b4, a3).Blocked())
	env.Expect(t, "before the grant",
		labtest.TCP(a1, b1, 80).Blocked(), labtest.Ping(a1, b1).Blocked(), labtest.TCP(a2, b1, 80).Blocked(), labtest.Ping(a2, b1).Blocked(),
		labtest.TCP(b2, b1, 80).Blocked())

	editGroup(t, "t8-a-web", func(g *model.SecurityGroup) { g.Grants = []string{"t8b"} })
	env.Expect(t, "t8a granted t8-a-web to t8b",
		labtest.TCP(a1, b1, 80).OK(), labtest.Ping(a1, b1).OK(), labtest.TCP(a2, b1, 80).OK(), labtest.Ping(a2, b1).OK(),
		labtest.TCP(a1, b1, 81).Blocked(), labtest.TCP(b2, b1, 80).Blocked())

	s := env.OpenStream(t, a1, b1, 80)
	editGroup(t, "t8-a-web", func(g *model.SecurityGroup) { g.Grants = nil })
	env.Expect(t, "grant revoked",
		labtest.TCP(a1, b1, 80).Blocked(), labtest.Ping(a1, b1).Blocked(), labtest.TCP(a2, b1, 80).Blocked(), labtest.Ping(a2, b1).Blocked())
	// Revoking, like removing a rule, leaves established connections be.
	m, _ := s.State()
	s.WaitMore(t, m, 20)
}

// 9. Datagrams larger than the MTU travel as IP fragments; only the first
// carries the ports. Rules with ports must still admit them (conntrack
// reassembles them), and must still keep out those to other ports.
func TestFragmentedDatagrams(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
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
	v := env.Plug(t, "t9srv", "t9any", "t9cli", "t9cli1", "t9d")
	srv, anyp, cli, cli1, d := v["t9srv"], v["t9any"], v["t9cli"], v["t9cli1"], v["t9d"]
	labtest.Serve(t, srv, "udp:53", "udp:54")
	labtest.Serve(t, anyp, "udp:53")
	env.Expect(t, "fragmented datagrams",
		// rules without ports: fragments pass
		labtest.UDP(d, anyp, 53).Bytes(4000).OK(), labtest.UDP(srv, anyp, 53).Bytes(3000).OK(),
		// small datagrams under port rules
		labtest.UDP(cli, srv, 53).OK(), labtest.UDP(cli1, srv, 53).OK(), labtest.UDP(d, srv, 53).OK(),
		// fragmented ones under port rules: ingress (from the default group's all egress) ...
		labtest.UDP(d, srv, 53).Bytes(3000).OK(),
		// ... and egress and ingress, cross host and same host
		labtest.UDP(cli, srv, 53).Bytes(3000).OK(), labtest.UDP(cli1, srv, 53).Bytes(4000).OK(),
		// other ports stay closed to fragments too
		labtest.UDP(d, srv, 54).Bytes(3000).Blocked(), labtest.UDP(cli, srv, 54).Bytes(3000).Blocked(),
		labtest.UDP(cli, anyp, 55).Bytes(3000).Blocked(),
	)
}
