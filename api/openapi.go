package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// opDoc documents one route for the OpenAPI document.
type opDoc struct {
	id, tag, summary string
	request          string // schema of the JSON body, "" for none
	yamlRequest      bool   // the body may also be YAML
	response         string // schema of the response, "" for none
	list             bool   // the response is {"items": [response]}
	yamlResponse     bool   // the response is YAML unless JSON is accepted
	raw              bool   // the response is a free-form JSON document
	status           int    // success status
	write            bool   // may fail with 409 or validation errors
	query            []queryParam
}

type queryParam struct{ name, typ, description string }

// fieldDocs describes fields of the schemas (schema.json_name).
var fieldDocs = map[string]string{
	"VPC.account":                       "Owning account. Defaults to (and must be) the token's account for account tokens.",
	"VPC.cidr":                          "IPv4 CIDR, /16 to /28. Immutable.",
	"VPC.vni":                           "Tunnel key, assigned when 0 (only an admin may choose it). Immutable once assigned.",
	"Subnet.vpc":                        "The VPC (of the caller's account). Immutable.",
	"Subnet.cidr":                       "IPv4 CIDR inside the VPC, /28 or larger. Immutable.",
	"NIC.name":                          "The iface-id hypervisors set in external_ids:iface-id.",
	"NIC.subnet":                        "The subnet. Immutable.",
	"NIC.host":                          "Host the NIC is placed on (must exist); empty for unplaced.",
	"NIC.mac":                           "Assigned when empty. Immutable once assigned.",
	"NIC.ip":                            "Primary IPv4 address; the lowest free address of the subnet when empty.",
	"NIC.port_key":                      "Data-plane key, assigned (only an admin may choose it). Immutable once assigned.",
	"NIC.ct_zone":                       "Conntrack zone on the NIC's host, assigned (only an admin may choose it); reassigned when the NIC moves to another host.",
	"Host.underlay_ip":                  "IPv4 address tunnels use.",
	"Host.encaps":                       "Tunnel kinds the host can use (vxlan, geneve, gre, stt), overriding the deployment's (settings encaps); empty: the deployment's. A pair of hosts uses the first kind of the deployment's order that both can use.",
	"Host.encap":                        "Older single-kind form of encaps (vxlan, geneve, gre or stt); not together with encaps.",
	"Host.underlay_mtu":                 "MTU of the host's underlay network, 576-65535; default 1500. Less the tunnel overhead, it gives the VMs' MTU.",
	"Host.ovsdb":                        "OVSDB endpoint the controller dials (unix:/path or tcp:ip:port).",
	"Host.datapath_type":                "netdev (default) or system. stt is unusable on netdev (reported in problems).",
	"HostStatus.usable_encaps":          "Computed, read-only: the kinds configured for the host (its encaps, else the deployment's) that its datapath can send with.",
	"HostStatus.vm_mtu":                 "Computed, read-only: the MTU its VMs' NICs must use: the smallest, over its peers, of the two underlay MTUs less the overhead of the pair's kind (vxlan, geneve 50; gre 42; stt 58).",
	"HostStatus.problems":               "Computed, read-only: why some of its traffic cannot flow (a kind its datapath cannot send with, no kind in common with a peer).",
	"HostStatus.tunnels":                "Computed, read-only: the tunnel kind used with each peer host.",
	"NICStatus.mtu":                     "Computed, read-only: the MTU the VM must give the NIC (its host's vm_mtu); absent while the NIC is on no host.",
	"Settings.encaps":                   "The deployment's tunnel kinds in order of preference (vxlan, geneve, gre, stt); default [vxlan]. Left out on update, they stay; [] goes back to the default.",
	"SettingsStatus.effective_encaps":   "Computed, read-only: the order in force.",
	"Error.code":                        "invalid_argument (400, 405, 413), not_found (404), conflict (409), unauthenticated (401), permission_denied (403) or internal (500).",
	"Error.field":                       "What is wrong: a JSON path into the request body, or <kind> \"<name>\": <field> for another object.",
	"Change.op":                         "create, update or unchanged.",
	"Change.fields":                     "For updates, the fields that change.",
	"TokenRequest.account":              "Account the token acts for; empty for an admin token.",
	"TokenRequest.admin":                "Create an admin token (no account).",
	"NewToken.secret":                   "The bearer secret; shown only in this response.",
	"VPC.shared":                        "NICs and security groups of every account may be in the VPC, isolated by security groups only; other accounts see it and its subnets read-only. Only an admin may set it.",
	"NIC.account":                       "Owning account; the VPC's by default. Only a shared VPC holds NICs of other accounts (an account token's NIC there is its own).",
	"NIC.security_groups":               "Groups of the NIC's VPC and account; empty: its account's default group. Left out on update, they stay.",
	"SecurityGroup.vpc":                 "The VPC (the caller's, or a shared one). Immutable.",
	"SecurityGroup.account":             "Owning account; the token's account for account tokens. Immutable.",
	"SecurityGroup.default":             "The account's default group of the VPC (<vpc>-default, or <vpc>-<account>-default in a shared VPC), created with the VPC; cannot be created or deleted by hand.",
	"SecurityGroup.ingress":             "Allowed incoming traffic. Left out on update, the rules stay.",
	"SecurityGroup.egress":              "Allowed outgoing traffic; all egress when left out on create. Left out on update, the rules stay.",
	"SecurityGroup.grants":              "Accounts that may name this group as a peer in their rules. Left out on update, they stay.",
	"Rule.id":                           "Assigned when 0 (only an admin may choose it); names the rule in flows. Given alone to revoke, it selects the rule.",
	"Rule.protocol":                     "tcp, udp, icmp, all or an IP protocol number 0-255.",
	"Rule.ports":                        "tcp/udp destination port or range (\"22\", \"8000-8080\"); empty: all.",
	"Rule.icmp_type":                    "icmp type 0-255; absent: any.",
	"Rule.icmp_code":                    "icmp code 0-255 (needs icmp_type); absent: any.",
	"Rule.cidr":                         "Peer network (the source of ingress, the destination of egress); or group.",
	"Rule.group":                        "Peer security group of the same VPC: its members' addresses. Of another account only if granted to the group's account.",
	"GrantRequest.account":              "The account to grant the group to.",
	"Subnet.route_table":                "The route table the subnet uses, of its VPC; empty: the VPC's main table (<vpc>-main). Left out on update, it stays.",
	"NIC.source_dest_check":             "Source/destination check: absent or true (on, the default) lets the NIC send only from its own addresses and receive only for them; false lets it forward for others (an appliance that routes target). Left out on update, it stays.",
	"RouteTable.vpc":                    "The VPC (the caller's). Immutable.",
	"RouteTable.main":                   "The VPC's main table (<vpc>-main), used by subnets that name no table; created and deleted with the VPC, never by hand.",
	"RouteTable.routes":                 "Static routes, besides the implicit local route of the VPC's CIDR. Left out on update, they stay.",
	"Route.destination":                 "IPv4 CIDR; unique in the table, not the VPC's own CIDR. The longest matching prefix wins.",
	"Route.nic":                         "Target: a NIC of the table's VPC (with its source/destination check off, to forward). If it is deleted the route stays, as a blackhole.",
	"Route.blackhole":                   "Target: drop the destination's packets.",
	"RouteTableStatus.route_states":     "Computed, read-only: the implicit local route first, then each route's state.",
	"RouteTableStatus.subnets":          "Computed, read-only: the subnets that use the table.",
	"RouteStatus.local":                 "The implicit route of the VPC's CIDR.",
	"RouteStatus.state":                 "active, or blackhole (a blackhole route, or one whose target NIC, peering or internet gateway is gone, or whose gateway is detached).",
	"RouteStatus.why":                   "Why a route to a NIC, a peering or a gateway is a blackhole.",
	"RouteTableAssociation.route_table": "A route table of the subnet's VPC; empty or <vpc>-main: the main table.",
	"SourceDestCheckRequest.source_dest_check": "true: on (the default); false: off.",
	"Route.peering":                           "Target: a peering of the table's VPC; the packets go on in the peer VPC once the peering is accepted (until then, and if it is deleted, the route is a blackhole).",
	"RouteStatus.peering":                     "The route's peering target.",
	"Peering.vpc":                             "The requester's VPC (the caller's). Immutable.",
	"Peering.peer_vpc":                        "The accepter's VPC, of any account, named by name; its CIDR must not overlap vpc's. Immutable.",
	"Peering.accepted":                        "Set by the peer VPC's account (POST /v1/peerings/{name}/accept); false on create (except by an admin).",
	"Route.gateway":                           "Target: an internet gateway attached to the table's VPC (0.0.0.0/0 to it makes the subnets using the table public). If it is detached or deleted the route stays, as a blackhole.",
	"RouteStatus.gateway":                     "The route's internet gateway target.",
	"Host.uplink":                             "Makes the host a gateway host: its bridge reaches the outside network through this interface and does the public IPs' 1:1 NAT. Absent: not a gateway host.",
	"Uplink.interface":                        "The host's network device attached to br-int as the uplink port (e.g. eth1).",
	"Uplink.ip":                               "The gateway's own address on the outside network, with its prefix length (e.g. 198.51.100.2/24).",
	"Uplink.next_hop":                         "The outside router every packet to the internet goes to; inside ip's network.",
	"Uplink.next_hop_mac":                     "Pins the router's MAC; empty: resolved by ARP through the uplink.",
	"Uplink.mac":                              "The gateway's MAC on the outside network; empty: derived from the host's name.",
	"InternetGateway.account":                 "Owning account. Defaults to (and must be) the token's account for account tokens. Immutable.",
	"InternetGateway.vpc":                     "The VPC it is attached to (of its account; a VPC has at most one gateway); empty: detached. Left out on update, it stays; set by attach, cleared by detach.",
	"InternetGatewayStatus.state":             "Computed, read-only: attached or detached.",
	"InternetGatewayAttachment.vpc":           "The VPC to attach the gateway to: the caller's, without a gateway.",
	"PublicIPPool.cidr":                       "IPv4 CIDR of public addresses; pools do not overlap. Every address but the network and broadcast ones (of pools larger than /31) is allocated.",
	"PublicIPPoolStatus.allocated":            "Computed, read-only: public IPs allocated from the pool, of every account.",
	"PublicIPPoolStatus.free":                 "Computed, read-only: usable addresses left.",
	"PublicIP.name":                           "Left out on allocation: eip-<address with dashes>.",
	"PublicIP.account":                        "Owning account. Defaults to (and must be) the token's account for account tokens. Immutable.",
	"PublicIP.pool":                           "The pool the address is allocated from. Immutable.",
	"PublicIP.address":                        "Allocated from the pool (the lowest free usable address; only an admin may choose it), then pinned. Immutable.",
	"PublicIP.nic":                            "The NIC it is associated with (set by associate, cleared by disassociate, and when the NIC is deleted); empty: unassociated.",
	"PublicIP.private_ip":                     "The NIC's address it maps to (1:1 NAT); the NIC's primary IP by default.",
	"PublicIPStatus.reachable":                "Computed, read-only: associated, in a subnet whose route table routes to the VPC's attached internet gateway, and served by a gateway host.",
	"PublicIPStatus.why":                      "Computed, read-only: why it is not reachable.",
	"PublicIPStatus.gateway_host":             "Computed, read-only: the gateway host that answers for the address on the outside network.",
	"PublicIPAssociation.nic":                 "The NIC to associate with: one the caller may change.",
	"PublicIPAssociation.private_ip":          "One of the NIC's addresses, without another public IP; default its primary IP.",
	"PublicIPAssociation.allow_reassociation": "Move the public IP if it is associated elsewhere (else 409).",
}

