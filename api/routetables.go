package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// Route tables: CRUD through the generic handlers, plus AWS-like verbs
// (create, replace and delete a route; associate a subnet with a table;
// turn a NIC's source/destination check on or off), each one atomic update
// answered with the changed object. A table belongs to its VPC's account,
// like a subnet. A VPC's main table comes and goes with it: it cannot be
// created or deleted by hand, but its routes can be edited.
//
// Targets: a route a request adds or changes must name a NIC that exists,
// that the caller sees, in the table's VPC (400 on field "nic"), or a
// peering that exists, that the caller sees, joining the table's VPC (400
// on field "peering"; accepted or not: until it is, the route is a
// blackhole), or an internet gateway that the caller sees, attached to the
// table's VPC (400 on field "gateway"). Routes already stored are not
// checked again: when a target NIC, peering or gateway is deleted (or the
// gateway detached), its routes stay and turn blackhole (as in AWS), and
// unrelated changes to their tables go on.

var routeTableKind = &kind[model.RouteTable]{
	singular: "route_table", plural: "route-tables", doc: "route_tables",
	items:    func(p *model.Policy) *[]model.RouteTable { return &p.RouteTables },
	name:     func(o *model.RouteTable) string { return o.Name },
	setName:  func(o *model.RouteTable, n string) { o.Name = n },
	visible:  func(v *view, o *model.RouteTable) bool { return v.vpcVisible(o.VPC) },
	writable: func(v *view, o *model.RouteTable) bool { return v.vpcOwned(o.VPC) },
	merge:    mergeRouteTable,
	created: func(o *model.RouteTable) error {
		if o.Main {
			return invalid("main", "main tables are created with their VPC, not by hand")
		}
		return nil
	},
	check: func(v *view, old, o *model.RouteTable) error { return checkTargets(v, old, o) },
	deletable: func(v *view, o *model.RouteTable) error {
		if o.Main {
			return invalid("", "route_table %q is the main table of vpc %q: it is deleted with its VPC, not by hand; change its routes instead", o.Name, o.VPC)
		}
		return nil
	},
	users:         routeTableUsers,
	present:       presentRouteTable,
	computed:      []string{"route_states", "subnets"},
	presentSchema: "RouteTableStatus",
}

// RouteTableStatus is a route table as the API answers it: the stored table
// and, computed from the whole policy and read-only (a request body may
// carry them back, as a GET returned them; they are ignored), the state
// of each route and the subnets that use the table.
type RouteTableStatus struct {
	model.RouteTable
	// RouteStates has the implicit local route (the VPC's CIDR) first,
	// then one entry per route of Routes, in order.
	RouteStates []RouteStatus `json:"route_states"`
	// Subnets associated with the table: those naming it, and for a main
	// table those naming none.
	Subnets []string `json:"subnets"`
}

