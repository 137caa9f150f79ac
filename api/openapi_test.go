package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
)

// The paths the brief asks for, written out independently of the route
// table.
var wantRoutes = []string{
	"GET /v1/accounts", "POST /v1/accounts", "GET /v1/accounts/{name}", "PUT /v1/accounts/{name}", "DELETE /v1/accounts/{name}",
	"GET /v1/vpcs", "POST /v1/vpcs", "GET /v1/vpcs/{name}", "PUT /v1/vpcs/{name}", "DELETE /v1/vpcs/{name}",
	"GET /v1/subnets", "POST /v1/subnets", "GET /v1/subnets/{name}", "PUT /v1/subnets/{name}", "DELETE /v1/subnets/{name}",
	"GET /v1/nics", "POST /v1/nics", "GET /v1/nics/{name}", "PUT /v1/nics/{name}", "DELETE /v1/nics/{name}",
	"POST /v1/nics/{name}/secondary-ips", "DELETE /v1/nics/{name}/secondary-ips/{ip}",
	"GET /v1/hosts", "POST /v1/hosts", "GET /v1/hosts/{name}", "PUT /v1/hosts/{name}", "DELETE /v1/hosts/{name}",
	"GET /v1/settings", "PUT /v1/settings",
	"GET /v1/tokens", "POST /v1/tokens", "GET /v1/tokens/{id}", "DELETE /v1/tokens/{id}",
	"POST /v1/apply", "GET /v1/export", "GET /openapi.json",
	"GET /v1/security-groups", "POST /v1/security-groups", "GET /v1/security-groups/{name}", "PUT /v1/security-groups/{name}", "DELETE /v1/security-groups/{name}",
	"POST /v1/security-groups/{name}/ingress", "POST /v1/security-groups/{name}/egress",
	"POST /v1/security-groups/{name}/ingress/revoke", "POST /v1/security-groups/{name}/egress/revoke",
	"POST /v1/security-groups/{name}/grants", "DELETE /v1/security-groups/{name}/grants/{account}",
	"PUT /v1/nics/{name}/security-groups",
	"GET /v1/route-tables", "POST /v1/route-tables", "GET /v1/route-tables/{name}", "PUT /v1/route-tables/{name}", "DELETE /v1/route-tables/{name}",
	"POST /v1/route-tables/{name}/routes", "PUT /v1/route-tables/{name}/routes", "DELETE /v1/route-tables/{name}/routes/{cidr}",
	"PUT /v1/subnets/{name}/route-table", "PUT /v1/nics/{name}/source-dest-check",
	"GET /v1/peerings", "POST /v1/peerings", "GET /v1/peerings/{name}", "PUT /v1/peerings/{name}", "DELETE /v1/peerings/{name}",
	"POST /v1/peerings/{name}/accept",
	"GET /v1/internet-gateways", "POST /v1/internet-gateways", "GET /v1/internet-gateways/{name}", "PUT /v1/internet-gateways/{name}", "DELETE /v1/internet-gateways/{name}",
	"POST /v1/internet-gateways/{name}/attach", "POST /v1/internet-gateways/{name}/detach",
	"GET /v1/public-ip-pools", "POST /v1/public-ip-pools", "GET /v1/public-ip-pools/{name}", "PUT /v1/public-ip-pools/{name}", "DELETE /v1/public-ip-pools/{name}",
	"GET /v1/public-ips", "POST /v1/public-ips", "GET /v1/public-ips/{name}", "PUT /v1/public-ips/{name}", "DELETE /v1/public-ips/{name}",
	"POST /v1/public-ips/{name}/associate", "POST /v1/public-ips/{name}/disassociate",
}

func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	code, data := e.do("GET", "/openapi.json", "", nil)
	if code != 200 || e.lastHeader.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %v", code, e.lastHeader)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Info       map[string]any                        `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info["title"] == nil {
		t.Fatalf("openapi %q, info %v", doc.OpenAPI, doc.Info)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m, op := range ops {
			documented[strings.ToUpper(m)+" "+path] = true
			var o struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
				Parameters  []struct {
					Name, In string
				} `json:"parameters"`
			}
			if err := json.Unmarshal(op, &o); err != nil || o.OperationID == "" || len(o.Responses) == 0 {
				t.Errorf("%s %s: bad operation %s", m, path, op)
			}
			// Every path parameter is declared.
			for _, p := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(path, -1) {
				found := false
				for _, q := range o.Parameters {
					found = found || (q.Name == p[1] && q.In == "path")
				}
				if !found {
					t.Errorf("%s %s: parameter %s not declared", m, path, p[1])
				}
			}
		}
	}
	// Every registered route is documented, and every route the brief
	// lists is registered.
	registered := map[string]bool{}
	for _, r := range api.Routes() {
		// A trailing wildcard of the mux ({cidr...}) is a plain
		// parameter in the document.
		path := strings.ReplaceAll(r.Path, "...}", "}")
		registered[r.Method+" "+path] = true
		if !documented[r.Method+" "+path] {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, r.Path)
		}
	}
	for _, r := range wantRoutes {
		if !registered[r] {
			t.Errorf("route %s is not registered", r)
		}
	}
	if len(registered) != len(wantRoutes) || len(documented) != len(wantRoutes) {
		t.Errorf("%d routes registered, %d documented, want %d", len(registered), len(documented), len(wantRoutes))
	}
	// Every documented route is served: with no token, 401 (or 200 for the
	// public document), never 404 or 405.
	for r := range documented {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{name}", "x", "{id}", "x", "{ip}", "10.0.0.1", "{account}", "x", "{cidr}", "10.0.0.0%2F8").Replace(path)
		code, body := e.do(method, path, "", nil)
		if code != 401 && !(path == "/openapi.json" && code == 200) {
			t.Errorf("%s %s without a token: %d %s", method, path, code, body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if doc.Paths[p] != nil {
			t.Errorf("%s is the controller's, not ours", p)
		}
	}
	// Every $ref resolves.
	for _, ref := range regexp.MustCompile(`"\$ref": "#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(data), -1) {
		if doc.Components[ref[1]][ref[2]] == nil {
			t.Errorf("unresolved $ref %s/%s", ref[1], ref[2])
		}
	}
}

// TestMountNextToController: the routes can share a mux with the
// controller's debug routes, and unknown paths fall through to us.
func TestMountNextToController(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	ctl := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /v1/status", "GET /v1/hosts/{host}/flows"} {
		mux.Handle(p, ctl)
	}
	for _, r := range api.Routes() {
		mux.Handle(r.Method+" "+r.Path, e.h) // panics on a conflict
	}
	mux.Handle("/", e.h)
	for path, want := range map[string]int{"/healthz": 299, "/v1/status": 299, "/v1/hosts/h1/flows": 299, "/v1/hosts/h1": 200, "/v1/hosts": 200, "/v1/nosuch": 404} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+e.admin)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("GET %s: %d, want %d", path, w.Code, want)
		}
	}
}
