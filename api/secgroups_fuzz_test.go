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

// sgFuzzTargets are the security group endpoints FuzzSecurityGroups sends
// bodies to (selector modulo their number; the next choice picks the token).
var sgFuzzTargets = []struct{ method, path string }{
	{"POST", "/v1/security-groups"},
	{"PUT", "/v1/security-groups/a-web"},
	{"PUT", "/v1/security-groups/acme-vpc-default"},
	{"POST", "/v1/security-groups/a-web/ingress"},
	{"POST", "/v1/security-groups/a-web/egress/revoke"},
	{"POST", "/v1/security-groups/a-web/grants"},
	{"PUT", "/v1/nics/g1/security-groups"},
	{"POST", "/v1/apply"},
	{"POST", "/v1/nics"},
}

// FuzzSecurityGroups: like FuzzDecodeValidate, for security groups, over a
// shared VPC holding NICs and groups of two accounts. Besides never
// failing with a 5xx or leaving an invalid policy, globex never changes
// acme's groups and acme never changes globex's NICs or groups.
func FuzzSecurityGroups(f *testing.F) {
	seedEnv := sharedEnv(f)
	seedEnv.want(201, "POST", "/v1/security-groups/a-web/grants", seedEnv.acme, `{"account": "globex"}`, nil)
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
		for _, g := range p.SecurityGroups {
			if g.Account == account || (g.Account == "" && owner[g.VPC] == account) {
				out = append(out, g)
			}
		}
		for _, n := range p.NICs {
			if n.Account == account {
				out = append(out, n)
			}
		}
		return fmt.Sprint(out)
	}
	wantAcme, wantGlobex := owned(seed, "acme"), owned(seed, "globex")
	for i, body := range []string{
		`{"name": "x", "vpc": "pub", "ingress": [{"protocol": "tcp", "ports": "22", "group": "a-web"}]}`,
		`{"ingress": [{"protocol": "icmp", "icmp_type": 8, "cidr": "10.0.0.0/8"}], "grants": []}`,
		`{"egress": []}`,
		`{"protocol": "udp", "ports": "53-54", "cidr": "10.1.0.0/16"}`,
		`{"protocol": "all", "cidr": "0.0.0.0/0"}`,
		`{"account": "globex"}`,
		`{"security_groups": ["g-app", "pub-globex-default"]}`,
		"security_groups: [{name: y, vpc: pub, egress: [{protocol: all, group: g-app}]}]",
		`{"name": "n", "subnet": "pub-a", "security_groups": ["a-web"]}`,
	} {
		f.Add(uint8(i), uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, sel, tok uint8, body []byte) {
		b.mu.Lock()
		b.p, b.commits = deepCopy(seed), 0
		b.mu.Unlock()
		target := sgFuzzTargets[int(sel)%len(sgFuzzTargets)]
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
