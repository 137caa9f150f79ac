package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/hostsetup"
	"github.com/openvpc/openvpc/pipelines"
	"github.com/openvpc/openvpc/tunnels"
)

func hostCmd() *cli.Command {
	return &cli.Command{
		Name:  "host",
		Usage: "hypervisor-side commands",
		Subcommands: []*cli.Command{{
			Name:  "setup",
			Usage: "create or repair br-int on a hypervisor through OVSDB (idempotent)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "ovsdb", Value: "unix:/var/run/openvswitch/db.sock", Usage: "OVSDB endpoint: unix:/path or tcp:ip:port"},
				&cli.StringSliceFlag{Name: "controller", Required: true, Usage: "controller target(s), e.g. tcp:10.0.0.1:6653"},
				&cli.StringFlag{Name: "bridge", Value: "br-int"},
				&cli.StringFlag{Name: "datapath-type", Value: "system", Usage: "system (kernel) or netdev (userspace)"},
				&cli.StringFlag{Name: "datapath-id", Required: true, Usage: "16 hex digits; `openvpc show` lists each host's"},
				&cli.StringFlag{Name: "encap", Value: "vxlan", Usage: "vxlan, gre or geneve"},
				&cli.StringFlag{Name: "local-ip", Required: true, Usage: "underlay address of this host"},
				&cli.StringFlag{Name: "uplink", Usage: "gateway hosts: the network device `IFACE` (e.g. eth1) to plug into the bridge as the uplink port; unset = none (an uplink port set up before is removed)"},
			},
			Action: func(c *cli.Context) error {
				kind, err := tunnels.ParseKind(c.String("encap"))
				if err != nil {
					return fmt.Errorf("--encap: %w", err)
				}
				ip, err := netip.ParseAddr(c.String("local-ip"))
				if err != nil {
					return fmt.Errorf("--local-ip: %w", err)
				}
				dpid, err := strconv.ParseUint(c.String("datapath-id"), 16, 64)
				if err != nil {
					return fmt.Errorf("--datapath-id: %w", err)
				}
				cfg := hostsetup.Config{
					Bridge: c.String("bridge"), DatapathType: c.String("datapath-type"), DatapathID: dpid,
					Controllers: c.StringSlice("controller"), MaxBackoffMS: 1000,
					Tunnels:    []hostsetup.TunnelPort{{Kind: kind, LocalIP: ip}},
					TableNames: pipelines.TableNames(),
					Uplink:     c.String("uplink"),
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				return hostsetup.Run(ctx, c.String("ovsdb"), cfg, logrus.StandardLogger())
			},
		}},
	}
}
