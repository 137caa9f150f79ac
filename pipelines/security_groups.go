package pipelines

import (
	"sort"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// Security groups: stateful, allow-only, enforced twice per packet — egress
// rules at the source NIC (tables 20–32, conntrack zone of the source NIC),
// ingress rules at the destination NIC (tables 50–57, its zone).
//
//   20/50 *Ct:       ct(zone=reg5, table=21/51)
//   21/51 *CtState:  +inv → drop; est or rel (not new) → skip the rules
//                    ("sticky": removing a rule never cuts an established
//                    connection; a strict mode would re-check here);
//                    +new → the rules
//   30/55 *Sg:       one conjunction per rule: clause 1 the NIC's port key
//                    (reg1/reg2), then the peer (nw_dst/nw_src: a CIDR or
//                    every address of the peer group's members) and the
//                    L4 match (protocol, minimal masked port ranges, ICMP
//                    type/code) when the rule restricts them. Clause flows
//                    with the same match carry all their conjunction()
//                    actions in one flow, so a host's flow count grows with
//                    local NICs + distinct peer addresses + distinct port
//                    masks, not their product. The allowing rule's id goes
//                    to reg6/reg7. Miss: drop.
//   32/57 *Commit:   ct(commit) in the zone, rule id into ct_label
//                    (egress bits 0–31, ingress 32–63) for traces.

// Priorities in the rule tables. A rule that restricts nothing but the NIC
// (all protocols from anywhere) is a plain flow above the conjunctions:
// OVS resolves a packet matching both by priority, never ambiguously.
const (
	prioSgPlain = 200
	prioSgConj  = 100
)

// ctLabelIngressOfs is where the ingress rule id sits in ct_label.
const ctLabelIngressOfs = 32

// sgHalf describes one direction of enforcement.
type sgHalf struct {
	dir                     model.Direction
	ct, ctState, sg, commit uint8
	after                   uint8 // table after an allowed or established packet
	new                     uint8 // table for a new connection before the rules
	port                    RegField
	peer                    ofrules.Field
	rule                    RegField
	labelOfs                int
	// fwd marks packets an appliance forwards (egress) or is routed
	// (ingress): an invalid conntrack state is judged by the rules.
	fwd uint64
}

var (
	egressHalf = sgHalf{
		dir: model.Egress, ct: TableEgressCt, ctState: TableEgressCtState, sg: TableEgressSg, commit: TableEgressCommit,
		after: TableL3Route, new: TableRouterLocal, port: RegSrcPort, peer: ofrules.IPv4Dst, rule: RegEgressRule, fwd: FlagFwdOut,
	}
	ingressHalf = sgHalf{
		dir: model.Ingress, ct: TableIngressCt, ctState: TableIngressCtState, sg: TableIngressSg, commit: TableIngressCommit,
		after: TableOutput, new: TableIngressSg, port: RegDstPort, peer: ofrules.IPv4Src, rule: RegIngrRule, labelOfs: ctLabelIngressOfs,
		fwd: FlagFwdIn,
	}
)

func (c *compiler) egressCt()     { c.conntrack(egressHalf) }
func (c *compiler) egressSg()     { c.sgRules(egressHalf) }
func (c *compiler) ingressCt()    { c.conntrack(ingressHalf) }
func (c *compiler) ingressSg()    { c.sgRules(ingressHalf) }
func ipMatch() ofrules.MatchField { return ethType(ofrules.EthTypeIPv4) }

func zoneCT(commit bool, table int, exec ...ofrules.Action) ofrules.CT {
	return ofrules.CT{Commit: commit, Table: table, ZoneField: ofrules.Reg(RegZone.Reg), ZoneOfs: RegZone.Ofs, ZoneBits: RegZone.Bits, Exec: exec}
}

// conntrack installs the ct, ct-state and commit tables of one half. They do
// not depend on policy: every IPv4 packet of a VM is tracked.
func (c *compiler) conntrack(h sgHalf) {
	ck := cookie(CatPipeline, uint64(h.ct))
	c.add(h.ct, 100, ck, ofrules.NewMatch(ipMatch()), zoneCT(false, int(h.ctState)))
	c.dropMiss(h.ct)

	ck = cookie(CatPipeline, uint64(h.ctState))
	state := func(v, mask uint64) ofrules.MatchField { return ofrules.Masked(ofrules.CtState, v, mask) }
	const trk, nw, est, rel, inv = ofrules.CtTrk, ofrules.CtNew, ofrules.CtEst, ofrules.CtRel, ofrules.CtInv
	// Asymmetric routing through an appliance: its zone may never see the
	// other direction, so the packet looks invalid; the rules decide (as
	// for AWS's untracked flows) and it is not committed.
	c.add(h.ctState, 210, ck, ofrules.NewMatch(ipMatch(), state(inv|trk, inv|trk), flagMatch(h.fwd, h.fwd)), gotoT(h.new))
	c.add(h.ctState, 200, ck, ofrules.NewMatch(ipMatch(), state(inv|trk, inv|trk)))
	// Sticky: established and related packets skip the rules.
	c.add(h.ctState, 150, ck, ofrules.NewMatch(ipMatch(), state(est|trk, nw|est|trk)), gotoT(h.after))
	c.add(h.ctState, 150, ck, ofrules.NewMatch(ipMatch(), state(rel|trk, nw|rel|trk)), gotoT(h.after))
	c.add(h.ctState, 100, ck, ofrules.NewMatch(ipMatch(), state(nw|trk, nw|trk)), gotoT(h.new))
	c.dropMiss(h.ctState)

	ck = cookie(CatPipeline, uint64(h.commit))
	c.add(h.commit, 110, ck, ofrules.NewMatch(ipMatch(), state(inv|trk, inv|trk), flagMatch(h.fwd, h.fwd)), gotoT(h.after))
	label := ofrules.Move{Src: ofrules.Reg(h.rule.Reg), Dst: ofrules.CtLabel, DstOfs: h.labelOfs, NBits: 32}
	c.add(h.commit, 100, ck, ofrules.NewMatch(ipMatch()), zoneCT(true, -1, label), gotoT(h.after))
	c.dropMiss(h.commit)
}

// sgRules compiles the rules of one direction of every group with local
// members. Clause actions are collected per match source first (a group's
// members, a peer group's addresses) so that each clause flow is added
// once with all its conjunctions, however many rules share it.
func (c *compiler) sgRules(h sgHalf) {
	plain := map[uint32]*model.RuleInfo{} // port key → lowest-id plain rule
	peerConj := map[*model.SGInfo][]ofrules.Action{}
	var peerOrder []*model.SGInfo
	for _, g := range c.localGroups() {
		var members []*model.NICInfo
		for _, m := range g.Members {
			if _, local := c.zones[m.Name]; local {
				members = append(members, m)
			}
		}
		// Clause 1 (the member's port key) is the same for every rule of the group.
		var portConj []ofrules.Action
		for _, r := range g.Rules(h.dir) {
			if r.Inactive != "" || (r.Peer != nil && len(r.Peer.Members) == 0) {
				continue // a peer group without members allows nothing
			}
			peerAll := r.Peer == nil && r.CIDR.Bits() == 0
			l4 := l4Clause(r)
			n := uint8(1)
			if !peerAll {
				n++
			}
			if l4 != nil {
				n++
			}
			if n == 1 {
				for _, m := range members {
					if o := plain[m.PortKey]; o == nil || r.ID < o.ID {
						plain[m.PortKey] = r
					}
				}
				continue
			}
			portConj = append(portConj, ofrules.Conjunction{ID: r.ID, Clause: 1, NClauses: n})
			next := uint8(2)
			switch {
			case peerAll:
			case r.Peer != nil:
				if _, ok := peerConj[r.Peer]; !ok {
					peerOrder = append(peerOrder, r.Peer)
				}
				peerConj[r.Peer] = append(peerConj[r.Peer], ofrules.Conjunction{ID: r.ID, Clause: next, NClauses: n})
				next++
			default:
				c.add(h.sg, prioSgConj, cookie(CatSecGroup, 0), ofrules.NewMatch(ipMatch(), prefixMatch(h.peer, r.CIDR)),
					ofrules.Conjunction{ID: r.ID, Clause: next, NClauses: n})
				next++
			}
			for _, m := range l4 {
				c.add(h.sg, prioSgConj, cookie(CatSecGroup, 0), m, ofrules.Conjunction{ID: r.ID, Clause: next, NClauses: n})
			}
			if laterFrags(r) {
				// Later fragments carry no ports or ICMP header. The switch
				// runs in nx-match fragment mode, so the first fragment is
				// checked on its ports; the rest pass as the rule's
				// protocol between the same NIC and peer.
				c.add(h.sg, prioSgConj, cookie(CatSecGroup, 0),
					ofrules.NewMatch(ipMatch(), ofrules.Exact(ofrules.IPProto, uint64(r.Proto)), ofrules.Exact(ofrules.IPFrag, ofrules.FragLater)),
					ofrules.Conjunction{ID: r.ID, Clause: next, NClauses: n})
			}
			c.add(h.sg, prioSgConj, cookie(CatSecGroup, uint64(r.ID)),
				ofrules.NewMatch(ofrules.Exact(ofrules.ConjID, uint64(r.ID))),
				h.rule.Load(uint64(r.ID)), gotoT(h.commit))
		}
		if len(portConj) > 0 {
			for _, m := range members {
				c.add(h.sg, prioSgConj, cookie(CatSecGroup, 0), ofrules.NewMatch(h.port.Match(uint64(m.PortKey))), portConj...)
			}
		}
	}
	for _, pg := range peerOrder {
		acts := peerConj[pg]
		for _, m := range pg.Members {
			for _, ip := range m.IPs() {
				c.add(h.sg, prioSgConj, cookie(CatSecGroup, 0), ofrules.NewMatch(ipMatch(), ofrules.Exact(h.peer, ipVal(ip))), acts...)
			}
		}
	}
	keys := make([]uint32, 0, len(plain))
	for k := range plain {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		r := plain[k]
		c.add(h.sg, prioSgPlain, cookie(CatSecGroup, uint64(r.ID)),
			ofrules.NewMatch(ipMatch(), h.port.Match(uint64(k))),
			h.rule.Load(uint64(r.ID)), gotoT(h.commit))
	}
	c.dropMiss(h.sg)
}

// localGroups are the groups of NICs bound on this host, by name.
func (c *compiler) localGroups() []*model.SGInfo {
	seen := map[string]bool{}
	var out []*model.SGInfo
	for _, nic := range c.local {
		for _, g := range nic.Groups {
			if !seen[g.Name] {
				seen[g.Name] = true
				out = append(out, g)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// laterFrags reports whether a rule's L4 clause reads a transport header
// (ports, ICMP type), which later fragments lack.
func laterFrags(r *model.RuleInfo) bool {
	switch r.Proto {
	case model.ProtoTCP, model.ProtoUDP:
		return !r.AnyPort()
	case model.ProtoICMP:
		return r.ICMPType >= 0
	}
	return false
}

// l4Clause returns the protocol/port/ICMP matches of a rule (nil: any).
func l4Clause(r *model.RuleInfo) []ofrules.Match {
	proto := func(p int, extra ...ofrules.MatchField) ofrules.Match {
		return ofrules.NewMatch(append([]ofrules.MatchField{ipMatch(), ofrules.Exact(ofrules.IPProto, uint64(p))}, extra...)...)
	}
	switch r.Proto {
	case model.ProtoAll:
		return nil
	case model.ProtoTCP, model.ProtoUDP:
		if r.AnyPort() {
			return []ofrules.Match{proto(r.Proto)}
		}
		f := ofrules.TCPDst
		if r.Proto == model.ProtoUDP {
			f = ofrules.UDPDst
		}
		var cl []ofrules.Match
		for _, pm := range PortMasks(r.PortMin, r.PortMax) {
			cl = append(cl, proto(r.Proto, ofrules.Masked(f, uint64(pm.Value), uint64(pm.Mask))))
		}
		return cl
	case model.ProtoICMP:
		var extra []ofrules.MatchField
		if r.ICMPType >= 0 {
			extra = append(extra, ofrules.Exact(ofrules.ICMPType, uint64(r.ICMPType)))
			if r.ICMPCode >= 0 {
				extra = append(extra, ofrules.Exact(ofrules.ICMPCode, uint64(r.ICMPCode)))
			}
		}
		return []ofrules.Match{proto(r.Proto, extra...)}
	}
	return []ofrules.Match{proto(r.Proto)}
}

// PortMask is one value/mask match of a port range.
type PortMask struct{ Value, Mask uint16 }

// PortMasks splits lo..hi into the fewest value/mask pairs that cover
// exactly that range (aligned power-of-two blocks). The whole range 0-65535
// is one pair with mask 0 (callers leave the port unmatched).
func PortMasks(lo, hi uint16) []PortMask {
	var out []PortMask
	l, h := uint32(lo), uint32(hi)
	for l <= h {
		size := uint32(1)
		for size < 1<<16 && l&(2*size-1) == 0 && l+2*size-1 <= h {
			size *= 2
		}
		out = append(out, PortMask{Value: uint16(l), Mask: uint16(^(size - 1))})
		l += size
	}
	return out
}
