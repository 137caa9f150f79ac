package model

import (
	"fmt"
	"net/netip"
)

// AllocateIPs gives every NIC without an IP the lowest free, non-reserved
// address of its subnet (used by the API/store when a NIC is created
// without one). NICs in unknown or invalid subnets are left for Build to
// report.
func AllocateIPs(p *Policy) error {
	subnets := map[string]Subnet{}
	for _, s := range p.Subnets {
		subnets[s.Name] = s
	}
	vpcOf := func(subnet string) string { return subnets[subnet].VPC }
	used := map[string]map[netip.Addr]bool{} // vpc → IPs
	mark := func(vpc, s string) {
		if ip, err := netip.ParseAddr(s); err == nil {
			if used[vpc] == nil {
				used[vpc] = map[netip.Addr]bool{}
			}
			used[vpc][ip] = true
		}
	}
	for _, n := range p.NICs {
		mark(vpcOf(n.Subnet), n.IP)
		for _, s := range n.SecondaryIPs {
			mark(vpcOf(n.Subnet), s)
		}
	}
	// Per-subnet cursor: addresses below it are known to be taken, so
	// allocating many NICs at once stays linear.
	cursor := map[string]netip.Addr{}
	for i := range p.NICs {
		n := &p.NICs[i]
		if n.IP != "" {
			continue
		}
		s, ok := subnets[n.Subnet]
		if !ok {
			continue
		}
		pfx, err := netip.ParsePrefix(s.CIDR)
		if err != nil || !pfx.Addr().Is4() {
			continue
		}
		pfx = pfx.Masked()
		found := false
		start, ok := cursor[s.Name]
		if !ok {
			start = pfx.Addr()
		}
		for ip := start; pfx.Contains(ip); ip = ip.Next() {
			if reservedIn(pfx, ip) || used[s.VPC][ip] {
				continue
			}
			n.IP = ip.String()
			mark(s.VPC, n.IP)
			cursor[s.Name] = ip.Next()
			found = true
			break
		}
		if !found {
			return &FieldError{Kind: "nic", Name: n.Name, Field: "ip", Msg: fmt.Sprintf("subnet %q (%s) has no free address", s.Name, s.CIDR)}
		}
	}
	return nil
}

// Pin writes the identifiers Build assigned (VNIs, MACs, port keys,
// conntrack zones) back
// into p, so that they stay the same whatever is added or removed later.
func Pin(p *Policy, n *Net) {
	for i := range p.VPCs {
		if v := n.VPCs[p.VPCs[i].Name]; v != nil {
			p.VPCs[i].VNI = v.VNI
		}
	}
	for i := range p.NICs {
		if ni := n.NICs[p.NICs[i].Name]; ni != nil {
			p.NICs[i].MAC = ni.MAC.String()
			p.NICs[i].PortKey = ni.PortKey
			p.NICs[i].CtZone = ni.CtZone
		}
	}
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		gi := n.SecurityGroups[g.Name]
		if gi == nil {
			continue
		}
		pinRules(g.Ingress, gi.Ingress)
		pinRules(g.Egress, gi.Egress)
	}
}

// pinRules copies assigned rule IDs back; built rules are in policy order.
func pinRules(rs []Rule, built []*RuleInfo) {
	if len(rs) != len(built) {
		return // Build accepted the policy, so this does not happen
	}
	for i := range rs {
		rs[i].ID = built[i].ID
	}
}
