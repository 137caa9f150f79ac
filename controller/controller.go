// Package controller wires OpenVPC together: it loads policy from a Source,
// keeps every host's OVS bridge set up and its NIC bindings known through
// OVSDB, compiles each host's desired flows with the pure compiler, and
// installs only the difference over each host's OpenFlow connection, in
// atomic bundles.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/pipelines"
)

// Config configures a controller.
type Config struct {
	Source Source
	// OpenFlow is where hosts' bridges connect (unix socket or TCP).
	OpenFlow net.Listener
	// OpenFlowTarget is the controller target written into each bridge
	// (e.g. "unix:/run/openvpc/of.sock" or "tcp:10.0.0.1:6653").
	OpenFlowTarget string
	Log            logrus.FieldLogger
	// StartupGrace bounds how long the controller waits for every host's
	// bindings before programming any host, so that a restarted controller
	// never installs a partial view. Default 5 s.
	StartupGrace time.Duration
	// AuditInterval is how often installed flows are read back and drift
	// repaired. Default 30 s; negative disables.
	AuditInterval time.Duration
	// EnsureInterval is how often each host's bridge setup is re-checked and
	// repaired through OVSDB. Default 10 s.
	EnsureInterval time.Duration
	// Agent manages hosts' bridges and reports bindings; default an
	// OVSDBAgent (tests use fakes).
	Agent HostAgent
}

// Switch is the part of an OpenFlow connection the controller uses.
type Switch interface {
	DPID() uint64
	Bundle(ctx context.Context, mods []ofrules.FlowMod) error
	DumpFlows(ctx context.Context, cookie, mask uint64) ([]ofrules.Flow, error)
	Close() error
}

// Controller is a running controller. Create with New, start with Run.
type Controller struct {
	cfg     Config
	log     logrus.FieldLogger
	started time.Time

	// skipped counts reconciles that needed no compile (for tests/metrics).
	skipped atomic.Int64

	mu        sync.Mutex
	net       *model.Net
	policyErr error
	policyGen int
	hosts     map[string]*host
	ctx       context.Context
	bindSeq   uint64 // last binding sequence number (see setBindings)
}

// host is the controller's view of one hypervisor.
type host struct {
	name string
	info *model.HostInfo
	kick chan struct{}
	stop context.CancelFunc
	// swUp tells the host agent that the switch (re)connected.
	swUp chan struct{}

	// OVSDB side
	bindings  *Bindings // nil until the first snapshot
	ovsdbErr  error
	setupDone bool

	// OpenFlow side
	sw         Switch
	connected  time.Time
	needFull   bool
	installed  *ofrules.FlowSet
	installFP  uint64 // pipelines.Fingerprint of the inputs of installed
	lastErr    error
	lastSync   time.Time
	bundles    int
	flowMods   int
	repairs    int // audits that found drift
	retryTimer *time.Timer

	// since numbers the host's NIC bindings in the order they appeared
	// (controller-wide sequence; see setBindings). Replaced, never mutated.
	since map[string]uint64
	// nextHop is a gateway host's uplink router, resolved by ARP.
	nextHop neighbour
	// announced are the public IPs the host was last announced for (a
	// gratuitous ARP on its uplink when it starts serving one).
	announced map[netip.Addr]bool
	// pmtu limits the host's ICMP "fragmentation needed" replies.
	pmtu pmtuLimiter
}

// Bindings is what the OVSDB watcher reports for one host.
type Bindings struct {
	Ports       map[string]uint32 // iface-id → ofport
	TunnelPorts map[string]uint32 // tunnel kind → ofport
	UplinkPort  uint32            // a gateway host's uplink (0: none or not yet)
}

// New creates a controller.
func New(cfg Config) *Controller {
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.StartupGrace == 0 {
		cfg.StartupGrace = 5 * time.Second
	}
	if cfg.AuditInterval == 0 {
		cfg.AuditInterval = 30 * time.Second
	}
	if cfg.EnsureInterval == 0 {
		cfg.EnsureInterval = 10 * time.Second
	}
	if cfg.Agent == nil {
		cfg.Agent = &OVSDBAgent{Target: cfg.OpenFlowTarget, EnsureInterval: cfg.EnsureInterval, Log: cfg.Log}
	}
	return &Controller{cfg: cfg, log: cfg.Log, hosts: map[string]*host{}}
}

