package api

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
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
	adminOnly        bool
	items            func(p *model.Policy) *[]T
	name             func(obj *T) string
	setName          func(obj *T, name string)
	// visible reports whether a non-admin principal may see obj.
	visible func(v *view, obj *T) bool
	// merge checks a create (old == nil) or an update of obj by the
	// caller, filling fields an update keeps from old. Errors name fields
	// relative to the object.
	merge func(v *view, old, obj *T) error
	// users lists the objects that reference the named one.
	users func(p *model.Policy, name string) []ref
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
type view struct {
	pr         Principal
	p          *model.Policy
	vpcAccount map[string]string // vpc → account
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
	v.subnetVPC = make(map[string]string, len(v.p.Subnets))
	v.hosts = make(map[string]bool, len(v.p.Hosts))
	for _, x := range v.p.VPCs {
		v.vpcAccount[x.Name] = x.Account
	}
	for _, x := range v.p.Subnets {
		v.subnetVPC[x.Name] = x.VPC
	}
	for _, x := range v.p.Hosts {
		v.hosts[x.Name] = true
	}
}

func (v *view) vpcVisible(name string) bool {
	a, ok := v.vpcAccount[name]
	return ok && (v.pr.Admin || a == v.pr.Account)
}

func (v *view) subnetVisible(name string) bool {
	vpc, ok := v.subnetVPC[name]
	return ok && v.vpcVisible(vpc)
}

// canSee reports whether the principal may see obj of kind k.
func canSee[T any](k *kind[T], v *view, obj *T) bool {
	if v.pr.Admin {
		return true
	}
	return !k.adminOnly && k.visible(v, obj)
}

// restricted returns the part of p the principal can see plus the touched
// objects, and all hosts (shared infrastructure that NICs may reference).
// Building it validates a change exactly as if other accounts' objects did
// not exist.
func (v *view) restricted(touched map[ref]bool) *model.Policy {
	out := &model.Policy{Hosts: v.p.Hosts}
	for _, a := range v.p.Accounts {
		if a.Name == v.pr.Account || touched[ref{"account", a.Name}] {
			out.Accounts = append(out.Accounts, a)
		}
	}
	for _, x := range v.p.VPCs {
		if v.vpcVisible(x.Name) || touched[ref{"vpc", x.Name}] {
			out.VPCs = append(out.VPCs, x)
		}
	}
	for _, x := range v.p.Subnets {
		if v.subnetVisible(x.Name) || touched[ref{"subnet", x.Name}] {
			out.Subnets = append(out.Subnets, x)
		}
	}
	for _, x := range v.p.NICs {
		if v.subnetVisible(x.Subnet) || touched[ref{"nic", x.Name}] {
			out.NICs = append(out.NICs, x)
		}
	}
	return out
}

// visiblePolicy is what the principal may export: everything for an admin,
// else its VPCs, their subnets and NICs.
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
	for _, x := range v.p.NICs {
		if v.subnetVisible(x.Subnet) {
			out.NICs = append(out.NICs, x)
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
	users: func(p *model.Policy, name string) []ref {
		var out []ref
		for _, x := range p.VPCs {
			if x.Account == name {
				out = append(out, ref{"vpc", x.Name})
			}
		}
		return out
	},
}

var hostKind = &kind[model.Host]{
	singular: "host", plural: "hosts", adminOnly: true,
	items:   func(p *model.Policy) *[]model.Host { return &p.Hosts },
	name:    func(o *model.Host) string { return o.Name },
	setName: func(o *model.Host, n string) { o.Name = n },
	visible: func(v *view, o *model.Host) bool { return false },
	merge:   func(v *view, old, o *model.Host) error { return nil },
	users: func(p *model.Policy, name string) []ref {
		var out []ref
		for _, x := range p.NICs {
			if x.Host == name {
				out = append(out, ref{"nic", x.Name})
			}
		}
		return out
	},
}

var vpcKind = &kind[model.VPC]{
	singular: "vpc", plural: "vpcs",
	items:   func(p *model.Policy) *[]model.VPC { return &p.VPCs },
	name:    func(o *model.VPC) string { return o.Name },
	setName: func(o *model.VPC, n string) { o.Name = n },
	visible: func(v *view, o *model.VPC) bool { return v.vpcVisible(o.Name) },
	merge: func(v *view, old, o *model.VPC) error {
		if old == nil {
			if !v.pr.Admin {
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
		return nil
	},
	users: func(p *model.Policy, name string) []ref {
		var out []ref
		for _, x := range p.Subnets {
			if x.VPC == name {
				out = append(out, ref{"subnet", x.Name})
			}
		}
		return out
	},
}

var subnetKind = &kind[model.Subnet]{
	singular: "subnet", plural: "subnets",
	items:   func(p *model.Policy) *[]model.Subnet { return &p.Subnets },
	name:    func(o *model.Subnet) string { return o.Name },
	setName: func(o *model.Subnet, n string) { o.Name = n },
	visible: func(v *view, o *model.Subnet) bool { return v.vpcVisible(o.VPC) },
	merge: func(v *view, old, o *model.Subnet) error {
		if old == nil {
			return nil // a reference to an invisible VPC fails validation as if it did not exist
		}
		if err := keepString("vpc", &o.VPC, old.VPC); err != nil {
			return err
		}
		return keepString("cidr", &o.CIDR, old.CIDR)
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
	items:   func(p *model.Policy) *[]model.NIC { return &p.NICs },
	name:    func(o *model.NIC) string { return o.Name },
	setName: func(o *model.NIC, n string) { o.Name = n },
	visible: func(v *view, o *model.NIC) bool { return v.subnetVisible(o.Subnet) },
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
			return nil
		}
		if err := keepString("subnet", &o.Subnet, old.Subnet); err != nil {
			return err
		}
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
	if n, ok := any(&x).(*model.NIC); ok && len(n.SecondaryIPs) == 0 {
		n.SecondaryIPs = nil
	}
	return x
}

// usersMessage is `subnet "s" is used by nic "a", nic "b"`.
func usersMessage(obj ref, users []ref) string {
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
	return fmt.Sprintf("%s is used by %s", obj, strings.Join(parts, ", "))
}
