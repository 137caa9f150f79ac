// Package demo holds the behaviour checks of the demo lab
// (examples/demo.yaml): each sends real packets between VM namespaces
// through the hosts' OVS and says what it proved. `openvpc demo` prints them
// as a table; the lab integration tests run them as subtests.
package demo

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/openvpc/openvpc/internal/frames"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// Check is one observable behaviour.
type Check struct {
	Name string
	Run  func(ctx context.Context, e *labrun.Env) (detail string, err error)
}

// Checks returns the demo's checks in the order they must run (the restart
// checks come last).
func Checks() []Check {
	return []Check{
		{"ping same subnet, same host", pingCheck("a-web1", "10.0.1.11")},
		{"ping same subnet, cross host", pingCheck("a-web1", "10.0.1.12")},
		{"ping across subnets, same host", pingCheck("a-web1", "10.0.2.11")},
		{"ping across subnets, cross host", pingCheck("a-web1", "10.0.2.10")},
		{"ping secondary IP", pingCheck("a-web3", "10.0.1.50")},
		{"TTL not decremented across subnets", ttlKept},
		{"same IP in the other VPC is never reached", vpcIsolation},
		{"no frame of one VPC reaches the other", noCrossVPCFrames},
		{"ARP: used IP answered with its MAC, unused not", arpResponder},
		{"gateway answers ping for its own subnet only", gatewayPing},
		{"broadcast and multicast reach nobody", bumDropped},
		{"promiscuous VM sees only its own traffic", promiscuous},
		{"spoofed source MAC dropped", spoofMAC},
		{"spoofed source IP dropped", spoofIP},
		{"forged ARP reply dropped", forgedARP},
		{"DHCP server reply from a VM dropped", dhcpServerReply},
		{"secondary IP added live is reachable and usable", secondaryIPLive},
		{"security group admits only its rule's port", securityGroup},
		{"public IP: out through the internet gateway, seen from its public address", internetGateway},
		{"controller restart loses no packet (10 ms ping)", controllerRestart},
		{"ovs-vswitchd restart: forwarding restored", vswitchdRestart},
	}
}

