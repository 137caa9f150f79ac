// Package sim runs a packet through a set of OpenFlow flows the way
// ovs-vswitchd's classifier would (priorities, masks, conjunctive matches,
// goto_table, registers, conntrack with an assumed state) and records every
// step. It is what `openvpc trace` uses to explain, offline or against the
// flows a switch holds, why a packet is forwarded or dropped.
package sim

import (
	"fmt"
	"sort"

	"github.com/openvpc/openvpc/ofrules"
)

// Packet holds the values of the fields a packet has (unset fields are 0).
type Packet map[ofrules.Field]uint64

// Clone copies p.
func (p Packet) Clone() Packet {
	c := make(Packet, len(p))
	for k, v := range p {
		c[k] = v
	}
	return c
}

// Options shape a trace.
type Options struct {
	// CtState is the conntrack state a ct() with recirculation gives the
	// packet (trk is added); default new. Use est to see the path of an
	// established connection.
	CtState uint64
	// MaxSteps bounds the trace (default 64).
	MaxSteps int
	// PacketLen is the frame's length in bytes (Ethernet header
	// included), which check_pkt_larger compares; default
	// DefaultPacketLen.
	PacketLen int
}

// DefaultPacketLen is the packet length a trace assumes when
// Options.PacketLen is not set.
const DefaultPacketLen = 100

// Step is one table visited.
type Step struct {
	Table uint8
	Flow  *ofrules.Flow // nil: no flow matched (the packet is dropped)
	// Conj is the conjunction id that selected Flow (0 if none).
	Conj uint32
	// Notes say what the actions did beyond the flow's text (ct, commit).
	Notes []string
}

// Result is a whole trace.
type Result struct {
	Steps []Step
	// Outputs are the ports the packet was sent to (ofrules.PortInPort for
	// IN_PORT); empty means dropped.
	Outputs []uint32
	// Final is the packet as it left (or was dropped).
	Final Packet
	// Committed lists conntrack commits: zone and label.
	Committed []Commit
}

// Commit is one ct(commit) the packet went through.
type Commit struct {
	Zone  uint16
	Label uint64
}

// Dropped reports whether the packet went nowhere.
func (r Result) Dropped() bool { return len(r.Outputs) == 0 }

// Switch is a flow table set indexed for lookups.
type Switch struct {
	tables map[uint8][]*ofrules.Flow // by descending priority
}

// New indexes flows.
func New(flows []ofrules.Flow) *Switch {
	s := &Switch{tables: map[uint8][]*ofrules.Flow{}}
	for i := range flows {
		f := flows[i]
		s.tables[f.Table] = append(s.tables[f.Table], &f)
	}
	for _, fs := range s.tables {
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].Priority > fs[j].Priority })
	}
	return s
}

// Trace runs pkt from table 0.
func (s *Switch) Trace(pkt Packet, opt Options) Result {
	if opt.CtState == 0 {
		opt.CtState = ofrules.CtNew
	}
	if opt.MaxSteps == 0 {
		opt.MaxSteps = 64
	}
	if opt.PacketLen <= 0 {
		opt.PacketLen = DefaultPacketLen
	}
	p := pkt.Clone()
	var res Result
	table := uint8(0)
	for len(res.Steps) < opt.MaxSteps {
		f, conj := s.lookup(table, p)
		step := Step{Table: table, Flow: f, Conj: conj}
		if f == nil {
			res.Steps = append(res.Steps, step)
			break
		}
		next, ok := s.execute(f.Actions, p, opt, &res, &step)
		res.Steps = append(res.Steps, step)
		if !ok {
			break
		}
		table = next
	}
	res.Final = p
	return res
}

