package api

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// ref names an object: kind ("vpc") and name.
type ref struct{ kind, name string }

func (r ref) String() string { return fmt.Sprintf("%s %q", r.kind, r.name) }

// kind describes one object type of the policy for the generic handlers.
type kind[T any] struct {
	singular, plural string
	// doc is the kind's key in a policy document; default plural.
	doc       string
	adminOnly bool
	// adminWrites: every principal may list and read objects of the
	// kind, only an admin create, change or delete them (public IP
	// pools, which accounts name to allocate addresses).
	adminWrites bool
	items       func(p *model.Policy) *[]T
	name        func(obj *T) string
	setName     func(obj *T, name string)
	// visible reports whether a non-admin principal may see obj.
	visible func(v *view, obj *T) bool
	// writable reports whether a non-admin principal may change or
	// delete obj (which it sees); nil means whatever it sees. Shared VPCs
	// and their subnets are visible to every account, writable by one.
	writable func(v *view, obj *T) bool
	// merge checks a create (old == nil) or an update of obj by the
	// caller, filling fields an update keeps from old. Errors name fields
	// relative to the object.
	merge func(v *view, old, obj *T) error
	// created, if set, checks an object created by POST /v1/<kind> (not
	// by apply, which may restore what export wrote).
	created func(obj *T) error
	// check, if set, runs once every change of the request is in place
	// (so that objects of one document may name each other), with the
	// object as stored before (nil for a create).
	check func(v *view, old, obj *T) error
	// deletable, if set, refuses to delete obj for a reason of its own
	// (v is the caller's view of the policy the delete changes).
	deletable func(v *view, obj *T) error
	// users lists the objects that reference the named one.
	users func(p *model.Policy, name string) []ref
	// present, if set, is what the API answers for obj instead of obj
	// itself: the object with read-only fields computed from the built
	// policy n (nil if it does not build).
	present func(n *model.Net, obj *T) any
	// computed lists the JSON fields present adds, which a create or
	// update body may carry back (as a GET returned them) and which are
	// ignored.
	computed []string
	// presentSchema names the OpenAPI schema of what present returns.
	presentSchema string
}

// docKey is the kind's key in a policy document ("security_groups").
func (k *kind[T]) docKey() string {
	if k.doc != "" {
		return k.doc
	}
	return k.plural
}

func (k *kind[T]) find(p *model.Policy, name string) int {
	items := *k.items(p)
	for i := range items {
		if k.name(&items[i]) == name {
			return i
		}
	}
	return -1
}

// view answers visibility questions for a principal over a policy.
//
// An account owns its VPCs, their subnets, and the NICs and security groups
// whose account is its own (explicitly, or by default as their VPC's). It
// sees what it owns, every object in its VPCs (in a shared one, the NICs
// and groups of other accounts too), and shared VPCs and their subnets,
// which it may only read.
type view struct {
	pr         Principal
	p          *model.Policy
	vpcAccount map[string]string // vpc → account
	vpcShared  map[string]bool
	subnetVPC  map[string]string // subnet → vpc
	hosts      map[string]bool
}

func newView(pr Principal, p *model.Policy) *view {
	v := &view{pr: pr, p: p}
	v.reindex()
	return v
}

// reindex refreshes the indexes after p changed.
func (v *view) reindex() {
	v.vpcAccount = make(map[string]string, len(v.p.VPCs))
	v.vpcShared = map[string]bool{}
	v.subnetVPC = make(map[string]string, len(v.p.Subnets))
	v.hosts = make(map[string]bool, len(v.p.Hosts))
	for _, x := range v.p.VPCs {
		v.vpcAccount[x.Name] = x.Account
		if x.Shared {
			v.vpcShared[x.Name] = true
		}
	}
	for _, x := range v.p.Subnets {
		v.subnetVPC[x.Name] = x.VPC
	}
	for _, x := range v.p.Hosts {
		v.hosts[x.Name] = true
	}
}

// vpcOwned: the VPC exists and is the principal's (or the principal is admin).
func (v *view) vpcOwned(name string) bool {
	a, ok := v.vpcAccount[name]
	return ok && (v.pr.Admin || a == v.pr.Account)
}

