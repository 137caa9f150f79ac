package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"github.com/openvpc/openvpc/model"
)

// Source supplies tenant policy. The file source is the only one for now;
// the durable store will be another implementation.
type Source interface {
	// Load returns the current policy document.
	Load(ctx context.Context) (*model.Policy, error)
	// Changed is signalled (coalesced) when the policy may have changed.
	Changed() <-chan struct{}
	// Run watches for changes until ctx is done.
	Run(ctx context.Context)
}

// FileSource reads policy from a YAML file, and reports a change when the
// file's content changes (polled) or Reload is called (e.g. on SIGHUP).
type FileSource struct {
	Path     string
	Interval time.Duration // poll interval; default 1 s
	changed  chan struct{}
}

// NewFileSource returns a source for path.
func NewFileSource(path string) *FileSource {
	return &FileSource{Path: path, Interval: time.Second, changed: make(chan struct{}, 1)}
}

// Load reads and parses the file.
func (f *FileSource) Load(context.Context) (*model.Policy, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := model.ParseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return p, nil
}

// Changed implements Source.
func (f *FileSource) Changed() <-chan struct{} { return f.changed }

// Reload asks for a re-read.
func (f *FileSource) Reload() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Run polls the file's hash.
func (f *FileSource) Run(ctx context.Context) {
	var last []byte
	if data, err := os.ReadFile(f.Path); err == nil {
		h := sha256.Sum256(data)
		last = h[:]
	}
	t := time.NewTicker(f.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(f.Path)
		if err != nil {
			continue
		}
		h := sha256.Sum256(data)
		if !bytes.Equal(h[:], last) {
			last = h[:]
			f.Reload()
		}
	}
}
