package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// Internet gateways, public IP pools and public IPs (AWS's internet
// gateways and Elastic IPs).
//
// An internet gateway belongs to an account and is attached to at most one
// VPC of that account (POST .../attach, .../detach), a VPC to at most one
// gateway. Routes of the VPC's tables may target it (a route a request
// adds must name a gateway attached to the table's VPC, 400 on field
// "gateway"); detached or deleted, its routes stay and turn blackhole. An
// attached gateway cannot be deleted, nor a VPC with one attached (409:
// detach it first).
//
// Public IP pools are the admin's: every account lists them (to name one
// when it allocates), only an admin creates, changes or deletes them; a
// pool with public IPs allocated from it cannot be deleted (409 naming
// them).
//
// A public IP is allocated to an account from a pool (POST
// /v1/public-ips: the lowest free usable address, or for an admin the one
// it names; a name is made up from the address when left out) and
// released by DELETE, which is refused while it is associated (409). It
// is associated with one private IP of a NIC the caller may change (POST
// .../associate; the NIC's primary IP by default), which it must not be
// already (409 unless allow_reassociation), and which no other public IP
// maps to (409). Deleting the NIC (or the address) disassociates it; the
// address stays allocated. Answers carry its computed state: reachable
// (associated, in a subnet routed to the VPC's attached internet gateway,
// and a gateway host serves it), why not, and the gateway host.

var internetGatewayKind = &kind[model.InternetGateway]{
	singular: "internet_gateway", plural: "internet-gateways", doc: "internet_gateways",
	items:   func(p *model.Policy) *[]model.InternetGateway { return &p.InternetGateways },
	name:    func(o *model.InternetGateway) string { return o.Name },
	setName: func(o *model.InternetGateway, n string) { o.Name = n },
	visible: func(v *view, o *model.InternetGateway) bool { return v.gatewayVisible(o) },
	merge:   mergeGateway,
	deletable: func(v *view, o *model.InternetGateway) error {
		if o.VPC != "" {
			return conflict("", "internet gateway %q is attached to vpc %q: detach it first", o.Name, o.VPC)
		}
		return nil
	},
	present:       presentGateway,
	computed:      []string{"state"},
	presentSchema: "InternetGatewayStatus",
}

var publicIPPoolKind = &kind[model.PublicIPPool]{
	singular: "public_ip_pool", plural: "public-ip-pools", doc: "public_ip_pools", adminWrites: true,
	items:   func(p *model.Policy) *[]model.PublicIPPool { return &p.PublicIPPools },
	name:    func(o *model.PublicIPPool) string { return o.Name },
	setName: func(o *model.PublicIPPool, n string) { o.Name = n },
	visible: func(v *view, o *model.PublicIPPool) bool { return true },
	// The CIDR may change (grow, say): model.Build checks that every
	// allocated address still fits.
	merge:         func(v *view, old, o *model.PublicIPPool) error { return nil },
	users:         poolUsers,
	present:       presentPool,
	computed:      []string{"allocated", "free"},
	presentSchema: "PublicIPPoolStatus",
}

var publicIPKind = &kind[model.PublicIP]{
	singular: "public_ip", plural: "public-ips", doc: "public_ips",
	items:   func(p *model.Policy) *[]model.PublicIP { return &p.PublicIPs },
	name:    func(o *model.PublicIP) string { return o.Name },
	setName: func(o *model.PublicIP, n string) { o.Name = n },
	visible: func(v *view, o *model.PublicIP) bool { return v.publicIPVisible(o) },
	merge:   mergePublicIP,
	deletable: func(v *view, o *model.PublicIP) error {
		if o.NIC != "" {
			return conflict("", "public IP %q is associated with nic %q: disassociate it first", o.Name, o.NIC)
		}
		return nil
	},
	present:       presentPublicIP,
	computed:      []string{"reachable", "why", "gateway_host"},
	presentSchema: "PublicIPStatus",
}

// gatewayOwner is the gateway's account: its own, else (one an admin
// created without one) the account of the VPC it is attached to.
func (v *view) gatewayOwner(g *model.InternetGateway) string {
	if g.Account != "" {
		return g.Account
	}
	return v.vpcAccount[g.VPC]
}

func (v *view) gatewayVisible(g *model.InternetGateway) bool {
	return v.pr.Admin || (v.pr.Account != "" && v.gatewayOwner(g) == v.pr.Account)
}

