package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

// startCluster runs an n-member etcd cluster in this process, on loopback.
func startCluster(t *testing.T, n int) ([]*Embedded, []string) {
	t.Helper()
	var dirs []string
	for i := 0; i < n; i++ {
		dirs = append(dirs, filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i)))
	}
	members, err := StartCluster(testCtx(t, 60*time.Second), dirs, testLog())
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, m := range members {
		t.Cleanup(m.Kill)
		endpoints = append(endpoints, m.Endpoints()...)
	}
	return members, endpoints
}

func TestExternalCluster(t *testing.T) {
	t.Parallel()
	members, endpoints := startCluster(t, 3)
	s := openStore(t, endpoints)
	ctx := testCtx(t, 60*time.Second)
	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EnsureAdminToken(ctx); err != nil {
		t.Fatal(err)
	}

	// Kill the leader, the worst case: the cluster has to elect another.
	var leader *Embedded
	for _, m := range members {
		if m.IsLeader() {
			leader = m
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	killed := time.Now()
	leader.Kill()
	t.Logf("killed leader %s in %v", leader.Endpoints()[0], time.Since(killed))

	// Writes and reads go on. Each Update appends unconditionally, so a
	// change applied twice (a retried commit that had landed) would fail
	// validation with a duplicate name.
	const writes = 10
	for i := 0; i < writes; i++ {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := s.Update(wctx, func(p *model.Policy) error {
			p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("after%d", i), Subnet: "acme-web"})
			return nil
		})
		cancel()
		if err != nil {
			t.Fatalf("write %d after the kill: %v", i, err)
		}
		p, _ := mustPolicy(t, s)
		if nic(p, fmt.Sprintf("after%d", i)) == nil {
			t.Fatalf("write %d not visible", i)
		}
	}
	t.Logf("%d writes within %v of the kill", writes, time.Since(killed))
	p, _ := mustPolicy(t, s)
	if _, err := model.Build(p); err != nil {
		t.Fatal(err)
	}
	if len(p.NICs) != len(basePolicy().NICs)+writes {
		t.Fatalf("%d NICs, want %d", len(p.NICs), len(basePolicy().NICs)+writes)
	}
	if list, err := s.ListTokens(ctx); err != nil || len(list) != 1 {
		t.Fatalf("tokens: %v, %v", list, err)
	}
}
