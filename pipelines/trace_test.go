package pipelines

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/sim"
)

func traceSmall(t *testing.T, host string, in TraceInput) (string, []uint32, uint64) {
	t.Helper()
	snap := smallSnapshot(t)
	fs, err := Compile(snap, host)
	if err != nil {
		t.Fatal(err)
	}
	text, res, err := Trace(snap, host, fs.Flows(), in)
	if err != nil {
		t.Fatal(err)
	}
	var label uint64
	for _, c := range res.Committed {
		label |= c.Label
	}
	return text, res.Outputs, label
}

// The trace follows the compiled pipeline: web1 → db1:5432 leaves h1 over
// the tunnel (egress allowed by web's egress rule 14) and is delivered on
// h2 by db's ingress rule 21; port 5433 stops at IngressSg unless the
// connection is already established (sticky).
func TestTraceSecurityGroups(t *testing.T) {
	text, outs, label := traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "tcp,nw_dst=10.0.2.10,tp_dst=5432"})
	if len(outs) != 1 || outs[0] != 1 || label != 14 || !strings.Contains(text, "security group web rule 14: egress all to 0.0.0.0/0") ||
		!strings.Contains(text, "verdict: output to tunnel to h2 (172.31.0.12), key 0x64") {
		t.Fatalf("h1 egress: outputs %v label %#x\n%s", outs, label, text)
	}
	in := TraceInput{FromHost: "h1", VPC: "acme-vpc", Packet: "tcp,nw_src=10.0.1.10,nw_dst=10.0.2.10,tp_dst=5432"}
	text, outs, label = traceSmall(t, "h2", in)
	if len(outs) != 1 || outs[0] != 5 || label != 21<<32 || !strings.Contains(text, "(conjunction 21 complete)") ||
		!strings.Contains(text, "verdict: output to NIC db1 (port 5)") {
		t.Fatalf("h2 ingress: outputs %v label %#x\n%s", outs, label, text)
	}
	in.Packet = "tcp,nw_src=10.0.1.10,nw_dst=10.0.2.10,tp_dst=5433"
	if text, outs, _ = traceSmall(t, "h2", in); len(outs) != 0 || !strings.Contains(text, "verdict: dropped in table IngressSg") {
		t.Fatalf("h2 port 5433: %v\n%s", outs, text)
	}
	in.CtState = "est"
	if text, outs, _ = traceSmall(t, "h2", in); len(outs) != 1 || strings.Contains(text, "IngressSg") {
		t.Fatalf("h2 port 5433 established: %v\n%s", outs, text)
	}
	// A spoofed source stops at port security.
	if text, outs, _ = traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "icmp,nw_src=10.0.1.99,nw_dst=10.0.2.10"}); len(outs) != 0 ||
		!strings.Contains(text, "dropped in table PortSecurity") {
		t.Fatalf("spoofed: %v\n%s", outs, text)
	}
}

// Route tables: web's table sends 172.16.0.0/12 to the appliance fw1 (on
// h2, source/destination check off) and drops 192.168.0.0/16.
func TestTraceRoutes(t *testing.T) {
	text, outs, _ := traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "tcp,nw_dst=172.16.5.5,tp_dst=443"})
	if len(outs) != 1 || outs[0] != 1 || !strings.Contains(text, "set_field:02:00:00:00:02:14->eth_dst") ||
		!strings.Contains(text, "verdict: output to tunnel to h2") {
		t.Fatalf("route to the appliance: %v\n%s", outs, text)
	}
	// On h2 the tunnelled packet is delivered by the appliance's MAC; fw1's
	// default group admits only its members, so web1's packet stops there,
	// unless established.
	in := TraceInput{FromHost: "h1", VPC: "acme-vpc", Packet: "tcp,dl_dst=02:00:00:00:02:14,nw_src=10.0.1.10,nw_dst=172.16.5.5,tp_dst=443", CtState: "est"}
	if text, outs, _ = traceSmall(t, "h2", in); len(outs) != 1 || outs[0] != 7 {
		t.Fatalf("appliance delivery on h2: %v\n%s", outs, text)
	}
	if text, outs, _ = traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "udp,nw_dst=192.168.1.1,tp_dst=53"}); len(outs) != 0 ||
		!strings.Contains(text, "dropped in table L3Route") {
		t.Fatalf("blackhole: %v\n%s", outs, text)
	}
	// db1's subnet sends everything outside the VPC (0.0.0.0/0) to fw1 on
	// its own host (an established packet, past db's egress rules); gweb1's
	// subnet uses its VPC's main table, which has only the local route.
	if text, outs, _ = traceSmall(t, "h2", TraceInput{FromNIC: "db1", Packet: "tcp,nw_dst=8.8.8.8,tp_dst=443", CtState: "est"}); len(outs) != 1 || outs[0] != 7 {
		t.Fatalf("default route: %v\n%s", outs, text)
	}
	if text, outs, _ = traceSmall(t, "h2", TraceInput{FromNIC: "gweb1", Packet: "tcp,nw_dst=8.8.8.8,tp_dst=443"}); len(outs) != 0 ||
		!strings.Contains(text, "dropped in table L3Route") {
		t.Fatalf("main table: %v\n%s", outs, text)
	}
}

