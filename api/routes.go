package api

import (
	"net/http"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// routes is the single table of what the API serves; the mux and the
// OpenAPI document are both made from it.
func (s *server) routes() []route {
	var rs []route
	rs = append(rs, crudRoutes(s, accountKind, "Account", "Accounts (tenants). Admin only.")...)
	rs = append(rs, crudRoutes(s, vpcKind, "VPC", "VPCs. An account token sees and creates only VPCs of its account.")...)
	rs = append(rs, crudRoutes(s, subnetKind, "Subnet", "Subnets, owned by their VPC's account.")...)
	rs = append(rs, crudRoutes(s, nicKind, "NIC", "NICs, owned by their subnet's account. A NIC created without ip or mac gets them assigned.")...)
	rs = append(rs, crudRoutes(s, hostKind, "Host", "Hypervisors. Admin only. "+
		"Answers add, computed from the whole policy, the usable tunnel kinds (usable_encaps), the VMs' MTU (vm_mtu), problems and each peer's tunnel kind (tunnels).")...)
	rs = append(rs, settingsRoutes(s)...)
	rs = append(rs, crudRoutes(s, securityGroupKind, "SecurityGroup", "Security groups: those of the caller's account and those in its VPCs. "+
		"A group created without egress rules allows all egress; default groups come and go with their VPC.")...)
	const sg = "/v1/security-groups/{name}"
	for _, d := range directions {
		dir := d.String()
		rs = append(rs,
			route{method: http.MethodPost, path: sg + "/" + dir, auth: authAny, h: s.authorizeRule(d), doc: opDoc{
				id: "authorize" + capitalize(dir), tag: "security-groups", summary: "Add an " + dir + " rule (409 if the group has the same rule); returns the group. " +
					"A peer group must be the group's account's own or granted to it.",
				request: "Rule", response: "SecurityGroup", status: http.StatusCreated, write: true}},
			route{method: http.MethodPost, path: sg + "/" + dir + "/revoke", auth: authAny, h: s.revokeRule(d), doc: opDoc{
				id: "revoke" + capitalize(dir), tag: "security-groups", summary: "Remove the " + dir + " rule with the body's id, or else the rule allowing the same traffic as the body; returns the group.",
				request: "Rule", response: "SecurityGroup", status: http.StatusOK, write: true}},
		)
	}
	rs = append(rs,
		route{method: http.MethodPost, path: sg + "/grants", auth: authAny, h: s.addGrant, doc: opDoc{
			id: "grantSecurityGroup", tag: "security-groups", summary: "Let another account name the group as a peer in its rules (group owner or admin); returns the group.",
			request: "GrantRequest", response: "SecurityGroup", status: http.StatusCreated, write: true}},
		route{method: http.MethodDelete, path: sg + "/grants/{account}", auth: authAny, h: s.removeGrant, doc: opDoc{
			id: "revokeSecurityGroupGrant", tag: "security-groups", summary: "Revoke a grant; the other account's rules naming the group stay, inactive. Returns the group.",
			response: "SecurityGroup", status: http.StatusOK, write: true}},
		route{method: http.MethodPut, path: "/v1/nics/{name}/security-groups", auth: authAny, h: s.setNICGroups, doc: opDoc{
			id: "setNICSecurityGroups", tag: "nics", summary: "Replace the security groups of a NIC (an empty list: its account's default group); returns the NIC.",
			request: "NICGroupsRequest", response: "NICStatus", status: http.StatusOK, write: true}},
	)
	rs = append(rs, crudRoutes(s, routeTableKind, "RouteTable", "Route tables, owned by their VPC's account. "+
		"Answers carry each route's computed state (route_states, the implicit local route first) and the associated subnets; "+
		"main tables come and go with their VPC.")...)
	rs = append(rs, crudRoutes(s, peeringKind, "Peering", "VPC peerings: those joining a VPC of the caller's account (requested by it, or to accept). "+
		"Created unaccepted by the owner of vpc; the owner of peer_vpc accepts it.")...)
	rs = append(rs, route{method: http.MethodPost, path: "/v1/peerings/{name}/accept", auth: authAny, h: s.acceptPeering, doc: opDoc{
		id: "acceptPeering", tag: "peerings", summary: "Accept a peering (the peer VPC's account or an admin; 403 for the requester); returns the peering.",
		response: "Peering", status: http.StatusOK, write: true}})
	rs = append(rs, gatewayRoutes(s)...)
	const rtb = "/v1/route-tables/{name}/routes"
	rs = append(rs,
		route{method: http.MethodPost, path: rtb, auth: authAny, h: s.createRoute, doc: opDoc{
			id: "createRoute", tag: "route-tables", summary: "Add a route (409 if the table has a route to the same destination); returns the table. " +
				"A nic target must exist, be visible to the caller and be in the table's VPC; a peering target must exist, be visible to the caller and join the table's VPC; " +
				"a gateway target must be an internet gateway of the caller attached to the table's VPC.",
			request: "Route", response: "RouteTableStatus", status: http.StatusCreated, write: true}},
		route{method: http.MethodPut, path: rtb, auth: authAny, h: s.replaceRoute, doc: opDoc{
			id: "replaceRoute", tag: "route-tables", summary: "Replace the route to the body's destination (404 if none); returns the table.",
			request: "Route", response: "RouteTableStatus", status: http.StatusOK, write: true}},
		route{method: http.MethodDelete, path: rtb + "/{cidr...}", auth: authAny, h: s.deleteRoute, doc: opDoc{
			id: "deleteRoute", tag: "route-tables", summary: "Delete the route to a destination, written with its slash escaped (10.0.0.0%2F8) or not; returns the table.",
			response: "RouteTableStatus", status: http.StatusOK, write: true}},
		route{method: http.MethodPut, path: "/v1/subnets/{name}/route-table", auth: authAny, h: s.associateRouteTable, doc: opDoc{
			id: "associateRouteTable", tag: "subnets", summary: "Associate a subnet with a route table of its VPC (empty: the main table); returns the subnet.",
			request: "RouteTableAssociation", response: "Subnet", status: http.StatusOK, write: true}},
		route{method: http.MethodPut, path: "/v1/nics/{name}/source-dest-check", auth: authAny, h: s.setSourceDestCheck, doc: opDoc{
			id: "setSourceDestCheck", tag: "nics", summary: "Turn a NIC's source/destination check on (true, the default) or off (false: an appliance that routes may target); returns the NIC.",
			request: "SourceDestCheckRequest", response: "NICStatus", status: http.StatusOK, write: true}},
	)
	rs = append(rs,
		route{method: http.MethodPost, path: "/v1/nics/{name}/secondary-ips", auth: authAny, h: s.addSecondaryIP, doc: opDoc{
			id: "addSecondaryIP", tag: "nics", summary: "Add a secondary IP to a NIC; returns the NIC.",
			request: "SecondaryIPRequest", response: "NICStatus", status: http.StatusCreated, write: true}},
		route{method: http.MethodDelete, path: "/v1/nics/{name}/secondary-ips/{ip}", auth: authAny, h: s.removeSecondaryIP, doc: opDoc{
			id: "removeSecondaryIP", tag: "nics", summary: "Remove a secondary IP from a NIC; returns the NIC.",
			response: "NICStatus", status: http.StatusOK, write: true}},
		route{method: http.MethodGet, path: "/v1/tokens", auth: authAdmin, h: s.listTokens, doc: opDoc{
			id: "listTokens", tag: "tokens", summary: "List API tokens (never their secrets). Admin only.",
			response: "TokenInfo", list: true, status: http.StatusOK}},
		route{method: http.MethodPost, path: "/v1/tokens", auth: authAdmin, h: s.createToken, doc: opDoc{
			id: "createToken", tag: "tokens", summary: "Create a token for an account, or an admin token. The secret is returned only here. Admin only.",
			request: "TokenRequest", response: "NewToken", status: http.StatusCreated}},
		route{method: http.MethodGet, path: "/v1/tokens/{id}", auth: authAdmin, h: s.getToken, doc: opDoc{
			id: "getToken", tag: "tokens", summary: "Get a token's description. Admin only.",
			response: "TokenInfo", status: http.StatusOK}},
		route{method: http.MethodDelete, path: "/v1/tokens/{id}", auth: authAdmin, h: s.revokeToken, doc: opDoc{
			id: "revokeToken", tag: "tokens", summary: "Revoke a token. Admin only.",
			status: http.StatusNoContent}},
		route{method: http.MethodPost, path: "/v1/apply", auth: authAny, h: s.apply, doc: opDoc{
			id: "apply", tag: "policy", summary: "Create or update every object of a policy document (JSON or YAML) in one atomic update. " +
				"Objects not in the document are left alone; applying the same document again changes nothing.",
			request: "Policy", yamlRequest: true, response: "ApplyResult", status: http.StatusOK, write: true,
			query: []queryParam{{"dry_run", "boolean", "Compute and validate the changes without committing them."}}}},
		route{method: http.MethodGet, path: "/v1/export", auth: authAny, h: s.export, doc: opDoc{
			id: "export", tag: "policy", summary: "The caller's visible policy as a document (YAML, or JSON with Accept: application/json).",
			response: "Policy", yamlResponse: true, status: http.StatusOK}},
		route{method: http.MethodGet, path: "/openapi.json", auth: authNone, h: s.serveOpenAPI, doc: opDoc{
			id: "openapi", tag: "meta", summary: "This OpenAPI document.", status: http.StatusOK, raw: true}},
	)
	return rs
}

func crudRoutes[T any](s *server, k *kind[T], schema, about string) []route {
	auth, write := authAny, authAny
	switch {
	case k.adminOnly:
		auth, write = authAdmin, authAdmin
	case k.adminWrites:
		write = authAdmin
	}
	list, one := "/v1/"+k.plural, "/v1/"+k.plural+"/{name}"
	shown := schema // what the API answers
	if k.presentSchema != "" {
		shown = k.presentSchema
	}
	return []route{
		{method: http.MethodGet, path: list, auth: auth, h: listHandler(s, k), doc: opDoc{
			id: "list" + schema + "s", tag: k.plural, summary: "List " + k.plural + ". " + about, response: shown, list: true, status: http.StatusOK}},
		{method: http.MethodPost, path: list, auth: write, h: createHandler(s, k), doc: opDoc{
			id: "create" + schema, tag: k.plural, summary: "Create a " + k.singular + " (409 if the name exists); returns it as stored.",
			request: schema, response: shown, status: http.StatusCreated, write: true}},
		{method: http.MethodGet, path: one, auth: auth, h: getHandler(s, k), doc: opDoc{
			id: "get" + schema, tag: k.plural, summary: "Get a " + k.singular + ".", response: shown, status: http.StatusOK}},
		{method: http.MethodPut, path: one, auth: write, h: updateHandler(s, k), doc: opDoc{
			id: "update" + schema, tag: k.plural, summary: "Replace a " + k.singular + ". Assigned fields left out keep their value; immutable fields cannot change (400).",
			request: schema, response: shown, status: http.StatusOK, write: true}},
		{method: http.MethodDelete, path: one, auth: write, h: deleteHandler(s, k), doc: opDoc{
			id: "delete" + schema, tag: k.plural, summary: "Delete a " + k.singular + " (409 naming its users if still referenced).",
			status: http.StatusNoContent, write: true}},
	}
}

// schemaTypes are the types the OpenAPI document describes.
var schemaTypes = map[string]any{
	"Account":                   model.Account{},
	"VPC":                       model.VPC{},
	"Subnet":                    model.Subnet{},
	"NIC":                       model.NIC{},
	"Host":                      model.Host{},
	"Policy":                    model.Policy{},
	"Error":                     Error{},
	"Detail":                    Detail{},
	"Change":                    Change{},
	"ApplyResult":               ApplyResult{},
	"TokenRequest":              TokenRequest{},
	"NewToken":                  NewToken{},
	"TokenInfo":                 TokenInfo{},
	"SecondaryIPRequest":        secondaryIPRequest{},
	"SecurityGroup":             model.SecurityGroup{},
	"Rule":                      model.Rule{},
	"GrantRequest":              GrantRequest{},
	"NICGroupsRequest":          NICGroupsRequest{},
	"RouteTable":                model.RouteTable{},
	"Route":                     model.Route{},
	"RouteTableStatus":          RouteTableStatus{},
	"RouteStatus":               RouteStatus{},
	"RouteTableAssociation":     RouteTableAssociation{},
	"SourceDestCheckRequest":    SourceDestCheckRequest{},
	"Peering":                   model.Peering{},
	"Uplink":                    model.Uplink{},
	"InternetGateway":           model.InternetGateway{},
	"InternetGatewayStatus":     InternetGatewayStatus{},
	"InternetGatewayAttachment": InternetGatewayAttachment{},
	"PublicIPPool":              model.PublicIPPool{},
	"PublicIPPoolStatus":        PublicIPPoolStatus{},
	"PublicIP":                  model.PublicIP{},
	"PublicIPStatus":            PublicIPStatus{},
	"PublicIPAssociation":       PublicIPAssociation{},
	"Settings":                  model.Settings{},
	"SettingsStatus":            SettingsStatus{},
	"HostStatus":                HostStatus{},
	"NICStatus":                 NICStatus{},
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (s *server) serveOpenAPI(w http.ResponseWriter, r *http.Request, _ Principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.openapi)
	return nil
}
