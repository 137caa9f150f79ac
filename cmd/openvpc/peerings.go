package main

import (
	"github.com/urfave/cli/v2"
)

// Peerings: get/create/delete work through the generic commands (kind
// peering; create takes --vpc and --peer-vpc); accept-peering is the
// peer VPC's account's verb.

func acceptPeeringCmd() *cli.Command {
	return &cli.Command{
		Name:      "accept-peering",
		Usage:     "accept a peering requested with your VPC (as the peer VPC's account)",
		ArgsUsage: "PEERING",
		Flags:     verbFlags(),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "PEERING", 1, 1); err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			p, err := cl.AcceptPeering(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			return printObject(c, "peering", p)
		},
	}
}
