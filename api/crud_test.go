package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

type list[T any] struct {
	Items []T `json:"items"`
}

func TestAccountCRUD(t *testing.T) {
	e := newEnv(t)
	var a model.Account
	e.want(201, "POST", "/v1/accounts", e.admin, model.Account{Name: "initech"}, &a)
	if a.Name != "initech" || e.lastHeader.Get("Location") != "/v1/accounts/initech" || e.lastHeader.Get(api.RevisionHeader) == "" {
		t.Fatalf("created %+v, headers %v", a, e.lastHeader)
	}
	e.wantErr(409, api.CodeConflict, "name", `account "initech" already exists`, "POST", "/v1/accounts", e.admin, model.Account{Name: "initech"})
	var l list[model.Account]
	e.want(200, "GET", "/v1/accounts", e.admin, nil, &l)
	if len(l.Items) != 3 || l.Items[0].Name != "acme" || l.Items[2].Name != "initech" {
		t.Fatalf("list %+v", l.Items)
	}
	e.want(200, "GET", "/v1/accounts/initech", e.admin, nil, &a)
	e.want(200, "PUT", "/v1/accounts/initech", e.admin, `{}`, &a)
	e.wantErr(400, api.CodeInvalidArgument, "name", "cannot be renamed", "PUT", "/v1/accounts/initech", e.admin, model.Account{Name: "other"})
	e.want(204, "DELETE", "/v1/accounts/initech", e.admin, nil, nil)
	e.wantErr(404, api.CodeNotFound, "", `account "initech" not found`, "GET", "/v1/accounts/initech", e.admin, nil)
	e.wantErr(404, api.CodeNotFound, "", `account "initech" not found`, "DELETE", "/v1/accounts/initech", e.admin, nil)
	e.wantErr(404, api.CodeNotFound, "", `account "initech" not found`, "PUT", "/v1/accounts/initech", e.admin, `{}`)
}

func TestHostCRUD(t *testing.T) {
	e := newEnv(t)
	var h model.Host
	e.want(201, "POST", "/v1/hosts", e.admin, model.Host{Name: "h3", UnderlayIP: "172.31.0.13"}, &h)
	e.want(200, "PUT", "/v1/hosts/h3", e.admin, model.Host{UnderlayIP: "172.31.0.33", DatapathType: "system"}, &h)
	if h.Name != "h3" || h.UnderlayIP != "172.31.0.33" || h.DatapathType != "system" {
		t.Fatalf("updated %+v", h)
	}
	e.wantErr(400, api.CodeInvalidArgument, "underlay_ip", `host "h3": underlay_ip: 172.31.0.11 is already used by host "h1"`,
		"PUT", "/v1/hosts/h3", e.admin, model.Host{UnderlayIP: "172.31.0.11"})
	var l list[model.Host]
	e.want(200, "GET", "/v1/hosts", e.admin, nil, &l)
	if len(l.Items) != 3 {
		t.Fatalf("hosts %+v", l.Items)
	}
	e.want(204, "DELETE", "/v1/hosts/h3", e.admin, nil, nil)
	e.want(404, "GET", "/v1/hosts/h3", e.admin, nil, nil)
}

