package pipelines

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/model"
)

func uplink(ip string) *model.Uplink {
	return &model.Uplink{Interface: "eth1", IP: ip, NextHop: "198.51.100.1", NextHopMAC: "02:99:00:00:00:01"}
}

// Over 200 random internet-gateway changes (attach/detach, gateway routes,
// public IP association, gateway hosts coming and going, NICs moving) and
// tunnel changes (hosts' kinds and underlay MTU), the
// incremental path (fingerprint skip, diff) ends with the flows of a full
// recompute on every host.
func TestGatewayIncrementalEqualsFull(t *testing.T) {
	p := routeTablePolicy(4, 3)
	p.Hosts = append(p.Hosts, model.Host{Name: "h3", UnderlayIP: "172.31.0.13", Uplink: uplink("198.51.100.3/24")})
	p.InternetGateways = []model.InternetGateway{{Name: "igw", Account: "a", VPC: "v"}}
	p.PublicIPPools = []model.PublicIPPool{{Name: "pool", CIDR: "203.0.113.0/24"}}
	for i := 0; i < 6; i++ {
		p.PublicIPs = append(p.PublicIPs, model.PublicIP{Name: fmt.Sprintf("p%d", i), Account: "a", Pool: "pool",
			Address: fmt.Sprintf("203.0.113.%d", 10+i), NIC: fmt.Sprintf("n%02d-%d", i%4, i/4)})
	}
	p.RouteTables[0].Routes = append(p.RouteTables[0].Routes, model.Route{Destination: "0.0.0.0/0", Gateway: "igw"})
	p.Settings = &model.Settings{Encaps: []string{"geneve", "gre", "vxlan"}}
	checkIncremental(t, p, 200, func(rng *rand.Rand, p *model.Policy) (string, []uint8) {
		switch rng.Intn(7) {
		case 0: // attach or detach the gateway
			g := &p.InternetGateways[0]
			if g.VPC == "" {
				g.VPC = "v"
			} else {
				g.VPC = ""
			}
			return "gateway vpc=" + g.VPC, nil
		case 1: // a table gains or loses its gateway route
			rt := &p.RouteTables[rng.Intn(len(p.RouteTables))]
			i := slices.IndexFunc(rt.Routes, func(r model.Route) bool { return r.Gateway != "" })
			if i < 0 {
				dst := []string{"0.0.0.0/0", "198.51.100.0/24", "192.0.2.0/24"}[rng.Intn(3)]
				rt.Routes = append(rt.Routes, model.Route{Destination: dst, Gateway: "igw"})
				return "route to the gateway in " + rt.Name, nil
			}
			rt.Routes = slices.Delete(rt.Routes, i, i+1)
			return "no route to the gateway in " + rt.Name, nil
		case 2: // a public IP moves to another NIC, or is disassociated
			pi := &p.PublicIPs[rng.Intn(len(p.PublicIPs))]
			if rng.Intn(3) == 0 {
				pi.NIC, pi.PrivateIP = "", ""
			} else {
				pi.NIC = fmt.Sprintf("n%02d-%d", rng.Intn(4), rng.Intn(4))
			}
			return "associate " + pi.Name + " with " + pi.NIC, nil
		case 3: // h2 becomes a gateway host too, or stops being one
			h := &p.Hosts[1]
			if h.Uplink == nil {
				h.Uplink = uplink("198.51.100.2/24")
			} else {
				h.Uplink = nil
			}
			return "h2 uplink", nil
		case 6: // a host's tunnel kinds or underlay MTU change
			h := &p.Hosts[rng.Intn(len(p.Hosts))]
			if rng.Intn(2) == 0 {
				// A pair's limit is the smaller MTU: change one host,
				// or all.
				mtu := []int{0, 1500, 9000}[rng.Intn(3)]
				h.UnderlayMTU = mtu
				if rng.Intn(2) == 0 {
					for i := range p.Hosts {
						p.Hosts[i].UnderlayMTU = mtu
					}
				}
			} else {
				h.Encaps = [][]string{nil, {"geneve"}, {"gre", "vxlan"}}[rng.Intn(3)]
			}
			return "tunnels of " + h.Name, nil
		case 4: // a NIC with a public IP moves
			n := &p.NICs[rng.Intn(16)]
			n.Host = fmt.Sprintf("h%d", 1+rng.Intn(3))
			n.CtZone = 0
			return "move " + n.Name, nil
		default: // the router's MAC changes
			u := p.Hosts[2].Uplink
			u.NextHopMAC = fmt.Sprintf("02:99:00:00:00:%02x", rng.Intn(256))
			return "router MAC", []uint8{TableGwOut}
		}
	})
}

