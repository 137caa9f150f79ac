package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// writeCA makes a self-signed CA in dir/<name>.pem and returns it with its
// key.
func writeCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "openvpc test CA " + name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	path := filepath.Join(dir, name+".pem")
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	return cert, key, path
}

// writeServerCert makes a certificate for 127.0.0.1 signed by the CA and
// returns the paths of it and its key.
func writeServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "openvpc controller"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	certPath, keyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	must(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	must(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certPath, keyPath
}

// TestTLSAPI runs a file-less controller daemon (embedded store, no hosts)
// serving its API over TLS on loopback TCP, and checks the Go client and
// the CLI with the CA, and that clients without it are refused.
func TestTLSAPI(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, time.Minute)
	dir := t.TempDir()
	ca, caKey, caFile := writeCA(t, dir, "ca")
	_, _, otherCA := writeCA(t, dir, "other-ca")
	certFile, keyFile := writeServerCert(t, dir, ca, caKey)
	tokenFile := filepath.Join(dir, "admin.token")

	// A free port can be taken between finding and binding it: retry.
	var d *daemon
	var server string
	for try := 0; ; try++ {
		ports, err := freePorts(1)
		must(t, err)
		listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
		server = "https://" + listen
		d = startDaemon(t, filepath.Join(dir, "controller.log"), "--data-dir", filepath.Join(dir, "store"),
			"--admin-token-file", tokenFile, "--openflow", "unix:"+filepath.Join(dir, "of.sock"),
			"--listen", listen, "--tls-cert", certFile, "--tls-key", keyFile)
		if waitListening(ctx, d, listen) {
			break
		}
		if try == 3 {
			logTail(t, d.log)
			t.Fatalf("controller daemon did not listen on %s", listen)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, d.log)
		}
	})
	token := readToken(ctx, t, d, tokenFile)

	// The Go client with the CA.
	admin, err := client.New(server, token, caFile)
	must(t, err)
	apiUp(ctx, t, d, admin)
	must(t, admin.Create(ctx, "account", &model.Account{Name: "acme"}))
	must(t, admin.Create(ctx, "vpc", &model.VPC{Name: "tlsvpc", Account: "acme", CIDR: "10.9.0.0/16"}))
	var vpcs []model.VPC
	must(t, admin.List(ctx, "vpc", &vpcs))
	if len(vpcs) != 1 || vpcs[0].Name != "tlsvpc" || vpcs[0].VNI == 0 {
		t.Fatalf("VPCs over TLS: %+v", vpcs)
	}

	// Refused: no CA (the system's roots), another CA, plain HTTP.
	for _, c := range []struct{ name, server, ca string }{
		{"system roots", server, ""},
		{"another CA", server, otherCA},
	} {
		cl, err := client.New(c.server, token, c.ca)
		must(t, err)
		err = cl.List(ctx, "vpc", &vpcs)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("client with %s: got %v, want an unknown-authority error", c.name, err)
		}
	}
	plain, err := client.New("http://"+strings.TrimPrefix(server, "https://"), token, "")
	must(t, err)
	if err := plain.List(ctx, "vpc", &vpcs); err == nil {
		t.Error("plain HTTP to the TLS port succeeded")
	} else {
		t.Logf("plain HTTP to the TLS port: %v", err)
	}
	bad, err := client.New(server, "ovp_not-a-token", caFile)
	must(t, err)
	if err := bad.List(ctx, "vpc", &vpcs); client.StatusOf(err) != 401 {
		t.Errorf("bad token over TLS: %v", err)
	}

	// The CLI (flags before the positional arguments).
	out, err := cli(ctx, dir, "get", "--server", server, "--token", token, "--ca", caFile, "vpc")
	if err != nil || !strings.Contains(out, "tlsvpc") {
		t.Errorf("openvpc get vpc over TLS: %v\n%s", err, out)
	}
	out, err = cli(ctx, dir, "get", "--server", server, "--token", token, "--ca", caFile, "-o", "json", "vpc", "tlsvpc")
	if err != nil || !strings.Contains(out, `"tlsvpc"`) {
		t.Errorf("openvpc get -o json vpc tlsvpc over TLS: %v\n%s", err, out)
	}
	out, err = cli(ctx, dir, "get", "--server", server, "--token", token, "vpc")
	if err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("openvpc get vpc over TLS without --ca: %v\n%s", err, out)
	} else {
		t.Logf("CLI without --ca: %s", strings.TrimSpace(out))
	}
}

// waitListening waits until addr accepts TCP connections; false if the
// daemon exited first (e.g. the port was taken).
func waitListening(ctx context.Context, d *daemon, addr string) bool {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return true
		}
		if d.exited() || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cli runs the openvpc CLI with a clean environment (HOME without a
// config file) and returns its combined output.
func cli(ctx context.Context, home string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
