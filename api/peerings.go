package api

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// VPC peerings: CRUD through the generic handlers plus the accept verb. The
// requester (the owner of vpc) creates a peering, unaccepted; the owner of
// peer_vpc (possibly another account, which the requester names without
// seeing it) accepts it. Both accounts see it, and either may delete it.
//
// A peering a request creates must name a peer VPC that exists: one the
// caller cannot otherwise see is looked up in the whole policy, and a
// missing one and one that cannot be peered (its addresses overlap the
// requester's) get the same error, which never shows the peer's CIDR.
//
// A peering cannot be deleted while security-group rules of one side name
// groups of the other (they would not build without it): 409 naming the
// groups. Routes over it do not keep it: they turn blackhole.

var peeringKind = &kind[model.Peering]{
	singular: "peering", plural: "peerings", doc: "peerings",
	items:   func(p *model.Policy) *[]model.Peering { return &p.Peerings },
	name:    func(o *model.Peering) string { return o.Name },
	setName: func(o *model.Peering, n string) { o.Name = n },
	visible: func(v *view, o *model.Peering) bool { return v.peeringVisible(o) },
	merge:   mergePeering,
	check:   checkPeering,
	users:   peeringUsers,
}

// peeringVisible: the principal owns either end.
func (v *view) peeringVisible(o *model.Peering) bool {
	return v.pr.Admin || v.vpcOwned(o.VPC) || v.vpcOwned(o.PeerVPC)
}

// findPeering returns the named peering of p, or nil.
func findPeering(p *model.Policy, name string) *model.Peering {
	for i := range p.Peerings {
		if p.Peerings[i].Name == name {
			return &p.Peerings[i]
		}
	}
	return nil
}

// mergePeering checks a created or updated peering. Only the owner of vpc
// (or an admin) creates one, and only an admin creates it accepted. On
// update both ends are immutable; accepted false (or left out) keeps the
// current value, true accepts (the peer VPC's owner, or an admin).
func mergePeering(v *view, old, o *model.Peering) error {
	if old == nil {
		if v.pr.Admin {
			return nil
		}
		if !v.vpcOwned(o.VPC) {
			if v.vpcVisible(o.VPC) {
				return denied("vpc", "vpc %q belongs to another account; only it may request peerings of it", o.VPC)
			}
			if o.VPC == "" {
				return invalid("vpc", "is required")
			}
			// Another account's is as if it did not exist.
			return invalid("vpc", "vpc %q does not exist", o.VPC)
		}
		if o.Accepted {
			return invalid("accepted", "a peering is created unaccepted; the peer VPC's account accepts it")
		}
		return nil
	}
	if err := keepString("vpc", &o.VPC, old.VPC); err != nil {
		return err
	}
	if err := keepString("peer_vpc", &o.PeerVPC, old.PeerVPC); err != nil {
		return err
	}
	switch {
	case !o.Accepted:
		o.Accepted = old.Accepted
	case !old.Accepted && !v.pr.Admin && !v.vpcOwned(old.PeerVPC):
		return denied("accepted", "only the account of vpc %q accepts peering %q", old.PeerVPC, old.Name)
	}
	return nil
}

// checkPeering checks the peer VPC of a peering a request creates (or
// whose peer VPC it names for the first time): it must exist in the whole
// policy and not overlap the requester's VPC. For an account that does not
// own the peer VPC, a missing and an unpeerable one are told apart neither
// from each other nor by the peer's addresses.
func checkPeering(v *view, old, o *model.Peering) error {
	if old != nil || v.pr.Admin || o.PeerVPC == "" || !v.vpcOwned(o.VPC) || v.vpcOwned(o.PeerVPC) {
		return nil // model.Build reports everything on what the caller sees
	}
	var a, z *model.VPC
	for i := range v.p.VPCs {
		switch v.p.VPCs[i].Name {
		case o.VPC:
			a = &v.p.VPCs[i]
		case o.PeerVPC:
			z = &v.p.VPCs[i]
		}
	}
	if z == nil || a == nil || overlaps(a.CIDR, z.CIDR) {
		return invalid("peer_vpc", "vpc %q does not exist or cannot be peered with vpc %q (peered VPCs need distinct addresses)", o.PeerVPC, o.VPC)
	}
	return nil
}

func overlaps(a, b string) bool {
	x, err1 := netip.ParsePrefix(strings.TrimSpace(a))
	y, err2 := netip.ParsePrefix(strings.TrimSpace(b))
	return err1 == nil && err2 == nil && x.Overlaps(y)
}

// peeringUsers: groups of one end whose rules name groups of the other
// end's VPC.
func peeringUsers(p *model.Policy, name string) []ref {
	var out []ref
	for _, g := range p.GroupsAcrossPeering(name) {
		out = append(out, ref{"security_group", g})
	}
	return out
}

// acceptPeering is POST /v1/peerings/{name}/accept: the peer VPC's account
// (or an admin) accepts a peering; the requester gets 403. Accepting an
// accepted peering changes nothing.
func (s *server) acceptPeering(w http.ResponseWriter, r *http.Request, pr Principal) error {
	return verb(s, w, r, pr, peeringKind, http.StatusOK, func(t *txn, pc *model.Peering) (bool, error) {
		if !pr.Admin && !t.v.vpcOwned(pc.PeerVPC) {
			return false, denied("", "only the account of vpc %q accepts peering %q", pc.PeerVPC, pc.Name)
		}
		if pc.Accepted {
			return false, nil
		}
		pc.Accepted = true
		return true, nil
	}, nil)
}
