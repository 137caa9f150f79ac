package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/model"
)

// txn is one attempt of a change inside Backend.Update (which may run it
// again on conflicts, each time on a fresh copy).
type txn struct {
	v       *view
	p       *model.Policy
	touched map[ref]bool   // objects the request writes
	paths   map[ref]string // their JSON paths in the request body
	changed bool
	// accounts are those that existed before the change.
	accounts map[string]bool
	// nics are the NICs before the change (public IPs associated with
	// one the change deletes are disassociated).
	nics map[string]model.NIC
	// checks run once the whole change is in place (kind.check).
	checks []func() error
	log    logrus.FieldLogger
}

// later has check run, with its errors under path, once the whole change
// is in place.
func later[T any](t *txn, k *kind[T], old *T, obj T, path string) {
	if k.check == nil {
		return
	}
	if old != nil {
		o := *old
		old = &o
	}
	t.checks = append(t.checks, func() error { return prefixed(k.check(t.v, old, &obj), path) })
}

func (t *txn) touch(r ref, path string) {
	t.touched[r] = true
	t.paths[r] = path
	t.changed = true
}

// validate assigns IPs and public addresses, checks the changed policy and
// pins its assigned identifiers, as the backend will. A non-admin's change is first checked
// on the part of the policy it can see (plus what it writes), so errors
// never name, and references never find, another account's objects.
func (t *txn) validate() error {
	t.cascade()
	if !t.v.pr.Admin {
		t.v.reindex()
		r := t.v.restricted(t.touched)
		// Allocation is per VPC, so on the visible part it picks what it
		// would on the whole policy, and it cannot report on (say, the
		// fullness of) another account's subnet. Public addresses are
		// allocated against every public IP (others' are stand-ins).
		if err := model.AllocateIPs(r); err != nil {
			return &validationError{err: err, paths: t.paths}
		}
		if err := model.AllocatePublicIPs(r); err != nil {
			return &validationError{err: err, paths: t.paths}
		}
		if _, err := model.Build(r); err != nil {
			return &validationError{err: err, paths: t.paths}
		}
		ips := make(map[string]string, len(r.NICs))
		for _, n := range r.NICs {
			ips[n.Name] = n.IP
		}
		for i := range t.p.NICs {
			if n := &t.p.NICs[i]; n.IP == "" {
				n.IP = ips[n.Name]
			}
		}
		addrs := make(map[string]string, len(r.PublicIPs))
		for _, x := range r.PublicIPs {
			addrs[x.Name] = x.Address
		}
		for i := range t.p.PublicIPs {
			if x := &t.p.PublicIPs[i]; x.Address == "" {
				x.Address = addrs[x.Name]
			}
		}
	}
	if err := model.AllocateIPs(t.p); err != nil {
		return t.checked(err)
	}
	if err := model.AllocatePublicIPs(t.p); err != nil {
		return t.checked(err)
	}
	n, err := model.Build(t.p)
	if err != nil {
		return t.checked(err)
	}
	model.Pin(t.p, n)
	return nil
}

// checked shows validation errors to an admin, or to an account if they
// are all about objects it writes or sees; anything else becomes a
// conflict that names nothing.
func (t *txn) checked(err error) error {
	fes := model.FieldErrors(err)
	if len(fes) == 0 {
		return err
	}
	if !t.v.pr.Admin {
		t.v.reindex()
		for _, fe := range fes {
			r := ref{fe.Kind, fe.Name}
			if t.touched[r] || t.v.refVisible(r) {
				continue
			}
			t.log.WithError(err).WithField("account", t.v.pr.Account).Warn("api: change rejected by validation of objects the caller cannot see")
			return conflict("", "the change conflicts with objects outside your account")
		}
	}
	return &validationError{err: err, paths: t.paths}
}

