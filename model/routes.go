package model

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// RouteTable is a set of static routes of a VPC. Every subnet uses exactly
// one: the one it names, else its VPC's main table. Every table also has
// the implicit, undeletable local route for the VPC's CIDR.
type RouteTable struct {
	Name string `yaml:"name" json:"name"`
	VPC  string `yaml:"vpc" json:"vpc"`
	// Main marks the VPC's main table (named MainTableName), created with
	// the VPC and used by subnets that name no table.
	Main   bool    `yaml:"main,omitempty" json:"main,omitempty"`
	Routes []Route `yaml:"routes,omitempty" json:"routes,omitempty"`
}

// Route sends a destination CIDR to one target: an appliance NIC of the
// VPC, a peering, the VPC's internet gateway, or a blackhole.
type Route struct {
	Destination string `yaml:"destination" json:"destination"`
	// NIC is an appliance or NAT instance of the VPC; it receives the
	// packets only while its source/destination check is off.
	NIC string `yaml:"nic,omitempty" json:"nic,omitempty"`
	// Peering is a peering of the table's VPC: the packets go on in the
	// peer VPC (once the peering is accepted).
	Peering string `yaml:"peering,omitempty" json:"peering,omitempty"`
	// Gateway is an internet gateway attached to the table's VPC.
	Gateway string `yaml:"gateway,omitempty" json:"gateway,omitempty"`
	// Blackhole drops the destination's packets.
	Blackhole bool `yaml:"blackhole,omitempty" json:"blackhole,omitempty"`
}

// RouteState is a route's effective state.
type RouteState string

// Route states, as AWS shows them.
const (
	RouteActive    RouteState = "active"
	RouteBlackhole RouteState = "blackhole"
)

// RouteTableInfo is a built route table.
type RouteTableInfo struct {
	Name    string
	VPC     *VPCInfo
	Main    bool
	Key     uint16 // carried in reg4, unique across the cloud
	Routes  []*RouteInfo
	Subnets []*SubnetInfo // associated subnets, by name
}

// RouteInfo is a built static route.
type RouteInfo struct {
	Destination netip.Prefix
	NIC         *NICInfo // target NIC; nil for a blackhole
	Peer        *VPCInfo // the VPC a peering route leads to
	Gateway     *IGWInfo // the internet gateway a route leads to
	gateway     string   // the gateway's name, resolved by gateways()
	State       RouteState
	// Why says why a route is a blackhole it was not written as (its
	// target NIC is gone).
	Why string
}

// MainTableName is the name of a VPC's main route table.
func MainTableName(vpc string) string { return vpc + "-main" }

// missingMainTables lists the main tables p lacks.
func missingMainTables(p *Policy) []RouteTable {
	have := map[string]bool{}
	for _, t := range p.RouteTables {
		have[t.Name] = true
	}
	var out []RouteTable
	for _, v := range p.VPCs {
		if v.Name != "" && !have[MainTableName(v.Name)] {
			out = append(out, RouteTable{Name: MainTableName(v.Name), VPC: v.Name, Main: true})
		}
	}
	return out
}

// EnsureMainTables adds the main route tables p lacks and drops main tables
// whose VPC is gone, so the store keeps them with the VPC's lifetime.
func EnsureMainTables(p *Policy) {
	vpcs := map[string]bool{}
	for _, v := range p.VPCs {
		vpcs[v.Name] = true
	}
	kept := p.RouteTables[:0]
	for _, t := range p.RouteTables {
		if t.Main && !vpcs[t.VPC] {
			continue
		}
		kept = append(kept, t)
	}
	p.RouteTables = append(kept, missingMainTables(p)...)
}

