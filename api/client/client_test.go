package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api/client"
)

// The client is exercised against the real handler in package api's
// tests (TestClient); these cover what needs no API server.

func TestClientNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ server, ca, want string }{
		{"ftp://x", "", "want https://"},
		{"localhost:8080", "", "want https://"},
		{"unix:", "", "empty socket path"},
		{"unix:/x.sock", notPEM, "makes no sense"},
		{"http://127.0.0.1:1", notPEM, "needs an https"},
		{"https://127.0.0.1:1", filepath.Join(dir, "missing.pem"), "no such file"},
		{"https://127.0.0.1:1", notPEM, "no PEM certificate"},
		{"https://u:p@127.0.0.1:1", "", "user info"},
	} {
		if _, err := client.New(tc.server, "t", tc.ca); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q): %v, want %q", tc.server, tc.ca, err, tc.want)
		}
	}
	// A server that is not the API still gives an *Error.
	var gotPath, gotAuth string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAuth = r.URL.EscapedPath(), r.Header.Get("Authorization")
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer ts.Close()
	c, err := client.New(ts.URL+"/", "t", "")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Delete(context.Background(), "vpc", "a/b")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Code != "internal" || ce.Message != "bad gateway" {
		t.Fatalf("%#v", err)
	}
	if gotPath != "/v1/vpcs/a%2Fb" || gotAuth != "Bearer t" {
		t.Fatalf("sent path %q, authorization %q", gotPath, gotAuth)
	}
}

// TestCollection: every kind the CLI offers, and the aliases, resolve.
func TestCollection(t *testing.T) {
	for _, k := range client.Kinds {
		if client.Collection(k) == "" || client.Collection(k+"s") != client.Collection(k) {
			t.Errorf("kind %q does not resolve (singular and plural)", k)
		}
	}
	for alias, want := range map[string]string{
		"igw": "internet-gateways", "internet_gateway": "internet-gateways", "Internet-Gateways": "internet-gateways",
		"pool": "public-ip-pools", "public_ip_pools": "public-ip-pools",
		"eip": "public-ips", "public_ip": "public-ips", "rtb": "route-tables", "pcx": "peerings", "sg": "security-groups",
	} {
		if got := client.Collection(alias); got != want {
			t.Errorf("Collection(%q) = %q, want %q", alias, got, want)
		}
	}
	c, err := client.New("http://127.0.0.1:1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), "nosuch", "x"); err == nil || !strings.Contains(err.Error(), "internet-gateway, public-ip-pool or public-ip") {
		t.Errorf("unknown kind: %v", err)
	}
}
