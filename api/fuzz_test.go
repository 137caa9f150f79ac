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
