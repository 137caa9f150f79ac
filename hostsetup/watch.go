package hostsetup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ovsdb/vswitchd"
	"github.com/openvpc/openvpc/tunnels"
)

// IfaceIDKey is the Interface external_ids key a hypervisor (libvirt,
// OpenStack, the lab) sets to the NIC's id.
const IfaceIDKey = "iface-id"

// DefaultResync is how often a Watcher recomputes the bindings even without
// a cache event (a safety net: libovsdb drops events when its queue is full
// and rebuilds its cache after a reconnect without delete events).
const DefaultResync = 30 * time.Second

// retryInconsistent is how soon a Watcher looks again after it read the
// cache in the middle of an update (a reference to a row not there yet).
const retryInconsistent = 50 * time.Millisecond

// Bindings is a full snapshot of what is bound on a bridge.
type Bindings struct {
	// Ports maps external_ids:iface-id to the OpenFlow port number, for
	// interfaces on the bridge with an ofport > 0.
	Ports map[string]uint32
	// Tunnels maps a tunnel kind to the ofport of its flow-based port
	// (tunnels.Kind.PortName, of the kind's interface type).
	Tunnels map[tunnels.Kind]uint32
	// Uplink is the ofport of the interface named Watcher.Uplink on the
	// bridge; 0 when no uplink is watched, while it is not on the bridge or
	// has no ofport yet, and while ovs-vswitchd cannot open it (ofport -1).
	// The uplink is never reported in Ports, whatever its external_ids.
	Uplink uint32
}

// Clone returns a deep copy.
func (b Bindings) Clone() Bindings {
	return Bindings{Ports: cloneMap(b.Ports), Tunnels: cloneMap(b.Tunnels), Uplink: b.Uplink}
}

// Equal reports whether b and o hold the same bindings.
func (b Bindings) Equal(o Bindings) bool {
	return maps.Equal(b.Ports, o.Ports) && maps.Equal(b.Tunnels, o.Tunnels) && b.Uplink == o.Uplink
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	maps.Copy(c, m)
	return c
}

// Watcher calls OnChange with the bridge's full Bindings once at start and
// again whenever they change.
type Watcher struct {
	// Client must monitor Bridge, Port and Interface (ovsdb.Dial does).
	Client client.Client
	// Bridge name; "" means DefaultBridge.
	Bridge string
	// Uplink is the name of the uplink interface (Config.Uplink) whose
	// ofport is reported as Bindings.Uplink; "" means none.
	Uplink string
	// OnChange gets a deep copy the callee may keep. It runs on Run's
	// goroutine; changes that happen meanwhile are coalesced.
	OnChange func(Bindings)
	// Log gets warnings (duplicate iface-ids, interfaces in error); nil means
	// logrus.StandardLogger().
	Log logrus.FieldLogger
	// Resync is the period of a full recompute without events; 0 means
	// DefaultResync.
	Resync time.Duration
}

// Watch runs a Watcher for bridge (with no uplink) until ctx ends.
func Watch(ctx context.Context, cli client.Client, bridge string, onChange func(Bindings)) error {
	return (&Watcher{Client: cli, Bridge: bridge, OnChange: onChange}).Run(ctx)
}

// Run watches until ctx ends (then it returns nil) or the client is closed
// for good (an error; cancel ctx before closing the client to stop Run
// cleanly). A dropped connection is not an error: libovsdb reconnects and
// rebuilds its cache, and Run reports the state it finds.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Client == nil || w.OnChange == nil {
		return errors.New("hostsetup: Watcher needs a Client and OnChange")
	}
	bridge := w.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	log := w.Log
	if log == nil {
		log = logrus.StandardLogger()
	}
	log = log.WithField("bridge", bridge)
	if w.Uplink != "" {
		log = log.WithField("uplink", w.Uplink)
	}
	resync := w.Resync
	if resync <= 0 {
		resync = DefaultResync
	}
	tc := w.Client.Cache()
	if tc == nil {
		return errors.New("hostsetup: watch: ovsdb client is not connected")
	}

	// libovsdb cannot remove an event handler: once Run returns, the handler
	// stays registered but does nothing.
	kick := make(chan struct{}, 1)
	var stopped atomic.Bool
	notify := func(table string) {
		if stopped.Load() {
			return
		}
		switch table {
		case vswitchd.BridgeTable, vswitchd.PortTable, vswitchd.InterfaceTable:
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
	tc.AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(table string, _ model.Model) { notify(table) },
		UpdateFunc: func(table string, _, _ model.Model) { notify(table) },
		DeleteFunc: func(table string, _ model.Model) { notify(table) },
	})
	defer stopped.Store(true)

	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour) // armed only after an inconsistent read
	retry.Stop()
	defer retry.Stop()
	var (
		last   Bindings
		sent   bool
		warned = map[string]bool{}
	)
	for {
		b, warnings, consistent, err := computeBindings(ctx, w.Client, bridge, w.Uplink)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("hostsetup: watch %s: %w", bridge, err)
		case !consistent:
			retry.Reset(retryInconsistent)
		default:
			// Warn once per problem, not on every recompute.
			now := make(map[string]bool, len(warnings))
			for _, wmsg := range warnings {
				if !warned[wmsg] {
					log.Warn(wmsg)
				}
				now[wmsg] = true
			}
			warned = now
			if !sent || !b.Equal(last) {
				log.WithFields(logrus.Fields{"ports": len(b.Ports), "tunnels": len(b.Tunnels), "uplink_ofport": b.Uplink}).Debug("bindings changed")
				last, sent = b, true
				w.OnChange(b.Clone())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if w.Client.Cache() == nil {
				// Closed, and its disconnect notice went to nobody.
				return fmt.Errorf("hostsetup: watch %s: ovsdb client closed", bridge)
			}
		case <-w.Client.DisconnectNotify():
			return fmt.Errorf("hostsetup: watch %s: ovsdb connection closed", bridge)
		case <-kick:
		case <-retry.C:
		}
	}
}