func vm(e *labrun.Env, name string) (*lab.VM, error) {
	v := e.Lab.VM(name)
	if v == nil {
		return nil, fmt.Errorf("no VM %q in the lab", name)
	}
	return v, nil
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func ping(ctx context.Context, e *labrun.Env, from, to string, n int) (lab.PingResult, error) {
	v, err := vm(e, from)
	if err != nil {
		return lab.PingResult{}, err
	}
	return v.Ping(ctx, addr(to), lab.PingOpts{Count: n, Interval: 50 * time.Millisecond, Timeout: time.Second})
}

func pingCheck(from, to string) func(context.Context, *labrun.Env) (string, error) {
	return func(ctx context.Context, e *labrun.Env) (string, error) {
		r, err := ping(ctx, e, from, to, 3)
		if err != nil {
			return "", err
		}
		if r.Received != r.Sent {
			return "", fmt.Errorf("%s → %s: %d/%d replies", from, to, r.Received, r.Sent)
		}
		return fmt.Sprintf("%s → %s: %d/%d", from, to, r.Received, r.Sent), nil
	}
}

func ttlKept(ctx context.Context, e *labrun.Env) (string, error) {
	same, err := ping(ctx, e, "a-web1", "10.0.1.12", 1)
	if err != nil || len(same.TTLs) != 1 {
		return "", fmt.Errorf("same-subnet ping: %v %+v", err, same)
	}
	other, err := ping(ctx, e, "a-web1", "10.0.2.10", 1)
	if err != nil || len(other.TTLs) != 1 {
		return "", fmt.Errorf("cross-subnet ping: %v %+v", err, other)
	}
	if same.TTLs[0] != other.TTLs[0] {
		return "", fmt.Errorf("reply TTL %d across subnets, %d in the same subnet", other.TTLs[0], same.TTLs[0])
	}
	return fmt.Sprintf("reply TTL %d in both cases", same.TTLs[0]), nil
}

// incoming captures frames arriving at a VM (not those it sends).
func incoming(ctx context.Context, v *lab.VM, filter string) (*lab.Capture, error) {
	f := "not ether src " + v.MAC().String()
	if filter != "" {
		f += " and (" + filter + ")"
	}
	return v.Capture(ctx, f)
}

func vpcIsolation(ctx context.Context, e *labrun.Env) (string, error) {
	// acme's a-web2 and globex's g-web2 both have 10.0.1.11.
	aweb2, err := vm(e, "a-web2")
	if err != nil {
		return "", err
	}
	capA, err := incoming(ctx, aweb2, "icmp")
	if err != nil {
		return "", err
	}
	r, err := ping(ctx, e, "g-web1", "10.0.1.11", 3)
	lines := capA.Stop()
	if err != nil {
		return "", err
	}
	if r.Received != r.Sent {
		return "", fmt.Errorf("g-web1 → 10.0.1.11 (g-web2): %d/%d replies", r.Received, r.Sent)
	}
	if len(lines) > 0 {
		return "", fmt.Errorf("acme's a-web2 received globex traffic: %s", lines[0])
	}
	// 10.0.1.12 is used in acme only: from globex it must not answer.
	r, err = ping(ctx, e, "g-web1", "10.0.1.12", 2)
	if err != nil {
		return "", err
	}
	if r.Received != 0 {
		return "", fmt.Errorf("globex reached acme's 10.0.1.12")
	}
	return "globex reaches its own 10.0.1.11, never acme's; acme-only 10.0.1.12 unreachable from globex", nil
}

func noCrossVPCFrames(ctx context.Context, e *labrun.Env) (string, error) {
	var caps []*lab.Capture
	var names []string
	for _, n := range []string{"g-web1", "g-web2", "g-app1"} {
		v, err := vm(e, n)
		if err != nil {
			return "", err
		}
		c, err := incoming(ctx, v, "")
		if err != nil {
			return "", err
		}
		caps, names = append(caps, c), append(names, n)
	}
	// acme traffic between every pair, including to the addresses globex also uses.
	for _, p := range [][2]string{{"a-web1", "10.0.1.11"}, {"a-web1", "10.0.1.12"}, {"a-web1", "10.0.2.10"}, {"a-app1", "10.0.1.10"}, {"a-web3", "10.0.2.11"}} {
		if _, err := ping(ctx, e, p[0], p[1], 2); err != nil {
			for _, c := range caps {
				c.Stop()
			}
			return "", err
		}
	}
	for i, c := range caps {
		if lines := c.Stop(); len(lines) > 0 {
			return "", fmt.Errorf("globex VM %s saw %d frames during acme traffic, e.g. %s", names[i], len(lines), lines[0])
		}
	}
	return "tcpdump on every globex VM saw nothing during acme pings", nil
}

func macOf(e *labrun.Env, nic string) (string, error) {
	n, err := e.Net()
	if err != nil {
		return "", err
	}
	ni := n.NICs[nic]
	if ni == nil {
		return "", fmt.Errorf("no NIC %q", nic)
	}
	return ni.MAC.String(), nil
}

func arpResponder(ctx context.Context, e *labrun.Env) (string, error) {
	v, err := vm(e, "a-web1")
	if err != nil {
		return "", err
	}
	want, err := macOf(e, "a-web3")
	if err != nil {
		return "", err
	}
	got, ok := v.ARPing(ctx, addr("10.0.1.12"))
	if !ok || got != want {
		return "", fmt.Errorf("ARP for 10.0.1.12: got %q (ok=%v), want %s", got, ok, want)
	}
	if m, ok := v.ARPing(ctx, addr("10.0.1.99")); ok {
		return "", fmt.Errorf("ARP for unused 10.0.1.99 answered by %s", m)
	}
	n, _ := e.Net()
	gw, ok := v.ARPing(ctx, addr("10.0.1.1"))
	if !ok || gw != n.VPCs["acme-vpc"].RouterMAC.String() {
		return "", fmt.Errorf("ARP for gateway: %q (ok=%v)", gw, ok)
	}
	return fmt.Sprintf("10.0.1.12 → %s, gateway → %s, 10.0.1.99 → no reply", got, gw), nil
}

func gatewayPing(ctx context.Context, e *labrun.Env) (string, error) {
	r, err := ping(ctx, e, "a-web1", "10.0.1.1", 2)
	if err != nil {
		return "", err
	}
	if r.Received != 2 {
		return "", fmt.Errorf("own gateway 10.0.1.1: %d/2 replies", r.Received)
	}
	r, err = ping(ctx, e, "a-web1", "10.0.2.1", 2)
	if err != nil {
		return "", err
	}
	if r.Received != 0 {
		return "", fmt.Errorf("other subnet's gateway 10.0.2.1 answered")
	}
	return "10.0.1.1 answers a-web1; 10.0.2.1 does not", nil
}

// sendAndWatch sends frame from one VM and reports what the watchers saw.
func sendAndWatch(ctx context.Context, e *labrun.Env, from string, frame []byte, filter string, watchers ...string) (map[string][]string, error) {
	src, err := vm(e, from)
	if err != nil {
		return nil, err
	}
	caps := map[string]*lab.Capture{}
	stopAll := func() map[string][]string {
		out := map[string][]string{}
		for n, c := range caps {
			out[n] = c.Stop()
		}
		return out
	}
	for _, w := range watchers {
		v, err := vm(e, w)
		if err != nil {
			stopAll()
			return nil, err
		}
		c, err := incoming(ctx, v, filter)
		if err != nil {
			stopAll()
			return nil, err
		}
		caps[w] = c
	}
	for i := 0; i < 3; i++ {
		if err := src.SendFrame(ctx, frame); err != nil {
			stopAll()
			return nil, err
		}
	}
	time.Sleep(300 * time.Millisecond)
	return stopAll(), nil
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// udpFrame builds a UDP frame from a-web1's identity (overridable) to a-web2.
func udpFrame(e *labrun.Env, srcMAC string, srcIP string, sport, dport uint16, payload string) ([]byte, error) {
	dst, err := macOf(e, "a-web2")
	if err != nil {
		return nil, err
	}
	ip := frames.IPv4(addr(srcIP), addr("10.0.1.11"), 17, frames.UDP(addr(srcIP), addr("10.0.1.11"), sport, dport, []byte(payload)))
	return frames.Ethernet(mustMAC(dst), mustMAC(srcMAC), frames.TypeIPv4, ip), nil
}

// spoofPair sends a control frame (must arrive) then a spoofed one (must not).
func spoofPair(ctx context.Context, e *labrun.Env, control, spoofed []byte, filter, what string) (string, error) {
	seen, err := sendAndWatch(ctx, e, "a-web1", control, filter, "a-web2")
	if err != nil {
		return "", err
	}
	if len(seen["a-web2"]) == 0 {
		return "", fmt.Errorf("control frame (legitimate %s) did not arrive: the check cannot tell", what)
	}
	seen, err = sendAndWatch(ctx, e, "a-web1", spoofed, filter, "a-web2")
	if err != nil {
		return "", err
	}
	if l := seen["a-web2"]; len(l) > 0 {
		return "", fmt.Errorf("spoofed %s arrived: %s", what, l[0])
	}
	return fmt.Sprintf("legitimate %s arrived, spoofed one did not", what), nil
}

func spoofMAC(ctx context.Context, e *labrun.Env) (string, error) {
	own, err := macOf(e, "a-web1")
	if err != nil {
		return "", err
	}
	good, err := udpFrame(e, own, "10.0.1.10", 40000, 9001, "control")
	if err != nil {
		return "", err
	}
	bad, _ := udpFrame(e, "02:66:66:66:66:66", "10.0.1.10", 40000, 9001, "spoofed-mac")
	return spoofPair(ctx, e, good, bad, "udp port 9001", "UDP frame (source MAC)")
}

func spoofIP(ctx context.Context, e *labrun.Env) (string, error) {
	own, err := macOf(e, "a-web1")
	if err != nil {
		return "", err
	}
	good, err := udpFrame(e, own, "10.0.1.10", 40000, 9002, "control")
	if err != nil {
		return "", err
	}
	bad, _ := udpFrame(e, own, "10.0.1.77", 40000, 9002, "spoofed-ip")
	return spoofPair(ctx, e, good, bad, "udp port 9002", "UDP packet (source IP)")
}

func forgedARP(ctx context.Context, e *labrun.Env) (string, error) {
	own, err := macOf(e, "a-web1")
	if err != nil {
		return "", err
	}
	dst, err := macOf(e, "a-web2")
	if err != nil {
		return "", err
	}
	// a-web1 claims a-web3's IP 10.0.1.12 in a unicast ARP reply to a-web2.
	forged := frames.Ethernet(mustMAC(dst), mustMAC(own), frames.TypeARP,
		frames.ARP(2, mustMAC(own), addr("10.0.1.12"), mustMAC(dst), addr("10.0.1.11")))
	seen, err := sendAndWatch(ctx, e, "a-web1", forged, "arp", "a-web2", "a-web3")
	if err != nil {
		return "", err
	}
	for n, l := range seen {
		if len(l) > 0 {
			return "", fmt.Errorf("forged ARP reply reached %s: %s", n, l[0])
		}
	}
	// Even a truthful ARP reply never leaves the host: ARP is answered locally.
	honest := frames.Ethernet(mustMAC(dst), mustMAC(own), frames.TypeARP,
		frames.ARP(2, mustMAC(own), addr("10.0.1.10"), mustMAC(dst), addr("10.0.1.11")))
	seen, err = sendAndWatch(ctx, e, "a-web1", honest, "arp", "a-web2")
	if err != nil {
		return "", err
	}
	if l := seen["a-web2"]; len(l) > 0 {
		return "", fmt.Errorf("ARP reply crossed between VMs: %s", l[0])
	}
	return "ARP reply claiming a-web3's IP reached nobody", nil
}

func dhcpServerReply(ctx context.Context, e *labrun.Env) (string, error) {
	own, err := macOf(e, "a-web1")
	if err != nil {
		return "", err
	}
	good, err := udpFrame(e, own, "10.0.1.10", 6700, 68, "control")
	if err != nil {
		return "", err
	}
	bad, _ := udpFrame(e, own, "10.0.1.10", 67, 68, "dhcp-offer")
	return spoofPair(ctx, e, good, bad, "udp dst port 68", "UDP to port 68 (DHCP server source port 67)")
}

func bumDropped(ctx context.Context, e *labrun.Env) (string, error) {
	own, err := macOf(e, "a-web1")
	if err != nil {
		return "", err
	}
	src := addr("10.0.1.10")
	bcast := frames.Ethernet(mustMAC("ff:ff:ff:ff:ff:ff"), mustMAC(own), frames.TypeIPv4,
		frames.IPv4(src, addr("10.0.1.255"), 17, frames.UDP(src, addr("10.0.1.255"), 5000, 5001, []byte("bcast"))))
	mcast := frames.Ethernet(mustMAC("01:00:5e:00:00:fb"), mustMAC(own), frames.TypeIPv4,
		frames.IPv4(src, addr("224.0.0.251"), 17, frames.UDP(src, addr("224.0.0.251"), 5353, 5353, []byte("mcast"))))
	for _, f := range [][]byte{bcast, mcast} {
		seen, err := sendAndWatch(ctx, e, "a-web1", f, "udp", "a-web2", "a-web3", "a-app2", "g-app1")
		if err != nil {
			return "", err
		}
		for n, l := range seen {
			if len(l) > 0 {
				return "", fmt.Errorf("%s received %s", n, l[0])
			}
		}
	}
	return "broadcast and multicast UDP from a-web1 seen by no VM", nil
}

func promiscuous(ctx context.Context, e *labrun.Env) (string, error) {
	v, err := vm(e, "a-web2")
	if err != nil {
		return "", err
	}
	if _, err := v.Exec(ctx, "ip", "link", "set", "eth0", "promisc", "on"); err != nil {
		return "", err
	}
	defer v.Exec(context.Background(), "ip", "link", "set", "eth0", "promisc", "off")
	c, err := incoming(ctx, v, "")
	if err != nil {
		return "", err
	}
	_, err1 := ping(ctx, e, "a-web1", "10.0.1.12", 3)
	_, err2 := ping(ctx, e, "a-app2", "10.0.1.10", 3)
	lines := c.Stop()
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("pings: %v %v", err1, err2)
	}
	if len(lines) > 0 {
		return "", fmt.Errorf("promiscuous a-web2 saw others' traffic: %s", lines[0])
	}
	return "a-web2 in promiscuous mode saw nothing of a-web1↔a-web3 and a-app2↔a-web1", nil
}

func secondaryIPLive(ctx context.Context, e *labrun.Env) (string, error) {
	const ip = "10.0.1.60"
	v, err := vm(e, "a-web3")
	if err != nil {
		return "", err
	}
	// Before: not reachable.
	if r, err := ping(ctx, e, "a-web1", ip, 1); err != nil || r.Received != 0 {
		return "", fmt.Errorf("%s reachable before it was added (%v)", ip, err)
	}
	if err := e.UpdatePolicy(func(p *model.Policy) {
		for i := range p.NICs {
			if p.NICs[i].Name == "a-web3" {
				p.NICs[i].SecondaryIPs = append(p.NICs[i].SecondaryIPs, ip)
			}
		}
	}); err != nil {
		return "", err
	}
	if err := v.AddAddr(ctx, netip.MustParsePrefix(ip+"/24")); err != nil {
		return "", err
	}
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		r, err := ping(ctx, e, "a-web1", ip, 1)
		if err == nil && r.Received == 1 {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not reachable 20 s after it was added", ip)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	r, err := v.Ping(ctx, addr("10.0.1.10"), lab.PingOpts{Count: 2, Interval: 100 * time.Millisecond, Source: addr(ip)})
	if err != nil || r.Received != 2 {
		return "", fmt.Errorf("ping from %s as source: %v %+v", ip, err, r)
	}
	return fmt.Sprintf("reachable %v after the policy change, and usable as source", took.Round(10*time.Millisecond)), nil
}

func controllerRestart(ctx context.Context, e *labrun.Env) (string, error) {
	v, err := vm(e, "a-web1")
	if err != nil {
		return "", err
	}
	type res struct {
		r   lab.PingResult
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := v.Ping(ctx, addr("10.0.2.10"), lab.PingOpts{Count: 600, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second})
		done <- res{r, err}
	}()
	time.Sleep(time.Second)
	e.StopController()
	time.Sleep(500 * time.Millisecond)
	if err := e.StartController(ctx); err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := e.WaitReady(wctx); err != nil {
		return "", err
	}
	out := <-done
	if out.err != nil {
		return "", out.err
	}
	if out.r.Sent < 500 || out.r.Received != out.r.Sent {
		return "", fmt.Errorf("%d of %d pings answered across the restart", out.r.Received, out.r.Sent)
	}
	return fmt.Sprintf("%d/%d replies while the controller restarted", out.r.Received, out.r.Sent), nil
}

func vswitchdRestart(ctx context.Context, e *labrun.Env) (string, error) {
	h := e.Lab.Host("h2")
	if h == nil {
		return "", fmt.Errorf("no host h2")
	}
	start := time.Now()
	if err := h.RestartVswitchd(ctx); err != nil {
		return "", err
	}
	deadline := start.Add(60 * time.Second)
	for {
		r, err := ping(ctx, e, "a-web1", "10.0.1.12", 1)
		if err == nil && r.Received == 1 {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("h2 not forwarding 60 s after its ovs-vswitchd restarted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("a-web1 → a-web3 (on h2) forwarding again %v after the restart began", time.Since(start).Round(10*time.Millisecond)), nil
}

// Report runs every check and writes a pass/fail table; it returns the
// number of failures.
func Report(ctx context.Context, e *labrun.Env, w func(string)) int {
	failed := 0
	w(fmt.Sprintf("%-4s  %-52s  %s", "", "CHECK", "DETAIL"))
	for _, c := range Checks() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		detail, err := c.Run(cctx, e)
		cancel()
		mark := "PASS"
		if err != nil {
			mark, detail = "FAIL", err.Error()
			failed++
		}
		w(fmt.Sprintf("%-4s  %-52s  %s", mark, c.Name, strings.ReplaceAll(detail, "\n", " ")))
	}
	return failed
}

// PingMesh pings, once, every other NIC's primary IP in the same VPC from
// every VM (all pairs in parallel) and returns the pairs that got no reply.
func PingMesh(ctx context.Context, e *labrun.Env) (pairs int, failed []string, err error) {
	n, err := e.Net()
	if err != nil {
		return 0, nil, err
	}
	type result struct {
		pair string
		ok   bool
	}
	results := make(chan result)
	for _, vname := range n.VPCNames {
		vpc := n.VPCs[vname]
		for _, src := range vpc.NICs {
			for _, dst := range vpc.NICs {
				if src == dst || e.Lab.VM(src.Name) == nil || e.Lab.VM(dst.Name) == nil {
					continue
				}
				pairs++
				go func(src *model.NICInfo, dst *model.NICInfo) {
					r, err := e.Lab.VM(src.Name).Ping(ctx, dst.IP, lab.PingOpts{Count: 1, Timeout: time.Second})
					results <- result{src.Name + "→" + dst.Name, err == nil && r.Received == 1}
				}(src, dst)
			}
		}
	}
	for i := 0; i < pairs; i++ {
		if r := <-results; !r.ok {
			failed = append(failed, r.pair)
		}
	}
	return pairs, failed, nil
}

// WaitPingMesh repeats PingMesh until every pair passes or ctx ends.
func WaitPingMesh(ctx context.Context, e *labrun.Env) (int, error) {
	for {
		pairs, failed, err := PingMesh(ctx, e)
		if err != nil {
			return 0, err
		}
		if len(failed) == 0 {
			return pairs, nil
		}
		if ctx.Err() != nil {
			return pairs, fmt.Errorf("%d of %d ping pairs still failing, e.g. %s", len(failed), pairs, failed[0])
		}
	}
}
