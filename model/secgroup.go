package model

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// SecurityGroup is a stateful, allow-only firewall of a VPC, applied to the
// NICs that are its members. Rules of all of a NIC's groups form a union.
type SecurityGroup struct {
	Name string `yaml:"name" json:"name"`
	VPC  string `yaml:"vpc" json:"vpc"`
	// Account owns the group; default the VPC's account. Only a shared VPC
	// holds groups of other accounts.
	Account     string `yaml:"account,omitempty" json:"account,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Default marks the account's default group of the VPC (one per account
	// and VPC, named DefaultGroupName): NICs naming no group are in it.
	Default bool   `yaml:"default,omitempty" json:"default,omitempty"`
	Ingress []Rule `yaml:"ingress,omitempty" json:"ingress,omitempty"`
	Egress  []Rule `yaml:"egress,omitempty" json:"egress,omitempty"`
	// Grants are the other accounts allowed to name this group as a peer
	// in their rules (CloudStack's "account + group"). Revoking a grant
	// makes their rules inactive for new connections.
	Grants []string `yaml:"grants,omitempty" json:"grants,omitempty"`
}

// Rule allows one kind of traffic to (ingress) or from (egress) the group's
// members. The peer is a CIDR or a security group, never both.
type Rule struct {
	// ID names the rule in flows, conntrack labels and traces; 0 lets Build
	// assign one. Pinned by the store.
	ID uint32 `yaml:"id,omitempty" json:"id,omitempty"`
	// Protocol is tcp, udp, icmp, all, or an IP protocol number 0-255.
	Protocol string `yaml:"protocol" json:"protocol"`
	// Ports is a destination port or range ("22", "8000-8080") for tcp and
	// udp; empty means all ports.
	Ports string `yaml:"ports,omitempty" json:"ports,omitempty"`
	// ICMPType and ICMPCode restrict an icmp rule; nil means any.
	ICMPType    *int   `yaml:"icmp_type,omitempty" json:"icmp_type,omitempty"`
	ICMPCode    *int   `yaml:"icmp_code,omitempty" json:"icmp_code,omitempty"`
	CIDR        string `yaml:"cidr,omitempty" json:"cidr,omitempty"`
	Group       string `yaml:"group,omitempty" json:"group,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Direction of a rule.
type Direction uint8

// Directions.
const (
	Ingress Direction = iota
	Egress
)

func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// Protocol names for the special values of RuleInfo.Proto.
const (
	ProtoAll  = -1
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// SGInfo is a built security group.
type SGInfo struct {
	Name    string
	VPC     *VPCInfo
	Account string
	Default bool
	Ingress []*RuleInfo
	Egress  []*RuleInfo
	Grants  map[string]bool
	Members []*NICInfo // sorted by name
}

// Rules returns the group's rules of one direction.
func (g *SGInfo) Rules(d Direction) []*RuleInfo {
	if d == Ingress {
		return g.Ingress
	}
	return g.Egress
}

// RuleInfo is a built rule.
type RuleInfo struct {
	ID        uint32
	Group     *SGInfo
	Direction Direction
	// Proto is the IP protocol, or ProtoAll.
	Proto int
	// PortMin..PortMax is the destination port range (tcp/udp; 0-65535 = any).
	PortMin, PortMax uint16
	// ICMPType and ICMPCode are -1 for any.
	ICMPType, ICMPCode int
	CIDR               netip.Prefix // valid for a CIDR peer
	Peer               *SGInfo      // non-nil for a group peer
	// Inactive says why the rule has no effect ("" when it is in force):
	// a peer group of another account that has not granted it.
	Inactive string
}

// AnyPort reports whether the rule covers every port (or has none).
func (r *RuleInfo) AnyPort() bool { return r.PortMin == 0 && r.PortMax == 65535 }

// Text describes the rule for operators ("ingress tcp 22 from 10.0.0.0/8").
func (r *RuleInfo) Text() string {
	var b strings.Builder
	b.WriteString(r.Direction.String())
	b.WriteString(" ")
	b.WriteString(ProtoName(r.Proto))
	if (r.Proto == ProtoTCP || r.Proto == ProtoUDP) && !r.AnyPort() {
		if r.PortMin == r.PortMax {
			fmt.Fprintf(&b, " %d", r.PortMin)
		} else {
			fmt.Fprintf(&b, " %d-%d", r.PortMin, r.PortMax)
		}
	}
	if r.Proto == ProtoICMP && r.ICMPType >= 0 {
		fmt.Fprintf(&b, " type %d", r.ICMPType)
		if r.ICMPCode >= 0 {
			fmt.Fprintf(&b, " code %d", r.ICMPCode)
		}
	}
	if r.Direction == Ingress {
		b.WriteString(" from ")
	} else {
		b.WriteString(" to ")
	}
	if r.Peer != nil {
		b.WriteString("group " + r.Peer.Name)
	} else {
		b.WriteString(r.CIDR.String())
	}
	return b.String()
}

// ProtoName is the rule protocol as written in policy.
func ProtoName(p int) string {
	switch p {
	case ProtoAll:
		return "all"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	}
	return strconv.Itoa(p)
}

// DefaultGroupName is the name of an account's default group in a VPC:
// "<vpc>-default" for the VPC's owner, "<vpc>-<account>-default" for
// another account in a shared VPC.
func DefaultGroupName(vpc, vpcOwner, account string) string {
	if account == "" || account == vpcOwner {
		return vpc + "-default"
	}
	return vpc + "-" + account + "-default"
}

// DefaultGroup returns the default group of an account in a VPC, as created
// with the VPC: all ingress from its own members, all egress.
func DefaultGroup(vpc, vpcOwner, account string) SecurityGroup {
	name := DefaultGroupName(vpc, vpcOwner, account)
	g := SecurityGroup{
		Name: name, VPC: vpc, Default: true,
		Description: "default group: ingress from its members, all egress",
		Ingress:     []Rule{{Protocol: "all", Group: name}},
		Egress:      []Rule{{Protocol: "all", CIDR: "0.0.0.0/0"}},
	}
	if account != vpcOwner {
		g.Account = account
	}
	return g
}

// AllEgress is the rule a new group gets: all egress traffic.
func AllEgress() Rule { return Rule{Protocol: "all", CIDR: "0.0.0.0/0"} }

// missingDefaults lists the default groups p lacks: one for each VPC's
// owner and one for each other account with NICs in a shared VPC.
func missingDefaults(p *Policy) []SecurityGroup {
	have := map[string]bool{}
	for _, g := range p.SecurityGroups {
		have[g.Name] = true
	}
	owner := map[string]string{}
	var out []SecurityGroup
	add := func(vpc, acct string) {
		n := DefaultGroupName(vpc, owner[vpc], acct)
		if !have[n] {
			have[n] = true
			out = append(out, DefaultGroup(vpc, owner[vpc], acct))
		}
	}
	for _, v := range p.VPCs {
		if v.Name == "" || v.Account == "" {
			continue
		}
		owner[v.Name] = v.Account
		add(v.Name, v.Account)
	}
	vpcOf := map[string]string{}
	for _, s := range p.Subnets {
		vpcOf[s.Name] = s.VPC
	}
	for _, n := range p.NICs {
		vpc := vpcOf[n.Subnet]
		if _, ok := owner[vpc]; ok && n.Account != "" {
			add(vpc, n.Account)
		}
	}
	return out
}

// EnsureDefaultGroups adds the default groups p lacks and drops default
// groups whose VPC or account is gone, so the store keeps them (and their
// editable rules) with the VPC's lifetime.
func EnsureDefaultGroups(p *Policy) {
	vpcs := map[string]bool{}
	for _, v := range p.VPCs {
		vpcs[v.Name] = true
	}
	accts := map[string]bool{}
	for _, a := range p.Accounts {
		accts[a.Name] = true
	}
	kept := p.SecurityGroups[:0]
	for _, g := range p.SecurityGroups {
		if g.Default && (!vpcs[g.VPC] || (g.Account != "" && !accts[g.Account])) {
			continue
		}
		kept = append(kept, g)
	}
	p.SecurityGroups = append(kept, missingDefaults(p)...)
}

// ParsePorts parses "", "N" or "N-M" into a range (empty: all ports).
func ParsePorts(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 65535, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	x, err1 := strconv.Atoi(strings.TrimSpace(a))
	y := x
	var err2 error
	if isRange {
		y, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%q is not a port or a range FROM-TO", s)
	case x < 0 || x > 65535 || y < 0 || y > 65535:
		return 0, 0, fmt.Errorf("%q is out of range: ports are 0-65535", s)
	case x > y:
		return 0, 0, fmt.Errorf("%q: the first port is greater than the last", s)
	}
	return uint16(x), uint16(y), nil
}

// ParseProtocol returns the protocol number of a rule (ProtoAll for all).
func ParseProtocol(s string) (int, error) {
	switch strings.ToLower(s) {
	case "":
		return 0, fmt.Errorf("is required (tcp, udp, icmp, all or a number 0-255)")
	case "all", "-1":
		return ProtoAll, nil
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	case "icmp":
		return ProtoICMP, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("%q is not tcp, udp, icmp, all or a protocol number 0-255", s)
	}
	return n, nil
}

// canonical is a rule's identity within its group and direction (ID and
// description aside), used to refuse duplicates and to derive IDs.
func canonical(r *RuleInfo) string {
	return fmt.Sprintf("%d/%d-%d/%d.%d/%s/%s", r.Proto, r.PortMin, r.PortMax, r.ICMPType, r.ICMPCode, r.CIDR, peerName(r))
}

func peerName(r *RuleInfo) string {
	if r.Peer != nil {
		return r.Peer.Name
	}
	return ""
}

// SameRule reports whether two policy rules allow the same traffic (for
// revoke by content). Invalid rules are never the same.
func SameRule(a, b Rule) bool {
	ka, ok1 := ruleKey(a)
	kb, ok2 := ruleKey(b)
	return ok1 && ok2 && ka == kb
}

func ruleKey(r Rule) (string, bool) {
	ri := &RuleInfo{ICMPType: -1, ICMPCode: -1}
	var err error
	if ri.Proto, err = ParseProtocol(r.Protocol); err != nil {
		return "", false
	}
	if ri.PortMin, ri.PortMax, err = ParsePorts(r.Ports); err != nil {
		return "", false
	}
	if r.ICMPType != nil {
		ri.ICMPType = *r.ICMPType
	}
	if r.ICMPCode != nil {
		ri.ICMPCode = *r.ICMPCode
	}
	if r.CIDR != "" {
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil {
			return "", false
		}
		ri.CIDR = p.Masked()
	}
	return canonical(ri) + "/" + r.Group, true
}

// accountOfNIC is a NIC's owner: its own account field, else its VPC's.
func accountOfNIC(n *NIC, vpc *VPCInfo) string {
	if n.Account != "" {
		return n.Account
	}
	return vpc.Account
}

// securityGroups validates the groups (with the default groups p lacks),
// assigns rule IDs and NIC memberships. It runs after nics.
func (b *builder) securityGroups(p *Policy) {
	sgs := append(append([]SecurityGroup(nil), p.SecurityGroups...), missingDefaults(p)...)
	b.net.SecurityGroups = map[string]*SGInfo{}
	seen := map[string]bool{}
	accepted := map[int]bool{}
	// Pass 1: the groups themselves, so rules can name any of them.
	for i := range sgs {
		g := &sgs[i]
		if !b.name("security_group", g.Name, seen) {
			continue
		}
		vi := b.net.VPCs[g.VPC]
		if g.VPC == "" {
			b.fail("security_group", g.Name, "vpc", "is required")
			continue
		} else if vi == nil {
			b.fail("security_group", g.Name, "vpc", "vpc %q does not exist", g.VPC)
			continue
		}
		gi := &SGInfo{Name: g.Name, VPC: vi, Account: g.Account, Default: g.Default, Grants: map[string]bool{}}
		if gi.Account == "" {
			gi.Account = vi.Account
		}
		if b.net.Accounts[gi.Account] == nil {
			b.fail("security_group", g.Name, "account", "account %q does not exist", gi.Account)
			continue
		}
		if gi.Account != vi.Account && !vi.Shared {
			b.fail("security_group", g.Name, "account", "vpc %q belongs to account %q and is not shared", vi.Name, vi.Account)
			continue
		}
		want := DefaultGroupName(vi.Name, vi.Account, gi.Account)
		if g.Default && g.Name != want {
			b.fail("security_group", g.Name, "name", "the default group of account %q in vpc %q must be named %q", gi.Account, vi.Name, want)
			continue
		}
		if !g.Default && strings.HasSuffix(g.Name, "-default") {
			b.fail("security_group", g.Name, "name", "names ending in -default are kept for default groups")
			continue
		}
		for j, a := range g.Grants {
			switch {
			case b.net.Accounts[a] == nil:
				b.fail("security_group", g.Name, fmt.Sprintf("grants[%d]", j), "account %q does not exist", a)
			case a == gi.Account:
				b.fail("security_group", g.Name, fmt.Sprintf("grants[%d]", j), "account %q owns the group", a)
			case gi.Grants[a]:
				b.fail("security_group", g.Name, fmt.Sprintf("grants[%d]", j), "account %q is granted twice", a)
			default:
				gi.Grants[a] = true
			}
		}
		b.net.SecurityGroups[g.Name] = gi
		accepted[i] = true
	}
	b.net.SGNames = sortedKeys(b.net.SecurityGroups)
	// Pass 2: rules.
	ids := map[uint32]string{}
	var auto []*RuleInfo
	autoKey := map[*RuleInfo]string{}
	for i := range sgs {
		g := &sgs[i]
		if !accepted[i] {
			continue
		}
		gi := b.net.SecurityGroups[g.Name]
		for _, d := range []Direction{Ingress, Egress} {
			rules := g.Ingress
			if d == Egress {
				rules = g.Egress
			}
			dup := map[string]int{}
			for j := range rules {
				field := fmt.Sprintf("%s[%d]", d, j)
				ri, ok := b.rule(gi, d, field, &rules[j])
				if !ok {
					continue
				}
				k := canonical(ri)
				if o, ok := dup[k]; ok {
					b.fail("security_group", g.Name, field, "duplicates %s[%d]", d, o)
					continue
				}
				dup[k] = j
				switch id := rules[j].ID; {
				case id == 0:
					auto = append(auto, ri)
					autoKey[ri] = g.Name + "/" + d.String() + "/" + k
				case id > maxRuleID:
					b.fail("security_group", g.Name, field+".id", "%d is out of range 1..%d", id, maxRuleID)
					continue
				case ids[id] != "":
					b.fail("security_group", g.Name, field+".id", "%d is already used by a rule of group %q", id, ids[id])
					continue
				default:
					ri.ID = id
					ids[id] = g.Name
				}
				if d == Ingress {
					gi.Ingress = append(gi.Ingress, ri)
				} else {
					gi.Egress = append(gi.Egress, ri)
				}
			}
		}
	}
	sort.Slice(auto, func(i, j int) bool { return autoKey[auto[i]] < autoKey[auto[j]] })
	for _, ri := range auto {
		ri.ID = uint32(probe(hashName("rule/"+autoKey[ri])%maxRuleID+1, maxRuleID, func(v uint64) bool { return v == 0 || ids[uint32(v)] != "" }))
		ids[ri.ID] = ri.Group.Name
	}
	b.net.Rules = map[uint32]*RuleInfo{}
	for _, g := range b.net.SecurityGroups {
		for _, r := range append(append([]*RuleInfo(nil), g.Ingress...), g.Egress...) {
			b.net.Rules[r.ID] = r
		}
	}
	b.memberships(p)
}

// maxRuleID keeps rule IDs in 31 bits (conjunction ids and labels).
const maxRuleID = 0x7fffffff

func (b *builder) rule(gi *SGInfo, d Direction, field string, r *Rule) (*RuleInfo, bool) {
	ri := &RuleInfo{Group: gi, Direction: d, ICMPType: -1, ICMPCode: -1, PortMin: 0, PortMax: 65535}
	fail := func(sub, format string, args ...any) (*RuleInfo, bool) {
		b.fail("security_group", gi.Name, field+"."+sub, format, args...)
		return nil, false
	}
	proto, err := ParseProtocol(r.Protocol)
	if err != nil {
		return fail("protocol", "%s", err.Error())
	}
	ri.Proto = proto
	if r.Ports != "" {
		if proto != ProtoTCP && proto != ProtoUDP {
			return fail("ports", "only tcp and udp rules have ports")
		}
		if ri.PortMin, ri.PortMax, err = ParsePorts(r.Ports); err != nil {
			return fail("ports", "%s", err.Error())
		}
	}
	if r.ICMPType != nil || r.ICMPCode != nil {
		if proto != ProtoICMP {
			return fail("icmp_type", "only icmp rules have an ICMP type and code")
		}
		if r.ICMPType == nil {
			return fail("icmp_code", "needs icmp_type")
		}
		if *r.ICMPType < 0 || *r.ICMPType > 255 {
			return fail("icmp_type", "%d is out of range 0-255", *r.ICMPType)
		}
		ri.ICMPType = *r.ICMPType
		if r.ICMPCode != nil {
			if *r.ICMPCode < 0 || *r.ICMPCode > 255 {
				return fail("icmp_code", "%d is out of range 0-255", *r.ICMPCode)
			}
			ri.ICMPCode = *r.ICMPCode
		}
	}
	switch {
	case r.CIDR != "" && r.Group != "":
		return fail("cidr", "give either cidr or group, not both")
	case r.CIDR != "":
		p, ok := b.prefix("security_group", gi.Name, field+".cidr", r.CIDR)
		if !ok {
			return nil, false
		}
		ri.CIDR = p
	case r.Group != "":
		peer := b.net.SecurityGroups[r.Group]
		if peer == nil {
			return fail("group", "security group %q does not exist", r.Group)
		}
		ri.Peer = peer
		switch {
		case peer.VPC != gi.VPC && !b.anyPeering(peer.VPC, gi.VPC):
			return fail("group", "security group %q is in vpc %q; rules name groups of their own vpc or of a peered one", r.Group, peer.VPC.Name)
		case peer.VPC != gi.VPC && !b.net.Peered(peer.VPC, gi.VPC):
			ri.Inactive = fmt.Sprintf("the peering of vpc %q and vpc %q is not accepted", gi.VPC.Name, peer.VPC.Name)
		case peer.Account != gi.Account && !peer.Grants[gi.Account]:
			ri.Inactive = fmt.Sprintf("account %q has not granted group %q to account %q", peer.Account, peer.Name, gi.Account)
		}
	default:
		return fail("cidr", "a peer is required: cidr or group")
	}
	return ri, true
}

// memberships puts every NIC into its groups (or its default group).
func (b *builder) memberships(p *Policy) {
	for _, n := range p.NICs {
		ni := b.net.NICs[n.Name]
		if ni == nil || ni.Subnet == nil {
			continue
		}
		vi := ni.Subnet.VPC
		names := n.SecurityGroups
		if len(names) == 0 {
			names = []string{DefaultGroupName(vi.Name, vi.Account, ni.Account)}
		}
		if len(names) > maxGroupsPerNIC {
			b.fail("nic", n.Name, "security_groups", "a NIC is in at most %d groups, got %d", maxGroupsPerNIC, len(names))
			continue
		}
		dup := map[string]bool{}
		for i, gn := range names {
			field := fmt.Sprintf("security_groups[%d]", i)
			g := b.net.SecurityGroups[gn]
			switch {
			case g == nil:
				b.fail("nic", n.Name, field, "security group %q does not exist", gn)
			case g.VPC != vi:
				b.fail("nic", n.Name, field, "security group %q is in vpc %q, the NIC in vpc %q", gn, g.VPC.Name, vi.Name)
			case g.Account != ni.Account:
				b.fail("nic", n.Name, field, "security group %q belongs to account %q, the NIC to %q", gn, g.Account, ni.Account)
			case dup[gn]:
				b.fail("nic", n.Name, field, "security group %q is listed twice", gn)
			default:
				dup[gn] = true
				ni.Groups = append(ni.Groups, g)
				g.Members = append(g.Members, ni)
			}
		}
	}
	for _, g := range b.net.SecurityGroups {
		sort.Slice(g.Members, func(i, j int) bool { return g.Members[i].Name < g.Members[j].Name })
	}
	for _, ni := range b.net.NICs {
		sort.Slice(ni.Groups, func(i, j int) bool { return ni.Groups[i].Name < ni.Groups[j].Name })
	}
}

const maxGroupsPerNIC = 16

// anyPeering reports whether a peering, accepted or not, joins two VPCs.
func (b *builder) anyPeering(a, z *VPCInfo) bool {
	for _, p := range b.net.Peerings {
		if p.Other(a) == z {
			return true
		}
	}
	return false
}

// NamesPeer reports whether a rule of g names a peer group for which is
// reports true.
func (g *SecurityGroup) NamesPeer(is func(peer string) bool) bool {
	for _, rs := range [][]Rule{g.Ingress, g.Egress} {
		for _, r := range rs {
			if r.Group != "" && is(r.Group) {
				return true
			}
		}
	}
	return false
}

// GroupsAcrossPeering lists, sorted, the security groups of one end of the
// named peering whose rules name a group of the other end's VPC: without
// the peering they would not build. (Routes over a peering are not users:
// they turn blackhole.)
func (p *Policy) GroupsAcrossPeering(name string) []string {
	var pc *Peering
	for i := range p.Peerings {
		if p.Peerings[i].Name == name {
			pc = &p.Peerings[i]
		}
	}
	if pc == nil || pc.VPC == pc.PeerVPC {
		return nil
	}
	vpcOf := make(map[string]string, len(p.SecurityGroups))
	for _, g := range p.SecurityGroups {
		vpcOf[g.Name] = g.VPC
	}
	other := map[string]string{pc.VPC: pc.PeerVPC, pc.PeerVPC: pc.VPC}
	var out []string
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		o, ok := other[g.VPC]
		if ok && g.NamesPeer(func(peer string) bool { return vpcOf[peer] == o }) {
			out = append(out, g.Name)
		}
	}
	sort.Strings(out)
	return out
}
