package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

// rtFuzzTargets are the route table endpoints FuzzRouteTables sends bodies
// to (selector modulo their number; the next choice picks the token).
var rtFuzzTargets = []struct{ method, path string }{
	{"POST", "/v1/route-tables"},
	{"PUT", "/v1/route-tables/via-fw"},
	{"PUT", "/v1/route-tables/acme-vpc-main"},
	{"POST", "/v1/route-tables/via-fw/routes"},
	{"PUT", "/v1/route-tables/via-fw/routes"},
	{"PUT", "/v1/subnets/acme-web/route-table"},
	{"PUT", "/v1/subnets/globex-web"},
	{"PUT", "/v1/nics/fw1/source-dest-check"},
	{"PUT", "/v1/nics/gweb1"},
	{"POST", "/v1/apply"},
}

// FuzzRouteTables: like FuzzDecodeValidate, for route tables: never a
// 5xx, an error body or a commit on failure, an invalid policy left
// behind, and neither account changes the other's tables, subnets or
// NICs.
func FuzzRouteTables(f *testing.F) {
	seedEnv := routeEnv(f)
	seedEnv.want(201, "POST", "/v1/route-tables", seedEnv.acme, `{"name": "via-fw", "vpc": "acme-vpc", "routes": [{"destination": "0.0.0.0/0", "nic": "fw1"}]}`, nil)
	seed := seedEnv.b.snapshot()
	b := newMemBackend(seed)
	log := logrus.New()
	log.SetOutput(new(bytes.Buffer))
	h := api.New(b, api.Options{MaxBody: 64 << 10, Log: log})
	tokens := []string{b.mustToken("acme"), b.mustToken("globex"), b.mustToken("")}
	owned := func(p *model.Policy, account string) string {
		owner := map[string]string{}
		for _, v := range p.VPCs {
			owner[v.Name] = v.Account
		}
		var out []any
		for _, t := range p.RouteTables {
			if owner[t.VPC] == account {
				out = append(out, t)
			}
		}
		for _, s := range p.Subnets {
			if owner[s.VPC] == account {
				out = append(out, s)
			}
		}
		return fmt.Sprint(out)
	}
	wantAcme, wantGlobex := owned(seed, "acme"), owned(seed, "globex")
	for i, body := range []string{
		`{"name": "x", "vpc": "acme-vpc", "routes": [{"destination": "10.8.0.0/16", "nic": "fw1"}]}`,
		`{"routes": [{"destination": "0.0.0.0/0", "blackhole": true}], "route_states": [], "subnets": ["x"]}`,
		`{"routes": []}`,
		`{"destination": "10.6.0.0/16", "nic": "web1"}`,
		`{"destination": "0.0.0.0/0", "blackhole": true}`,
		`{"route_table": "via-fw"}`,
		`{"route_table": "globex-vpc-main"}`,
		`{"source_dest_check": false}`,
		`{"source_dest_check": true, "host": "h2"}`,
		"route_tables: [{name: y, vpc: acme-vpc, routes: [{destination: 10.7.0.0/16, nic: gweb1}]}]",
	} {
		f.Add(uint8(i), uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, sel, tok uint8, body []byte) {
		b.mu.Lock()
		b.p, b.commits = deepCopy(seed), 0
		b.mu.Unlock()
		target := rtFuzzTargets[int(sel)%len(rtFuzzTargets)]
		token := tokens[int(tok)%len(tokens)]
		r := httptest.NewRequest(target.method, target.path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 201, 400, 403, 404, 409, 413:
		default:
			t.Fatalf("%s %s %q: status %d: %s", target.method, target.path, body, w.Code, w.Body)
		}
		b.mu.Lock()
		commits := b.commits
		b.mu.Unlock()
		if w.Code >= 400 {
			var er api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil || er.Code == "" || er.Message == "" {
				t.Fatalf("%s %s %q: malformed error body %q", target.method, target.path, body, w.Body)
			}
			if commits != 0 {
				t.Fatalf("%s %s %q: failed with %d but committed", target.method, target.path, body, w.Code)
			}
		}
		p := b.snapshot()
		if _, err := model.Build(p); err != nil {
			t.Fatalf("%s %s %q left an invalid policy: %v", target.method, target.path, body, err)
		}
		if token == tokens[0] && owned(p, "globex") != wantGlobex {
			t.Fatalf("%s %s %q: acme changed globex's objects", target.method, target.path, body)
		}
		if token == tokens[1] && owned(p, "acme") != wantAcme {
			t.Fatalf("%s %s %q: globex changed acme's objects", target.method, target.path, body)
		}
	})
}