// vpcVisible: owned, or shared with every account.
func (v *view) vpcVisible(name string) bool {
	return v.vpcOwned(name) || v.vpcShared[name]
}

func (v *view) subnetVisible(name string) bool {
	vpc, ok := v.subnetVPC[name]
	return ok && v.vpcVisible(vpc)
}

func (v *view) subnetOwned(name string) bool {
	vpc, ok := v.subnetVPC[name]
	return ok && v.vpcOwned(vpc)
}

// nicVPC is the VPC of a NIC's subnet ("" if unknown).
func (v *view) nicVPC(n *model.NIC) string { return v.subnetVPC[n.Subnet] }

// nicOwner is the NIC's account: its own, else its VPC's.
func (v *view) nicOwner(n *model.NIC) string {
	if n.Account != "" {
		return n.Account
	}
	return v.vpcAccount[v.nicVPC(n)]
}

// nicVisible: the principal owns the NIC or its VPC.
func (v *view) nicVisible(n *model.NIC) bool {
	if _, ok := v.subnetVPC[n.Subnet]; !ok {
		return v.pr.Admin
	}
	return v.pr.Admin || v.nicOwner(n) == v.pr.Account || v.vpcOwned(v.nicVPC(n))
}

// groupOwner is the group's account: its own, else its VPC's.
func (v *view) groupOwner(g *model.SecurityGroup) string {
	if g.Account != "" {
		return g.Account
	}
	return v.vpcAccount[g.VPC]
}

// groupVisible: the principal owns the group or its VPC.
func (v *view) groupVisible(g *model.SecurityGroup) bool {
	if _, ok := v.vpcAccount[g.VPC]; !ok {
		return v.pr.Admin
	}
	return v.pr.Admin || v.groupOwner(g) == v.pr.Account || v.vpcOwned(g.VPC)
}

// refVisible reports whether the principal sees the object r names.
func (v *view) refVisible(r ref) bool {
	if v.pr.Admin {
		return true
	}
	switch r.kind {
	case "account":
		return r.name == v.pr.Account
	case "vpc":
		return v.vpcVisible(r.name)
	case "subnet":
		return v.subnetVisible(r.name)
	case "nic":
		i := nicKind.find(v.p, r.name)
		return i >= 0 && v.nicVisible(&v.p.NICs[i])
	case "security_group":
		g := findGroup(v.p, r.name)
		return g != nil && v.groupVisible(g)
	case "route_table":
		rt := findTable(v.p, r.name)
		return rt != nil && v.vpcVisible(rt.VPC)
	case "peering":
		pc := findPeering(v.p, r.name)
		return pc != nil && v.peeringVisible(pc)
	case "internet_gateway":
		g := findGateway(v.p, r.name)
		return g != nil && v.gatewayVisible(g)
	case "public_ip":
		x := findPublicIP(v.p, r.name)
		return x != nil && v.publicIPVisible(x)
	case "public_ip_pool":
		return findPool(v.p, r.name) != nil
	}
	return false
}

// canSee reports whether the principal may see obj of kind k.
func canSee[T any](k *kind[T], v *view, obj *T) bool {
	if v.pr.Admin {
		return true
	}
	return !k.adminOnly && k.visible(v, obj)
}

// canWrite reports whether the principal may change obj of kind k, which
// it sees.
func canWrite[T any](k *kind[T], v *view, obj *T) bool {
	if k.adminWrites && !v.pr.Admin {
		return false
	}
	if v.pr.Admin || k.writable == nil {
		return canSee(k, v, obj)
	}
	return !k.adminOnly && k.writable(v, obj)
}

// readOnly is the error for an object the caller sees but may not change.
func readOnly(kind, name string) *Error {
	return denied("", "%s %q belongs to another account; you may only read it", kind, name)
}

// hiddenNICName names the stand-ins restricted puts for other accounts'
// NICs in a shared VPC.
const hiddenNICName = "other-account-nic-"

// hiddenPublicIPName names the stand-ins restricted puts for other
// accounts' public IPs.
const hiddenPublicIPName = "other-account-public-ip-"

