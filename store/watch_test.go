package store

import (
	"context"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

func waitChanged(t *testing.T, s *Store, what string) {
	t.Helper()
	select {
	case <-s.Changed():
	case <-time.After(10 * time.Second):
		t.Fatalf("no change signalled after %s", what)
	}
}

func noChange(t *testing.T, s *Store, what string) {
	t.Helper()
	select {
	case <-s.Changed():
		t.Fatalf("change signalled after %s", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	watcher := openStore(t, e.Endpoints())
	writer := openStore(t, e.Endpoints())
	ctx := testCtx(t, 40*time.Second)

	if _, err := writer.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	if _, err := watcher.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// A commit between Load and Run is not missed.
	if _, err := writer.Update(ctx, func(p *model.Policy) error {
		p.NICs = append(p.NICs, model.NIC{Name: "early", Subnet: "acme-web"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); watcher.Run(runCtx) }()
	waitChanged(t, watcher, "a commit before Run")
	p, err := watcher.Load(ctx)
	if err != nil || nic(p, "early") == nil {
		t.Fatalf("Load after change: %v", err)
	}

	if _, err := writer.Update(ctx, func(p *model.Policy) error {
		nic(p, "web1").Host = "hv1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, watcher, "a commit by another client")
	if p, err := watcher.Load(ctx); err != nil || nic(p, "web1").Host != "hv1" {
		t.Fatalf("Load after change: %v", err)
	}

	// Tokens are not policy.
	if _, _, err := writer.CreateToken(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	noChange(t, watcher, "a token was created")
	stop()
	<-done

	// Missed events that were compacted away: Run reports a change and
	// goes on watching.
	if _, err := writer.Update(ctx, func(p *model.Policy) error {
		p.NICs = append(p.NICs, model.NIC{Name: "while-away", Subnet: "acme-web"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, rev := mustPolicy(t, writer)
	if _, err := writer.cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	runCtx, stop = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() { defer close(done); watcher.Run(runCtx) }()
	defer func() { stop(); <-done }()
	waitChanged(t, watcher, "compaction of unseen events")
	if _, err := writer.Update(ctx, func(p *model.Policy) error {
		p.NICs = append(p.NICs, model.NIC{Name: "after", Subnet: "acme-web"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, watcher, "a commit after re-establishing the watch")
	if p, err := watcher.Load(ctx); err != nil || nic(p, "after") == nil || nic(p, "while-away") == nil {
		t.Fatalf("Load after compaction: %v", err)
	}
}
