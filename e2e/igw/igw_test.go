package igw

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

const far = labpolicy.FarInternetHost

// 1. A subnet routed to the internet gateway reaches the internet and is
// reached at its public IP; the internet sees the public address, the VM
// the internet host's real one (it never sees its public address). A
// subnet without the route does neither, even with a public IP; a NIC
// without a public IP does not get out. Security groups still decide at
// the VM's host. A VM on the gateway host itself works too. No TTL is
// lost.
func TestPublicSubnet(t *testing.T) {
	const pubA, pubB, pubD, unused = "203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.99"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i1", "10.81.0.0/16", "10.81.1.0/24", "10.81.2.0/24")
		p.NICs = append(p.NICs,
			nic("i1", "i1a", "pub", "h1", "10.81.1.10"),
			nic("i1", "i1b", "priv", "h2", "10.81.2.10"),
			nic("i1", "i1c", "pub", "h2", "10.81.1.11"),
			nic("i1", "i1d", "pub", "gw", "10.81.1.12"))
		p.PublicIPs = append(p.PublicIPs, public("i1", "i1a", 11), public("i1", "i1b", 12), public("i1", "i1d", 13))
	})
	v := env.Plug(t, "i1a", "i1b", "i1c", "i1d")
	a, b, c, d := v["i1a"], v["i1b"], v["i1c"], v["i1d"]
	inet := env.Internet(t)
	labtest.Serve(t, inet, "tcp:80", "udp:53")
	for _, vm := range []*labtest.VM{a, b, c, d} {
		labtest.Serve(t, vm, "tcp:80")
	}
	atInet := labtest.Capture(t, inet, "icmp")
	atA := labtest.Capture(t, a, "icmp")
	env.Expect(t, "public subnet with public IPs: both ways; others: neither",
		labtest.Ping(a, inet).At(far).OK(), labtest.TCP(a, inet, 80).At(far).OK(), labtest.UDP(a, inet, 53).At(router).OK(),
		labtest.Ping(a, inet).At(router).OK(),
		labtest.Ping(inet, a).At(pubA).OK(), labtest.TCP(inet, a, 80).At(pubA).OK(),
		// a VM on the gateway host
		labtest.Ping(d, inet).At(far).OK(), labtest.TCP(d, inet, 80).At(far).OK(),
		labtest.Ping(inet, d).At(pubD).OK(), labtest.TCP(inet, d, 80).At(pubD).OK(),
		// its security group admits TCP 80 only
		labtest.TCP(inet, a, 81).At(pubA).Blocked(),
		// private subnet, public IP: nothing
		labtest.Ping(b, inet).At(far).Blocked(), labtest.TCP(b, inet, 80).At(far).Blocked(),
		labtest.Ping(inet, b).At(pubB).Blocked(), labtest.TCP(inet, b, 80).At(pubB).Blocked(),
		// public subnet, no public IP: nothing out
		labtest.Ping(c, inet).At(far).Blocked(), labtest.TCP(c, inet, 80).At(far).Blocked(),
		// an address of the pool nobody has
		labtest.Ping(inet, a).At(unused).Blocked(),
		// inside the VPC nothing changes
		labtest.Ping(a, b).OK(), labtest.Ping(c, d).OK())
	env.WaitFrames(t, atInet, "the internet sees a's public address", labtest.IPPair(pubA, far), "ICMP echo request")
	env.WaitFrames(t, atA, "a sees the internet host's real address", labtest.IPPair(router, a.Addr), "ICMP echo request")
	env.WaitFrames(t, atA, "a's replies come from the far host's address", labtest.IPPair(far, a.Addr), "ICMP echo reply")
	lines := atInet.Stop()
	for _, private := range []string{a.Addr, b.Addr, c.Addr, d.Addr} {
		env.NoFrames(t, lines, "no private address reaches the internet", private+" >")
	}
	env.NoFrames(t, atA.Stop(), "a never sees its public address", pubA)
	// No TTL is lost on the way out and back (the far host answers from
	// the internet namespace itself, no router in between).
	if got := labtest.TTLs(t, a, far, 3); !labtest.AllAre(got, 64) {
		t.Errorf("a → internet: reply TTLs %v, want 64", got)
	}
	// The gateway host reports its resolved router and the addresses it serves.
	st := env.Controller().Status()
	for _, h := range st.Hosts {
		if h.Name != "gw" {
			continue
		}
		if h.Gateway == nil || h.Gateway.NextHopMAC == "" || h.Gateway.Pinned || h.Gateway.UplinkPort == 0 ||
			!strings.Contains(strings.Join(h.Gateway.PublicIPs, ","), pubA) {
			t.Errorf("gateway status: %+v", h.Gateway)
		}
	}
}

