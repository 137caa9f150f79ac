package hostsetup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/openvpc/openvpc/ovsdb"
	"github.com/openvpc/openvpc/ovsdb/vswitchd"
	"github.com/openvpc/openvpc/tunnels"
)

// Protocols are the OpenFlow versions the bridge speaks.
var protocols = []string{vswitchd.BridgeProtocolsOpenflow13, vswitchd.BridgeProtocolsOpenflow15}

const (
	otherConfigDPID = "datapath-id"
	pollInterval    = 20 * time.Millisecond
)

// RoleKey is the external_ids key OpenVPC sets on the Port and Interface of
// a port it manages by role; RoleUplink is its value on the uplink port.
const (
	RoleKey    = "openvpc-role"
	RoleUplink = "uplink"
)

// Ensure creates the integration bridge described by cfg or repairs every
// column that drifted from it, in one OVSDB transaction, and returns a
// human-readable line per change (none when nothing drifted).
//
// It manages the bridge's datapath_type, fail_mode (secure), protocols
// (OpenFlow13, OpenFlow15), other_config:datapath-id, its controllers
// (targets, connection_mode=out-of-band, max_backoff, inactivity_probe),
// one flow-based tunnel port per configured kind (ports named
// tunnels.Kind.PortName(); such ports of kinds no longer configured are
// removed), the uplink port (Config.Uplink: a Port and a system Interface of
// that name with external_ids RoleKey=RoleUplink; a port carrying that role
// under another name is removed, and an uplink device that is a port of
// another bridge is an error) and the table names. Other ports (VMs) and
// other columns are left alone.
//
// Ensure first syncs the client's cache with the server, so changes made
// just before (by hand, by a hypervisor) are seen. After a change it waits,
// within ctx, until the cache shows the transaction and ovs-vswitchd has
// applied it (Open_vSwitch.cur_cfg), so ofports exist and a following Ensure
// sees the new state; it fails when ctx ends first (is ovs-vswitchd
// running?). ctx gets ovsdb.DefaultTimeout if it has no deadline.
func Ensure(ctx context.Context, cli client.Client, cfg Config) ([]string, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ovsdb.DefaultTimeout)
		defer cancel()
	}
	if err := syncCache(ctx, cli); err != nil {
		return nil, fmt.Errorf("hostsetup: %w", err)
	}
	st, err := readState(ctx, cli)
	if err != nil {
		return nil, fmt.Errorf("hostsetup: %w", err)
	}
	p, err := plan(cli, cfg, st)
	if err != nil {
		return nil, fmt.Errorf("hostsetup: bridge %s: %w", cfg.Bridge, err)
	}
	if len(p.ops) == 0 {
		return nil, nil
	}

	// Bump next_cfg like ovs-vsctl does, and read it back, so we can tell when
	// our transaction is in the cache (next_cfg) and applied by ovs-vswitchd
	// (cur_cfg).
	rootCond := []libovsdb.Condition{{Column: "_uuid", Function: libovsdb.ConditionEqual, Value: libovsdb.UUID{GoUUID: st.root.UUID}}}
	comment := "openvpc hostsetup: " + cfg.Bridge
	ops := append(p.ops,
		libovsdb.Operation{Op: libovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: rootCond,
			Mutations: []libovsdb.Mutation{{Column: "next_cfg", Mutator: libovsdb.MutateOperationAdd, Value: 1}}},
		libovsdb.Operation{Op: libovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Where: rootCond, Columns: []string{"next_cfg"}},
		libovsdb.Operation{Op: libovsdb.OperationComment, Comment: &comment},
	)
	res, err := ovsdb.Transact(ctx, cli, ops...)
	if err != nil {
		return nil, fmt.Errorf("hostsetup: bridge %s: apply %d changes (%s): %w", cfg.Bridge, len(p.changes), strings.Join(p.changes, "; "), err)
	}
	nextCfg, err := selectedInt(res[len(ops)-2], "next_cfg")
	if err != nil {
		return p.changes, fmt.Errorf("hostsetup: bridge %s: read next_cfg: %w", cfg.Bridge, err)
	}
	if err := waitCfg(ctx, cli, nextCfg); err != nil {
		return p.changes, fmt.Errorf("hostsetup: bridge %s: changes written (%s) but %w", cfg.Bridge, strings.Join(p.changes, "; "), err)
	}

	// The cache now holds our transaction: check that it converged.
	st, err = readState(ctx, cli)
	if err != nil {
		return p.changes, fmt.Errorf("hostsetup: %w", err)
	}
	again, err := plan(cli, cfg, st)
	if err != nil {
		return p.changes, fmt.Errorf("hostsetup: bridge %s: after update: %w", cfg.Bridge, err)
	}
	if len(again.changes) > 0 {
		return p.changes, fmt.Errorf("hostsetup: bridge %s still differs after the update (changed concurrently?): %s", cfg.Bridge, strings.Join(again.changes, "; "))
	}
	return p.changes, nil
}

