package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// Route tables: get/create/delete work through the generic commands (kind
// route-table); these are the AWS-like verbs on routes, subnet
// associations and a NIC's source/destination check.

// routeCmd is create-route, or with replace replace-route.
func routeCmd(replace bool) *cli.Command {
	name, usage := "create-route", "add a route to a route table: --destination CIDR to --nic N, --peering P, --gateway IGW or --blackhole"
	if replace {
		name, usage = "replace-route", "replace the route of a route table to --destination CIDR with a new target (--nic N, --peering P, --gateway IGW or --blackhole)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "TABLE",
		Flags: verbFlags(
			&cli.StringFlag{Name: "destination", Aliases: []string{"d"}, Usage: "destination CIDR (e.g. 0.0.0.0/0)"},
			&cli.StringFlag{Name: "nic", Usage: "target: an appliance NIC of the table's VPC (turn its source/destination check off)"},
			&cli.StringFlag{Name: "peering", Usage: "target: a peering of the table's VPC (a blackhole until it is accepted)"},
			&cli.StringFlag{Name: "gateway", Usage: "target: the internet gateway attached to the table's VPC (0.0.0.0/0 makes its subnets public)"},
			&cli.BoolFlag{Name: "blackhole", Usage: "target: drop the destination's packets"},
		),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "TABLE", 1, 1); err != nil {
				return err
			}
			table := c.Args().First()
			r := model.Route{Destination: c.String("destination"), NIC: c.String("nic"), Peering: c.String("peering"),
				Gateway: c.String("gateway"), Blackhole: c.Bool("blackhole")}
			targets := 0
			for _, set := range []bool{r.NIC != "", r.Peering != "", r.Gateway != "", r.Blackhole} {
				if set {
					targets++
				}
			}
			switch {
			case r.Destination == "":
				return fmt.Errorf("%s: --destination is required", name)
			case targets != 1:
				return fmt.Errorf("%s: give one target: --nic, --peering, --gateway or --blackhole", name)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			var t *client.RouteTable
			if replace {
				t, err = cl.ReplaceRoute(c.Context, table, r)
			} else {
				t, err = cl.CreateRoute(c.Context, table, r)
			}
			if err != nil {
				return err
			}
			return printRouteTables(c.String("output"), []client.RouteTable{*t}, true)
		},
	}
}

func deleteRouteCmd() *cli.Command {
	return &cli.Command{
		Name:      "delete-route",
		Usage:     "delete the route of a route table to --destination CIDR",
		ArgsUsage: "TABLE",
		Flags: verbFlags(
			&cli.StringFlag{Name: "destination", Aliases: []string{"d"}, Usage: "destination CIDR of the route"},
		),
		Action: verbAction("TABLE", 1, 1, []string{"destination"}, printRouteTables,
			func(c *cli.Context, cl *client.Client) (*client.RouteTable, error) {
				return cl.DeleteRoute(c.Context, c.Args().First(), c.String("destination"))
			}),
	}
}

func associateRouteTableCmd() *cli.Command {
	return &cli.Command{
		Name:      "associate-route-table",
		Usage:     "make a subnet use a route table of its VPC (\"\" or --main: the VPC's main table)",
		ArgsUsage: "SUBNET [TABLE]",
		Flags: verbFlags(
			&cli.BoolFlag{Name: "main", Usage: "back to the VPC's main table"},
		),
		Action: func(c *cli.Context) error {
			if err := noFlagArgs(c); err != nil {
				return err
			}
			var table string
			switch {
			case c.NArg() == 2 && !c.Bool("main"):
				table = c.Args().Get(1)
			case c.NArg() == 1 && c.Bool("main"):
			default:
				return errors.New("associate-route-table: want SUBNET TABLE, or --main SUBNET")
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			s, err := cl.AssociateRouteTable(c.Context, c.Args().First(), table)
			if err != nil {
				return err
			}
			return printObject(c, "subnet", s)
		},
	}
}

// nicSourceDestCheckCmd is "nic set-source-dest-check NIC on|off".
func nicSourceDestCheckCmd() *cli.Command {
	return &cli.Command{
		Name:      "set-source-dest-check",
		Usage:     "turn a NIC's source/destination check on (the default) or off (an appliance that routes target)",
		ArgsUsage: "NIC on|off",
		Flags:     verbFlags(),
		BashComplete: func(c *cli.Context) {
			if c.NArg() == 1 {
				fmt.Println("on")
				fmt.Println("off")
			}
		},
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "NIC on|off", 2, 2); err != nil {
				return err
			}
			on, err := parseOnOff(c.Args().Get(1))
			if err != nil {
				return fmt.Errorf("set-source-dest-check: %w", err)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			n, err := cl.SetSourceDestCheck(c.Context, c.Args().First(), on)
			if err != nil {
				return err
			}
			return printObject(c, "nic", n)
		},
	}
}

func parseOnOff(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on or off", s)
}

// printRouteTables prints route tables: as JSON or YAML like other
// objects, or as a table with one line per route, the implicit local
// route first (as AWS shows it).
func printRouteTables(format string, ts []client.RouteTable, single bool) error {
	if done, err := printEncoded(format, oneOrAll(ts, single)); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if single && len(ts) == 1 {
		t := ts[0]
		fmt.Fprintf(w, "name:\t%s\nvpc:\t%s\nmain:\t%v\nsubnets:\t%s\n\n", t.Name, t.VPC, t.Main, orDash(strings.Join(t.Subnets, ","), "-"))
		fmt.Fprintln(w, "DESTINATION\tTARGET\tSTATE")
		for _, row := range routeRows(t) {
			fmt.Fprintln(w, strings.Join(row, "\t"))
		}
		return w.Flush()
	}
	fmt.Fprintln(w, "TABLE\tVPC\tMAIN\tSUBNETS\tDESTINATION\tTARGET\tSTATE")
	for _, t := range ts {
		printHeaded(w, []string{t.Name, t.VPC, strconv.FormatBool(t.Main), orDash(strings.Join(t.Subnets, ","), "-")}, routeRows(t), 3)
	}
	return w.Flush()
}

// routeRows are a table's routes as cells: destination, target, state
// (with why a route to a NIC, peering or gateway is a blackhole). Without computed states (an
// older server), the stored routes, state unknown.
func routeRows(t client.RouteTable) [][]string {
	var out [][]string
	if len(t.RouteStates) == 0 {
		for _, r := range t.Routes {
			out = append(out, []string{r.Destination, routeTarget(r.NIC, r.Peering, r.Gateway, r.Blackhole, false), "?"})
		}
		return out
	}
	for _, s := range t.RouteStates {
		state := string(s.State)
		if s.Why != "" {
			state += " (" + s.Why + ")"
		}
		out = append(out, []string{s.Destination, routeTarget(s.NIC, s.Peering, s.Gateway, s.Blackhole, s.Local), state})
	}
	return out
}

func routeTarget(nic, peering, gateway string, blackhole, local bool) string {
	switch {
	case local:
		return "local"
	case blackhole:
		return "blackhole"
	case peering != "":
		return "peering " + peering
	case gateway != "":
		return "gateway " + gateway
	}
	return "nic " + nic
}
