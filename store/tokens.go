package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// API tokens. A secret is "ovp_" + 32 random bytes in base64url; only its
// SHA-256 is stored, as the key <prefix>tokens/<hex sha256>. A token's id is
// the first 16 hex digits of that hash (unique among tokens, enforced at
// creation), so it can be shown, listed and revoked without the secret.

const (
	secretPrefix = "ovp_"
	secretBytes  = 32
	idLen        = 16
)

// Principal is who a token speaks for.
type Principal struct {
	TokenID string
	Account string // "" for an admin token
	Admin   bool
}

// TokenInfo describes a token (never its secret).
type TokenInfo struct {
	ID          string    `json:"id"`
	Account     string    `json:"account,omitempty"`
	Admin       bool      `json:"admin,omitempty"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
}

type tokenRecord = TokenInfo

func newSecret() (secret, hash string, err error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("store: random token: %w", err)
	}
	secret = secretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret), nil
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// createToken commits a new token, plus extraOps(id), if the comparisons
// extra hold, retrying on the (astronomically unlikely) id collision. It
// returns ok=false if extra failed.
func (s *Store) createToken(ctx context.Context, rec tokenRecord, extra []clientv3.Cmp, extraOps func(id string) []clientv3.Op) (secret string, out tokenRecord, ok bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		var hash string
		secret, hash, err = newSecret()
		if err != nil {
			return "", rec, false, err
		}
		rec.ID = hash[:idLen]
		rec.Created = time.Now().UTC().Truncate(time.Second)
		val, err := json.Marshal(rec)
		if err != nil {
			return "", rec, false, fmt.Errorf("store: encode token: %w", err)
		}
		var ops []clientv3.Op
		if extraOps != nil {
			ops = extraOps(rec.ID)
		}
		idFree := clientv3.Compare(clientv3.CreateRevision(s.prefix+tokenDir+rec.ID), "=", 0).WithPrefix()
		rctx, cancel := s.reqCtx(ctx)
		resp, err := s.cli.Txn(rctx).
			If(append([]clientv3.Cmp{idFree}, extra...)...).
			Then(append([]clientv3.Op{clientv3.OpPut(s.prefix+tokenDir+hash, string(val))}, ops...)...).
			Else(clientv3.OpGet(s.prefix+tokenDir+rec.ID, clientv3.WithPrefix(), clientv3.WithCountOnly())).
			Commit()
		cancel()
		if err != nil {
			return "", rec, false, fmt.Errorf("store: create token: %w", err)
		}
		if resp.Succeeded {
			return secret, rec, true, nil
		}
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return "", rec, false, nil // the id was free: extra failed
		}
	}
	return "", rec, false, errors.New("store: create token: repeated id collisions")
}

// EnsureAdminToken creates the admin token on the cluster's first start (the
// first of concurrent callers wins) and returns its secret, which is shown
// only then. Later calls return created=false. If the admin token is lost,
// delete <prefix>meta/admin-token and call this again.
func (s *Store) EnsureAdminToken(ctx context.Context) (secret string, created bool, err error) {
	marker := s.prefix + adminMarker
	rec := tokenRecord{Admin: true, Description: "admin token created at first start"}
	secret, rec, ok, err := s.createToken(ctx, rec,
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(marker), "=", 0)},
		func(id string) []clientv3.Op { return []clientv3.Op{clientv3.OpPut(marker, id)} })
	if err != nil {
		return "", false, err
	}
	if !ok {
		return "", false, nil
	}
	s.log.WithField("token_id", rec.ID).Info("admin token created")
	return secret, true, nil
}

// CreateToken creates a token for account, which must exist (checked in
// the same transaction). The secret is returned only here.
func (s *Store) CreateToken(ctx context.Context, account, description string) (id, secret string, err error) {
	if account == "" {
		return "", "", fmt.Errorf("store: create token: account is required")
	}
	acct := s.key(KindAccount, account)
	secret, rec, ok, err := s.createToken(ctx, tokenRecord{Account: account, Description: description},
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(acct), ">", 0)}, nil)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", fmt.Errorf("store: create token: account %q: %w", account, ErrNotFound)
	}
	s.log.WithFields(map[string]any{"token_id": rec.ID, "account": account}).Info("token created")
	return rec.ID, secret, nil
}

// Authenticate returns the principal of a token secret, or
// ErrUnauthenticated if it is malformed, unknown, revoked or its account is
// gone.
func (s *Store) Authenticate(ctx context.Context, secret string) (Principal, error) {
	raw, found := strings.CutPrefix(secret, secretPrefix)
	if b, err := base64.RawURLEncoding.DecodeString(raw); !found || err != nil || len(b) != secretBytes {
		return Principal{}, ErrUnauthenticated
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.prefix+tokenDir+hashSecret(secret))
	if err != nil {
		return Principal{}, fmt.Errorf("store: authenticate: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Principal{}, ErrUnauthenticated
	}
	var rec tokenRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return Principal{}, fmt.Errorf("store: authenticate: %s: %w", resp.Kvs[0].Key, err)
	}
	if !rec.Admin {
		if rec.Account == "" {
			return Principal{}, ErrUnauthenticated
		}
		a, err := s.cli.Get(rctx, s.key(KindAccount, rec.Account), clientv3.WithCountOnly())
		if err != nil {
			return Principal{}, fmt.Errorf("store: authenticate: %w", err)
		}
		if a.Count == 0 {
			return Principal{}, ErrUnauthenticated
		}
	}
	return Principal{TokenID: rec.ID, Account: rec.Account, Admin: rec.Admin}, nil
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.prefix+tokenDir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	out := make([]TokenInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var rec tokenRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("store: list tokens: %s: %w", kv.Key, err)
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeToken deletes the token with this id; ErrNotFound if there is none.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	if _, err := hex.DecodeString(id); err != nil || len(id) != idLen || strings.ToLower(id) != id {
		return fmt.Errorf("store: revoke token %q: %w", id, ErrNotFound)
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Delete(rctx, s.prefix+tokenDir+id, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("store: revoke token %q: %w", id, ErrNotFound)
	}
	s.log.WithField("token_id", id).Info("token revoked")
	return nil
}
