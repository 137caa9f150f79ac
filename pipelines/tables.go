// Package pipelines is OpenVPC's OpenFlow pipeline: table numbers and names,
// the register layout, and one compiler per stage. Compile is a pure,
// deterministic function of the policy snapshot and the host's bindings.
package pipelines

import (
	"fmt"
	"sort"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// Tables of br-int, with gaps for later stages. See docs/pipeline.md.
const (
	TableClassifier       uint8 = 0
	TableTunnelSource     uint8 = 1
	TablePortSecurity     uint8 = 5
	TableL2Filter         uint8 = 10
	TableArpResponder     uint8 = 15
	TableEgressCt         uint8 = 20
	TableEgressCtState    uint8 = 21
	TableRouterLocal      uint8 = 25
	TableEgressSg         uint8 = 30
	TableEgressSgDefault  uint8 = 31
	TableEgressCommit     uint8 = 32
	TableL3Route          uint8 = 40
	TableToGateway        uint8 = 41
	TableDestLookup       uint8 = 45
	TableIngressCt        uint8 = 50
	TableIngressCtState   uint8 = 51
	TableIngressSg        uint8 = 55
	TableIngressSgDefault uint8 = 56
	TableIngressCommit    uint8 = 57
	TableOutput           uint8 = 70
	TableTunnelOut        uint8 = 71
	// Gateway hosts only: the uplink, 1:1 NAT of public IPs.
	TableGwUplink uint8 = 90
	TableGwDnat   uint8 = 91
	TableGwSnat   uint8 = 93
	TableGwOut    uint8 = 94
)

var tableNames = map[uint8]string{
	TableClassifier:       "Classifier",
	TableTunnelSource:     "TunnelSource",
	TablePortSecurity:     "PortSecurity",
	TableL2Filter:         "L2Filter",
	TableArpResponder:     "ArpResponder",
	TableEgressCt:         "EgressCt",
	TableEgressCtState:    "EgressCtState",
	TableRouterLocal:      "RouterLocal",
	TableEgressSg:         "EgressSg",
	TableEgressSgDefault:  "EgressSgDefault",
	TableEgressCommit:     "EgressCommit",
	TableL3Route:          "L3Route",
	TableToGateway:        "ToGateway",
	TableDestLookup:       "DestLookup",
	TableIngressCt:        "IngressCt",
	TableIngressCtState:   "IngressCtState",
	TableIngressSg:        "IngressSg",
	TableIngressSgDefault: "IngressSgDefault",
	TableIngressCommit:    "IngressCommit",
	TableOutput:           "Output",
	TableTunnelOut:        "TunnelOut",
	TableGwUplink:         "GwUplink",
	TableGwDnat:           "GwDnat",
	TableGwSnat:           "GwSnat",
	TableGwOut:            "GwOut",
}

// TableName returns the name of a pipeline table ("" if unknown); it is an
// ofrules.TableNamer.
func TableName(t uint8) string { return tableNames[t] }

// TableNames returns a copy of the table-number → name map (for OVSDB).
func TableNames() map[uint8]string {
	out := make(map[uint8]string, len(tableNames))
	for k, v := range tableNames {
		out[k] = v
	}
	return out
}

// TableByName resolves a table name (case-sensitive) or number.
func TableByName(s string) (uint8, error) {
	for n, name := range tableNames {
		if name == s {
			return n, nil
		}
	}
	var n uint8
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil {
		return n, nil
	}
	names := make([]string, 0, len(tableNames))
	for _, v := range tableNames {
		names = append(names, v)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("unknown table %q (tables: %v)", s, names)
}

// Cookie layout: the top byte marks OpenVPC's flows (so a replace or sweep
// never touches flows of others), the next byte the category, the low 48
// bits the object (port key, VNI, ...). Deleting by cookie/mask removes one
// category or one object's flows.
const (
	CookieOpenVPC uint64 = 0x0b << 56
	CookieMask    uint64 = 0xff << 56
)

// Cookie categories.
const (
	CatPipeline uint64 = iota + 1 // table-miss and pass-through flows
	CatPort                       // per-NIC classifier/port-security/output
	CatARP                        // ARP responder
	CatRouter                     // implied router
	CatTunnel                     // tunnel ingress
	CatDest                       // destination lookup
	CatSecGroup                   // security-group rules (object: rule id; 0 for shared clause flows)
	CatGateway                    // internet gateway: uplink, NAT (object: public address, or 0)
	CatPMTU                       // packets too big for a tunnel, to the controller
)

func cookie(cat, obj uint64) uint64 {
	return CookieOpenVPC | cat<<48 | obj&0xffffffffffff
}

// RegField is a named bit range of an NXM register.
type RegField struct {
	Name string
	Reg  int
	Ofs  int
	Bits int
}

// Register layout (see docs/pipeline.md). Fields reserved for later stages
// are declared here so no two stages ever overlap.
var (
	RegFlags      = RegField{"flags", 0, 0, 32}
	RegSrcPort    = RegField{"src_port_key", 1, 0, 32}
	RegDstPort    = RegField{"dst_port_key", 2, 0, 32}
	RegOutPort    = RegField{"out_ofport", 3, 0, 32}
	RegRouteTable = RegField{"route_table", 4, 0, 16}
	RegZone       = RegField{"ct_zone", 5, 0, 16}
	RegEgressRule = RegField{"egress_rule", 6, 0, 32}
	RegIngrRule   = RegField{"ingress_rule", 7, 0, 32}
	RegSrcSubnet  = RegField{"src_subnet_key", 8, 0, 16}
	// Registers lists every field, for the overlap test and docs.
	Registers = []RegField{RegFlags, RegSrcPort, RegDstPort, RegOutPort, RegRouteTable, RegZone, RegEgressRule, RegIngrRule, RegSrcSubnet}
)

// Bits of RegFlags.
const (
	FlagFromTunnel uint64 = 1 << 0 // packet arrived over a tunnel
	FlagRemote     uint64 = 1 << 1 // destination is on another host
	// FlagFwdOut: an appliance sent it from an address not its own (it is
	// forwarding); FlagFwdIn: it is delivered to an appliance for another
	// destination (a route targets it). Conntrack in the appliance's zone
	// may not have seen the other direction of such a flow (asymmetric
	// routing), so an invalid state is judged by the rules, not dropped.
	FlagFwdOut uint64 = 1 << 2
	FlagFwdIn  uint64 = 1 << 3
	// FlagFromUplink: arrived on a gateway host's uplink (from outside).
	FlagFromUplink uint64 = 1 << 4
	// FlagTooBig: too big for the tunnel it is to leave by (path MTU).
	FlagTooBig    uint64 = 1 << 5
	flagTooBigBit        = 5
	// FlagTranslated: an ICMP error crossing a gateway whose quoted header
	// the controller has translated (stateless NAT cannot reach inside).
	FlagTranslated uint64 = 1 << 6
)

func (r RegField) mask() uint64 {
	if r.Bits == 32 {
		return 0
	}
	return ((uint64(1) << r.Bits) - 1) << r.Ofs
}

// Match matches the field exactly against v.
func (r RegField) Match(v uint64) ofrules.MatchField {
	return ofrules.Masked(ofrules.Reg(r.Reg), v<<r.Ofs, r.mask())
}

// Load sets the field to v.
func (r RegField) Load(v uint64) ofrules.SetField {
	return ofrules.SetField{Field: ofrules.Reg(r.Reg), Value: v << r.Ofs, Mask: r.mask()}
}

// flagMatch matches the given bits of the flags register against value.
func flagMatch(value, bits uint64) ofrules.MatchField {
	return ofrules.Masked(ofrules.Reg(RegFlags.Reg), value, bits)
}

func flagSet(bits uint64) ofrules.SetField {
	return ofrules.SetField{Field: ofrules.Reg(RegFlags.Reg), Value: bits, Mask: bits}
}

// Describe names the policy object behind a flow's cookie for operators:
// for a security-group rule flow, the group and the rule ("" otherwise).
func Describe(n *model.Net, ck uint64) string {
	if n == nil || ck&CookieMask != CookieOpenVPC || (ck>>48)&0xff != CatSecGroup {
		return ""
	}
	r := n.Rules[uint32(ck&0xffffffffffff)]
	if r == nil {
		return ""
	}
	return fmt.Sprintf("security group %s rule %d: %s", r.Group.Name, r.ID, r.Text())
}
