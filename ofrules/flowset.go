package ofrules

import (
	"sort"
)

// FlowSet is a set of flows keyed by their OpenFlow identity. Adding a flow
// with the key of an existing one merges conjunction actions when both are
// pure conjunction flows (OVS keeps one flow per match), and otherwise keeps
// the first, which the compiler treats as a bug to be caught by tests.
type FlowSet struct {
	flows map[Key]*Flow
	// conj indexes the conjunction actions of merged flows, so merging n
	// clauses into one flow costs O(n), not O(n²); their actions are
	// sorted once, by settle, before anyone reads them.
	conj  map[Key]map[Conjunction]bool
	dirty map[Key]bool
}

// NewFlowSet returns an empty set.
func NewFlowSet() *FlowSet { return &FlowSet{flows: make(map[Key]*Flow)} }

// settle sorts the conjunction actions of flows merged since the last call.
func (s *FlowSet) settle() {
	for k := range s.dirty {
		sortConj(s.flows[k].Actions)
	}
	s.dirty = nil
}

// Len is the number of flows.
func (s *FlowSet) Len() int { return len(s.flows) }

// Add inserts f. It reports false if a different flow with the same key was
// already present (a conflict) and leaves the set unchanged in that case.
func (s *FlowSet) Add(f Flow) bool {
	k := f.Key()
	if old, ok := s.flows[k]; ok {
		if isConjOnly(old.Actions) && isConjOnly(f.Actions) {
			s.mergeConj(k, old, f.Actions)
			return true
		}
		return sameActions(old.Actions, f.Actions) && old.Cookie == f.Cookie
	}
	c := f
	s.flows[k] = &c
	return true
}

// Get returns the flow with key k.
func (s *FlowSet) Get(k Key) (Flow, bool) {
	s.settle()
	f, ok := s.flows[k]
	if !ok {
		return Flow{}, false
	}
	return *f, true
}

// Flows returns the flows sorted by table, descending priority, then match
// text: a deterministic order for text output and golden tests.
func (s *FlowSet) Flows() []Flow {
	s.settle()
	out := make([]Flow, 0, len(s.flows))
	for _, f := range s.flows {
		out = append(out, *f)
	}
	SortFlows(out)
	return out
}

// SortFlows orders flows like Flows does.
func SortFlows(fs []Flow) {
	keys := make([]Key, len(fs))
	for i := range fs {
		// Sort by the readable match so dumps read naturally.
		keys[i] = Key{Table: fs[i].Table, Priority: fs[i].Priority, Match: fs[i].Match.Text()}
	}
	idx := make([]int, len(fs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		ka, kb := keys[idx[a]], keys[idx[b]]
		if ka.Table != kb.Table {
			return ka.Table < kb.Table
		}
		if ka.Priority != kb.Priority {
			return ka.Priority > kb.Priority
		}
		return ka.Match < kb.Match
	})
	sorted := make([]Flow, len(fs))
	for i, j := range idx {
		sorted[i] = fs[j]
	}
	copy(fs, sorted)
}

func isConjOnly(acts []Action) bool {
	if len(acts) == 0 {
		return false
	}
	for _, a := range acts {
		if _, ok := a.(Conjunction); !ok {
			return false
		}
	}
	return true
}

func (s *FlowSet) mergeConj(k Key, old *Flow, add []Action) {
	if s.dirty == nil {
		s.dirty = map[Key]bool{}
	}
	seen := s.conj[k]
	if seen == nil {
		// Few actions (the common case): a linear scan beats a map.
		if len(old.Actions)+len(add) <= smallConj {
			acts := old.Actions
			if !s.dirty[k] {
				// The first flow's actions become owned by the set.
				acts = append(make([]Action, 0, smallConj), acts...)
			}
			for _, x := range add {
				if !containsConj(acts, x.(Conjunction)) {
					acts = append(acts, x)
				}
			}
			old.Actions = acts
			s.dirty[k] = true
			return
		}
		if s.conj == nil {
			s.conj = map[Key]map[Conjunction]bool{}
		}
		seen = make(map[Conjunction]bool, len(old.Actions)+len(add))
		old.Actions = append([]Action(nil), old.Actions...)
		for _, x := range old.Actions {
			seen[x.(Conjunction)] = true
		}
		s.conj[k] = seen
	}
	for _, x := range add {
		if c := x.(Conjunction); !seen[c] {
			seen[c] = true
			old.Actions = append(old.Actions, c)
			s.dirty[k] = true
		}
	}
}

