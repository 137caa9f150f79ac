package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/openvpc/openvpc/model"
)

type member struct {
	etcd *embed.Etcd
	once sync.Once
}

// kill stops the member abruptly: no leadership hand-over, no goodbye.
func (m *member) kill() {
	m.once.Do(func() {
		m.etcd.Server.HardStop()
		m.etcd.Close()
	})
}

// startCluster runs an n-member etcd cluster in this process, on loopback.
func startCluster(t *testing.T, n int) ([]*member, []string) {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	for try := 0; ; try++ {
		ports, err := freePorts(2 * n)
		if err != nil {
			t.Fatal(err)
		}
		var initial []string
		for i := 0; i < n; i++ {
			initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
		}
		token := fmt.Sprintf("test-%d", time.Now().UnixNano())
		var members []*member
		var endpoints []string
		var startErr error
		for i := 0; i < n; i++ {
			cfg, err := memberConfig(memberSpec{
				Name:           fmt.Sprintf("m%d", i),
				Dir:            filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i)),
				ClientURL:      fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
				PeerURL:        fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
				InitialCluster: strings.Join(initial, ","),
				ClusterToken:   token,
			}, testLog())
			if err != nil {
				t.Fatal(err)
			}
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				startErr = err
				break
			}
			m := &member{etcd: e}
			members = append(members, m)
			t.Cleanup(m.kill)
			endpoints = append(endpoints, cfg.ListenClientUrls[0].String())
		}
		if startErr != nil {
			for _, m := range members {
				m.kill()
			}
			if isAddrInUse(startErr) && try < 3 {
				continue
			}
			t.Fatal(startErr)
		}
		for _, m := range members {
			select {
			case <-m.etcd.Server.ReadyNotify():
			case err := <-m.etcd.Err():
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal("cluster did not become ready")
			}
		}
		return members, endpoints
	}
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
	var leader *member
	for _, m := range members {
		if m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			leader = m
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	killed := time.Now()
	leader.kill()
	t.Logf("killed leader %s in %v", leader.etcd.Config().Name, time.Since(killed))

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
