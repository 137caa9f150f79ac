package pipelines

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

// HostState is what the controller has observed on one host's bridge.
type HostState struct {
	// Ports maps bound NIC names (external_ids:iface-id) to their ofport.
	Ports map[string]uint32
	// TunnelPorts maps each tunnel kind the host has a flow-based port
	// for to its ofport (missing or 0: not yet known).
	TunnelPorts map[string]uint32
	// Since orders bindings: a NIC bound on several hosts at once (a live
	// migration) is where its binding is newest (highest value).
	Since map[string]uint64
	// Connected: the host's switch is connected to the controller. A
	// gateway host that is not (or has no uplink port) hands its public
	// IPs to the next gateway host.
	Connected bool
	// UplinkPort is a gateway host's uplink ofport (0: none or not yet known).
	UplinkPort uint32
	// NextHopMAC is the uplink router's MAC as resolved by ARP (nil: not
	// yet); a MAC pinned in the host's uplink config takes precedence.
	NextHopMAC net.HardwareAddr
}

// Snapshot is the input of the compiler: the built policy and the observed
// state of every host. It must not be changed once Compile has seen it.
type Snapshot struct {
	Net   *model.Net
	Hosts map[string]HostState

	locOnce sync.Once
	bound   map[string][]string // NIC → hosts it is bound on, sorted
}

// Location is where a NIC's traffic is delivered.
type Location struct {
	Host   string
	OFPort uint32 // 0 when the NIC is not bound on Host (yet)
}

// Locate returns where a NIC is: the host it is bound on (when bound on
// several, as during a live migration, the newest binding wins, then the
// policy's placement, then the first by name), otherwise its placement in
// the policy. A port of the NIC elsewhere is isolated (no flows).
func (s *Snapshot) Locate(nic *model.NICInfo) (Location, bool) {
	s.locOnce.Do(s.indexBindings)
	if bound := s.bound[nic.Name]; len(bound) > 0 {
		h := bound[0]
		for _, b := range bound[1:] {
			nb, nh := s.Hosts[b].Since[nic.Name], s.Hosts[h].Since[nic.Name]
			if nb > nh || nb == nh && b == nic.Host {
				h = b
			}
		}
		return Location{Host: h, OFPort: s.Hosts[h].Ports[nic.Name]}, true
	}
	if nic.Host != "" {
		return Location{Host: nic.Host}, true
	}
	return Location{}, false
}

// indexBindings inverts the hosts' port maps once per snapshot, so that
// locating every NIC costs O(bindings), not O(NICs × hosts).
func (s *Snapshot) indexBindings() {
	s.bound = map[string][]string{}
	for h, st := range s.Hosts {
		for nic := range st.Ports {
			s.bound[nic] = append(s.bound[nic], h)
		}
	}
	for _, hs := range s.bound {
		sort.Strings(hs)
	}
}

// compiler carries the per-call state of one Compile.
type compiler struct {
	snap *Snapshot
	host *model.HostInfo
	st   HostState
	out  *ofrules.FlowSet
	// local NICs bound on this host, sorted by name
	local []*model.NICInfo
	// zones are the local NICs' conntrack zones (a NIC is local iff it has one)
	zones map[string]uint16
	// VPCs and subnets with at least one local NIC, sorted by name
	vpcs    []*model.VPCInfo
	subnets []*model.SubnetInfo
	err     error
}

