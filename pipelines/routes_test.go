package pipelines

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/openvpc/openvpc/model"
)

// Over 200 random route-table, association, source/dest-check and peering
// changes on two VPCs, the controller's incremental path (fingerprint skip,
// diff) ends with the flows of a full recompute on every host.
func TestRoutesIncrementalEqualsFull(t *testing.T) {
	p := routeTablePolicy(4, 3)
	p.Hosts = append(p.Hosts, model.Host{Name: "h3", UnderlayIP: "172.31.0.13"})
	p.VPCs = append(p.VPCs, model.VPC{Name: "w", Account: "a", CIDR: "10.9.0.0/16"})
	p.Subnets = append(p.Subnets, model.Subnet{Name: "w1", VPC: "w", CIDR: "10.9.1.0/24"})
	for i := 0; i < 4; i++ {
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("w%d", i), Subnet: "w1", Host: fmt.Sprintf("h%d", 2+i%2), IP: fmt.Sprintf("10.9.1.%d", 10+i)})
	}
	p.Peerings = []model.Peering{{Name: "vw", VPC: "v", PeerVPC: "w"}}
	checkIncremental(t, p, 200, func(rng *rand.Rand, p *model.Policy) (string, []uint8) {
		t := &p.RouteTables[rng.Intn(len(p.RouteTables))]
		switch rng.Intn(7) {
		case 0: // add a route
			r := model.Route{Destination: fmt.Sprintf("%d.%d.0.0/16", 100+rng.Intn(3), rng.Intn(50))}
			switch rng.Intn(3) {
			case 0:
				r.Blackhole = true
			case 1:
				r.NIC = fmt.Sprintf("fw%d", rng.Intn(10))
			default:
				r.Destination, r.Peering = "10.9.0.0/16", "vw"
			}
			t.Routes = append(t.Routes, r)
			return "add route to " + t.Name, []uint8{TableL3Route}
		case 1: // remove a route
			if len(t.Routes) > 0 {
				i := rng.Intn(len(t.Routes))
				t.Routes = append(t.Routes[:i], t.Routes[i+1:]...)
			}
			return "remove route from " + t.Name, []uint8{TableL3Route}
		case 2: // a subnet changes table
			s := &p.Subnets[rng.Intn(len(p.Subnets)-1)]
			s.RouteTable = p.RouteTables[rng.Intn(len(p.RouteTables))].Name
			return "associate " + s.Name, nil
		case 3: // an appliance's check flips
			n := &p.NICs[len(p.NICs)-5-rng.Intn(10)]
			on := n.SourceDestCheck != nil && !*n.SourceDestCheck
			n.SourceDestCheck = &on
			return "source/dest check of " + n.Name, nil
		case 4: // the peering is accepted or withdrawn
			p.Peerings[0].Accepted = !p.Peerings[0].Accepted
			return "peering accepted=" + fmt.Sprint(p.Peerings[0].Accepted), nil
		case 5: // a NIC of the peer VPC moves
			n := &p.NICs[len(p.NICs)-1-rng.Intn(4)]
			n.Host = fmt.Sprintf("h%d", 1+rng.Intn(3))
			n.CtZone = 0
			return "move " + n.Name, nil
		default: // an appliance moves
			n := &p.NICs[len(p.NICs)-5-rng.Intn(10)]
			n.Host = fmt.Sprintf("h%d", 1+rng.Intn(3))
			n.CtZone = 0
			return "move " + n.Name, nil
		}
	})
}