// restricted returns the part of p the principal can see plus the touched
// objects, all hosts (shared infrastructure that NICs may reference) and
// the accounts these objects name. Building it validates a change exactly
// as if other accounts' objects did not exist, with two exceptions that
// keep it faithful without showing them:
//   - other accounts' NICs in a shared VPC the principal does not own are
//     there as anonymous stand-ins with only their addresses, so that IPs
//     are allocated and checked against every NIC of the VPC;
//   - groups that rules of visible groups name as peers, and groups granted
//     to the principal, are there without their rules and grants, so that
//     references to them resolve (a rule whose grant was revoked is
//     inactive, not an error) but their contents are neither shown nor
//     checked;
//   - peerings of the VPCs there (and touched ones) are there, and the VPCs
//     at their other ends and those of groups granted to the principal as
//     bare references (no subnets, NICs or tables), so that routes over
//     peerings and rules naming groups across them build;
//   - every public IP pool is there (shared infrastructure, like hosts),
//     and other accounts' public IPs as anonymous stand-ins with only their
//     pool and address, so that addresses are allocated and checked
//     against every public IP;
//   - internet gateways the principal sees, and those attached to the
//     VPCs there, are there.
func (v *view) restricted(touched map[ref]bool) *model.Policy {
	out := &model.Policy{Hosts: v.p.Hosts, PublicIPPools: v.p.PublicIPPools, Settings: v.p.Settings}
	accounts := map[string]bool{v.pr.Account: true}
	vpcs := map[string]bool{}
	for _, x := range v.p.VPCs {
		if v.vpcVisible(x.Name) || touched[ref{"vpc", x.Name}] {
			out.VPCs = append(out.VPCs, x)
			vpcs[x.Name] = true
			accounts[x.Account] = true
		}
	}
	refVPCs := map[string]bool{}
	for _, x := range v.p.Peerings {
		if vpcs[x.VPC] || vpcs[x.PeerVPC] || touched[ref{"peering", x.Name}] {
			out.Peerings = append(out.Peerings, x)
			refVPCs[x.VPC], refVPCs[x.PeerVPC] = true, true
		}
	}
	// Groups granted to the principal are named as peers in rules even
	// across VPCs: their VPCs are references too, so that a rule naming one
	// of a VPC not peered is told so.
	for _, g := range v.p.SecurityGroups {
		if slices.Contains(g.Grants, v.pr.Account) {
			refVPCs[g.VPC] = true
		}
	}
	for _, x := range v.p.VPCs {
		if refVPCs[x.Name] && !vpcs[x.Name] {
			out.VPCs = append(out.VPCs, x)
			accounts[x.Account] = true
		}
	}
	subnets := map[string]bool{}
	for _, x := range v.p.Subnets {
		if v.subnetVisible(x.Name) || touched[ref{"subnet", x.Name}] {
			out.Subnets = append(out.Subnets, x)
			subnets[x.Name] = true
		}
	}
	taken := make(map[string]bool, len(v.p.NICs))
	for _, x := range v.p.NICs {
		taken[x.Name] = true
	}
	var mine []model.NIC
	hidden := 0
	for _, x := range v.p.NICs {
		switch {
		case v.nicVisible(&x) || touched[ref{"nic", x.Name}]:
			mine = append(mine, x)
			if x.Account != "" {
				accounts[x.Account] = true
			}
		case subnets[x.Subnet]:
			// Stand-ins come first, so that a clash is reported on the
			// principal's NIC, which Build checks after them.
			name := ""
			for name == "" || taken[name] {
				hidden++
				name = fmt.Sprintf("%s%d", hiddenNICName, hidden)
			}
			out.NICs = append(out.NICs, model.NIC{Name: name, Subnet: x.Subnet, IP: x.IP, MAC: x.MAC,
				SecondaryIPs: append([]string(nil), x.SecondaryIPs...)})
		}
	}
	out.NICs = append(out.NICs, mine...)
	included := map[string]bool{}
	peers := map[string]bool{}
	for _, g := range v.p.SecurityGroups {
		if !v.groupVisible(&g) && !touched[ref{"security_group", g.Name}] {
			continue
		}
		out.SecurityGroups = append(out.SecurityGroups, g.Clone())
		included[g.Name] = true
		accounts[v.groupOwner(&g)] = true
		for _, a := range g.Grants {
			accounts[a] = true
		}
		for _, rs := range [][]model.Rule{g.Ingress, g.Egress} {
			for _, r := range rs {
				if r.Group != "" {
					peers[r.Group] = true
				}
			}
		}
	}
	for _, g := range v.p.SecurityGroups {
		granted := slices.Contains(g.Grants, v.pr.Account)
		if included[g.Name] || !(vpcs[g.VPC] || refVPCs[g.VPC]) || !(granted || peers[g.Name]) {
			continue
		}
		stub := model.SecurityGroup{Name: g.Name, VPC: g.VPC, Account: g.Account, Default: g.Default}
		if granted {
			stub.Grants = []string{v.pr.Account}
		}
		out.SecurityGroups = append(out.SecurityGroups, stub)
		accounts[v.groupOwner(&g)] = true
	}
	// Tables of the VPCs there: routes to NICs not there (other accounts'
	// in a shared VPC) are blackholes in this build, never errors.
	for _, x := range v.p.RouteTables {
		if vpcs[x.VPC] || touched[ref{"route_table", x.Name}] {
			out.RouteTables = append(out.RouteTables, x)
		}
	}
	for _, g := range v.p.InternetGateways {
		if v.gatewayVisible(&g) || vpcs[g.VPC] || touched[ref{"internet_gateway", g.Name}] {
			out.InternetGateways = append(out.InternetGateways, g)
		}
	}
	takenIP := make(map[string]bool, len(v.p.PublicIPs))
	for _, x := range v.p.PublicIPs {
		takenIP[x.Name] = true
	}
	var myIPs []model.PublicIP
	hidden = 0
	for _, x := range v.p.PublicIPs {
		if v.publicIPVisible(&x) || touched[ref{"public_ip", x.Name}] {
			myIPs = append(myIPs, x)
			continue
		}
		// Stand-ins first, as for NICs: a clash is reported on the
		// principal's public IP.
		name := ""
		for name == "" || takenIP[name] {
			hidden++
			name = fmt.Sprintf("%s%d", hiddenPublicIPName, hidden)
		}
		out.PublicIPs = append(out.PublicIPs, model.PublicIP{Name: name, Pool: x.Pool, Address: x.Address})
	}
	out.PublicIPs = append(out.PublicIPs, myIPs...)
	for _, a := range v.p.Accounts {
		if accounts[a.Name] || touched[ref{"account", a.Name}] {
			out.Accounts = append(out.Accounts, a)
		}
	}
	return out
}

