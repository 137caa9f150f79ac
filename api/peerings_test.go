package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// peeringEnv adds to the seed a globex VPC "globex-two" (10.8.0.0/16) with
// subnet "two-web", which acme-vpc (10.0.0.0/16) may peer with, and an
// acme VPC "acme-two" (10.9.0.0/16).
func peeringEnv(t testing.TB) *env {
	e := newEnv(t)
	e.want(201, "POST", "/v1/vpcs", e.globex, `{"name": "globex-two", "cidr": "10.8.0.0/16"}`, nil)
	e.want(201, "POST", "/v1/subnets", e.globex, `{"name": "two-web", "vpc": "globex-two", "cidr": "10.8.1.0/24"}`, nil)
	e.want(201, "POST", "/v1/vpcs", e.acme, `{"name": "acme-two", "cidr": "10.9.0.0/16"}`, nil)
	return e
}

func (e *env) peering(name string) *model.Peering {
	e.t.Helper()
	for _, p := range e.b.snapshot().Peerings {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

func TestPeeringCRUD(t *testing.T) {
	e := peeringEnv(t)
	var pc model.Peering
	e.want(201, "POST", "/v1/peerings", e.acme, `{"name": "pcx1", "vpc": "acme-vpc", "peer_vpc": "globex-two"}`, &pc)
	if pc != (model.Peering{Name: "pcx1", VPC: "acme-vpc", PeerVPC: "globex-two"}) || e.lastHeader.Get("Location") != "/v1/peerings/pcx1" {
		t.Fatalf("created %+v", pc)
	}
	e.checkValid()

	// Requests that fail.
	e.wantErr(400, api.CodeInvalidArgument, "accepted", "created unaccepted", "POST", "/v1/peerings", e.acme,
		`{"name": "x", "vpc": "acme-two", "peer_vpc": "globex-two", "accepted": true}`)
	// A missing peer VPC and one that overlaps look the same to an account.
	for _, peer := range []string{"nosuch", "globex-vpc"} {
		er := e.wantErr(400, api.CodeInvalidArgument, "peer_vpc", "does not exist or cannot be peered", "POST", "/v1/peerings", e.acme,
			`{"name": "x", "vpc": "acme-vpc", "peer_vpc": "`+peer+`"}`)
		if strings.Contains(er.Message, "10.0.0.0") {
			t.Errorf("the error shows the peer's CIDR: %s", er.Message)
		}
	}
	// An admin sees why.
	e.wantErr(400, api.CodeInvalidArgument, "peer_vpc", "overlaps", "POST", "/v1/peerings", e.admin,
		`{"name": "x", "vpc": "acme-vpc", "peer_vpc": "globex-vpc"}`)
	// Of the account's own VPCs, model.Build says why.
	e.want(201, "POST", "/v1/vpcs", e.acme, `{"name": "acme-olap", "cidr": "10.0.128.0/17"}`, nil)
	e.wantErr(400, api.CodeInvalidArgument, "peer_vpc", "overlaps", "POST", "/v1/peerings", e.acme,
		`{"name": "x", "vpc": "acme-vpc", "peer_vpc": "acme-olap"}`)
	e.wantErr(400, api.CodeInvalidArgument, "peer_vpc", "cannot peer with itself", "POST", "/v1/peerings", e.acme,
		`{"name": "x", "vpc": "acme-vpc", "peer_vpc": "acme-vpc"}`)
	e.wantErr(400, api.CodeInvalidArgument, "peer_vpc", `already peered by "pcx1"`, "POST", "/v1/peerings", e.acme,
		`{"name": "x", "vpc": "acme-vpc", "peer_vpc": "globex-two"}`)
	// Only the owner of vpc requests.
	e.wantErr(400, api.CodeInvalidArgument, "vpc", `vpc "globex-two" does not exist`, "POST", "/v1/peerings", e.acme,
		`{"name": "x", "vpc": "globex-two", "peer_vpc": "acme-two"}`)
	e.wantErr(409, api.CodeConflict, "name", "already exists", "POST", "/v1/peerings", e.acme,
		`{"name": "pcx1", "vpc": "acme-two", "peer_vpc": "globex-two"}`)
	if e.peering("x") != nil {
		t.Fatal("a failed request created x")
	}

	// Both accounts see it; a third would not.
	for _, tok := range []string{e.acme, e.globex, e.admin} {
		var list struct{ Items []model.Peering }
		e.want(200, "GET", "/v1/peerings", tok, nil, &list)
		if len(list.Items) != 1 || list.Items[0].Name != "pcx1" {
			t.Fatalf("list: %+v", list)
		}
		e.want(200, "GET", "/v1/peerings/pcx1", tok, nil, nil)
	}
	e.want(201, "POST", "/v1/accounts", e.admin, `{"name": "initech"}`, nil)
	initech := e.b.mustToken("initech")
	e.wantErr(404, api.CodeNotFound, "", "not found", "GET", "/v1/peerings/pcx1", initech, nil)
	e.wantErr(404, api.CodeNotFound, "", "not found", "POST", "/v1/peerings/pcx1/accept", initech, nil)

	// The requester cannot accept, by the verb or by a PUT; the accepter can.
	e.wantErr(403, api.CodePermissionDenied, "", `only the account of vpc "globex-two"`, "POST", "/v1/peerings/pcx1/accept", e.acme, nil)
	e.wantErr(403, api.CodePermissionDenied, "accepted", "only the account", "PUT", "/v1/peerings/pcx1", e.acme,
		`{"vpc": "acme-vpc", "peer_vpc": "globex-two", "accepted": true}`)
	e.wantErr(400, api.CodeInvalidArgument, "peer_vpc", "cannot be changed", "PUT", "/v1/peerings/pcx1", e.globex,
		`{"vpc": "acme-vpc", "peer_vpc": "acme-two"}`)
	if e.peering("pcx1").Accepted {
		t.Fatal("accepted by the requester")
	}
	e.want(200, "POST", "/v1/peerings/pcx1/accept", e.globex, nil, &pc)
	if !pc.Accepted || !e.peering("pcx1").Accepted {
		t.Fatalf("accept: %+v", pc)
	}
	n := e.built()
	if !n.Peered(n.VPCs["acme-vpc"], n.VPCs["globex-two"]) {
		t.Fatal("not peered")
	}
	commits := e.commits()
	e.want(200, "POST", "/v1/peerings/pcx1/accept", e.globex, nil, nil)
	// A PUT without accepted keeps it.
	e.want(200, "PUT", "/v1/peerings/pcx1", e.acme, `{"vpc": "acme-vpc"}`, &pc)
	if !pc.Accepted || e.commits() != commits {
		t.Fatalf("accepted again or PUT: %+v, %d commits", pc, e.commits()-commits)
	}

	// A peered VPC cannot be deleted.
	e.wantErr(409, api.CodeConflict, "", `peering "pcx1"`, "DELETE", "/v1/vpcs/globex-two", e.globex, nil)

	// Export and apply carry peerings; re-applying changes nothing.
	code, data := e.do("GET", "/v1/export", e.globex, nil)
	if code != 200 || !strings.Contains(string(data), "peer_vpc: globex-two") {
		t.Fatalf("export: %d %s", code, data)
	}
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.globex, string(data), &res)
	if res.Revision != 0 {
		t.Fatalf("re-applying the export changed: %+v", res)
	}

	// Either side deletes.
	e.want(204, "DELETE", "/v1/peerings/pcx1", e.globex, nil, nil)
	e.want(201, "POST", "/v1/peerings", e.acme, `{"name": "pcx2", "vpc": "acme-vpc", "peer_vpc": "globex-two"}`, nil)
	e.want(204, "DELETE", "/v1/peerings/pcx2", e.acme, nil, nil)
	e.want(204, "DELETE", "/v1/subnets/two-web", e.globex, nil, nil)
	e.want(204, "DELETE", "/v1/vpcs/globex-two", e.globex, nil, nil)
}

func TestPeeringRoutes(t *testing.T) {
	e := peeringEnv(t)
	e.want(201, "POST", "/v1/peerings", e.acme, `{"name": "pcx1", "vpc": "acme-vpc", "peer_vpc": "globex-two"}`, nil)
	// globex's own peering, which acme cannot see.
	e.want(201, "POST", "/v1/peerings", e.globex, `{"name": "gpcx", "vpc": "globex-vpc", "peer_vpc": "globex-two"}`, nil)

	const routes = "/v1/route-tables/acme-vpc-main/routes"
	var rt api.RouteTableStatus
	e.want(201, "POST", routes, e.acme, `{"destination": "10.8.0.0/16", "peering": "pcx1"}`, &rt)
	if len(rt.RouteStates) != 2 || rt.RouteStates[1].Peering != "pcx1" || rt.RouteStates[1].State != model.RouteBlackhole ||
		!strings.Contains(rt.RouteStates[1].Why, "not accepted") {
		t.Fatalf("route over a requested peering: %+v", rt.RouteStates)
	}
	e.wantErr(400, api.CodeInvalidArgument, "peering", `peering "nosuch" does not exist`, "POST", routes, e.acme,
		`{"destination": "10.7.0.0/16", "peering": "nosuch"}`)
	e.wantErr(400, api.CodeInvalidArgument, "peering", `peering "gpcx" does not exist`, "POST", routes, e.acme,
		`{"destination": "10.7.0.0/16", "peering": "gpcx"}`)
	e.wantErr(400, api.CodeInvalidArgument, "peering", `not the table's vpc "acme-two"`, "POST", "/v1/route-tables/acme-two-main/routes", e.acme,
		`{"destination": "10.8.0.0/16", "peering": "pcx1"}`)
	e.wantErr(400, api.CodeInvalidArgument, "nic", "give one target", "POST", routes, e.acme,
		`{"destination": "10.7.0.0/16", "peering": "pcx1", "blackhole": true}`)
	// The accepter routes back over it (a replace works the same way).
	e.want(201, "POST", "/v1/route-tables/globex-two-main/routes", e.globex, `{"destination": "10.0.0.0/16", "blackhole": true}`, nil)
	e.want(200, "PUT", "/v1/route-tables/globex-two-main/routes", e.globex, `{"destination": "10.0.0.0/16", "peering": "pcx1"}`, nil)

	e.want(200, "POST", "/v1/peerings/pcx1/accept", e.globex, nil, nil)
	e.want(200, "GET", "/v1/route-tables/acme-vpc-main", e.acme, nil, &rt)
	if rt.RouteStates[1].State != model.RouteActive || rt.RouteStates[1].Peering != "pcx1" {
		t.Fatalf("route over an accepted peering: %+v", rt.RouteStates)
	}
	if got := states(rt); !strings.Contains(got, "10.8.0.0/16") {
		t.Fatalf("states %s", got)
	}

	// Routes do not keep a peering: they turn blackhole.
	e.want(204, "DELETE", "/v1/peerings/pcx1", e.acme, nil, nil)
	e.want(200, "GET", "/v1/route-tables/acme-vpc-main", e.acme, nil, &rt)
	if rt.RouteStates[1].State != model.RouteBlackhole || !strings.Contains(rt.RouteStates[1].Why, "does not exist") {
		t.Fatalf("route over a deleted peering: %+v", rt.RouteStates)
	}
	// Unrelated changes to the table go on.
	e.want(201, "POST", routes, e.acme, `{"destination": "192.168.0.0/16", "blackhole": true}`, nil)
	e.checkValid()
}

func TestPeeringSecurityGroups(t *testing.T) {
	e := peeringEnv(t)
	const ingress = "/v1/security-groups/acme-vpc-default/ingress"
	rule := `{"protocol": "tcp", "ports": "22", "group": "globex-two-default"}`
	// Not granted: as if it did not exist.
	e.wantErr(400, api.CodeInvalidArgument, "group", "does not exist or is not granted", "POST", ingress, e.acme, rule)
	e.want(201, "POST", "/v1/security-groups/globex-two-default/grants", e.globex, `{"account": "acme"}`, nil)
	// Granted, but no peering joins the VPCs.
	e.wantErr(400, api.CodeInvalidArgument, "group", "of a peered one", "POST", ingress, e.acme, rule)

	e.want(201, "POST", "/v1/peerings", e.acme, `{"name": "pcx1", "vpc": "acme-vpc", "peer_vpc": "globex-two"}`, nil)
	e.want(201, "POST", ingress, e.acme, rule, nil)
	n := e.built()
	var r *model.RuleInfo
	for _, x := range n.SecurityGroups["acme-vpc-default"].Ingress {
		if x.Peer != nil && x.Peer.Name == "globex-two-default" {
			r = x
		}
	}
	if r == nil || !strings.Contains(r.Inactive, "not accepted") {
		t.Fatalf("rule across a requested peering: %+v", r)
	}
	e.want(200, "POST", "/v1/peerings/pcx1/accept", e.globex, nil, nil)
	// The accepter's side: a rule naming a group of the requester's VPC.
	e.want(201, "POST", "/v1/security-groups/acme-vpc-default/grants", e.acme, `{"account": "globex"}`, nil)
	e.want(201, "POST", "/v1/security-groups/globex-two-default/ingress", e.globex, `{"protocol": "icmp", "group": "acme-vpc-default"}`, nil)
	for _, x := range e.built().SecurityGroups["acme-vpc-default"].Ingress {
		if x.Peer != nil && x.Peer.Name == "globex-two-default" && x.Inactive != "" {
			t.Fatalf("rule across an accepted peering is inactive: %s", x.Inactive)
		}
	}

	// The rules keep the peering: 409 naming the groups (others' counted).
	e.wantErr(409, api.CodeConflict, "", `security_group "acme-vpc-default", 1 object of another account`, "DELETE", "/v1/peerings/pcx1", e.acme, nil)
	e.wantErr(409, api.CodeConflict, "", `security_group "globex-two-default"`, "DELETE", "/v1/peerings/pcx1", e.globex, nil)
	e.want(200, "POST", ingress+"/revoke", e.acme, rule, nil)
	e.want(200, "POST", "/v1/security-groups/globex-two-default/ingress/revoke", e.globex, `{"protocol": "icmp", "group": "acme-vpc-default"}`, nil)
	e.want(204, "DELETE", "/v1/peerings/pcx1", e.globex, nil, nil)
	e.checkValid()
}

func TestClientPeerings(t *testing.T) {
	e := peeringEnv(t)
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	acme, err := client.New(ts.URL, e.acme, "")
	if err != nil {
		t.Fatal(err)
	}
	globex, err := client.New(ts.URL, e.globex, "")
	if err != nil {
		t.Fatal(err)
	}
	pc := model.Peering{Name: "pcx1", VPC: "acme-vpc", PeerVPC: "globex-two"}
	if err := acme.Create(bg, "pcx", &pc); err != nil || pc.Accepted {
		t.Fatalf("Create: %v %+v", err, pc)
	}
	got, err := acme.CreateRoute(bg, "acme-vpc-main", model.Route{Destination: "10.8.0.0/16", Peering: "pcx1"})
	if err != nil || got.RouteStates[1].Peering != "pcx1" || got.RouteStates[1].State != model.RouteBlackhole {
		t.Fatalf("CreateRoute: %v %+v", err, got)
	}
	if _, err := acme.AcceptPeering(bg, "pcx1"); client.StatusOf(err) != 403 {
		t.Fatalf("AcceptPeering by the requester: %v", err)
	}
	if p, err := globex.AcceptPeering(bg, "pcx1"); err != nil || !p.Accepted {
		t.Fatalf("AcceptPeering: %v %+v", err, p)
	}
	var all []model.Peering
	if err := globex.List(bg, "peerings", &all); err != nil || len(all) != 1 || !all[0].Accepted {
		t.Fatalf("List: %v %+v", err, all)
	}
	if err := globex.Delete(bg, "peering", "pcx1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
