package api

import (
	"net/http"
	"slices"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/tunnels"
)

// The deployment's settings, and what the tunnel kinds and MTUs make of
// hosts and NICs.
//
// The settings are one object (GET/PUT /v1/settings): every principal
// reads them, only an admin changes them. encaps is the deployment's order
// of tunnel kinds (default [vxlan]); left out (null) on PUT it keeps its
// value, [] goes back to the default. Answers add effective_encaps, the
// order in force. model.Build validates them (400 on encaps[i]; in a
// policy document, settings.encaps[i]).
//
// A host may narrow the kinds (encaps, or the older single encap) and
// give its underlay MTU; answers add, computed from the whole policy,
// usable_encaps (those its datapath can send with), vm_mtu (the MTU its
// VMs must use), problems and tunnels (the kind it uses with each peer).
// A NIC's answers add its mtu (its host's vm_mtu).

// SettingsKind names the settings in policy-document changes (Change.Kind)
// and SettingsName is their name there (Change.Name).
const (
	SettingsKind = "settings"
	SettingsName = "deployment"
)

// settingsRef is the settings as validation errors name them
// (model.FieldError Kind "settings", no name).
var settingsRef = ref{SettingsKind, ""}

// SettingsStatus is the settings as the API answers them.
type SettingsStatus struct {
	model.Settings
	// EffectiveEncaps is the order in force: Encaps, or the default
	// (computed, read-only).
	EffectiveEncaps []string `json:"effective_encaps"`
}

// settingsComputed are the fields of SettingsStatus a PUT may send back.
var settingsComputed = []string{"effective_encaps"}

func presentSettings(st *model.Settings) SettingsStatus {
	var out SettingsStatus
	if st != nil {
		out.Encaps = slices.Clone(st.Encaps)
	}
	// The settings alone build: their order, normalized, or the default.
	if n, err := model.Build(&model.Policy{Settings: st}); err == nil {
		out.EffectiveEncaps = n.EncapOrder
	} else {
		out.EffectiveEncaps = out.Encaps // stored settings build; show them
	}
	if out.EffectiveEncaps == nil {
		out.EffectiveEncaps = []string{}
	}
	return out
}

// mergeSettings returns the settings o makes of old: encaps left out
// (nil) keep their value, an empty list goes back to the default. Empty
// settings are nil.
func mergeSettings(old, o *model.Settings) *model.Settings {
	out := model.Settings{}
	if o != nil {
		out.Encaps = o.Encaps
	}
	if out.Encaps == nil && old != nil {
		out.Encaps = old.Encaps
	}
	if len(out.Encaps) == 0 {
		return nil
	}
	out.Encaps = normalKinds(out.Encaps)
	return &out
}

// normalKinds returns a copy of kinds with those that are tunnel kinds
// written as such ("VXLAN " is vxlan); others are left for model.Build to
// report.
func normalKinds(kinds []string) []string {
	out := slices.Clone(kinds)
	for i, k := range out {
		if kind, err := tunnels.ParseKind(k); err == nil {
			out[i] = string(kind)
		}
	}
	return out
}

func sameSettings(a, b *model.Settings) bool {
	var x, y []string
	if a != nil {
		x = a.Encaps
	}
	if b != nil {
		y = b.Encaps
	}
	return slices.Equal(x, y)
}

func (s *server) getSettings(w http.ResponseWriter, r *http.Request, _ Principal) error {
	p, err := s.policy(r.Context(), w)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, presentSettings(p.Settings))
	return nil
}

func (s *server) putSettings(w http.ResponseWriter, r *http.Request, pr Principal) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var body model.Settings
	if err := decodeJSON(withoutFields(data, settingsComputed), &body); err != nil {
		return err
	}
	t, rev, err := s.run(r.Context(), pr, false, func(t *txn) error {
		st := mergeSettings(t.p.Settings, &body)
		if sameSettings(st, t.p.Settings) {
			return nil
		}
		t.p.Settings = st
		t.touch(settingsRef, "")
		return nil
	})
	if err != nil {
		return err
	}
	setRevision(w, rev)
	writeJSON(w, http.StatusOK, presentSettings(t.p.Settings))
	return nil
}