// visiblePolicy is what the principal may export: everything for an admin,
// else the VPCs, subnets, NICs, security groups, route tables, peerings,
// internet gateways and public IPs it sees (not public IP pools or the
// settings: like hosts, they are the admin's to apply).
func (v *view) visiblePolicy() *model.Policy {
	if v.pr.Admin {
		return v.p
	}
	out := &model.Policy{}
	for _, x := range v.p.VPCs {
		if v.vpcVisible(x.Name) {
			out.VPCs = append(out.VPCs, x)
		}
	}
	for _, x := range v.p.Subnets {
		if v.subnetVisible(x.Name) {
			out.Subnets = append(out.Subnets, x)
		}
	}
	for _, x := range v.p.SecurityGroups {
		if v.groupVisible(&x) {
			out.SecurityGroups = append(out.SecurityGroups, x)
		}
	}
	for _, x := range v.p.NICs {
		if v.nicVisible(&x) {
			out.NICs = append(out.NICs, x)
		}
	}
	for _, x := range v.p.RouteTables {
		if v.vpcVisible(x.VPC) {
			out.RouteTables = append(out.RouteTables, x)
		}
	}
	for _, x := range v.p.Peerings {
		if v.peeringVisible(&x) {
			out.Peerings = append(out.Peerings, x)
		}
	}
	for _, x := range v.p.InternetGateways {
		if v.gatewayVisible(&x) {
			out.InternetGateways = append(out.InternetGateways, x)
		}
	}
	for _, x := range v.p.PublicIPs {
		if v.publicIPVisible(&x) {
			out.PublicIPs = append(out.PublicIPs, x)
		}
	}
	return out
}

