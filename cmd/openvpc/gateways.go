package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// Internet gateways, public IP pools and public IPs: get/create/delete work
// through the generic commands (kinds internet-gateway, public-ip-pool,
// public-ip); these are the AWS-like verbs: attach and detach a gateway;
// allocate, associate, disassociate and release a public IP.

func attachGatewayCmd() *cli.Command {
	return &cli.Command{
		Name:      "attach-internet-gateway",
		Usage:     "attach an internet gateway to a VPC of its account (routes of the VPC may then target it)",
		ArgsUsage: "GATEWAY",
		Flags: verbFlags(
			&cli.StringFlag{Name: "vpc", Usage: "the VPC to attach it to (required)"},
		),
		Action: verbAction("--vpc VPC GATEWAY", 1, 1, []string{"vpc"}, printGateways,
			func(c *cli.Context, cl *client.Client) (*client.InternetGateway, error) {
				return cl.AttachInternetGateway(c.Context, c.Args().First(), c.String("vpc"))
			}),
	}
}

func detachGatewayCmd() *cli.Command {
	return &cli.Command{
		Name:      "detach-internet-gateway",
		Usage:     "detach an internet gateway from its VPC (routes to it turn blackhole)",
		ArgsUsage: "GATEWAY",
		Flags:     verbFlags(),
		Action: verbAction("GATEWAY", 1, 1, nil, printGateways,
			func(c *cli.Context, cl *client.Client) (*client.InternetGateway, error) {
				return cl.DetachInternetGateway(c.Context, c.Args().First())
			}),
	}
}

func allocatePublicIPCmd() *cli.Command {
	return &cli.Command{
		Name:      "allocate-public-ip",
		Usage:     "allocate a public IP from a pool (the lowest free address; without NAME it is named eip-<address with dashes>)",
		ArgsUsage: "[NAME]",
		Flags: verbFlags(
			&cli.StringFlag{Name: "pool", Usage: "the public IP pool (required; `openvpc get public-ip-pools` lists them)"},
			&cli.StringFlag{Name: "address", Usage: "the address to allocate (admin only)"},
			&cli.StringFlag{Name: "account", Usage: "the owning account (admin only; default the token's)"},
		),
		Action: verbAction("--pool POOL [NAME]", 0, 1, []string{"pool"}, printPublicIPs,
			func(c *cli.Context, cl *client.Client) (*client.PublicIP, error) {
				return cl.AllocatePublicIP(c.Context, model.PublicIP{Name: c.Args().First(), Pool: c.String("pool"),
					Address: c.String("address"), Account: c.String("account")})
			}),
	}
}

func associatePublicIPCmd() *cli.Command {
	return &cli.Command{
		Name:      "associate-public-ip",
		Usage:     "map a public IP to an address of a NIC (1:1 NAT on a gateway host)",
		ArgsUsage: "PUBLIC_IP",
		Flags: verbFlags(
			&cli.StringFlag{Name: "nic", Usage: "the NIC (required)"},
			&cli.StringFlag{Name: "private-ip", Usage: "one of the NIC's addresses (default its primary IP)"},
			&cli.BoolFlag{Name: "allow-reassociation", Usage: "move the public IP if it is associated elsewhere"},
		),
		Action: verbAction("--nic NIC PUBLIC_IP", 1, 1, []string{"nic"}, printPublicIPs,
			func(c *cli.Context, cl *client.Client) (*client.PublicIP, error) {
				return cl.AssociatePublicIP(c.Context, c.Args().First(), client.PublicIPAssociation{NIC: c.String("nic"),
					PrivateIP: c.String("private-ip"), AllowReassociation: c.Bool("allow-reassociation")})
			}),
	}
}

func disassociatePublicIPCmd() *cli.Command {
	return &cli.Command{
		Name:      "disassociate-public-ip",
		Usage:     "unmap a public IP from its NIC (it stays allocated)",
		ArgsUsage: "PUBLIC_IP",
		Flags:     verbFlags(),
		Action: verbAction("PUBLIC_IP", 1, 1, nil, printPublicIPs,
			func(c *cli.Context, cl *client.Client) (*client.PublicIP, error) {
				return cl.DisassociatePublicIP(c.Context, c.Args().First())
			}),
	}
}

func releasePublicIPCmd() *cli.Command {
	return &cli.Command{
		Name:      "release-public-ip",
		Usage:     "release a public IP back to its pool (disassociate it first)",
		ArgsUsage: "PUBLIC_IP",
		Flags:     serverFlags,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "PUBLIC_IP", 1, 1); err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			return cl.ReleasePublicIP(c.Context, c.Args().First())
		},
	}
}

// printGateways prints internet gateways: as JSON or YAML, or as a table
// with their VPC and state.
func printGateways(format string, gs []client.InternetGateway, single bool) error {
	if done, err := printEncoded(format, oneOrAll(gs, single)); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tACCOUNT\tVPC\tSTATE")
	for _, g := range gs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", g.Name, orDash(g.Account, "-"), orDash(g.VPC, "-"), orDash(g.State, "?"))
	}
	return w.Flush()
}

// printPools prints public IP pools, with their usage.
func printPools(format string, ps []client.PublicIPPool, single bool) error {
	if done, err := printEncoded(format, oneOrAll(ps, single)); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCIDR\tALLOCATED\tFREE")
	for _, p := range ps {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", p.Name, p.CIDR, p.Allocated, p.Free)
	}
	return w.Flush()
}

// printPublicIPs prints public IPs: their address, association, the
// gateway host that serves them and whether traffic flows (and why not).
func printPublicIPs(format string, xs []client.PublicIP, single bool) error {
	if done, err := printEncoded(format, oneOrAll(xs, single)); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tADDRESS\tPOOL\tACCOUNT\tNIC\tPRIVATE_IP\tGATEWAY_HOST\tSTATE")
	for _, x := range xs {
		fmt.Fprintln(w, strings.Join([]string{x.Name, orDash(x.Address, "-"), x.Pool, orDash(x.Account, "-"), orDash(x.NIC, "-"),
			orDash(x.PrivateIP, "-"), orDash(x.GatewayHost, "-"), publicIPState(x)}, "\t"))
	}
	return w.Flush()
}

func publicIPState(x client.PublicIP) string {
	switch {
	case x.Reachable:
		return "reachable"
	case x.Why != "":
		return "unreachable (" + x.Why + ")"
	}
	return "unreachable"
}