// upsertSettings applies a policy document's settings.
func upsertSettings(t *txn, doc *model.Settings, changes *[]Change) {
	if doc == nil {
		return
	}
	old := t.p.Settings
	st := mergeSettings(old, doc)
	switch {
	case sameSettings(st, old):
		t.paths[settingsRef] = SettingsKind
		*changes = append(*changes, Change{Op: OpUnchanged, Kind: SettingsKind, Name: SettingsName})
		return
	case old == nil:
		*changes = append(*changes, Change{Op: OpCreate, Kind: SettingsKind, Name: SettingsName})
	case st == nil:
		*changes = append(*changes, Change{Op: OpUpdate, Kind: SettingsKind, Name: SettingsName, Fields: []string{"encaps"}})
	default:
		*changes = append(*changes, Change{Op: OpUpdate, Kind: SettingsKind, Name: SettingsName, Fields: changedFields(*old, *st)})
	}
	t.p.Settings = st
	t.touch(settingsRef, SettingsKind)
}

func settingsRoutes(s *server) []route {
	return []route{
		{method: http.MethodGet, path: "/v1/settings", auth: authAny, h: s.getSettings, doc: opDoc{
			id: "getSettings", tag: "settings", summary: "The deployment's settings: its order of tunnel kinds (encaps) and, computed, the order in force (effective_encaps; default [vxlan]).",
			response: "SettingsStatus", status: http.StatusOK}},
		{method: http.MethodPut, path: "/v1/settings", auth: authAdmin, h: s.putSettings, doc: opDoc{
			id: "updateSettings", tag: "settings", summary: "Change the deployment's settings (encaps left out keep their value; [] is the default). Admin only. Returns them.",
			request: "Settings", response: "SettingsStatus", status: http.StatusOK, write: true}},
	}
}

// HostStatus is a host as the API answers it: the stored host and what
// its tunnel kinds and MTU make of it in the whole policy (computed,
// read-only; absent while the policy does not build).
type HostStatus struct {
	model.Host
	// UsableEncaps are the kinds configured for the host (its own encaps,
	// else the deployment's) that its datapath can send with.
	UsableEncaps []string `json:"usable_encaps,omitempty"`
	// VMMTU is the MTU its VMs' NICs must use.
	VMMTU int `json:"vm_mtu,omitempty"`
	// Problems are reasons some of its traffic cannot flow.
	Problems []string `json:"problems,omitempty"`
	// Tunnels maps each peer host to the kind the pair uses (peers with
	// no kind in common are missing, and named in Problems).
	Tunnels map[string]string `json:"tunnels,omitempty"`
}

var hostComputed = []string{"usable_encaps", "vm_mtu", "problems", "tunnels"}

func presentHost(n *model.Net, o *model.Host) any {
	out := HostStatus{Host: *o}
	if n == nil || n.Hosts[o.Name] == nil {
		return out
	}
	h := n.Hosts[o.Name]
	out.UsableEncaps = slices.Clone(h.Usable)
	out.VMMTU = h.VMMTU
	out.Problems = slices.Clone(h.Problems)
	for _, peer := range n.HostNames {
		if kind, ok := n.PairEncap(o.Name, peer); ok && peer != o.Name {
			if out.Tunnels == nil {
				out.Tunnels = map[string]string{}
			}
			out.Tunnels[peer] = kind
		}
	}
	return out
}

// mergeHost checks a created or updated host. A GET-edit-PUT of a host
// stored with the older encap that now gives encaps drops encap (the
// policy refuses both).
func mergeHost(_ *view, old, o *model.Host) error {
	if len(o.Encaps) == 0 {
		o.Encaps = nil
	} else {
		o.Encaps = normalKinds(o.Encaps)
	}
	if kind, err := tunnels.ParseKind(o.Encap); err == nil {
		o.Encap = string(kind)
	}
	if old != nil && len(old.Encaps) == 0 && len(o.Encaps) > 0 && o.Encap != "" && o.Encap == old.Encap {
		o.Encap = ""
	}
	return nil
}

// NICStatus is a NIC as the API answers it, with its computed MTU.
type NICStatus struct {
	model.NIC
	// MTU is the MTU the VM must give the NIC: its host's vm_mtu
	// (absent while the NIC is on no host).
	MTU int `json:"mtu,omitempty"`
}

func presentNIC(n *model.Net, o *model.NIC) any {
	out := NICStatus{NIC: *o}
	if n != nil && n.NICs[o.Name] != nil {
		out.MTU = n.NICs[o.Name].MTU
	}
	return out
}