func immutable(field string) error {
	return invalid(field, "%s cannot be changed (delete and re-create the object)", field)
}

// keepString fills an omitted field from old and refuses a change.
func keepString(field string, cur *string, old string) error {
	if *cur == "" {
		*cur = old
		return nil
	}
	if *cur != old {
		return immutable(field)
	}
	return nil
}

var accountKind = &kind[model.Account]{
	singular: "account", plural: "accounts", adminOnly: true,
	items:   func(p *model.Policy) *[]model.Account { return &p.Accounts },
	name:    func(o *model.Account) string { return o.Name },
	setName: func(o *model.Account, n string) { o.Name = n },
	visible: func(v *view, o *model.Account) bool { return false },
	merge:   func(v *view, old, o *model.Account) error { return nil },
	users:   accountUsers,
}

var hostKind = &kind[model.Host]{
	singular: "host", plural: "hosts", adminOnly: true,
	items:   func(p *model.Policy) *[]model.Host { return &p.Hosts },
	name:    func(o *model.Host) string { return o.Name },
	setName: func(o *model.Host, n string) { o.Name = n },
	visible: func(v *view, o *model.Host) bool { return false },
	merge:   mergeHost,
	users: func(p *model.Policy, name string) []ref {
		var out []ref
		for _, x := range p.NICs {
			if x.Host == name {
				out = append(out, ref{"nic", x.Name})
			}
		}
		return out
	},
	present:       presentHost,
	computed:      hostComputed,
	presentSchema: "HostStatus",
}

var vpcKind = &kind[model.VPC]{
	singular: "vpc", plural: "vpcs",
	items:    func(p *model.Policy) *[]model.VPC { return &p.VPCs },
	name:     func(o *model.VPC) string { return o.Name },
	setName:  func(o *model.VPC, n string) { o.Name = n },
	visible:  func(v *view, o *model.VPC) bool { return v.vpcVisible(o.Name) },
	writable: func(v *view, o *model.VPC) bool { return v.vpcOwned(o.Name) },
	merge: func(v *view, old, o *model.VPC) error {
		if old == nil {
			if !v.pr.Admin {
				if o.Shared {
					return invalid("shared", "only an admin may share a VPC")
				}
				if o.Account == "" {
					o.Account = v.pr.Account
				} else if o.Account != v.pr.Account {
					return invalid("account", "must be %q, the account of your token", v.pr.Account)
				}
				if o.VNI != 0 {
					return invalid("vni", "is assigned by the controller (only an admin may choose it)")
				}
			}
			return nil
		}
		if err := keepString("account", &o.Account, old.Account); err != nil {
			return err
		}
		if err := keepString("cidr", &o.CIDR, old.CIDR); err != nil {
			return err
		}
		if o.VNI == 0 {
			o.VNI = old.VNI
		} else if o.VNI != old.VNI {
			return immutable("vni")
		}
		// An account's PUT written without the field keeps the VPC as it
		// is; only an admin shares or unshares.
		if !v.pr.Admin {
			if o.Shared && !old.Shared {
				return invalid("shared", "only an admin may share a VPC")
			}
			o.Shared = old.Shared
		}
		return nil
	},
	// An attached internet gateway is detached first (AWS's order).
	deletable: func(v *view, o *model.VPC) error {
		for _, g := range v.p.InternetGateways {
			if g.VPC == o.Name {
				return conflict("", "vpc %q has internet gateway %q attached: detach internet gateway %q first", o.Name, g.Name, g.Name)
			}
		}
		return nil
	},
	// A VPC's default groups and main table go with it; other groups and
	// tables (and an attached internet gateway) keep it.
	users: func(p *model.Policy, name string) []ref {
		var out []ref
		for _, x := range p.Subnets {
			if x.VPC == name {
				out = append(out, ref{"subnet", x.Name})
			}
		}
		for _, g := range p.SecurityGroups {
			if g.VPC == name && !g.Default {
				out = append(out, ref{"security_group", g.Name})
			}
		}
		for _, t := range p.RouteTables {
			if t.VPC == name && !t.Main {
				out = append(out, ref{"route_table", t.Name})
			}
		}
		for _, x := range p.Peerings {
			if x.VPC == name || x.PeerVPC == name {
				out = append(out, ref{"peering", x.Name})
			}
		}
		for _, g := range p.InternetGateways {
			if g.VPC == name {
				out = append(out, ref{"internet_gateway", g.Name})
			}
		}
		return out
	},
}