// Run loads policy and serves until ctx is done. A policy that fails to
// load or validate at start is an error; later bad edits are logged and the
// last good policy stays in force.
func (c *Controller) Run(ctx context.Context) error {
	c.started = time.Now()
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	if err := c.reload(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.cfg.Source.Run(ctx) }()
	if c.cfg.OpenFlow != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.serveOpenFlow(ctx); err != nil && ctx.Err() == nil {
				c.log.WithError(err).Error("openflow listener stopped")
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.resolveLoop(ctx) }()
	// The startup grace ends with a kick, so hosts whose peers never report
	// get programmed anyway.
	graceT := time.AfterFunc(c.cfg.StartupGrace, c.kickAll)
	defer graceT.Stop()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			for _, h := range c.hosts {
				h.stop()
			}
			c.mu.Unlock()
			wg.Wait()
			return nil
		case <-c.cfg.Source.Changed():
			if err := c.reload(ctx); err != nil {
				c.log.WithError(err).Error("policy rejected; keeping the previous policy")
			}
		}
	}
}

// reload loads and builds policy; on success it becomes current.
func (c *Controller) reload(ctx context.Context) error {
	p, err := c.cfg.Source.Load(ctx)
	if err == nil {
		var n *model.Net
		n, err = model.Build(p)
		if err == nil {
			c.setNet(ctx, n)
			return nil
		}
	}
	c.mu.Lock()
	c.policyErr = err
	c.mu.Unlock()
	return fmt.Errorf("load policy: %w", err)
}

// setNet installs a new policy: starts/stops per-host workers as hosts come
// and go, then recompiles every host.
func (c *Controller) setNet(ctx context.Context, n *model.Net) {
	c.mu.Lock()
	c.net = n
	c.policyErr = nil
	c.policyGen++
	for name, h := range c.hosts {
		hi := n.Hosts[name]
		if hi == nil || hi.OVSDB != h.info.OVSDB || !slices.Equal(hi.Usable, h.info.Usable) || hi.UnderlayIP != h.info.UnderlayIP || hi.DatapathType != h.info.DatapathType ||
			uplinkIface(hi) != uplinkIface(h.info) {
			h.stop()
			if h.sw != nil {
				h.sw.Close()
			}
			delete(c.hosts, name)
		}
	}
	for _, name := range n.HostNames {
		if c.hosts[name] != nil {
			c.hosts[name].info = n.Hosts[name]
			continue
		}
		hctx, cancel := context.WithCancel(ctx)
		h := &host{name: name, info: n.Hosts[name], kick: make(chan struct{}, 1), swUp: make(chan struct{}, 1), stop: cancel, installed: ofrules.NewFlowSet(), needFull: true}
		c.hosts[name] = h
		go c.hostWorker(hctx, h)
		go c.agentWorker(hctx, h, h.info)
	}
	c.mu.Unlock()
	c.log.WithField("hosts", len(n.HostNames)).WithField("nics", len(n.NICNames)).Info("policy loaded")
	c.kickAll()
}

func (c *Controller) kickAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hosts {
		kick(h)
	}
}

func kick(h *host) {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// snapshotLocked builds the compiler input from the current policy and
// every host's bindings. Binding maps are never mutated after being stored,
// so sharing them is safe.
func (c *Controller) snapshotLocked() *pipelines.Snapshot {
	s := &pipelines.Snapshot{Net: c.net, Hosts: make(map[string]pipelines.HostState, len(c.hosts))}
	for name, h := range c.hosts {
		if h.bindings != nil {
			s.Hosts[name] = pipelines.HostState{Ports: h.bindings.Ports, TunnelPorts: h.bindings.TunnelPorts, Since: h.since,
				UplinkPort: h.bindings.UplinkPort, NextHopMAC: nextHopMACLocked(h), Connected: h.sw != nil}
		}
	}
	return s
}

// readyLocked: a host is programmed only once its own bindings are known
// and, during the startup grace, every host's are (so remote locations are
// right from the first bundle).
func (c *Controller) readyLocked(h *host) bool {
	if h.bindings == nil || c.net == nil {
		return false
	}
	if time.Since(c.started) >= c.cfg.StartupGrace {
		return true
	}
	for _, o := range c.hosts {
		if o.bindings == nil {
			return false
		}
	}
	return true
}

// hostWorker reconciles one host's flows whenever it is kicked, and audits
// them periodically.
func (c *Controller) hostWorker(ctx context.Context, h *host) {
	var audit <-chan time.Time
	if c.cfg.AuditInterval > 0 {
		t := time.NewTicker(c.cfg.AuditInterval)
		defer t.Stop()
		audit = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
			c.reconcile(ctx, h)
		case <-audit:
			c.audit(ctx, h)
		}
	}
}

