package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, header string }{
		{"none", ""},
		{"garbage", "Bearer nope"},
		{"empty bearer", "Bearer "},
		{"basic", "Basic YWRtaW46YWRtaW4="},
		{"no scheme", e.admin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/vpcs", "/v1/accounts", "/v1/tokens", "/v1/export"} {
				r := httptest.NewRequest("GET", path, nil)
				if tc.header != "" {
					r.Header.Set("Authorization", tc.header)
				}
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				var er api.Error
				if w.Code != 401 || json.Unmarshal(w.Body.Bytes(), &er) != nil || er.Code != api.CodeUnauthenticated {
					t.Fatalf("GET %s: %d %s, want 401 unauthenticated", path, w.Code, w.Body)
				}
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate header")
				}
			}
		})
	}
	// The scheme is case-insensitive.
	r := httptest.NewRequest("GET", "/v1/vpcs", nil)
	r.Header.Set("Authorization", "bearer "+e.acme)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("lower-case bearer: %d", w.Code)
	}
	// The OpenAPI document is public.
	e.want(200, "GET", "/openapi.json", "", nil, nil)
}

func TestAdminOnlyKinds(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/accounts", ""},
		{"POST", "/v1/accounts", `{"name": "evil"}`},
		{"GET", "/v1/accounts/acme", ""},
		{"PUT", "/v1/accounts/acme", `{}`},
		{"DELETE", "/v1/accounts/globex", ""},
		{"GET", "/v1/hosts", ""},
		{"POST", "/v1/hosts", `{"name": "h9", "underlay_ip": "172.31.0.99"}`},
		{"GET", "/v1/hosts/h1", ""},
		{"PUT", "/v1/hosts/h1", `{"underlay_ip": "172.31.0.99"}`},
		{"DELETE", "/v1/hosts/h2", ""},
		{"GET", "/v1/tokens", ""},
		{"POST", "/v1/tokens", `{"admin": true}`},
		{"POST", "/v1/tokens", `{"account": "acme"}`},
		{"GET", "/v1/tokens/x", ""},
		{"DELETE", "/v1/tokens/x", ""},
		{"POST", "/v1/apply", "accounts: [{name: evil}]"},
		{"POST", "/v1/apply", "hosts: [{name: h9, underlay_ip: 172.31.0.99}]"},
		// Public IP pools: read by every account, written by an admin.
		{"POST", "/v1/public-ip-pools", `{"name": "p", "cidr": "192.0.2.0/24"}`},
		{"PUT", "/v1/public-ip-pools/p", `{"cidr": "192.0.2.0/24"}`},
		{"DELETE", "/v1/public-ip-pools/p", ""},
		{"POST", "/v1/apply", "public_ip_pools: [{name: p, cidr: 192.0.2.0/24}]"},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		e.wantErr(403, api.CodePermissionDenied, "", "", tc.method, tc.path, e.acme, body)
	}
	if e.commits() != 0 {
		t.Fatal("a denied request committed")
	}
	if toks, _ := e.b.ListTokens(bg); len(toks) != 3 {
		t.Fatalf("%d tokens, want 3", len(toks))
	}
}

