package api_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

func (e *env) table(name string) *model.RouteTable {
	e.t.Helper()
	for _, t := range e.b.snapshot().RouteTables {
		if t.Name == name {
			return &t
		}
	}
	return nil
}

func (e *env) subnet(name string) model.Subnet {
	e.t.Helper()
	for _, s := range e.b.snapshot().Subnets {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("subnet %q not in the backend", name)
	return model.Subnet{}
}

// built returns the backend's policy, built.
func (e *env) built() *model.Net {
	e.t.Helper()
	n, err := model.Build(e.b.snapshot())
	if err != nil {
		e.t.Fatalf("backend policy is invalid: %v", err)
	}
	return n
}

// states renders a table's route states as "dest target state[why]; ...".
func states(rt api.RouteTableStatus) string {
	var out []string
	for _, s := range rt.RouteStates {
		target := s.NIC
		switch {
		case s.Local:
			target = "local"
		case s.Blackhole:
			target = "blackhole"
		}
		st := fmt.Sprintf("%s %s %s", s.Destination, target, s.State)
		if s.Why != "" {
			st += " (" + s.Why + ")"
		}
		out = append(out, st)
	}
	return strings.Join(out, "; ")
}

// routeEnv adds to the seed an appliance NIC fw1 in acme-web and a second
// acme VPC "acme-two" with subnet "two-a" and NIC "two1".
func routeEnv(t testing.TB) *env {
	e := newEnv(t)
	e.want(201, "POST", "/v1/nics", e.acme, `{"name": "fw1", "subnet": "acme-web"}`, nil)
	e.want(201, "POST", "/v1/vpcs", e.acme, `{"name": "acme-two", "cidr": "10.9.0.0/16"}`, nil)
	e.want(201, "POST", "/v1/subnets", e.acme, `{"name": "two-a", "vpc": "acme-two", "cidr": "10.9.1.0/24"}`, nil)
	e.want(201, "POST", "/v1/nics", e.acme, `{"name": "two1", "subnet": "two-a"}`, nil)
	return e
}

func TestRouteTableCRUD(t *testing.T) {
	e := routeEnv(t)
	// Every VPC has its main table, stored with it, with the local route
	// and the subnets that name no table.
	var l list[api.RouteTableStatus]
	e.want(200, "GET", "/v1/route-tables", e.acme, nil, &l)
	if len(l.Items) != 2 || l.Items[0].Name != "acme-two-main" || l.Items[1].Name != "acme-vpc-main" || !l.Items[1].Main {
		t.Fatalf("acme lists %+v, want its two main tables", l.Items)
	}
	if got := states(l.Items[1]); got != "10.0.0.0/16 local active" || !slices.Equal(l.Items[1].Subnets, []string{"acme-web"}) {
		t.Fatalf("main table: states %q, subnets %v", got, l.Items[1].Subnets)
	}
	if e.table("acme-vpc-main") == nil || e.table("globex-vpc-main") == nil {
		t.Fatal("main tables are not stored")
	}

	var rt api.RouteTableStatus
	e.want(201, "POST", "/v1/route-tables", e.acme, `{"name": "via-fw", "vpc": "acme-vpc", "routes": [
		{"destination": "0.0.0.0/0", "nic": "fw1"}, {"destination": "192.168.0.0/16", "blackhole": true}]}`, &rt)
	if got := states(rt); got != "10.0.0.0/16 local active; 0.0.0.0/0 fw1 active; 192.168.0.0/16 blackhole blackhole" || len(rt.Subnets) != 0 {
		t.Fatalf("created: states %q, subnets %v", got, rt.Subnets)
	}
	if e.lastHeader.Get("Location") != "/v1/route-tables/via-fw" {
		t.Errorf("Location %q", e.lastHeader.Get("Location"))
	}
	if st := e.table("via-fw"); st == nil || st.Main || len(st.Routes) != 2 || st.Routes[0].NIC != "fw1" {
		t.Fatalf("stored %+v", st)
	}
	e.wantErr(409, api.CodeConflict, "name", `route_table "via-fw" already exists`, "POST", "/v1/route-tables", e.acme, `{"name": "via-fw", "vpc": "acme-vpc"}`)
	e.wantErr(400, api.CodeInvalidArgument, "main", "not by hand", "POST", "/v1/route-tables", e.admin, `{"name": "acme-vpc-main2", "vpc": "acme-vpc", "main": true}`)

	// A PUT without routes keeps them; the computed fields of a GET may
	// be sent back as they are and change nothing.
	before := e.commits()
	data := e.want(200, "GET", "/v1/route-tables/via-fw", e.acme, nil, nil)
	e.want(200, "PUT", "/v1/route-tables/via-fw", e.acme, data, nil)
	e.want(200, "PUT", "/v1/route-tables/via-fw", e.acme, `{"vpc": "acme-vpc"}`, &rt)
	if e.commits() != before || len(rt.Routes) != 2 {
		t.Fatalf("no-op PUTs committed or changed %+v", rt)
	}
	rt = api.RouteTableStatus{}
	e.want(200, "PUT", "/v1/route-tables/via-fw", e.acme, `{"routes": [{"destination": "0.0.0.0/0", "nic": "fw1"}]}`, &rt)
	if len(rt.Routes) != 1 || len(rt.RouteStates) != 2 {
		t.Fatalf("updated %+v", rt)
	}
	e.wantErr(400, api.CodeInvalidArgument, "vpc", "vpc cannot be changed", "PUT", "/v1/route-tables/via-fw", e.acme, `{"vpc": "acme-two"}`)
	e.wantErr(400, api.CodeInvalidArgument, "main", "cannot be made a main table", "PUT", "/v1/route-tables/via-fw", e.admin, `{"main": true}`)
	// Computed fields are ignored whatever they hold; other unknown
	// fields are still errors.
	e.wantErr(400, api.CodeInvalidArgument, "x", `unknown field "x"`, "PUT", "/v1/route-tables/via-fw", e.acme, `{"route_states": 1, "x": 2}`)

	// The main table: routes editable, not deletable, gone with its VPC.
	rt = api.RouteTableStatus{}
	e.want(200, "PUT", "/v1/route-tables/acme-vpc-main", e.acme, `{"routes": [{"destination": "172.16.0.0/12", "blackhole": true}]}`, &rt)
	if !rt.Main || len(rt.Routes) != 1 {
		t.Fatalf("edited main table %+v", rt)
	}
	e.wantErr(400, api.CodeInvalidArgument, "", "is the main table of vpc", "DELETE", "/v1/route-tables/acme-vpc-main", e.acme, nil)

	// In use: a subnet associated with it; its VPC, by it.
	e.want(200, "PUT", "/v1/subnets/acme-web/route-table", e.acme, `{"route_table": "via-fw"}`, nil)
	e.wantErr(409, api.CodeConflict, "", `route_table "via-fw" is used by subnet "acme-web"`, "DELETE", "/v1/route-tables/via-fw", e.acme, nil)
	e.wantErr(409, api.CodeConflict, "", `vpc "acme-vpc" is used by route_table "via-fw", subnet "acme-web"`, "DELETE", "/v1/vpcs/acme-vpc", e.acme, nil)
	e.want(200, "PUT", "/v1/subnets/acme-web/route-table", e.acme, `{"route_table": ""}`, nil)
	e.want(204, "DELETE", "/v1/route-tables/via-fw", e.acme, nil, nil)
	e.want(404, "GET", "/v1/route-tables/via-fw", e.acme, nil, nil)

	// A VPC goes with its main table.
	for _, p := range []string{"/v1/nics/two1", "/v1/subnets/two-a", "/v1/vpcs/acme-two"} {
		e.want(204, "DELETE", p, e.acme, nil, nil)
	}
	if e.table("acme-two-main") != nil {
		t.Fatal("the main table outlived its VPC")
	}
	e.checkValid()
}

// TestRouteTableValidation: errors name the field, as a path into the
// request body, and nothing is written.
func TestRouteTableValidation(t *testing.T) {
	table := func(routes string) string { return `{"name": "x", "vpc": "acme-vpc", "routes": [` + routes + `]}` }
	ok := `{"destination": "10.8.0.0/16", "blackhole": true}`
	cases := []struct {
		name, method, path, body, field, msg string
	}{
		{"not a cidr", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.0.0/8", "blackhole": true}`), "routes[1].destination", "is not"},
		{"host bits", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.7.0.1/16", "blackhole": true}`), "routes[1].destination", "host bits"},
		{"vpc cidr", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.0.0.0/16", "blackhole": true}`), "routes[1].destination", "covered by the local route"},
		{"duplicate", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.8.0.0/16", "nic": "fw1"}`), "routes[1].destination", "already the destination of routes[0]"},
		{"two targets", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.6.0.0/16", "nic": "fw1", "blackhole": true}`), "routes[1].nic", "give one target"},
		{"no target", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.6.0.0/16"}`), "routes[1].nic", "a target is required"},
		{"missing nic", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.6.0.0/16", "nic": "nosuch"}`), "routes[1].nic", `nic "nosuch" does not exist`},
		{"other account's nic", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.6.0.0/16", "nic": "gweb1"}`), "routes[1].nic", `nic "gweb1" does not exist`},
		{"other vpc's nic", "POST", "/v1/route-tables", table(ok + `, {"destination": "10.6.0.0/16", "nic": "two1"}`), "routes[1].nic", `nic "two1" is in vpc "acme-two", the table in vpc "acme-vpc"`},
		{"main name", "POST", "/v1/route-tables", `{"name": "x-main", "vpc": "acme-vpc"}`, "name", "kept for main tables"},
		{"no vpc", "POST", "/v1/route-tables", `{"name": "x"}`, "vpc", "is required"},
		{"other account's vpc", "POST", "/v1/route-tables", `{"name": "x", "vpc": "globex-vpc"}`, "vpc", `vpc "globex-vpc" does not exist`},
		{"wrong type", "POST", "/v1/route-tables", `{"name": "x", "vpc": "acme-vpc", "routes": [{"destination": "10.8.0.0/16", "blackhole": "yes"}]}`, "routes.blackhole", "want true or false"},
		{"update", "PUT", "/v1/route-tables/acme-vpc-main", `{"routes": [` + ok + `, {"destination": "10.6.0.0/16", "nic": "two1"}]}`, "routes[1].nic", "is in vpc"},
		{"create-route cidr", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "300.0.0.0/8", "blackhole": true}`, "destination", "is not"},
		{"create-route vpc cidr", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.0.0.0/16", "nic": "fw1"}`, "destination", "covered by the local route"},
		{"create-route no destination", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"nic": "fw1"}`, "destination", "is required"},
		{"create-route missing nic", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16", "nic": "nosuch"}`, "nic", `nic "nosuch" does not exist`},
		{"create-route other account's nic", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16", "nic": "gweb1"}`, "nic", `nic "gweb1" does not exist`},
		{"create-route other vpc's nic", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16", "nic": "two1"}`, "nic", "is in vpc"},
		{"create-route two targets", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16", "nic": "fw1", "blackhole": true}`, "nic", "give one target"},
		{"create-route no target", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16"}`, "nic", "a target is required"},
		{"create-route unknown field", "POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16", "instance": "i-1"}`, "instance", `unknown field "instance"`},
		{"replace-route no target", "PUT", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.5.0.0/16"}`, "nic", "a target is required"},
		{"associate missing", "PUT", "/v1/subnets/acme-web/route-table", `{"route_table": "nosuch"}`, "route_table", `route table "nosuch" does not exist`},
		{"associate other account's", "PUT", "/v1/subnets/acme-web/route-table", `{"route_table": "globex-vpc-main"}`, "route_table", `route table "globex-vpc-main" does not exist`},
		{"associate other vpc's", "PUT", "/v1/subnets/acme-web/route-table", `{"route_table": "acme-two-main"}`, "route_table", `belongs to vpc "acme-two"`},
		{"subnet update", "PUT", "/v1/subnets/acme-web", `{"route_table": "nosuch"}`, "route_table", "does not exist"},
		{"source-dest-check missing", "PUT", "/v1/nics/fw1/source-dest-check", `{}`, "source_dest_check", "is required"},
		{"source-dest-check type", "PUT", "/v1/nics/fw1/source-dest-check", `{"source_dest_check": "off"}`, "source_dest_check", "want true or false"},
		{"apply path", "POST", "/v1/apply", "route_tables:\n  - {name: x, vpc: acme-vpc, routes: [{destination: 10.6.0.0/16, nic: two1}]}\n", "route_tables[0].routes[0].nic", "is in vpc"},
		{"apply duplicate", "POST", "/v1/apply", "route_tables: [{name: x, vpc: acme-vpc}, {name: x, vpc: acme-vpc}]\n", "route_tables[1].name", `route_table "x" is also route_tables[0]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routeEnv(t)
			e.want(200, "PUT", "/v1/route-tables/acme-vpc-main", e.acme, `{"routes": [{"destination": "10.5.0.0/16", "nic": "fw1"}]}`, nil)
			before := e.commits()
			snap := fmt.Sprint(e.b.snapshot())
			er := e.wantErr(400, api.CodeInvalidArgument, tc.field, tc.msg, tc.method, tc.path, e.acme, tc.body)
			if strings.Contains(er.Message, `vpc "globex-vpc", `) || strings.Contains(er.Message, `in vpc "globex-vpc"`) {
				t.Errorf("error tells about another account's objects: %q", er.Message)
			}
			if e.commits() != before || fmt.Sprint(e.b.snapshot()) != snap {
				t.Fatal("an invalid request changed the backend")
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	e := routeEnv(t)
	e.want(201, "POST", "/v1/route-tables", e.acme, `{"name": "via-fw", "vpc": "acme-vpc"}`, nil)
	var rt api.RouteTableStatus
	e.want(201, "POST", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "0.0.0.0/0", "nic": "fw1"}`, &rt)
	e.want(201, "POST", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "10.8.0.0/16", "nic": "web1"}`, &rt)
	rt = api.RouteTableStatus{}
	e.want(201, "POST", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "192.168.0.0/16", "blackhole": true}`, &rt)
	if got := states(rt); got != "10.0.0.0/16 local active; 0.0.0.0/0 fw1 active; 10.8.0.0/16 web1 active; 192.168.0.0/16 blackhole blackhole" {
		t.Fatalf("after create-route: %s", got)
	}
	// The same destination again is a conflict, whatever the target.
	e.wantErr(409, api.CodeConflict, "destination", `route_table "via-fw" already has a route to 0.0.0.0/0`, "POST", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "0.0.0.0/0", "blackhole": true}`)

	// Replace: the route to the same destination, with a new target.
	rt = api.RouteTableStatus{}
	e.want(200, "PUT", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "10.8.0.0/16", "blackhole": true}`, &rt)
	if r := rt.Routes[1]; r.NIC != "" || !r.Blackhole || len(rt.Routes) != 3 {
		t.Fatalf("after replace-route %+v", rt.Routes)
	}
	e.wantErr(404, api.CodeNotFound, "", `route_table "via-fw" has no route to 10.7.0.0/16`, "PUT", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "10.7.0.0/16", "blackhole": true}`)

	// Delete: the destination's slash escaped or not.
	rt = api.RouteTableStatus{}
	e.want(200, "DELETE", "/v1/route-tables/via-fw/routes/10.8.0.0%2F16", e.acme, nil, &rt)
	if len(rt.Routes) != 2 || rt.Routes[1].Destination != "192.168.0.0/16" {
		t.Fatalf("after delete-route %+v", rt.Routes)
	}
	rt = api.RouteTableStatus{}
	e.want(200, "DELETE", "/v1/route-tables/via-fw/routes/192.168.0.0/16", e.acme, nil, &rt)
	if len(rt.Routes) != 1 {
		t.Fatalf("after delete-route %+v", rt.Routes)
	}
	e.wantErr(404, api.CodeNotFound, "", "has no route to 192.168.0.0/16", "DELETE", "/v1/route-tables/via-fw/routes/192.168.0.0%2F16", e.acme, nil)
	e.wantErr(400, api.CodeInvalidArgument, "destination", "give the route's destination", "DELETE", "/v1/route-tables/via-fw/routes/", e.acme, nil)
	e.wantErr(404, api.CodeNotFound, "", `route_table "nosuch" not found`, "POST", "/v1/route-tables/nosuch/routes", e.acme, `{"destination": "10.6.0.0/16", "blackhole": true}`)

	// The stored route is in force.
	if r := e.built().RouteTables["via-fw"].Routes[0]; r.State != model.RouteActive || r.NIC == nil || r.NIC.Name != "fw1" {
		t.Fatalf("built route %+v", r)
	}

	// Deleting the target NIC is allowed; its route stays, a blackhole
	// saying why, and the table stays editable.
	e.want(204, "DELETE", "/v1/nics/fw1", e.acme, nil, nil)
	rt = api.RouteTableStatus{}
	e.want(200, "GET", "/v1/route-tables/via-fw", e.acme, nil, &rt)
	if got := states(rt); got != `10.0.0.0/16 local active; 0.0.0.0/0 fw1 blackhole (nic "fw1" does not exist)` {
		t.Fatalf("after deleting the target: %s", got)
	}
	e.want(201, "POST", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "10.6.0.0/16", "blackhole": true}`, nil)
	// A re-sent table with the stale route is accepted (it is not new);
	// naming the missing NIC in a new route is not.
	e.want(200, "PUT", "/v1/route-tables/via-fw", e.acme, `{"routes": [{"destination": "0.0.0.0/0", "nic": "fw1"}]}`, nil)
	e.wantErr(400, api.CodeInvalidArgument, "nic", `nic "fw1" does not exist`, "PUT", "/v1/route-tables/via-fw/routes", e.acme, `{"destination": "0.0.0.0/0", "nic": "fw1"}`)
	e.checkValid()
}

func TestRouteTableAccess(t *testing.T) {
	e := routeEnv(t)
	e.want(201, "POST", "/v1/route-tables", e.acme, `{"name": "via-fw", "vpc": "acme-vpc", "routes": [{"destination": "0.0.0.0/0", "nic": "fw1"}]}`, nil)
	before := e.commits()
	// globex sees neither acme's tables nor can it change them.
	var l list[api.RouteTableStatus]
	e.want(200, "GET", "/v1/route-tables", e.globex, nil, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "globex-vpc-main" {
		t.Fatalf("globex lists %+v", l.Items)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/route-tables/via-fw", ""},
		{"PUT", "/v1/route-tables/via-fw", `{"routes": []}`},
		{"DELETE", "/v1/route-tables/via-fw", ""},
		{"POST", "/v1/route-tables/via-fw/routes", `{"destination": "10.6.0.0/16", "blackhole": true}`},
		{"PUT", "/v1/route-tables/via-fw/routes", `{"destination": "0.0.0.0/0", "blackhole": true}`},
		{"DELETE", "/v1/route-tables/via-fw/routes/0.0.0.0%2F0", ""},
		{"POST", "/v1/route-tables/acme-vpc-main/routes", `{"destination": "10.6.0.0/16", "blackhole": true}`},
		{"PUT", "/v1/subnets/acme-web/route-table", `{"route_table": "via-fw"}`},
		{"PUT", "/v1/nics/fw1/source-dest-check", `{"source_dest_check": false}`},
	} {
		var body any
		if r.body != "" {
			body = r.body
		}
		e.want(404, r.method, r.path, e.globex, body, nil)
	}
	// Its own subnet cannot use acme's table, nor its own table route to
	// acme's NIC; neither error tells that they exist.
	e.wantErr(400, api.CodeInvalidArgument, "route_table", `route table "via-fw" does not exist`, "PUT", "/v1/subnets/globex-web/route-table", e.globex, `{"route_table": "via-fw"}`)
	e.wantErr(400, api.CodeInvalidArgument, "nic", `nic "fw1" does not exist`, "POST", "/v1/route-tables/globex-vpc-main/routes", e.globex, `{"destination": "10.6.0.0/16", "nic": "fw1"}`)
	if e.commits() != before {
		t.Fatal("globex's requests committed")
	}
	// Its own table works (an admin's too).
	e.want(201, "POST", "/v1/route-tables/globex-vpc-main/routes", e.globex, `{"destination": "10.6.0.0/16", "nic": "gweb1"}`, nil)
	e.want(201, "POST", "/v1/route-tables/via-fw/routes", e.admin, `{"destination": "10.6.0.0/16", "blackhole": true}`, nil)

	// In a shared VPC, another account sees the tables read-only.
	e.want(201, "POST", "/v1/vpcs", e.admin, `{"name": "pub", "account": "acme", "cidr": "10.1.0.0/16", "shared": true}`, nil)
	e.want(201, "POST", "/v1/subnets", e.acme, `{"name": "pub-a", "vpc": "pub", "cidr": "10.1.1.0/24"}`, nil)
	e.want(200, "GET", "/v1/route-tables/pub-main", e.globex, nil, nil)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "POST", "/v1/route-tables/pub-main/routes", e.globex, `{"destination": "10.6.0.0/16", "blackhole": true}`)
	e.wantErr(403, api.CodePermissionDenied, "vpc", "only it may add route tables", "POST", "/v1/route-tables", e.globex, `{"name": "g-pub", "vpc": "pub"}`)
	e.wantErr(403, api.CodePermissionDenied, "", "you may only read it", "PUT", "/v1/subnets/pub-a/route-table", e.globex, `{"route_table": ""}`)
	e.checkValid()
}

func TestSubnetAssociation(t *testing.T) {
	e := routeEnv(t)
	e.want(201, "POST", "/v1/route-tables", e.acme, `{"name": "via-fw", "vpc": "acme-vpc"}`, nil)
	var s model.Subnet
	e.want(200, "PUT", "/v1/subnets/acme-web/route-table", e.acme, `{"route_table": "via-fw"}`, &s)
	if s.RouteTable != "via-fw" || e.subnet("acme-web").RouteTable != "via-fw" {
		t.Fatalf("after associate %+v", s)
	}
	if got := e.built().Subnets["acme-web"].RouteTable.Name; got != "via-fw" {
		t.Fatalf("built subnet uses %s", got)
	}
	var rt api.RouteTableStatus
	e.want(200, "GET", "/v1/route-tables/via-fw", e.acme, nil, &rt)
	if !slices.Equal(rt.Subnets, []string{"acme-web"}) {
		t.Fatalf("table's subnets %v", rt.Subnets)
	}
	// The same association again changes nothing.
	before := e.commits()
	e.want(200, "PUT", "/v1/subnets/acme-web/route-table", e.acme, `{"route_table": "via-fw"}`, nil)
	// A subnet update without the field keeps it; with it, sets it.
	e.want(200, "PUT", "/v1/subnets/acme-web", e.acme, `{"vpc": "acme-vpc", "cidr": "10.0.1.0/24"}`, &s)
	if e.commits() != before || s.RouteTable != "via-fw" {
		t.Fatalf("no-op updates committed or changed %+v", s)
	}
	// Naming the main table is naming none; so is the empty name.
	s = model.Subnet{}
	e.want(200, "PUT", "/v1/subnets/acme-web", e.acme, `{"route_table": "acme-vpc-main"}`, &s)
	if s.RouteTable != "" || e.built().Subnets["acme-web"].RouteTable.Name != "acme-vpc-main" {
		t.Fatalf("after update to main %+v", s)
	}
	e.want(200, "PUT", "/v1/subnets/acme-web/route-table", e.acme, `{"route_table": "via-fw"}`, nil)
	s = model.Subnet{}
	e.want(200, "PUT", "/v1/subnets/acme-web/route-table", e.acme, `{"route_table": ""}`, &s)
	if s.RouteTable != "" {
		t.Fatalf("after associate with main %+v", s)
	}
	// A subnet may be created associated.
	s = model.Subnet{}
	e.want(201, "POST", "/v1/subnets", e.acme, `{"name": "acme-db", "vpc": "acme-vpc", "cidr": "10.0.2.0/24", "route_table": "via-fw"}`, &s)
	if s.RouteTable != "via-fw" {
		t.Fatalf("created %+v", s)
	}
	e.wantErr(404, api.CodeNotFound, "", `subnet "nosuch" not found`, "PUT", "/v1/subnets/nosuch/route-table", e.acme, `{"route_table": ""}`)
	e.checkValid()
}

func TestSourceDestCheck(t *testing.T) {
	e := routeEnv(t)
	var n model.NIC
	e.want(200, "PUT", "/v1/nics/fw1/source-dest-check", e.acme, `{"source_dest_check": false}`, &n)
	if n.SourceDestCheck == nil || *n.SourceDestCheck {
		t.Fatalf("after off %+v", n)
	}
	if e.built().NICs["fw1"].SourceDestCheck {
		t.Fatal("built NIC still checks")
	}
	// A NIC update without the field keeps it; with it, sets it. On is
	// stored as absent.
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/fw1", e.acme, `{"host": "h2"}`, &n)
	if n.SourceDestCheck == nil || *n.SourceDestCheck {
		t.Fatalf("after update without the field %+v", n)
	}
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/fw1", e.acme, `{"source_dest_check": true}`, &n)
	if n.SourceDestCheck != nil || !e.built().NICs["fw1"].SourceDestCheck {
		t.Fatalf("after update to on %+v", n)
	}
	before := e.commits()
	e.want(200, "PUT", "/v1/nics/fw1/source-dest-check", e.acme, `{"source_dest_check": true}`, nil)
	if e.commits() != before {
		t.Fatal("turning on a check that is on committed")
	}
	n = model.NIC{}
	e.want(201, "POST", "/v1/nics", e.acme, `{"name": "fw2", "subnet": "acme-web", "source_dest_check": false}`, &n)
	if n.SourceDestCheck == nil || *n.SourceDestCheck {
		t.Fatalf("created %+v", n)
	}
	e.checkValid()
}

func TestApplyRouteTables(t *testing.T) {
	e := newEnv(t)
	doc := `
vpcs: [{name: shop, cidr: 10.20.0.0/16}]
subnets:
  - {name: shop-web, vpc: shop, cidr: 10.20.1.0/24, route_table: shop-via-fw}
  - {name: shop-fw, vpc: shop, cidr: 10.20.2.0/24}
route_tables:
  - name: shop-via-fw
    vpc: shop
    routes:
      - {destination: 0.0.0.0/0, nic: shop-fw1}
      - {destination: 10.99.0.0/16, blackhole: true}
  - name: shop-main
    vpc: shop
    main: true
    routes: [{destination: 172.16.0.0/12, nic: shop-fw1}]
nics: [{name: shop-fw1, subnet: shop-fw, source_dest_check: false}]
`
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.acme, doc, &res)
	want := "create vpc shop; create subnet shop-web; create subnet shop-fw; create route_table shop-via-fw; update route_table shop-main; create nic shop-fw1"
	if got := ops(res.Changes); got != want {
		t.Fatalf("changes:\n%s\nwant\n%s", got, want)
	}
	n := e.built()
	if ti := n.RouteTables["shop-via-fw"]; ti == nil || len(ti.Routes) != 2 || ti.Routes[0].NIC == nil || ti.Routes[0].NIC.Name != "shop-fw1" {
		t.Fatalf("applied table %+v", ti)
	}
	if n.Subnets["shop-web"].RouteTable.Name != "shop-via-fw" || n.Subnets["shop-fw"].RouteTable.Name != "shop-main" || n.NICs["shop-fw1"].SourceDestCheck {
		t.Fatal("applied associations or source/destination check")
	}
	// Applying it again changes nothing; nor does its export.
	before := e.commits()
	e.want(200, "POST", "/v1/apply", e.acme, doc, &res)
	for _, c := range res.Changes {
		if c.Op != api.OpUnchanged {
			t.Errorf("re-apply: %+v", c)
		}
	}
	_, out := e.do("GET", "/v1/export", e.acme, nil)
	if !strings.Contains(string(out), "route_tables:") || strings.Contains(string(out), "globex-vpc-main") {
		t.Fatalf("acme's export:\n%s", out)
	}
	e.want(200, "POST", "/v1/apply", e.acme, out, &res)
	if e.commits() != before {
		t.Fatalf("re-apply or re-applied export changed %+v", res.Changes)
	}
	// A document may not make a main table by hand, even through apply.
	e.wantErr(400, api.CodeInvalidArgument, "route_tables[0].main", "cannot be made a main table", "POST", "/v1/apply", e.acme,
		"route_tables: [{name: shop-via-fw, vpc: shop, main: true}]\n")
	e.checkValid()
}

// TestClientRouteTables drives the route table verbs through the Go
// client, which escapes the destination's slash in DELETE paths.
func TestClientRouteTables(t *testing.T) {
	e := routeEnv(t)
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, e.acme, "")
	if err != nil {
		t.Fatal(err)
	}
	rt := client.RouteTable{RouteTable: model.RouteTable{Name: "via-fw", VPC: "acme-vpc"}}
	if err := c.Create(bg, "rtb", &rt); err != nil || len(rt.RouteStates) != 1 || !rt.RouteStates[0].Local {
		t.Fatalf("Create: %v %+v", err, rt)
	}
	got, err := c.CreateRoute(bg, "via-fw", model.Route{Destination: "0.0.0.0/0", NIC: "fw1"})
	if err != nil || len(got.Routes) != 1 || got.RouteStates[1].State != model.RouteActive {
		t.Fatalf("CreateRoute: %v %+v", err, got)
	}
	if _, err := c.CreateRoute(bg, "via-fw", model.Route{Destination: "0.0.0.0/0", Blackhole: true}); client.StatusOf(err) != 409 {
		t.Fatalf("CreateRoute again: %v", err)
	}
	if got, err = c.ReplaceRoute(bg, "via-fw", model.Route{Destination: "0.0.0.0/0", Blackhole: true}); err != nil || !got.Routes[0].Blackhole {
		t.Fatalf("ReplaceRoute: %v %+v", err, got)
	}
	if got, err = c.DeleteRoute(bg, "via-fw", "0.0.0.0/0"); err != nil || len(got.Routes) != 0 {
		t.Fatalf("DeleteRoute: %v %+v", err, got)
	}
	s, err := c.AssociateRouteTable(bg, "acme-web", "via-fw")
	if err != nil || s.RouteTable != "via-fw" {
		t.Fatalf("AssociateRouteTable: %v %+v", err, s)
	}
	var one client.RouteTable
	if err := c.Get(bg, "route-table", "via-fw", &one); err != nil || !slices.Equal(one.Subnets, []string{"acme-web"}) {
		t.Fatalf("Get: %v %+v", err, one)
	}
	// A table as read may be written back: the computed fields are ignored.
	if err := c.Update(bg, "route_table", "via-fw", &one); err != nil {
		t.Fatalf("Update with computed fields: %v", err)
	}
	if s, err = c.AssociateRouteTable(bg, "acme-web", ""); err != nil || s.RouteTable != "" {
		t.Fatalf("AssociateRouteTable main: %v %+v", err, s)
	}
	n, err := c.SetSourceDestCheck(bg, "fw1", false)
	if err != nil || n.SourceDestCheck == nil || *n.SourceDestCheck {
		t.Fatalf("SetSourceDestCheck off: %v %+v", err, n)
	}
	if n, err = c.SetSourceDestCheck(bg, "fw1", true); err != nil || n.SourceDestCheck != nil {
		t.Fatalf("SetSourceDestCheck on: %v %+v", err, n)
	}
	var all []client.RouteTable
	if err := c.List(bg, "route-tables", &all); err != nil || len(all) != 3 {
		t.Fatalf("List: %v %+v", err, all)
	}
	if err := c.Delete(bg, "rtb", "via-fw"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