var subnetKind = &kind[model.Subnet]{
	singular: "subnet", plural: "subnets",
	items:    func(p *model.Policy) *[]model.Subnet { return &p.Subnets },
	name:     func(o *model.Subnet) string { return o.Name },
	setName:  func(o *model.Subnet, n string) { o.Name = n },
	visible:  func(v *view, o *model.Subnet) bool { return v.vpcVisible(o.VPC) },
	writable: func(v *view, o *model.Subnet) bool { return v.vpcOwned(o.VPC) },
	merge: func(v *view, old, o *model.Subnet) error {
		if old == nil {
			// A reference to an invisible VPC fails validation as if it
			// did not exist; a shared one is there to use, not to change.
			if v.vpcVisible(o.VPC) && !v.vpcOwned(o.VPC) {
				return denied("vpc", "vpc %q belongs to another account; only it may add subnets", o.VPC)
			}
			o.RouteTable = mainAsEmpty(o.VPC, o.RouteTable)
			return nil
		}
		if err := keepString("vpc", &o.VPC, old.VPC); err != nil {
			return err
		}
		if err := keepString("cidr", &o.CIDR, old.CIDR); err != nil {
			return err
		}
		// The association is mutable. Left out, it stays (a client that
		// predates route tables must not move subnets to the main table);
		// the main table is named to go back to it.
		if o.RouteTable == "" {
			o.RouteTable = old.RouteTable
		}
		o.RouteTable = mainAsEmpty(o.VPC, o.RouteTable)
		return nil
	},
	users: func(p *model.Policy, name string) []ref {
		var out []ref
		for _, x := range p.NICs {
			if x.Subnet == name {
				out = append(out, ref{"nic", x.Name})
			}
		}
		return out
	},
}

