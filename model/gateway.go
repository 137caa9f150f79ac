package model

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
)

// Uplink is a gateway host's way out: an interface of the host plugged into
// its integration bridge and connected to the outside network.
type Uplink struct {
	// Interface is the host's network device attached to br-int as the
	// uplink port (e.g. eth1).
	Interface string `yaml:"interface" json:"interface"`
	// IP is the gateway's own address on the outside network, with its
	// prefix length (e.g. 198.51.100.2/24); it answers ARP for it.
	IP string `yaml:"ip" json:"ip"`
	// NextHop is the outside router every packet to the internet is sent
	// to; it must be inside IP's prefix.
	NextHop string `yaml:"next_hop" json:"next_hop"`
	// NextHopMAC pins the router's MAC; empty means the controller
	// resolves it by ARP through the uplink.
	NextHopMAC string `yaml:"next_hop_mac,omitempty" json:"next_hop_mac,omitempty"`
	// MAC is the gateway's MAC on the outside network; empty derives one
	// from the host's name.
	MAC string `yaml:"mac,omitempty" json:"mac,omitempty"`
}

// InternetGateway connects a VPC to the outside network: routes of the VPC
// may target it, and NICs with public IPs in subnets routed to it are
// reachable from outside. It is attached to at most one VPC.
type InternetGateway struct {
	Name    string `yaml:"name" json:"name"`
	Account string `yaml:"account,omitempty" json:"account,omitempty"`
	// VPC it is attached to; empty = detached.
	VPC string `yaml:"vpc,omitempty" json:"vpc,omitempty"`
}

// PublicIPPool is an admin-defined range of public addresses.
type PublicIPPool struct {
	Name string `yaml:"name" json:"name"`
	CIDR string `yaml:"cidr" json:"cidr"`
}

// PublicIP is a public address allocated to an account from a pool and
// possibly associated with one private IP of a NIC (AWS's Elastic IP).
type PublicIP struct {
	Name    string `yaml:"name" json:"name"`
	Account string `yaml:"account,omitempty" json:"account,omitempty"`
	Pool    string `yaml:"pool" json:"pool"`
	// Address in the pool; the API allocates a free one when empty.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// NIC it is associated with; empty = unassociated.
	NIC string `yaml:"nic,omitempty" json:"nic,omitempty"`
	// PrivateIP is the NIC's address it maps to; default the primary IP.
	PrivateIP string `yaml:"private_ip,omitempty" json:"private_ip,omitempty"`
}

// UplinkInfo is a built uplink.
type UplinkInfo struct {
	Interface  string
	IP         netip.Prefix
	NextHop    netip.Addr
	NextHopMAC net.HardwareAddr // nil: resolved at run time
	MAC        net.HardwareAddr
}

// IGWInfo is a built internet gateway.
type IGWInfo struct {
	Name    string
	Account string
	VPC     *VPCInfo // nil when detached
}

// PoolInfo is a built public IP pool.
type PoolInfo struct {
	Name string
	CIDR netip.Prefix
}

// PublicIPInfo is a built public IP.
type PublicIPInfo struct {
	Name      string
	Account   string
	Pool      *PoolInfo
	Address   netip.Addr
	NIC       *NICInfo   // nil when unassociated (or its NIC is gone)
	PrivateIP netip.Addr // valid when NIC is set
	// Gateway is the gateway host that answers for the address on the
	// outside network and translates the NIC's outbound packets while it
	// is up (nil when no host has an uplink); Gateways are all gateway
	// hosts in the order they take the address over when the ones before
	// are down (rendezvous hashing: a host going away moves only its own
	// addresses). Gateways[0] == Gateway.
	Gateway  *HostInfo
	Gateways []*HostInfo
	// Reachable: associated, and the NIC's subnet routes to the VPC's
	// internet gateway (a public subnet); only then does traffic flow.
	Reachable bool
	// Why says why an associated address carries no traffic.
	Why string
}