// smallConj is how many conjunction actions a merged flow collects by
// linear scan before it gets an index.
const smallConj = 16

func containsConj(acts []Action, c Conjunction) bool {
	for _, a := range acts {
		if a.(Conjunction) == c {
			return true
		}
	}
	return false
}

func sortConj(out []Action) {
	sort.Slice(out, func(i, j int) bool {
		ci, cj := out[i].(Conjunction), out[j].(Conjunction)
		if ci.ID != cj.ID {
			return ci.ID < cj.ID
		}
		return ci.Clause < cj.Clause
	})
}

// Op is a flow-mod operation.
type Op int

// Flow-mod operations used by OpenVPC.
const (
	OpAdd          Op = iota // add (replaces an identical match)
	OpModifyStrict           // change actions/cookie of exactly this flow
	OpDeleteStrict           // delete exactly this flow
	OpDeleteCookie           // delete every flow whose cookie matches Cookie/CookieMask, all tables
)

func (o Op) String() string {
	return [...]string{"add", "modify-strict", "delete-strict", "delete-cookie"}[o]
}

// FlowMod is one change to a switch's flow table.
type FlowMod struct {
	Op         Op
	Flow       Flow
	CookieMask uint64 // for OpDeleteCookie: Flow.Cookie/CookieMask
}

// Diff returns the flow-mods that turn installed into desired: deletes
// first, then modifies, then adds, each in deterministic order.
func Diff(installed, desired *FlowSet) []FlowMod {
	installed.settle()
	desired.settle()
	var del, mod, add []FlowMod
	for k, f := range installed.flows {
		if _, ok := desired.flows[k]; !ok {
			del = append(del, FlowMod{Op: OpDeleteStrict, Flow: *f})
		}
	}
	for k, f := range desired.flows {
		old, ok := installed.flows[k]
		switch {
		case !ok:
			add = append(add, FlowMod{Op: OpAdd, Flow: *f})
		case old.Cookie != f.Cookie:
			// Modify keeps the old cookie: a changed cookie needs a full add.
			add = append(add, FlowMod{Op: OpAdd, Flow: *f})
		case !sameActions(old.Actions, f.Actions):
			// Modify-strict keeps the flow's counters.
			mod = append(mod, FlowMod{Op: OpModifyStrict, Flow: *f})
		}
	}
	sortMods(del)
	sortMods(mod)
	sortMods(add)
	out := make([]FlowMod, 0, len(del)+len(mod)+len(add))
	out = append(out, del...)
	out = append(out, mod...)
	return append(out, add...)
}

func sortMods(ms []FlowMod) {
	fs := make([]Flow, len(ms))
	for i := range ms {
		fs[i] = ms[i].Flow
	}
	SortFlows(fs)
	for i := range ms {
		ms[i].Flow = fs[i]
	}
}

// ReplaceAll returns the mods that atomically replace every flow in our
// cookie space (cookie/mask) with desired: one delete by cookie, then adds.
func ReplaceAll(desired *FlowSet, cookie, mask uint64) []FlowMod {
	fs := desired.Flows()
	out := make([]FlowMod, 0, len(fs)+1)
	out = append(out, FlowMod{Op: OpDeleteCookie, Flow: Flow{Cookie: cookie}, CookieMask: mask})
	for _, f := range fs {
		out = append(out, FlowMod{Op: OpAdd, Flow: f})
	}
	return out
}

// ActionsEqual reports whether two action lists are the same (what their
// text says, without formatting it: Diff compares every flow of a host).
func ActionsEqual(a, b []Action) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ca, okA := a[i].(CT)
		cb, okB := b[i].(CT)
		switch {
		case okA != okB:
			return false
		case okA:
			if ca.Commit != cb.Commit || ca.Table != cb.Table || ca.Zone != cb.Zone || ca.ZoneField != cb.ZoneField ||
				ca.ZoneOfs != cb.ZoneOfs || ca.ZoneBits != cb.ZoneBits || !ActionsEqual(ca.Exec, cb.Exec) {
				return false
			}
		case a[i] != b[i]:
			return false
		}
	}
	return true
}

// sameActions is ActionsEqual, falling back to the text form for values
// that differ only in representation (e.g. a decoded full mask).
func sameActions(a, b []Action) bool {
	return ActionsEqual(a, b) || ActionsText(a, nil) == ActionsText(b, nil)
}
