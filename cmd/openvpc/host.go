package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/hostsetup"
	"github.com/openvpc/openvpc/pipelines"
	"github.com/openvpc/openvpc/tunnels"
)

// hostSetup is what `openvpc host setup` runs once its flags are checked:
// hostsetup.Run, or with --watch hostsetup.RunWatch (tests replace it).
var hostSetup = func(ctx context.Context, endpoint string, cfg hostsetup.Config, watch bool, interval time.Duration) error {
	log := logrus.StandardLogger()
	if watch {
		return hostsetup.RunWatch(ctx, endpoint, cfg, interval, log)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return hostsetup.Run(ctx, endpoint, cfg, log)
}

func hostCmd() *cli.Command {
	return &cli.Command{
		Name:  "host",
		Usage: "hypervisor-side commands",
		Subcommands: []*cli.Command{{
			Name: "setup",
			Usage: "create or repair br-int on a hypervisor through OVSDB (idempotent); once, or with --watch for as long as it runs " +
				"(e.g. as a systemd service), repairing the bridge whenever it drifts",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "ovsdb", Value: "unix:/var/run/openvswitch/db.sock", Usage: "OVSDB endpoint: unix:/path or tcp:ip:port"},
				&cli.StringSliceFlag{Name: "controller", Required: true, Usage: "controller target(s), e.g. tcp:10.0.0.1:6653"},
				&cli.StringFlag{Name: "bridge", Value: "br-int"},
				&cli.StringFlag{Name: "datapath-type", Value: "system", Usage: "system (kernel) or netdev (userspace)"},
				&cli.StringFlag{Name: "datapath-id", Required: true, Usage: "16 hex digits; `openvpc show` lists each host's"},
				&cli.StringSliceFlag{Name: "encaps", Aliases: []string{"encap"}, Usage: "tunnel `KINDS` this host uses, comma separated (vxlan, geneve, gre, stt): one tunnel port each; " +
					"the host's encaps in the API (default vxlan)"},
				&cli.StringFlag{Name: "local-ip", Required: true, Usage: "underlay address of this host"},
				&cli.StringFlag{Name: "uplink", Usage: "gateway hosts: the network device `IFACE` (e.g. eth1) to plug into the bridge as the uplink port; unset = none (an uplink port set up before is removed)"},
				&cli.BoolFlag{Name: "watch", Usage: "keep running: re-ensure the bridge every --interval and whenever OVSDB reports a change to it, logging each repair"},
				&cli.DurationFlag{Name: "interval", Value: hostsetup.DefaultWatchInterval, Usage: "with --watch, how often to re-ensure the bridge without a change"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return fmt.Errorf("host setup: unexpected arguments %q (flags go before arguments; this command takes none)", c.Args().Slice())
				}
				cfg, err := hostSetupConfig(c)
				if err != nil {
					return err
				}
				if c.IsSet("interval") && !c.Bool("watch") {
					return errors.New("--interval: only with --watch")
				}
				if c.Duration("interval") <= 0 {
					return fmt.Errorf("--interval %v: must be positive", c.Duration("interval"))
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return hostSetup(ctx, c.String("ovsdb"), cfg, c.Bool("watch"), c.Duration("interval"))
			},
		}},
	}
}

// hostSetupConfig is the bridge configuration the flags of `host setup`
// describe: one tunnel port per kind of --encaps (vxlan by default).
func hostSetupConfig(c *cli.Context) (hostsetup.Config, error) {
	ip, err := netip.ParseAddr(c.String("local-ip"))
	if err != nil {
		return hostsetup.Config{}, fmt.Errorf("--local-ip: %w", err)
	}
	dpid, err := strconv.ParseUint(c.String("datapath-id"), 16, 64)
	if err != nil {
		return hostsetup.Config{}, fmt.Errorf("--datapath-id: %w", err)
	}
	dpType := c.String("datapath-type")
	switch dpType {
	case "system", "netdev":
	default:
		return hostsetup.Config{}, fmt.Errorf("--datapath-type %q: want system or netdev", dpType)
	}
	kinds, err := parseEncaps(c.StringSlice("encaps"), dpType)
	if err != nil {
		return hostsetup.Config{}, fmt.Errorf("--encaps: %w", err)
	}
	cfg := hostsetup.Config{
		Bridge: c.String("bridge"), DatapathType: dpType, DatapathID: dpid,
		Controllers: c.StringSlice("controller"), MaxBackoffMS: 1000,
		TableNames: pipelines.TableNames(),
		Uplink:     c.String("uplink"),
	}
	for _, k := range kinds {
		cfg.Tunnels = append(cfg.Tunnels, hostsetup.TunnelPort{Kind: k, LocalIP: ip})
	}
	return cfg, nil
}

// parseEncaps parses tunnel kinds (each value may itself be a comma
// separated list; none: vxlan), refusing duplicates and kinds the datapath
// cannot send with.
func parseEncaps(values []string, datapathType string) ([]tunnels.Kind, error) {
	var kinds []tunnels.Kind
	seen := map[tunnels.Kind]bool{}
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			k, err := tunnels.ParseKind(s)
			if err != nil {
				return nil, err
			}
			if seen[k] {
				return nil, fmt.Errorf("%s is listed twice", k)
			}
			seen[k] = true
			if err := tunnels.CheckDatapath(k, datapathType); err != nil {
				return nil, err
			}
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		kinds = []tunnels.Kind{tunnels.VXLAN}
	}
	return kinds, nil
}
