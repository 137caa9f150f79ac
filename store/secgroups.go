package store

import (
	"net/netip"

	"github.com/openvpc/openvpc/model"
)

// Cascade makes the objects that live and die with others follow a change
// from old to p: the default security groups of VPCs
// (model.EnsureDefaultGroups creates a VPC's with it, and an account's in a
// shared VPC with its first NIC there; it deletes them with their VPC or
// account), the main route tables of VPCs (model.EnsureMainTables, with
// their VPC), grants to an account deleted by the change, which go with
// it as its tokens do, and public IPs associated with a NIC the change
// deletes (or with an address the change removes from its NIC), which are
// disassociated and stay allocated, as in AWS. Grants naming accounts that
// never existed, and associations with NICs that never existed, are left
// for model.Build. Update runs Cascade on every change.
func Cascade(old, p *model.Policy) {
	model.EnsureDefaultGroups(p)
	model.EnsureMainTables(p)
	disassociateGone(old, p)
	kept := make(map[string]bool, len(p.Accounts))
	for _, a := range p.Accounts {
		kept[a.Name] = true
	}
	deleted := map[string]bool{}
	for _, a := range old.Accounts {
		if !kept[a.Name] {
			deleted[a.Name] = true
		}
	}
	if len(deleted) == 0 {
		return
	}
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		var grants []string
		for _, a := range g.Grants {
			if !deleted[a] {
				grants = append(grants, a)
			}
		}
		g.Grants = grants
	}
}

// disassociateGone clears the association (nic and private_ip) of every
// public IP of p whose NIC was in old but is not in p, or whose private IP
// was an address of its NIC in old but is not in p.
func disassociateGone(old, p *model.Policy) {
	if len(p.PublicIPs) == 0 {
		return
	}
	before := make(map[string]*model.NIC, len(old.NICs))
	for i := range old.NICs {
		before[old.NICs[i].Name] = &old.NICs[i]
	}
	after := make(map[string]*model.NIC, len(p.NICs))
	for i := range p.NICs {
		after[p.NICs[i].Name] = &p.NICs[i]
	}
	for i := range p.PublicIPs {
		x := &p.PublicIPs[i]
		o := before[x.NIC]
		if x.NIC == "" || o == nil {
			continue
		}
		n := after[x.NIC]
		if n == nil || (x.PrivateIP != "" && hasAddress(o, x.PrivateIP) && !hasAddress(n, x.PrivateIP)) {
			x.NIC, x.PrivateIP = "", ""
		}
	}
}

// hasAddress reports whether ip is the primary or a secondary IP of n.
func hasAddress(n *model.NIC, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, s := range append([]string{n.IP}, n.SecondaryIPs...) {
		if b, err := netip.ParseAddr(s); err == nil && a == b {
			return true
		}
	}
	return false
}
