package e2e

import (
	"strings"
	"testing"
)

// `openvpc trace` on the live lab: the controller reads the flows the
// host's switch holds and explains a packet's path, naming the security-
// group rule that lets it through; a packet no rule allows is shown dropped
// where the pipeline drops it, and the same packet of an established
// connection passes (sticky).
func TestTraceOnLiveSwitch(t *testing.T) {
	// a-web1 (h1) → a-web3 (h2), both in acme's default group.
	out, err := openvpc(t, "trace", "--server", env.APIAddr, "--from", "a-web1", "h1", "tcp,nw_dst=10.0.1.12,tp_dst=22")
	if err != nil || !strings.Contains(out, "= security group acme-vpc-default rule ") ||
		!strings.Contains(out, "verdict: output to tunnel to h2 (172.31.0.12)") {
		t.Fatalf("trace on h1: %v\n%s", err, out)
	}
	out, err = openvpc(t, "trace", "--server", env.APIAddr, "--from-host", "h1", "--vpc", "acme-vpc", "h2", "tcp,nw_src=10.0.1.10,nw_dst=10.0.1.12,tp_dst=22")
	if err != nil || !strings.Contains(out, "ingress all from group acme-vpc-default") || !strings.Contains(out, "verdict: output to NIC a-web3") {
		t.Fatalf("trace on h2: %v\n%s", err, out)
	}
	// A source that is no member of the group is dropped by the ingress
	// rules, unless the packet belongs to an established connection.
	out, err = openvpc(t, "trace", "--server", env.APIAddr, "--from-host", "h1", "--vpc", "acme-vpc", "h2", "tcp,nw_src=10.0.9.9,nw_dst=10.0.1.12,tp_dst=22")
	if err != nil || !strings.Contains(out, "verdict: dropped in table IngressSg") {
		t.Fatalf("trace of a source outside the group: %v\n%s", err, out)
	}
	out, err = openvpc(t, "trace", "--server", env.APIAddr, "--ct", "est", "--from-host", "h1", "--vpc", "acme-vpc", "h2", "tcp,nw_src=10.0.9.9,nw_dst=10.0.1.12,tp_dst=22")
	if err != nil || !strings.Contains(out, "verdict: output to NIC a-web3") {
		t.Fatalf("trace of an established connection: %v\n%s", err, out)
	}
	if out, err := openvpc(t, "trace", "--server", env.APIAddr, "--from", "nosuch", "h1", "tcp"); err == nil || !strings.Contains(out, "unknown NIC") {
		t.Fatalf("unknown NIC: %v\n%s", err, out)
	}
}