func (v *view) publicIPVisible(x *model.PublicIP) bool {
	return v.pr.Admin || (v.pr.Account != "" && x.Account == v.pr.Account)
}

func findGateway(p *model.Policy, name string) *model.InternetGateway {
	for i := range p.InternetGateways {
		if p.InternetGateways[i].Name == name {
			return &p.InternetGateways[i]
		}
	}
	return nil
}

func findPublicIP(p *model.Policy, name string) *model.PublicIP {
	for i := range p.PublicIPs {
		if p.PublicIPs[i].Name == name {
			return &p.PublicIPs[i]
		}
	}
	return nil
}

func findPool(p *model.Policy, name string) *model.PublicIPPool {
	for i := range p.PublicIPPools {
		if p.PublicIPPools[i].Name == name {
			return &p.PublicIPPools[i]
		}
	}
	return nil
}

func accountExists(p *model.Policy, name string) bool {
	return slices.ContainsFunc(p.Accounts, func(a model.Account) bool { return a.Name == name })
}

// ownAccount fills in or checks the account of an object an account token
// creates; an admin's must exist (or be empty).
func ownAccount(v *view, account *string) error {
	if v.pr.Admin {
		if *account != "" && !accountExists(v.p, *account) {
			return invalid("account", "account %q does not exist", *account)
		}
		return nil
	}
	if *account == "" {
		*account = v.pr.Account
	} else if *account != v.pr.Account {
		return invalid("account", "must be %q, the account of your token", v.pr.Account)
	}
	return nil
}

// keepAccount fills in an account left out on update, and refuses a
// change (writing the owner of an object that has none is no change).
func keepAccount(account *string, old, owner string) error {
	switch {
	case *account == "" || *account == old:
	case *account == owner && old == "":
	default:
		return immutable("account")
	}
	*account = old
	return nil
}

// mergeGateway checks a created or updated gateway. On update the account
// is immutable, and vpc left out keeps the attachment; a gateway is
// attached by naming a vpc (as attach does) but moved only by detaching
// it first.
func mergeGateway(v *view, old, o *model.InternetGateway) error {
	if old == nil {
		if err := ownAccount(v, &o.Account); err != nil {
			return err
		}
		if o.VPC != "" {
			if err := attachAllowed(v, o, o.VPC); err != nil {
				return err
			}
		}
		return nil
	}
	if err := keepAccount(&o.Account, old.Account, v.gatewayOwner(old)); err != nil {
		return err
	}
	switch {
	case o.VPC == "" || o.VPC == old.VPC:
		o.VPC = old.VPC
	case old.VPC != "":
		return conflict("vpc", "internet gateway %q is attached to vpc %q: detach it first", old.Name, old.VPC)
	default:
		if err := attachAllowed(v, o, o.VPC); err != nil {
			return err
		}
	}
	return nil
}

// attachAllowed checks that the caller may attach gateway g to vpc: the
// VPC exists and is the caller's (another account's, unless shared, is as
// if it did not exist), it is of the gateway's account, and no other
// gateway is attached to it.
func attachAllowed(v *view, g *model.InternetGateway, vpc string) *Error {
	var vp *model.VPC
	for i := range v.p.VPCs {
		if v.p.VPCs[i].Name == vpc {
			vp = &v.p.VPCs[i]
		}
	}
	switch {
	case vp == nil || !(v.pr.Admin || v.vpcVisible(vpc)):
		return invalid("vpc", "vpc %q does not exist", vpc)
	case !v.pr.Admin && !v.vpcOwned(vpc):
		return denied("vpc", "vpc %q belongs to another account; only it may attach an internet gateway to it", vpc)
	case g.Account != "" && g.Account != vp.Account:
		return invalid("vpc", "vpc %q belongs to account %q, internet gateway %q to account %q", vpc, vp.Account, g.Name, g.Account)
	}
	for _, x := range v.p.InternetGateways {
		if x.VPC == vpc && x.Name != g.Name {
			return conflict("vpc", "vpc %q already has internet gateway %q attached (a VPC has at most one)", vpc, x.Name)
		}
	}
	return nil
}