// Compile returns the complete desired flow set of one host. It is pure:
// the same snapshot and host always give the same flows.
func Compile(snap *Snapshot, hostName string) (*ofrules.FlowSet, error) {
	h := snap.Net.Hosts[hostName]
	if h == nil {
		return nil, fmt.Errorf("compile: unknown host %q", hostName)
	}
	c := &compiler{snap: snap, host: h, st: snap.Hosts[hostName], out: ofrules.NewFlowSet()}
	c.collectLocal()
	for _, stage := range []func(){
		c.classifier, c.tunnelSource, c.portSecurity, c.l2Filter, c.arpResponder,
		c.egressCt, c.routerLocal, c.egressSg, c.l3Route, c.toGateway, c.destLookup, c.ingressCt, c.ingressSg, c.output, c.gateway,
	} {
		stage()
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.out, nil
}

func (c *compiler) collectLocal() {
	vpcs := map[string]*model.VPCInfo{}
	subnets := map[string]*model.SubnetInfo{}
	for _, name := range c.snap.Net.NICNames {
		nic := c.snap.Net.NICs[name]
		if _, ok := c.st.Ports[name]; !ok {
			continue
		}
		if loc, _ := c.snap.Locate(nic); loc.Host != c.host.Name {
			continue // an older port of a NIC bound elsewhere now: isolated
		}
		c.local = append(c.local, nic)
		vpcs[nic.Subnet.VPC.Name] = nic.Subnet.VPC
		subnets[nic.Subnet.Name] = nic.Subnet
	}
	for _, n := range c.snap.Net.VPCNames {
		if v := vpcs[n]; v != nil {
			c.vpcs = append(c.vpcs, v)
		}
	}
	for _, n := range c.snap.Net.SubnetNames {
		if s := subnets[n]; s != nil {
			c.subnets = append(c.subnets, s)
		}
	}
	c.zones = localZones(c.host.Name, c.local)
}

// localZones gives each NIC bound on a host its conntrack zone there: the
// zone pinned for the host the policy places it on, else (a NIC bound
// where the policy does not place it, e.g. while migrating) a free one
// derived from its name. Deterministic for a given set of NICs.
func localZones(host string, local []*model.NICInfo) map[string]uint16 {
	zones := make(map[string]uint16, len(local))
	used := map[uint16]bool{0: true}
	for _, nic := range local {
		if nic.Host == host && nic.CtZone != 0 && !used[nic.CtZone] {
			zones[nic.Name] = nic.CtZone
			used[nic.CtZone] = true
		}
	}
	for _, nic := range local {
		if _, ok := zones[nic.Name]; ok {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte("zone/" + nic.Name))
		z := uint16(h.Sum64() % 0xffff)
		for used[z] {
			z++
		}
		zones[nic.Name] = z
		used[z] = true
	}
	return zones
}

// add puts a flow into the set; two different flows with one key are a
// compiler bug, reported by Compile.
func (c *compiler) add(table uint8, prio uint16, ck uint64, m ofrules.Match, acts ...ofrules.Action) {
	f := ofrules.Flow{Table: table, Priority: prio, Cookie: ck, Match: m, Actions: acts}
	for _, a := range acts {
		// OpenFlow's goto_table only goes forward (OVS rejects the flow
		// with OFPBIC_BAD_TABLE_ID); going back takes a resubmit.
		if g, ok := a.(ofrules.Goto); ok && g.Table <= table && c.err == nil {
			c.err = fmt.Errorf("compile: goto_table from table %s back to %s: %s", TableName(table), TableName(g.Table), f.Text(TableName))
		}
	}
	if !c.out.Add(f) && c.err == nil {
		old, _ := c.out.Get(f.Key())
		c.err = fmt.Errorf("compile: conflicting flows:\n  %s\n  %s", old.Text(TableName), f.Text(TableName))
	}
}

// Helpers for common match fields.

func macVal(m net.HardwareAddr) uint64 {
	var v uint64
	for _, b := range m {
		v = v<<8 | uint64(b)
	}
	return v
}

func ipVal(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// prefixMatch matches an address prefix; not for /0, whose zero mask
// would read as an exact match.
func prefixMatch(f ofrules.Field, p netip.Prefix) ofrules.MatchField {
	mask := uint64(0xffffffff) << (32 - p.Bits()) & 0xffffffff
	return ofrules.Masked(f, ipVal(p.Addr()), mask)
}

func ethType(t uint64) ofrules.MatchField { return ofrules.Exact(ofrules.EthType, t) }

func vpcMatch(v *model.VPCInfo) ofrules.MatchField {
	return ofrules.Exact(ofrules.Metadata, uint64(v.VNI))
}

func gotoT(t uint8) ofrules.Goto { return ofrules.Goto{Table: t} }

// passThrough installs the lowest-priority flow of a table that is a
// placeholder for a later stage (security groups).
func (c *compiler) passThrough(table, next uint8) {
	c.add(table, 0, cookie(CatPipeline, uint64(table)), nil, gotoT(next))
}

// dropMiss installs an explicit table-miss drop, so drops show in
// dump-flows statistics.
func (c *compiler) dropMiss(table uint8) {
	c.add(table, 0, cookie(CatPipeline, uint64(table)), nil)
}

// tunnelTo returns the port of the tunnel kind this host uses with host h.
func (c *compiler) tunnelTo(h *model.HostInfo) (uint32, bool) {
	kind, ok := c.snap.Net.PairEncap(c.host.Name, h.Name)
	if !ok {
		return 0, false
	}
	p := c.st.TunnelPorts[kind]
	return p, p != 0
}

// tunnelPorts are the host's known tunnel ports of kinds it can use, in
// the order of its kinds.
func (c *compiler) tunnelPorts() []uint32 {
	var out []uint32
	for _, k := range c.host.Usable {
		if p := c.st.TunnelPorts[k]; p != 0 {
			out = append(out, p)
		}
	}
	return out
}

// OfflinePorts are the tunnel ports `compile`, `trace -f` and tests assume
// for a host's kinds: vxlan 1, gre 4, geneve 9, stt 60 (2 is the uplink;
// NICs get 10 upwards).
func OfflinePorts(h *model.HostInfo) map[string]uint32 {
	ports := map[string]uint32{}
	for _, k := range h.Usable {
		ports[k] = map[string]uint32{"vxlan": 1, "gre": 4, "geneve": 9, "stt": 60}[k]
	}
	return ports
}

// Serving returns the gateway host that serves a public IP: the first of
// its gateway hosts (in their takeover order) that is up — connected, with
// its uplink port — else its preferred one.
func (s *Snapshot) Serving(pi *model.PublicIPInfo) *model.HostInfo {
	for _, h := range pi.Gateways {
		if st, ok := s.Hosts[h.Name]; ok && st.Connected && st.UplinkPort != 0 {
			return h
		}
	}
	return pi.Gateway
}
