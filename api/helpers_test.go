package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

// seedYAML: two accounts with one VPC, subnet and NIC each, and two hosts.
const seedYAML = `
accounts: [{name: acme}, {name: globex}]
hosts:
  - {name: h1, underlay_ip: 172.31.0.11}
  - {name: h2, underlay_ip: 172.31.0.12}
vpcs:
  - {name: acme-vpc, account: acme, cidr: 10.0.0.0/16}
  - {name: globex-vpc, account: globex, cidr: 10.0.0.0/16}
subnets:
  - {name: acme-web, vpc: acme-vpc, cidr: 10.0.1.0/24}
  - {name: globex-web, vpc: globex-vpc, cidr: 10.0.1.0/24}
nics:
  - {name: web1, subnet: acme-web, host: h1, ip: 10.0.1.10}
  - {name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}
`

// seedPolicy returns the seed, validated and pinned as the store keeps it.
func seedPolicy(t testing.TB) *model.Policy {
	t.Helper()
	p, err := model.ParseYAML([]byte(seedYAML))
	if err != nil {
		t.Fatal(err)
	}
	model.EnsureDefaultGroups(p)
	model.EnsureMainTables(p)
	n, err := model.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	model.Pin(p, n)
	return p
}

type env struct {
	t                   testing.TB
	b                   *memBackend
	h                   http.Handler
	admin, acme, globex string // token secrets
	log                 *logrus.Logger
	logBuf              *strings.Builder
	lastHeader          http.Header
}

func newEnv(t testing.TB) *env {
	return newEnvOpts(t, 0)
}

func newEnvOpts(t testing.TB, maxBody int64) *env {
	t.Helper()
	e := &env{t: t, b: newMemBackend(seedPolicy(t)), logBuf: &strings.Builder{}}
	e.log = logrus.New()
	e.log.SetOutput(e.logBuf)
	e.log.SetLevel(logrus.DebugLevel)
	e.h = api.New(e.b, api.Options{MaxBody: maxBody, Log: e.log})
	e.admin = e.b.mustToken("")
	e.acme = e.b.mustToken("acme")
	e.globex = e.b.mustToken("globex")
	return e
}

// do sends a request; body is a string (sent as is) or any JSON value.
func (e *env) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = strings.NewReader(string(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = strings.NewReader(string(data))
	}
	r := httptest.NewRequest(method, path, rd)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	e.lastHeader = w.Header()
	return w.Code, w.Body.Bytes()
}

// want sends a request, checks the status and decodes the body into out.
func (e *env) want(status int, method, path, token string, body, out any) []byte {
	e.t.Helper()
	code, data := e.do(method, path, token, body)
	if code != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return data
}

// wantErr sends a request and checks the status, code and (if not "")
// field of the error, and that the message contains msg.
func (e *env) wantErr(status int, code, field, msg, method, path, token string, body any) api.Error {
	e.t.Helper()
	var er api.Error
	data := e.want(status, method, path, token, body, &er)
	if er.Code != code {
		e.t.Errorf("%s %s: code %q, want %q; body %s", method, path, er.Code, code, data)
	}
	if field != "" && er.Field != field {
		e.t.Errorf("%s %s: field %q, want %q; body %s", method, path, er.Field, field, data)
	}
	if !strings.Contains(er.Message, msg) {
		e.t.Errorf("%s %s: message %q does not contain %q", method, path, er.Message, msg)
	}
	return er
}

func (e *env) nic(name string) model.NIC {
	e.t.Helper()
	for _, n := range e.b.snapshot().NICs {
		if n.Name == name {
			return n
		}
	}
	e.t.Fatalf("nic %q not in the backend", name)
	return model.NIC{}
}

func (e *env) commits() int {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	return e.b.commits
}

// checkValid asserts the backend's policy still builds.
func (e *env) checkValid() {
	e.t.Helper()
	if _, err := model.Build(e.b.snapshot()); err != nil {
		e.t.Fatalf("backend policy is invalid: %v", err)
	}
}

var bg = context.Background()