// Flows per host grow by a handful per public IP: the gateway holds ARP,
// DNAT, SNAT and a delivery flow per address; a sender one ToGateway flow.
func TestGatewayFlowCost(t *testing.T) {
	count := func(n int, public bool) map[string]int {
		p := routeTablePolicy(1, 0)
		p.Hosts = append(p.Hosts, model.Host{Name: "h3", UnderlayIP: "172.31.0.13", Uplink: uplink("198.51.100.3/24")})
		p.InternetGateways = []model.InternetGateway{{Name: "igw", Account: "a", VPC: "v"}}
		p.PublicIPPools = []model.PublicIPPool{{Name: "pool", CIDR: "203.0.0.0/16"}}
		p.RouteTables[0].Routes = []model.Route{{Destination: "0.0.0.0/0", Gateway: "igw"}}
		p.Subnets[0].CIDR = "10.0.0.0/20"
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("x%d", i)
			p.NICs = append(p.NICs, model.NIC{Name: name, Subnet: "s00", Host: "h1", IP: fmt.Sprintf("10.0.%d.%d", 1+i/200, 10+i%200)})
			if !public {
				continue
			}
			p.PublicIPs = append(p.PublicIPs, model.PublicIP{Name: "p" + name, Pool: "pool", Address: fmt.Sprintf("203.0.%d.%d", i/200, 10+i%200), NIC: name})
		}
		snap := boundSnapshot(t, p)
		out := map[string]int{}
		for _, h := range []string{"h1", "h3"} {
			fs, err := Compile(snap, h)
			if err != nil {
				t.Fatal(err)
			}
			out[h] = fs.Len()
		}
		return out
	}
	a, b := count(100, true), count(200, true)
	if d := b["h3"] - a["h3"]; d != 100*4 {
		t.Errorf("gateway host: 100 more public IPs cost %d flows, want 400 (ARP, DNAT, SNAT, delivery)", d)
	}
	if d := b["h1"] - count(200, false)["h1"]; d != 200 {
		t.Errorf("sender: 200 public IPs cost %d flows, want 200 (one ToGateway each)", d)
	}
}

// A public IP is served by its first gateway host that is up; when that one
// is down (not connected, or no uplink port), the next takes it over — the
// senders tunnel to it and it answers ARP for the address — and other
// addresses stay where they are.
func TestGatewayFailover(t *testing.T) {
	p := gatewayBenchPolicy(40)
	p.Hosts = append(p.Hosts, model.Host{Name: "h4", UnderlayIP: "172.31.0.14",
		Uplink: &model.Uplink{Interface: "eth1", IP: "198.51.100.3/24", NextHop: "198.51.100.1", NextHopMAC: "02:99:00:00:00:01"}})
	snap := boundSnapshot(t, p)
	for _, h := range []string{"h3", "h4"} {
		st := snap.Hosts[h]
		st.Connected = true
		snap.Hosts[h] = st
	}
	served := map[string][]*model.PublicIPInfo{}
	for _, name := range snap.Net.PublicIPNames {
		pi := snap.Net.PublicIPs[name]
		if got := snap.Serving(pi); got != pi.Gateway {
			t.Fatalf("%s: served by %s with both gateways up, want its first, %s", name, got.Name, pi.Gateway.Name)
		}
		served[pi.Gateway.Name] = append(served[pi.Gateway.Name], pi)
	}
	if len(served["h3"]) == 0 || len(served["h4"]) == 0 {
		t.Fatalf("40 addresses all on one gateway: h3 %d, h4 %d", len(served["h3"]), len(served["h4"]))
	}
	st := snap.Hosts["h3"]
	st.Connected = false
	down := &Snapshot{Net: snap.Net, Hosts: map[string]HostState{}}
	for h, s := range snap.Hosts {
		down.Hosts[h] = s
	}
	down.Hosts["h3"] = st
	for _, pi := range append(served["h3"], served["h4"]...) {
		if got := down.Serving(pi); got.Name != "h4" {
			t.Fatalf("%s: served by %s with h3 down", pi.Address, got.Name)
		}
	}
	moved := served["h3"][0]
	h1, err := Compile(down, "h1")
	if err != nil {
		t.Fatal(err)
	}
	h4, err := Compile(down, "h4")
	if err != nil {
		t.Fatal(err)
	}
	if d := dump(h1); !strings.Contains(d, "nw_src="+moved.PrivateIP.String()+",metadata=0x") ||
		!strings.Contains(d, "nw_src="+moved.PrivateIP.String()+",metadata="+fmt.Sprintf("%#x", moved.NIC.Subnet.VPC.VNI)+" actions=set_field:172.31.0.14->tun_dst") {
		t.Errorf("h1 does not send %s's outbound packets to h4", moved.PrivateIP)
	}
	if d := dump(h4); !strings.Contains(d, "arp_tpa="+moved.Address.String()) {
		t.Errorf("h4 does not answer ARP for %s it took over", moved.Address)
	}
	if Fingerprint(down, "h1") == Fingerprint(snap, "h1") {
		t.Error("h1's fingerprint ignores the gateway going down")
	}
}
