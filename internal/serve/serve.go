// Package serve assembles a running OpenVPC controller process: the policy
// source (a YAML file, or the etcd store — embedded or external), the
// tenant API with its tokens, the debug endpoints and the controller. It is
// shared by `openvpc controller` and the in-process lab used by tests.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/store"
)

// Config configures a server.
type Config struct {
	// Exactly one policy source: PolicyFile (read-only, no tenant API),
	// EtcdEndpoints (an external cluster), or DataDir (embedded etcd).
	PolicyFile    string
	DataDir       string
	EtcdEndpoints []string
	EtcdTLS       *tls.Config

	OpenFlow       net.Listener // hosts' bridges connect here
	OpenFlowTarget string       // controller target written into bridges
	API            net.Listener // HTTP API (wrapped in TLS when TLS is set)
	TLS            *tls.Config
	// AdminTokenFile, if set, receives the admin token when it is created
	// (first start of a store), mode 0600. It is printed to the log too.
	AdminTokenFile string

	Log            logrus.FieldLogger
	StartupGrace   time.Duration
	AuditInterval  time.Duration
	PollInterval   time.Duration // file source poll; default 1 s
	EnsureInterval time.Duration
}

// Server is a started server.
type Server struct {
	Controller *controller.Controller
	Store      *store.Store           // nil in file mode
	File       *controller.FileSource // nil in store mode

	embedded *store.Embedded
	http     *http.Server
	cancel   context.CancelFunc
	done     chan error
}