var nicKind = &kind[model.NIC]{
	singular: "nic", plural: "nics",
	items:    func(p *model.Policy) *[]model.NIC { return &p.NICs },
	name:     func(o *model.NIC) string { return o.Name },
	setName:  func(o *model.NIC, n string) { o.Name = n },
	visible:  func(v *view, o *model.NIC) bool { return v.nicVisible(o) },
	writable: func(v *view, o *model.NIC) bool { return v.nicOwner(o) == v.pr.Account },
	// mtu: its host's VM MTU.
	present:       presentNIC,
	computed:      []string{"mtu"},
	presentSchema: "NICStatus",
	merge: func(v *view, old, o *model.NIC) error {
		if len(o.SecondaryIPs) == 0 {
			o.SecondaryIPs = nil
		}
		if old == nil {
			if !v.pr.Admin && o.PortKey != 0 {
				return invalid("port_key", "is assigned by the controller (only an admin may choose it)")
			}
			if !v.pr.Admin && o.CtZone != 0 {
				return invalid("ct_zone", "is assigned by the controller (only an admin may choose it)")
			}
			if !v.pr.Admin {
				// In another account's (shared) VPC the NIC is the
				// caller's own; in its own VPC it defaults to it anyway.
				if o.Account == "" {
					if vpc := v.nicVPC(o); v.vpcVisible(vpc) && v.vpcAccount[vpc] != v.pr.Account {
						o.Account = v.pr.Account
					}
				} else if o.Account != v.pr.Account {
					return invalid("account", "must be %q, the account of your token", v.pr.Account)
				}
			}
			if len(o.SecurityGroups) == 0 {
				o.SecurityGroups = nil
			}
			o.SourceDestCheck = sourceDestCheck(o.SourceDestCheck)
			return nil
		}
		if err := keepString("subnet", &o.Subnet, old.Subnet); err != nil {
			return err
		}
		if o.Account == "" {
			o.Account = old.Account
		} else if o.Account != old.Account && o.Account != v.nicOwner(old) {
			return immutable("account")
		} else {
			o.Account = old.Account
		}
		// Left out (null), the groups stay: a client that predates security
		// groups must not move NICs into their default group. An empty
		// list does that.
		switch {
		case o.SecurityGroups == nil:
			o.SecurityGroups = old.SecurityGroups
		case len(o.SecurityGroups) == 0:
			o.SecurityGroups = nil
		}
		// Left out, the check stays as it is.
		if o.SourceDestCheck == nil {
			o.SourceDestCheck = old.SourceDestCheck
		}
		o.SourceDestCheck = sourceDestCheck(o.SourceDestCheck)
		if o.IP == "" {
			o.IP = old.IP
		}
		if o.MAC == "" {
			o.MAC = old.MAC
		} else if !sameMAC(o.MAC, old.MAC) {
			return immutable("mac")
		}
		if o.PortKey == 0 {
			o.PortKey = old.PortKey
		} else if o.PortKey != old.PortKey {
			return immutable("port_key")
		}
		// A NIC moving to another host gets a zone free there.
		switch {
		case o.Host != old.Host && (o.CtZone == 0 || o.CtZone == old.CtZone):
			o.CtZone = 0
		case o.Host != old.Host:
			if !v.pr.Admin {
				return invalid("ct_zone", "is assigned by the controller (only an admin may choose it)")
			}
		case o.CtZone == 0:
			o.CtZone = old.CtZone
		case o.CtZone != old.CtZone:
			return immutable("ct_zone")
		}
		return nil
	},
}

func sameMAC(a, b string) bool {
	if a == b {
		return true
	}
	ma, err1 := net.ParseMAC(a)
	mb, err2 := net.ParseMAC(b)
	return err1 == nil && err2 == nil && ma.String() == mb.String()
}

func sameIP(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x == y
}

// equalObj compares two objects treating nil and empty slices alike.
func equalObj[T any](a, b *T) bool {
	return reflect.DeepEqual(normalize(*a), normalize(*b))
}

func normalize[T any](x T) T {
	switch o := any(&x).(type) {
	case *model.NIC:
		o.SecondaryIPs = nilIfEmpty(o.SecondaryIPs)
		o.SecurityGroups = nilIfEmpty(o.SecurityGroups)
		o.SourceDestCheck = sourceDestCheck(o.SourceDestCheck)
	case *model.SecurityGroup:
		o.Ingress = nilIfEmpty(o.Ingress)
		o.Egress = nilIfEmpty(o.Egress)
		o.Grants = nilIfEmpty(o.Grants)
	case *model.RouteTable:
		o.Routes = nilIfEmpty(o.Routes)
	case *model.Host:
		o.Encaps = nilIfEmpty(o.Encaps)
	}
	return x
}

func nilIfEmpty[E any](s []E) []E {
	if len(s) == 0 {
		return nil
	}
	return s
}

// usersMessage is `subnet "s" is used by nic "a", nic "b"`; users the
// caller cannot see are only counted.
func usersMessage(obj ref, all []ref, visible func(ref) bool) string {
	var users []ref
	hidden := 0
	for _, u := range all {
		if visible(u) {
			users = append(users, u)
		} else {
			hidden++
		}
	}
	sort.Slice(users, func(i, j int) bool {
		if users[i].kind != users[j].kind {
			return users[i].kind < users[j].kind
		}
		return users[i].name < users[j].name
	})
	const max = 20
	var parts []string
	for i, u := range users {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(users)-max))
			break
		}
		parts = append(parts, u.String())
	}
	switch {
	case hidden == 1:
		parts = append(parts, "1 object of another account")
	case hidden > 1:
		parts = append(parts, fmt.Sprintf("%d objects of other accounts", hidden))
	}
	return fmt.Sprintf("%s is used by %s", obj, strings.Join(parts, ", "))
}
