package controller

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/openvpc/openvpc/model"
)

// icmpError is an Ethernet/IPv4 ICMP port unreachable from src to dst
// quoting a UDP packet qsrc → qdst.
func icmpError(src, dst, qsrc, qdst string) []byte {
	f := make([]byte, 14+20+8+28)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[9] = 0x45, 1
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	a, b := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], a[:])
	copy(ip[16:], b[:])
	icmp := ip[20:]
	icmp[0], icmp[1] = 3, 3
	q := icmp[8:]
	q[0], q[9] = 0x45, 17
	binary.BigEndian.PutUint16(q[2:], 28)
	c, d := netip.MustParseAddr(qsrc).As4(), netip.MustParseAddr(qdst).As4()
	copy(q[12:], c[:])
	copy(q[16:], d[:])
	return f
}

func TestTranslateQuoted(t *testing.T) {
	n, err := model.Build(gatewayTestPolicy())
	if err != nil {
		t.Fatal(err)
	}
	// Inbound: the internet host's port unreachable to 203.0.113.10 quotes
	// 203.0.113.10 as the source; the VM must see its private address.
	f := icmpError("192.0.2.10", "203.0.113.10", "203.0.113.10", "192.0.2.10")
	if !translateQuoted(n, f, true) {
		t.Fatal("inbound error not translated")
	}
	q := f[14+20+8:]
	if got := netip.AddrFrom4([4]byte(q[12:16])); got.String() != "10.0.1.10" {
		t.Errorf("quoted source %s, want 10.0.1.10", got)
	}
	if checksum(q[:20]) != 0 || checksum(f[14+20:]) != 0 {
		t.Error("bad checksums after the rewrite")
	}
	// Outbound (after SNAT): from 203.0.113.10, quoting the private address
	// as destination.
	f = icmpError("203.0.113.10", "192.0.2.10", "192.0.2.10", "10.0.1.10")
	if !translateQuoted(n, f, false) {
		t.Fatal("outbound error not translated")
	}
	if got := netip.AddrFrom4([4]byte(f[14+20+8+16 : 14+20+8+20])); got.String() != "203.0.113.10" {
		t.Errorf("quoted destination %s, want 203.0.113.10", got)
	}
	// Not ours, or already right: untouched.
	for _, f := range [][]byte{icmpError("192.0.2.10", "203.0.113.99", "203.0.113.99", "192.0.2.10"),
		icmpError("192.0.2.10", "203.0.113.10", "10.0.1.10", "192.0.2.10")} {
		if translateQuoted(n, f, true) {
			t.Errorf("translated %x", f[14+12:14+20])
		}
	}
}

// gatewayTestPolicy: web1 (10.0.1.10) with public IP 203.0.113.10 in a public
// subnet, one gateway host.
func gatewayTestPolicy() *model.Policy {
	return &model.Policy{
		Accounts: []model.Account{{Name: "a"}},
		Hosts: []model.Host{{Name: "h1", UnderlayIP: "172.31.0.11"},
			{Name: "gw", UnderlayIP: "172.31.0.12", Uplink: &model.Uplink{Interface: "eth1", IP: "198.51.100.2/24", NextHop: "198.51.100.1"}}},
		VPCs:             []model.VPC{{Name: "v", Account: "a", CIDR: "10.0.0.0/16"}},
		Subnets:          []model.Subnet{{Name: "s", VPC: "v", CIDR: "10.0.1.0/24", RouteTable: "rt"}},
		NICs:             []model.NIC{{Name: "web1", Subnet: "s", Host: "h1", IP: "10.0.1.10"}},
		RouteTables:      []model.RouteTable{{Name: "rt", VPC: "v", Routes: []model.Route{{Destination: "0.0.0.0/0", Gateway: "igw"}}}},
		InternetGateways: []model.InternetGateway{{Name: "igw", Account: "a", VPC: "v"}},
		PublicIPPools:    []model.PublicIPPool{{Name: "pool", CIDR: "203.0.113.0/24"}},
		PublicIPs:        []model.PublicIP{{Name: "p", Account: "a", Pool: "pool", Address: "203.0.113.10", NIC: "web1"}},
	}
}