// computeBindings reads the bridge's bindings from the cache; uplink is the
// uplink interface's name ("" = none). consistent is false when the cache was read in the middle of an update (a row refers to
// a row that is not there yet); the caller should look again shortly.
func computeBindings(ctx context.Context, cli client.Client, bridge, uplink string) (b Bindings, warnings []string, consistent bool, err error) {
	b = Bindings{Ports: map[string]uint32{}, Tunnels: map[tunnels.Kind]uint32{}}
	var bridges []*vswitchd.Bridge
	if err := cli.WhereCache(func(br *vswitchd.Bridge) bool { return br.Name == bridge }).List(ctx, &bridges); err != nil {
		return b, nil, false, fmt.Errorf("read Bridge: %w", err)
	}
	if len(bridges) == 0 {
		return b, nil, true, nil
	}
	br := bridges[0]
	tc := cli.Cache()
	if tc == nil {
		return b, nil, false, errors.New("ovsdb client is not connected")
	}
	portCache, ifaceCache := tc.Table(vswitchd.PortTable), tc.Table(vswitchd.InterfaceTable)
	if portCache == nil || ifaceCache == nil {
		return b, nil, false, errors.New("ovsdb cache lacks the Port or Interface table")
	}

	type cand struct {
		iface, port string
		ofport      uint32
	}
	byID := map[string][]cand{}
	for _, pu := range br.Ports {
		port, ok := portCache.Row(pu).(*vswitchd.Port)
		if !ok {
			return b, nil, false, nil
		}
		for _, iu := range port.Interfaces {
			iface, ok := ifaceCache.Row(iu).(*vswitchd.Interface)
			if !ok {
				return b, nil, false, nil
			}
			ofport := 0
			if iface.Ofport != nil {
				ofport = *iface.Ofport
			}
			if ofport < 0 {
				// -1: ovs-vswitchd could not add the interface.
				warnings = append(warnings, fmt.Sprintf("interface %s (port %s) is in error: %s", iface.Name, port.Name, orUnset(strPtr(iface.Error))))
				continue
			}
			if uplink != "" && iface.Name == uplink {
				// Not a NIC even if it carries an iface-id.
				if ofport > 0 {
					b.Uplink = uint32(ofport)
				}
				continue
			}
			if k, ok := tunnels.KindFromPortName(iface.Name); ok && iface.Type == k.InterfaceType() {
				if ofport > 0 {
					b.Tunnels[k] = uint32(ofport)
				}
				continue
			}
			id := iface.ExternalIDs[IfaceIDKey]
			if id == "" || ofport == 0 {
				// No NIC, or ovs-vswitchd has not assigned the ofport yet (it
				// arrives in a later update than the new row).
				continue
			}
			byID[id] = append(byID[id], cand{iface: iface.Name, port: port.Name, ofport: uint32(ofport)})
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cs := byID[id]
		// Highest ofport wins: ofports are allocated increasingly, so it is
		// most likely the newest interface (e.g. a VM being migrated in).
		sort.Slice(cs, func(i, j int) bool { return cs[i].ofport > cs[j].ofport })
		b.Ports[id] = cs[0].ofport
		if len(cs) > 1 {
			var others []string
			for _, c := range cs[1:] {
				others = append(others, fmt.Sprintf("%s (ofport %d)", c.iface, c.ofport))
			}
			warnings = append(warnings, fmt.Sprintf("%d interfaces carry %s=%s; using %s (ofport %d), ignoring %s",
				len(cs), IfaceIDKey, id, cs[0].iface, cs[0].ofport, strings.Join(others, ", ")))
		}
	}
	return b, warnings, true, nil
}
