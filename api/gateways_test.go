package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// gatewayEnv adds to the seed an uplink on h1 (a gateway host), a pool
// "pub" of six usable addresses (203.0.113.1-6), a second acme VPC
// "acme-two" (10.9.0.0/16) and a NIC web2 next to web1.
func gatewayEnv(t testing.TB) *env {
	e := newEnv(t)
	e.want(200, "PUT", "/v1/hosts/h1", e.admin, `{"underlay_ip": "172.31.0.11", "uplink": {"interface": "eth1", "ip": "198.51.100.2/24", "next_hop": "198.51.100.1"}}`, nil)
	e.want(201, "POST", "/v1/public-ip-pools", e.admin, `{"name": "pub", "cidr": "203.0.113.0/29"}`, nil)
	e.want(201, "POST", "/v1/vpcs", e.acme, `{"name": "acme-two", "cidr": "10.9.0.0/16"}`, nil)
	e.want(201, "POST", "/v1/nics", e.acme, `{"name": "web2", "subnet": "acme-web"}`, nil)
	return e
}

func (e *env) publicIP(name string) *model.PublicIP {
	e.t.Helper()
	for _, x := range e.b.snapshot().PublicIPs {
		if x.Name == name {
			return &x
		}
	}
	return nil
}

func (e *env) gateway(name string) *model.InternetGateway {
	e.t.Helper()
	for _, x := range e.b.snapshot().InternetGateways {
		if x.Name == name {
			return &x
		}
	}
	return nil
}