// mergePublicIP checks an allocated or updated public IP. Only an admin
// names the address; the pool, address and account are immutable; nic and
// private_ip left out keep the association, and a new one is checked as
// associate checks it (a PUT may reassociate).
func mergePublicIP(v *view, old, o *model.PublicIP) error {
	if old == nil {
		if err := ownAccount(v, &o.Account); err != nil {
			return err
		}
		if o.Pool == "" {
			return invalid("pool", "is required: the public IP pool to allocate from")
		}
		if o.Address != "" && !v.pr.Admin {
			return invalid("address", "is allocated from the pool (only an admin may choose it)")
		}
		switch {
		case o.NIC != "":
			priv, err := associationAllowed(v, o, o.NIC, o.PrivateIP)
			if err != nil {
				return err
			}
			o.PrivateIP = priv
		case o.PrivateIP != "":
			return invalid("private_ip", "needs a nic to associate with")
		}
		return nil
	}
	if err := keepAccount(&o.Account, old.Account, old.Account); err != nil {
		return err
	}
	if err := keepString("pool", &o.Pool, old.Pool); err != nil {
		return err
	}
	switch {
	case o.Address == "" || sameIP(o.Address, old.Address):
		o.Address = old.Address
	default:
		return immutable("address")
	}
	switch {
	case o.NIC == "" && o.PrivateIP != "" && old.NIC == "":
		return invalid("private_ip", "needs a nic to associate with")
	case o.NIC == "" || (o.NIC == old.NIC && (o.PrivateIP == "" || sameIP(o.PrivateIP, old.PrivateIP))):
		o.NIC, o.PrivateIP = old.NIC, old.PrivateIP
		if o.NIC == "" {
			o.PrivateIP = ""
		}
	default:
		priv, err := associationAllowed(v, o, o.NIC, o.PrivateIP)
		if err != nil {
			return err
		}
		o.PrivateIP = priv
	}
	return nil
}