// Usable reports whether a is a usable address of a pool: not the
// network or broadcast address of a pool larger than /31.
func (p *PoolInfo) Usable(a netip.Addr) bool {
	if !p.CIDR.Contains(a) {
		return false
	}
	if p.CIDR.Bits() >= 31 {
		return true
	}
	return a != p.CIDR.Masked().Addr() && a != lastAddr(p.CIDR)
}

// AllocatePublicIPs gives every public IP without an address the lowest
// free usable address of its pool (used by the API/store when one is
// allocated without naming it). Public IPs of unknown or invalid pools are
// left for Build to report.
func AllocatePublicIPs(p *Policy) error {
	pools := map[string]*PoolInfo{}
	for _, pl := range p.PublicIPPools {
		if c, err := netip.ParsePrefix(pl.CIDR); err == nil && c.Addr().Is4() {
			pools[pl.Name] = &PoolInfo{Name: pl.Name, CIDR: c.Masked()}
		}
	}
	used := map[netip.Addr]bool{}
	for _, pip := range p.PublicIPs {
		if a, err := netip.ParseAddr(pip.Address); err == nil {
			used[a] = true
		}
	}
	for i := range p.PublicIPs {
		pip := &p.PublicIPs[i]
		pool := pools[pip.Pool]
		if pip.Address != "" || pool == nil {
			continue
		}
		found := false
		for a := pool.CIDR.Addr(); pool.CIDR.Contains(a); a = a.Next() {
			if pool.Usable(a) && !used[a] {
				pip.Address = a.String()
				used[a] = true
				found = true
				break
			}
		}
		if !found {
			return &FieldError{Kind: "public_ip", Name: pip.Name, Field: "pool", Msg: fmt.Sprintf("pool %q (%s) has no free address", pool.Name, pool.CIDR)}
		}
	}
	return nil
}

// uplink validates a host's uplink.
func (b *builder) uplink(h Host) *UplinkInfo {
	u := h.Uplink
	ui := &UplinkInfo{Interface: u.Interface}
	ok := true
	if u.Interface == "" || len(u.Interface) > 15 || !ifaceRE.MatchString(u.Interface) {
		b.fail("host", h.Name, "uplink.interface", "%q is not an interface name (1-15 letters, digits, '-', '_', '.')", u.Interface)
		ok = false
	}
	ip, err := netip.ParsePrefix(u.IP)
	if err != nil || !ip.Addr().Is4() || ip.Bits() > 30 {
		b.fail("host", h.Name, "uplink.ip", "%q is not an IPv4 address with a prefix length up to /30 (e.g. 198.51.100.2/24)", u.IP)
		ok = false
	} else {
		ui.IP = ip
	}
	nh, err := netip.ParseAddr(u.NextHop)
	switch {
	case err != nil || !nh.Is4():
		b.fail("host", h.Name, "uplink.next_hop", "%q is not an IPv4 address", u.NextHop)
		ok = false
	case ui.IP.IsValid() && (!ui.IP.Contains(nh) || nh == ui.IP.Addr()):
		b.fail("host", h.Name, "uplink.next_hop", "%s is not another address of the uplink's network %s", nh, ui.IP.Masked())
		ok = false
	default:
		ui.NextHop = nh
	}
	for _, f := range []struct {
		field, s string
		dst      *net.HardwareAddr
	}{{"uplink.next_hop_mac", u.NextHopMAC, &ui.NextHopMAC}, {"uplink.mac", u.MAC, &ui.MAC}} {
		if f.s == "" {
			continue
		}
		m, err := net.ParseMAC(f.s)
		if err != nil || len(m) != 6 || m[0]&1 == 1 {
			b.fail("host", h.Name, f.field, "%q is not a unicast Ethernet MAC", f.s)
			ok = false
			continue
		}
		*f.dst = m
	}
	if ui.MAC == nil {
		v := hashName("uplink/" + h.Name)
		ui.MAC = net.HardwareAddr{0x0a, 0x67, 0x77, byte(v >> 16), byte(v >> 8), byte(v)}
	}
	if !ok {
		return nil
	}
	return ui
}