// requiredFields lists the fields a schema must have.
var requiredFields = map[string][]string{
	"Account": {"name"}, "VPC": {"name", "cidr"}, "Subnet": {"name", "vpc", "cidr"}, "NIC": {"name", "subnet"},
	"Host": {"name", "underlay_ip"}, "HostStatus": {"name", "underlay_ip"}, "NICStatus": {"name", "subnet"},
	"SettingsStatus": {"effective_encaps"}, "Error": {"code", "message"}, "Change": {"op", "kind", "name"},
	"ApplyResult": {"changes", "dry_run"}, "NewToken": {"id", "secret", "admin"}, "TokenInfo": {"id", "admin", "created"},
	"SecondaryIPRequest": {"ip"}, "Detail": {"message"},
	"SecurityGroup": {"name", "vpc"}, "GrantRequest": {"account"}, "NICGroupsRequest": {"security_groups"},
	"RouteTable": {"name", "vpc"}, "Route": {"destination"}, "RouteTableStatus": {"name", "vpc", "route_states", "subnets"},
	"RouteStatus": {"destination", "state"}, "RouteTableAssociation": {"route_table"}, "SourceDestCheckRequest": {"source_dest_check"},
	"Peering": {"name", "vpc", "peer_vpc"},
	"Uplink":  {"interface", "ip", "next_hop"}, "InternetGateway": {"name"}, "InternetGatewayStatus": {"name", "state"},
	"InternetGatewayAttachment": {"vpc"}, "PublicIPPool": {"name", "cidr"}, "PublicIPPoolStatus": {"name", "cidr", "allocated", "free"},
	"PublicIP": {"pool"}, "PublicIPStatus": {"name", "pool", "reachable"}, "PublicIPAssociation": {"nic"},
}

