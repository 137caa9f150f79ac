package model

import (
	"strings"
	"testing"
)

func TestAllocateIPsAndPin(t *testing.T) {
	p := mustParse(t, good)
	p.NICs = append(p.NICs, NIC{Name: "new1", Subnet: "acme-web"}, NIC{Name: "new2", Subnet: "acme-web"})
	if err := AllocateIPs(p); err != nil {
		t.Fatal(err)
	}
	if p.NICs[3].IP != "10.0.1.4" || p.NICs[4].IP != "10.0.1.5" {
		t.Fatalf("allocated %s, %s; want the first free non-reserved 10.0.1.4, 10.0.1.5", p.NICs[3].IP, p.NICs[4].IP)
	}
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	Pin(p, n)
	before := n.NICs["web1"].PortKey
	// Pinned identifiers survive the arrival of new NICs and VPCs.
	p.NICs = append(p.NICs, NIC{Name: "aaa", Subnet: "acme-web", IP: "10.0.1.99"})
	n2, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if n2.NICs["web1"].PortKey != before || n2.NICs["web1"].MAC.String() != n.NICs["web1"].MAC.String() || n2.VPCs["acme-vpc"].VNI != n.VPCs["acme-vpc"].VNI {
		t.Fatal("pinned identifiers changed")
	}
	p.NICs[len(p.NICs)-1].PortKey = before
	if _, err := Build(p); err == nil || !strings.Contains(err.Error(), "port_key") {
		t.Fatalf("duplicate port key accepted: %v", err)
	}
}

func TestAllocateIPsFullSubnet(t *testing.T) {
	p := mustParse(t, good)
	p.Subnets = append(p.Subnets, Subnet{Name: "tiny", VPC: "acme-vpc", CIDR: "10.0.9.0/28"}) // 16 - 5 reserved = 11 usable
	for i := 0; i < 12; i++ {
		p.NICs = append(p.NICs, NIC{Name: "t" + string(rune('a'+i)), Subnet: "tiny"})
	}
	err := AllocateIPs(p)
	if err == nil || !strings.Contains(err.Error(), `subnet "tiny" (10.0.9.0/28) has no free address`) {
		t.Fatalf("want no-free-address error, got %v", err)
	}
}