// 2. Between two public IPs of one VPC the packets go through the gateway,
// as in AWS: a VM pinging another's public IP is seen from its own public
// address; private addresses still go straight.
func TestHairpin(t *testing.T) {
	const pubA, pubB = "203.0.113.21", "203.0.113.22"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i2", "10.82.0.0/16", "10.82.1.0/24", "10.82.2.0/24")
		p.NICs = append(p.NICs, nic("i2", "i2a", "pub", "h1", "10.82.1.10"), nic("i2", "i2b", "pub", "h2", "10.82.1.11"))
		p.PublicIPs = append(p.PublicIPs, public("i2", "i2a", 21), public("i2", "i2b", 22))
	})
	v := env.Plug(t, "i2a", "i2b")
	a, b := v["i2a"], v["i2b"]
	labtest.Serve(t, b, "tcp:80")
	atB := labtest.Capture(t, b, "icmp or tcp port 80")
	atA := labtest.Capture(t, a, "icmp")
	env.Expect(t, "a ↔ b's public IP", labtest.Ping(a, b).At(pubB).OK(), labtest.TCP(a, b, 80).At(pubB).OK(),
		labtest.Ping(b, a).At(pubA).OK(), labtest.Ping(a, b).OK())
	env.WaitFrames(t, atB, "b sees a's public address", labtest.IPPair(pubA, b.Addr), "ICMP echo request")
	env.WaitFrames(t, atB, "b sees a's public address (tcp)", pubA+".", " > "+b.Addr+".80:")
	env.WaitFrames(t, atA, "a's reply comes from b's public address", labtest.IPPair(pubB, a.Addr), "ICMP echo reply")
	env.WaitFrames(t, atB, "the private path stays private", labtest.IPPair(a.Addr, b.Addr), "ICMP echo request")
}

// 3. Changes take effect live: detaching the gateway turns its routes into
// blackholes and stops the traffic, reattaching restores it; a public IP
// moved to another NIC takes its traffic along; a subnet moved to a table
// without the gateway route goes private.
func TestGatewayChanges(t *testing.T) {
	const pub = "203.0.113.31"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i3", "10.83.0.0/16", "10.83.1.0/24", "10.83.2.0/24")
		p.NICs = append(p.NICs, nic("i3", "i3a", "pub", "h1", "10.83.1.10"), nic("i3", "i3b", "pub", "h2", "10.83.1.11"))
		p.PublicIPs = append(p.PublicIPs, public("i3", "i3a", 31))
	})
	v := env.Plug(t, "i3a", "i3b")
	a, b := v["i3a"], v["i3b"]
	inet := env.Internet(t)
	labtest.Serve(t, inet, "tcp:80")
	env.Expect(t, "attached", labtest.Ping(a, inet).At(far).OK(), labtest.TCP(a, inet, 80).At(far).OK(),
		labtest.Ping(inet, a).At(pub).OK(), labtest.Ping(b, inet).At(far).Blocked())

	setGateway(t, "i3-igw", "")
	n, err := env.Net()
	labtest.Must(t, err)
	if r := n.RouteTables["i3-pub"].Routes[0]; r.State != model.RouteBlackhole || !strings.Contains(r.Why, "not attached") {
		t.Fatalf("route to a detached gateway: %+v", r)
	}
	env.Expect(t, "detached", labtest.Ping(a, inet).At(far).Blocked(), labtest.TCP(a, inet, 80).At(far).Blocked(),
		labtest.Ping(inet, a).At(pub).Blocked(), labtest.Ping(a, b).OK())
	setGateway(t, "i3-igw", "i3v")
	env.Expect(t, "attached again", labtest.Ping(a, inet).At(far).OK(), labtest.Ping(inet, a).At(pub).OK())

	// The public IP moves from a to b.
	env.Update(t, func(p *model.Policy) { publicOf(p, "i3a-pub").NIC = "i3b" })
	atB := labtest.Capture(t, b, "icmp")
	env.Expect(t, "moved to b", labtest.Ping(b, inet).At(far).OK(), labtest.Ping(inet, b).At(pub).OK(),
		labtest.Ping(a, inet).At(far).Blocked())
	env.WaitFrames(t, atB, "b gets the public IP's traffic", labtest.IPPair(router, b.Addr), "ICMP echo request")

	// The subnet goes private (main table), then public again.
	env.Update(t, func(p *model.Policy) { labtest.SubnetOf(p, "i3pub").RouteTable = "" })
	env.Expect(t, "private subnet", labtest.Ping(b, inet).At(far).Blocked(), labtest.Ping(inet, b).At(pub).Blocked(),
		labtest.Ping(a, b).OK())
	env.Update(t, func(p *model.Policy) { labtest.SubnetOf(p, "i3pub").RouteTable = "i3-pub" })
	env.Expect(t, "public again", labtest.Ping(b, inet).At(far).OK(), labtest.Ping(inet, b).At(pub).OK())
}

