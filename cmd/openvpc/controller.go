package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/internal/serve"
)

func controllerCmd() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "run the controller: store, API, and programming every host's br-int",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "/var/lib/openvpc", Usage: "embedded etcd data (the default policy store)"},
			&cli.StringSliceFlag{Name: "etcd-endpoints", Usage: "use this etcd cluster instead of the embedded one (comma separated)"},
			&cli.StringFlag{Name: "etcd-ca", Usage: "CA file for the etcd cluster"},
			&cli.StringFlag{Name: "etcd-cert", Usage: "client certificate for the etcd cluster"},
			&cli.StringFlag{Name: "etcd-key", Usage: "client key for the etcd cluster"},
			&cli.StringFlag{Name: "policy", Usage: "read policy from this YAML file instead of a store (re-read on change and on SIGHUP; no tenant API)"},
			&cli.StringFlag{Name: "openflow", Value: "tcp:0.0.0.0:6653", Usage: "where hosts' bridges connect: unix:/path or tcp:addr:port"},
			&cli.StringFlag{Name: "openflow-target", Usage: "controller target written into each bridge (default: --openflow; required for a wildcard TCP address)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8780", Usage: "API address: unix:/path or addr:port"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve the API over TLS with this certificate"},
			&cli.StringFlag{Name: "tls-key", Usage: "key of --tls-cert"},
			&cli.StringFlag{Name: "admin-token-file", Usage: "write the admin token here when it is created (first start)"},
		},
		Action: func(c *cli.Context) error {
			target := c.String("openflow-target")
			if target == "" {
				target = c.String("openflow")
			}
			if network, addr := controller.SplitAddr(target); network == "tcp" && strings.HasPrefix(addr, "0.0.0.0:") {
				return errors.New("--openflow-target is required when --openflow listens on a wildcard address")
			}
			cfg := serve.Config{OpenFlowTarget: target, AdminTokenFile: c.String("admin-token-file"), Log: logrus.StandardLogger()}
			switch {
			case c.String("policy") != "":
				cfg.PolicyFile = c.String("policy")
			case len(c.StringSlice("etcd-endpoints")) > 0:
				cfg.EtcdEndpoints = c.StringSlice("etcd-endpoints")
				t, err := etcdTLS(c)
				if err != nil {
					return err
				}
				cfg.EtcdTLS = t
			default:
				cfg.DataDir = c.String("data-dir")
				if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
					return fmt.Errorf("--data-dir: %w", err)
				}
			}
			if cert := c.String("tls-cert"); cert != "" {
				kp, err := tls.LoadX509KeyPair(cert, c.String("tls-key"))
				if err != nil {
					return fmt.Errorf("--tls-cert/--tls-key: %w", err)
				}
				cfg.TLS = &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
			}
			for _, a := range []string{c.String("openflow"), c.String("listen")} {
				if network, path := controller.SplitAddr(a); network == "unix" {
					os.Remove(path)
				}
			}
			ofLn, err := controller.Listen(c.String("openflow"))
			if err != nil {
				return err
			}
			apiLn, err := controller.Listen(c.String("listen"))
			if err != nil {
				return err
			}
			cfg.OpenFlow, cfg.API = ofLn, apiLn
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logrus.WithFields(logrus.Fields{"openflow": c.String("openflow"), "listen": c.String("listen")}).Info("controller starting")
			srv, err := serve.Start(ctx, cfg)
			if err != nil {
				return err
			}
			if srv.File != nil {
				hup := make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				go func() {
					for range hup {
						logrus.Info("SIGHUP: re-reading policy")
						srv.File.Reload()
					}
				}()
			}
			<-ctx.Done()
			srv.Stop()
			return nil
		},
	}
}

func etcdTLS(c *cli.Context) (*tls.Config, error) {
	if c.String("etcd-ca") == "" && c.String("etcd-cert") == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := c.String("etcd-ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-ca: no certificate in %s", ca)
		}
		t.RootCAs = pool
	}
	if cert := c.String("etcd-cert"); cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, c.String("etcd-key"))
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		t.Certificates = []tls.Certificate{kp}
	}
	return t, nil
}
