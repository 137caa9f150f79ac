// Command openvpc is OpenVPC's single binary: the controller, host setup,
// debugging commands and the local lab.
package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "openvpc",
		Usage: "VPC networking and security groups on Open vSwitch",
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
			tokenCmd(),
			validateCmd(),
			compileCmd(),
			showCmd(),
			dumpFlowsCmd(),
			labCmd(),
			demoCmd(),
			completionCmd(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "openvpc:", err)
		os.Exit(1)
	}
}