// Start starts everything and returns once the policy is loaded and the
// API serves. Stop (or ctx) ends it.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	srcs := 0
	for _, set := range []bool{cfg.PolicyFile != "", cfg.DataDir != "", len(cfg.EtcdEndpoints) > 0} {
		if set {
			srcs++
		}
	}
	if srcs != 1 {
		return nil, errors.New("serve: give exactly one of a policy file, a data dir (embedded etcd) or etcd endpoints")
	}
	s := &Server{done: make(chan error, 1)}
	var src controller.Source
	var apiHandler http.Handler
	var auth func(r *http.Request) error
	if cfg.PolicyFile != "" {
		s.File = controller.NewFileSource(cfg.PolicyFile)
		if cfg.PollInterval > 0 {
			s.File.Interval = cfg.PollInterval
		}
		src = s.File
	} else {
		endpoints := cfg.EtcdEndpoints
		if cfg.DataDir != "" {
			e, err := store.StartEmbedded(ctx, filepath.Join(cfg.DataDir, "etcd"), cfg.Log.WithField("part", "etcd"))
			if err != nil {
				return nil, err
			}
			s.embedded = e
			endpoints = e.Endpoints()
		}
		st, err := store.Open(ctx, store.Config{Endpoints: endpoints, TLS: cfg.EtcdTLS, Log: cfg.Log.WithField("part", "store")})
		if err != nil {
			s.closeStore()
			return nil, err
		}
		s.Store = st
		if err := s.ensureAdmin(ctx, cfg); err != nil {
			s.closeStore()
			return nil, err
		}
		src = st
		b := backend{st}
		apiHandler = api.New(b, api.Options{Log: cfg.Log.WithField("part", "api")})
		auth = func(r *http.Request) error {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return api.ErrUnauthenticated
			}
			p, err := b.Authenticate(r.Context(), strings.TrimSpace(tok))
			if err != nil {
				return err
			}
			if !p.Admin {
				return errForbidden
			}
			return nil
		}
	}
	c := controller.New(controller.Config{Source: src, OpenFlow: cfg.OpenFlow, OpenFlowTarget: cfg.OpenFlowTarget,
		Log: cfg.Log.WithField("part", "controller"), StartupGrace: cfg.StartupGrace, AuditInterval: cfg.AuditInterval,
		EnsureInterval: cfg.EnsureInterval})
	s.Controller = c
	mux := http.NewServeMux()
	mux.Handle("/healthz", c.Handler())
	mux.Handle("/readyz", c.Handler())
	debug := c.Handler()
	if auth != nil {
		debug = requireAdmin(auth, debug)
	}
	mux.Handle("/v1/status", debug)
	mux.Handle("/v1/hosts/{host}/flows", debug)
	mux.Handle("/v1/hosts/{host}/trace", debug)
	if apiHandler != nil {
		mux.Handle("/", apiHandler)
	}
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if cfg.API != nil {
		ln := cfg.API
		if cfg.TLS != nil {
			ln = tls.NewListener(ln, cfg.TLS)
		}
		go s.http.Serve(ln)
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		err := c.Run(rctx)
		if cfg.OpenFlow != nil {
			cfg.OpenFlow.Close()
		}
		s.done <- err
	}()
	// Run returns at once when the first policy load fails.
	for c.Status().PolicyGeneration == 0 {
		select {
		case err := <-s.done:
			s.http.Close()
			s.closeStore()
			return nil, fmt.Errorf("controller: %w", err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return s, nil
}

// ensureAdmin creates the admin token on the first start of a store.
func (s *Server) ensureAdmin(ctx context.Context, cfg Config) error {
	secret, created, err := s.Store.EnsureAdminToken(ctx)
	if err != nil || !created {
		return err
	}
	cfg.Log.WithField("token", secret).Warn("admin token created; it is shown only now")
	if cfg.AdminTokenFile != "" {
		if err := os.WriteFile(cfg.AdminTokenFile, []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write admin token: %w", err)
		}
	}
	return nil
}

// Wait blocks until the controller stops and returns its error.
func (s *Server) Wait() error {
	err := <-s.done
	s.done <- err
	return err
}

// Stop stops the controller, the API and the store; the switches keep
// their flows.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
	s.done <- nil
	s.http.Close()
	s.closeStore()
}

func (s *Server) closeStore() {
	if s.Store != nil {
		s.Store.Close()
	}
	if s.embedded != nil {
		s.embedded.Close()
	}
}

var errForbidden = errors.New("admin token required")

func requireAdmin(auth func(*http.Request) error, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth(r); err != nil {
			code, name := http.StatusUnauthorized, "unauthenticated"
			if errors.Is(err, errForbidden) {
				code, name = http.StatusForbidden, "permission_denied"
			} else if !errors.Is(err, api.ErrUnauthenticated) {
				code, name = http.StatusInternalServerError, "internal"
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, "{\"code\":%q,\"message\":%q}\n", name, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// backend adapts the store to the API's Backend.
type backend struct{ st *store.Store }

func (b backend) Policy(ctx context.Context) (*model.Policy, int64, error) { return b.st.Policy(ctx) }

func (b backend) Update(ctx context.Context, fn func(p *model.Policy) error) (int64, error) {
	rev, err := b.st.Update(ctx, fn)
	if errors.Is(err, store.ErrConflict) {
		return rev, fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	return rev, err
}

func (b backend) Authenticate(ctx context.Context, secret string) (api.Principal, error) {
	p, err := b.st.Authenticate(ctx, secret)
	if errors.Is(err, store.ErrUnauthenticated) {
		return api.Principal{}, fmt.Errorf("%w", api.ErrUnauthenticated)
	}
	return api.Principal{TokenID: p.TokenID, Account: p.Account, Admin: p.Admin}, err
}

func (b backend) CreateToken(ctx context.Context, account, description string) (string, string, error) {
	return b.st.CreateToken(ctx, account, description)
}

func (b backend) ListTokens(ctx context.Context) ([]api.TokenInfo, error) {
	ts, err := b.st.ListTokens(ctx)
	out := make([]api.TokenInfo, len(ts))
	for i, t := range ts {
		out[i] = api.TokenInfo{ID: t.ID, Account: t.Account, Description: t.Description, Admin: t.Admin, Created: t.Created}
	}
	return out, err
}

func (b backend) RevokeToken(ctx context.Context, id string) error {
	err := b.st.RevokeToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: token %s", api.ErrNotFound, id)
	}
	return err
}