var pathParamRE = regexp.MustCompile(`\{(\w+)(?:\.\.\.)?\}`)

// docPath writes a mux pattern as an OpenAPI path: a trailing wildcard
// ({cidr...}) is a plain parameter there.
func docPath(pattern string) string { return strings.ReplaceAll(pattern, "...}", "}") }

// openAPIDocument describes routes as an OpenAPI 3.0 document.
func openAPIDocument(routes []route) []byte {
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		p := docPath(rt.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(rt.method)] = operation(rt)
	}
	schemas := map[string]any{}
	for name, v := range schemaTypes {
		schemas[name] = schemaOf(name, reflect.TypeOf(v))
	}
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "OpenVPC tenant API",
			"version": "1",
			"description": "Accounts, VPCs, subnets, NICs, hosts, the deployment's settings, security groups, route tables, peerings, internet gateways, public IP pools and public IPs of OpenVPC, " +
				"declarative apply/export, and API tokens. " +
				"Authenticate with Authorization: Bearer <token>. An account token sees and changes only its account's " +
				"objects; accounts, hosts and tokens need an admin token, and changing public IP pools and the settings too. Every error is a JSON Error.",
		},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         schemas,
			"responses": map[string]any{
				"BadRequest":       errResp("Invalid request: malformed JSON, unknown field, wrong type or a validation error; field names it."),
				"Unauthenticated":  errResp("No, malformed, unknown or revoked token."),
				"PermissionDenied": errResp("The token lacks the rights (admin-only kinds)."),
				"NotFound":         errResp("No such object (or one of another account)."),
				"Conflict":         errResp("The name exists, or the object is still used (the message names the users)."),
				"TooLarge":         errResp("The request body exceeds the limit."),
				"Internal":         errResp("Internal error; details are in the controller log."),
			},
		},
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("api: OpenAPI document: %v", err)) // static data; caught by tests
	}
	return data
}

