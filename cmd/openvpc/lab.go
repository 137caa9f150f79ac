package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/internal/demo"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
)

func labDir(name, dir string) string {
	if dir != "" {
		return dir
	}
	return "/tmp/openvpc-lab-" + name
}

var labFlags = []cli.Flag{
	&cli.StringFlag{Name: "name", Value: "demo", Usage: "lab name ([a-z0-9]{1,6}): prefix of every namespace and device"},
	&cli.StringFlag{Name: "dir", Usage: "state directory (default /tmp/openvpc-lab-NAME)"},
}

func labCmd() *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "a local multi-host sandbox: hosts and VMs as network namespaces with private userspace OVS",
		Subcommands: []*cli.Command{
			{
				Name:  "up",
				Usage: "build the lab for a policy file and start a controller for it",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true, Usage: "policy YAML"},
					&cli.BoolFlag{Name: "wait-pings", Usage: "after start, wait until every VM pings every other VM of its VPC and print the time taken"},
				}, labFlags...),
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
					defer stop()
					start := time.Now()
					env, err := labrun.Up(ctx, c.String("file"), labrun.Options{Name: c.String("name"), Dir: labDir(c.String("name"), c.String("dir")), Binary: exe, Store: true})
					if err != nil {
						return err
					}
					wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					defer cancel()
					if err := env.WaitReady(wctx); err != nil {
						return fmt.Errorf("%w (see %s/controller.log)", err, env.Lab.Dir())
					}
					upTook := time.Since(start)
					inv, _ := json.MarshalIndent(env.Lab.Inventory(), "", "  ")
					fmt.Println(string(inv))
					if c.Bool("wait-pings") {
						pairs, err := demo.WaitPingMesh(wctx, env)
						if err != nil {
							return err
						}
						fmt.Printf("\nall %d VM pairs ping each other %v after lab up started\n", pairs, time.Since(start).Round(time.Millisecond))
					}
					fmt.Printf("\nlab %q up and in sync in %v; controller API %s\n", c.String("name"), upTook.Round(time.Millisecond), env.APIAddr)
					fmt.Printf("  openvpc show --lab %s\n  openvpc dump-flows --lab %s HOST [--table NAME]\n  openvpc lab down --name %s\n", c.String("name"), c.String("name"), c.String("name"))
					return nil
				},
			},
			{
				Name:  "down",
				Usage: "remove everything a lab made (by PID and recorded names)",
				Flags: labFlags,
				Action: func(c *cli.Context) error {
					return lab.DownDir(context.Background(), labDir(c.String("name"), c.String("dir")))
				},
			},
		},
	}
}

func demoCmd() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "bring up the demo lab, check its behaviour with real packets, print a pass/fail table, tear it down",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Value: "examples/demo.yaml"},
			&cli.BoolFlag{Name: "keep", Usage: "leave the lab up afterwards"},
		}, labFlags...),
		Action: func(c *cli.Context) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := logrus.StandardLogger()
			if !c.IsSet("log-level") {
				log.SetLevel(logrus.WarnLevel)
			}
			start := time.Now()
			name := c.String("name")
			env, err := labrun.Up(ctx, c.String("file"), labrun.Options{Name: name, Dir: labDir(name, c.String("dir")), Log: log, Store: true})
			if err != nil {
				return err
			}
			if !c.Bool("keep") {
				defer env.Down(context.Background())
			}
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := env.WaitReady(wctx); err != nil {
				return err
			}
			fmt.Printf("lab up and controller in sync after %v\n", time.Since(start).Round(time.Millisecond))
			pairs, err := demo.WaitPingMesh(wctx, env)
			if err != nil {
				return err
			}
			fmt.Printf("all %d VM pairs of each VPC ping each other after %v\n\n", pairs, time.Since(start).Round(time.Millisecond))
			failed := demo.Report(ctx, env, func(s string) { fmt.Println(s) })
			fmt.Printf("\n%d passed, %d failed\n", len(demo.Checks())-failed, failed)
			if failed > 0 {
				return fmt.Errorf("%d checks failed", failed)
			}
			return nil
		},
	}
}