// routeTables validates the tables (with the main tables p lacks) and the
// subnets' associations. It runs after nics.
func (b *builder) routeTables(p *Policy) {
	tables := append(append([]RouteTable(nil), p.RouteTables...), missingMainTables(p)...)
	b.net.RouteTables = map[string]*RouteTableInfo{}
	seen := map[string]bool{}
	keys := map[uint64]bool{0: true}
	for _, t := range tables {
		if !b.name("route_table", t.Name, seen) {
			continue
		}
		vi := b.net.VPCs[t.VPC]
		switch {
		case t.VPC == "":
			b.fail("route_table", t.Name, "vpc", "is required")
			continue
		case vi == nil:
			b.fail("route_table", t.Name, "vpc", "vpc %q does not exist", t.VPC)
			continue
		case t.Main && t.Name != MainTableName(vi.Name):
			b.fail("route_table", t.Name, "name", "the main table of vpc %q must be named %q", vi.Name, MainTableName(vi.Name))
			continue
		case !t.Main && strings.HasSuffix(t.Name, "-main"):
			b.fail("route_table", t.Name, "name", "names ending in -main are kept for main tables")
			continue
		}
		ti := &RouteTableInfo{Name: t.Name, VPC: vi, Main: t.Main}
		dests := map[netip.Prefix]int{}
		for i, r := range t.Routes {
			field := fmt.Sprintf("routes[%d]", i)
			ri, ok := b.route(ti, field, r)
			if !ok {
				continue
			}
			if j, dup := dests[ri.Destination]; dup {
				b.fail("route_table", t.Name, field+".destination", "%s is already the destination of routes[%d]", ri.Destination, j)
				continue
			}
			dests[ri.Destination] = i
			ti.Routes = append(ti.Routes, ri)
		}
		b.net.RouteTables[t.Name] = ti
	}
	b.net.RouteTableNames = sortedKeys(b.net.RouteTables)
	for _, name := range b.net.RouteTableNames {
		ti := b.net.RouteTables[name]
		ti.Key = uint16(probe(hashName("rtb/"+name)%0xfffe+1, 0xffff, func(v uint64) bool { return keys[v] }))
		keys[uint64(ti.Key)] = true
	}
	// Associations.
	for _, s := range p.Subnets {
		si := b.net.Subnets[s.Name]
		if si == nil {
			continue
		}
		name := s.RouteTable
		if name == "" {
			name = MainTableName(si.VPC.Name)
		}
		ti := b.net.RouteTables[name]
		switch {
		case ti == nil:
			b.fail("subnet", s.Name, "route_table", "route table %q does not exist", name)
			continue
		case ti.VPC != si.VPC:
			b.fail("subnet", s.Name, "route_table", "route table %q belongs to vpc %q, the subnet to vpc %q", name, ti.VPC.Name, si.VPC.Name)
			continue
		}
		si.RouteTable = ti
		ti.Subnets = append(ti.Subnets, si)
	}
	for _, ti := range b.net.RouteTables {
		sort.Slice(ti.Subnets, func(i, j int) bool { return ti.Subnets[i].Name < ti.Subnets[j].Name })
	}
}

func (b *builder) route(ti *RouteTableInfo, field string, r Route) (*RouteInfo, bool) {
	p, ok := b.prefix("route_table", ti.Name, field+".destination", r.Destination)
	if !ok {
		return nil, false
	}
	if p == ti.VPC.CIDR {
		b.fail("route_table", ti.Name, field+".destination", "%s is the vpc's own CIDR, covered by the local route", p)
		return nil, false
	}
	ri := &RouteInfo{Destination: p, State: RouteActive}
	targets := 0
	for _, set := range []bool{r.NIC != "", r.Peering != "", r.Gateway != "", r.Blackhole} {
		if set {
			targets++
		}
	}
	switch {
	case targets > 1:
		b.fail("route_table", ti.Name, field+".nic", "give one target: nic, peering, gateway or blackhole")
		return nil, false
	case r.Gateway != "":
		ri.gateway = r.Gateway
	case r.Peering != "":
		pi := b.net.Peerings[r.Peering]
		switch {
		case pi == nil:
			ri.State, ri.Why = RouteBlackhole, fmt.Sprintf("peering %q does not exist", r.Peering)
		case pi.Other(ti.VPC) == nil:
			// Stale (the name was reused); the API refuses such new routes.
			ri.State, ri.Why = RouteBlackhole, fmt.Sprintf("peering %q does not join vpc %q", r.Peering, ti.VPC.Name)
		case !pi.Accepted:
			ri.State, ri.Why = RouteBlackhole, fmt.Sprintf("peering %q is not accepted yet", r.Peering)
		default:
			ri.Peer = pi.Other(ti.VPC)
		}
	case r.Blackhole:
		ri.State = RouteBlackhole
	case r.NIC != "":
		nic := b.net.NICs[r.NIC]
		switch {
		case nic == nil:
			// Like AWS: a route whose target is gone stays, as a blackhole.
			ri.State, ri.Why = RouteBlackhole, fmt.Sprintf("nic %q does not exist", r.NIC)
		case nic.Subnet.VPC != ti.VPC:
			// A stale route whose NIC's name was taken again in another
			// VPC; the API refuses such a target for new routes.
			ri.State, ri.Why = RouteBlackhole, fmt.Sprintf("nic %q is in vpc %q, not the table's vpc %q", r.NIC, nic.Subnet.VPC.Name, ti.VPC.Name)
		default:
			ri.NIC = nic
		}
	default:
		b.fail("route_table", ti.Name, field+".nic", "a target is required: nic, peering, gateway or blackhole")
		return nil, false
	}
	return ri, true
}

