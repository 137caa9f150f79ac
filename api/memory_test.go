package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/model"
)

// memBackend is an in-memory api.Backend with the store's semantics:
// Update runs fn on a deep copy, then AllocateIPs, Build (its error
// returned unchanged) and Pin, and commits only if all succeed.
type memBackend struct {
	mu      sync.Mutex
	p       *model.Policy
	rev     int64
	tokens  map[string]memToken // secret → token
	commits int                 // committed updates
	// conflicts makes the next n Updates run fn once more, on a fresh
	// copy, as the store does when its transaction loses a race.
	conflicts int
	giveUp    bool // after those conflicts, fail with api.ErrConflict
	// failUpdate, if set, is returned by Update (a broken store).
	failUpdate error
}

type memToken struct {
	info   api.TokenInfo
	secret string
}

var _ api.Backend = (*memBackend)(nil)

func newMemBackend(p *model.Policy) *memBackend {
	if p == nil {
		p = &model.Policy{}
	}
	return &memBackend{p: deepCopy(p), rev: 1, tokens: map[string]memToken{}}
}

func deepCopy(p *model.Policy) *model.Policy { return p.Clone() }

func (m *memBackend) Policy(ctx context.Context) (*model.Policy, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deepCopy(m.p), m.rev, nil
}

func (m *memBackend) snapshot() *model.Policy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deepCopy(m.p)
}

func (m *memBackend) Update(ctx context.Context, fn func(p *model.Policy) error) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failUpdate != nil {
		return 0, m.failUpdate
	}
	for {
		p := deepCopy(m.p)
		if err := fn(p); err != nil {
			return 0, fmt.Errorf("update: %w", err)
		}
		if m.conflicts > 0 {
			m.conflicts--
			if m.conflicts == 0 && m.giveUp {
				return 0, fmt.Errorf("update after retries: %w", api.ErrConflict)
			}
			continue
		}
		model.EnsureDefaultGroups(p) // as store.Cascade
		model.EnsureMainTables(p)
		if err := model.AllocateIPs(p); err != nil {
			return 0, err
		}
		if err := model.AllocatePublicIPs(p); err != nil {
			return 0, err
		}
		n, err := model.Build(p)
		if err != nil {
			return 0, err
		}
		model.Pin(p, n)
		for s, t := range m.tokens { // tokens go with their account
			if !t.info.Admin && n.Accounts[t.info.Account] == nil {
				delete(m.tokens, s)
			}
		}
		m.p = p
		m.rev++
		m.commits++
		return m.rev, nil
	}
}

func (m *memBackend) Authenticate(ctx context.Context, secret string) (api.Principal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[secret]
	if !ok {
		return api.Principal{}, fmt.Errorf("token: %w", api.ErrUnauthenticated)
	}
	return api.Principal{TokenID: t.info.ID, Account: t.info.Account, Admin: t.info.Admin}, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (m *memBackend) CreateToken(ctx context.Context, account, description string) (string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, secret := "tok-"+randHex(4), randHex(16)
	m.tokens[secret] = memToken{secret: secret, info: api.TokenInfo{ID: id, Account: account, Description: description,
		Admin: account == "", Created: time.Now().UTC().Truncate(time.Second)}}
	return id, secret, nil
}

func (m *memBackend) ListTokens(ctx context.Context) ([]api.TokenInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []api.TokenInfo
	for _, t := range m.tokens {
		out = append(out, t.info)
	}
	return out, nil
}

func (m *memBackend) RevokeToken(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s, t := range m.tokens {
		if t.info.ID == id {
			delete(m.tokens, s)
			return nil
		}
	}
	return fmt.Errorf("token %q: %w", id, api.ErrNotFound)
}

// mustToken creates a token directly in the backend.
func (m *memBackend) mustToken(account string) string {
	_, secret, err := m.CreateToken(context.Background(), account, "test")
	if err != nil {
		panic(err)
	}
	return secret
}

var errBroken = errors.New("etcd: connection refused")