// run applies change in one Backend.Update (or, for a dry run, to a copy of
// the current policy) and returns the last attempt and the revision.
func (s *server) run(ctx context.Context, pr Principal, dryRun bool, change func(t *txn) error) (*txn, int64, error) {
	var last *txn
	fn := func(p *model.Policy) error {
		// Default groups and main tables missing from a policy stored
		// before they existed are there to change like the stored ones.
		model.EnsureDefaultGroups(p)
		model.EnsureMainTables(p)
		t := &txn{v: newView(pr, p), p: p, touched: map[ref]bool{}, paths: map[ref]string{}, log: s.log,
			accounts: make(map[string]bool, len(p.Accounts))}
		for _, a := range p.Accounts {
			t.accounts[a.Name] = true
		}
		if len(p.PublicIPs) > 0 {
			t.nics = make(map[string]model.NIC, len(p.NICs))
			for _, n := range p.NICs {
				t.nics[n.Name] = n
			}
		}
		last = t
		if err := change(t); err != nil {
			return err
		}
		t.v.reindex()
		for _, check := range t.checks {
			if err := check(); err != nil {
				return err
			}
		}
		if !t.changed {
			return errUnchanged
		}
		return t.validate()
	}
	var rev int64
	var err error
	if dryRun {
		var p *model.Policy
		if p, rev, err = s.b.Policy(ctx); err != nil {
			return nil, 0, fmt.Errorf("read policy: %w", err)
		}
		err = fn(p.Clone())
	} else {
		rev, err = s.b.Update(ctx, fn)
	}
	if errors.Is(err, errUnchanged) {
		return last, rev, nil
	}
	if err != nil {
		return last, 0, err
	}
	return last, rev, nil
}

func setRevision(w http.ResponseWriter, rev int64) {
	if rev > 0 {
		w.Header().Set(RevisionHeader, strconv.FormatInt(rev, 10))
	}
}

// listResponse is the body of a list.
type listResponse[T any] struct {
	Items []T `json:"items"`
}

// policy reads the policy to answer a read. Default groups and main tables
// that a policy stored before they existed lacks are shown as the next
// write stores them.
func (s *server) policy(ctx context.Context, w http.ResponseWriter) (*model.Policy, error) {
	p, rev, err := s.b.Policy(ctx)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	setRevision(w, rev)
	p = p.Clone() // the backend's; not ours to change
	model.EnsureDefaultGroups(p)
	model.EnsureMainTables(p)
	return p, nil
}

// presenter returns what the API answers for objects of k in p: the
// objects themselves, or with k.present what it makes of them (the policy
// is built once, for all of them).
func presenter[T any](k *kind[T], p *model.Policy) func(obj *T) any {
	if k.present == nil {
		return func(obj *T) any { return *obj }
	}
	n, err := model.Build(p)
	if err != nil {
		n = nil // a stored policy builds; if not, show what is stored
	}
	return func(obj *T) any { return k.present(n, obj) }
}

// decodeObject reads a create or update body of kind k into obj, ignoring
// the fields k computes (a GET's answer may be sent back as it is).
func decodeObject[T any](s *server, w http.ResponseWriter, r *http.Request, k *kind[T], obj *T) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(withoutFields(data, k.computed), obj)
}

func listHandler[T any](s *server, k *kind[T]) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		p, err := s.policy(r.Context(), w)
		if err != nil {
			return err
		}
		v := newView(pr, p)
		items := []T{}
		for _, o := range *k.items(p) {
			if canSee(k, v, &o) {
				items = append(items, o)
			}
		}
		sort.SliceStable(items, func(i, j int) bool { return k.name(&items[i]) < k.name(&items[j]) })
		show := presenter(k, p)
		out := make([]any, len(items))
		for i := range items {
			out[i] = show(&items[i])
		}
		writeJSON(w, http.StatusOK, listResponse[any]{Items: out})
		return nil
	}
}

func getHandler[T any](s *server, k *kind[T]) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		name := r.PathValue("name")
		p, err := s.policy(r.Context(), w)
		if err != nil {
			return err
		}
		i := k.find(p, name)
		if i < 0 || !canSee(k, newView(pr, p), &(*k.items(p))[i]) {
			return notFound("%s %q not found", k.singular, name)
		}
		writeJSON(w, http.StatusOK, presenter(k, p)(&(*k.items(p))[i]))
		return nil
	}
}

