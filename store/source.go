package store

import (
	"context"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openvpc/openvpc/model"
)

// The Source side: *Store satisfies controller.Source.

// Load returns the current policy. Run watches from the revision of the last
// Load, so no change between the two is missed.
func (s *Store) Load(ctx context.Context) (*model.Policy, error) {
	p, rev, err := s.Policy(ctx)
	if err != nil {
		return nil, err
	}
	for {
		old := s.loadedRev.Load()
		if rev <= old || s.loadedRev.CompareAndSwap(old, rev) {
			break
		}
	}
	return p, nil
}

// Changed is signalled (coalesced) after a committed policy change, by any
// client of the cluster.
func (s *Store) Changed() <-chan struct{} { return s.changed }

func (s *Store) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Run watches the prefix until ctx is done, re-establishing the watch after
// errors. If events were compacted away before they were seen, it signals a
// change (the consumer reloads the whole policy anyway).
func (s *Store) Run(ctx context.Context) {
	rev := s.loadedRev.Load()
	if rev == 0 {
		// Nothing loaded through this Store: start at the current revision
		// and have the consumer load once.
		for ctx.Err() == nil {
			rctx, cancel := s.reqCtx(ctx)
			resp, err := s.cli.Get(rctx, s.prefix+genKey)
			cancel()
			if err == nil {
				rev = resp.Header.Revision
				break
			}
			s.log.WithError(err).Warn("watch: cannot read the current revision, retrying")
			if !sleepCtx(ctx, time.Second) {
				return
			}
		}
		s.signal()
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// RequireLeader: a member cut off from the quorum ends the watch
		// instead of keeping it silently stale.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.CompactRevision != 0 {
				s.log.WithField("compact_revision", resp.CompactRevision).Warn("watch: missed compacted events; reloading")
				rev = resp.CompactRevision - 1
				s.signal()
				break
			}
			if err := resp.Err(); err != nil {
				s.log.WithError(err).Warn("watch: interrupted; re-establishing")
				break
			}
			backoff = 100 * time.Millisecond
			policy := false
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision > rev {
					rev = ev.Kv.ModRevision
				}
				if s.isPolicyKey(string(ev.Kv.Key)) {
					policy = true
				}
			}
			if policy {
				s.signal()
			}
		}
		cancel()
		if s.cli.Ctx().Err() != nil {
			return // the Store was closed
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// isPolicyKey: tokens and the admin marker are not policy.
func (s *Store) isPolicyKey(key string) bool {
	rel := strings.TrimPrefix(key, s.prefix)
	return !strings.HasPrefix(rel, tokenDir) && rel != adminMarker
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
