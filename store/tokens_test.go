package store

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openvpc/openvpc/model"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 30*time.Second)

	// Concurrent first starts: exactly one creates the admin token.
	const starters = 5
	var wg sync.WaitGroup
	secrets := make([]string, starters)
	created := make([]bool, starters)
	errs := make([]error, starters)
	for i := 0; i < starters; i++ {
		st := openStore(t, e.Endpoints())
		wg.Add(1)
		go func() {
			defer wg.Done()
			secrets[i], created[i], errs[i] = st.EnsureAdminToken(ctx)
		}()
	}
	wg.Wait()
	var admin string
	for i := range created {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if created[i] {
			if admin != "" {
				t.Fatal("two admin tokens created")
			}
			admin = secrets[i]
		} else if secrets[i] != "" {
			t.Fatal("secret returned without creating a token")
		}
	}
	if !strings.HasPrefix(admin, "ovp_") || len(admin) != 4+43 {
		t.Fatalf("admin secret %q", admin)
	}
	if sec, created, err := s.EnsureAdminToken(ctx); err != nil || created || sec != "" {
		t.Fatalf("second EnsureAdminToken: %q %v %v", sec, created, err)
	}
	p, err := s.Authenticate(ctx, admin)
	if err != nil || !p.Admin || p.Account != "" || p.TokenID == "" {
		t.Fatalf("admin: %+v, %v", p, err)
	}

	// Tokens for accounts.
	if _, _, err := s.CreateToken(ctx, "acme", "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token for a missing account: %v", err)
	}
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	id, secret, err := s.CreateToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	_, betaSecret, err := s.CreateToken(ctx, "beta", "beta's")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(ctx, secret); err != nil || p != (Principal{TokenID: id, Account: "acme"}) {
		t.Fatalf("acme token: %+v, %v", p, err)
	}
	bad, _, _ := newSecret()
	for _, sec := range []string{bad, "", "ovp_", "ovp_short", "xyz_" + admin[4:], admin + "x", strings.ToUpper(admin)} {
		if _, err := s.Authenticate(ctx, sec); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q): %v", sec, err)
		}
	}

	// Listing shows no secrets, and nothing stored contains one.
	list, err := s.ListTokens(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListTokens: %+v, %v", list, err)
	}
	if !slices.ContainsFunc(list, func(ti TokenInfo) bool {
		return ti.ID == id && ti.Account == "acme" && ti.Description == "ci" && !ti.Admin
	}) {
		t.Fatalf("ListTokens misses %s: %+v", id, list)
	}
	all, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all.Kvs {
		for _, sec := range []string{admin, secret, betaSecret} {
			if strings.Contains(string(kv.Key)+string(kv.Value), sec[4:]) {
				t.Fatalf("secret stored in %s", kv.Key)
			}
		}
	}

	// Revocation.
	if err := s.RevokeToken(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := s.RevokeToken(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if err := s.RevokeToken(ctx, "../../x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke of a bad id: %v", err)
	}

	// An account's tokens go with it.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.Accounts = slices.DeleteFunc(p.Accounts, func(a model.Account) bool { return a.Name == "beta" })
		p.VPCs = slices.DeleteFunc(p.VPCs, func(v model.VPC) bool { return v.Account == "beta" })
		p.Subnets = slices.DeleteFunc(p.Subnets, func(s model.Subnet) bool { return s.VPC == "beta-vpc" })
		p.NICs = slices.DeleteFunc(p.NICs, func(n model.NIC) bool { return n.Subnet == "beta-app" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, betaSecret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token of a deleted account: %v", err)
	}
	if list, _ := s.ListTokens(ctx); len(list) != 1 || !list[0].Admin {
		t.Fatalf("tokens left: %+v", list)
	}
	if _, err := s.Authenticate(ctx, admin); err != nil {
		t.Fatal(err)
	}
}
