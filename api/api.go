// Package api is OpenVPC's tenant HTTP JSON API: CRUD of accounts, VPCs,
// subnets, NICs, hosts (with their tunnel kinds and MTUs), the deployment's
// settings, security groups (with AWS-like verbs for rules,
// grants and NIC membership), route tables (with verbs for routes,
// subnet associations and NICs' source/destination check), peerings
// (accept), internet gateways (attach, detach), public IP pools and public
// IPs (allocate, associate, disassociate, release), declarative
// apply/export of policy documents, and API tokens, with per-account
// access control. It keeps no state of its
// own: everything is read from and written to a Backend (the etcd store),
// and every write is one Backend.Update, so nothing is ever half-written.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/model"
)

// Backend is the storage the API works on (the etcd store in production).
type Backend interface {
	// Policy returns the current policy and its revision. The API never
	// modifies the returned policy.
	Policy(ctx context.Context) (*model.Policy, int64, error)
	// Update runs fn on a deep copy of the current policy and commits the
	// result atomically (one etcd transaction), after default groups, main
	// route tables and grants follow the change (store.Cascade:
	// model.EnsureDefaultGroups, model.EnsureMainTables, grants to deleted
	// accounts dropped; public IPs of deleted NICs disassociated),
	// model.AllocateIPs, model.AllocatePublicIPs, model.Build
	// (whose error is returned unchanged) and model.Pin. It
	// retries fn on conflicts, so fn must be repeatable; when it gives up,
	// its error wraps ErrConflict. An error returned by fn aborts the
	// update and is returned (it may be wrapped). Deleting an account also
	// deletes its tokens, in the same transaction.
	Update(ctx context.Context, fn func(p *model.Policy) error) (int64, error)
	// Authenticate returns the principal of a token secret, or an error
	// wrapping ErrUnauthenticated for an unknown or revoked secret. Any
	// other error is treated as an internal failure.
	Authenticate(ctx context.Context, secret string) (Principal, error)
	// CreateToken creates a token for account, or an admin token if account
	// is "". The secret is returned only here.
	CreateToken(ctx context.Context, account, description string) (id, secret string, err error)
	// ListTokens returns every token (never their secrets).
	ListTokens(ctx context.Context) ([]TokenInfo, error)
	// RevokeToken deletes a token; an unknown id is an error wrapping
	// ErrNotFound.
	RevokeToken(ctx context.Context, id string) error
}

// Errors a Backend returns (wrapped) for the API to map to HTTP statuses.
var (
	ErrUnauthenticated = errors.New("unknown or revoked token")               // 401
	ErrNotFound        = errors.New("not found")                              // 404
	ErrConflict        = errors.New("too many concurrent changes, try again") // 409
)

// Principal is the identity behind a token. An admin sees and changes
// everything; any other principal sees only objects of its Account (and
// shared VPCs, read-only; see view).
type Principal struct {
	TokenID string
	Account string
	Admin   bool
}

// TokenInfo describes a token, without its secret.
type TokenInfo struct {
	ID          string    `json:"id"`
	Account     string    `json:"account,omitempty"`
	Description string    `json:"description,omitempty"`
	Admin       bool      `json:"admin"`
	Created     time.Time `json:"created"`
}

// Options configures the handler.
type Options struct {
	// MaxBody is the largest request body accepted; larger bodies get 413.
	// Default 1 MiB.
	MaxBody int64
	// Log receives one line per write request and every internal error.
	// Default: a new logrus logger writing to stderr.
	Log logrus.FieldLogger
}

// DefaultMaxBody is the default of Options.MaxBody.
const DefaultMaxBody = 1 << 20

// RevisionHeader carries the policy revision a response reflects (or, for
// writes, the revision the write committed).
const RevisionHeader = "OpenVPC-Revision"

// Route is one method and path pattern the handler serves (in
// net/http.ServeMux syntax).
type Route struct {
	Method, Path string
}