func TestPublicIPPools(t *testing.T) {
	e := gatewayEnv(t)
	// Only an admin writes pools; every account reads them.
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/public-ip-pools", `{"name": "mine", "cidr": "192.0.2.0/24"}`},
		{"PUT", "/v1/public-ip-pools/pub", `{"cidr": "203.0.113.0/28"}`},
		{"DELETE", "/v1/public-ip-pools/pub", ""},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		e.wantErr(403, api.CodePermissionDenied, "", "needs an admin token", tc.method, tc.path, e.acme, body)
	}
	e.wantErr(403, api.CodePermissionDenied, "public_ip_pools", "only an admin", "POST", "/v1/apply", e.acme,
		"public_ip_pools: [{name: mine, cidr: 192.0.2.0/24}]\n")
	var l list[api.PublicIPPoolStatus]
	e.want(200, "GET", "/v1/public-ip-pools", e.globex, nil, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "pub" || l.Items[0].CIDR != "203.0.113.0/29" || l.Items[0].Free != 6 || l.Items[0].Allocated != 0 {
		t.Fatalf("globex lists %+v", l.Items)
	}

	// Validation by model.Build, naming the field.
	e.wantErr(400, api.CodeInvalidArgument, "cidr", "is not an IPv4 CIDR", "POST", "/v1/public-ip-pools", e.admin, `{"name": "x", "cidr": "nope"}`)
	e.wantErr(400, api.CodeInvalidArgument, "cidr", `overlaps pool "pub"`, "POST", "/v1/public-ip-pools", e.admin, `{"name": "x", "cidr": "203.0.113.0/24"}`)
	e.wantErr(409, api.CodeConflict, "name", "already exists", "POST", "/v1/public-ip-pools", e.admin, `{"name": "pub", "cidr": "192.0.2.0/24"}`)

	// The usage counts every account's public IPs; a pool in use cannot go.
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"pool": "pub"}`, nil)
	e.want(201, "POST", "/v1/public-ips", e.globex, `{"pool": "pub"}`, nil)
	var pl api.PublicIPPoolStatus
	e.want(200, "GET", "/v1/public-ip-pools/pub", e.acme, nil, &pl)
	if pl.Allocated != 2 || pl.Free != 4 {
		t.Fatalf("pool usage %+v", pl)
	}
	e.wantErr(409, api.CodeConflict, "", `public_ip_pool "pub" is used by public_ip "eip-203-0-113-1", public_ip "eip-203-0-113-2"`,
		"DELETE", "/v1/public-ip-pools/pub", e.admin, nil)
	// Growing it is fine; shrinking it below an allocated address is not.
	e.want(200, "PUT", "/v1/public-ip-pools/pub", e.admin, `{"cidr": "203.0.113.0/28"}`, nil)
	e.wantErr(400, api.CodeInvalidArgument, `public_ip "eip-203-0-113-2": address`, "not a usable address", "PUT", "/v1/public-ip-pools/pub", e.admin, `{"cidr": "203.0.113.0/31"}`)
	for _, name := range []string{"eip-203-0-113-1", "eip-203-0-113-2"} {
		e.want(204, "DELETE", "/v1/public-ips/"+name, e.admin, nil, nil)
	}
	e.want(204, "DELETE", "/v1/public-ip-pools/pub", e.admin, nil, nil)
	e.checkValid()
}

func TestInternetGatewayCRUD(t *testing.T) {
	e := gatewayEnv(t)
	var g api.InternetGatewayStatus
	e.want(201, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw1"}`, &g)
	if g.Name != "igw1" || g.Account != "acme" || g.VPC != "" || g.State != "detached" || e.lastHeader.Get("Location") != "/v1/internet-gateways/igw1" {
		t.Fatalf("created %+v", g)
	}
	e.wantErr(400, api.CodeInvalidArgument, "account", `must be "acme"`, "POST", "/v1/internet-gateways", e.acme, `{"name": "x", "account": "globex"}`)
	e.wantErr(409, api.CodeConflict, "name", `internet_gateway "igw1" already exists`, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw1"}`)

	// Attach.
	e.want(200, "POST", "/v1/internet-gateways/igw1/attach", e.acme, `{"vpc": "acme-vpc"}`, &g)
	if g.VPC != "acme-vpc" || g.State != "attached" || e.gateway("igw1").VPC != "acme-vpc" {
		t.Fatalf("attached %+v", g)
	}
	if e.built().VPCs["acme-vpc"].Gateway == nil {
		t.Fatal("the VPC has no gateway")
	}
	commits := e.commits()
	e.want(200, "POST", "/v1/internet-gateways/igw1/attach", e.acme, `{"vpc": "acme-vpc"}`, nil)
	e.want(200, "PUT", "/v1/internet-gateways/igw1", e.acme, `{}`, &g)
	if e.commits() != commits || g.VPC != "acme-vpc" {
		t.Fatalf("attaching again or an empty PUT committed or detached: %+v", g)
	}
	e.want(201, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw2"}`, nil)
	e.want(201, "POST", "/v1/internet-gateways", e.globex, `{"name": "gigw"}`, nil)
	e.want(201, "POST", "/v1/vpcs", e.admin, `{"name": "shared", "account": "acme", "cidr": "10.5.0.0/16", "shared": true}`, nil)
	for _, tc := range []struct {
		status      int
		code, field string
		msg, token  string
		gw, body    string
	}{
		{409, api.CodeConflict, "vpc", `internet gateway "igw1" is already attached to vpc "acme-vpc": detach it first`, e.acme, "igw1", `{"vpc": "acme-two"}`},
		{409, api.CodeConflict, "vpc", `vpc "acme-vpc" already has internet gateway "igw1" attached`, e.acme, "igw2", `{"vpc": "acme-vpc"}`},
		{400, api.CodeInvalidArgument, "vpc", `vpc "globex-vpc" does not exist`, e.acme, "igw2", `{"vpc": "globex-vpc"}`},
		{400, api.CodeInvalidArgument, "vpc", `vpc "nosuch" does not exist`, e.acme, "igw2", `{"vpc": "nosuch"}`},
		{400, api.CodeInvalidArgument, "vpc", "is required", e.acme, "igw2", `{}`},
		{400, api.CodeInvalidArgument, "x", `unknown field "x"`, e.acme, "igw2", `{"vpc": "acme-two", "x": 1}`},
		{400, api.CodeInvalidArgument, "vpc", `vpc "acme-two" does not exist`, e.globex, "gigw", `{"vpc": "acme-two"}`},
		{403, api.CodePermissionDenied, "vpc", `vpc "shared" belongs to another account`, e.globex, "gigw", `{"vpc": "shared"}`},
		{404, api.CodeNotFound, "", `internet_gateway "igw2" not found`, e.globex, "igw2", `{"vpc": "globex-vpc"}`},
		{400, api.CodeInvalidArgument, "vpc", `vpc "acme-two" belongs to account "acme", internet gateway "gigw" to account "globex"`, e.admin, "gigw", `{"vpc": "acme-two"}`},
	} {
		e.wantErr(tc.status, tc.code, tc.field, tc.msg, "POST", "/v1/internet-gateways/"+tc.gw+"/attach", tc.token, tc.body)
	}
	// A create or a PUT naming a vpc attaches, with the same checks; a
	// PUT does not move an attached gateway.
	e.wantErr(409, api.CodeConflict, "vpc", "already has internet gateway", "POST", "/v1/internet-gateways", e.acme, `{"name": "igw3", "vpc": "acme-vpc"}`)
	e.wantErr(409, api.CodeConflict, "vpc", "detach it first", "PUT", "/v1/internet-gateways/igw1", e.acme, `{"vpc": "acme-two"}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", "cannot be changed", "PUT", "/v1/internet-gateways/igw1", e.acme, `{"account": "globex"}`)
	e.want(200, "PUT", "/v1/internet-gateways/igw2", e.acme, `{"vpc": "acme-two"}`, &g)
	if g.State != "attached" {
		t.Fatalf("PUT attached %+v", g)
	}
	if e.gateway("x") != nil || e.gateway("igw3") != nil {
		t.Fatal("a failed request created a gateway")
	}

	// Each account sees its own.
	var l list[api.InternetGatewayStatus]
	e.want(200, "GET", "/v1/internet-gateways", e.acme, nil, &l)
	if len(l.Items) != 2 || l.Items[0].Name != "igw1" || l.Items[1].Name != "igw2" {
		t.Fatalf("acme lists %+v", l.Items)
	}
	e.wantErr(404, api.CodeNotFound, "", "not found", "GET", "/v1/internet-gateways/igw1", e.globex, nil)
	e.wantErr(404, api.CodeNotFound, "", "not found", "POST", "/v1/internet-gateways/igw1/detach", e.globex, nil)

	// Attached, neither the gateway nor its VPC can go.
	e.wantErr(409, api.CodeConflict, "", `vpc "acme-vpc" has internet gateway "igw1" attached: detach internet gateway "igw1" first`, "DELETE", "/v1/vpcs/acme-vpc", e.acme, nil)
	e.wantErr(409, api.CodeConflict, "", `internet gateway "igw1" is attached to vpc "acme-vpc": detach it first`, "DELETE", "/v1/internet-gateways/igw1", e.acme, nil)

	// Export and apply carry gateways; re-applying changes nothing.
	code, data := e.do("GET", "/v1/export", e.acme, nil)
	if code != 200 || !strings.Contains(string(data), "internet_gateways:") || strings.Contains(string(data), "gigw") {
		t.Fatalf("export: %d %s", code, data)
	}
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.acme, string(data), &res)
	if res.Revision != 0 {
		t.Fatalf("re-applying the export changed: %+v", res)
	}
	e.want(200, "POST", "/v1/apply", e.acme, "internet_gateways: [{name: igw4}]\n", &res)
	if len(res.Changes) != 1 || res.Changes[0].Op != "create" || res.Changes[0].Kind != "internet_gateway" || res.Changes[0].Name != "igw4" {
		t.Fatalf("apply: %+v", res)
	}
	e.wantErr(409, api.CodeConflict, "internet_gateways[0].vpc", "already has internet gateway", "POST", "/v1/apply", e.acme, "internet_gateways: [{name: igw5, vpc: acme-vpc}]\n")
	e.wantErr(400, api.CodeInvalidArgument, "internet_gateways[1].name", "is also internet_gateways[0]", "POST", "/v1/apply", e.acme, "internet_gateways: [{name: a}, {name: a}]\n")

	// Detach (twice changes nothing), then delete.
	g = api.InternetGatewayStatus{}
	e.want(200, "POST", "/v1/internet-gateways/igw1/detach", e.acme, nil, &g)
	if g.VPC != "" || g.State != "detached" || e.gateway("igw1").VPC != "" {
		t.Fatalf("detached %+v", g)
	}
	commits = e.commits()
	e.want(200, "POST", "/v1/internet-gateways/igw1/detach", e.acme, nil, nil)
	if e.commits() != commits {
		t.Fatal("detaching a detached gateway committed")
	}
	e.want(204, "DELETE", "/v1/internet-gateways/igw1", e.acme, nil, nil)
	if e.gateway("igw1") != nil {
		t.Fatal("igw1 not deleted")
	}
	e.checkValid()
}

func TestRoutesToInternetGateway(t *testing.T) {
	e := gatewayEnv(t)
	e.want(201, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw1"}`, nil)
	e.want(201, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw2", "vpc": "acme-two"}`, nil)
	e.want(201, "POST", "/v1/internet-gateways", e.globex, `{"name": "gigw", "vpc": "globex-vpc"}`, nil)
	const routes = "/v1/route-tables/acme-vpc-main/routes"
	for _, tc := range []struct{ body, field, msg string }{
		{`{"destination": "0.0.0.0/0", "gateway": "igw1"}`, "gateway", `internet gateway "igw1" is not attached: attach it to vpc "acme-vpc" first`},
		{`{"destination": "0.0.0.0/0", "gateway": "igw2"}`, "gateway", `internet gateway "igw2" is attached to vpc "acme-two", not the table's vpc "acme-vpc"`},
		{`{"destination": "0.0.0.0/0", "gateway": "gigw"}`, "gateway", `internet gateway "gigw" does not exist`},
		{`{"destination": "0.0.0.0/0", "gateway": "nosuch"}`, "gateway", `internet gateway "nosuch" does not exist`},
		{`{"destination": "0.0.0.0/0", "gateway": "igw1", "nic": "web1"}`, "nic", "give one target: nic, peering, gateway or blackhole"},
	} {
		e.wantErr(400, api.CodeInvalidArgument, tc.field, tc.msg, "POST", routes, e.acme, tc.body)
	}
	e.wantErr(400, api.CodeInvalidArgument, "routes[0].gateway", "is not attached", "PUT", "/v1/route-tables/acme-vpc-main", e.acme,
		`{"routes": [{"destination": "0.0.0.0/0", "gateway": "igw1"}]}`)

	e.want(200, "POST", "/v1/internet-gateways/igw1/attach", e.acme, `{"vpc": "acme-vpc"}`, nil)
	var rt api.RouteTableStatus
	e.want(201, "POST", routes, e.acme, `{"destination": "0.0.0.0/0", "gateway": "igw1"}`, &rt)
	if s := rt.RouteStates[1]; s.Gateway != "igw1" || s.State != model.RouteActive || rt.Routes[0].Gateway != "igw1" {
		t.Fatalf("route to the gateway: %+v", rt.RouteStates)
	}
	e.want(200, "PUT", routes, e.acme, `{"destination": "0.0.0.0/0", "blackhole": true}`, nil)
	e.want(200, "PUT", routes, e.acme, `{"destination": "0.0.0.0/0", "gateway": "igw1"}`, nil)

	// Detached, then deleted: the route stays, a blackhole saying why.
	e.want(200, "POST", "/v1/internet-gateways/igw1/detach", e.acme, nil, nil)
	e.want(200, "GET", "/v1/route-tables/acme-vpc-main", e.acme, nil, &rt)
	if s := rt.RouteStates[1]; s.State != model.RouteBlackhole || !strings.Contains(s.Why, `internet gateway "igw1" is not attached to vpc "acme-vpc"`) {
		t.Fatalf("route to a detached gateway: %+v", s)
	}
	e.want(204, "DELETE", "/v1/internet-gateways/igw1", e.acme, nil, nil)
	e.want(200, "GET", "/v1/route-tables/acme-vpc-main", e.acme, nil, &rt)
	if s := rt.RouteStates[1]; s.State != model.RouteBlackhole || !strings.Contains(s.Why, "does not exist") {
		t.Fatalf("route to a deleted gateway: %+v", s)
	}
	// Unrelated changes to the table go on.
	e.want(201, "POST", routes, e.acme, `{"destination": "192.168.0.0/16", "blackhole": true}`, nil)
	e.checkValid()
}

func TestPublicIPs(t *testing.T) {
	e := gatewayEnv(t)
	// Allocation: the lowest free usable address, named after it unless
	// named.
	var x api.PublicIPStatus
	x = api.PublicIPStatus{}
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"pool": "pub"}`, &x)
	if x.Name != "eip-203-0-113-1" || x.Address != "203.0.113.1" || x.Account != "acme" || x.NIC != "" || x.Reachable ||
		x.Why != "not associated" || x.GatewayHost != "h1" || e.lastHeader.Get("Location") != "/v1/public-ips/eip-203-0-113-1" {
		t.Fatalf("allocated %+v, Location %q", x, e.lastHeader.Get("Location"))
	}
	x = api.PublicIPStatus{}
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "web-ip", "pool": "pub"}`, &x)
	if x.Address != "203.0.113.2" {
		t.Fatalf("allocated %+v", x)
	}
	// Another account gets the next free one (addresses are global).
	x = api.PublicIPStatus{}
	e.want(201, "POST", "/v1/public-ips", e.globex, `{"name": "g-ip", "pool": "pub"}`, &x)
	if x.Address != "203.0.113.3" || x.Account != "globex" {
		t.Fatalf("globex allocated %+v", x)
	}
	// An admin may name the address (and the account).
	x = api.PublicIPStatus{}
	e.want(201, "POST", "/v1/public-ips", e.admin, `{"name": "admin-ip", "account": "globex", "pool": "pub", "address": "203.0.113.6"}`, &x)
	for _, tc := range []struct {
		status           int
		field, msg, body string
		token            string
	}{
		{400, "address", "only an admin may choose it", `{"pool": "pub", "address": "203.0.113.5"}`, e.acme},
		{400, "address", `203.0.113.6 is already public IP "admin-ip"`, `{"name": "x", "pool": "pub", "address": "203.0.113.6"}`, e.admin},
		{400, "address", "is not a usable address of pool", `{"name": "x", "pool": "pub", "address": "203.0.113.7"}`, e.admin},
		{400, "account", `account "nosuch" does not exist`, `{"name": "x", "account": "nosuch", "pool": "pub"}`, e.admin},
		{400, "account", `must be "acme"`, `{"name": "x", "account": "globex", "pool": "pub"}`, e.acme},
		{400, "pool", "is required", `{"name": "x"}`, e.acme},
		{400, "pool", `pool "nosuch" does not exist`, `{"name": "x", "pool": "nosuch"}`, e.acme},
		{400, "pool", `pool "nosuch" does not exist`, `{"pool": "nosuch"}`, e.acme},
		{400, "private_ip", "needs a nic", `{"name": "x", "pool": "pub", "private_ip": "10.0.1.10"}`, e.acme},
		{409, "name", `public_ip "web-ip" already exists`, `{"name": "web-ip", "pool": "pub"}`, e.acme},
	} {
		code := map[int]string{400: api.CodeInvalidArgument, 409: api.CodeConflict}[tc.status]
		e.wantErr(tc.status, code, tc.field, tc.msg, "POST", "/v1/public-ips", tc.token, tc.body)
	}
	// Exhausted: .4 and .5 are left.
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "p4", "pool": "pub"}`, nil)
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "p5", "pool": "pub"}`, nil)
	e.wantErr(400, api.CodeInvalidArgument, "pool", `pool "pub" (203.0.113.0/29) has no free address`, "POST", "/v1/public-ips", e.acme, `{"name": "p6", "pool": "pub"}`)
	e.wantErr(400, api.CodeInvalidArgument, "pool", "has no free address", "POST", "/v1/public-ips", e.globex, `{"pool": "pub"}`)
	// Released addresses are allocated again; the others never move.
	e.want(204, "DELETE", "/v1/public-ips/p4", e.acme, nil, nil)
	x = api.PublicIPStatus{}
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "a-new", "pool": "pub"}`, &x)
	if x.Address != "203.0.113.4" {
		t.Fatalf("after a release: %+v", x)
	}
	for name, addr := range map[string]string{"eip-203-0-113-1": "203.0.113.1", "web-ip": "203.0.113.2", "g-ip": "203.0.113.3", "p5": "203.0.113.5", "admin-ip": "203.0.113.6"} {
		if got := e.publicIP(name); got == nil || got.Address != addr {
			t.Errorf("%s: %+v, want %s", name, got, addr)
		}
	}

	// Each account sees its own.
	var l list[api.PublicIPStatus]
	e.want(200, "GET", "/v1/public-ips", e.globex, nil, &l)
	if len(l.Items) != 2 || l.Items[0].Name != "admin-ip" || l.Items[1].Name != "g-ip" {
		t.Fatalf("globex lists %+v", l.Items)
	}
	e.wantErr(404, api.CodeNotFound, "", `public_ip "web-ip" not found`, "GET", "/v1/public-ips/web-ip", e.globex, nil)

	// PUT: pool, address and account are immutable; a GET's body goes
	// back unchanged.
	commits := e.commits()
	data := e.want(200, "GET", "/v1/public-ips/web-ip", e.acme, nil, nil)
	e.want(200, "PUT", "/v1/public-ips/web-ip", e.acme, data, nil)
	if e.commits() != commits {
		t.Fatal("a GET's body sent back committed")
	}
	e.wantErr(400, api.CodeInvalidArgument, "address", "cannot be changed", "PUT", "/v1/public-ips/web-ip", e.acme, `{"address": "203.0.113.5"}`)
	e.wantErr(400, api.CodeInvalidArgument, "pool", "cannot be changed", "PUT", "/v1/public-ips/web-ip", e.acme, `{"pool": "other"}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", "cannot be changed", "PUT", "/v1/public-ips/web-ip", e.acme, `{"account": "globex"}`)
	e.checkValid()
}