// TestCrossAccount: acme can neither see nor touch globex's objects, and
// references to them fail exactly as references to missing objects do.
func TestCrossAccount(t *testing.T) {
	e := newEnv(t)
	// Lists show only acme's objects; globex's are not found.
	for kind, want := range map[string]string{"vpcs": "acme-vpc", "subnets": "acme-web", "nics": "web1"} {
		var l list[map[string]any]
		e.want(200, "GET", "/v1/"+kind, e.acme, nil, &l)
		if len(l.Items) != 1 || l.Items[0]["name"] != want {
			t.Errorf("acme lists %s %v, want only %s", kind, l.Items, want)
		}
	}
	before := e.commits()
	for _, tc := range []struct{ kind, name, body string }{
		{"vpc", "globex-vpc", `{"cidr": "10.0.0.0/16"}`},
		{"subnet", "globex-web", `{"cidr": "10.0.1.0/24"}`},
		{"nic", "gweb1", `{"host": "h2"}`},
	} {
		path := "/v1/" + tc.kind + "s/" + tc.name
		missing := "/v1/" + tc.kind + "s/nosuch"
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			var body any
			if m == "PUT" {
				body = tc.body
			}
			er := e.wantErr(404, api.CodeNotFound, "", tc.kind+` "`+tc.name+`" not found`, m, path, e.acme, body)
			er2 := e.wantErr(404, api.CodeNotFound, "", "", m, missing, e.acme, body)
			if strings.ReplaceAll(er.Message, tc.name, "X") != strings.ReplaceAll(er2.Message, "nosuch", "X") {
				t.Errorf("%s %s: %q differs from a missing object's %q", m, path, er.Message, er2.Message)
			}
		}
	}
	e.wantErr(404, api.CodeNotFound, "", `nic "gweb1" not found`, "POST", "/v1/nics/gweb1/secondary-ips", e.acme, `{"ip": "10.0.1.30"}`)
	e.wantErr(404, api.CodeNotFound, "", `nic "gweb1" not found`, "DELETE", "/v1/nics/gweb1/secondary-ips/10.0.1.30", e.acme, nil)

	// Referencing globex's VPC or subnet fails as if it did not exist.
	same := func(kind string, mine, missing any, field string) {
		t.Helper()
		a := e.wantErr(400, api.CodeInvalidArgument, field, "does not exist", "POST", "/v1/"+kind, e.acme, mine)
		b := e.wantErr(400, api.CodeInvalidArgument, field, "does not exist", "POST", "/v1/"+kind, e.acme, missing)
		norm := func(s string) string {
			for _, n := range []string{"globex-vpc", "globex-web", "nosuch"} {
				s = strings.ReplaceAll(s, n, "X")
			}
			return s
		}
		if norm(a.Message) != norm(b.Message) || a.Field != b.Field || len(a.Details) != len(b.Details) {
			t.Errorf("reference to another account's object %+v\ndiffers from one to a missing object %+v", a, b)
		}
	}
	same("subnets", model.Subnet{Name: "s", VPC: "globex-vpc", CIDR: "10.0.7.0/24"}, model.Subnet{Name: "s", VPC: "nosuch", CIDR: "10.0.7.0/24"}, "vpc")
	same("subnets", model.Subnet{Name: "s", VPC: "globex-vpc", CIDR: "bad"}, model.Subnet{Name: "s", VPC: "nosuch", CIDR: "bad"}, "vpc")
	same("nics", model.NIC{Name: "n", Subnet: "globex-web"}, model.NIC{Name: "n", Subnet: "nosuch"}, "subnet")
	same("nics", model.NIC{Name: "n", Subnet: "globex-web", IP: "10.0.1.10"}, model.NIC{Name: "n", Subnet: "nosuch", IP: "10.0.1.10"}, "subnet")
	// Through apply too.
	var er api.Error
	e.want(400, "POST", "/v1/apply", e.acme, "nics: [{name: n, subnet: globex-web}]", &er)
	if er.Field != "nics[0].subnet" || !strings.Contains(er.Message, `subnet "globex-web" does not exist`) {
		t.Errorf("apply referencing globex-web: %+v", er)
	}

	// A VPC of another account cannot be created; nor data-plane keys chosen.
	e.wantErr(400, api.CodeInvalidArgument, "account", `must be "acme"`, "POST", "/v1/vpcs", e.acme, model.VPC{Name: "v", Account: "globex", CIDR: "10.1.0.0/16"})
	e.wantErr(400, api.CodeInvalidArgument, "vni", "assigned by the controller", "POST", "/v1/vpcs", e.acme, model.VPC{Name: "v", CIDR: "10.1.0.0/16", VNI: 5})
	e.wantErr(400, api.CodeInvalidArgument, "port_key", "assigned by the controller", "POST", "/v1/nics", e.acme, model.NIC{Name: "n", Subnet: "acme-web", PortKey: 5})
	e.wantErr(400, api.CodeInvalidArgument, "vpcs[0].account", `must be "acme"`, "POST", "/v1/apply", e.acme, "vpcs: [{name: v, account: globex, cidr: 10.1.0.0/16}]")
	// Names are global: taking globex's says only that the name exists.
	e.wantErr(409, api.CodeConflict, "name", `vpc "globex-vpc" already exists`, "POST", "/v1/vpcs", e.acme, model.VPC{Name: "globex-vpc", CIDR: "10.1.0.0/16"})
	e.wantErr(409, api.CodeConflict, "vpcs[0].name", `vpc "globex-vpc" already exists`, "POST", "/v1/apply", e.acme, "vpcs: [{name: globex-vpc, cidr: 10.1.0.0/16}]")
	if e.commits() != before {
		t.Fatal("a refused request committed")
	}

	// Hosts are shared: an account may place a NIC on an existing host, and
	// learns nothing more than that a missing one does not exist.
	var n model.NIC
	e.want(201, "POST", "/v1/nics", e.acme, model.NIC{Name: "n1", Subnet: "acme-web", Host: "h2"}, &n)
	er = e.wantErr(400, api.CodeInvalidArgument, "host", `nic "n2": host: host "h9" does not exist`, "POST", "/v1/nics", e.acme, model.NIC{Name: "n2", Subnet: "acme-web", Host: "h9"})
	if strings.Contains(er.Message, "h1") || strings.Contains(er.Message, "h2") {
		t.Errorf("host list leaked: %q", er.Message)
	}
	// The same IP is fine in another account's VPC (CIDRs may overlap).
	e.want(201, "POST", "/v1/nics", e.globex, model.NIC{Name: "g2", Subnet: "globex-web", IP: "10.0.1.4"}, nil)

	// Export shows nothing of globex, nor the accounts and hosts.
	_, data := e.do("GET", "/v1/export", e.acme, nil)
	for _, s := range []string{"globex", "gweb1", "g2", "accounts", "hosts:", "underlay"} {
		if strings.Contains(string(data), s) {
			t.Errorf("acme's export contains %q:\n%s", s, data)
		}
	}
	if !strings.Contains(string(data), "acme-vpc") || !strings.Contains(string(data), "n1") {
		t.Errorf("acme's export lacks its objects:\n%s", data)
	}
	// The admin sees everything.
	var l list[model.NIC]
	e.want(200, "GET", "/v1/nics", e.admin, nil, &l)
	if len(l.Items) != 4 {
		t.Errorf("admin lists %d NICs, want 4", len(l.Items))
	}
	e.checkValid()
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	var tok api.NewToken
	e.want(201, "POST", "/v1/tokens", e.admin, api.TokenRequest{Account: "globex", Description: "ci"}, &tok)
	if tok.ID == "" || tok.Secret == "" || tok.Account != "globex" || tok.Admin {
		t.Fatalf("token %+v", tok)
	}
	var l list[model.VPC]
	e.want(200, "GET", "/v1/vpcs", tok.Secret, nil, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "globex-vpc" {
		t.Fatalf("new token sees %+v", l.Items)
	}
	var infos list[api.TokenInfo]
	data := e.want(200, "GET", "/v1/tokens", e.admin, nil, &infos)
	if len(infos.Items) != 4 || strings.Contains(string(data), tok.Secret) || strings.Contains(string(data), "secret") {
		t.Fatalf("token list %s", data)
	}
	var info api.TokenInfo
	e.want(200, "GET", "/v1/tokens/"+tok.ID, e.admin, nil, &info)
	if info.Account != "globex" || info.Description != "ci" || info.Created.IsZero() {
		t.Fatalf("token info %+v", info)
	}
	var adm api.NewToken
	e.want(201, "POST", "/v1/tokens", e.admin, `{"admin": true}`, &adm)
	e.want(200, "GET", "/v1/accounts", adm.Secret, nil, nil)

	e.wantErr(400, api.CodeInvalidArgument, "account", `account "nosuch" does not exist`, "POST", "/v1/tokens", e.admin, `{"account": "nosuch"}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", "is required", "POST", "/v1/tokens", e.admin, `{}`)
	e.wantErr(400, api.CodeInvalidArgument, "account", "must be empty", "POST", "/v1/tokens", e.admin, `{"account": "acme", "admin": true}`)
	e.wantErr(400, api.CodeInvalidArgument, "description", "longer than", "POST", "/v1/tokens", e.admin, api.TokenRequest{Account: "acme", Description: strings.Repeat("x", 300)})
	e.wantErr(400, api.CodeInvalidArgument, "admin", "want true or false", "POST", "/v1/tokens", e.admin, `{"admin": "yes"}`)

	e.want(204, "DELETE", "/v1/tokens/"+tok.ID, e.admin, nil, nil)
	e.wantErr(401, api.CodeUnauthenticated, "", "", "GET", "/v1/vpcs", tok.Secret, nil)
	e.wantErr(404, api.CodeNotFound, "", "not found", "DELETE", "/v1/tokens/"+tok.ID, e.admin, nil)
	e.wantErr(404, api.CodeNotFound, "", "not found", "GET", "/v1/tokens/"+tok.ID, e.admin, nil)
	if strings.Contains(e.logBuf.String(), tok.Secret) {
		t.Fatal("a secret was logged")
	}
}

// A token of a principal with neither account nor admin rights is refused.
func TestAccountlessToken(t *testing.T) {
	e := newEnv(t)
	e.b.mu.Lock()
	e.b.tokens["odd"] = memToken{secret: "odd", info: api.TokenInfo{ID: "odd"}}
	e.b.mu.Unlock()
	e.wantErr(http.StatusForbidden, api.CodePermissionDenied, "", "neither", "GET", "/v1/vpcs", "odd", nil)
}
