package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// Change is one object of an applied document and what applying it did.
type Change struct {
	Op   string `json:"op"` // create, update or unchanged
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Fields lists the JSON fields an update changes.
	Fields []string `json:"fields,omitempty"`
}

// Change operations.
const (
	OpCreate    = "create"
	OpUpdate    = "update"
	OpUnchanged = "unchanged"
)

// ApplyResult is the body of a POST /v1/apply response.
type ApplyResult struct {
	Changes []Change `json:"changes"`
	DryRun  bool     `json:"dry_run"`
	// Revision is the committed revision (or, for a dry run, the one the
	// changes were computed against); absent when nothing changed.
	Revision int64 `json:"revision,omitempty"`
}

func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid(name, "%s=%q: want true or false", name, v)
	}
	return b, nil
}

func (s *server) apply(w http.ResponseWriter, r *http.Request, pr Principal) error {
	dryRun, err := boolQuery(r, "dry_run")
	if err != nil {
		return err
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	doc, err := decodePolicy(r, data)
	if err != nil {
		return err
	}
	if !pr.Admin {
		if len(doc.Accounts) > 0 {
			return denied("accounts", "only an admin may apply accounts")
		}
		if len(doc.Hosts) > 0 {
			return denied("hosts", "only an admin may apply hosts")
		}
		if len(doc.PublicIPPools) > 0 {
			return denied("public_ip_pools", "only an admin may apply public IP pools")
		}
		if doc.Settings != nil {
			return denied("settings", "only an admin may apply settings")
		}
	}
	for _, check := range []func() error{
		func() error { return duplicates(accountKind, doc.Accounts) },
		func() error { return duplicates(hostKind, doc.Hosts) },
		func() error { return duplicates(vpcKind, doc.VPCs) },
		func() error { return duplicates(subnetKind, doc.Subnets) },
		func() error { return duplicates(nicKind, doc.NICs) },
		func() error { return duplicates(securityGroupKind, doc.SecurityGroups) },
		func() error { return duplicates(routeTableKind, doc.RouteTables) },
		func() error { return duplicates(peeringKind, doc.Peerings) },
		func() error { return duplicates(internetGatewayKind, doc.InternetGateways) },
		func() error { return duplicates(publicIPPoolKind, doc.PublicIPPools) },
		func() error { return duplicates(publicIPKind, doc.PublicIPs) },
	} {
		if err := check(); err != nil {
			return err
		}
	}
	var changes []Change
	t, rev, err := s.run(r.Context(), pr, dryRun, func(t *txn) error {
		changes = nil
		// Referenced kinds first, so a document can create a VPC and its
		// subnets, groups, tables, gateway, NICs and public IPs at once.
		// (Routes may target NICs of the document: their check runs once
		// everything is in place.)
		for _, step := range []func() error{
			func() error { upsertSettings(t, doc.Settings, &changes); return nil },
			func() error { return upsert(t, accountKind, doc.Accounts, &changes) },
			func() error { return upsert(t, hostKind, doc.Hosts, &changes) },
			func() error { return upsert(t, publicIPPoolKind, doc.PublicIPPools, &changes) },
			func() error { return upsert(t, vpcKind, doc.VPCs, &changes) },
			func() error { return upsert(t, subnetKind, doc.Subnets, &changes) },
			func() error { return upsert(t, peeringKind, doc.Peerings, &changes) },
			func() error { return upsert(t, internetGatewayKind, doc.InternetGateways, &changes) },
			func() error {
				// The default groups of VPCs the document creates exist
				// now, so that the document's version of them (an
				// export's) updates them.
				model.EnsureDefaultGroups(t.p)
				return upsert(t, securityGroupKind, doc.SecurityGroups, &changes)
			},
			func() error {
				// Likewise the main tables of new VPCs.
				model.EnsureMainTables(t.p)
				return upsert(t, routeTableKind, doc.RouteTables, &changes)
			},
			func() error { return upsert(t, nicKind, doc.NICs, &changes) },
			func() error { return upsert(t, publicIPKind, doc.PublicIPs, &changes) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []Change{}
	}
	res := ApplyResult{Changes: changes, DryRun: dryRun}
	if t != nil && t.changed {
		res.Revision = rev
		setRevision(w, rev)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func duplicates[T any](k *kind[T], objs []T) error {
	seen := map[string]int{}
	for i := range objs {
		n := k.name(&objs[i])
		if j, ok := seen[n]; ok && n != "" {
			return invalid(fmt.Sprintf("%s[%d].name", k.docKey(), i), "%s %q is also %s[%d]", k.singular, n, k.docKey(), j)
		}
		seen[n] = i
	}
	return nil
}

// upsert creates or updates every object of objs, recording what it did.
func upsert[T any](t *txn, k *kind[T], objs []T, changes *[]Change) error {
	if len(objs) == 0 {
		return nil
	}
	items := k.items(t.p)
	idx := make(map[string]int, len(*items))
	for i := range *items {
		idx[k.name(&(*items)[i])] = i
	}
	for i := range objs {
		o := objs[i]
		path := fmt.Sprintf("%s[%d]", k.docKey(), i)
		name := k.name(&o)
		r := ref{k.singular, name}
		if j, ok := idx[name]; ok && name != "" {
			old := (*items)[j]
			if !canSee(k, t.v, &old) {
				return conflict(path+".name", "%s %q already exists", k.singular, name)
			}
			if err := k.merge(t.v, &old, &o); err != nil {
				return prefixed(err, path)
			}
			if equalObj(&old, &o) {
				t.paths[r] = path
				*changes = append(*changes, Change{Op: OpUnchanged, Kind: k.singular, Name: name})
				continue
			}
			// An object the caller only reads (a shared VPC) may be in
			// its document as exported, but not changed.
			if !canWrite(k, t.v, &old) {
				return readOnly(k.singular, name).withPrefix(path)
			}
			(*items)[j] = o
			t.touch(r, path)
			later(t, k, &old, o, path)
			*changes = append(*changes, Change{Op: OpUpdate, Kind: k.singular, Name: name, Fields: changedFields(old, o)})
			continue
		}
		if err := k.merge(t.v, nil, &o); err != nil {
			return prefixed(err, path)
		}
		later(t, k, nil, o, path)
		*items = append(*items, o)
		idx[name] = len(*items) - 1
		t.touch(r, path)
		*changes = append(*changes, Change{Op: OpCreate, Kind: k.singular, Name: name})
	}
	t.v.reindex()
	return nil
}

func prefixed(err error, prefix string) error {
	if e, ok := err.(*Error); ok {
		return e.withPrefix(prefix)
	}
	return err
}

// changedFields lists the JSON fields that differ between two objects.
func changedFields[T any](a, b T) []string {
	ma, mb := jsonFields(a), jsonFields(b)
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || !reflect.DeepEqual(va, vb) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func jsonFields(v any) map[string]any {
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}

// export returns the caller's visible policy as YAML, or as JSON when the
// client accepts application/json.
func (s *server) export(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p, err := s.policy(r.Context(), w)
	if err != nil {
		return err
	}
	vp := newView(pr, p).visiblePolicy()
	if acceptsJSON(r) {
		writeJSON(w, http.StatusOK, vp)
		return nil
	}
	data, err := vp.ToYAML()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

// acceptsJSON reports whether the Accept header asks for JSON (before
// YAML, if both are listed).
func acceptsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			return true
		case strings.Contains(mt, "yaml"):
			return false
		}
	}
	return false
}
