package store

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openvpc/openvpc/model"
)

// Errors callers can test with errors.Is.
var (
	// ErrConflict: concurrent writers kept changing the policy; try later.
	ErrConflict = errors.New("store: too many concurrent changes, try again")
	// ErrNotFound: the named object or token does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrUnauthenticated: the token is unknown, malformed or revoked.
	ErrUnauthenticated = errors.New("store: invalid token")
)

// DefaultPrefix is where the store keeps its keys.
const DefaultPrefix = "/openvpc/v1/"

// Config says how to reach etcd.
type Config struct {
	Endpoints   []string
	TLS         *tls.Config   // nil: plain text (loopback/embedded only)
	DialTimeout time.Duration // default 5 s
	// RequestTimeout bounds each etcd request that the caller's context
	// does not bound more tightly; default 10 s.
	RequestTimeout time.Duration
	Prefix         string // default DefaultPrefix; a trailing "/" is added
	// MaxAttempts bounds how often Update re-runs on a conflict; default 10.
	MaxAttempts int
	Log         logrus.FieldLogger
}

// Store is the durable policy on etcd. It is safe for concurrent use.
type Store struct {
	cli         *clientv3.Client
	prefix      string
	log         logrus.FieldLogger
	reqTimeout  time.Duration
	maxAttempts int
	changed     chan struct{}
	loadedRev   atomic.Int64  // revision of the last Load, where Run starts
	writeTurn   chan struct{} // one Update of this process at a time

	// testHookCommit, if set, runs Update's transaction (by calling commit,
	// or not) and may alter the result, to inject failures.
	testHookCommit func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error)
}

// Object kinds, as in model.FieldError.Kind and the key layout.
const (
	KindAccount = "account"
	KindVPC     = "vpc"
	KindSubnet  = "subnet"
	KindNIC     = "nic"
	KindHost    = "host"
	// KindSecurityGroup is a security group (model.SecurityGroup); the
	// default groups of VPCs are stored like any other, so that their rules
	// can be edited.
	KindSecurityGroup = "security_group"
	// KindRouteTable is a route table (model.RouteTable); a VPC's main
	// table is stored like any other, so that its routes can be edited.
	KindRouteTable = "route_table"
	// KindPeering is a VPC peering (model.Peering).
	KindPeering = "peering"
	// KindInternetGateway is an internet gateway (model.InternetGateway),
	// attached to at most one VPC.
	KindInternetGateway = "internet_gateway"
	// KindPublicIPPool is an admin-defined range of public addresses
	// (model.PublicIPPool).
	KindPublicIPPool = "public_ip_pool"
	// KindPublicIP is a public address allocated from a pool
	// (model.PublicIP; its address pinned once allocated).
	KindPublicIP = "public_ip"
	// KindSettings is the deployment's settings (model.Settings), a
	// singleton stored under the name SettingsName; absent (or empty) means
	// the defaults.
	KindSettings = "settings"
)

// SettingsName is the one name a KindSettings object is stored under.
const SettingsName = "deployment"

var kinds = []string{KindAccount, KindVPC, KindSubnet, KindNIC, KindHost, KindSecurityGroup, KindRouteTable, KindPeering,
	KindInternetGateway, KindPublicIPPool, KindPublicIP, KindSettings}

const (
	genKey        = "meta/generation"
	adminMarker   = "meta/admin-token"
	tokenDir      = "tokens/"
	defaultReqTO  = 10 * time.Second
	defaultDialTO = 5 * time.Second
)

// Open connects to etcd (an external cluster or the embedded one) and checks
// that it answers a quorum read within ctx.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("store: no etcd endpoints")
	}
	s := &Store{
		prefix:      cfg.Prefix,
		log:         orDiscard(cfg.Log).WithField("component", "store"),
		reqTimeout:  cfg.RequestTimeout,
		maxAttempts: cfg.MaxAttempts,
		changed:     make(chan struct{}, 1),
		writeTurn:   make(chan struct{}, 1),
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if !strings.HasSuffix(s.prefix, "/") {
		s.prefix += "/"
	}
	if s.reqTimeout <= 0 {
		s.reqTimeout = defaultReqTO
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 10
	}
	dialTO := cfg.DialTimeout
	if dialTO <= 0 {
		dialTO = defaultDialTO
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		DialTimeout: dialTO,
		Context:     context.WithoutCancel(ctx),
		Logger:      zapToLogrus(s.log.WithField("component", "etcd-client")),
		// Keepalives notice a dead member so requests move to another.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("store: connect to etcd %v: %w", cfg.Endpoints, err)
	}
	s.cli = cli
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if _, err := cli.Get(rctx, s.prefix+genKey); err != nil {
		cli.Close()
		return nil, fmt.Errorf("store: read from etcd %v: %w", cfg.Endpoints, err)
	}
	return s, nil
}

