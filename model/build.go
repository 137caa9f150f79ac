package model

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"regexp"
	"sort"
)

// FieldError is a validation error that names the object and field.
type FieldError struct {
	Kind  string // "vpc", "subnet", ...
	Name  string // object name ("" for the kind as a whole)
	Field string // field name as written in YAML/JSON
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s: %s: %s", e.Kind, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s %q: %s: %s", e.Kind, e.Name, e.Field, e.Msg)
}

// FieldErrors returns every FieldError inside err.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) && fe == e {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if fe != nil {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
var ifaceRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

type builder struct {
	errs []error
	net  *Net
}

func (b *builder) fail(kind, name, field, format string, args ...any) {
	b.errs = append(b.errs, &FieldError{Kind: kind, Name: name, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Build validates p and returns the indexed network. All problems are
// reported at once (errors.Join of *FieldError).
func Build(p *Policy) (*Net, error) {
	b := &builder{net: &Net{
		Accounts: map[string]*Account{}, VPCs: map[string]*VPCInfo{}, Subnets: map[string]*SubnetInfo{},
		NICs: map[string]*NICInfo{}, Hosts: map[string]*HostInfo{},
	}}
	b.accounts(p.Accounts)
	b.settings(p.Settings)
	b.hosts(p.Hosts)
	b.vpcs(p.VPCs)
	b.peerings(p.Peerings)
	b.subnets(p.Subnets)
	b.nics(p.NICs)
	b.securityGroups(p)
	b.routeTables(p)
	b.gateways(p)
	for _, nic := range b.net.NICs {
		if h := b.net.Hosts[nic.Host]; h != nil {
			nic.MTU = h.VMMTU
		}
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return b.net, nil
}

func (b *builder) name(kind, name string, seen map[string]bool) bool {
	switch {
	case name == "":
		b.fail(kind, "", "name", "is required")
		return false
	case !nameRE.MatchString(name):
		b.fail(kind, name, "name", "must be 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit")
		return false
	case seen[name]:
		b.fail(kind, name, "name", "is a duplicate")
		return false
	}
	seen[name] = true
	return true
}

func (b *builder) accounts(as []Account) {
	seen := map[string]bool{}
	for i := range as {
		a := as[i]
		if b.name("account", a.Name, seen) {
			b.net.Accounts[a.Name] = &a
		}
	}
}

func (b *builder) hosts(hs []Host) {
	seen := map[string]bool{}
	ips := map[netip.Addr]string{}
	dpids := map[uint64]string{}
	for _, h := range hs {
		if !b.name("host", h.Name, seen) {
			continue
		}
		hi := &HostInfo{Name: h.Name, OVSDB: h.OVSDB, DatapathType: h.DatapathType}
		ip, err := netip.ParseAddr(h.UnderlayIP)
		switch {
		case h.UnderlayIP == "":
			b.fail("host", h.Name, "underlay_ip", "is required")
		case err != nil || !ip.Is4():
			b.fail("host", h.Name, "underlay_ip", "%q is not an IPv4 address", h.UnderlayIP)
		case ips[ip] != "":
			b.fail("host", h.Name, "underlay_ip", "%s is already used by host %q", ip, ips[ip])
		default:
			ips[ip] = h.Name
			hi.UnderlayIP = ip
		}
		if hi.DatapathType == "" {
			hi.DatapathType = "netdev"
		}
		if hi.DatapathType != "netdev" && hi.DatapathType != "system" {
			b.fail("host", h.Name, "datapath_type", "%q must be netdev or system", h.DatapathType)
		}
		if h.Uplink != nil {
			hi.Uplink = b.uplink(h)
		}
		b.hostTunnels(h, hi)
		hi.DatapathID = probe(hashName("host/"+h.Name)&0xffffffffffff|1, 0xffffffffffff, func(v uint64) bool { return dpids[v] != "" })
		dpids[hi.DatapathID] = h.Name
		b.net.Hosts[h.Name] = hi
	}
	b.net.HostNames = sortedKeys(b.net.Hosts)
	b.pairTunnels()
}

func (b *builder) vpcs(vs []VPC) {
	seen := map[string]bool{}
	vnis := map[uint32]string{}
	var auto []*VPCInfo
	for _, v := range vs {
		if !b.name("vpc", v.Name, seen) {
			continue
		}
		vi := &VPCInfo{Name: v.Name, Account: v.Account, Shared: v.Shared}
		if v.Account == "" {
			b.fail("vpc", v.Name, "account", "is required")
		} else if b.net.Accounts[v.Account] == nil {
			b.fail("vpc", v.Name, "account", "account %q does not exist", v.Account)
		}
		if p, ok := b.prefix("vpc", v.Name, "cidr", v.CIDR); ok {
			if p.Bits() < 16 || p.Bits() > 28 {
				b.fail("vpc", v.Name, "cidr", "prefix length must be between /16 and /28, got /%d", p.Bits())
			}
			vi.CIDR = p
		}
		switch {
		case v.VNI == 0:
			auto = append(auto, vi)
		case v.VNI > 0xffffff:
			b.fail("vpc", v.Name, "vni", "%d is out of range 1..16777215", v.VNI)
		case vnis[v.VNI] != "":
			b.fail("vpc", v.Name, "vni", "%d is already used by vpc %q", v.VNI, vnis[v.VNI])
		default:
			vi.VNI = v.VNI
			vnis[v.VNI] = v.Name
		}
		b.net.VPCs[v.Name] = vi
	}
	// Automatic keys: by name order, hashed and probed, so unchanged VPCs keep theirs.
	sort.Slice(auto, func(i, j int) bool { return auto[i].Name < auto[j].Name })
	for _, vi := range auto {
		vi.VNI = uint32(probe(hashName("vpc/"+vi.Name)%0xfffffe+1, 0xffffff, func(v uint64) bool { return v == 0 || vnis[uint32(v)] != "" }))
		vnis[vi.VNI] = vi.Name
	}
	for _, vi := range b.net.VPCs {
		vi.RouterMAC = net.HardwareAddr{0x0a, 0x76, 0x70, byte(vi.VNI >> 16), byte(vi.VNI >> 8), byte(vi.VNI)}
	}
	b.net.VPCNames = sortedKeys(b.net.VPCs)
}

func (b *builder) prefix(kind, name, field, s string) (netip.Prefix, bool) {
	if s == "" {
		b.fail(kind, name, field, "is required")
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		b.fail(kind, name, field, "%q is not an IPv4 CIDR", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		b.fail(kind, name, field, "%q has host bits set (did you mean %s?)", s, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

func (b *builder) subnets(ss []Subnet) {
	seen := map[string]bool{}
	keys := map[uint64]bool{0: true}
	for _, s := range ss {
		if !b.name("subnet", s.Name, seen) {
			continue
		}
		si := &SubnetInfo{Name: s.Name}
		vi := b.net.VPCs[s.VPC]
		if s.VPC == "" {
			b.fail("subnet", s.Name, "vpc", "is required")
		} else if vi == nil {
			b.fail("subnet", s.Name, "vpc", "vpc %q does not exist", s.VPC)
		}
		p, ok := b.prefix("subnet", s.Name, "cidr", s.CIDR)
		if ok {
			if p.Bits() > 28 {
				b.fail("subnet", s.Name, "cidr", "prefix length must be /28 or shorter, got /%d", p.Bits())
				ok = false
			}
			si.CIDR = p
			si.Gateway = p.Addr().Next()
		}
		if vi == nil || !ok {
			continue
		}
		if vi.CIDR.IsValid() && !(vi.CIDR.Contains(p.Addr()) && p.Bits() >= vi.CIDR.Bits()) {
			b.fail("subnet", s.Name, "cidr", "%s is not inside vpc %q (%s)", p, vi.Name, vi.CIDR)
			continue
		}
		clash := false
		for _, o := range vi.Subnets {
			if o.CIDR.Overlaps(p) {
				b.fail("subnet", s.Name, "cidr", "%s overlaps subnet %q (%s)", p, o.Name, o.CIDR)
				clash = true
			}
		}
		if clash {
			continue
		}
		si.VPC = vi
		vi.Subnets = append(vi.Subnets, si)
		b.net.Subnets[s.Name] = si
	}
	b.net.SubnetNames = sortedKeys(b.net.Subnets)
	for _, name := range b.net.SubnetNames {
		si := b.net.Subnets[name]
		si.Key = uint16(probe(hashName("subnet/"+name)%0xfffe+1, 0xffff, func(v uint64) bool { return keys[v] }))
		keys[uint64(si.Key)] = true
	}
	for _, vi := range b.net.VPCs {
		sort.Slice(vi.Subnets, func(i, j int) bool { return vi.Subnets[i].Name < vi.Subnets[j].Name })
	}
}

func (b *builder) nics(ns []NIC) {
	seen := map[string]bool{}
	type vpcAddr struct {
		vpc string
		ip  netip.Addr
	}
	type vpcMAC struct {
		vpc string
		mac string
	}
	ipOwner := map[vpcAddr]string{}
	macOwner := map[vpcMAC]string{}
	var autoMAC []*NICInfo
	for _, n := range ns {
		if !b.name("nic", n.Name, seen) {
			continue
		}
		ni := &NICInfo{Name: n.Name, Host: n.Host, SourceDestCheck: n.SourceDestCheck == nil || *n.SourceDestCheck}
		si := b.net.Subnets[n.Subnet]
		if n.Subnet == "" {
			b.fail("nic", n.Name, "subnet", "is required")
		} else if si == nil {
			b.fail("nic", n.Name, "subnet", "subnet %q does not exist", n.Subnet)
		}
		if n.Host != "" && b.net.Hosts[n.Host] == nil {
			b.fail("nic", n.Name, "host", "host %q does not exist", n.Host)
		}
		if si == nil {
			continue
		}
		ni.Subnet = si
		vpc := si.VPC.Name
		ni.Account = accountOfNIC(&n, si.VPC)
		if n.Account != "" && b.net.Accounts[n.Account] == nil {
			b.fail("nic", n.Name, "account", "account %q does not exist", n.Account)
		} else if ni.Account != si.VPC.Account && !si.VPC.Shared {
			b.fail("nic", n.Name, "account", "vpc %q belongs to account %q and is not shared", vpc, si.VPC.Account)
		}
		check := func(field, s string) (netip.Addr, bool) {
			ip, err := netip.ParseAddr(s)
			switch {
			case s == "":
				b.fail("nic", n.Name, field, "is required")
			case err != nil || !ip.Is4():
				b.fail("nic", n.Name, field, "%q is not an IPv4 address", s)
			case !si.CIDR.Contains(ip):
				b.fail("nic", n.Name, field, "%s is outside subnet %q (%s)", ip, si.Name, si.CIDR)
			case si.Reserved(ip):
				b.fail("nic", n.Name, field, "%s is reserved in subnet %q (network, .1 router, .2 DNS, .3, broadcast)", ip, si.Name)
			case ipOwner[vpcAddr{vpc, ip}] != "":
				b.fail("nic", n.Name, field, "%s is already used by nic %q in vpc %q", ip, ipOwner[vpcAddr{vpc, ip}], vpc)
			default:
				ipOwner[vpcAddr{vpc, ip}] = n.Name
				return ip, true
			}
			return netip.Addr{}, false
		}
		ni.IP, _ = check("ip", n.IP)
		for i, s := range n.SecondaryIPs {
			if ip, ok := check(fmt.Sprintf("secondary_ips[%d]", i), s); ok {
				ni.SecondaryIPs = append(ni.SecondaryIPs, ip)
			}
		}
		if n.MAC == "" {
			autoMAC = append(autoMAC, ni)
		} else if mac, err := net.ParseMAC(n.MAC); err != nil || len(mac) != 6 {
			b.fail("nic", n.Name, "mac", "%q is not a MAC address", n.MAC)
		} else if mac[0]&1 != 0 || mac.String() == "00:00:00:00:00:00" {
			b.fail("nic", n.Name, "mac", "%s is not a unicast address", mac)
		} else if mac[0] == 0x0a && mac[1] == 0x76 && mac[2] == 0x70 {
			b.fail("nic", n.Name, "mac", "%s is in the range 0a:76:70 kept for virtual routers", mac)
		} else if o := macOwner[vpcMAC{vpc, mac.String()}]; o != "" {
			b.fail("nic", n.Name, "mac", "%s is already used by nic %q in vpc %q", mac, o, vpc)
		} else {
			ni.MAC = mac
			macOwner[vpcMAC{vpc, mac.String()}] = n.Name
		}
		b.net.NICs[n.Name] = ni
	}
	b.net.NICNames = sortedKeys(b.net.NICs)
	sort.Slice(autoMAC, func(i, j int) bool { return autoMAC[i].Name < autoMAC[j].Name })
	for _, ni := range autoMAC {
		vpc := ni.Subnet.VPC.Name
		v := probe(hashName("mac/"+ni.Name)&0xffffff, 0xffffff, func(v uint64) bool {
			m := net.HardwareAddr{0x02, 0x76, 0x6d, byte(v >> 16), byte(v >> 8), byte(v)}
			return macOwner[vpcMAC{vpc, m.String()}] != ""
		})
		ni.MAC = net.HardwareAddr{0x02, 0x76, 0x6d, byte(v >> 16), byte(v >> 8), byte(v)}
		macOwner[vpcMAC{vpc, ni.MAC.String()}] = ni.Name
	}
	// Port keys: explicit (durable, from the store) first, then derived.
	keys := map[uint64]string{0: "-"}
	for _, n := range ns {
		ni := b.net.NICs[n.Name]
		if ni == nil || n.PortKey == 0 {
			continue
		}
		if n.PortKey > 0xffffff {
			b.fail("nic", n.Name, "port_key", "%d is out of range 1..16777215", n.PortKey)
		} else if o := keys[uint64(n.PortKey)]; o != "" {
			b.fail("nic", n.Name, "port_key", "%d is already used by nic %q", n.PortKey, o)
		} else {
			ni.PortKey = n.PortKey
			keys[uint64(n.PortKey)] = n.Name
		}
	}
	for _, name := range b.net.NICNames {
		ni := b.net.NICs[name]
		if ni.PortKey == 0 {
			ni.PortKey = uint32(probe(hashName("port/"+name)%0xfffffe+1, 0xffffff, func(v uint64) bool { return keys[v] != "" }))
			keys[uint64(ni.PortKey)] = name
		}
		vi := ni.Subnet.VPC
		vi.NICs = append(vi.NICs, ni)
	}
	for _, vi := range b.net.VPCs {
		sort.Slice(vi.NICs, func(i, j int) bool { return vi.NICs[i].Name < vi.NICs[j].Name })
	}
	b.zones(ns)
}

// zones gives every placed NIC a conntrack zone unique on its host: the
// pinned one if it has one, else one derived from its name.
func (b *builder) zones(ns []NIC) {
	type hostZone struct {
		host string
		zone uint64
	}
	used := map[hostZone]string{}
	for _, n := range ns {
		ni := b.net.NICs[n.Name]
		if ni == nil || n.Host == "" || n.CtZone == 0 {
			continue
		}
		k := hostZone{n.Host, uint64(n.CtZone)}
		if o := used[k]; o != "" {
			b.fail("nic", n.Name, "ct_zone", "%d is already used on host %q by nic %q", n.CtZone, n.Host, o)
			continue
		}
		used[k] = n.Name
		ni.CtZone = n.CtZone
	}
	for _, name := range b.net.NICNames {
		ni := b.net.NICs[name]
		if ni.Host == "" || ni.CtZone != 0 {
			continue
		}
		z := probe(hashName("zone/"+name)%0xfffe+1, 0xffff, func(v uint64) bool { return v == 0 || used[hostZone{ni.Host, v}] != "" })
		used[hostZone{ni.Host, z}] = name
		ni.CtZone = uint16(z)
	}
}

func hashName(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// probe returns the first value from start (wrapping within 0..max) that is
// not taken. Deterministic, so an unchanged policy gets unchanged values.
func probe(start, max uint64, taken func(uint64) bool) uint64 {
	v := start % (max + 1)
	for taken(v) {
		v = (v + 1) % (max + 1)
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
