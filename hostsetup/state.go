package hostsetup

import (
	"context"
	"fmt"
	"maps"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/openvpc/openvpc/ovsdb/vswitchd"
)

// state is a copy of the client's cache of the tables hostsetup looks at.
type state struct {
	root        *vswitchd.OpenvSwitch
	bridges     map[string]*vswitchd.Bridge // by name
	ports       map[string]*vswitchd.Port   // by UUID
	portBridge  map[string]string           // port UUID → bridge name
	portByName  map[string]*vswitchd.Port
	ifaces      map[string]*vswitchd.Interface // by UUID
	ifacePort   map[string]string              // interface UUID → port UUID
	ifaceByName map[string]*vswitchd.Interface
	ctrls       map[string]*vswitchd.Controller // by UUID
	tables      map[string]*vswitchd.FlowTable  // by UUID
	tableRefs   map[string]int                  // Flow_Table UUID → references from all bridges
}

// readState copies the cache. List waits (within ctx) for the cache to be
// consistent, e.g. after a reconnect.
func readState(ctx context.Context, cli client.Client) (*state, error) {
	var (
		roots   []*vswitchd.OpenvSwitch
		bridges []*vswitchd.Bridge
		ports   []*vswitchd.Port
		ifaces  []*vswitchd.Interface
		ctrls   []*vswitchd.Controller
		tables  []*vswitchd.FlowTable
	)
	for _, l := range []struct {
		table string
		dst   any
	}{
		{vswitchd.OpenvSwitchTable, &roots},
		{vswitchd.BridgeTable, &bridges},
		{vswitchd.PortTable, &ports},
		{vswitchd.InterfaceTable, &ifaces},
		{vswitchd.ControllerTable, &ctrls},
		{vswitchd.FlowTableTable, &tables},
	} {
		if err := cli.List(ctx, l.dst); err != nil {
			return nil, fmt.Errorf("read %s from ovsdb cache: %w", l.table, err)
		}
	}
	if len(roots) > 1 {
		return nil, fmt.Errorf("ovsdb has %d Open_vSwitch rows; want 1", len(roots))
	}
	st := &state{
		bridges: map[string]*vswitchd.Bridge{}, ports: map[string]*vswitchd.Port{},
		portBridge: map[string]string{}, portByName: map[string]*vswitchd.Port{},
		ifaces: map[string]*vswitchd.Interface{}, ifaceByName: map[string]*vswitchd.Interface{},
		ctrls: map[string]*vswitchd.Controller{}, tables: map[string]*vswitchd.FlowTable{},
		tableRefs: map[string]int{}, ifacePort: map[string]string{},
	}
	if len(roots) == 1 {
		st.root = roots[0]
	}
	for _, b := range bridges {
		st.bridges[b.Name] = b
		for _, p := range b.Ports {
			st.portBridge[p] = b.Name
		}
		for _, u := range b.FlowTables {
			st.tableRefs[u]++
		}
	}
	for _, p := range ports {
		st.ports[p.UUID] = p
		st.portByName[p.Name] = p
		for _, i := range p.Interfaces {
			st.ifacePort[i] = p.UUID
		}
	}
	for _, i := range ifaces {
		st.ifaces[i.UUID] = i
		st.ifaceByName[i.Name] = i
	}
	for _, c := range ctrls {
		st.ctrls[c.UUID] = c
	}
	for _, t := range tables {
		st.tables[t.UUID] = t
	}
	return st, nil
}

// without returns a shallow copy of st whose name indexes lack ports (and
// their interfaces) that the same transaction deletes, so that rows
// recreated under those names do not count as conflicts.
func (st *state) without(ports ...*vswitchd.Port) *state {
	c := *st
	c.portByName = maps.Clone(st.portByName)
	c.ifaceByName = maps.Clone(st.ifaceByName)
	for _, port := range ports {
		if c.portByName[port.Name] == port {
			delete(c.portByName, port.Name)
		}
		for _, iu := range port.Interfaces {
			if i := st.ifaces[iu]; i != nil && c.ifaceByName[i.Name] == i {
				delete(c.ifaceByName, i.Name)
			}
		}
	}
	return &c
}
