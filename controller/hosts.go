package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/hostsetup"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules/ofconn"
	"github.com/openvpc/openvpc/ovsdb"
	"github.com/openvpc/openvpc/pipelines"
	"github.com/openvpc/openvpc/tunnels"
)

// serveOpenFlow accepts the hosts' OpenFlow connections.
func (c *Controller) serveOpenFlow(ctx context.Context) error {
	return ofconn.Serve(ctx, c.cfg.OpenFlow, ofconn.Config{
		Log: c.log.WithField("part", "openflow"), EchoInterval: 2 * time.Second, EchoTimeout: 6 * time.Second,
		// Security-group rules match ports: in nx-match mode first
		// fragments keep their ports and later ones are told apart
		// (nw_frag=later) instead of all reading as port 0.
		FragMode: ofconn.FragNXMatch,
	}, ofHandler{c})
}

type ofHandler struct{ c *Controller }

func (h ofHandler) Connected(sw *ofconn.Switch)                    { h.c.switchConnected(sw) }
func (h ofHandler) Disconnected(sw *ofconn.Switch)                 { h.c.switchDisconnected(sw) }
func (h ofHandler) PacketIn(sw *ofconn.Switch, pi ofconn.PacketIn) { h.c.packetIn(sw, pi) }

// HostAgent keeps one host's bridge set up and reports its NIC bindings.
// Session runs until ctx ends (nil) or the session breaks (an error; the
// controller retries with backoff). report is called with every new
// snapshot of the host's bindings; connected is signalled each time the
// host's switch (re)connects over OpenFlow.
type HostAgent interface {
	Session(ctx context.Context, h *model.HostInfo, report func(Bindings), connected <-chan struct{}) error
}

// OVSDBAgent is the HostAgent for real hosts: it dials the host's OVSDB,
// creates/repairs br-int (and re-checks it every EnsureInterval) and watches
// the Interface table for external_ids:iface-id.
type OVSDBAgent struct {
	Target         string // controller target written into the bridge
	EnsureInterval time.Duration
	Log            logrus.FieldLogger
}

// SetupConfig is the bridge configuration kept on a host.
func (a *OVSDBAgent) SetupConfig(h *model.HostInfo) (hostsetup.Config, error) {
	// One flow-based port per kind the host can use; kinds its datapath
	// cannot send with are left out (and reported in its problems).
	var tps []hostsetup.TunnelPort
	for _, k := range h.Usable {
		kind, err := tunnels.ParseKind(k)
		if err != nil {
			return hostsetup.Config{}, err
		}
		tps = append(tps, hostsetup.TunnelPort{Kind: kind, LocalIP: h.UnderlayIP})
	}
	uplink := ""
	if h.Uplink != nil {
		uplink = h.Uplink.Interface
	}
	return hostsetup.Config{
		Uplink:       uplink,
		Bridge:       "br-int",
		DatapathType: h.DatapathType,
		DatapathID:   h.DatapathID,
		Controllers:  []string{a.Target},
		MaxBackoffMS: 1000,
		Tunnels:      tps,
		TableNames:   pipelines.TableNames(),
	}, nil
}

// Session implements HostAgent.
func (a *OVSDBAgent) Session(ctx context.Context, h *model.HostInfo, report func(Bindings), connected <-chan struct{}) error {
	log := a.Log.WithField("host", h.Name)
	cfg, err := a.SetupConfig(h)
	if err != nil {
		return err
	}
	if h.OVSDB == "" {
		return fmt.Errorf("host %q has no ovsdb endpoint", h.Name)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cli, err := ovsdb.Dial(dctx, h.OVSDB, log)
	cancel()
	if err != nil {
		return err
	}
	defer cli.Close()
	ensure := func() error {
		ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		changes, err := hostsetup.Ensure(ectx, cli, cfg)
		for _, ch := range changes {
			log.WithField("change", ch).Info("bridge setup")
		}
		return err
	}
	if err := ensure(); err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	watchErr := make(chan error, 1)
	go func() {
		w := &hostsetup.Watcher{Client: cli, Bridge: cfg.Bridge, Uplink: cfg.Uplink, Log: log, OnChange: func(b hostsetup.Bindings) {
			tp := map[string]uint32{}
			for k, p := range b.Tunnels {
				tp[string(k)] = p
			}
			report(Bindings{Ports: b.Ports, TunnelPorts: tp, UplinkPort: b.Uplink})
		}}
		watchErr <- w.Run(sctx)
	}()
	interval := a.EnsureInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if err == nil {
				err = fmt.Errorf("bindings watch ended")
			}
			return err
		case <-t.C:
			if err := ensure(); err != nil {
				return err
			}
		case <-connected:
			a.refreshBackoff(ctx, cli, cfg, log)
		}
	}
}

// refreshBackoff makes OVS apply max_backoff to the new controller
// connection (see hostsetup.RefreshBackoff).
func (a *OVSDBAgent) refreshBackoff(ctx context.Context, cli client.Client, cfg hostsetup.Config, log logrus.FieldLogger) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := hostsetup.RefreshBackoff(rctx, cli, cfg); err != nil {
		log.WithError(err).Warn("refresh controller backoff")
	}
}

// agentWorker runs the host agent's sessions, retrying with backoff.
func (c *Controller) agentWorker(ctx context.Context, h *host, info *model.HostInfo) {
	log := c.log.WithField("host", h.name)
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := c.cfg.Agent.Session(ctx, info, func(b Bindings) { c.setBindings(h, b) }, h.swUp)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		h.ovsdbErr = err
		c.mu.Unlock()
		log.WithError(err).Warn("host session ended; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}
