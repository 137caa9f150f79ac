package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

func TestSettings(t *testing.T) {
	e := newEnv(t)
	var st api.SettingsStatus
	// Everyone reads them; the default order is in force.
	for _, tok := range []string{e.admin, e.acme, e.globex} {
		e.want(200, "GET", "/v1/settings", tok, nil, fresh(&st))
		if st.Encaps != nil || !slices.Equal(st.EffectiveEncaps, []string{"vxlan"}) {
			t.Fatalf("default settings: %+v", st)
		}
	}
	e.wantErr(401, api.CodeUnauthenticated, "", "", "GET", "/v1/settings", "", nil)
	// Only an admin changes them.
	e.wantErr(403, api.CodePermissionDenied, "", "needs an admin token", "PUT", "/v1/settings", e.acme, `{"encaps": ["geneve"]}`)

	data := e.want(200, "PUT", "/v1/settings", e.admin, `{"encaps": ["Geneve", "vxlan"]}`, fresh(&st))
	if !slices.Equal(st.Encaps, []string{"geneve", "vxlan"}) || !slices.Equal(st.EffectiveEncaps, []string{"geneve", "vxlan"}) {
		t.Fatalf("PUT answered %s", data)
	}
	if got := e.b.snapshot().Settings; got == nil || !slices.Equal(got.Encaps, []string{"geneve", "vxlan"}) {
		t.Fatalf("stored settings %+v", got)
	}
	if e.lastHeader.Get(api.RevisionHeader) == "" {
		t.Error("no revision header")
	}
	commits := e.commits()
	// A GET's answer sent back changes nothing (effective_encaps is
	// ignored), nor does a body leaving encaps out.
	e.want(200, "PUT", "/v1/settings", e.admin, data, nil)
	e.want(200, "PUT", "/v1/settings", e.admin, `{}`, fresh(&st))
	e.want(200, "PUT", "/v1/settings", e.admin, `{"encaps": null}`, fresh(&st))
	if e.commits() != commits || !slices.Equal(st.Encaps, []string{"geneve", "vxlan"}) {
		t.Fatalf("no-op PUTs committed %d, settings %+v", e.commits()-commits, st)
	}
	e.wantErr(400, api.CodeInvalidArgument, "mtu", `unknown field "mtu"`, "PUT", "/v1/settings", e.admin, `{"mtu": 9000}`)
	// [] goes back to the default.
	e.want(200, "PUT", "/v1/settings", e.admin, `{"encaps": []}`, fresh(&st))
	if st.Encaps != nil || !slices.Equal(st.EffectiveEncaps, []string{"vxlan"}) || e.b.snapshot().Settings != nil {
		t.Fatalf("reset settings: %+v, stored %+v", st, e.b.snapshot().Settings)
	}
}

func TestSettingsApplyExport(t *testing.T) {
	e := newEnv(t)
	var res api.ApplyResult
	doc := "settings:\n  encaps: [geneve, gre]\n"
	e.want(200, "POST", "/v1/apply", e.admin, doc, fresh(&res))
	if len(res.Changes) != 1 || !reflect.DeepEqual(res.Changes[0], api.Change{Op: api.OpCreate, Kind: "settings", Name: "deployment"}) {
		t.Fatalf("apply: %+v", res.Changes)
	}
	e.want(200, "POST", "/v1/apply", e.admin, doc, fresh(&res))
	if len(res.Changes) != 1 || res.Changes[0].Op != api.OpUnchanged || res.Revision != 0 {
		t.Fatalf("apply again: %+v", res)
	}
	e.want(200, "POST", "/v1/apply", e.admin, "settings:\n  encaps: [gre]\n", fresh(&res))
	if len(res.Changes) != 1 || res.Changes[0].Op != api.OpUpdate || !slices.Equal(res.Changes[0].Fields, []string{"encaps"}) {
		t.Fatalf("apply update: %+v", res)
	}
	// An account neither applies nor exports them.
	e.wantErr(403, api.CodePermissionDenied, "settings", "only an admin", "POST", "/v1/apply", e.acme, doc)
	_, body := e.do("GET", "/v1/export", e.acme, nil)
	if strings.Contains(string(body), "settings") {
		t.Errorf("an account's export has the settings:\n%s", body)
	}
	_, body = e.do("GET", "/v1/export", e.admin, nil)
	p, err := model.ParseYAML(body)
	if err != nil || p.Settings == nil || !slices.Equal(p.Settings.Encaps, []string{"gre"}) {
		t.Fatalf("admin export: %v\n%s", err, body)
	}
	// The admin's export re-applies without a change.
	e.want(200, "POST", "/v1/apply", e.admin, string(body), fresh(&res))
	if res.Revision != 0 {
		t.Errorf("re-applying the export changed %+v", res.Changes)
	}
}