// stored returns the named object of the last attempt, as committed.
func stored[T any](k *kind[T], t *txn, name string) (T, error) {
	if i := k.find(t.p, name); i >= 0 {
		return (*k.items(t.p))[i], nil
	}
	var zero T
	return zero, fmt.Errorf("%s %q missing after the update", k.singular, name)
}

// respond answers status with the named object of kind k as the last
// attempt of t committed it (presented), and the revision rev.
func respond[T any](w http.ResponseWriter, k *kind[T], t *txn, rev int64, name string, status int) error {
	out, err := stored(k, t, name)
	if err != nil {
		return err
	}
	setRevision(w, rev)
	writeJSON(w, status, presenter(k, t.p)(&out))
	return nil
}

// verb runs change on the object of kind k named by the path, which the
// caller must see (else 404) and may change (else 403), in one update, and
// answers status with the object as stored. change reports whether it
// changed the object (if not, nothing is written). A 400's fields are
// renamed by rename (if not nil) to paths in the request body.
func verb[T any](s *server, w http.ResponseWriter, r *http.Request, pr Principal, k *kind[T], status int,
	change func(t *txn, obj *T) (bool, error), rename func(string) string) error {
	name := r.PathValue("name")
	t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
		items := *k.items(t.p)
		i := k.find(t.p, name)
		if i < 0 || !canSee(k, t.v, &items[i]) {
			return notFound("%s %q not found", k.singular, name)
		}
		if !canWrite(k, t.v, &items[i]) {
			return readOnly(k.singular, name)
		}
		changed, err := change(t, &items[i])
		if err != nil || !changed {
			return err
		}
		t.touch(ref{k.singular, name}, "")
		return nil
	})
	if err != nil {
		return renamed(s, err, rename)
	}
	return respond(w, k, t, rev, name, status)
}

// always adapts for verb a change that always changes its object.
func always[T any](change func(t *txn, obj *T) error) func(t *txn, obj *T) (bool, error) {
	return func(t *txn, obj *T) (bool, error) { return true, change(t, obj) }
}

// renamed maps the fields of a 400 error with rename (if not nil).
func renamed(s *server, err error, rename func(string) string) error {
	if rename == nil {
		return err
	}
	e := s.toError(err)
	if e.Status == http.StatusInternalServerError {
		return err // logged by wrap
	}
	if e.Status == http.StatusBadRequest {
		e = renameFields(e, rename)
	}
	return e
}

func createHandler[T any](s *server, k *kind[T]) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		var obj T
		if err := decodeObject(s, w, r, k, &obj); err != nil {
			return err
		}
		name := k.name(&obj)
		t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
			if name != "" && k.find(t.p, name) >= 0 {
				return conflict("name", "%s %q already exists", k.singular, name)
			}
			o := obj
			if k.created != nil {
				if err := k.created(&o); err != nil {
					return err
				}
			}
			if err := k.merge(t.v, nil, &o); err != nil {
				return err
			}
			*k.items(t.p) = append(*k.items(t.p), o)
			t.touch(ref{k.singular, name}, "")
			later(t, k, nil, o, "")
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := stored(k, t, name); err != nil {
			return err // answered without a Location
		}
		w.Header().Set("Location", "/v1/"+k.plural+"/"+url.PathEscape(name))
		return respond(w, k, t, rev, name, http.StatusCreated)
	}
}

func updateHandler[T any](s *server, k *kind[T]) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		name := r.PathValue("name")
		var obj T
		if err := decodeObject(s, w, r, k, &obj); err != nil {
			return err
		}
		if n := k.name(&obj); n == "" {
			k.setName(&obj, name)
		} else if n != name {
			return invalid("name", "is %q but the path names %q (objects cannot be renamed)", n, name)
		}
		t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
			items := *k.items(t.p)
			i := k.find(t.p, name)
			if i < 0 || !canSee(k, t.v, &items[i]) {
				return notFound("%s %q not found", k.singular, name)
			}
			if !canWrite(k, t.v, &items[i]) {
				return readOnly(k.singular, name)
			}
			o, old := obj, items[i]
			if err := k.merge(t.v, &old, &o); err != nil {
				return err
			}
			if equalObj(&old, &o) {
				return nil
			}
			items[i] = o
			t.touch(ref{k.singular, name}, "")
			later(t, k, &old, o, "")
			return nil
		})
		if err != nil {
			return err
		}
		return respond(w, k, t, rev, name, http.StatusOK)
	}
}