// gateways validates internet gateways, pools and public IPs; it runs
// after routeTables, whose gateway routes it completes.
func (b *builder) gateways(p *Policy) {
	n := b.net
	n.InternetGateways = map[string]*IGWInfo{}
	seen := map[string]bool{}
	attached := map[*VPCInfo]string{}
	for _, g := range p.InternetGateways {
		if !b.name("internet_gateway", g.Name, seen) {
			continue
		}
		gi := &IGWInfo{Name: g.Name, Account: g.Account}
		if g.VPC != "" {
			v := n.VPCs[g.VPC]
			switch {
			case v == nil:
				b.fail("internet_gateway", g.Name, "vpc", "vpc %q does not exist", g.VPC)
				continue
			case attached[v] != "":
				b.fail("internet_gateway", g.Name, "vpc", "vpc %q already has internet gateway %q", v.Name, attached[v])
				continue
			case gi.Account != "" && gi.Account != v.Account:
				b.fail("internet_gateway", g.Name, "vpc", "vpc %q belongs to account %q, the gateway to %q", v.Name, v.Account, gi.Account)
				continue
			}
			attached[v] = g.Name
			gi.VPC = v
			v.Gateway = gi
		}
		n.InternetGateways[g.Name] = gi
	}
	n.IGWNames = sortedKeys(n.InternetGateways)

	n.Pools = map[string]*PoolInfo{}
	seen = map[string]bool{}
	for _, pl := range p.PublicIPPools {
		if !b.name("public_ip_pool", pl.Name, seen) {
			continue
		}
		c, ok := b.prefix("public_ip_pool", pl.Name, "cidr", pl.CIDR)
		if !ok {
			continue
		}
		clash := ""
		for _, o := range n.Pools {
			if o.CIDR.Overlaps(c) {
				clash = o.Name
			}
		}
		if clash != "" {
			b.fail("public_ip_pool", pl.Name, "cidr", "%s overlaps pool %q (%s)", c, clash, n.Pools[clash].CIDR)
			continue
		}
		n.Pools[pl.Name] = &PoolInfo{Name: pl.Name, CIDR: c}
	}

	for _, name := range n.HostNames {
		h := n.Hosts[name]
		if h.Uplink == nil {
			continue
		}
		n.GatewayHosts = append(n.GatewayHosts, h)
		for _, pl := range n.Pools {
			if pl.CIDR.Contains(h.Uplink.IP.Addr()) {
				b.fail("host", name, "uplink.ip", "%s is inside public IP pool %q (%s)", h.Uplink.IP.Addr(), pl.Name, pl.CIDR)
			}
		}
	}

	n.PublicIPs = map[string]*PublicIPInfo{}
	seen = map[string]bool{}
	addrs := map[netip.Addr]string{}
	privs := map[*VPCInfo]map[netip.Addr]string{}
	for _, pip := range p.PublicIPs {
		if !b.name("public_ip", pip.Name, seen) {
			continue
		}
		pool := n.Pools[pip.Pool]
		if pool == nil {
			b.fail("public_ip", pip.Name, "pool", "pool %q does not exist", pip.Pool)
			continue
		}
		a, err := netip.ParseAddr(pip.Address)
		switch {
		case pip.Address == "":
			b.fail("public_ip", pip.Name, "address", "is required (the API allocates one when it is left out)")
			continue
		case err != nil || !pool.Usable(a):
			b.fail("public_ip", pip.Name, "address", "%q is not a usable address of pool %q (%s)", pip.Address, pool.Name, pool.CIDR)
			continue
		case addrs[a] != "":
			b.fail("public_ip", pip.Name, "address", "%s is already public IP %q", a, addrs[a])
			continue
		}
		pi := &PublicIPInfo{Name: pip.Name, Account: pip.Account, Pool: pool, Address: a}
		if len(n.GatewayHosts) > 0 {
			pi.Gateways = append([]*HostInfo(nil), n.GatewayHosts...)
			score := func(h *HostInfo) uint64 { return hashName("pip/" + a.String() + "/" + h.Name) }
			sort.SliceStable(pi.Gateways, func(i, j int) bool { return score(pi.Gateways[i]) > score(pi.Gateways[j]) })
			pi.Gateway = pi.Gateways[0]
		}
		if pip.NIC != "" {
			nic := n.NICs[pip.NIC]
			if nic == nil {
				// Like a route: the association stays, inactive.
				pi.Why = fmt.Sprintf("nic %q does not exist", pip.NIC)
			} else if pip.Account != "" && nic.Account != pip.Account {
				b.fail("public_ip", pip.Name, "nic", "nic %q belongs to account %q, the public IP to %q", nic.Name, nic.Account, pip.Account)
				continue
			} else {
				priv := nic.IP
				if pip.PrivateIP != "" {
					priv, err = netip.ParseAddr(pip.PrivateIP)
					if err != nil || !slices.Contains(nic.IPs(), priv) {
						b.fail("public_ip", pip.Name, "private_ip", "%q is not an address of nic %q", pip.PrivateIP, nic.Name)
						continue
					}
				}
				v := nic.Subnet.VPC
				if privs[v] == nil {
					privs[v] = map[netip.Addr]string{}
				}
				if o := privs[v][priv]; o != "" {
					b.fail("public_ip", pip.Name, "private_ip", "%s of nic %q already has public IP %q", priv, nic.Name, o)
					continue
				}
				privs[v][priv] = pip.Name
				pi.NIC, pi.PrivateIP = nic, priv
			}
		}
		addrs[a] = pip.Name
		n.PublicIPs[pip.Name] = pi
	}
	n.PublicIPNames = sortedKeys(n.PublicIPs)

	// Complete gateway routes and decide which public IPs carry traffic.
	for _, name := range n.RouteTableNames {
		t := n.RouteTables[name]
		for _, r := range t.Routes {
			if r.gateway == "" {
				continue
			}
			g := n.InternetGateways[r.gateway]
			switch {
			case g == nil:
				r.State, r.Why = RouteBlackhole, fmt.Sprintf("internet gateway %q does not exist", r.gateway)
			case g.VPC != t.VPC:
				r.State, r.Why = RouteBlackhole, fmt.Sprintf("internet gateway %q is not attached to vpc %q", r.gateway, t.VPC.Name)
			default:
				r.Gateway = g
			}
		}
	}
	for _, name := range n.PublicIPNames {
		pi := n.PublicIPs[name]
		switch {
		case pi.NIC == nil:
			if pi.Why == "" {
				pi.Why = "not associated"
			}
		case pi.NIC.Subnet.VPC.Gateway == nil:
			pi.Why = fmt.Sprintf("vpc %q has no internet gateway", pi.NIC.Subnet.VPC.Name)
		case !pi.NIC.Subnet.RouteTable.routesToGateway():
			pi.Why = fmt.Sprintf("route table %q of subnet %q has no route to the internet gateway", pi.NIC.Subnet.RouteTable.Name, pi.NIC.Subnet.Name)
		case pi.Gateway == nil:
			pi.Why = "no host has an uplink (gateway role)"
		default:
			pi.Reachable = true
		}
	}
	n.publicByPrivate = map[*VPCInfo]map[netip.Addr]*PublicIPInfo{}
	for _, pi := range n.PublicIPs {
		if pi.NIC != nil {
			v := pi.NIC.Subnet.VPC
			if n.publicByPrivate[v] == nil {
				n.publicByPrivate[v] = map[netip.Addr]*PublicIPInfo{}
			}
			n.publicByPrivate[v][pi.PrivateIP] = pi
		}
	}
}

// routesToGateway reports whether the table has an active route to an
// internet gateway (it makes its subnets public).
func (t *RouteTableInfo) routesToGateway() bool {
	for _, r := range t.Routes {
		if r.State == RouteActive && r.Gateway != nil {
			return true
		}
	}
	return false
}

// PublicIPsOf returns the public IPs associated with a VPC's addresses,
// sorted by private address.
func (n *Net) PublicIPsOf(v *VPCInfo) []*PublicIPInfo {
	m := n.publicByPrivate[v]
	out := make([]*PublicIPInfo, 0, len(m))
	for _, pi := range m {
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PrivateIP.Less(out[j].PrivateIP) })
	return out
}