func TestPublicIPAssociation(t *testing.T) {
	e := gatewayEnv(t)
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "web-ip", "pool": "pub"}`, nil)
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "other-ip", "pool": "pub"}`, nil)
	e.want(201, "POST", "/v1/public-ips", e.globex, `{"name": "g-ip", "pool": "pub"}`, nil)
	// A shared VPC of acme with a NIC of globex, which acme sees but does
	// not own.
	e.want(201, "POST", "/v1/vpcs", e.admin, `{"name": "shared", "account": "acme", "cidr": "10.5.0.0/16", "shared": true}`, nil)
	e.want(201, "POST", "/v1/subnets", e.acme, `{"name": "shared-a", "vpc": "shared", "cidr": "10.5.1.0/24"}`, nil)
	e.want(201, "POST", "/v1/nics", e.globex, `{"name": "gshared", "subnet": "shared-a"}`, nil)

	const assoc = "/v1/public-ips/web-ip/associate"
	var x api.PublicIPStatus
	x = api.PublicIPStatus{}
	e.want(200, "POST", assoc, e.acme, `{"nic": "web1"}`, &x)
	if x.NIC != "web1" || x.PrivateIP != "10.0.1.10" || x.Reachable || x.Why != `vpc "acme-vpc" has no internet gateway` {
		t.Fatalf("associated %+v", x)
	}
	if p := e.publicIP("web-ip"); p.NIC != "web1" || p.PrivateIP != "10.0.1.10" {
		t.Fatalf("stored %+v", p)
	}
	commits := e.commits()
	e.want(200, "POST", assoc, e.acme, `{"nic": "web1", "private_ip": "10.0.1.10"}`, nil)
	if e.commits() != commits {
		t.Fatal("associating again committed")
	}

	// A public subnet: the VPC's gateway attached, a default route to it.
	e.want(201, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw1", "vpc": "acme-vpc"}`, nil)
	x = api.PublicIPStatus{}
	e.want(200, "GET", "/v1/public-ips/web-ip", e.acme, nil, &x)
	if x.Reachable || !strings.Contains(x.Why, `route table "acme-vpc-main" of subnet "acme-web" has no route to the internet gateway`) {
		t.Fatalf("without a route: %+v", x)
	}
	e.want(201, "POST", "/v1/route-tables/acme-vpc-main/routes", e.acme, `{"destination": "0.0.0.0/0", "gateway": "igw1"}`, nil)
	x = api.PublicIPStatus{}
	e.want(200, "GET", "/v1/public-ips/web-ip", e.acme, nil, &x)
	if !x.Reachable || x.Why != "" || x.GatewayHost != "h1" {
		t.Fatalf("in a public subnet: %+v", x)
	}

	e.want(201, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "10.0.1.20"}`, nil)
	for _, tc := range []struct {
		status           int
		code, field, msg string
		ip, token, body  string
	}{
		{409, api.CodeConflict, "private_ip", `10.0.1.10 of nic "web1" already has public IP "web-ip"`, "other-ip", e.acme, `{"nic": "web1"}`},
		{400, api.CodeInvalidArgument, "private_ip", `10.0.1.99 is not an address of nic "web1" (it has 10.0.1.10, 10.0.1.20)`, "other-ip", e.acme, `{"nic": "web1", "private_ip": "10.0.1.99"}`},
		{400, api.CodeInvalidArgument, "nic", "is required", "other-ip", e.acme, `{}`},
		{400, api.CodeInvalidArgument, "nic", `nic "nosuch" does not exist`, "other-ip", e.acme, `{"nic": "nosuch"}`},
		{400, api.CodeInvalidArgument, "nic", `nic "gweb1" does not exist`, "other-ip", e.acme, `{"nic": "gweb1"}`},
		{403, api.CodePermissionDenied, "nic", `nic "gshared" belongs to another account`, "other-ip", e.acme, `{"nic": "gshared"}`},
		{404, api.CodeNotFound, "", `public_ip "g-ip" not found`, "g-ip", e.acme, `{"nic": "web1"}`},
		{404, api.CodeNotFound, "", `public_ip "web-ip" not found`, "web-ip", e.globex, `{"nic": "gweb1"}`},
		{400, api.CodeInvalidArgument, "nic", `nic "web1" does not exist`, "g-ip", e.globex, `{"nic": "web1"}`},
		{409, api.CodeConflict, "nic", `public IP "web-ip" is already associated with nic "web1" (10.0.1.10): disassociate it first, or allow reassociation`, "web-ip", e.acme, `{"nic": "web2"}`},
		{400, api.CodeInvalidArgument, "allow", `unknown field "allow"`, "web-ip", e.acme, `{"nic": "web2", "allow": true}`},
	} {
		e.wantErr(tc.status, tc.code, tc.field, tc.msg, "POST", "/v1/public-ips/"+tc.ip+"/associate", tc.token, tc.body)
	}
	x = api.PublicIPStatus{}
	e.want(200, "POST", "/v1/public-ips/other-ip/associate", e.acme, `{"nic": "web1", "private_ip": "10.0.1.20"}`, &x)
	if x.PrivateIP != "10.0.1.20" || !x.Reachable {
		t.Fatalf("on the secondary IP: %+v", x)
	}
	// Globex maps its own NIC in acme's shared VPC.
	x = api.PublicIPStatus{}
	e.want(200, "POST", "/v1/public-ips/g-ip/associate", e.globex, `{"nic": "gshared"}`, &x)
	if x.Reachable || !strings.Contains(x.Why, `vpc "shared" has no internet gateway`) {
		t.Fatalf("g-ip %+v", x)
	}

	// Reassociation, when allowed, moves it.
	x = api.PublicIPStatus{}
	e.want(200, "POST", assoc, e.acme, `{"nic": "web2", "allow_reassociation": true}`, &x)
	if x.NIC != "web2" || x.PrivateIP != e.nic("web2").IP {
		t.Fatalf("reassociated %+v", x)
	}
	// A PUT may (re)associate too, with the same checks.
	e.wantErr(409, api.CodeConflict, "private_ip", `already has public IP "web-ip"`, "PUT", "/v1/public-ips/other-ip", e.acme, `{"nic": "web2"}`)
	e.wantErr(400, api.CodeInvalidArgument, "nic", `nic "gweb1" does not exist`, "PUT", "/v1/public-ips/other-ip", e.acme, `{"nic": "gweb1"}`)

	// Release is refused while associated.
	e.wantErr(409, api.CodeConflict, "", `public IP "web-ip" is associated with nic "web2": disassociate it first`, "DELETE", "/v1/public-ips/web-ip", e.acme, nil)
	x = api.PublicIPStatus{}
	e.want(200, "POST", "/v1/public-ips/web-ip/disassociate", e.acme, nil, &x)
	if x.NIC != "" || x.PrivateIP != "" || x.Reachable || x.Why != "not associated" {
		t.Fatalf("disassociated %+v", x)
	}
	commits = e.commits()
	e.want(200, "POST", "/v1/public-ips/web-ip/disassociate", e.acme, nil, nil)
	if e.commits() != commits {
		t.Fatal("disassociating again committed")
	}
	e.want(204, "DELETE", "/v1/public-ips/web-ip", e.acme, nil, nil)

	// Cascade: removing the address, or deleting the NIC, disassociates;
	// the address stays allocated.
	e.want(200, "DELETE", "/v1/nics/web1/secondary-ips/10.0.1.20", e.acme, nil, nil)
	if p := e.publicIP("other-ip"); p.NIC != "" || p.PrivateIP != "" || p.Address != "203.0.113.2" {
		t.Fatalf("after removing its address: %+v", p)
	}
	e.want(200, "POST", "/v1/public-ips/other-ip/associate", e.acme, `{"nic": "web2"}`, nil)
	e.want(204, "DELETE", "/v1/nics/web2", e.acme, nil, nil)
	if p := e.publicIP("other-ip"); p.NIC != "" || p.PrivateIP != "" || p.Address != "203.0.113.2" {
		t.Fatalf("after deleting its NIC: %+v", p)
	}
	// An account with public IPs cannot go.
	e.wantErr(409, api.CodeConflict, "", `public_ip "g-ip"`, "DELETE", "/v1/accounts/globex", e.admin, nil)

	// Export and apply carry public IPs; re-applying changes nothing.
	code, data := e.do("GET", "/v1/export", e.globex, nil)
	if code != 200 || !strings.Contains(string(data), "public_ips:") || strings.Contains(string(data), "other-ip") || strings.Contains(string(data), "public_ip_pools") {
		t.Fatalf("export: %d %s", code, data)
	}
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.globex, string(data), &res)
	if res.Revision != 0 {
		t.Fatalf("re-applying the export changed: %+v", res)
	}
	// A document may create a NIC and map a public IP to it at once.
	e.want(200, "POST", "/v1/apply", e.acme, "nics: [{name: web9, subnet: acme-web}]\npublic_ips: [{name: ip9, pool: pub, nic: web9}]\n", &res)
	if p := e.publicIP("ip9"); p == nil || p.NIC != "web9" || p.Address == "" || !e.built().PublicIPs["ip9"].Reachable {
		t.Fatalf("applied %+v", p)
	}
	e.checkValid()
}

func TestHostUplink(t *testing.T) {
	e := newEnv(t)
	var h model.Host
	e.want(201, "POST", "/v1/hosts", e.admin, `{"name": "gw1", "underlay_ip": "172.31.0.21", "uplink": {"interface": "eth1", "ip": "198.51.100.2/24", "next_hop": "198.51.100.1"}}`, &h)
	if h.Uplink == nil || h.Uplink.Interface != "eth1" || h.Uplink.NextHop != "198.51.100.1" {
		t.Fatalf("created %+v", h)
	}
	if n := e.built(); len(n.GatewayHosts) != 1 || n.GatewayHosts[0].Name != "gw1" {
		t.Fatalf("gateway hosts %+v", n.GatewayHosts)
	}
	for _, tc := range []struct{ body, field, msg string }{
		{`{"interface": "eth1", "ip": "198.51.100.2/24", "next_hop": "192.0.2.1"}`, "uplink.next_hop", "is not another address of the uplink's network"},
		{`{"interface": "eth1", "ip": "198.51.100.2", "next_hop": "198.51.100.1"}`, "uplink.ip", "is not an IPv4 address with a prefix length"},
		{`{"interface": "", "ip": "198.51.100.2/24", "next_hop": "198.51.100.1"}`, "uplink.interface", "is not an interface name"},
		{`{"interface": "eth1", "ip": "198.51.100.2/24", "next_hop": "198.51.100.1", "mac": "01:00:00:00:00:01"}`, "uplink.mac", "is not a unicast Ethernet MAC"},
		{`{"interface": "eth1", "ip": "198.51.100.2/24", "next_hop": "198.51.100.1", "nexthop": "x"}`, "nexthop", `unknown field "nexthop"`},
	} {
		e.wantErr(400, api.CodeInvalidArgument, tc.field, tc.msg, "PUT", "/v1/hosts/gw1", e.admin, `{"underlay_ip": "172.31.0.21", "uplink": `+tc.body+`}`)
	}
	e.wantErr(403, api.CodePermissionDenied, "", "needs an admin token", "PUT", "/v1/hosts/gw1", e.acme, `{"underlay_ip": "172.31.0.21"}`)
	// A PUT without it makes the host an ordinary one.
	h = model.Host{}
	e.want(200, "PUT", "/v1/hosts/gw1", e.admin, `{"underlay_ip": "172.31.0.21"}`, &h)
	if h.Uplink != nil || len(e.built().GatewayHosts) != 0 {
		t.Fatalf("updated %+v", h)
	}
}

func TestClientGateways(t *testing.T) {
	e := gatewayEnv(t)
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	acme, err := client.New(ts.URL, e.acme, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(ts.URL, e.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := acme.Create(bg, "igw", &model.InternetGateway{Name: "igw1"}); err != nil {
		t.Fatal(err)
	}
	g, err := acme.AttachInternetGateway(bg, "igw1", "acme-vpc")
	if err != nil || g.VPC != "acme-vpc" || g.State != "attached" {
		t.Fatalf("AttachInternetGateway: %v %+v", err, g)
	}
	if _, err := acme.AttachInternetGateway(bg, "igw1", "acme-two"); client.StatusOf(err) != 409 {
		t.Fatalf("attaching an attached gateway: %v", err)
	}
	rt, err := acme.CreateRoute(bg, "acme-vpc-main", model.Route{Destination: "0.0.0.0/0", Gateway: "igw1"})
	if err != nil || rt.RouteStates[1].Gateway != "igw1" || rt.RouteStates[1].State != model.RouteActive {
		t.Fatalf("CreateRoute: %v %+v", err, rt)
	}
	if err := acme.Create(bg, "public-ip-pool", &model.PublicIPPool{Name: "x", CIDR: "192.0.2.0/24"}); client.StatusOf(err) != 403 {
		t.Fatalf("an account creates a pool: %v", err)
	}
	var pools []client.PublicIPPool
	if err := acme.List(bg, "pools", &pools); err != nil || len(pools) != 1 || pools[0].Free != 6 {
		t.Fatalf("List pools: %v %+v", err, pools)
	}
	x, err := acme.AllocatePublicIP(bg, model.PublicIP{Pool: "pub"})
	if err != nil || x.Name != "eip-203-0-113-1" || x.Address != "203.0.113.1" || x.GatewayHost != "h1" {
		t.Fatalf("AllocatePublicIP: %v %+v", err, x)
	}
	if _, err := acme.AllocatePublicIP(bg, model.PublicIP{Pool: "pub", Address: "203.0.113.5"}); client.StatusOf(err) != 400 {
		t.Fatalf("an account names the address: %v", err)
	}
	if y, err := admin.AllocatePublicIP(bg, model.PublicIP{Pool: "pub", Address: "203.0.113.5", Account: "acme"}); err != nil || y.Name != "eip-203-0-113-5" {
		t.Fatalf("an admin names the address: %v %+v", err, y)
	}
	x, err = acme.AssociatePublicIP(bg, x.Name, client.PublicIPAssociation{NIC: "web1"})
	if err != nil || x.NIC != "web1" || x.PrivateIP != "10.0.1.10" || !x.Reachable {
		t.Fatalf("AssociatePublicIP: %v %+v", err, x)
	}
	if _, err := acme.AssociatePublicIP(bg, x.Name, client.PublicIPAssociation{NIC: "web2"}); client.StatusOf(err) != 409 {
		t.Fatalf("reassociating without allowing it: %v", err)
	}
	if x, err = acme.AssociatePublicIP(bg, x.Name, client.PublicIPAssociation{NIC: "web2", AllowReassociation: true}); err != nil || x.NIC != "web2" {
		t.Fatalf("reassociating: %v %+v", err, x)
	}
	if err := acme.ReleasePublicIP(bg, x.Name); client.StatusOf(err) != 409 {
		t.Fatalf("releasing an associated public IP: %v", err)
	}
	if x, err = acme.DisassociatePublicIP(bg, x.Name); err != nil || x.NIC != "" || x.Reachable {
		t.Fatalf("DisassociatePublicIP: %v %+v", err, x)
	}
	if err := acme.ReleasePublicIP(bg, x.Name); err != nil {
		t.Fatalf("ReleasePublicIP: %v", err)
	}
	var all []client.PublicIP
	if err := acme.List(bg, "eips", &all); err != nil || len(all) != 1 || all[0].Name != "eip-203-0-113-5" {
		t.Fatalf("List public IPs: %v %+v", err, all)
	}
	if g, err = acme.DetachInternetGateway(bg, "igw1"); err != nil || g.State != "detached" {
		t.Fatalf("DetachInternetGateway: %v %+v", err, g)
	}
	var one client.InternetGateway
	if err := acme.Get(bg, "internet-gateway", "igw1", &one); err != nil || one.State != "detached" {
		t.Fatalf("Get: %v %+v", err, one)
	}
	if err := acme.Delete(bg, "internet_gateway", "igw1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if c := client.Collection("igw"); c != "internet-gateways" {
		t.Fatalf("Collection(igw) = %q", c)
	}
}
