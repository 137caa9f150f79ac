package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/controller"
)

func controllerCmd() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "run the controller: compile policy and program every host's br-int",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Required: true, Usage: "policy YAML file (re-read on change and on SIGHUP)"},
			&cli.StringFlag{Name: "openflow", Value: "tcp:0.0.0.0:6653", Usage: "where hosts' bridges connect: unix:/path or tcp:addr:port"},
			&cli.StringFlag{Name: "openflow-target", Usage: "controller target written into each bridge (default: --openflow; required for a wildcard TCP address)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8780", Usage: "HTTP address for show/dump-flows: unix:/path or addr:port"},
		},
		Action: func(c *cli.Context) error {
			target := c.String("openflow-target")
			if target == "" {
				target = c.String("openflow")
			}
			if network, addr := controller.SplitAddr(target); network == "tcp" && len(addr) > 8 && addr[:8] == "0.0.0.0:" {
				return errors.New("--openflow-target is required when --openflow listens on a wildcard address")
			}
			if network, path := controller.SplitAddr(c.String("openflow")); network == "unix" {
				os.Remove(path)
			}
			if network, path := controller.SplitAddr(c.String("listen")); network == "unix" {
				os.Remove(path)
			}
			ofLn, err := controller.Listen(c.String("openflow"))
			if err != nil {
				return err
			}
			apiLn, err := controller.Listen(c.String("listen"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			src := controller.NewFileSource(c.String("policy"))
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			go func() {
				for range hup {
					logrus.Info("SIGHUP: re-reading policy")
					src.Reload()
				}
			}()
			ctl := controller.New(controller.Config{Source: src, OpenFlow: ofLn, OpenFlowTarget: target, Log: logrus.StandardLogger()})
			srv := &http.Server{Handler: ctl.Handler(), ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(apiLn)
			defer srv.Close()
			logrus.WithFields(logrus.Fields{"openflow": c.String("openflow"), "listen": c.String("listen")}).Info("controller starting")
			return ctl.Run(ctx)
		},
	}
}