// associationAllowed checks that the caller may associate public IP x
// with address priv (empty: the primary IP) of nic, and returns the
// address to store: the NIC exists, the caller sees it and may change it;
// priv is one of its addresses; and no other public IP maps to it.
func associationAllowed(v *view, x *model.PublicIP, nic, priv string) (string, *Error) {
	i := nicKind.find(v.p, nic)
	if i < 0 || !canSee(nicKind, v, &v.p.NICs[i]) {
		return "", invalid("nic", "nic %q does not exist", nic)
	}
	n := &v.p.NICs[i]
	if !canWrite(nicKind, v, n) {
		return "", denied("nic", "nic %q belongs to another account; only it may associate public IPs with it", nic)
	}
	addrs := append([]string{n.IP}, n.SecondaryIPs...)
	if priv == "" {
		priv = n.IP // "" for a NIC of the same request, allocated later: its primary IP
	} else if j := slices.IndexFunc(addrs, func(a string) bool { return a != "" && sameIP(a, priv) }); j >= 0 {
		priv = addrs[j]
	} else {
		return "", invalid("private_ip", "%s is not an address of nic %q (it has %s)", priv, nic, strings.Join(addrs, ", "))
	}
	for _, o := range v.p.PublicIPs {
		if o.Name == x.Name || o.NIC != nic {
			continue
		}
		if p := cmpOr(o.PrivateIP, n.IP); p == priv || (p != "" && sameIP(p, priv)) {
			if !v.publicIPVisible(&o) {
				return "", conflict("private_ip", "%s of nic %q already has a public IP of another account", cmpOr(priv, "the primary IP"), nic)
			}
			return "", conflict("private_ip", "%s of nic %q already has public IP %q (disassociate it first)", cmpOr(priv, "the primary IP"), nic, o.Name)
		}
	}
	return priv, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// poolUsers: the public IPs allocated from the pool. As store.InUse.
func poolUsers(p *model.Policy, name string) []ref {
	var out []ref
	for _, x := range p.PublicIPs {
		if x.Pool == name {
			out = append(out, ref{"public_ip", x.Name})
		}
	}
	return out
}

// disassociateGone clears the association of public IPs whose NIC the
// change deletes, or whose private IP it removes from its NIC (as
// store.Cascade).
func (t *txn) disassociateGone() {
	if len(t.p.PublicIPs) == 0 || t.nics == nil {
		return
	}
	after := make(map[string]*model.NIC, len(t.p.NICs))
	for i := range t.p.NICs {
		after[t.p.NICs[i].Name] = &t.p.NICs[i]
	}
	has := func(n *model.NIC, ip string) bool {
		return slices.ContainsFunc(append([]string{n.IP}, n.SecondaryIPs...), func(a string) bool { return sameIP(a, ip) })
	}
	for i := range t.p.PublicIPs {
		x := &t.p.PublicIPs[i]
		o, was := t.nics[x.NIC]
		if x.NIC == "" || !was {
			continue
		}
		n := after[x.NIC]
		if n == nil || (x.PrivateIP != "" && has(&o, x.PrivateIP) && !has(n, x.PrivateIP)) {
			x.NIC, x.PrivateIP = "", ""
		}
	}
}

// InternetGatewayStatus is an internet gateway as the API answers it.
type InternetGatewayStatus struct {
	model.InternetGateway
	// State is attached or detached (computed, read-only).
	State string `json:"state"`
}

func presentGateway(_ *model.Net, o *model.InternetGateway) any {
	st := "detached"
	if o.VPC != "" {
		st = "attached"
	}
	return InternetGatewayStatus{InternetGateway: *o, State: st}
}

// PublicIPPoolStatus is a pool as the API answers it, with its usage.
type PublicIPPoolStatus struct {
	model.PublicIPPool
	// Allocated counts the public IPs allocated from the pool, of every
	// account; Free the usable addresses left (computed, read-only).
	Allocated int `json:"allocated"`
	Free      int `json:"free"`
}

func presentPool(n *model.Net, o *model.PublicIPPool) any {
	out := PublicIPPoolStatus{PublicIPPool: *o}
	if n == nil || n.Pools[o.Name] == nil {
		return out
	}
	c := n.Pools[o.Name].CIDR
	size := 1 << (32 - c.Bits())
	if c.Bits() < 31 {
		size -= 2 // network and broadcast
	}
	for _, x := range n.PublicIPs {
		if x.Pool.Name == o.Name {
			out.Allocated++
		}
	}
	out.Free = max(size-out.Allocated, 0)
	return out
}

// PublicIPStatus is a public IP as the API answers it: the stored object
// (private_ip the effective one) and its computed, read-only state.
type PublicIPStatus struct {
	model.PublicIP
	// Reachable: associated, in a subnet whose route table routes to the
	// VPC's attached internet gateway, and served by a gateway host;
	// only then does traffic flow.
	Reachable bool `json:"reachable"`
	// Why says why it is not reachable.
	Why string `json:"why,omitempty"`
	// GatewayHost is the gateway host that answers for the address on the
	// outside network and translates it.
	GatewayHost string `json:"gateway_host,omitempty"`
}

func presentPublicIP(n *model.Net, o *model.PublicIP) any {
	out := PublicIPStatus{PublicIP: *o}
	if n == nil || n.PublicIPs[o.Name] == nil {
		return out
	}
	pi := n.PublicIPs[o.Name]
	out.Reachable, out.Why = pi.Reachable, pi.Why
	if pi.Gateway != nil {
		out.GatewayHost = pi.Gateway.Name
	}
	if out.PrivateIP == "" && pi.NIC != nil {
		out.PrivateIP = pi.PrivateIP.String()
	}
	return out
}

// InternetGatewayAttachment is the body of POST
// /v1/internet-gateways/{name}/attach.
type InternetGatewayAttachment struct {
	VPC string `json:"vpc"`
}

// attachGateway attaches a detached gateway to a VPC of its account;
// attaching it to the VPC it is attached to changes nothing.
func (s *server) attachGateway(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req InternetGatewayAttachment
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.VPC == "" {
		return invalid("vpc", "is required: the VPC to attach the internet gateway to")
	}
	return verb(s, w, r, pr, internetGatewayKind, http.StatusOK, func(t *txn, g *model.InternetGateway) (bool, error) {
		switch {
		case g.VPC == req.VPC:
			return false, nil
		case g.VPC != "":
			return false, conflict("vpc", "internet gateway %q is already attached to vpc %q: detach it first", g.Name, g.VPC)
		}
		if err := attachAllowed(t.v, g, req.VPC); err != nil {
			return false, err
		}
		g.VPC = req.VPC
		return true, nil
	}, nil)
}

// detachGateway detaches a gateway; its routes stay, as blackholes, and
// public IPs of the VPC stop carrying traffic. Detaching a detached one
// changes nothing.
func (s *server) detachGateway(w http.ResponseWriter, r *http.Request, pr Principal) error {
	return verb(s, w, r, pr, internetGatewayKind, http.StatusOK, func(t *txn, g *model.InternetGateway) (bool, error) {
		if g.VPC == "" {
			return false, nil
		}
		g.VPC = ""
		return true, nil
	}, nil)
}

// allocatePublicIP is POST /v1/public-ips: create with an address
// allocated from the pool, and a name made up from the address when the
// body has none.
func (s *server) allocatePublicIP(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var obj model.PublicIP
	if err := decodeObject(s, w, r, publicIPKind, &obj); err != nil {
		return err
	}
	name := ""
	t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
		o := obj
		if o.Name != "" && findPublicIP(t.p, o.Name) != nil {
			return conflict("name", "public_ip %q already exists", o.Name)
		}
		if err := mergePublicIP(t.v, nil, &o); err != nil {
			return err
		}
		if o.Name == "" {
			if findPool(t.p, o.Pool) == nil {
				return invalid("pool", "pool %q does not exist", o.Pool)
			}
			if o.Address == "" {
				// Addresses are unique across accounts: allocate on the
				// whole policy, as the backend would.
				tmp := &model.Policy{PublicIPPools: t.p.PublicIPPools, PublicIPs: append(slices.Clone(t.p.PublicIPs), o)}
				if err := model.AllocatePublicIPs(tmp); err != nil {
					if fes := model.FieldErrors(err); len(fes) > 0 {
						return invalid(fes[0].Field, "%s", fes[0].Msg)
					}
					return err
				}
				o.Address = tmp.PublicIPs[len(tmp.PublicIPs)-1].Address
			}
			o.Name = "eip-" + strings.NewReplacer(".", "-", ":", "-").Replace(o.Address)
			if findPublicIP(t.p, o.Name) != nil {
				return conflict("name", "public_ip %q already exists (name the public IP)", o.Name)
			}
		}
		name = o.Name
		t.p.PublicIPs = append(t.p.PublicIPs, o)
		t.touch(ref{"public_ip", name}, "")
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := stored(publicIPKind, t, name); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/public-ips/"+url.PathEscape(name))
	return respond(w, publicIPKind, t, rev, name, http.StatusCreated)
}

// PublicIPAssociation is the body of POST /v1/public-ips/{name}/associate.
type PublicIPAssociation struct {
	// NIC to associate with: the caller's (or one it may change).
	NIC string `json:"nic"`
	// PrivateIP is one of the NIC's addresses; default its primary IP.
	PrivateIP string `json:"private_ip,omitempty"`
	// AllowReassociation moves a public IP that is associated elsewhere;
	// without it that is 409.
	AllowReassociation bool `json:"allow_reassociation,omitempty"`
}

// associatePublicIP maps a public IP to a private IP of a NIC.
// Associating it with what it is associated with changes nothing.
func (s *server) associatePublicIP(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req PublicIPAssociation
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.NIC == "" {
		return invalid("nic", "is required: the NIC to associate the public IP with")
	}
	return verb(s, w, r, pr, publicIPKind, http.StatusOK, func(t *txn, x *model.PublicIP) (bool, error) {
		priv, err := associationAllowed(t.v, x, req.NIC, req.PrivateIP)
		if err != nil {
			return false, err
		}
		if x.NIC == req.NIC && sameIP(cmpOr(x.PrivateIP, priv), priv) {
			return false, nil
		}
		if x.NIC != "" && !req.AllowReassociation {
			at := ""
			if x.PrivateIP != "" {
				at = " (" + x.PrivateIP + ")"
			}
			return false, conflict("nic", "public IP %q is already associated with nic %q%s: disassociate it first, or allow reassociation",
				x.Name, x.NIC, at)
		}
		x.NIC, x.PrivateIP = req.NIC, priv
		return true, nil
	}, nil)
}

// disassociatePublicIP unmaps a public IP; it stays allocated.
// Disassociating an unassociated one changes nothing.
func (s *server) disassociatePublicIP(w http.ResponseWriter, r *http.Request, pr Principal) error {
	return verb(s, w, r, pr, publicIPKind, http.StatusOK, func(t *txn, x *model.PublicIP) (bool, error) {
		if x.NIC == "" && x.PrivateIP == "" {
			return false, nil
		}
		x.NIC, x.PrivateIP = "", ""
		return true, nil
	}, nil)
}

// gatewayRoutes are the routes of internet gateways, pools and public IPs.
func gatewayRoutes(s *server) []route {
	var rs []route
	rs = append(rs, crudRoutes(s, internetGatewayKind, "InternetGateway", "Internet gateways of the caller's account. "+
		"A gateway is attached to at most one VPC of its account (attach, detach), and routes of the VPC's tables may target it; "+
		"answers carry its computed state (attached or detached).")...)
	const igw = "/v1/internet-gateways/{name}"
	rs = append(rs,
		route{method: http.MethodPost, path: igw + "/attach", auth: authAny, h: s.attachGateway, doc: opDoc{
			id: "attachInternetGateway", tag: "internet-gateways", summary: "Attach a gateway to a VPC of its account (400 for a VPC that does not exist, 403 for a shared VPC of another account, " +
				"409 if the gateway is attached elsewhere or the VPC has a gateway); returns the gateway.",
			request: "InternetGatewayAttachment", response: "InternetGatewayStatus", status: http.StatusOK, write: true}},
		route{method: http.MethodPost, path: igw + "/detach", auth: authAny, h: s.detachGateway, doc: opDoc{
			id: "detachInternetGateway", tag: "internet-gateways", summary: "Detach a gateway from its VPC; routes to it stay, as blackholes. Returns the gateway.",
			response: "InternetGatewayStatus", status: http.StatusOK, write: true}},
	)
	rs = append(rs, crudRoutes(s, publicIPPoolKind, "PublicIPPool", "Public IP pools: every account lists them, only an admin creates, changes or deletes them. "+
		"Answers carry the count of allocated and free addresses.")...)
	for _, rt := range crudRoutes(s, publicIPKind, "PublicIP", "Public IPs (Elastic IPs) of the caller's account. "+
		"Answers carry the computed state: reachable, why not, and the gateway host that serves the address.") {
		switch {
		case rt.method == http.MethodPost:
			rt.h = s.allocatePublicIP
			rt.doc.id = "allocatePublicIP"
			rt.doc.summary = "Allocate a public IP from a pool: the lowest free usable address (only an admin may name one; 400 on field pool when it has none left). " +
				"Without a name, it is named eip-<address with dashes>. Returns it as stored."
		case rt.method == http.MethodDelete:
			rt.doc.id = "releasePublicIP"
			rt.doc.summary = "Release a public IP (409 while it is associated: disassociate it first)."
		}
		rs = append(rs, rt)
	}
	const pip = "/v1/public-ips/{name}"
	rs = append(rs,
		route{method: http.MethodPost, path: pip + "/associate", auth: authAny, h: s.associatePublicIP, doc: opDoc{
			id: "associatePublicIP", tag: "public-ips", summary: "Associate a public IP with a private IP of a NIC the caller may change (default its primary IP); " +
				"409 if it is associated elsewhere (unless allow_reassociation) or the private IP has another public IP. Returns the public IP.",
			request: "PublicIPAssociation", response: "PublicIPStatus", status: http.StatusOK, write: true}},
		route{method: http.MethodPost, path: pip + "/disassociate", auth: authAny, h: s.disassociatePublicIP, doc: opDoc{
			id: "disassociatePublicIP", tag: "public-ips", summary: "Disassociate a public IP; it stays allocated. Returns it.",
			response: "PublicIPStatus", status: http.StatusOK, write: true}},
	)
	return rs
}

// gatewayTarget checks a route target naming internet gateway name in
// table rt: a gateway that exists, that the caller sees, attached to the
// table's VPC.
func gatewayTarget(v *view, rt *model.RouteTable, name string) *Error {
	g := findGateway(v.p, name)
	switch {
	case g == nil || !v.gatewayVisible(g):
		return invalid("gateway", "internet gateway %q does not exist", name)
	case g.VPC == "":
		return invalid("gateway", "internet gateway %q is not attached: attach it to vpc %q first", name, rt.VPC)
	case g.VPC != rt.VPC:
		return invalid("gateway", "internet gateway %q is attached to vpc %q, not the table's vpc %q", name, g.VPC, rt.VPC)
	}
	return nil
}
