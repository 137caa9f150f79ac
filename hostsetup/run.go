package hostsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	libmodel "github.com/ovn-kubernetes/libovsdb/model"
	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ovsdb"
	"github.com/openvpc/openvpc/ovsdb/vswitchd"
	"github.com/openvpc/openvpc/tunnels"
)

// Run is `openvpc host setup`: it connects to the OVSDB endpoint
// ("unix:/path" or "tcp:host:port"), runs Ensure and prints what it changed
// to stdout. ctx bounds the whole run (ovsdb.DefaultTimeout if it has no
// deadline).
func Run(ctx context.Context, endpoint string, cfg Config, log logrus.FieldLogger) error {
	return run(ctx, endpoint, cfg, log, os.Stdout)
}

func run(ctx context.Context, endpoint string, cfg Config, log logrus.FieldLogger, out io.Writer) error {
	if log == nil {
		log = logrus.StandardLogger()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ovsdb.DefaultTimeout)
		defer cancel()
	}
	cli, err := ovsdb.Dial(ctx, endpoint, log)
	if err != nil {
		return err
	}
	defer cli.Close()
	changes, err := Ensure(ctx, cli, cfg)
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	if err != nil {
		return err
	}
	bridge := cfg.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	if len(changes) == 0 {
		fmt.Fprintf(out, "bridge %s is up to date\n", bridge)
	} else {
		fmt.Fprintf(out, "bridge %s: %d changes applied\n", bridge, len(changes))
	}
	return nil
}

// DefaultWatchInterval is how often RunWatch re-ensures the bridge without
// an OVSDB event.
const DefaultWatchInterval = 10 * time.Second

// watchSettle is how long RunWatch lets OVSDB events settle (one
// ovs-vsctl command, the ofports ovs-vswitchd assigns after it) before it
// re-ensures the bridge.
const watchSettle = 100 * time.Millisecond

// RunWatch is `openvpc host setup --watch`: it keeps the bridge as cfg
// describes until ctx ends, running Ensure at start, every interval
// (DefaultWatchInterval if 0) and whenever OVSDB reports a change to a
// bridge, port, interface, controller or table name, and logs every change
// it makes: a deleted tunnel port, a changed fail_mode or controller, a
// bridge deleted by hand are put back within moments.
//
// It waits for the OVSDB server if it is not up yet, and the client
// reconnects by itself if it goes away; a failed Ensure (ovs-vswitchd not
// running, a concurrent change) is logged and tried again. It returns nil
// when ctx ends, and an error at once for an invalid cfg, or when a
// tunnel kind cannot be used on the bridge's datapath
// (tunnels.ErrUnsupportedDatapath).
func RunWatch(ctx context.Context, endpoint string, cfg Config, interval time.Duration, log logrus.FieldLogger) error {
	if log == nil {
		log = logrus.StandardLogger()
	}
	if interval < 0 {
		return fmt.Errorf("hostsetup: watch interval %v: must not be negative", interval)
	}
	if interval == 0 {
		interval = DefaultWatchInterval
	}
	norm, err := cfg.normalize()
	if err != nil {
		return err
	}
	log = log.WithFields(logrus.Fields{"bridge": norm.Bridge, "ovsdb": endpoint})

	cli, err := dialWait(ctx, endpoint, interval, log)
	if cli == nil {
		return err // nil when ctx ended
	}
	defer cli.Close()
	tc := cli.Cache()
	if tc == nil {
		return fmt.Errorf("hostsetup: watch: ovsdb client for %s is not connected", endpoint)
	}
	// libovsdb cannot remove an event handler: once RunWatch returns, it
	// stays registered (on a closed client) but does nothing.
	kick := make(chan struct{}, 1)
	var stopped atomic.Bool
	defer stopped.Store(true)
	notify := func(table string) {
		if stopped.Load() {
			return
		}
		switch table {
		case vswitchd.BridgeTable, vswitchd.PortTable, vswitchd.InterfaceTable, vswitchd.ControllerTable, vswitchd.FlowTableTable:
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
	tc.AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(table string, _ libmodel.Model) { notify(table) },
		UpdateFunc: func(table string, _, _ libmodel.Model) { notify(table) },
		DeleteFunc: func(table string, _ libmodel.Model) { notify(table) },
	})

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	trigger, failing := "start", false
	for {
		ectx, cancel := context.WithTimeout(ctx, ovsdb.DefaultTimeout)
		changes, err := Ensure(ectx, cli, cfg)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		verb := "repaired"
		if trigger == "start" {
			verb = "set up"
		}
		log.WithFields(logrus.Fields{"trigger": trigger, "changes": len(changes)}).Debug("bridge checked")
		for _, c := range changes {
			log.WithField("trigger", trigger).Infof("%s: %s", verb, c)
		}
		switch {
		case errors.Is(err, tunnels.ErrUnsupportedDatapath):
			return err
		case err != nil:
			log.WithError(err).WithField("trigger", trigger).Warnf("bridge not as configured; trying again on the next change or in %v", interval)
			failing = true
		case failing || trigger == "start":
			if len(changes) == 0 {
				log.Info("bridge is up to date")
			}
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			trigger = "interval"
		case <-kick:
			trigger = "ovsdb change"
			if !sleepCtx(ctx, watchSettle) {
				return nil
			}
			select { // what came meanwhile is seen by this Ensure
			case <-kick:
			default:
			}
		}
	}
}

// dialWait connects to OVSDB, trying again every retry until ctx ends
// (then it returns nil, nil).
func dialWait(ctx context.Context, endpoint string, retry time.Duration, log logrus.FieldLogger) (client.Client, error) {
	for warned := false; ; warned = true {
		dctx, cancel := context.WithTimeout(ctx, ovsdb.DefaultTimeout)
		cli, err := ovsdb.Dial(dctx, endpoint, log)
		cancel()
		if err == nil {
			if warned {
				log.Info("connected to OVSDB")
			}
			return cli, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if !warned {
			log.WithError(err).Warnf("cannot reach OVSDB; trying again every %v", retry)
		}
		if !sleepCtx(ctx, retry) {
			return nil, nil
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