// reconcile compiles the host's desired flows and sends the difference (or,
// after a (re)connect or failure, the full set replacing ours) as one
// atomic bundle.
func (c *Controller) reconcile(ctx context.Context, h *host) {
	c.mu.Lock()
	if h.sw == nil || !c.readyLocked(h) {
		c.mu.Unlock()
		return
	}
	snap := c.snapshotLocked()
	sw, full, installed, installFP := h.sw, h.needFull, h.installed, h.installFP
	c.mu.Unlock()

	// A change that does not concern this host (another VPC, say) leaves
	// its inputs, and so its flows, as they are: skip the compile.
	fp := pipelines.Fingerprint(snap, h.name)
	if !full && fp == installFP {
		c.skipped.Add(1)
		return
	}
	desired, err := pipelines.Compile(snap, h.name)
	if err != nil {
		c.recordResult(h, sw, nil, 0, 0, err)
		return
	}
	var mods []ofrules.FlowMod
	if full {
		mods = ofrules.ReplaceAll(desired, pipelines.CookieOpenVPC, pipelines.CookieMask)
	} else {
		mods = ofrules.Diff(installed, desired)
	}
	if len(mods) == 0 {
		c.recordResult(h, sw, desired, fp, 0, nil)
		return
	}
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = sw.Bundle(bctx, mods)
	cancel()
	c.log.WithFields(logrus.Fields{"host": h.name, "mods": len(mods), "full": full, "flows": desired.Len(), "took": time.Since(start).Round(time.Microsecond)}).
		WithError(err).Info("bundle applied")
	c.recordResult(h, sw, desired, fp, len(mods), err)
}

func (c *Controller) recordResult(h *host, sw Switch, desired *ofrules.FlowSet, fp uint64, nmods int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.sw != sw {
		return // the connection changed meanwhile; the new one does a full sync
	}
	if err != nil {
		h.lastErr = err
		h.needFull = true
		h.installFP = 0
		if h.retryTimer == nil {
			h.retryTimer = time.AfterFunc(time.Second, func() {
				c.mu.Lock()
				h.retryTimer = nil
				c.mu.Unlock()
				kick(h)
			})
		}
		return
	}
	h.installed = desired
	h.installFP = fp
	h.needFull = false
	h.lastErr = nil
	h.lastSync = time.Now()
	if nmods > 0 {
		h.bundles++
		h.flowMods += nmods
	}
}