// Peering connects two VPCs (of the same or two accounts) whose CIDRs do not
// overlap. The requester's account creates it; it carries traffic once the
// accepter's account accepted it, and only where both sides' route tables
// send the other's addresses to it. Peerings are not transitive.
type Peering struct {
	Name string `yaml:"name" json:"name"`
	// VPC requests; PeerVPC accepts.
	VPC     string `yaml:"vpc" json:"vpc"`
	PeerVPC string `yaml:"peer_vpc" json:"peer_vpc"`
	// Accepted is set by the peer VPC's account.
	Accepted bool `yaml:"accepted,omitempty" json:"accepted,omitempty"`
}

// PeeringInfo is a built peering.
type PeeringInfo struct {
	Name     string
	VPC      *VPCInfo
	PeerVPC  *VPCInfo
	Accepted bool
}

// Other returns the VPC at the other end from v (nil if v is not an end).
func (p *PeeringInfo) Other(v *VPCInfo) *VPCInfo {
	switch v {
	case p.VPC:
		return p.PeerVPC
	case p.PeerVPC:
		return p.VPC
	}
	return nil
}

// peerings validates the peerings; it runs after vpcs.
func (b *builder) peerings(ps []Peering) {
	b.net.Peerings = map[string]*PeeringInfo{}
	seen := map[string]bool{}
	pairs := map[[2]string]string{}
	for _, p := range ps {
		if !b.name("peering", p.Name, seen) {
			continue
		}
		a, z := b.net.VPCs[p.VPC], b.net.VPCs[p.PeerVPC]
		switch {
		case p.VPC == "":
			b.fail("peering", p.Name, "vpc", "is required")
			continue
		case a == nil:
			b.fail("peering", p.Name, "vpc", "vpc %q does not exist", p.VPC)
			continue
		case p.PeerVPC == "":
			b.fail("peering", p.Name, "peer_vpc", "is required")
			continue
		case z == nil:
			b.fail("peering", p.Name, "peer_vpc", "vpc %q does not exist", p.PeerVPC)
			continue
		case a == z:
			b.fail("peering", p.Name, "peer_vpc", "a vpc cannot peer with itself")
			continue
		case a.CIDR.IsValid() && z.CIDR.IsValid() && a.CIDR.Overlaps(z.CIDR):
			b.fail("peering", p.Name, "peer_vpc", "vpc %q (%s) overlaps vpc %q (%s): peered VPCs need distinct addresses", z.Name, z.CIDR, a.Name, a.CIDR)
			continue
		}
		key := [2]string{a.Name, z.Name}
		if key[0] > key[1] {
			key[0], key[1] = key[1], key[0]
		}
		if o := pairs[key]; o != "" {
			b.fail("peering", p.Name, "peer_vpc", "vpcs %q and %q are already peered by %q", a.Name, z.Name, o)
			continue
		}
		pairs[key] = p.Name
		b.net.Peerings[p.Name] = &PeeringInfo{Name: p.Name, VPC: a, PeerVPC: z, Accepted: p.Accepted}
	}
	b.net.PeeringNames = sortedKeys(b.net.Peerings)
}

// Peered reports whether two VPCs are joined by an accepted peering.
func (n *Net) Peered(a, z *VPCInfo) bool {
	for _, p := range n.Peerings {
		if p.Accepted && p.Other(a) == z {
			return true
		}
	}
	return false
}

// PeersOf returns the VPCs joined to v by accepted peerings, by name.
func (n *Net) PeersOf(v *VPCInfo) []*VPCInfo {
	var out []*VPCInfo
	for _, name := range n.PeeringNames {
		p := n.Peerings[name]
		if o := p.Other(v); o != nil && p.Accepted {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
