package model

import (
	"net"
	"net/netip"
)

// Net is a validated policy, indexed and with every data-plane identifier
// assigned. It is immutable once built and safe to share between goroutines.
type Net struct {
	Accounts map[string]*Account
	VPCs     map[string]*VPCInfo
	Subnets  map[string]*SubnetInfo
	NICs     map[string]*NICInfo
	Hosts    map[string]*HostInfo
	// SecurityGroups includes every VPC's default group.
	SecurityGroups map[string]*SGInfo
	// Rules indexes every security-group rule by its id.
	Rules map[uint32]*RuleInfo
	// RouteTables includes every VPC's main table.
	RouteTables     map[string]*RouteTableInfo
	RouteTableNames []string
	Peerings        map[string]*PeeringInfo
	PeeringNames    []string
	// Internet gateways, public IP pools and public IPs; GatewayHosts are
	// the hosts with an uplink, by name.
	InternetGateways map[string]*IGWInfo
	IGWNames         []string
	Pools            map[string]*PoolInfo
	PublicIPs        map[string]*PublicIPInfo
	PublicIPNames    []string
	GatewayHosts     []*HostInfo
	// EncapOrder is the deployment's order of tunnel kinds.
	EncapOrder      []string
	pairs           map[[2]string]string
	publicByPrivate map[*VPCInfo]map[netip.Addr]*PublicIPInfo

	// Sorted name lists, for deterministic iteration.
	VPCNames    []string
	SubnetNames []string
	NICNames    []string
	HostNames   []string
	SGNames     []string
}

// VPCInfo is a built VPC.
type VPCInfo struct {
	Name      string
	Account   string
	CIDR      netip.Prefix
	VNI       uint32           // tunnel key and metadata value, 1..2^24-1
	RouterMAC net.HardwareAddr // MAC of the implied router (all its gateways)
	Shared    bool             // NICs and groups of other accounts allowed
	Subnets   []*SubnetInfo    // sorted by name
	NICs      []*NICInfo       // sorted by name
	Gateway   *IGWInfo         // attached internet gateway, or nil
}

// SubnetInfo is a built subnet.
type SubnetInfo struct {
	Name    string
	VPC     *VPCInfo
	CIDR    netip.Prefix
	Gateway netip.Addr // network + 1: the implied router
	Key     uint16     // small id carried in a register, unique across the cloud
	// RouteTable is the table the subnet uses (its VPC's main table unless
	// it names one).
	RouteTable *RouteTableInfo
}

// NICInfo is a built NIC.
type NICInfo struct {
	Name         string
	Subnet       *SubnetInfo
	Host         string // placement from policy; "" = unplaced
	MAC          net.HardwareAddr
	IP           netip.Addr
	SecondaryIPs []netip.Addr
	PortKey      uint32 // unique across the cloud
	CtZone       uint16 // conntrack zone, unique on its host (0 when unplaced)
	Account      string // owner: the VPC's account unless the VPC is shared
	Groups       []*SGInfo
	// SourceDestCheck: only the NIC's own IPs as source and destination.
	SourceDestCheck bool
	// MTU is the MTU the NIC must use: its host's VMMTU (0 when unplaced).
	MTU int
}

// IPs returns the primary and secondary IPs.
func (n *NICInfo) IPs() []netip.Addr {
	return append([]netip.Addr{n.IP}, n.SecondaryIPs...)
}

// HostInfo is a built host.
type HostInfo struct {
	Name       string
	UnderlayIP netip.Addr
	// Encaps are the kinds configured for the host (its own or the
	// deployment's), Usable those its datapath can send with.
	Encaps, Usable []string
	// UnderlayMTU (default 1500) and VMMTU, the MTU its VMs must use: the
	// underlay MTU less the overhead of the kind used with each peer (and
	// the peer's underlay MTU), the smallest over all peers.
	UnderlayMTU, VMMTU int
	// Problems are reasons some traffic cannot flow (a kind its datapath
	// cannot send, no kind in common with a peer); `openvpc show` and the
	// API report them.
	Problems     []string
	OVSDB        string
	DatapathType string
	DatapathID   uint64      // unique, derived from the name
	Uplink       *UplinkInfo // set on gateway hosts
}

// Reserved reports whether ip is one of the five addresses a subnet keeps
// for itself (network, router, DNS, future use, broadcast), as in AWS.
func (s *SubnetInfo) Reserved(ip netip.Addr) bool {
	return reservedIn(s.CIDR, ip)
}

func reservedIn(p netip.Prefix, ip netip.Addr) bool {
	n := p.Masked().Addr()
	for i := 0; i < 4; i++ {
		if ip == n {
			return true
		}
		n = n.Next()
	}
	return ip == lastAddr(p)
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (uint32(1) << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