// TestHostTunnels: hosts' kinds and MTUs pass through their CRUD, and
// answers carry what the whole policy makes of them.
func TestHostTunnels(t *testing.T) {
	e := newEnv(t)
	e.want(200, "PUT", "/v1/settings", e.admin, `{"encaps": ["geneve", "vxlan"]}`, nil)
	var h api.HostStatus
	e.want(201, "POST", "/v1/hosts", e.admin, `{"name": "h3", "underlay_ip": "172.31.0.13", "encaps": ["VXLAN"], "underlay_mtu": 9000, "datapath_type": "system"}`, fresh(&h))
	if !slices.Equal(h.Encaps, []string{"vxlan"}) || h.UnderlayMTU != 9000 || !slices.Equal(h.UsableEncaps, []string{"vxlan"}) {
		t.Fatalf("created host: %+v", h)
	}
	if !reflect.DeepEqual(h.Tunnels, map[string]string{"h1": "vxlan", "h2": "vxlan"}) || h.VMMTU != 1450 {
		t.Fatalf("created host's tunnels %v, vm_mtu %d", h.Tunnels, h.VMMTU)
	}
	e.want(200, "GET", "/v1/hosts/h1", e.admin, nil, fresh(&h))
	if !slices.Equal(h.UsableEncaps, []string{"geneve", "vxlan"}) || !reflect.DeepEqual(h.Tunnels, map[string]string{"h2": "geneve", "h3": "vxlan"}) ||
		h.VMMTU != 1450 || len(h.Problems) != 0 {
		t.Fatalf("h1: %+v", h)
	}

	// stt on the userspace datapath is reported, not refused; a host with
	// nothing in common with the others is too.
	e.want(201, "POST", "/v1/hosts", e.admin, `{"name": "h4", "underlay_ip": "172.31.0.14", "encaps": ["stt", "gre"], "datapath_type": "netdev"}`, fresh(&h))
	if !slices.Equal(h.UsableEncaps, []string{"gre"}) || len(h.Tunnels) != 0 || h.VMMTU != 1500-42 {
		t.Fatalf("h4: %+v", h)
	}
	problems := strings.Join(h.Problems, "\n")
	for _, want := range []string{"encap stt unusable", "cannot transmit", "no encapsulation in common with host h1"} {
		if !strings.Contains(problems, want) {
			t.Errorf("h4's problems lack %q:\n%s", want, problems)
		}
	}
	var hosts struct{ Items []api.HostStatus }
	e.want(200, "GET", "/v1/hosts", e.admin, nil, fresh(&hosts))
	if len(hosts.Items) != 4 || !slices.ContainsFunc(hosts.Items[0].Problems, func(p string) bool { return strings.Contains(p, "host h4") }) {
		t.Fatalf("list: %+v", hosts.Items)
	}

	// GET-edit-PUT: computed fields are ignored; a host stored with the
	// older encap that now gives encaps loses encap.
	e.want(201, "POST", "/v1/hosts", e.admin, `{"name": "h5", "underlay_ip": "172.31.0.15", "encap": "gre"}`, nil)
	data := e.want(200, "GET", "/v1/hosts/h5", e.admin, nil, nil)
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	obj["encaps"] = []string{"gre", "vxlan"}
	e.want(200, "PUT", "/v1/hosts/h5", e.admin, obj, fresh(&h))
	if h.Encap != "" || !slices.Equal(h.Encaps, []string{"gre", "vxlan"}) || h.Tunnels["h1"] != "vxlan" || h.Tunnels["h4"] != "gre" {
		t.Fatalf("h5 after PUT: %+v", h)
	}
	e.wantErr(400, api.CodeInvalidArgument, "encap", "not both", "PUT", "/v1/hosts/h5", e.admin, `{"underlay_ip": "172.31.0.15", "encap": "geneve", "encaps": ["gre"]}`)
	// Hosts stay the admin's.
	e.wantErr(403, api.CodePermissionDenied, "", "", "GET", "/v1/hosts/h1", e.acme, nil)
}