// Routes lists every route New serves, for mounting the handler on a
// shared mux: for _, r := range api.Routes() { mux.Handle(r.Method+" "+r.Path, h) }.
// None of them collides with the controller's debug routes.
func Routes() []Route {
	s := &server{}
	var out []Route
	for _, r := range s.routes() {
		out = append(out, Route{Method: r.method, Path: r.path})
	}
	return out
}

type server struct {
	b       Backend
	maxBody int64
	log     logrus.FieldLogger
	mux     *http.ServeMux
	openapi []byte
}

// New returns the API handler. Paths it does not serve get a JSON 404 (or
// 405 for a known path with another method), so it can also be mounted as
// the fallback ("/") of a mux holding other routes.
func New(backend Backend, opts Options) http.Handler {
	s := &server{b: backend, maxBody: opts.MaxBody, log: opts.Log, mux: http.NewServeMux()}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.log == nil {
		s.log = logrus.New()
	}
	routes := s.routes()
	for _, rt := range routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.openapi = openAPIDocument(routes)
	return s
}

// authLevel is what a route requires of the caller.
type authLevel int

const (
	authNone  authLevel = iota // public
	authAny                    // any valid token
	authAdmin                  // an admin token
)

type route struct {
	method, path string
	auth         authLevel
	doc          opDoc
	h            func(w http.ResponseWriter, r *http.Request, pr Principal) error
}

// ServeHTTP dispatches to the routes, answering unknown paths and methods
// with JSON errors (the mux itself still redirects unclean paths).
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" && isClean(r.URL.Path) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := s.mux.Handler(probe); p != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidArgument,
				Message: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
			return
		}
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no such path %s", r.URL.Path)})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// isClean reports whether the mux would serve p without redirecting.
func isClean(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.Contains(p, "//") && !strings.Contains(p, "/./") && !strings.Contains(p, "/../") &&
		!strings.HasSuffix(p, "/.") && !strings.HasSuffix(p, "/..")
}

// statusWriter records the status of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap adds authentication, error mapping, panic recovery and logging.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		start := time.Now()
		var pr Principal
		log := s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path})
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.WithField("panic", v).Errorf("api: handler panicked\n%s", debug.Stack())
				if w.status == 0 {
					writeError(w, internalError())
				}
			}
			entry := log.WithFields(logrus.Fields{"status": w.status, "duration": time.Since(start).Round(time.Microsecond)})
			if pr.TokenID != "" {
				entry = entry.WithFields(logrus.Fields{"token": pr.TokenID, "account": pr.Account, "admin": pr.Admin})
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				entry.Debug("api request")
			} else {
				entry.Info("api request")
			}
		}()
		err := func() error {
			if rt.auth != authNone {
				var err error
				if pr, err = s.authenticate(r); err != nil {
					return err
				}
				if rt.auth == authAdmin && !pr.Admin {
					return &Error{Status: http.StatusForbidden, Code: CodePermissionDenied,
						Message: fmt.Sprintf("%s %s needs an admin token", r.Method, rt.path)}
				}
			}
			return rt.h(w, r, pr)
		}()
		if err != nil {
			e := s.toError(err)
			if e.Status == http.StatusInternalServerError {
				log.WithError(err).Error("api: internal error")
			}
			if e.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="openvpc"`)
			}
			writeError(w, e)
		}
	})
}

func (s *server) authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "missing Authorization: Bearer <token>"}
	}
	scheme, secret, ok := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return Principal{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "malformed Authorization header, want Bearer <token>"}
	}
	pr, err := s.b.Authenticate(r.Context(), secret)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return Principal{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "invalid or revoked token"}
	case err != nil:
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	case !pr.Admin && pr.Account == "":
		return Principal{}, &Error{Status: http.StatusForbidden, Code: CodePermissionDenied, Message: "token has neither an account nor admin rights"}
	}
	return pr, nil
}