// 4. Longest prefix: 198.51.100.0/24 → a firewall appliance beats
// 0.0.0.0/0 → the gateway; the appliance forwards (ip_forward, check off)
// from its own subnet, whose table sends it on to the gateway; the far
// host (192.0.2.10, only the /0) goes straight. With the appliance's check
// on, the /24 is dropped.
func TestApplianceBeforeGateway(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i4", "10.84.0.0/16", "10.84.1.0/24", "10.84.2.0/24")
		p.Subnets = append(p.Subnets, model.Subnet{Name: "i4dmz", VPC: "i4v", CIDR: "10.84.3.0/24", RouteTable: "i4-dmz"})
		p.RouteTables = append(p.RouteTables, model.RouteTable{Name: "i4-dmz", VPC: "i4v",
			Routes: []model.Route{{Destination: "0.0.0.0/0", Gateway: "i4-igw"}}})
		rt := labtest.TableOf(p, "i4-pub")
		rt.Routes = append(rt.Routes, model.Route{Destination: "198.51.100.0/24", NIC: "i4fw"})
		fw := nic("i4", "i4fw", "dmz", "h2", "10.84.3.10")
		off := false
		fw.SourceDestCheck = &off
		p.NICs = append(p.NICs, nic("i4", "i4a", "pub", "h1", "10.84.1.10"), fw)
		p.PublicIPs = append(p.PublicIPs, public("i4", "i4a", 41))
	})
	v := env.Plug(t, "i4a", "i4fw")
	a, fw := v["i4a"], v["i4fw"]
	labtest.Forwarder(t, fw)
	inet := env.Internet(t)
	labtest.Serve(t, inet, "tcp:80")
	atFW := labtest.Capture(t, fw, "icmp or tcp port 80")
	env.Expect(t, "the /24 through the appliance, the rest straight",
		labtest.Ping(a, inet).At(router).OK(), labtest.TCP(a, inet, 80).At(router).OK(),
		labtest.Ping(a, inet).At(far).OK())
	env.WaitFrames(t, atFW, "a → router crosses the appliance", labtest.IPPair(a.Addr, router), "ICMP echo request")
	lines := atFW.Stop()
	env.NoFrames(t, lines, "the far host does not cross the appliance", far)
	// The reply comes straight back from the gateway (not through the
	// appliance), and nothing on its way decrements the TTL.
	if got := labtest.TTLs(t, a, router, 3); !labtest.AllAre(got, 64) {
		t.Errorf("a → router: reply TTLs %v, want 64", got)
	}
	setCheck(t, "i4fw", true)
	env.Expect(t, "the appliance's check on: the /24 is dropped",
		labtest.Ping(a, inet).At(router).Blocked(), labtest.TCP(a, inet, 80).At(router).Blocked(),
		labtest.Ping(a, inet).At(far).OK())
}

func setGateway(t *testing.T, name, vpc string) {
	t.Helper()
	env.Update(t, func(p *model.Policy) {
		for i := range p.InternetGateways {
			if p.InternetGateways[i].Name == name {
				p.InternetGateways[i].VPC = vpc
			}
		}
	})
}

