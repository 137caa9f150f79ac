package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

// fuzzTargets are the endpoints FuzzDecodeValidate posts to (low 3 bits
// of the selector); bit 3 picks an admin or an account token, bit 4 a PUT
// of an existing object instead of a POST.
var fuzzTargets = []struct{ post, put string }{
	{"/v1/accounts", "/v1/accounts/acme"},
	{"/v1/vpcs", "/v1/vpcs/acme-vpc"},
	{"/v1/subnets", "/v1/subnets/acme-web"},
	{"/v1/nics", "/v1/nics/web1"},
	{"/v1/hosts", "/v1/hosts/h1"},
	{"/v1/apply", "/v1/apply?dry_run=true"},
	{"/v1/nics/web1/secondary-ips", "/v1/nics/web1/secondary-ips"},
	{"/v1/tokens", "/v1/tokens"},
}

// FuzzDecodeValidate feeds arbitrary bodies through decoding, access
// checks and validation of object creation. It must never panic (a
// recovered panic is a 500), never answer bad input with a 5xx, always
// answer with a well-formed JSON error, never leave an invalid policy in
// the backend, and never let acme touch globex's objects.
func FuzzDecodeValidate(f *testing.F) {
	seed := seedPolicy(f)
	b := newMemBackend(seed)
	log := logrus.New()
	log.SetOutput(new(bytes.Buffer))
	h := api.New(b, api.Options{MaxBody: 64 << 10, Log: log})
	admin, acme := b.mustToken(""), b.mustToken("acme")
	globexObjs := func(p *model.Policy) string {
		var out []any
		for _, v := range p.VPCs {
			if v.Account == "globex" {
				out = append(out, v)
			}
		}
		for _, s := range p.Subnets {
			if s.VPC == "globex-vpc" {
				out = append(out, s)
			}
		}
		for _, n := range p.NICs {
			if n.Subnet == "globex-web" {
				out = append(out, n)
			}
		}
		return fmt.Sprint(out)
	}
	wantGlobex := globexObjs(seed)
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		b.mu.Lock()
		b.p, b.commits = deepCopy(seed), 0
		b.mu.Unlock()
		target := fuzzTargets[sel&7]
		token := acme
		if sel&8 != 0 {
			token = admin
		}
		method, path := http.MethodPost, target.post
		if sel&16 != 0 && sel&7 < 5 {
			method, path = http.MethodPut, target.put
			if sel&7 == 5 {
				method = http.MethodPost
			}
		}
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case 200, 201, 400, 403, 404, 409, 413:
		default:
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var er api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil || er.Code == "" || er.Message == "" {
				t.Fatalf("%s %s %q: malformed error body %q", method, path, body, w.Body)
			}
			want := map[int]string{400: api.CodeInvalidArgument, 403: api.CodePermissionDenied, 404: api.CodeNotFound,
				409: api.CodeConflict, 413: api.CodeInvalidArgument}[w.Code]
			if er.Code != want {
				t.Fatalf("status %d with code %q", w.Code, er.Code)
			}
			b.mu.Lock()
			commits := b.commits
			b.mu.Unlock()
			if commits != 0 {
				t.Fatalf("%s %s %q: failed with %d but committed", method, path, body, w.Code)
			}
		} else if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s %q: invalid JSON response %q", method, path, body, w.Body)
		}
		p := b.snapshot()
		if _, err := model.Build(p); err != nil {
			t.Fatalf("%s %s %q left an invalid policy: %v", method, path, body, err)
		}
		if token == acme && globexObjs(p) != wantGlobex {
			t.Fatalf("%s %s %q as acme changed globex's objects:\n%s\nwas\n%s", method, path, body, globexObjs(p), wantGlobex)
		}
		if token == acme && (!reflect.DeepEqual(p.Accounts, seed.Accounts) || !reflect.DeepEqual(p.Hosts, seed.Hosts)) {
			t.Fatalf("%s %s %q as acme changed accounts or hosts", method, path, body)
		}
	})
}

// fuzzTarget is an endpoint a fuzz test sends bodies to.
type fuzzTarget struct{ method, path string }

// fuzzAccounts is the body of FuzzSecurityGroups and FuzzRouteTables: like
// FuzzDecodeValidate, it sends arbitrary bodies to one of targets (sel
// modulo their number) over seed as acme, globex or an admin (tok modulo
// 3), seeded with bodies. Never a 5xx, a malformed error body, a commit
// on failure or an invalid policy left behind; and neither account
// changes what owned lists as the other's (owner maps VPCs to accounts).
func fuzzAccounts(f *testing.F, seed *model.Policy, targets []fuzzTarget, bodies []string,
	owned func(p *model.Policy, owner map[string]string, account string) []any) {
	b := newMemBackend(seed)
	log := logrus.New()
	log.SetOutput(new(bytes.Buffer))
	h := api.New(b, api.Options{MaxBody: 64 << 10, Log: log})
	tokens := []string{b.mustToken("acme"), b.mustToken("globex"), b.mustToken("")}
	ownedBy := func(p *model.Policy, account string) string {
		owner := map[string]string{}
		for _, v := range p.VPCs {
			owner[v.Name] = v.Account
		}
		return fmt.Sprint(owned(p, owner, account))
	}
	wantAcme, wantGlobex := ownedBy(seed, "acme"), ownedBy(seed, "globex")
	for i, body := range bodies {
		f.Add(uint8(i), uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, sel, tok uint8, body []byte) {
		b.mu.Lock()
		b.p, b.commits = deepCopy(seed), 0
		b.mu.Unlock()
		target := targets[int(sel)%len(targets)]
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
		if token == tokens[0] && ownedBy(p, "globex") != wantGlobex {
			t.Fatalf("%s %s %q: acme changed globex's objects", target.method, target.path, body)
		}
		if token == tokens[1] && ownedBy(p, "acme") != wantAcme {
			t.Fatalf("%s %s %q: globex changed acme's objects", target.method, target.path, body)
		}
	})
}