// Peering: web's table sends initech's 10.1.0.0/16 to the accepted peering;
// on h1 the packet moves into initech's VPC and leaves with its key.
func TestTracePeering(t *testing.T) {
	text, outs, _ := traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "icmp,nw_dst=10.1.1.10,icmp_type=8"})
	if len(outs) != 1 || outs[0] != 1 || !strings.Contains(text, "verdict: output to tunnel to h2 (172.31.0.12), key 0x12c") {
		t.Fatalf("web1 → iapp1: %v\n%s", outs, text)
	}
	// db1's table has no route to the peer VPC.
	if text, outs, _ = traceSmall(t, "h2", TraceInput{FromNIC: "db1", Packet: "tcp,nw_dst=10.1.1.10,tp_dst=80", CtState: "est"}); len(outs) != 1 || outs[0] != 7 {
		t.Fatalf("db1 → 10.1.1.10 goes to fw1 by its default route, not the peering: %v\n%s", outs, text)
	}
}

// The internet gateway: web1 (public IP 203.0.113.10, subnet routed to
// acme-igw) leaves through h3, which translates its source; replies and
// new connections from outside are translated back and tunnelled to h1;
// db1's public IP carries nothing (its subnet has no route to the gateway).
func TestTraceInternetGateway(t *testing.T) {
	text, outs, _ := traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "tcp,nw_dst=198.51.100.1,tp_dst=443"})
	if len(outs) != 1 || !strings.Contains(text, "ToGateway") || !strings.Contains(text, "verdict: output to tunnel to h3 (172.31.0.13), key 0x64") {
		t.Fatalf("web1 → internet on h1: %v\n%s", outs, text)
	}
	// web1's secondary address has no public IP: it does not get out.
	if text, outs, _ = traceSmall(t, "h1", TraceInput{FromNIC: "web1", Packet: "tcp,nw_src=10.0.1.20,nw_dst=198.51.100.1,tp_dst=443"}); len(outs) != 0 ||
		!strings.Contains(text, "dropped in table ToGateway") {
		t.Fatalf("no public IP: %v\n%s", outs, text)
	}
	out := TraceInput{FromHost: "h1", VPC: "acme-vpc", Packet: "tcp,nw_src=10.0.1.10,nw_dst=198.51.100.1,tp_dst=443"}
	if text, outs, _ = traceSmall(t, "h3", out); len(outs) != 1 || outs[0] != 2 ||
		!strings.Contains(text, "verdict: output to the uplink (port 2) from 203.0.113.10 to 198.51.100.1") ||
		!strings.Contains(text, "set_field:02:99:00:00:00:01->eth_dst") {
		t.Fatalf("outbound on the gateway: %v\n%s", outs, text)
	}
	// A tunnelled packet for the VPC's own range that found no NIC must
	// not leave.
	out.Packet = "tcp,nw_src=10.0.1.10,nw_dst=10.0.7.7,tp_dst=443"
	if text, outs, _ = traceSmall(t, "h3", out); len(outs) != 0 || !strings.Contains(text, "dropped in table DestLookup") {
		t.Fatalf("private destination: %v\n%s", outs, text)
	}
	// Hairpin: web1 → its own public address comes back from it.
	out.Packet = "icmp,nw_src=10.0.1.10,nw_dst=203.0.113.10"
	text, res := traceResult(t, "h3", out)
	if len(res.Outputs) != 1 || !strings.Contains(text, "tunnel to h1") || res.Final[ofrules.IPv4Src] != ipVal(netip.MustParseAddr("203.0.113.10")) ||
		res.Final[ofrules.IPv4Dst] != ipVal(netip.MustParseAddr("10.0.1.10")) {
		t.Fatalf("hairpin: %v\n%s", res.Outputs, text)
	}
	in := TraceInput{FromUplink: true, Packet: "tcp,nw_src=192.0.2.10,nw_dst=203.0.113.10,tp_dst=80"}
	text, res = traceResult(t, "h3", in)
	if len(res.Outputs) != 1 || !strings.Contains(text, "verdict: output to tunnel to h1 (172.31.0.11), key 0x64") ||
		res.Final[ofrules.IPv4Dst] != ipVal(netip.MustParseAddr("10.0.1.10")) || res.Final[ofrules.IPv4Src] != ipVal(netip.MustParseAddr("192.0.2.10")) ||
		res.Final[ofrules.EthDst] != 0x02000000010a {
		t.Fatalf("inbound: %v\n%s", res.Outputs, text)
	}
	in.Packet = "tcp,nw_src=192.0.2.10,nw_dst=203.0.113.11,tp_dst=80"
	if text, outs, _ = traceSmall(t, "h3", in); len(outs) != 0 || !strings.Contains(text, "dropped in table GwDnat") {
		t.Fatalf("db1's public IP (private subnet): %v\n%s", outs, text)
	}
	// ARP on the uplink: the gateway's address and the public IPs it
	// serves are answered; others are not.
	in.Packet = "arp,arp_op=1,arp_spa=198.51.100.1,arp_tpa=198.51.100.2"
	if text, outs, _ = traceSmall(t, "h3", in); len(outs) != 1 || outs[0] != ofrules.PortInPort {
		t.Fatalf("ARP for the uplink address: %v\n%s", outs, text)
	}
	in.Packet = "arp,arp_op=1,arp_spa=198.51.100.1,arp_tpa=203.0.113.11"
	if text, outs, _ = traceSmall(t, "h3", in); len(outs) != 0 {
		t.Fatalf("ARP for an unserved address: %v\n%s", outs, text)
	}
}

func traceResult(t *testing.T, host string, in TraceInput) (string, sim.Result) {
	t.Helper()
	snap := smallSnapshot(t)
	fs, err := Compile(snap, host)
	if err != nil {
		t.Fatal(err)
	}
	text, res, err := Trace(snap, host, fs.Flows(), in)
	if err != nil {
		t.Fatal(err)
	}
	return text, res
}
