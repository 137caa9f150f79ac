package controller

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/hostsetup"
	"github.com/openvpc/openvpc/ofrules/ofconn"
	"github.com/openvpc/openvpc/ovsdb"
	"github.com/openvpc/openvpc/pipelines"
	"github.com/openvpc/openvpc/tunnels"
)

// serveOpenFlow accepts the hosts' OpenFlow connections.
func (c *Controller) serveOpenFlow(ctx context.Context) error {
	return ofconn.Serve(ctx, c.cfg.OpenFlow, ofconn.Config{
		Log: c.log.WithField("part", "openflow"), EchoInterval: 2 * time.Second, EchoTimeout: 6 * time.Second,
	}, ofHandler{c})
}

type ofHandler struct{ c *Controller }

func (h ofHandler) Connected(sw *ofconn.Switch)    { h.c.switchConnected(sw) }
func (h ofHandler) Disconnected(sw *ofconn.Switch) { h.c.switchDisconnected(sw) }

// setupConfig is the bridge configuration the controller keeps on a host.
func (c *Controller) setupConfig(h *host) (hostsetup.Config, error) {
	kind, err := tunnels.ParseKind(h.info.Encap)
	if err != nil {
		return hostsetup.Config{}, err
	}
	return hostsetup.Config{
		Bridge:       "br-int",
		DatapathType: h.info.DatapathType,
		DatapathID:   h.info.DatapathID,
		Controllers:  []string{c.cfg.OpenFlowTarget},
		MaxBackoffMS: 1000,
		Tunnels:      []hostsetup.TunnelPort{{Kind: kind, LocalIP: h.info.UnderlayIP}},
		TableNames:   pipelines.TableNames(),
	}, nil
}

// ovsdbWorker keeps one host's bridge set up and reports its NIC bindings,
// reconnecting with backoff.
func (c *Controller) ovsdbWorker(ctx context.Context, h *host) {
	log := c.log.WithField("host", h.name)
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := c.ovsdbSession(ctx, h, log)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		h.ovsdbErr = err
		c.mu.Unlock()
		log.WithError(err).Warn("ovsdb session ended; retrying")
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

func (c *Controller) ovsdbSession(ctx context.Context, h *host, log logrus.FieldLogger) error {
	cfg, err := c.setupConfig(h)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cli, err := ovsdb.Dial(dctx, h.info.OVSDB, log)
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
		watchErr <- hostsetup.Watch(sctx, cli, cfg.Bridge, func(b hostsetup.Bindings) {
			c.setBindings(h, Bindings{Ports: b.Ports, TunnelPort: b.Tunnels[cfg.Tunnels[0].Kind]})
		})
	}()
	t := time.NewTicker(c.cfg.EnsureInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			return err
		case <-t.C:
			if err := ensure(); err != nil {
				return err
			}
		}
	}
}