// execute applies actions; it returns the next table, or ok=false when the
// pipeline ends.
func (s *Switch) execute(acts []ofrules.Action, p Packet, opt Options, res *Result, step *Step) (uint8, bool) {
	for i, a := range acts {
		switch a := a.(type) {
		case ofrules.SetField:
			mask := a.Mask
			if mask == 0 {
				mask = fullMask(a.Field)
			}
			p[a.Field] = p[a.Field]&^mask | a.Value&mask
		case ofrules.Move:
			n := a.NBits
			if n == 0 {
				n = a.Src.Bits()
			}
			m := uint64(1)<<n - 1
			if n >= 64 {
				m = ^uint64(0)
			}
			v := (p[a.Src] >> a.SrcOfs) & m
			p[a.Dst] = p[a.Dst]&^(m<<a.DstOfs) | v<<a.DstOfs
		case ofrules.Output:
			res.Outputs = append(res.Outputs, a.Port)
		case ofrules.OutputReg:
			res.Outputs = append(res.Outputs, uint32((p[a.Field]>>a.Ofs)&(uint64(1)<<a.NBits-1)))
		case ofrules.Goto:
			return a.Table, true
		case ofrules.Resubmit:
			if i == len(acts)-1 {
				// Last action: nothing comes back to this flow, so it
				// reads as going on in that table (as goto_table does
				// forward).
				return a.Table, true
			}
			step.Notes = append(step.Notes, fmt.Sprintf("resubmit(,%d) not followed", a.Table))
		case ofrules.CT:
			zone := a.Zone
			if a.ZoneField != ofrules.FieldInvalid {
				zone = uint16(p[a.ZoneField] >> a.ZoneOfs)
			}
			if a.Commit {
				var rec Packet = Packet{ofrules.CtLabel: p[ofrules.CtLabel], ofrules.CtMark: p[ofrules.CtMark]}
				for _, x := range a.Exec {
					// exec() writes the connection's mark/label from the packet's fields.
					switch x := x.(type) {
					case ofrules.SetField:
						mask := x.Mask
						if mask == 0 {
							mask = fullMask(x.Field)
						}
						rec[x.Field] = rec[x.Field]&^mask | x.Value&mask
					case ofrules.Move:
						m := uint64(1)<<x.NBits - 1
						rec[x.Dst] = rec[x.Dst]&^(m<<x.DstOfs) | ((p[x.Src]>>x.SrcOfs)&m)<<x.DstOfs
					}
				}
				res.Committed = append(res.Committed, Commit{Zone: zone, Label: rec[ofrules.CtLabel]})
				step.Notes = append(step.Notes, fmt.Sprintf("conntrack commit in zone %d, label %#x", zone, rec[ofrules.CtLabel]))
			}
			if a.Table >= 0 {
				p[ofrules.CtState] = opt.CtState | ofrules.CtTrk
				p[ofrules.CtZone] = uint64(zone)
				step.Notes = append(step.Notes, fmt.Sprintf("conntrack in zone %d: assumed state %s, recirculate", zone,
					ofrules.FormatValue(ofrules.CtState, p[ofrules.CtState], 0)))
				return uint8(a.Table), true
			}
		case ofrules.CheckPktLarger:
			bit, cmp := uint64(0), "<="
			if opt.PacketLen > int(a.Len) {
				bit, cmp = 1, ">"
			}
			p[a.Dst] = p[a.Dst]&^(1<<a.Ofs) | bit<<a.Ofs
			step.Notes = append(step.Notes, fmt.Sprintf("check_pkt_larger: packet length %d %s %d, %s[%d]=%d",
				opt.PacketLen, cmp, a.Len, a.Dst, a.Ofs, bit))
		case ofrules.Controller:
			res.Outputs = append(res.Outputs, ofrules.PortController)
		case ofrules.Conjunction:
			// only in clause flows, which lookup never returns
		}
	}
	return 0, false
}

// lookup finds the flow OVS would pick: the highest-priority flow that
// matches, where conjunctive clause flows of higher priority than the best
// ordinary match are combined per conjunction id and, when one is
// complete, the packet is looked up again with that conj_id.
func (s *Switch) lookup(table uint8, p Packet) (*ofrules.Flow, uint32) {
	fs := s.tables[table]
	var hard *ofrules.Flow
	for _, f := range fs {
		if !isConj(f) && matches(f.Match, p) {
			hard = f
			break
		}
	}
	type clauses struct {
		n    uint8
		seen map[uint8]bool
	}
	for i := 0; i < len(fs); {
		prio := fs[i].Priority
		if hard != nil && prio < hard.Priority {
			break
		}
		byID := map[uint32]*clauses{}
		for ; i < len(fs) && fs[i].Priority == prio; i++ {
			f := fs[i]
			if !isConj(f) || !matches(f.Match, p) {
				continue
			}
			for _, a := range f.Actions {
				c := a.(ofrules.Conjunction)
				if byID[c.ID] == nil {
					byID[c.ID] = &clauses{n: c.NClauses, seen: map[uint8]bool{}}
				}
				byID[c.ID].seen[c.Clause] = true
			}
		}
		var done []uint32
		for id, c := range byID {
			if len(c.seen) == int(c.n) {
				done = append(done, id)
			}
		}
		if len(done) == 0 {
			continue
		}
		// Several complete conjunctions at one priority: OVS picks one; we
		// pick the smallest id, deterministically.
		sort.Slice(done, func(a, b int) bool { return done[a] < done[b] })
		q := p.Clone()
		q[ofrules.ConjID] = uint64(done[0])
		for _, f := range fs {
			if !isConj(f) && hasConjID(f.Match) && matches(f.Match, q) {
				return f, done[0]
			}
		}
	}
	return hard, 0
}

func isConj(f *ofrules.Flow) bool {
	if len(f.Actions) == 0 {
		return false
	}
	for _, a := range f.Actions {
		if _, ok := a.(ofrules.Conjunction); !ok {
			return false
		}
	}
	return true
}

func hasConjID(m ofrules.Match) bool {
	_, ok := m.Get(ofrules.ConjID)
	return ok
}

// matches applies a match to a packet. A flow matching conj_id only matches
// a packet carrying that id (ordinary packets carry none).
func matches(m ofrules.Match, p Packet) bool {
	for _, mf := range m {
		mask := mf.Mask
		if mask == 0 {
			mask = fullMask(mf.Field)
			if mf.Field == ofrules.CtState {
				mask = mf.Value // "+est+trk": those bits set
			}
		}
		if p[mf.Field]&mask != mf.Value&mask {
			return false
		}
	}
	return true
}

func fullMask(f ofrules.Field) uint64 {
	b := f.Bits()
	if b >= 64 {
		return ^uint64(0)
	}
	return uint64(1)<<b - 1
}