// Close releases the connection.
func (s *Store) Close() error {
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.reqTimeout)
}

func (s *Store) key(kind, name string) string { return s.prefix + kind + "/" + name }

// snapshot is the whole prefix read at one revision.
type snapshot struct {
	rev    int64
	genRev int64  // mod revision of the generation key (0: none yet)
	gen    uint64 // its value
	policy *model.Policy
	values map[string][]byte // object key → stored JSON
	tokens map[string]tokenRecord
}

func (s *Store) read(ctx context.Context) (*snapshot, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: read policy: %w", err)
	}
	sn := &snapshot{rev: resp.Header.Revision, policy: &model.Policy{}, values: map[string][]byte{}, tokens: map[string]tokenRecord{}}
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), s.prefix)
		if rel == genKey {
			sn.genRev = kv.ModRevision
			if sn.gen, _, err = parseGen(kv.Value); err != nil {
				return nil, fmt.Errorf("store: %s: %w", kv.Key, err)
			}
			continue
		}
		if strings.HasPrefix(rel, tokenDir) {
			var t tokenRecord
			if err := json.Unmarshal(kv.Value, &t); err != nil {
				return nil, fmt.Errorf("store: %s: %w", kv.Key, err)
			}
			sn.tokens[string(kv.Key)] = t
			continue
		}
		kind, name, ok := strings.Cut(rel, "/")
		if !ok {
			continue
		}
		if err := decodeObject(sn.policy, kind, name, kv.Value); err != nil {
			if errors.Is(err, errUnknownKind) {
				continue // meta/..., or a kind from a newer version
			}
			return nil, fmt.Errorf("store: %s: %w", kv.Key, err)
		}
		sn.values[string(kv.Key)] = kv.Value
	}
	return sn, nil
}

var errUnknownKind = errors.New("unknown kind")

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // an older binary must not drop a newer field on rewrite
	return dec.Decode(v)
}

func decodeObject(p *model.Policy, kind, name string, data []byte) error {
	var err error
	switch kind {
	case KindAccount:
		p.Accounts, err = decodeInto(p.Accounts, data, name, func(o model.Account) string { return o.Name })
	case KindVPC:
		p.VPCs, err = decodeInto(p.VPCs, data, name, func(o model.VPC) string { return o.Name })
	case KindSubnet:
		p.Subnets, err = decodeInto(p.Subnets, data, name, func(o model.Subnet) string { return o.Name })
	case KindNIC:
		p.NICs, err = decodeInto(p.NICs, data, name, func(o model.NIC) string { return o.Name })
	case KindHost:
		p.Hosts, err = decodeInto(p.Hosts, data, name, func(o model.Host) string { return o.Name })
	case KindSecurityGroup:
		p.SecurityGroups, err = decodeInto(p.SecurityGroups, data, name, func(o model.SecurityGroup) string { return o.Name })
	case KindRouteTable:
		p.RouteTables, err = decodeInto(p.RouteTables, data, name, func(o model.RouteTable) string { return o.Name })
	case KindPeering:
		p.Peerings, err = decodeInto(p.Peerings, data, name, func(o model.Peering) string { return o.Name })
	case KindInternetGateway:
		p.InternetGateways, err = decodeInto(p.InternetGateways, data, name, func(o model.InternetGateway) string { return o.Name })
	case KindPublicIPPool:
		p.PublicIPPools, err = decodeInto(p.PublicIPPools, data, name, func(o model.PublicIPPool) string { return o.Name })
	case KindPublicIP:
		p.PublicIPs, err = decodeInto(p.PublicIPs, data, name, func(o model.PublicIP) string { return o.Name })
	case KindSettings:
		if name != SettingsName {
			return fmt.Errorf("settings must be named %q", SettingsName)
		}
		var st model.Settings
		if err = strictUnmarshal(data, &st); err == nil {
			p.Settings = &st
		}
	default:
		return errUnknownKind
	}
	return err
}

