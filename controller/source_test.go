package controller

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileSourceNoticesChangesAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte("accounts: [{name: a}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := NewFileSource(path)
	src.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)
	p, err := src.Load(ctx)
	if err != nil || len(p.Accounts) != 1 {
		t.Fatalf("load: %v %+v", err, p)
	}
	select {
	case <-src.Changed():
		t.Fatal("change reported for an unchanged file")
	case <-time.After(100 * time.Millisecond):
	}
	if err := os.WriteFile(path, []byte("accounts: [{name: a}, {name: b}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("content change not noticed")
	}
	src.Reload() // what SIGHUP does
	select {
	case <-src.Changed():
	case <-time.After(time.Second):
		t.Fatal("Reload not signalled")
	}
	os.WriteFile(path, []byte("accounts: [{nam: a}]\n"), 0o644)
	if _, err := src.Load(ctx); err == nil {
		t.Fatal("unknown field accepted")
	}
}
