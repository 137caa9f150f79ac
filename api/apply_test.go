package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

const acmeDoc = `
vpcs:
  - {name: shop, cidr: 10.20.0.0/16}
subnets:
  - {name: shop-web, vpc: shop, cidr: 10.20.1.0/24}
  - {name: shop-db, vpc: shop, cidr: 10.20.2.0/24}
nics:
  - {name: shop-web1, subnet: shop-web, host: h1}
  - {name: shop-db1, subnet: shop-db, ip: 10.20.2.10, secondary_ips: [10.20.2.11]}
  - {name: web1, subnet: acme-web, host: h1, ip: 10.0.1.10}
`

func ops(cs []api.Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Op+" "+c.Kind+" "+c.Name)
	}
	return strings.Join(out, "; ")
}

func TestApply(t *testing.T) {
	e := newEnv(t)
	before := e.b.snapshot()

	// A dry run reports the changes and writes nothing.
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply?dry_run=true", e.acme, acmeDoc, &res)
	want := "create vpc shop; create subnet shop-web; create subnet shop-db; create nic shop-web1; create nic shop-db1; unchanged nic web1"
	if got := ops(res.Changes); got != want || !res.DryRun {
		t.Fatalf("dry run changes:\n%s\nwant\n%s", got, want)
	}
	if e.commits() != 0 || !reflect.DeepEqual(e.b.snapshot(), before) {
		t.Fatal("dry run changed the backend")
	}

	// The real thing, in one update.
	e.want(200, "POST", "/v1/apply", e.acme, acmeDoc, &res)
	if got := ops(res.Changes); got != want || res.DryRun || res.Revision == 0 {
		t.Fatalf("changes %+v", res)
	}
	if e.commits() != 1 {
		t.Fatalf("%d commits, want 1", e.commits())
	}
	n := e.nic("shop-web1")
	if n.IP != "10.20.1.4" || n.MAC == "" || n.PortKey == 0 {
		t.Fatalf("applied nic %+v", n)
	}
	var v model.VPC
	e.want(200, "GET", "/v1/vpcs/shop", e.acme, nil, &v)
	if v.Account != "acme" {
		t.Fatalf("vpc %+v", v)
	}

	// Again: idempotent, nothing written.
	snap := e.b.snapshot()
	res = api.ApplyResult{}
	e.want(200, "POST", "/v1/apply", e.acme, acmeDoc, &res)
	for _, c := range res.Changes {
		if c.Op != api.OpUnchanged {
			t.Fatalf("second apply: %s", ops(res.Changes))
		}
	}
	if e.commits() != 1 || !reflect.DeepEqual(e.b.snapshot(), snap) || res.Revision != 0 {
		t.Fatalf("second apply changed the backend: %d commits, revision %d\n%+v\n%+v", e.commits(), res.Revision, e.b.snapshot(), snap)
	}

	// The export re-applies as a no-op too.
	_, exported := e.do("GET", "/v1/export", e.acme, nil)
	if ct := e.lastHeader.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("export content type %q", ct)
	}
	e.want(200, "POST", "/v1/apply", e.acme, exported, &res)
	if strings.Contains(ops(res.Changes), "create") || strings.Contains(ops(res.Changes), "update") || e.commits() != 1 {
		t.Fatalf("re-applying the export: %s", ops(res.Changes))
	}

	// An edit is an update naming the fields; objects not in the document stay.
	edited := strings.Replace(acmeDoc, "{name: shop-web1, subnet: shop-web, host: h1}", "{name: shop-web1, subnet: shop-web, host: h2}", 1)
	edited = strings.Replace(edited, "  - {name: shop-db1, subnet: shop-db, ip: 10.20.2.10, secondary_ips: [10.20.2.11]}\n", "", 1)
	var dry api.ApplyResult
	e.want(200, "POST", "/v1/apply?dry_run=1", e.acme, edited, &dry)
	e.want(200, "POST", "/v1/apply", e.acme, edited, &res)
	if !reflect.DeepEqual(dry.Changes, res.Changes) {
		t.Fatalf("dry run %+v differs from apply %+v", dry.Changes, res.Changes)
	}
	var upd *api.Change
	for i, c := range res.Changes {
		if c.Name == "shop-web1" {
			upd = &res.Changes[i]
		}
	}
	// Moving to another host also reassigns the conntrack zone.
	if upd == nil || upd.Op != api.OpUpdate || !reflect.DeepEqual(upd.Fields, []string{"ct_zone", "host"}) {
		t.Fatalf("changes %+v", res.Changes)
	}
	if e.nic("shop-db1").Name != "shop-db1" || e.nic("shop-web1").Host != "h2" || e.nic("shop-web1").MAC != n.MAC {
		t.Fatal("apply lost an object or an assigned field")
	}

	// JSON documents work too.
	js := `{"vpcs": [{"name": "shop", "cidr": "10.20.0.0/16"}], "nics": [{"name": "j1", "subnet": "shop-web"}]}`
	e.want(200, "POST", "/v1/apply", e.acme, js, &res)
	if ops(res.Changes) != "unchanged vpc shop; create nic j1" {
		t.Fatalf("json apply: %s", ops(res.Changes))
	}
	e.checkValid()
}