func decodeInto[T any](list []T, data []byte, name string, nameOf func(T) string) ([]T, error) {
	var o T
	if err := strictUnmarshal(data, &o); err != nil {
		return list, err
	}
	if got := nameOf(o); got != name {
		return list, fmt.Errorf("object is named %q", got)
	}
	return append(list, o), nil
}

// encodePolicy returns key → JSON for every object of p.
func (s *Store) encodePolicy(p *model.Policy) (map[string][]byte, error) {
	out := map[string][]byte{}
	add := func(kind, name string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("store: encode %s %q: %w", kind, name, err)
		}
		out[s.key(kind, name)] = data
		return nil
	}
	for _, o := range p.Accounts {
		if err := add(KindAccount, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.VPCs {
		if err := add(KindVPC, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.Subnets {
		if err := add(KindSubnet, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.NICs {
		if err := add(KindNIC, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.Hosts {
		if err := add(KindHost, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.SecurityGroups {
		if err := add(KindSecurityGroup, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.RouteTables {
		if err := add(KindRouteTable, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.Peerings {
		if err := add(KindPeering, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.InternetGateways {
		if err := add(KindInternetGateway, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.PublicIPPools {
		if err := add(KindPublicIPPool, o.Name, o); err != nil {
			return nil, err
		}
	}
	for _, o := range p.PublicIPs {
		if err := add(KindPublicIP, o.Name, o); err != nil {
			return nil, err
		}
	}
	// Empty settings are the defaults: no key.
	if st := p.Settings; st != nil && len(st.Encaps) > 0 {
		if err := add(KindSettings, SettingsName, st); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Policy returns the whole policy and the etcd revision it was read at.
func (s *Store) Policy(ctx context.Context) (*model.Policy, int64, error) {
	sn, err := s.read(ctx)
	if err != nil {
		return nil, 0, err
	}
	return sn.policy, sn.rev, nil
}

// Update applies fn to a copy of the current policy and commits the result
// atomically (one etcd transaction, only the keys that changed). Before the
// commit, default security groups follow their VPCs and accounts
// (model.EnsureDefaultGroups: created with a VPC, or with an account's first
// NIC in a shared VPC, deleted with them), main route tables follow their
// VPCs (model.EnsureMainTables), grants to deleted accounts are dropped,
// public IPs associated with deleted NICs (or removed addresses of NICs)
// are disassociated, NICs without an IP get one (model.AllocateIPs), public
// IPs without an address get the lowest free one of their pool
// (model.AllocatePublicIPs; stored, so it never changes), the result is
// validated (model.Build; its error is returned unchanged: errors.Join of
// *model.FieldError) and the assigned VNIs, MACs and port keys are pinned
// (model.Pin) so they never change afterwards.
//
// If another writer commits in between, fn runs again on the new policy (so
// it must be free of side effects), up to Config.MaxAttempts times; then
// ErrConflict. An error from fn is returned as is. An account that still
// owns VPCs (or internet gateways, or public IPs) cannot be deleted; its
// tokens are deleted with it. Neither can a VPC with an internet gateway
// attached, an attached internet gateway (unless its VPC goes too) or a
// public IP pool with public IPs allocated from it (*model.FieldError on
// the deleted object).
//
// A commit whose outcome is unknown (connection lost, leader change,
// timeout) is resolved from the history of the generation key before fn
// runs again, so a change is never applied twice and a success is never
// reported as a failure; only if that history is gone (compacted) or the
// cluster stays unavailable is the outcome reported as unknown.
//
// Update returns the revision of the commit, or the revision read if nothing
// changed.
func (s *Store) Update(ctx context.Context, fn func(p *model.Policy) error) (int64, error) {
	// Writers of this process take turns: they would only conflict with
	// each other. Optimistic retries remain for writers elsewhere (other
	// controllers, other clients of the cluster).
	select {
	case s.writeTurn <- struct{}{}:
		defer func() { <-s.writeTurn }()
	case <-ctx.Done():
		return 0, fmt.Errorf("store: update: %w", ctx.Err())
	}
	u := &update{fn: fn, nonces: map[string]bool{}}
	conflicts, transient := 0, 0
	for {
		rev, err := s.tryUpdate(ctx, u)
		switch {
		case err == nil:
			return rev, nil
		case errors.Is(err, errConflict):
			conflicts++
		case errors.Is(err, errTransient):
			transient++
		default:
			return 0, err
		}
		if conflicts >= s.maxAttempts || transient >= maxTransient {
			// A last look, in case an earlier attempt did land.
			if len(u.pending) > 0 {
				if sn, err := s.read(ctx); err == nil {
					if rev, ok, err := s.resolve(ctx, u, sn); err != nil || ok {
						return rev, err
					}
				}
			}
			switch {
			case len(u.pending) > 0:
				return 0, fmt.Errorf("store: update: outcome unknown: %w", u.lastErr)
			case transient >= maxTransient:
				return 0, fmt.Errorf("store: update: etcd unavailable: %w", u.lastErr)
			}
			return 0, fmt.Errorf("store: update after %d attempts: %w", conflicts, ErrConflict)
		}
		// Jittered backoff, so that contenders spread out; longer when the
		// cluster is unavailable (e.g. electing a leader).
		d := time.Duration(conflicts) * (2*time.Millisecond + rand.N(10*time.Millisecond))
		if errors.Is(err, errTransient) {
			d = min(100*time.Millisecond<<transient, 2*time.Second)
		}
		s.log.WithError(err).WithFields(logrus.Fields{"conflicts": conflicts, "transient": transient}).Debug("update: retrying")
		if !sleepCtx(ctx, d) {
			if len(u.pending) > 0 {
				return 0, fmt.Errorf("store: update: outcome unknown: %w", ctx.Err())
			}
			return 0, fmt.Errorf("store: update: %w", ctx.Err())
		}
	}
}

const maxTransient = 8 // ~10 s of backoff

var (
	errConflict  = errors.New("conflict")
	errTransient = errors.New("transient")
)

// update is the state of one Update call across attempts.
type update struct {
	fn      func(p *model.Policy) error
	nonces  map[string]bool // commit ids of all our attempts
	pending []attempt       // attempts whose outcome is unknown
	lastErr error
}

type attempt struct {
	readRev, genRev int64
}

func (s *Store) tryUpdate(ctx context.Context, u *update) (int64, error) {
	sn, err := s.read(ctx)
	if err != nil {
		if isTransient(err) && ctx.Err() == nil {
			u.lastErr = err
			return 0, fmt.Errorf("%w: %w", errTransient, err)
		}
		return 0, err
	}
	if rev, ok, err := s.resolve(ctx, u, sn); err != nil || ok {
		return rev, err
	}
	p := sn.policy.Clone()
	if err := u.fn(p); err != nil {
		return 0, err
	}
	// fn may have put the caller's own slices into p (one rule list shared
	// by two groups, say); copy, so pinning never writes into them.
	p = p.Clone()
	// Before Cascade, which deletes an account's default groups: rules
	// naming them must keep the account.
	if err := checkAccountDeletes(sn.policy, p); err != nil {
		return 0, err
	}
	if err := checkGatewayDeletes(sn.policy, p); err != nil {
		return 0, err
	}
	Cascade(sn.policy, p)
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

	want, err := s.encodePolicy(p)
	if err != nil {
		return 0, err
	}
	var ops []clientv3.Op
	var puts, dels int
	for _, k := range sortedKeys(want) {
		if old, ok := sn.values[k]; !ok || !bytes.Equal(old, want[k]) {
			ops = append(ops, clientv3.OpPut(k, string(want[k])))
			puts++
		}
	}
	for _, k := range sortedKeys(sn.values) {
		if _, ok := want[k]; !ok {
			ops = append(ops, clientv3.OpDelete(k))
			dels++
		}
	}
	if len(ops) == 0 {
		return sn.rev, nil
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.prefix+genKey), "=", sn.genRev)}
	// Tokens of deleted accounts go with them. A token created after our
	// read would be missed, so then no token may have changed since.
	accounts := map[string]bool{}
	for _, a := range p.Accounts {
		accounts[a.Name] = true
	}
	var tokDels int
	for _, k := range sortedKeys(sn.tokens) {
		if t := sn.tokens[k]; t.Account != "" && !accounts[t.Account] {
			ops = append(ops, clientv3.OpDelete(k))
			tokDels++
		}
	}
	if len(p.Accounts) < len(sn.policy.Accounts) || tokDels > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.prefix+tokenDir), "<", sn.rev+1).WithPrefix())
	}
	nonce, err := newNonce()
	if err != nil {
		return 0, err
	}
	u.nonces[nonce] = true
	ops = append(ops, clientv3.OpPut(s.prefix+genKey, formatGen(sn.gen+1, nonce)))

	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	commit := func() (*clientv3.TxnResponse, error) { return s.cli.Txn(rctx).If(cmps...).Then(ops...).Commit() }
	var resp *clientv3.TxnResponse
	if s.testHookCommit != nil {
		resp, err = s.testHookCommit(commit)
	} else {
		resp, err = commit()
	}
	if err != nil {
		if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
			return 0, fmt.Errorf("store: commit %d changes: %w (the etcd cluster needs larger --max-txn-ops/--max-request-bytes, or make the change in smaller steps)", len(ops), err)
		}
		if isTransient(err) && ctx.Err() == nil {
			// It may still land: remember it, and look before re-running fn.
			u.pending = append(u.pending, attempt{readRev: sn.rev, genRev: sn.genRev})
			u.lastErr = err
			return 0, fmt.Errorf("%w: %w", errTransient, err)
		}
		if len(u.pending) > 0 || isTransient(err) {
			return 0, fmt.Errorf("store: commit policy: outcome unknown: %w", err)
		}
		return 0, fmt.Errorf("store: commit policy: %w", err)
	}
	if !resp.Succeeded {
		return 0, errConflict
	}
	s.log.WithFields(logrus.Fields{"revision": resp.Header.Revision, "put": puts, "deleted": dels, "tokens_deleted": tokDels}).Info("policy committed")
	return resp.Header.Revision, nil
}

// resolve settles attempts whose outcome was unknown, given a fresh read:
// if the generation key has not moved since such an attempt read it, the
// attempt either never lands or is still in flight (and competes with the
// next one on the same guard, so at most one lands). Otherwise the first
// write of the generation key after the attempt's read is the one commit
// that won the guard: if it carries one of our commit ids, the change is in.
func (s *Store) resolve(ctx context.Context, u *update, sn *snapshot) (int64, bool, error) {
	var still []attempt
	for _, a := range u.pending {
		if sn.genRev == a.genRev {
			still = append(still, a)
			continue
		}
		rev, nonce, err := s.firstGenWriteAfter(ctx, a.readRev)
		if err != nil {
			return 0, false, fmt.Errorf("store: update: outcome unknown (%w) after: %w", err, u.lastErr)
		}
		if u.nonces[nonce] {
			s.log.WithField("revision", rev).Info("policy committed (confirmed after an interrupted request)")
			return rev, true, nil
		}
	}
	u.pending = still
	return 0, false, nil
}

func (s *Store) firstGenWriteAfter(ctx context.Context, rev int64) (int64, string, error) {
	wctx, cancel := s.reqCtx(ctx)
	defer cancel()
	for resp := range s.cli.Watch(clientv3.WithRequireLeader(wctx), s.prefix+genKey, clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return 0, "", err
		}
		if len(resp.Events) > 0 {
			_, nonce, _ := parseGen(resp.Events[0].Kv.Value)
			return resp.Events[0].Kv.ModRevision, nonce, nil
		}
	}
	return 0, "", fmt.Errorf("read generation history: %w", wctx.Err())
}

// The generation value is "<counter> <commit id>".
func formatGen(n uint64, nonce string) string { return strconv.FormatUint(n, 10) + " " + nonce }

func parseGen(v []byte) (uint64, string, error) {
	num, nonce, _ := strings.Cut(string(v), " ")
	n, err := strconv.ParseUint(num, 10, 64)
	return n, nonce, err
}

func newNonce() (string, error) {
	b := make([]byte, 12)
	if _, err := crand.Read(b); err != nil {
		return "", fmt.Errorf("store: random commit id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// isTransient: the request may not have reached a quorum, or its answer was
// lost: connection problems, leader elections, timeouts.
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded
	}
	return false
}

// checkAccountDeletes refuses to delete accounts that still own VPCs, with
// an error on the account rather than on each VPC.
func checkAccountDeletes(old, p *model.Policy) error {
	kept := map[string]bool{}
	for _, a := range p.Accounts {
		kept[a.Name] = true
	}
	var errs []error
	for _, a := range old.Accounts {
		if kept[a.Name] {
			continue
		}
		if users := InUse(p, KindAccount, a.Name); len(users) > 0 {
			errs = append(errs, &model.FieldError{Kind: KindAccount, Name: a.Name, Field: "name",
				Msg: "cannot be deleted: still used by " + strings.Join(users, ", ")})
		}
	}
	return errors.Join(errs...)
}

// checkGatewayDeletes refuses, with an error on the deleted object, to
// delete a VPC that an internet gateway is still attached to, an attached
// internet gateway whose VPC stays, and a public IP pool that public IPs
// are still allocated from.
func checkGatewayDeletes(old, p *model.Policy) error {
	vpcs := make(map[string]bool, len(p.VPCs))
	for _, v := range p.VPCs {
		vpcs[v.Name] = true
	}
	gateways := make(map[string]bool, len(p.InternetGateways))
	for _, g := range p.InternetGateways {
		gateways[g.Name] = true
	}
	pools := make(map[string]bool, len(p.PublicIPPools))
	for _, pl := range p.PublicIPPools {
		pools[pl.Name] = true
	}
	var errs []error
	for _, v := range old.VPCs {
		if vpcs[v.Name] {
			continue
		}
		for _, g := range p.InternetGateways {
			if g.VPC == v.Name {
				errs = append(errs, &model.FieldError{Kind: KindVPC, Name: v.Name, Field: "name",
					Msg: fmt.Sprintf("cannot be deleted: internet gateway %q is attached to it (detach internet gateway %q first)", g.Name, g.Name)})
			}
		}
	}
	for _, g := range old.InternetGateways {
		if !gateways[g.Name] && g.VPC != "" && vpcs[g.VPC] {
			errs = append(errs, &model.FieldError{Kind: KindInternetGateway, Name: g.Name, Field: "vpc",
				Msg: fmt.Sprintf("cannot be deleted while attached to vpc %q (detach it first)", g.VPC)})
		}
	}
	for _, pl := range old.PublicIPPools {
		if pools[pl.Name] {
			continue
		}
		if users := InUse(p, KindPublicIPPool, pl.Name); len(users) > 0 {
			errs = append(errs, &model.FieldError{Kind: KindPublicIPPool, Name: pl.Name, Field: "name",
				Msg: "cannot be deleted: public IPs are allocated from it (release them first): " + strings.Join(users, ", ")})
		}
	}
	return errors.Join(errs...)
}

// InUse lists the objects of p that refer to the object kind/name, as
// "kind name" (e.g. "nic a"), sorted: VPCs of an account (and, in shared
// VPCs of other accounts, its NICs, its non-default security groups and
// rules of other groups naming its groups), subnets, non-default security
// groups and route tables other than the main one of a VPC, NICs of a
// subnet or placed on a host, NICs in a security group and other groups
// whose rules name it as their peer, subnets associated with a route table
// (by name, or with a main table by naming none), the peerings of a VPC
// (either end), and groups whose rules name groups across a peering (of
// one end's VPC naming a group of the other's), the internet gateway
// attached to a VPC, the internet gateways and public IPs of an account,
// and the public IPs allocated from a pool. Default groups and main
// tables never keep their VPC or account alive: they are deleted with them
// (Cascade). NICs have no users: a route whose target NIC is deleted stays,
// as a blackhole (as in AWS), and public IPs associated with it are
// disassociated (Cascade). Internet gateways have no users either: routes
// to a deleted (or detached) gateway turn blackhole.
func InUse(p *model.Policy, kind, name string) []string {
	var out []string
	owner := map[string]string{} // vpc → account
	for _, v := range p.VPCs {
		owner[v.Name] = v.Account
	}
	vpcOfSubnet := map[string]string{}
	for _, s := range p.Subnets {
		vpcOfSubnet[s.Name] = s.VPC
	}
	groupOwner := func(g *model.SecurityGroup) string {
		if g.Account != "" {
			return g.Account
		}
		return owner[g.VPC]
	}
	switch kind {
	case KindAccount:
		for _, v := range p.VPCs {
			if v.Account == name {
				out = append(out, KindVPC+" "+v.Name)
			}
		}
		// In other accounts' (shared) VPCs; its own VPCs are listed above.
		for _, n := range p.NICs {
			if n.Account == name && owner[vpcOfSubnet[n.Subnet]] != name {
				out = append(out, KindNIC+" "+n.Name)
			}
		}
		mine := map[string]bool{}
		for i := range p.SecurityGroups {
			g := &p.SecurityGroups[i]
			if groupOwner(g) != name || owner[g.VPC] == name {
				continue
			}
			mine[g.Name] = true
			if !g.Default {
				out = append(out, KindSecurityGroup+" "+g.Name)
			}
		}
		for i := range p.SecurityGroups {
			g := &p.SecurityGroups[i]
			if !mine[g.Name] && owner[g.VPC] != name && g.NamesPeer(func(peer string) bool { return mine[peer] }) {
				out = append(out, KindSecurityGroup+" "+g.Name)
			}
		}
		for _, g := range p.InternetGateways {
			if g.Account == name {
				out = append(out, KindInternetGateway+" "+g.Name)
			}
		}
		for _, x := range p.PublicIPs {
			if x.Account == name {
				out = append(out, KindPublicIP+" "+x.Name)
			}
		}
	case KindPublicIPPool:
		for _, x := range p.PublicIPs {
			if x.Pool == name {
				out = append(out, KindPublicIP+" "+x.Name)
			}
		}
	case KindVPC:
		for _, s := range p.Subnets {
			if s.VPC == name {
				out = append(out, KindSubnet+" "+s.Name)
			}
		}
		for _, g := range p.SecurityGroups {
			if g.VPC == name && !g.Default {
				out = append(out, KindSecurityGroup+" "+g.Name)
			}
		}
		for _, t := range p.RouteTables {
			if t.VPC == name && !t.Main {
				out = append(out, KindRouteTable+" "+t.Name)
			}
		}
		for _, x := range p.Peerings {
			if x.VPC == name || x.PeerVPC == name {
				out = append(out, KindPeering+" "+x.Name)
			}
		}
		for _, g := range p.InternetGateways {
			if g.VPC == name {
				out = append(out, KindInternetGateway+" "+g.Name)
			}
		}
	case KindPeering:
		for _, g := range p.GroupsAcrossPeering(name) {
			out = append(out, KindSecurityGroup+" "+g)
		}
	case KindRouteTable:
		for _, s := range p.Subnets {
			if s.RouteTable == name || (s.RouteTable == "" && model.MainTableName(s.VPC) == name) {
				out = append(out, KindSubnet+" "+s.Name)
			}
		}
	case KindSubnet:
		for _, n := range p.NICs {
			if n.Subnet == name {
				out = append(out, KindNIC+" "+n.Name)
			}
		}
	case KindHost:
		for _, n := range p.NICs {
			if n.Host == name {
				out = append(out, KindNIC+" "+n.Name)
			}
		}
	case KindSecurityGroup:
		var sg *model.SecurityGroup
		for i := range p.SecurityGroups {
			if p.SecurityGroups[i].Name == name {
				sg = &p.SecurityGroups[i]
			}
		}
		for _, n := range p.NICs {
			member := slices.Contains(n.SecurityGroups, name)
			if len(n.SecurityGroups) == 0 && sg != nil && sg.Default {
				// No groups: the NIC is in its account's default group.
				vpc := vpcOfSubnet[n.Subnet]
				member = model.DefaultGroupName(vpc, owner[vpc], cmp.Or(n.Account, owner[vpc])) == name
			}
			if member {
				out = append(out, KindNIC+" "+n.Name)
			}
		}
		for i := range p.SecurityGroups {
			g := &p.SecurityGroups[i]
			if g.Name != name && g.NamesPeer(func(peer string) bool { return peer == name }) {
				out = append(out, KindSecurityGroup+" "+g.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
