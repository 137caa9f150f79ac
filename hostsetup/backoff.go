package hostsetup

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/openvpc/openvpc/ovsdb"
	"github.com/openvpc/openvpc/ovsdb/vswitchd"
)

// RefreshBackoff rewrites max_backoff of the bridge's controllers,
// toggling between MaxBackoffMS and MaxBackoffMS+1 (the same backoff once
// OVS rounds to seconds). OVS 3.1 applies max_backoff only to a controller
// connection that is up when the bridge is reconfigured; a connection made
// later keeps OVS's default 8 s backoff, so after a few controller restarts
// a bridge would wait up to 8 s to reconnect. Call it when the switch has
// just connected (OVSDB's is_connected lags by seconds, so it is not
// consulted); Ensure accepts both values.
func RefreshBackoff(ctx context.Context, cli client.Client, cfg Config) (int, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return 0, err
	}
	if err := syncCache(ctx, cli); err != nil {
		return 0, err
	}
	st, err := readState(ctx, cli)
	if err != nil {
		return 0, err
	}
	br := st.bridges[cfg.Bridge]
	if br == nil {
		return 0, fmt.Errorf("hostsetup: bridge %s does not exist", cfg.Bridge)
	}
	var ops []libovsdb.Operation
	for _, u := range br.Controller {
		c := st.ctrls[u]
		if c == nil {
			continue
		}
		v := cfg.MaxBackoffMS + 1
		if c.MaxBackoff != nil && *c.MaxBackoff == cfg.MaxBackoffMS+1 {
			v = cfg.MaxBackoffMS
		}
		upd := &vswitchd.Controller{UUID: c.UUID, MaxBackoff: &v}
		op, err := cli.Where(&vswitchd.Controller{UUID: c.UUID}).Update(upd, &upd.MaxBackoff)
		if err != nil {
			return 0, fmt.Errorf("hostsetup: refresh backoff: %w", err)
		}
		ops = append(ops, op...)
	}
	if len(ops) == 0 {
		return 0, nil
	}
	n := len(ops)
	// Bump next_cfg and wait for cur_cfg, so that on return ovs-vswitchd has
	// applied the backoff (as Ensure does).
	rootCond := []libovsdb.Condition{{Column: "_uuid", Function: libovsdb.ConditionEqual, Value: libovsdb.UUID{GoUUID: st.root.UUID}}}
	ops = append(ops,
		libovsdb.Operation{Op: libovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: rootCond,
			Mutations: []libovsdb.Mutation{{Column: "next_cfg", Mutator: libovsdb.MutateOperationAdd, Value: 1}}},
		libovsdb.Operation{Op: libovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Where: rootCond, Columns: []string{"next_cfg"}})
	res, err := ovsdb.Transact(ctx, cli, ops...)
	if err != nil {
		return 0, fmt.Errorf("hostsetup: refresh backoff: %w", err)
	}
	next, err := selectedInt(res[len(ops)-1], "next_cfg")
	if err != nil {
		return n, fmt.Errorf("hostsetup: refresh backoff: %w", err)
	}
	if err := waitCfg(ctx, cli, next); err != nil {
		return n, fmt.Errorf("hostsetup: refresh backoff: %w", err)
	}
	return n, nil
}