func ref2(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func operation(rt route) map[string]any {
	d := rt.doc
	op := map[string]any{"operationId": d.id, "summary": d.summary, "tags": []any{d.tag}}
	var params []any
	for _, m := range pathParamRE.FindAllStringSubmatch(rt.path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	for _, q := range d.query {
		params = append(params, map[string]any{"name": q.name, "in": "query", "required": false, "description": q.description,
			"schema": map[string]any{"type": q.typ}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if d.request != "" {
		content := map[string]any{"application/json": map[string]any{"schema": ref2(d.request)}}
		if d.yamlRequest {
			content["application/yaml"] = map[string]any{"schema": ref2(d.request)}
		}
		op["requestBody"] = map[string]any{"required": true, "content": content}
	}
	ok := map[string]any{"description": http.StatusText(d.status)}
	switch {
	case d.raw:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
	case d.response != "":
		schema := ref2(d.response)
		if d.list {
			schema = map[string]any{"type": "object", "required": []any{"items"},
				"properties": map[string]any{"items": map[string]any{"type": "array", "items": ref2(d.response)}}}
		}
		content := map[string]any{"application/json": map[string]any{"schema": schema}}
		if d.yamlResponse {
			content["application/yaml"] = map[string]any{"schema": schema}
		}
		ok["content"] = content
	}
	responses := map[string]any{fmt.Sprint(d.status): ok}
	use := func(code int, name string) {
		responses[fmt.Sprint(code)] = map[string]any{"$ref": "#/components/responses/" + name}
	}
	if rt.auth == authNone {
		op["security"] = []any{}
	} else {
		use(401, "Unauthenticated")
		use(403, "PermissionDenied")
		use(500, "Internal")
	}
	if d.request != "" || d.write || len(d.query) > 0 {
		use(400, "BadRequest")
	}
	if d.request != "" {
		use(413, "TooLarge")
	}
	if strings.Contains(rt.path, "{") {
		use(404, "NotFound")
	}
	if d.write {
		use(409, "Conflict")
	}
	op["responses"] = responses
	return op
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes a Go type as an OpenAPI schema, from its JSON tags.
func schemaOf(name string, t reflect.Type) map[string]any {
	props := map[string]any{}
	addProps([]string{name}, t, props)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if req := requiredFields[name]; len(req) > 0 {
		r := append([]string(nil), req...)
		sort.Strings(r)
		out["required"] = r
	}
	return out
}

// addProps adds the JSON fields of struct t to props, those of embedded
// structs too (encoding/json flattens them), described by fieldDocs under
// any of names (the schema's, then those of the structs embedding it).
func addProps(names []string, t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		jn, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			inner := names
			for n, v := range schemaTypes {
				if reflect.TypeOf(v) == f.Type {
					inner = append([]string{n}, names...)
				}
			}
			addProps(inner, f.Type, props)
			continue
		}
		if jn == "-" || !f.IsExported() {
			continue
		}
		if jn == "" {
			jn = f.Name
		}
		s := typeSchema(f.Type)
		for _, n := range names {
			if d := fieldDocs[n+"."+jn]; d != "" {
				s["description"] = d
				break
			}
		}
		props[jn] = s
	}
}

func typeSchema(t reflect.Type) map[string]any {
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := typeSchema(t.Elem())
		if _, ok := s["$ref"]; ok {
			// Siblings of a $ref are ignored (OpenAPI 3.0): wrap it.
			s = map[string]any{"allOf": []any{s}}
		}
		s["nullable"] = true
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": uint64(1)<<t.Bits() - 1}
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem())}
	case reflect.Struct:
		for name, v := range schemaTypes {
			if reflect.TypeOf(v) == t {
				return ref2(name)
			}
		}
	}
	return map[string]any{}
}