func TestVPCCRUD(t *testing.T) {
	e := newEnv(t)
	var v model.VPC
	e.want(201, "POST", "/v1/vpcs", e.acme, model.VPC{Name: "acme-2", CIDR: "10.9.0.0/16"}, &v)
	if v.Account != "acme" || v.VNI == 0 {
		t.Fatalf("created %+v: want account forced to acme and a VNI assigned", v)
	}
	var got model.VPC
	e.want(200, "GET", "/v1/vpcs/acme-2", e.acme, nil, &got)
	if got != v {
		t.Fatalf("get %+v, created %+v", got, v)
	}
	// A PUT that leaves out assigned fields keeps them and changes nothing.
	before := e.commits()
	e.want(200, "PUT", "/v1/vpcs/acme-2", e.acme, `{"cidr": "10.9.0.0/16"}`, &got)
	if got != v || e.commits() != before {
		t.Fatalf("no-op PUT: got %+v (want %+v), %d commits", got, v, e.commits()-before)
	}
	e.wantErr(400, api.CodeInvalidArgument, "cidr", "cidr cannot be changed", "PUT", "/v1/vpcs/acme-2", e.acme, `{"cidr": "10.8.0.0/16"}`)
	e.wantErr(400, api.CodeInvalidArgument, "vni", "vni cannot be changed", "PUT", "/v1/vpcs/acme-2", e.admin, `{"vni": 7}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", "account cannot be changed", "PUT", "/v1/vpcs/acme-2", e.admin, `{"account": "globex"}`)
	// An admin may choose the VNI and the account.
	e.want(201, "POST", "/v1/vpcs", e.admin, model.VPC{Name: "g2", Account: "globex", CIDR: "10.0.0.0/24", VNI: 77}, &v)
	if v.VNI != 77 {
		t.Fatalf("admin VNI not kept: %+v", v)
	}
	var l list[model.VPC]
	e.want(200, "GET", "/v1/vpcs", e.admin, nil, &l)
	if len(l.Items) != 4 {
		t.Fatalf("admin sees %d VPCs, want 4", len(l.Items))
	}
	e.want(204, "DELETE", "/v1/vpcs/acme-2", e.acme, nil, nil)
	e.want(404, "GET", "/v1/vpcs/acme-2", e.acme, nil, nil)
	e.checkValid()
}

func TestSubnetCRUD(t *testing.T) {
	e := newEnv(t)
	var s model.Subnet
	e.want(201, "POST", "/v1/subnets", e.acme, model.Subnet{Name: "acme-db", VPC: "acme-vpc", CIDR: "10.0.2.0/24"}, &s)
	e.wantErr(409, api.CodeConflict, "name", `subnet "acme-db" already exists`, "POST", "/v1/subnets", e.acme, s)
	e.wantErr(400, api.CodeInvalidArgument, "vpc", "vpc cannot be changed", "PUT", "/v1/subnets/acme-db", e.acme, model.Subnet{VPC: "x"})
	e.wantErr(400, api.CodeInvalidArgument, "cidr", "cidr cannot be changed", "PUT", "/v1/subnets/acme-db", e.acme, model.Subnet{CIDR: "10.0.3.0/24"})
	e.want(200, "PUT", "/v1/subnets/acme-db", e.acme, s, &s)
	var l list[model.Subnet]
	e.want(200, "GET", "/v1/subnets", e.acme, nil, &l)
	if len(l.Items) != 2 || l.Items[0].Name != "acme-db" || l.Items[1].Name != "acme-web" {
		t.Fatalf("list %+v", l.Items)
	}
	e.want(204, "DELETE", "/v1/subnets/acme-db", e.acme, nil, nil)
	e.want(404, "GET", "/v1/subnets/acme-db", e.acme, nil, nil)
}

func TestNICCRUD(t *testing.T) {
	e := newEnv(t)
	var n model.NIC
	e.want(201, "POST", "/v1/nics", e.acme, model.NIC{Name: "web2", Subnet: "acme-web"}, &n)
	if n.IP != "10.0.1.4" || !strings.HasPrefix(n.MAC, "02:76:6d:") || n.PortKey == 0 {
		t.Fatalf("created %+v: want the first free ip 10.0.1.4, an assigned mac and port key", n)
	}
	if stored := e.nic("web2"); stored.IP != n.IP || stored.MAC != n.MAC || stored.PortKey != n.PortKey {
		t.Fatalf("response %+v differs from stored %+v", n, stored)
	}
	created := n
	// Move to a host, add secondary IPs; assigned fields left out are kept.
	e.want(200, "PUT", "/v1/nics/web2", e.acme, `{"subnet": "acme-web", "host": "h2", "secondary_ips": ["10.0.1.50"]}`, &n)
	if n.Host != "h2" || n.IP != created.IP || n.MAC != created.MAC || n.PortKey != created.PortKey || len(n.SecondaryIPs) != 1 {
		t.Fatalf("updated %+v", n)
	}
	// The primary IP may change; the MAC, subnet and port key may not.
	n = model.NIC{}
	e.want(200, "PUT", "/v1/nics/web2", e.acme, `{"ip": "10.0.1.77", "host": "h2", "mac": "`+strings.ToUpper(created.MAC)+`"}`, &n)
	if n.IP != "10.0.1.77" || n.SecondaryIPs != nil {
		t.Fatalf("updated %+v", n)
	}
	e.wantErr(400, api.CodeInvalidArgument, "subnet", "subnet cannot be changed", "PUT", "/v1/nics/web2", e.acme, `{"subnet": "other"}`)
	e.wantErr(400, api.CodeInvalidArgument, "mac", "mac cannot be changed", "PUT", "/v1/nics/web2", e.acme, `{"mac": "02:00:00:00:00:09"}`)
	e.wantErr(400, api.CodeInvalidArgument, "port_key", "port_key cannot be changed", "PUT", "/v1/nics/web2", e.admin, `{"port_key": 5}`)
	// An explicit MAC is kept.
	e.want(201, "POST", "/v1/nics", e.acme, model.NIC{Name: "web3", Subnet: "acme-web", MAC: "02:00:00:00:00:03", IP: "10.0.1.30"}, &n)
	if n.MAC != "02:00:00:00:00:03" || n.IP != "10.0.1.30" {
		t.Fatalf("created %+v", n)
	}
	var l list[model.NIC]
	e.want(200, "GET", "/v1/nics", e.acme, nil, &l)
	if len(l.Items) != 3 {
		t.Fatalf("list %+v", l.Items)
	}
	e.want(204, "DELETE", "/v1/nics/web3", e.acme, nil, nil)
	e.want(404, "GET", "/v1/nics/web3", e.acme, nil, nil)
	e.checkValid()
}

func TestSecondaryIPs(t *testing.T) {
	e := newEnv(t)
	var n model.NIC
	e.want(201, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "10.0.1.20"}`, &n)
	e.want(201, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "10.0.1.21"}`, &n)
	if strings.Join(n.SecondaryIPs, ",") != "10.0.1.20,10.0.1.21" {
		t.Fatalf("secondary ips %v", n.SecondaryIPs)
	}
	e.wantErr(409, api.CodeConflict, "ip", `nic "web1" already has secondary ip 10.0.1.20`, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "10.0.1.20"}`)
	e.wantErr(400, api.CodeInvalidArgument, "ip", `10.0.1.10 is already used by nic "web1"`, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "10.0.1.10"}`)
	e.wantErr(400, api.CodeInvalidArgument, "ip", `is outside subnet "acme-web"`, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "10.0.9.1"}`)
	e.wantErr(400, api.CodeInvalidArgument, "ip", `"nope" is not an IPv4 address`, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"ip": "nope"}`)
	e.wantErr(400, api.CodeInvalidArgument, "ip", "is required", "POST", "/v1/nics/web1/secondary-ips", e.acme, `{}`)
	e.wantErr(400, api.CodeInvalidArgument, "address", `unknown field "address"`, "POST", "/v1/nics/web1/secondary-ips", e.acme, `{"address": "10.0.1.22"}`)
	e.wantErr(404, api.CodeNotFound, "", `nic "nope" not found`, "POST", "/v1/nics/nope/secondary-ips", e.acme, `{"ip": "10.0.1.22"}`)
	e.want(200, "DELETE", "/v1/nics/web1/secondary-ips/10.0.1.20", e.acme, nil, &n)
	if strings.Join(n.SecondaryIPs, ",") != "10.0.1.21" {
		t.Fatalf("secondary ips %v", n.SecondaryIPs)
	}
	e.wantErr(404, api.CodeNotFound, "", `nic "web1" has no secondary ip "10.0.1.20"`, "DELETE", "/v1/nics/web1/secondary-ips/10.0.1.20", e.acme, nil)
	n = model.NIC{}
	e.want(200, "DELETE", "/v1/nics/web1/secondary-ips/10.0.1.21", e.acme, nil, &n)
	if n.SecondaryIPs != nil {
		t.Fatalf("secondary ips %v", n.SecondaryIPs)
	}
	e.checkValid()
}

func TestDeleteInUse(t *testing.T) {
	e := newEnv(t)
	e.want(201, "POST", "/v1/nics", e.acme, model.NIC{Name: "web0", Subnet: "acme-web", Host: "h2"}, nil)
	before := e.commits()
	e.wantErr(409, api.CodeConflict, "", `subnet "acme-web" is used by nic "web0", nic "web1"`, "DELETE", "/v1/subnets/acme-web", e.acme, nil)
	e.wantErr(409, api.CodeConflict, "", `vpc "acme-vpc" is used by subnet "acme-web"`, "DELETE", "/v1/vpcs/acme-vpc", e.acme, nil)
	e.wantErr(409, api.CodeConflict, "", `host "h1" is used by nic "gweb1", nic "web1"`, "DELETE", "/v1/hosts/h1", e.admin, nil)
	e.wantErr(409, api.CodeConflict, "", `host "h2" is used by nic "web0"`, "DELETE", "/v1/hosts/h2", e.admin, nil)
	e.wantErr(409, api.CodeConflict, "", `account "acme" is used by vpc "acme-vpc"`, "DELETE", "/v1/accounts/acme", e.admin, nil)
	if e.commits() != before {
		t.Fatal("a refused delete committed")
	}
	// Once unused, they go.
	for _, p := range []string{"/v1/nics/web0", "/v1/nics/web1", "/v1/subnets/acme-web", "/v1/vpcs/acme-vpc"} {
		e.want(204, "DELETE", p, e.acme, nil, nil)
	}
	e.want(204, "DELETE", "/v1/hosts/h2", e.admin, nil, nil)
	// An account's tokens go with it.
	e.want(204, "DELETE", "/v1/accounts/acme", e.admin, nil, nil)
	e.wantErr(401, api.CodeUnauthenticated, "", "", "GET", "/v1/vpcs", e.acme, nil)
	e.checkValid()
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	e.wantErr(404, api.CodeNotFound, "", "no such path /v1/nosuch", "GET", "/v1/nosuch", e.admin, nil)
	e.wantErr(404, api.CodeNotFound, "", "no such path", "GET", "/v1/vpcs/", e.admin, nil)
	e.wantErr(405, api.CodeInvalidArgument, "", "method PATCH is not allowed", "PATCH", "/v1/vpcs/acme-vpc", e.admin, `{}`)
	if got := e.lastHeader.Get("Allow"); got != "GET, PUT, DELETE" {
		t.Errorf("Allow %q", got)
	}
	e.wantErr(405, api.CodeInvalidArgument, "", "allowed: GET, POST", "DELETE", "/v1/vpcs", e.admin, nil)
	// The controller's routes are not ours.
	for _, p := range []string{"/healthz", "/readyz", "/v1/status"} {
		e.want(404, "GET", p, "", nil, nil)
	}
}

func TestConflictRetry(t *testing.T) {
	e := newEnv(t)
	e.b.conflicts = 2 // the store re-runs the change on a fresh copy
	var n model.NIC
	e.want(201, "POST", "/v1/nics", e.acme, model.NIC{Name: "web2", Subnet: "acme-web"}, &n)
	if n.IP != "10.0.1.4" {
		t.Fatalf("created %+v", n)
	}
	e.b.conflicts = 1
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.acme, "nics: [{name: web3, subnet: acme-web}]", &res)
	if len(res.Changes) != 1 || res.Changes[0].Op != api.OpCreate {
		t.Fatalf("changes %+v", res.Changes)
	}
	e.checkValid()
}

func TestBackendGivesUp(t *testing.T) {
	e := newEnv(t)
	e.b.conflicts, e.b.giveUp = 3, true
	e.wantErr(409, api.CodeConflict, "", "too many concurrent changes", "POST", "/v1/vpcs", e.acme, model.VPC{Name: "x", CIDR: "10.5.0.0/16"})
}

func TestInternalErrorsHidden(t *testing.T) {
	e := newEnv(t)
	e.b.failUpdate = errBroken
	er := e.wantErr(500, api.CodeInternal, "", "internal error", "POST", "/v1/vpcs", e.acme, model.VPC{Name: "x", CIDR: "10.5.0.0/16"})
	if strings.Contains(er.Message, "etcd") {
		t.Fatalf("internal detail leaked: %q", er.Message)
	}
	if !strings.Contains(e.logBuf.String(), "connection refused") {
		t.Fatalf("internal error not logged:\n%s", e.logBuf.String())
	}
}

func TestRevisionHeader(t *testing.T) {
	e := newEnv(t)
	e.want(200, "GET", "/v1/vpcs", e.acme, nil, nil)
	r1 := e.lastHeader.Get(api.RevisionHeader)
	e.want(201, "POST", "/v1/vpcs", e.acme, model.VPC{Name: "x", CIDR: "10.5.0.0/16"}, nil)
	r2 := e.lastHeader.Get(api.RevisionHeader)
	if r1 == "" || r2 == "" || r1 == r2 {
		t.Fatalf("revisions %q, %q", r1, r2)
	}
	if code, _ := e.do(http.MethodGet, "/v1/vpcs", e.acme, nil); code != 200 || e.lastHeader.Get(api.RevisionHeader) != r2 {
		t.Fatalf("revision after write %q, want %q", e.lastHeader.Get(api.RevisionHeader), r2)
	}
}