func TestApplyAtomic(t *testing.T) {
	e := newEnv(t)
	snap := e.b.snapshot()
	bad := `
vpcs: [{name: shop, cidr: 10.20.0.0/16}]
subnets: [{name: shop-web, vpc: shop, cidr: 10.20.1.0/24}]
nics:
  - {name: ok1, subnet: shop-web}
  - {name: bad1, subnet: shop-web, ip: 10.20.9.9}
  - {name: bad2, subnet: shop-web, mac: "01:00:00:00:00:01"}
`
	for _, q := range []string{"", "?dry_run=true"} {
		er := e.wantErr(400, api.CodeInvalidArgument, "nics[1].ip", `nic "bad1": ip: 10.20.9.9 is outside subnet "shop-web"`, "POST", "/v1/apply"+q, e.acme, bad)
		if len(er.Details) != 2 || er.Details[1].Field != "nics[2].mac" {
			t.Fatalf("details %+v", er.Details)
		}
	}
	if e.commits() != 0 || !reflect.DeepEqual(e.b.snapshot(), snap) {
		t.Fatal("a failed apply wrote something")
	}
	e.wantErr(400, api.CodeInvalidArgument, "nics[1].name", `nic "a" is also nics[0]`, "POST", "/v1/apply", e.admin, "nics: [{name: a, subnet: acme-web}, {name: a, subnet: acme-web}]")
	e.wantErr(400, api.CodeInvalidArgument, "nics[0].subnet", "subnet cannot be changed", "POST", "/v1/apply", e.acme, "nics: [{name: web1, subnet: other}]")
	e.wantErr(400, api.CodeInvalidArgument, "cidrr", "cidrr", "POST", "/v1/apply", e.acme, "vpcs: [{name: x, cidrr: 10.0.0.0/16}]")
	e.wantErr(400, api.CodeInvalidArgument, "cidrr", `unknown field "cidrr"`, "POST", "/v1/apply", e.acme, `{"vpcs": [{"name": "x", "cidrr": "10.0.0.0/16"}]}`)
	e.wantErr(400, api.CodeInvalidArgument, "", "malformed policy document", "POST", "/v1/apply", e.acme, "vpcs: [{name: x")
	e.wantErr(400, api.CodeInvalidArgument, "", "want one policy document", "POST", "/v1/apply", e.acme, "vpcs: []\n---\nvpcs: []\n")
	e.wantErr(400, api.CodeInvalidArgument, "dry_run", "want true or false", "POST", "/v1/apply?dry_run=maybe", e.acme, "vpcs: []")
	e.wantErr(400, api.CodeInvalidArgument, "", "empty", "POST", "/v1/apply", e.acme, "")
	if e.commits() != 0 {
		t.Fatal("a failed apply committed")
	}
	// An admin's document may hold every kind.
	var res api.ApplyResult
	e.want(200, "POST", "/v1/apply", e.admin, seedYAML, &res)
	for _, c := range res.Changes {
		if c.Op != api.OpUnchanged {
			t.Fatalf("re-applying the seed: %s", ops(res.Changes))
		}
	}
}

func TestExportJSON(t *testing.T) {
	e := newEnv(t)
	r := httptest.NewRequest("GET", "/v1/export", nil)
	r.Header.Set("Authorization", "Bearer "+e.admin)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	var p model.Policy
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &p) != nil {
		t.Fatalf("export: %d %s", w.Code, w.Body)
	}
	if !reflect.DeepEqual(&p, e.b.snapshot()) {
		t.Fatalf("admin export %+v differs from the backend", p)
	}
}
