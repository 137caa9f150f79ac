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

// Conntrack zones are unique per host, pinned, and a pinned zone that
// collides on a host is an error naming the field.
func TestCtZones(t *testing.T) {
	p := mustParse(t, good)
	p.NICs = append(p.NICs, NIC{Name: "web2", Subnet: "acme-web", Host: "h1", IP: "10.0.1.11"})
	n, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[uint16]string{}
	for _, name := range n.NICNames {
		ni := n.NICs[name]
		if ni.Host == "" {
			continue
		}
		if ni.CtZone == 0 {
			t.Fatalf("%s has no zone", name)
		}
		if seen[ni.Host] == nil {
			seen[ni.Host] = map[uint16]string{}
		}
		if o := seen[ni.Host][ni.CtZone]; o != "" {
			t.Fatalf("%s and %s share zone %d on %s", o, name, ni.CtZone, ni.Host)
		}
		seen[ni.Host][ni.CtZone] = name
	}
	Pin(p, n)
	p.NICs[len(p.NICs)-1].CtZone = n.NICs["web1"].CtZone // web1 is on h1 too
	if _, err := Build(p); err == nil || !strings.Contains(err.Error(), "ct_zone") {
		t.Fatalf("colliding zone accepted: %v", err)
	}
}