func deleteHandler[T any](s *server, k *kind[T]) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		name := r.PathValue("name")
		_, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
			items := k.items(t.p)
			i := k.find(t.p, name)
			if i < 0 || !canSee(k, t.v, &(*items)[i]) {
				return notFound("%s %q not found", k.singular, name)
			}
			if !canWrite(k, t.v, &(*items)[i]) {
				return readOnly(k.singular, name)
			}
			if k.deletable != nil {
				if err := k.deletable(t.v, &(*items)[i]); err != nil {
					return err
				}
			}
			var users []ref
			if k.users != nil {
				users = k.users(t.p, name)
			}
			if len(users) > 0 {
				return conflict("", "%s", usersMessage(ref{k.singular, name}, users, t.v.refVisible))
			}
			*items = append((*items)[:i:i], (*items)[i+1:]...)
			t.changed = true
			return nil
		})
		if err != nil {
			return err
		}
		setRevision(w, rev)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// secondaryIPRequest is the body of POST /v1/nics/{name}/secondary-ips.
type secondaryIPRequest struct {
	IP string `json:"ip"`
}

var secondaryFieldRE = regexp.MustCompile(`^secondary_ips\[\d+\]$`)

func (s *server) addSecondaryIP(w http.ResponseWriter, r *http.Request, pr Principal) error {
	name := r.PathValue("name")
	var req secondaryIPRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.IP == "" {
		return invalid("ip", "is required")
	}
	t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
		i := nicKind.find(t.p, name)
		if i < 0 || !canSee(nicKind, t.v, &t.p.NICs[i]) {
			return notFound("nic %q not found", name)
		}
		// A VPC owner sees other accounts' NICs in its shared VPC, but
		// only their owners change them.
		if !canWrite(nicKind, t.v, &t.p.NICs[i]) {
			return readOnly("nic", name)
		}
		n := &t.p.NICs[i]
		for _, ip := range n.SecondaryIPs {
			if sameIP(ip, req.IP) {
				return conflict("ip", "nic %q already has secondary ip %s", name, ip)
			}
		}
		n.SecondaryIPs = append(n.SecondaryIPs, req.IP)
		t.touch(ref{"nic", name}, "")
		return nil
	})
	if err != nil {
		// The new address is the only secondary IP the request names.
		return renamed(s, err, func(f string) string {
			if secondaryFieldRE.MatchString(f) {
				return "ip"
			}
			return f
		})
	}
	return respond(w, nicKind, t, rev, name, http.StatusCreated)
}

func renameFields(e *Error, f func(string) string) *Error {
	c := *e
	c.Field = f(e.Field)
	c.Details = nil
	for _, d := range e.Details {
		c.Details = append(c.Details, Detail{Field: f(d.Field), Message: d.Message})
	}
	return &c
}

func (s *server) removeSecondaryIP(w http.ResponseWriter, r *http.Request, pr Principal) error {
	name, ip := r.PathValue("name"), r.PathValue("ip")
	t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
		i := nicKind.find(t.p, name)
		if i < 0 || !canSee(nicKind, t.v, &t.p.NICs[i]) {
			return notFound("nic %q not found", name)
		}
		// A VPC owner sees other accounts' NICs in its shared VPC, but
		// only their owners change them.
		if !canWrite(nicKind, t.v, &t.p.NICs[i]) {
			return readOnly("nic", name)
		}
		n := &t.p.NICs[i]
		for j, x := range n.SecondaryIPs {
			if sameIP(x, ip) {
				n.SecondaryIPs = append(n.SecondaryIPs[:j:j], n.SecondaryIPs[j+1:]...)
				if len(n.SecondaryIPs) == 0 {
					n.SecondaryIPs = nil
				}
				t.touch(ref{"nic", name}, "")
				return nil
			}
		}
		return notFound("nic %q has no secondary ip %q", name, ip)
	})
	if err != nil {
		return err
	}
	return respond(w, nicKind, t, rev, name, http.StatusOK)
}