// syncCache makes the client's cache hold every change committed before the
// call (e.g. one just made with ovs-vsctl): ovsdb-server sends pending
// monitor updates before it reads our next request, and libovsdb applies
// updates in its read loop before it delivers a later reply. An echo is the
// cheapest round trip. While the client is reconnecting, wait for it.
func syncCache(ctx context.Context, cli client.Client) error {
	for {
		err := cli.Echo(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, client.ErrNotConnected) {
			return fmt.Errorf("sync ovsdb cache (echo): %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sync ovsdb cache: not connected: %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// waitCfg waits until the cache shows next_cfg >= want (our transaction is
// in the cache) and then cur_cfg >= want (ovs-vswitchd applied it).
func waitCfg(ctx context.Context, cli client.Client, want int) error {
	root := func() (*vswitchd.OpenvSwitch, error) {
		var roots []*vswitchd.OpenvSwitch
		if err := cli.List(ctx, &roots); err != nil {
			return nil, err
		}
		if len(roots) != 1 {
			return nil, fmt.Errorf("%d Open_vSwitch rows", len(roots))
		}
		return roots[0], nil
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	inCache := false
	for {
		r, err := root()
		if err != nil {
			return fmt.Errorf("read Open_vSwitch row: %w", err)
		}
		if !inCache && r.NextCfg >= want {
			inCache = true
			// The update that carried next_cfg may still be being applied
			// to other tables; the cache's table lock waits for it.
			cli.Cache().Tables()
		}
		if inCache && r.CurCfg >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			if !inCache {
				return fmt.Errorf("the ovsdb cache did not show the transaction: %w", ctx.Err())
			}
			return fmt.Errorf("ovs-vswitchd has not applied them (cur_cfg %d < %d; is ovs-vswitchd running?): %w", r.CurCfg, want, ctx.Err())
		case <-t.C:
		}
	}
}

func selectedInt(r libovsdb.OperationResult, col string) (int, error) {
	if len(r.Rows) != 1 {
		return 0, fmt.Errorf("select returned %d rows", len(r.Rows))
	}
	switch v := r.Rows[0][col].(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	}
	return 0, fmt.Errorf("unexpected %s value %#v", col, r.Rows[0][col])
}

// planned is a transaction and its description.
type planned struct {
	ops     []libovsdb.Operation
	changes []string
}

func (p *planned) add(ops []libovsdb.Operation, err error) error {
	if err != nil {
		return err
	}
	p.ops = append(p.ops, ops...)
	return nil
}

func (p *planned) changef(format string, args ...any) {
	p.changes = append(p.changes, fmt.Sprintf(format, args...))
}

// plan computes the operations that bring st to cfg (normalized).
func plan(cli client.Client, cfg Config, st *state) (*planned, error) {
	if st.root == nil {
		return nil, errors.New("the Open_vSwitch table is empty (run `ovs-vsctl init`, or start Open vSwitch once)")
	}
	br := st.bridges[cfg.Bridge]
	dpType := cfg.DatapathType
	if dpType == "" && br != nil {
		dpType = br.DatapathType
	}
	if err := checkCapabilities(cfg, st.root, dpType); err != nil {
		return nil, err
	}
	p := &planned{}
	if br == nil {
		return p, p.createBridge(cli, cfg, st)
	}
	return p, p.repairBridge(cli, cfg, st, br)
}

// checkCapabilities refuses what this OVS cannot do.
func checkCapabilities(cfg Config, root *vswitchd.OpenvSwitch, dpType string) error {
	eff := dpType
	if eff == "" {
		eff = "system"
	}
	if len(root.DatapathTypes) > 0 && !slices.Contains(root.DatapathTypes, eff) {
		return fmt.Errorf("this Open vSwitch does not support datapath_type=%s (it supports %s)", eff, strings.Join(root.DatapathTypes, ", "))
	}
	for _, tp := range cfg.Tunnels {
		if err := tunnels.CheckDatapath(tp.Kind, dpType); err != nil {
			return err
		}
		if len(root.IfaceTypes) > 0 && !slices.Contains(root.IfaceTypes, tp.Kind.InterfaceType()) {
			return fmt.Errorf("this Open vSwitch does not support %s interfaces", tp.Kind.InterfaceType())
		}
	}
	return nil
}

// namedUUID makes a valid OVSDB named UUID ([_a-zA-Z][_a-zA-Z0-9]*).
func namedUUID(parts ...string) string {
	s := "ovpn_" + strings.Join(parts, "_")
	return strings.Map(func(r rune) rune {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

func (p *planned) createBridge(cli client.Client, cfg Config, st *state) error {
	if owner, ok := st.portByName[cfg.Bridge]; ok {
		return fmt.Errorf("a port named %s already exists (on bridge %q)", cfg.Bridge, st.portBridge[owner.UUID])
	}
	if _, ok := st.ifaceByName[cfg.Bridge]; ok {
		return fmt.Errorf("an interface named %s already exists", cfg.Bridge)
	}
	localIf := &vswitchd.Interface{UUID: namedUUID("local_if"), Name: cfg.Bridge, Type: "internal"}
	localPort := &vswitchd.Port{UUID: namedUUID("local_port"), Name: cfg.Bridge, Interfaces: []string{localIf.UUID}}
	if err := p.add(cli.Create(localIf)); err != nil {
		return err
	}
	if err := p.add(cli.Create(localPort)); err != nil {
		return err
	}
	secure := vswitchd.BridgeFailModeSecure
	dpid := DatapathIDString(cfg.DatapathID)
	bridge := &vswitchd.Bridge{
		UUID:         namedUUID("bridge"),
		Name:         cfg.Bridge,
		DatapathType: cfg.DatapathType,
		FailMode:     &secure,
		Protocols:    slices.Clone(protocols),
		OtherConfig:  map[string]string{otherConfigDPID: dpid},
		Ports:        []string{localPort.UUID},
	}
	dp := cfg.DatapathType
	if dp == "" {
		dp = "(default)"
	}
	p.changef("create bridge %s: datapath_type=%s fail_mode=secure protocols=%s datapath-id=%s",
		cfg.Bridge, dp, strings.Join(protocols, ","), dpid)
	for i, target := range cfg.Controllers {
		c := desiredController(cfg, target)
		c.UUID = namedUUID("ctl", strconv.Itoa(i))
		if err := p.add(cli.Create(c)); err != nil {
			return err
		}
		bridge.Controller = append(bridge.Controller, c.UUID)
		p.changef("bridge %s: add controller %s (%s)", cfg.Bridge, target, describeController(c))
	}
	for _, tp := range cfg.Tunnels {
		uuid, err := p.createTunnel(cli, st, cfg.Bridge, tp)
		if err != nil {
			return err
		}
		bridge.Ports = append(bridge.Ports, uuid)
	}
	if cfg.Uplink != "" {
		uuid, err := p.createUplink(cli, st, cfg.Bridge, cfg.Uplink)
		if err != nil {
			return err
		}
		bridge.Ports = append(bridge.Ports, uuid)
	}
	if len(cfg.TableNames) > 0 {
		bridge.FlowTables = map[int]string{}
		var names []string
		for _, t := range sortedTables(cfg.TableNames) {
			name := cfg.TableNames[t]
			ft := &vswitchd.FlowTable{UUID: namedUUID("table", strconv.Itoa(int(t))), Name: &name}
			if err := p.add(cli.Create(ft)); err != nil {
				return err
			}
			bridge.FlowTables[int(t)] = ft.UUID
			names = append(names, fmt.Sprintf("%d=%s", t, name))
		}
		p.changef("bridge %s: name %d tables: %s", cfg.Bridge, len(names), strings.Join(names, " "))
	}
	if err := p.add(cli.Create(bridge)); err != nil {
		return err
	}
	// A new bridge must be linked from the root row in the same transaction,
	// or ovsdb-server garbage-collects it.
	root := &vswitchd.OpenvSwitch{UUID: st.root.UUID}
	return p.add(cli.Where(root).Mutate(root, model.Mutation{
		Field: &root.Bridges, Mutator: libovsdb.MutateOperationInsert, Value: []string{bridge.UUID},
	}))
}

// createTunnel adds the Interface and Port of a tunnel port and returns the
// Port's named UUID (to be linked into the bridge's ports by the caller).
func (p *planned) createTunnel(cli client.Client, st *state, bridge string, tp TunnelPort) (string, error) {
	name := tp.Kind.PortName()
	if owner, ok := st.portByName[name]; ok {
		return "", fmt.Errorf("tunnel port %s already exists on another bridge (%q); remove it there first", name, st.portBridge[owner.UUID])
	}
	if _, ok := st.ifaceByName[name]; ok {
		return "", fmt.Errorf("an interface named %s already exists in another port; remove it first", name)
	}
	iface := &vswitchd.Interface{
		UUID: namedUUID("tun_if", string(tp.Kind)), Name: name,
		Type: tp.Kind.InterfaceType(), Options: tp.Kind.Options(tp.LocalIP),
	}
	port := &vswitchd.Port{UUID: namedUUID("tun_port", string(tp.Kind)), Name: name, Interfaces: []string{iface.UUID}}
	if err := p.add(cli.Create(iface)); err != nil {
		return "", err
	}
	if err := p.add(cli.Create(port)); err != nil {
		return "", err
	}
	p.changef("bridge %s: add tunnel port %s (type=%s options=%s)", bridge, name, iface.Type, formatMap(iface.Options))
	return port.UUID, nil
}

// createUplink adds the Interface and Port of the uplink device name and
// returns the Port's named UUID (to be linked into the bridge's ports by the
// caller). st must not hold rows the same transaction deletes.
func (p *planned) createUplink(cli client.Client, st *state, bridge, name string) (string, error) {
	if owner, ok := st.portByName[name]; ok {
		other := st.portBridge[owner.UUID]
		return "", fmt.Errorf("uplink interface %s is already a port of bridge %s; remove it there first (ovs-vsctl del-port %s %s) so that it can be plugged into %s",
			name, other, other, name, bridge)
	}
	if iface, ok := st.ifaceByName[name]; ok {
		port := st.ports[st.ifacePort[iface.UUID]]
		if port == nil {
			return "", fmt.Errorf("uplink interface %s already exists in another port; remove it first", name)
		}
		other := st.portBridge[port.UUID]
		return "", fmt.Errorf("uplink interface %s is already a member of port %s of bridge %s; remove it there first so that it can be plugged into %s",
			name, port.Name, other, bridge)
	}
	role := map[string]string{RoleKey: RoleUplink}
	iface := &vswitchd.Interface{UUID: namedUUID("uplink_if"), Name: name, ExternalIDs: maps.Clone(role)}
	port := &vswitchd.Port{UUID: namedUUID("uplink_port"), Name: name, Interfaces: []string{iface.UUID}, ExternalIDs: maps.Clone(role)}
	if err := p.add(cli.Create(iface)); err != nil {
		return "", err
	}
	if err := p.add(cli.Create(port)); err != nil {
		return "", err
	}
	p.changef("bridge %s: add uplink port %s (type=system external_ids:%s=%s)", bridge, name, RoleKey, RoleUplink)
	return port.UUID, nil
}

func desiredController(cfg Config, target string) *vswitchd.Controller {
	mode := vswitchd.ControllerConnectionModeOutOfBand
	backoff := cfg.MaxBackoffMS
	c := &vswitchd.Controller{Target: target, ConnectionMode: &mode, MaxBackoff: &backoff}
	if cfg.InactivityProbeMS > 0 {
		probe := cfg.InactivityProbeMS
		c.InactivityProbe = &probe
	}
	return c
}

func describeController(c *vswitchd.Controller) string {
	s := fmt.Sprintf("connection_mode=%s max_backoff=%s", strPtr(c.ConnectionMode), intPtr(c.MaxBackoff))
	if c.InactivityProbe != nil {
		s += " inactivity_probe=" + intPtr(c.InactivityProbe)
	}
	return s
}

func (p *planned) repairBridge(cli client.Client, cfg Config, st *state, br *vswitchd.Bridge) error {
	upd := &vswitchd.Bridge{UUID: br.UUID}
	var fields []any
	where := cli.Where(&vswitchd.Bridge{UUID: br.UUID})

	if cfg.DatapathType != "" && normDP(br.DatapathType) != cfg.DatapathType {
		upd.DatapathType = cfg.DatapathType
		fields = append(fields, &upd.DatapathType)
		p.changef("bridge %s: datapath_type %s -> %s", br.Name, orUnset(br.DatapathType), cfg.DatapathType)
	}
	if strPtr(br.FailMode) != vswitchd.BridgeFailModeSecure {
		secure := vswitchd.BridgeFailModeSecure
		upd.FailMode = &secure
		fields = append(fields, &upd.FailMode)
		p.changef("bridge %s: fail_mode %s -> secure", br.Name, orUnset(strPtr(br.FailMode)))
	}
	if !sameSet(br.Protocols, protocols) {
		upd.Protocols = slices.Clone(protocols)
		fields = append(fields, &upd.Protocols)
		p.changef("bridge %s: protocols %s -> %s", br.Name, orUnset(strings.Join(sortedCopy(br.Protocols), ",")), strings.Join(protocols, ","))
	}
	dpid := DatapathIDString(cfg.DatapathID)
	if cur, ok := br.OtherConfig[otherConfigDPID]; !ok || !sameDPID(cur, cfg.DatapathID) {
		// Mutate only this key: other_config may hold keys others set.
		m := &vswitchd.Bridge{UUID: br.UUID}
		if err := p.add(where.Mutate(m,
			model.Mutation{Field: &m.OtherConfig, Mutator: libovsdb.MutateOperationDelete, Value: []string{otherConfigDPID}},
			model.Mutation{Field: &m.OtherConfig, Mutator: libovsdb.MutateOperationInsert, Value: map[string]string{otherConfigDPID: dpid}},
		)); err != nil {
			return err
		}
		old := "unset"
		if ok {
			old = cur
		}
		p.changef("bridge %s: other_config:datapath-id %s -> %s", br.Name, old, dpid)
	}

	ctrls, err := p.repairControllers(cli, cfg, st, br)
	if err != nil {
		return err
	}
	if ctrls != nil {
		upd.Controller = ctrls
		fields = append(fields, &upd.Controller)
	}
	tables, err := p.repairTables(cli, cfg, st, br)
	if err != nil {
		return err
	}
	if tables != nil {
		upd.FlowTables = tables
		fields = append(fields, &upd.FlowTables)
	}
	if len(fields) > 0 {
		if err := p.add(where.Update(upd, fields...)); err != nil {
			return err
		}
	}
	tunAdd, tunDel, err := p.repairTunnels(cli, cfg, st, br)
	if err != nil {
		return err
	}
	upAdd, upDel, err := p.repairUplink(cli, cfg, st, br)
	if err != nil {
		return err
	}
	add, del := append(tunAdd, upAdd...), append(tunDel, upDel...)
	m := &vswitchd.Bridge{UUID: br.UUID}
	var muts []model.Mutation
	// Deletes first: a replaced port's new row must not be removed again.
	if len(del) > 0 {
		muts = append(muts, model.Mutation{Field: &m.Ports, Mutator: libovsdb.MutateOperationDelete, Value: del})
	}
	if len(add) > 0 {
		muts = append(muts, model.Mutation{Field: &m.Ports, Mutator: libovsdb.MutateOperationInsert, Value: add})
	}
	if len(muts) == 0 {
		return nil
	}
	return p.add(where.Mutate(m, muts...))
}

// repairControllers returns the bridge's new controller set, or nil if it
// does not change.
func (p *planned) repairControllers(cli client.Client, cfg Config, st *state, br *vswitchd.Bridge) ([]string, error) {
	used := map[string]bool{}
	var set []string
	for i, target := range cfg.Controllers {
		want := desiredController(cfg, target)
		var cur *vswitchd.Controller
		for _, u := range br.Controller {
			if c := st.ctrls[u]; c != nil && !used[u] && c.Target == target {
				cur = c
				break
			}
		}
		if cur == nil {
			want.UUID = namedUUID("ctl", strconv.Itoa(i))
			if err := p.add(cli.Create(want)); err != nil {
				return nil, err
			}
			set = append(set, want.UUID)
			p.changef("bridge %s: add controller %s (%s)", br.Name, target, describeController(want))
			continue
		}
		used[cur.UUID] = true
		set = append(set, cur.UUID)
		upd := &vswitchd.Controller{UUID: cur.UUID}
		var fields []any
		var diffs []string
		if strPtr(cur.ConnectionMode) != *want.ConnectionMode {
			upd.ConnectionMode = want.ConnectionMode
			fields = append(fields, &upd.ConnectionMode)
			diffs = append(diffs, fmt.Sprintf("connection_mode %s -> %s", orUnset(strPtr(cur.ConnectionMode)), *want.ConnectionMode))
		}
		// want+1 is RefreshBackoff's variant of the same backoff.
		refreshed := cur.MaxBackoff != nil && *cur.MaxBackoff == *want.MaxBackoff+1
		if intPtr(cur.MaxBackoff) != intPtr(want.MaxBackoff) && !refreshed {
			upd.MaxBackoff = want.MaxBackoff
			fields = append(fields, &upd.MaxBackoff)
			diffs = append(diffs, fmt.Sprintf("max_backoff %s -> %s", orUnset(intPtr(cur.MaxBackoff)), intPtr(want.MaxBackoff)))
		}
		if intPtr(cur.InactivityProbe) != intPtr(want.InactivityProbe) {
			upd.InactivityProbe = want.InactivityProbe
			fields = append(fields, &upd.InactivityProbe)
			diffs = append(diffs, fmt.Sprintf("inactivity_probe %s -> %s", orUnset(intPtr(cur.InactivityProbe)), orUnset(intPtr(want.InactivityProbe))))
		}
		if len(fields) > 0 {
			if err := p.add(cli.Where(&vswitchd.Controller{UUID: cur.UUID}).Update(upd, fields...)); err != nil {
				return nil, err
			}
			p.changef("bridge %s: controller %s: %s", br.Name, target, strings.Join(diffs, ", "))
		}
	}
	for _, u := range br.Controller {
		if !used[u] {
			target := "?"
			if c := st.ctrls[u]; c != nil {
				target = c.Target
			}
			p.changef("bridge %s: remove controller %s", br.Name, target)
		}
	}
	if sameSet(set, br.Controller) {
		return nil, nil
	}
	if set == nil {
		set = []string{}
	}
	return set, nil
}

// repairTables returns the bridge's new flow_tables map, or nil if it does
// not change. A Flow_Table row only this bridge's table uses is renamed in
// place (keeping settings such as flow_limit); a shared one is replaced.
func (p *planned) repairTables(cli client.Client, cfg Config, st *state, br *vswitchd.Bridge) (map[int]string, error) {
	next := map[int]string{}
	changed := false
	for _, t := range sortedTables(cfg.TableNames) {
		name := cfg.TableNames[t]
		u, ok := br.FlowTables[int(t)]
		ft := st.tables[u]
		if ok && ft != nil && strPtr(ft.Name) == name {
			next[int(t)] = u
			continue
		}
		old := "unset"
		if ok && ft != nil && ft.Name != nil {
			old = strconv.Quote(*ft.Name)
		}
		p.changef("bridge %s: table %d name %s -> %q", br.Name, t, old, name)
		if ok && ft != nil && st.tableRefs[u] == 1 {
			n := name
			upd := &vswitchd.FlowTable{UUID: u, Name: &n}
			if err := p.add(cli.Where(&vswitchd.FlowTable{UUID: u}).Update(upd, &upd.Name)); err != nil {
				return nil, err
			}
			next[int(t)] = u
			continue
		}
		n := name
		nft := &vswitchd.FlowTable{UUID: namedUUID("table", strconv.Itoa(int(t))), Name: &n}
		if err := p.add(cli.Create(nft)); err != nil {
			return nil, err
		}
		next[int(t)] = nft.UUID
		changed = true
	}
	for _, t := range sortedKeys(br.FlowTables) {
		if _, ok := cfg.TableNames[uint8(t)]; ok && t <= 254 {
			continue
		}
		old := "unset"
		if ft := st.tables[br.FlowTables[t]]; ft != nil && ft.Name != nil {
			old = strconv.Quote(*ft.Name)
		}
		p.changef("bridge %s: table %d: remove name %s", br.Name, t, old)
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return next, nil
}

// repairTunnels adds missing tunnel ports, fixes drifted ones in place and
// removes tunnel ports of kinds no longer configured. It returns the ports
// to insert into and delete from the bridge's ports.
func (p *planned) repairTunnels(cli client.Client, cfg Config, st *state, br *vswitchd.Bridge) (add, del []string, err error) {
	existing := map[tunnels.Kind]*vswitchd.Port{}
	for _, u := range br.Ports {
		if port := st.ports[u]; port != nil {
			if k, ok := tunnels.KindFromPortName(port.Name); ok {
				existing[k] = port
			}
		}
	}
	wanted := map[tunnels.Kind]bool{}
	for _, tp := range cfg.Tunnels {
		wanted[tp.Kind] = true
		name := tp.Kind.PortName()
		port := existing[tp.Kind]
		if port == nil {
			u, err := p.createTunnel(cli, st, br.Name, tp)
			if err != nil {
				return nil, nil, err
			}
			add = append(add, u)
			continue
		}
		var iface *vswitchd.Interface
		if len(port.Interfaces) == 1 {
			iface = st.ifaces[port.Interfaces[0]]
		}
		if iface == nil || iface.Name != name {
			// Not the shape we create: replace the port (same transaction;
			// ovsdb-server collects the old rows before checking names).
			del = append(del, port.UUID)
			p.changef("bridge %s: replace malformed tunnel port %s", br.Name, name)
			u, err := p.createTunnel(cli, st.without(port), br.Name, tp)
			if err != nil {
				return nil, nil, err
			}
			add = append(add, u)
			continue
		}
		wantOpts := tp.Kind.Options(tp.LocalIP)
		upd := &vswitchd.Interface{UUID: iface.UUID}
		var fields []any
		var diffs []string
		if iface.Type != tp.Kind.InterfaceType() {
			upd.Type = tp.Kind.InterfaceType()
			fields = append(fields, &upd.Type)
			diffs = append(diffs, fmt.Sprintf("type %s -> %s", orUnset(iface.Type), upd.Type))
		}
		if !maps.Equal(iface.Options, wantOpts) {
			upd.Options = wantOpts
			fields = append(fields, &upd.Options)
			diffs = append(diffs, fmt.Sprintf("options %s -> %s", formatMap(iface.Options), formatMap(wantOpts)))
		}
		if len(fields) > 0 {
			if err := p.add(cli.Where(&vswitchd.Interface{UUID: iface.UUID}).Update(upd, fields...)); err != nil {
				return nil, nil, err
			}
			p.changef("bridge %s: tunnel port %s: %s", br.Name, name, strings.Join(diffs, ", "))
		}
	}
	for _, k := range tunnels.Kinds() {
		if port := existing[k]; port != nil && !wanted[k] {
			del = append(del, port.UUID)
			p.changef("bridge %s: remove tunnel port %s (%s is not configured)", br.Name, port.Name, k)
		}
	}
	return add, del, nil
}

// isUplinkPort reports whether port or one of its interfaces carries
// RoleKey=RoleUplink.
func isUplinkPort(st *state, port *vswitchd.Port) bool {
	if port.ExternalIDs[RoleKey] == RoleUplink {
		return true
	}
	for _, iu := range port.Interfaces {
		if i := st.ifaces[iu]; i != nil && i.ExternalIDs[RoleKey] == RoleUplink {
			return true
		}
	}
	return false
}

// repairUplink adds the configured uplink port if missing, replaces it if it
// is not a single interface of its name, fixes its interface type and role
// in place, and removes OpenVPC uplink ports of other names from the bridge.
// It returns the ports to insert into and delete from the bridge's ports.
func (p *planned) repairUplink(cli client.Client, cfg Config, st *state, br *vswitchd.Bridge) (add, del []string, err error) {
	var cur *vswitchd.Port
	var stale []*vswitchd.Port
	for _, u := range br.Ports {
		port := st.ports[u]
		if port == nil {
			continue
		}
		if cfg.Uplink != "" && port.Name == cfg.Uplink {
			cur = port
			continue
		}
		if _, tunnel := tunnels.KindFromPortName(port.Name); tunnel || port.Name == br.Name {
			continue // repairTunnels' (or the bridge's own)
		}
		if isUplinkPort(st, port) {
			stale = append(stale, port)
		}
	}
	for _, port := range stale {
		del = append(del, port.UUID)
		if cfg.Uplink == "" {
			p.changef("bridge %s: remove uplink port %s (no uplink is configured)", br.Name, port.Name)
		} else {
			p.changef("bridge %s: remove uplink port %s (the uplink is %s)", br.Name, port.Name, cfg.Uplink)
		}
	}
	if cfg.Uplink == "" {
		return nil, del, nil
	}
	name := cfg.Uplink
	if cur == nil {
		u, err := p.createUplink(cli, st.without(stale...), br.Name, name)
		if err != nil {
			return nil, nil, err
		}
		return []string{u}, del, nil
	}
	var iface *vswitchd.Interface
	if len(cur.Interfaces) == 1 {
		iface = st.ifaces[cur.Interfaces[0]]
	}
	if iface == nil || iface.Name != name {
		// A bond or a port whose interface has another name: replace it
		// (same transaction; ovsdb-server collects the old rows before
		// checking names).
		del = append(del, cur.UUID)
		p.changef("bridge %s: replace malformed uplink port %s", br.Name, name)
		u, err := p.createUplink(cli, st.without(append(stale, cur)...), br.Name, name)
		if err != nil {
			return nil, nil, err
		}
		return []string{u}, del, nil
	}
	if iface.Type != "" && iface.Type != "system" {
		upd := &vswitchd.Interface{UUID: iface.UUID}
		if err := p.add(cli.Where(&vswitchd.Interface{UUID: iface.UUID}).Update(upd, &upd.Type)); err != nil {
			return nil, nil, err
		}
		p.changef("bridge %s: uplink port %s: type %s -> system", br.Name, name, iface.Type)
	}
	// Mutate only our key: external_ids may hold keys others set.
	if cur.ExternalIDs[RoleKey] != RoleUplink {
		m := &vswitchd.Port{UUID: cur.UUID}
		if err := p.add(cli.Where(&vswitchd.Port{UUID: cur.UUID}).Mutate(m,
			model.Mutation{Field: &m.ExternalIDs, Mutator: libovsdb.MutateOperationDelete, Value: []string{RoleKey}},
			model.Mutation{Field: &m.ExternalIDs, Mutator: libovsdb.MutateOperationInsert, Value: map[string]string{RoleKey: RoleUplink}},
		)); err != nil {
			return nil, nil, err
		}
		p.changef("bridge %s: uplink port %s: set Port external_ids:%s=%s", br.Name, name, RoleKey, RoleUplink)
	}
	if iface.ExternalIDs[RoleKey] != RoleUplink {
		m := &vswitchd.Interface{UUID: iface.UUID}
		if err := p.add(cli.Where(&vswitchd.Interface{UUID: iface.UUID}).Mutate(m,
			model.Mutation{Field: &m.ExternalIDs, Mutator: libovsdb.MutateOperationDelete, Value: []string{RoleKey}},
			model.Mutation{Field: &m.ExternalIDs, Mutator: libovsdb.MutateOperationInsert, Value: map[string]string{RoleKey: RoleUplink}},
		)); err != nil {
			return nil, nil, err
		}
		p.changef("bridge %s: uplink port %s: set Interface external_ids:%s=%s", br.Name, name, RoleKey, RoleUplink)
	}
	return nil, del, nil
}

func normDP(t string) string {
	if t == "" {
		return "system"
	}
	return t
}

func sameDPID(s string, want uint64) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) != 16 {
		return false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return err == nil && v == want
}

func sameSet(a, b []string) bool {
	return slices.Equal(sortedCopy(a), sortedCopy(b))
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return slices.Compact(c)
}

func sortedTables(m map[uint8]string) []uint8 {
	ks := make([]uint8, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func formatMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func strPtr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func intPtr(i *int) string {
	if i == nil {
		return ""
	}
	return strconv.Itoa(*i)
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}
