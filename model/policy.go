// Package model holds OpenVPC's tenant policy: the declarative objects an
// operator writes (accounts, VPCs, subnets, NICs, hosts), their validation,
// and Build, which turns a valid policy into an indexed, typed Net with every
// data-plane identifier (VPC key, MACs, port keys) assigned. It does no I/O
// beyond decoding bytes it is given.
package model

// Policy is the declarative tenant intent, as written in YAML (and later
// stored). Addresses are kept as text so that validation can name the object
// and field of a bad value.
type Policy struct {
	Accounts []Account `yaml:"accounts,omitempty" json:"accounts,omitempty"`
	VPCs     []VPC     `yaml:"vpcs,omitempty" json:"vpcs,omitempty"`
	Subnets  []Subnet  `yaml:"subnets,omitempty" json:"subnets,omitempty"`
	NICs     []NIC     `yaml:"nics,omitempty" json:"nics,omitempty"`
	Hosts    []Host    `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// SecurityGroups; each VPC's default group is added when missing.
	SecurityGroups []SecurityGroup `yaml:"security_groups,omitempty" json:"security_groups,omitempty"`
	// RouteTables; each VPC's main table is added when missing.
	RouteTables []RouteTable `yaml:"route_tables,omitempty" json:"route_tables,omitempty"`
	Peerings    []Peering    `yaml:"peerings,omitempty" json:"peerings,omitempty"`
	// InternetGateways attach to VPCs; PublicIPPools are the admin's
	// ranges of public addresses; PublicIPs are allocated from them and
	// associated with NICs (stateless 1:1 NAT on gateway hosts).
	InternetGateways []InternetGateway `yaml:"internet_gateways,omitempty" json:"internet_gateways,omitempty"`
	PublicIPPools    []PublicIPPool    `yaml:"public_ip_pools,omitempty" json:"public_ip_pools,omitempty"`
	PublicIPs        []PublicIP        `yaml:"public_ips,omitempty" json:"public_ips,omitempty"`
	// Settings are deployment-wide choices.
	Settings *Settings `yaml:"settings,omitempty" json:"settings,omitempty"`
}

// Settings are deployment-wide choices.
type Settings struct {
	// Encaps are the tunnel kinds in the deployment's order of preference;
	// default [vxlan]. Hosts may narrow them (Host.Encaps).
	Encaps []string `yaml:"encaps,omitempty" json:"encaps,omitempty"`
}

// Account is a tenant.
type Account struct {
	Name string `yaml:"name" json:"name"`
}

// VPC is an isolated virtual network of one account. CIDRs of different VPCs
// may overlap.
type VPC struct {
	Name    string `yaml:"name" json:"name"`
	Account string `yaml:"account" json:"account"`
	CIDR    string `yaml:"cidr" json:"cidr"`
	// VNI is the tunnel key; 0 lets Build assign one.
	VNI uint32 `yaml:"vni,omitempty" json:"vni,omitempty"`
	// Shared lets NICs and security groups of other accounts into the VPC
	// (CloudStack's shared network), isolated by security groups only.
	Shared bool `yaml:"shared,omitempty" json:"shared,omitempty"`
}

// Subnet is a CIDR inside its VPC.
type Subnet struct {
	Name string `yaml:"name" json:"name"`
	VPC  string `yaml:"vpc" json:"vpc"`
	CIDR string `yaml:"cidr" json:"cidr"`
	// RouteTable is the table the subnet uses; empty means its VPC's main table.
	RouteTable string `yaml:"route_table,omitempty" json:"route_table,omitempty"`
}

// NIC is a VM's network interface; its Name is the iface-id a hypervisor puts
// in external_ids:iface-id.
type NIC struct {
	Name         string   `yaml:"name" json:"name"`
	Subnet       string   `yaml:"subnet" json:"subnet"`
	Host         string   `yaml:"host,omitempty" json:"host,omitempty"`
	MAC          string   `yaml:"mac,omitempty" json:"mac,omitempty"`
	IP           string   `yaml:"ip" json:"ip"`
	SecondaryIPs []string `yaml:"secondary_ips,omitempty" json:"secondary_ips,omitempty"`
	// PortKey is the NIC's data-plane key; 0 lets Build derive one. The
	// store pins it (with the MAC and the VPC's VNI) so it never changes.
	PortKey uint32 `yaml:"port_key,omitempty" json:"port_key,omitempty"`
	// CtZone is the NIC's conntrack zone on its host, unique among the
	// host's NICs; 0 lets Build assign one. Pinned by the store.
	CtZone uint16 `yaml:"ct_zone,omitempty" json:"ct_zone,omitempty"`
	// Account owns the NIC; default the VPC's account. Only a shared VPC
	// holds NICs of other accounts.
	Account string `yaml:"account,omitempty" json:"account,omitempty"`
	// SecurityGroups the NIC is in (groups of its VPC and account); none
	// means its account's default group of the VPC.
	SecurityGroups []string `yaml:"security_groups,omitempty" json:"security_groups,omitempty"`
	// SourceDestCheck (default on) lets the NIC send only from its own IPs
	// and receive only for them; off, it may forward for others (an
	// appliance or NAT instance that routes target).
	SourceDestCheck *bool `yaml:"source_dest_check,omitempty" json:"source_dest_check,omitempty"`
}

// Host is a hypervisor running OVS.
type Host struct {
	Name       string `yaml:"name" json:"name"`
	UnderlayIP string `yaml:"underlay_ip,omitempty" json:"underlay_ip,omitempty"`
	// Encaps are the tunnel kinds the host can use (vxlan, geneve, gre,
	// stt), overriding the deployment's (Settings.Encaps); a pair of hosts
	// uses the first kind of the deployment's order both have.
	Encaps []string `yaml:"encaps,omitempty" json:"encaps,omitempty"`
	// Encap is the older single-kind form of Encaps.
	Encap string `yaml:"encap,omitempty" json:"encap,omitempty"`
	// UnderlayMTU is the MTU of the host's underlay network; default 1500.
	// Less the tunnel overhead, it gives its VMs' MTU.
	UnderlayMTU int `yaml:"underlay_mtu,omitempty" json:"underlay_mtu,omitempty"`
	// OVSDB is the endpoint the controller dials (unix:/path or tcp:ip:port).
	OVSDB string `yaml:"ovsdb,omitempty" json:"ovsdb,omitempty"`
	// DatapathType is netdev (userspace) or system (kernel); default netdev.
	DatapathType string `yaml:"datapath_type,omitempty" json:"datapath_type,omitempty"`
	// Uplink makes the host a gateway: its bridge reaches the outside
	// network through this interface and does the public IPs' 1:1 NAT.
	Uplink *Uplink `yaml:"uplink,omitempty" json:"uplink,omitempty"`
}

// Clone returns a deep copy of p.
func (p *Policy) Clone() *Policy {
	c := &Policy{
		Accounts: append([]Account(nil), p.Accounts...),
		VPCs:     append([]VPC(nil), p.VPCs...),
		Subnets:  append([]Subnet(nil), p.Subnets...),
		NICs:     append([]NIC(nil), p.NICs...),
		Hosts:    append([]Host(nil), p.Hosts...),
		Peerings: append([]Peering(nil), p.Peerings...),

		InternetGateways: append([]InternetGateway(nil), p.InternetGateways...),
		PublicIPPools:    append([]PublicIPPool(nil), p.PublicIPPools...),
		PublicIPs:        append([]PublicIP(nil), p.PublicIPs...),
	}
	if p.Settings != nil {
		st := *p.Settings
		st.Encaps = append([]string(nil), st.Encaps...)
		c.Settings = &st
	}
	for i := range c.Hosts {
		c.Hosts[i].Encaps = append([]string(nil), c.Hosts[i].Encaps...)
		if u := c.Hosts[i].Uplink; u != nil {
			v := *u
			c.Hosts[i].Uplink = &v
		}
	}
	for i := range c.NICs {
		c.NICs[i].SecondaryIPs = append([]string(nil), c.NICs[i].SecondaryIPs...)
		c.NICs[i].SecurityGroups = append([]string(nil), c.NICs[i].SecurityGroups...)
		if b := c.NICs[i].SourceDestCheck; b != nil {
			v := *b
			c.NICs[i].SourceDestCheck = &v
		}
	}
	if p.RouteTables != nil {
		c.RouteTables = make([]RouteTable, len(p.RouteTables))
		for i, t := range p.RouteTables {
			t.Routes = append([]Route(nil), t.Routes...)
			c.RouteTables[i] = t
		}
	}
	if p.SecurityGroups != nil {
		c.SecurityGroups = make([]SecurityGroup, len(p.SecurityGroups))
		for i, g := range p.SecurityGroups {
			c.SecurityGroups[i] = g.Clone()
		}
	}
	return c
}

// Clone returns a deep copy of g.
func (g SecurityGroup) Clone() SecurityGroup {
	g.Grants = append([]string(nil), g.Grants...)
	g.Ingress = cloneRules(g.Ingress)
	g.Egress = cloneRules(g.Egress)
	return g
}

func cloneRules(rs []Rule) []Rule {
	if rs == nil {
		return nil
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		if r.ICMPType != nil {
			v := *r.ICMPType
			r.ICMPType = &v
		}
		if r.ICMPCode != nil {
			v := *r.ICMPCode
			r.ICMPCode = &v
		}
		out[i] = r
	}
	return out
}
