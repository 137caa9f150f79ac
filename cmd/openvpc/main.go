// Command openvpc is OpenVPC's single binary: the controller, host setup,
// debugging commands and the local lab.
package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/api/client"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "openvpc:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "openvpc",
		Usage: "VPC networking, security groups, route tables and internet gateways on Open vSwitch",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn, error", EnvVars: []string{"OPENVPC_LOG_LEVEL"}},
		},
		Before: func(c *cli.Context) error {
			lvl, err := logrus.ParseLevel(c.String("log-level"))
			if err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			logrus.SetLevel(lvl)
			return nil
		},
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			controllerCmd(),
			hostCmd(),
			applyCmd(),
			exportCmd(),
			getCmd(),
			createCmd(),
			updateCmd(),
			deleteCmd(),
			nicCmd(),
			authorizeCmd(client.Ingress),
			authorizeCmd(client.Egress),
			revokeCmd(client.Ingress),
			revokeCmd(client.Egress),
			grantCmd(false),
			grantCmd(true),
			routeCmd(false),
			routeCmd(true),
			deleteRouteCmd(),
			associateRouteTableCmd(),
			acceptPeeringCmd(),
			attachGatewayCmd(),
			detachGatewayCmd(),
			allocatePublicIPCmd(),
			associatePublicIPCmd(),
			disassociatePublicIPCmd(),
			releasePublicIPCmd(),
			setEncapsCmd(),
			tokenCmd(),
			validateCmd(),
			compileCmd(),
			showCmd(),
			dumpFlowsCmd(),
			traceCmd(),
			labCmd(),
			demoCmd(),
			completionCmd(),
		},
	}
}