// RouteStatus is the effective state of one route.
type RouteStatus struct {
	Destination string `json:"destination"`
	// Local marks the implicit route of the VPC's own CIDR.
	Local     bool   `json:"local,omitempty"`
	NIC       string `json:"nic,omitempty"`
	Peering   string `json:"peering,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Blackhole bool   `json:"blackhole,omitempty"`
	// State is active or blackhole (a blackhole route, or one whose
	// target NIC is gone, whose peering is gone or not accepted yet, or
	// whose internet gateway is gone or detached).
	State model.RouteState `json:"state"`
	// Why says why a route to a NIC, a peering or a gateway is a blackhole.
	Why string `json:"why,omitempty"`
}

// presentRouteTable adds the computed fields to a stored table, from the
// built policy n (nil if the policy does not build, which a stored policy
// always does: then the computed fields are left empty rather than
// failing a read).
func presentRouteTable(n *model.Net, o *model.RouteTable) any {
	out := RouteTableStatus{RouteTable: *o, RouteStates: []RouteStatus{}, Subnets: []string{}}
	var ti *model.RouteTableInfo
	if n != nil {
		ti = n.RouteTables[o.Name]
	}
	if ti == nil {
		return out
	}
	out.RouteStates = append(out.RouteStates, RouteStatus{Destination: ti.VPC.CIDR.String(), Local: true, State: model.RouteActive})
	built := make(map[netip.Prefix]*model.RouteInfo, len(ti.Routes))
	for _, ri := range ti.Routes {
		built[ri.Destination] = ri
	}
	for _, r := range o.Routes {
		st := RouteStatus{Destination: r.Destination, NIC: r.NIC, Peering: r.Peering, Gateway: r.Gateway, Blackhole: r.Blackhole}
		if p, err := netip.ParsePrefix(r.Destination); err == nil && built[p] != nil {
			st.State, st.Why = built[p].State, built[p].Why
		}
		out.RouteStates = append(out.RouteStates, st)
	}
	for _, si := range ti.Subnets {
		out.Subnets = append(out.Subnets, si.Name)
	}
	return out
}

// mergeRouteTable checks a created or updated table. On update, routes
// left out (null) keep their current value; [] empties them. A table
// cannot become (or stop being) a VPC's main table.
func mergeRouteTable(v *view, old, o *model.RouteTable) error {
	if old == nil {
		// A reference to an invisible VPC fails validation as if it did
		// not exist; a shared one is there to use, not to change.
		if v.vpcVisible(o.VPC) && !v.vpcOwned(o.VPC) {
			return denied("vpc", "vpc %q belongs to another account; only it may add route tables", o.VPC)
		}
		*o = normalize(*o)
		return nil
	}
	if err := keepString("vpc", &o.VPC, old.VPC); err != nil {
		return err
	}
	if o.Main && !old.Main {
		return invalid("main", "a table cannot be made a main table (associate subnets with it instead)")
	}
	o.Main = old.Main
	if o.Routes == nil {
		o.Routes = old.Routes
	}
	*o = normalize(*o)
	return nil
}

// checkTargets refuses routes of o, new compared with old, whose target
// NIC the caller cannot use.
func checkTargets(v *view, old, o *model.RouteTable) error {
	for j, r := range o.Routes {
		if old != nil && slices.Contains(old.Routes, r) {
			continue
		}
		if err := targetAllowed(v, o, r); err != nil {
			return err.withPrefix(fmt.Sprintf("routes[%d]", j))
		}
	}
	return nil
}

// targetAllowed checks the target of a route the caller writes into table
// rt: exactly one of nic, peering, gateway and blackhole; the NIC exists,
// is visible to the caller and is in the table's VPC; the peering exists,
// is visible to the caller and joins the table's VPC; the internet gateway
// exists, is visible to the caller and is attached to the table's VPC. (model.Build only makes
// a route to a missing NIC or peering a blackhole: right for a target
// deleted later, wrong for a typo.) Whether a target exists is not told
// apart from whether the caller may see it.
func targetAllowed(v *view, rt *model.RouteTable, r model.Route) *Error {
	targets := 0
	for _, set := range []bool{r.NIC != "", r.Peering != "", r.Gateway != "", r.Blackhole} {
		if set {
			targets++
		}
	}
	switch {
	case targets > 1:
		return invalid("nic", "give one target: nic, peering, gateway or blackhole")
	case targets == 0:
		return invalid("nic", "a target is required: nic, peering, gateway or blackhole")
	case r.Blackhole:
		return nil
	case r.Gateway != "":
		return gatewayTarget(v, rt, r.Gateway)
	case r.Peering != "":
		pc := findPeering(v.p, r.Peering)
		if pc == nil || !(v.pr.Admin || v.peeringVisible(pc)) {
			return invalid("peering", "peering %q does not exist", r.Peering)
		}
		if pc.VPC != rt.VPC && pc.PeerVPC != rt.VPC {
			return invalid("peering", "peering %q joins vpc %q and vpc %q, not the table's vpc %q", r.Peering, pc.VPC, pc.PeerVPC, rt.VPC)
		}
		return nil
	}
	i := nicKind.find(v.p, r.NIC)
	if i < 0 || !canSee(nicKind, v, &v.p.NICs[i]) {
		return invalid("nic", "nic %q does not exist", r.NIC)
	}
	if vpc := v.nicVPC(&v.p.NICs[i]); vpc != rt.VPC {
		return invalid("nic", "nic %q is in vpc %q, the table in vpc %q", r.NIC, vpc, rt.VPC)
	}
	return nil
}

// routeTableUsers: the subnets associated with the table (by name, or
// with a main table by naming none). NICs that routes target are not
// users. As store.InUse.
func routeTableUsers(p *model.Policy, name string) []ref {
	var out []ref
	for _, s := range p.Subnets {
		if s.RouteTable == name || (s.RouteTable == "" && model.MainTableName(s.VPC) == name) {
			out = append(out, ref{"subnet", s.Name})
		}
	}
	return out
}

// findTable returns the named table of p, or nil. (Not kind.find: that
// would make routeTableKind's initialization refer to itself.)
func findTable(p *model.Policy, name string) *model.RouteTable {
	for i := range p.RouteTables {
		if p.RouteTables[i].Name == name {
			return &p.RouteTables[i]
		}
	}
	return nil
}

// sameDestination compares destinations as prefixes (as written, if one
// does not parse: model.Build reports that).
func sameDestination(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := netip.ParsePrefix(strings.TrimSpace(a))
	y, err2 := netip.ParsePrefix(strings.TrimSpace(b))
	return err1 == nil && err2 == nil && x == y
}

// routeIndex is the index of the route of rt to destination, or -1.
func routeIndex(rt *model.RouteTable, destination string) int {
	return slices.IndexFunc(rt.Routes, func(r model.Route) bool { return sameDestination(r.Destination, destination) })
}

// routeFieldRE matches validation fields of one route ("routes[3].nic").
var routeFieldRE = regexp.MustCompile(`^routes\[(\d+)\](?:\.(.*))?$`)

// routeFields renames fields of the route at index *i to paths in a
// request body that is that one route ("destination").
func routeFields(i *int) func(string) string {
	return func(f string) string {
		m := routeFieldRE.FindStringSubmatch(f)
		if m == nil || m[1] != fmt.Sprint(*i) {
			return f
		}
		return m[2]
	}
}

// decodeRoute reads a body that is one route with its destination.
func (s *server) decodeRoute(w http.ResponseWriter, r *http.Request) (model.Route, error) {
	var route model.Route
	if err := s.decodeBody(w, r, &route); err != nil {
		return route, err
	}
	if route.Destination == "" {
		return route, invalid("destination", "is required")
	}
	return route, nil
}

// createRoute is POST /v1/route-tables/{name}/routes: add one route,
// unless the table has a route to the same destination (409).
func (s *server) createRoute(w http.ResponseWriter, r *http.Request, pr Principal) error {
	route, err := s.decodeRoute(w, r)
	if err != nil {
		return err
	}
	idx := -1
	return verb(s, w, r, pr, routeTableKind, http.StatusCreated, always(func(t *txn, rt *model.RouteTable) error {
		if j := routeIndex(rt, route.Destination); j >= 0 {
			return conflict("destination", "route_table %q already has a route to %s (replace it instead)", rt.Name, rt.Routes[j].Destination)
		}
		if err := targetAllowed(t.v, rt, route); err != nil {
			return err
		}
		idx = len(rt.Routes)
		rt.Routes = append(rt.Routes, route)
		return nil
	}), routeFields(&idx))
}

// replaceRoute is PUT /v1/route-tables/{name}/routes: replace the route
// to the body's destination (404 if the table has none).
func (s *server) replaceRoute(w http.ResponseWriter, r *http.Request, pr Principal) error {
	route, err := s.decodeRoute(w, r)
	if err != nil {
		return err
	}
	idx := -1
	return verb(s, w, r, pr, routeTableKind, http.StatusOK, always(func(t *txn, rt *model.RouteTable) error {
		idx = routeIndex(rt, route.Destination)
		if idx < 0 {
			return notFound("route_table %q has no route to %s", rt.Name, route.Destination)
		}
		if err := targetAllowed(t.v, rt, route); err != nil {
			return err
		}
		rt.Routes[idx] = route
		return nil
	}), routeFields(&idx))
}

// deleteRoute is DELETE /v1/route-tables/{name}/routes/{cidr...}. The
// destination's slash may be escaped (10.0.0.0%2F8) or not (10.0.0.0/8):
// the pattern's trailing wildcard takes the rest of the path either way.
func (s *server) deleteRoute(w http.ResponseWriter, r *http.Request, pr Principal) error {
	dest := r.PathValue("cidr")
	if dest == "" {
		return invalid("destination", "give the route's destination in the path: /v1/route-tables/{name}/routes/10.0.0.0%%2F8")
	}
	return verb(s, w, r, pr, routeTableKind, http.StatusOK, always(func(t *txn, rt *model.RouteTable) error {
		j := routeIndex(rt, dest)
		if j < 0 {
			return notFound("route_table %q has no route to %s", rt.Name, dest)
		}
		rt.Routes = nilIfEmpty(slices.Delete(rt.Routes, j, j+1))
		return nil
	}), nil)
}

// RouteTableAssociation is the body of PUT /v1/subnets/{name}/route-table.
type RouteTableAssociation struct {
	// RouteTable is the table the subnet uses; empty (or the VPC's main
	// table's name) means the main table.
	RouteTable string `json:"route_table"`
}

// associateRouteTable changes the table a subnet uses.
func (s *server) associateRouteTable(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req RouteTableAssociation
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	return verb(s, w, r, pr, subnetKind, http.StatusOK, func(t *txn, sn *model.Subnet) (bool, error) {
		table := mainAsEmpty(sn.VPC, req.RouteTable)
		if table == sn.RouteTable {
			return false, nil
		}
		sn.RouteTable = table
		return true, nil
	}, nil)
}

// mainAsEmpty stores an association with the VPC's main table as none,
// so that the two ways of writing it are one.
func mainAsEmpty(vpc, table string) string {
	if table == model.MainTableName(vpc) {
		return ""
	}
	return table
}

// SourceDestCheckRequest is the body of PUT /v1/nics/{name}/source-dest-check.
type SourceDestCheckRequest struct {
	// SourceDestCheck on (true) lets the NIC send only from its own
	// addresses and receive only for them; off (false) lets it forward
	// for others, as an appliance that routes target.
	SourceDestCheck *bool `json:"source_dest_check"`
}

// setSourceDestCheck turns a NIC's source/destination check on or off.
func (s *server) setSourceDestCheck(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req SourceDestCheckRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.SourceDestCheck == nil {
		return invalid("source_dest_check", "is required: true (on) or false (off)")
	}
	return verb(s, w, r, pr, nicKind, http.StatusOK, func(t *txn, n *model.NIC) (bool, error) {
		want := sourceDestCheck(req.SourceDestCheck)
		if (want == nil) == (n.SourceDestCheck == nil || *n.SourceDestCheck) {
			return false, nil
		}
		n.SourceDestCheck = want
		return true, nil
	}, nil)
}

// sourceDestCheck is how a check is stored: on (the default) as absent,
// so that the two ways of writing it are one; off as false.
func sourceDestCheck(b *bool) *bool {
	if b == nil || *b {
		return nil
	}
	off := false
	return &off
}
