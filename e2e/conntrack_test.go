package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/ovstest"
	"github.com/openvpc/openvpc/lab"
)

// The rule that let a connection in is recorded in its conntrack entry:
// the egress rule id in the source NIC's zone on its host (label bits
// 0–31), the ingress rule id in the destination NIC's zone on its host
// (bits 32–63). Operators read it with `ovs-appctl dpctl/dump-conntrack`.
func TestConntrackLabelNamesRule(t *testing.T) {
	ctx := ovstest.Ctx(t)
	n, err := env.Net()
	if err != nil {
		t.Fatal(err)
	}
	src, dst := n.NICs["a-web1"], n.NICs["a-web3"]
	def := n.SecurityGroups["acme-vpc-default"]
	if src.Host == dst.Host || def == nil {
		t.Fatalf("demo policy changed: %s on %s, %s on %s", src.Name, src.Host, dst.Name, dst.Host)
	}
	egress, ingress := def.Egress[0].ID, def.Ingress[0].ID
	r, err := env.Lab.VM("a-web1").Ping(ctx, netip.MustParseAddr(dst.IP.String()), lab.PingOpts{Count: 1, Timeout: 2 * time.Second})
	if err != nil || r.Received != 1 {
		t.Fatalf("ping a-web1 → a-web3: %+v %v", r, err)
	}
	check := func(host string, zone uint16, label string) {
		t.Helper()
		out, err := env.Lab.Host(host).OVS().Appctl(ctx, "dpctl/dump-conntrack")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("zone=%d,", zone)
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "icmp,") && strings.Contains(l, "dst="+dst.IP.String()) && strings.Contains(l, want) {
				if !strings.Contains(l, "labels="+label) {
					t.Errorf("%s: entry in zone %d has no label %s:\n%s", host, zone, label, l)
				}
				t.Logf("%s: %s", host, l)
				return
			}
		}
		t.Errorf("%s: no icmp entry to %s in zone %d:\n%s", host, dst.IP, zone, out)
	}
	check(src.Host, src.CtZone, fmt.Sprintf("0x%x", egress))
	check(dst.Host, dst.CtZone, fmt.Sprintf("0x%x%08x", ingress, 0))
}
