package pipelines

import (
	"strings"
	"testing"
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