func TestNICMTU(t *testing.T) {
	e := newEnv(t)
	var n api.NICStatus
	e.want(200, "GET", "/v1/nics/web1", e.acme, nil, fresh(&n))
	if n.MTU != 1450 {
		t.Fatalf("web1 (on h1, vxlan, 1500): mtu %d", n.MTU)
	}
	// The underlay MTU of both ends and the pair's kind count.
	e.want(200, "PUT", "/v1/hosts/h1", e.admin, `{"underlay_ip": "172.31.0.11", "underlay_mtu": 9000, "encaps": ["gre"]}`, nil)
	e.want(200, "PUT", "/v1/hosts/h2", e.admin, `{"underlay_ip": "172.31.0.12", "underlay_mtu": 9000, "encaps": ["gre", "vxlan"]}`, nil)
	data := e.want(200, "GET", "/v1/nics/web1", e.acme, nil, fresh(&n))
	if n.MTU != 9000-42 {
		t.Fatalf("web1 on a 9000-byte gre underlay: mtu %d", n.MTU)
	}
	var list struct{ Items []api.NICStatus }
	e.want(200, "GET", "/v1/nics", e.acme, nil, fresh(&list))
	if len(list.Items) != 1 || list.Items[0].MTU != 9000-42 {
		t.Fatalf("list: %+v", list.Items)
	}
	// An unplaced NIC has none; the answer sent back changes nothing.
	e.want(201, "POST", "/v1/nics", e.acme, `{"name": "loose", "subnet": "acme-web"}`, fresh(&n))
	if n.MTU != 0 || strings.Contains(string(e.want(200, "GET", "/v1/nics/loose", e.acme, nil, nil)), "mtu") {
		t.Fatalf("unplaced NIC: %+v", n)
	}
	commits := e.commits()
	e.want(200, "PUT", "/v1/nics/web1", e.acme, data, nil)
	if e.commits() != commits {
		t.Error("PUT of a GET's answer committed")
	}
	// Verbs answer with it too.
	e.want(200, "PUT", "/v1/nics/web1/source-dest-check", e.acme, `{"source_dest_check": false}`, fresh(&n))
	if n.MTU != 9000-42 {
		t.Fatalf("verb answer: %+v", n)
	}
}

// fresh zeroes *p for a decode (json.Unmarshal merges into what is there).
func fresh[T any](p *T) *T {
	var zero T
	*p = zero
	return p
}

// TestClientSettings: the client's settings calls and computed types.
func TestClientSettings(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	adm, err := client.New(ts.URL, e.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	acme, err := client.New(ts.URL, e.acme, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acme.SetEncaps(bg, []string{"geneve"}); client.StatusOf(err) != 403 {
		t.Fatalf("account SetEncaps: %v", err)
	}
	st, err := adm.SetEncaps(bg, []string{"geneve", "vxlan"})
	if err != nil || !slices.Equal(st.Encaps, []string{"geneve", "vxlan"}) || !slices.Equal(st.EffectiveEncaps, st.Encaps) {
		t.Fatalf("SetEncaps: %+v %v", st, err)
	}
	var got client.Settings
	if err := acme.GetSettings(bg, &got); err != nil || !slices.Equal(got.EffectiveEncaps, []string{"geneve", "vxlan"}) {
		t.Fatalf("GetSettings: %+v %v", got, err)
	}
	obj := map[string]any{"encaps": []string{"gre"}, "effective_encaps": []string{"ignored"}}
	if err := adm.UpdateSettings(bg, &obj); err != nil || obj["effective_encaps"].([]any)[0] != "gre" {
		t.Fatalf("UpdateSettings: %+v %v", obj, err)
	}
	if st, err := adm.SetEncaps(bg, nil); err != nil || st.Encaps != nil || !slices.Equal(st.EffectiveEncaps, []string{"vxlan"}) {
		t.Fatalf("SetEncaps(nil): %+v %v", st, err)
	}
	var h client.Host
	if err := adm.Get(bg, "host", "h1", &h); err != nil || h.VMMTU != 1450 || h.Tunnels["h2"] != "vxlan" {
		t.Fatalf("host: %+v %v", h, err)
	}
	var nics []client.NIC
	if err := acme.List(bg, "nic", &nics); err != nil || len(nics) != 1 || nics[0].MTU != 1450 {
		t.Fatalf("nics: %+v %v", nics, err)
	}
	if !client.IsSettings("Settings") || !client.IsSettings("setting") || client.IsSettings("host") {
		t.Error("IsSettings")
	}
}