// audit reads the host's flows back and repairs any drift from what the
// controller believes is installed.
func (c *Controller) audit(ctx context.Context, h *host) {
	c.mu.Lock()
	sw, installed, full := h.sw, h.installed, h.needFull
	c.mu.Unlock()
	if sw == nil || full {
		return
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	flows, err := sw.DumpFlows(actx, pipelines.CookieOpenVPC, pipelines.CookieMask)
	cancel()
	if err != nil {
		c.log.WithError(err).WithField("host", h.name).Warn("audit: dump failed")
		return
	}
	got := ofrules.NewFlowSet()
	for _, f := range flows {
		got.Add(f)
	}
	if d := ofrules.Diff(got, installed); len(d) > 0 {
		c.log.WithFields(logrus.Fields{"host": h.name, "drift": len(d)}).Warn("audit: flows drifted; resyncing")
		c.mu.Lock()
		if h.sw == sw {
			h.needFull = true
			h.repairs++
		}
		c.mu.Unlock()
		kick(h)
	}
}

// hostByDPIDLocked finds the host a switch belongs to.
func (c *Controller) hostByDPIDLocked(dpid uint64) *host {
	for _, h := range c.hosts {
		if h.info.DatapathID == dpid {
			return h
		}
	}
	return nil
}

// switchConnected binds a new OpenFlow connection to its host; the next
// reconcile replaces all our flows on it.
func (c *Controller) switchConnected(sw Switch) {
	c.mu.Lock()
	h := c.hostByDPIDLocked(sw.DPID())
	if h == nil {
		c.mu.Unlock()
		c.log.WithField("dpid", fmt.Sprintf("%016x", sw.DPID())).Warn("switch with unknown datapath id; closing")
		sw.Close()
		return
	}
	old := h.sw
	h.sw, h.needFull, h.connected, h.lastErr = sw, true, time.Now(), nil
	gateway := h.info.Uplink != nil
	c.mu.Unlock()
	if old != nil && old != sw {
		old.Close()
	}
	c.log.WithField("host", h.name).Info("switch connected")
	select {
	case h.swUp <- struct{}{}:
	default:
	}
	if gateway {
		c.kickAll() // a gateway host back: its public IPs return to it
	} else {
		kick(h)
	}
}

func (c *Controller) switchDisconnected(sw Switch) {
	c.mu.Lock()
	gateway := false
	for _, h := range c.hosts {
		if h.sw == sw {
			h.sw = nil
			gateway = gateway || h.info.Uplink != nil
			c.log.WithField("host", h.name).Info("switch disconnected")
		}
	}
	c.mu.Unlock()
	if gateway {
		// Its public IPs move to the next gateway host: every host sends
		// their outbound packets elsewhere.
		c.kickAll()
	}
}

// setBindings stores a host's new bindings and recompiles every host: a
// NIC appearing on one host changes where the others send its traffic.
func (c *Controller) setBindings(h *host, b Bindings) {
	c.mu.Lock()
	// Number each binding when first seen: a NIC bound on two hosts at
	// once (live migration) is where its binding is newest.
	since := make(map[string]uint64, len(b.Ports))
	for nic := range b.Ports {
		if s, ok := h.since[nic]; ok {
			since[nic] = s
		} else {
			c.bindSeq++
			since[nic] = c.bindSeq
		}
	}
	h.since = since
	h.bindings = &b
	h.ovsdbErr = nil
	c.mu.Unlock()
	c.kickAll()
}

// HostStatus is the state of one host, for `openvpc show`.
type HostStatus struct {
	Name       string `json:"name"`
	DatapathID string `json:"datapath_id"`
	UnderlayIP string `json:"underlay_ip"`
	// Encaps are the tunnel kinds the host uses (those its datapath can
	// send with), Tunnels the kind of each peer pair.
	Encaps  []string          `json:"encaps"`
	Tunnels map[string]string `json:"tunnels,omitempty"`
	// Problems: configured kinds its datapath cannot send with, peers
	// without a kind in common (their traffic cannot flow).
	Problems    []string          `json:"problems,omitempty"`
	VMMTU       int               `json:"vm_mtu"`
	OVSDB       string            `json:"ovsdb"`
	OVSDBError  string            `json:"ovsdb_error,omitempty"`
	Connected   bool              `json:"connected"`
	ConnectedAt *time.Time        `json:"connected_at,omitempty"`
	BoundNICs   map[string]uint32 `json:"bound_nics"`
	// PendingNICs are placed on this host by the policy but not plugged
	// (no port with their iface-id) yet.
	PendingNICs   []string          `json:"pending_nics,omitempty"`
	TunnelPorts   map[string]uint32 `json:"tunnel_ports,omitempty"`
	Flows         int               `json:"flows"`
	InSync        bool              `json:"in_sync"`
	LastSync      *time.Time        `json:"last_sync,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	Bundles       int               `json:"bundles"`
	FlowModsTotal int               `json:"flow_mods_total"`
	// DriftRepairs counts audits that found the switch's flows changed
	// behind the controller's back and resynced them.
	DriftRepairs int `json:"drift_repairs"`
	// Gateway is set on gateway hosts (an uplink in their config).
	Gateway *GatewayStatus `json:"gateway,omitempty"`
}

// Status is the controller's state, for `openvpc show`.
type Status struct {
	PolicyGeneration int          `json:"policy_generation"`
	PolicyError      string       `json:"policy_error,omitempty"`
	Hosts            []HostStatus `json:"hosts"`
}

// Status reports the controller's state.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{PolicyGeneration: c.policyGen}
	if c.policyErr != nil {
		st.PolicyError = c.policyErr.Error()
	}
	snap := c.snapshotLocked()
	names := make([]string, 0, len(c.hosts))
	for n := range c.hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := c.hosts[n]
		hs := HostStatus{Name: n, DatapathID: fmt.Sprintf("%016x", h.info.DatapathID), UnderlayIP: h.info.UnderlayIP.String(),
			Encaps: h.info.Usable, Problems: h.info.Problems, VMMTU: h.info.VMMTU, OVSDB: h.info.OVSDB, Connected: h.sw != nil, BoundNICs: map[string]uint32{},
			Flows: h.installed.Len(), InSync: h.sw != nil && !h.needFull, Bundles: h.bundles, FlowModsTotal: h.flowMods, DriftRepairs: h.repairs}
		if h.ovsdbErr != nil {
			hs.OVSDBError = h.ovsdbErr.Error()
		}
		if h.bindings != nil {
			for k, v := range h.bindings.Ports {
				hs.BoundNICs[k] = v
			}
			hs.TunnelPorts = h.bindings.TunnelPorts
		}
		if c.net != nil {
			for _, nn := range c.net.NICNames {
				if _, ok := hs.BoundNICs[nn]; !ok && c.net.NICs[nn].Host == n {
					hs.PendingNICs = append(hs.PendingNICs, nn)
				}
			}
		}
		hs.Gateway = gatewayStatusLocked(c.net, snap, h)
		if c.net != nil {
			for _, pn := range c.net.HostNames {
				if k, ok := c.net.PairEncap(n, pn); ok && pn != n {
					if hs.Tunnels == nil {
						hs.Tunnels = map[string]string{}
					}
					hs.Tunnels[pn] = k
				}
			}
		}
		if h.sw != nil {
			t := h.connected
			hs.ConnectedAt = &t
		}
		if !h.lastSync.IsZero() {
			t := h.lastSync
			hs.LastSync = &t
		}
		if h.lastErr != nil {
			hs.LastError = h.lastErr.Error()
		}
		st.Hosts = append(st.Hosts, hs)
	}
	return st
}

// ErrUnknownHost is returned for a host not in the policy.
var ErrUnknownHost = errors.New("unknown host")

// ErrNotConnected is returned when a host's switch is not connected.
var ErrNotConnected = errors.New("switch not connected")

// DumpFlows reads a host's installed OpenVPC flows from its switch.
func (c *Controller) DumpFlows(ctx context.Context, hostName string) ([]ofrules.Flow, error) {
	c.mu.Lock()
	h := c.hosts[hostName]
	var sw Switch
	if h != nil {
		sw = h.sw
	}
	c.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownHost, hostName)
	}
	if sw == nil {
		return nil, fmt.Errorf("host %q: %w", hostName, ErrNotConnected)
	}
	flows, err := sw.DumpFlows(ctx, pipelines.CookieOpenVPC, pipelines.CookieMask)
	if err != nil {
		return nil, fmt.Errorf("host %q: dump flows: %w", hostName, err)
	}
	ofrules.SortFlows(flows)
	return flows, nil
}

// WaitInSync blocks until every host with bound NICs is connected and has
// its current desired flows installed, or ctx ends. For tests and the demo.
func (c *Controller) WaitInSync(ctx context.Context) error {
	for {
		if c.inSync() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller not in sync: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Controller) inSync() bool {
	c.mu.Lock()
	if c.net == nil {
		c.mu.Unlock()
		return false
	}
	snap := c.snapshotLocked()
	type hv struct {
		h         *host
		installed *ofrules.FlowSet
	}
	var hs []hv
	for _, h := range c.hosts {
		if h.sw == nil || h.needFull || h.bindings == nil {
			c.mu.Unlock()
			return false
		}
		hs = append(hs, hv{h, h.installed})
	}
	c.mu.Unlock()
	for _, x := range hs {
		desired, err := pipelines.Compile(snap, x.h.name)
		if err != nil || len(ofrules.Diff(x.installed, desired)) != 0 {
			return false
		}
	}
	return true
}