func setCheck(t *testing.T, nic string, on bool) {
	t.Helper()
	env.Update(t, func(p *model.Policy) {
		n := labtest.NICOf(p, nic)
		if on {
			n.SourceDestCheck = nil
		} else {
			off := false
			n.SourceDestCheck = &off
		}
	})
}

// 5. Gateway hosts back each other up: when the host serving a public IP
// fails (its ovs-vswitchd stops), the other gateway host takes the address
// over — the senders tunnel to it, it announces the address with a
// gratuitous ARP and answers for it — and traffic both ways resumes; when
// the first comes back, the address returns to it.
func TestGatewayFailover(t *testing.T) {
	const pub = "203.0.113.51"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i5", "10.85.0.0/16", "10.85.1.0/24", "10.85.2.0/24")
		p.NICs = append(p.NICs, nic("i5", "i5a", "pub", "h1", "10.85.1.10"))
		p.PublicIPs = append(p.PublicIPs, public("i5", "i5a", 51))
	})
	a := env.Plug(t, "i5a")["i5a"]
	inet := env.Internet(t)
	env.Expect(t, "before", labtest.Ping(a, inet).At(far).OK(), labtest.Ping(inet, a).At(pub).OK())
	serving := func() string {
		for _, h := range env.Controller().Status().Hosts {
			if h.Gateway != nil && strings.Contains(","+strings.Join(h.Gateway.PublicIPs, ",")+",", ","+pub+",") {
				return h.Name
			}
		}
		return ""
	}
	first := serving()
	other := map[string]string{"gw": "gw2", "gw2": "gw"}[first]
	if other == "" {
		t.Fatalf("no gateway host serves %s", pub)
	}
	h := env.Lab.Host(first)
	labtest.Must(t, h.StopVswitchd())
	stopped, down := time.Now(), true
	t.Cleanup(func() {
		if down { // the test failed before bringing it back
			h.StartVswitchd(context.Background())
		}
	})
	env.Expect(t, first+" down: through "+other, labtest.Ping(a, inet).At(far).OK(), labtest.Ping(inet, a).At(pub).OK(),
		labtest.TCP(inet, a, 80).At(pub).Refused()) // its group admits TCP 80; nothing listens: the VM's reset comes back
	t.Logf("failover to %s: traffic both ways within %v of %s stopping", other, time.Since(stopped).Round(time.Millisecond), first)
	if got := serving(); got != other {
		t.Errorf("with %s down, %s is served by %q", first, pub, got)
	}
	labtest.Must(t, h.StartVswitchd(labtest.Ctx(t)))
	down = false
	deadline := time.Now().Add(env.Settle)
	for serving() != first {
		if time.Now().After(deadline) {
			t.Fatalf("%s back: %s still served by %q", first, pub, serving())
		}
		time.Sleep(100 * time.Millisecond)
	}
	env.Expect(t, first+" back", labtest.Ping(a, inet).At(far).OK(), labtest.Ping(inet, a).At(pub).OK())
}

// 6. ICMP errors cross the gateway both ways: a closed UDP port on the
// internet host answers the VM with "port unreachable" (its inner header
// quotes the public address, which the gateway translates back), and one on
// the VM answers the internet host likewise.
func TestICMPErrorsThroughGateway(t *testing.T) {
	const pub = "203.0.113.61"
	env.Create(t, func(p *model.Policy) {
		vpc(p, "i6", "10.86.0.0/16", "10.86.1.0/24", "10.86.2.0/24")
		g := &p.SecurityGroups[len(p.SecurityGroups)-1]
		g.Ingress = append(g.Ingress, model.Rule{Protocol: "udp", Ports: "7000", CIDR: "0.0.0.0/0"})
		p.NICs = append(p.NICs, nic("i6", "i6a", "pub", "h1", "10.86.1.10"))
		p.PublicIPs = append(p.PublicIPs, public("i6", "i6a", 61))
	})
	a := env.Plug(t, "i6a")["i6a"]
	inet := env.Internet(t)
	env.Expect(t, "port unreachable both ways through the gateway",
		labtest.UDP(a, inet, 7000).At(far).Refused(), labtest.UDP(inet, a, 7000).At(pub).Refused())
}
