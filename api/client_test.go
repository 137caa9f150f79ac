package api_test

import (
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// TestClient drives the API through the Go client over a unix socket,
// loopback TCP and loopback TLS.
func TestClient(t *testing.T) {
	e := newEnv(t)

	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	us := &http.Server{Handler: e.h}
	go us.Serve(ln)
	t.Cleanup(func() { us.Close() })

	ts := httptest.NewServer(e.h) // 127.0.0.1
	t.Cleanup(ts.Close)
	tls := httptest.NewTLSServer(e.h)
	t.Cleanup(tls.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, server, ca string }{
		{"unix", "unix:" + sock, ""},
		{"http", ts.URL, ""},
		{"https", tls.URL, caFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.b.mu.Lock()
			e.b.p = seedPolicy(t)
			e.b.mu.Unlock()
			c, err := client.New(tc.server, e.acme, tc.ca)
			if err != nil {
				t.Fatal(err)
			}
			adm, err := client.New(tc.server, e.admin, tc.ca)
			if err != nil {
				t.Fatal(err)
			}
			var vpcs []model.VPC
			if err := c.List(bg, "vpcs", &vpcs); err != nil || len(vpcs) != 1 || vpcs[0].Name != "acme-vpc" {
				t.Fatalf("List: %v %+v", err, vpcs)
			}
			n := model.NIC{Name: "c1", Subnet: "acme-web"}
			if err := c.Create(bg, "nic", &n); err != nil || n.IP != "10.0.1.4" || n.MAC == "" || n.PortKey == 0 {
				t.Fatalf("Create: %v %+v", err, n)
			}
			n.Host = "h2"
			if err := c.Update(bg, "nics", "c1", &n); err != nil || n.Host != "h2" {
				t.Fatalf("Update: %v %+v", err, n)
			}
			var got model.NIC
			if err := c.Get(bg, "nic", "c1", &got); err != nil || got.Host != "h2" {
				t.Fatalf("Get: %v %+v", err, got)
			}
			if nn, err := c.AddSecondaryIP(bg, "c1", "10.0.1.40"); err != nil || len(nn.SecondaryIPs) != 1 {
				t.Fatalf("AddSecondaryIP: %v %+v", err, nn)
			}
			if nn, err := c.RemoveSecondaryIP(bg, "c1", "10.0.1.40"); err != nil || len(nn.SecondaryIPs) != 0 {
				t.Fatalf("RemoveSecondaryIP: %v %+v", err, nn)
			}

			// Errors carry status, code, message and field.
			err = c.Create(bg, "subnets", model.Subnet{Name: "s", VPC: "globex-vpc", CIDR: "10.0.5.0/24"})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_argument" || ce.Field != "vpc" || !strings.Contains(ce.Message, "does not exist") {
				t.Fatalf("cross-account reference: %#v", err)
			}
			if err := c.Delete(bg, "subnet", "acme-web"); client.StatusOf(err) != 409 || !strings.Contains(err.Error(), `nic "c1", nic "web1"`) {
				t.Fatalf("Delete in use: %v", err)
			}
			if err := c.Get(bg, "vpc", "globex-vpc", &got); client.StatusOf(err) != 404 {
				t.Fatalf("Get other account's: %v", err)
			}
			if err := c.List(bg, "hosts", &[]model.Host{}); client.StatusOf(err) != 403 {
				t.Fatalf("List hosts as account: %v", err)
			}
			if err := c.List(bg, "widgets", &[]model.Host{}); err == nil || client.StatusOf(err) != 0 {
				t.Fatalf("unknown kind: %v", err)
			}
			bad, _ := client.New(tc.server, "nope", tc.ca)
			if err := bad.List(bg, "vpcs", &vpcs); client.StatusOf(err) != 401 {
				t.Fatalf("bad token: %v", err)
			}
			// Raw JSON objects pass through.
			if err := c.Create(bg, "vpc", []byte(`{"name": "raw", "cidr": "10.3.0.0/16"}`)); err != nil {
				t.Fatalf("Create from raw JSON: %v", err)
			}

			// Apply, dry run and export.
			doc := []byte("vpcs: [{name: shop, cidr: 10.20.0.0/16}]\nsubnets: [{name: shop-web, vpc: shop, cidr: 10.20.1.0/24}]\n")
			ch, err := c.Apply(bg, doc, true)
			if err != nil || !ch.DryRun || len(ch.Changes) != 2 || ch.Changes[0].Op != "create" {
				t.Fatalf("Apply dry run: %v %+v", err, ch)
			}
			if ch, err = c.Apply(bg, doc, false); err != nil || ch.DryRun || ch.Revision == 0 {
				t.Fatalf("Apply: %v %+v", err, ch)
			}
			if ch, err = c.Apply(bg, []byte(`{"vpcs": [{"name": "shop", "cidr": "10.20.0.0/16"}]}`), false); err != nil || ch.Changes[0].Op != "unchanged" {
				t.Fatalf("Apply JSON: %v %+v", err, ch)
			}
			out, err := c.Export(bg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := model.ParseYAML(out)
			if err != nil || len(p.VPCs) != 3 || len(p.NICs) != 2 || strings.Contains(string(out), "globex") {
				t.Fatalf("Export: %v\n%s", err, out)
			}

			// Tokens.
			tok, err := adm.CreateToken(bg, client.TokenRequest{Account: "globex", Description: "x"})
			if err != nil || tok.Secret == "" {
				t.Fatalf("CreateToken: %v", err)
			}
			if _, err := c.CreateToken(bg, client.TokenRequest{Account: "acme"}); client.StatusOf(err) != 403 {
				t.Fatalf("CreateToken as account: %v", err)
			}
			toks, err := adm.ListTokens(bg)
			if err != nil || len(toks) < 4 {
				t.Fatalf("ListTokens: %v %d", err, len(toks))
			}
			if err := adm.RevokeToken(bg, tok.ID); err != nil {
				t.Fatal(err)
			}
			if err := adm.RevokeToken(bg, tok.ID); client.StatusOf(err) != 404 {
				t.Fatalf("second revoke: %v", err)
			}
			if err := c.Delete(bg, "nic", "c1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClientSecurityGroups drives the security group verbs through the Go
// client.
func TestClientSecurityGroups(t *testing.T) {
	e := sharedEnv(t)
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
	// Generic CRUD by any spelling of the kind.
	for _, kind := range []string{"security-group", "security_group", "security-groups", "sg"} {
		var g model.SecurityGroup
		if err := acme.Get(bg, kind, "a-web", &g); err != nil || g.Name != "a-web" {
			t.Fatalf("Get(%s): %v %+v", kind, err, g)
		}
	}
	g := model.SecurityGroup{Name: "a-db", VPC: "pub"}
	if err := acme.Create(bg, "security-group", &g); err != nil || g.Account != "acme" || len(g.Egress) != 1 {
		t.Fatalf("Create: %v %+v", err, g)
	}
	var gs []model.SecurityGroup
	if err := globex.List(bg, "security-groups", &gs); err != nil || len(gs) != 3 {
		t.Fatalf("List: %v %+v", err, gs)
	}

	icmp := 8
	sg, err := acme.AuthorizeIngress(bg, "a-db", model.Rule{Protocol: "icmp", ICMPType: &icmp, CIDR: "10.0.0.0/8"})
	if err != nil || len(sg.Ingress) != 1 || sg.Ingress[0].ID == 0 {
		t.Fatalf("AuthorizeIngress: %v %+v", err, sg)
	}
	id := sg.Ingress[0].ID
	if _, err := acme.AuthorizeIngress(bg, "a-db", model.Rule{Protocol: "icmp", ICMPType: &icmp, CIDR: "10.0.0.0/8"}); client.StatusOf(err) != 409 {
		t.Fatalf("duplicate: %v", err)
	}
	if sg, err = acme.AuthorizeEgress(bg, "a-db", model.Rule{Protocol: "tcp", Ports: "5432", Group: "a-web"}); err != nil || len(sg.Egress) != 2 {
		t.Fatalf("AuthorizeEgress: %v %+v", err, sg)
	}
	if sg, err = acme.RevokeEgress(bg, "a-db", model.Rule{Protocol: "tcp", Ports: "5432", Group: "a-web"}); err != nil || len(sg.Egress) != 1 {
		t.Fatalf("RevokeEgress: %v %+v", err, sg)
	}
	if sg, err = acme.RevokeIngress(bg, "a-db", model.Rule{ID: id}); err != nil || len(sg.Ingress) != 0 {
		t.Fatalf("RevokeIngress by id: %v %+v", err, sg)
	}
	var ce *client.Error
	_, err = globex.AuthorizeIngress(bg, "g-app", model.Rule{Protocol: "all", Group: "a-db"})
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Field != "group" || !strings.Contains(ce.Message, "not granted") {
		t.Fatalf("ungranted peer: %#v", err)
	}
	if sg, err = acme.Grant(bg, "a-db", "globex"); err != nil || len(sg.Grants) != 1 {
		t.Fatalf("Grant: %v %+v", err, sg)
	}
	if _, err = globex.AuthorizeIngress(bg, "g-app", model.Rule{Protocol: "all", Group: "a-db"}); err != nil {
		t.Fatalf("granted peer: %v", err)
	}
	if _, err := globex.Grant(bg, "a-db", "globex"); client.StatusOf(err) != 404 {
		t.Fatalf("Grant of another account's group: %v", err)
	}
	if sg, err = acme.RevokeGrant(bg, "a-db", "globex"); err != nil || len(sg.Grants) != 0 {
		t.Fatalf("RevokeGrant: %v %+v", err, sg)
	}
	n, err := globex.SetNICGroups(bg, "g1", []string{"g-app", "pub-globex-default"})
	if err != nil || len(n.SecurityGroups) != 2 {
		t.Fatalf("SetNICGroups: %v %+v", err, n)
	}
	if n, err = globex.SetNICGroups(bg, "g1", nil); err != nil || n.SecurityGroups != nil {
		t.Fatalf("SetNICGroups(nil): %v %+v", err, n)
	}
	if err := acme.Delete(bg, "security-group", "pub-default"); client.StatusOf(err) != 400 {
		t.Fatalf("Delete default group: %v", err)
	}
	if err := acme.Delete(bg, "sg", "a-db"); client.StatusOf(err) != 409 {
		t.Fatalf("Delete a group globex's rule names: %v", err)
	}
}
