package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// Route tables: get/create/delete work through the generic commands (kind
// route-table); these are the AWS-like verbs on routes, subnet
// associations and a NIC's source/destination check.

// isRouteTableKind reports whether a kind argument names route tables.
func isRouteTableKind(kind string) bool {
	switch strings.ToLower(kind) {
	case "route-table", "route-tables", "route_table", "route_tables", "rtb", "rtbs":
		return true
	}
	return false
}

// oneTableArg checks the arguments are TABLE and returns it.
func oneTableArg(c *cli.Context) (string, error) {
	if err := noFlagArgs(c); err != nil {
		return "", err
	}
	if c.NArg() != 1 {
		return "", fmt.Errorf("%s: want TABLE", c.Command.Name)
	}
	return c.Args().First(), nil
}

// routeCmd is create-route, or with replace replace-route.
func routeCmd(replace bool) *cli.Command {
	name, usage := "create-route", "add a route to a route table: --destination CIDR to --nic N, --peering P or --blackhole"
	if replace {
		name, usage = "replace-route", "replace the route of a route table to --destination CIDR with a new target (--nic N, --peering P or --blackhole)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "TABLE",
		Flags: append([]cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "destination", Aliases: []string{"d"}, Usage: "destination CIDR (e.g. 0.0.0.0/0)"},
			&cli.StringFlag{Name: "nic", Usage: "target: an appliance NIC of the table's VPC (turn its source/destination check off)"},
			&cli.StringFlag{Name: "peering", Usage: "target: a peering of the table's VPC (a blackhole until it is accepted)"},
			&cli.BoolFlag{Name: "blackhole", Usage: "target: drop the destination's packets"},
		}, serverFlags...),
		Action: func(c *cli.Context) error {
			table, err := oneTableArg(c)
			if err != nil {
				return err
			}
			r := model.Route{Destination: c.String("destination"), NIC: c.String("nic"), Peering: c.String("peering"), Blackhole: c.Bool("blackhole")}
			targets := 0
			for _, set := range []bool{r.NIC != "", r.Peering != "", r.Blackhole} {
				if set {
					targets++
				}
			}
			switch {
			case r.Destination == "":
				return fmt.Errorf("%s: --destination is required", name)
			case targets != 1:
				return fmt.Errorf("%s: give one target: --nic, --peering or --blackhole", name)
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
		Flags: append([]cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "destination", Aliases: []string{"d"}, Usage: "destination CIDR of the route"},
		}, serverFlags...),
		Action: func(c *cli.Context) error {
			table, err := oneTableArg(c)
			if err != nil {
				return err
			}
			if c.String("destination") == "" {
				return errors.New("delete-route: --destination is required")
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			t, err := cl.DeleteRoute(c.Context, table, c.String("destination"))
			if err != nil {
				return err
			}
			return printRouteTables(c.String("output"), []client.RouteTable{*t}, true)
		},
	}
}

func associateRouteTableCmd() *cli.Command {
	return &cli.Command{
		Name:      "associate-route-table",
		Usage:     "make a subnet use a route table of its VPC (\"\" or --main: the VPC's main table)",
		ArgsUsage: "SUBNET [TABLE]",
		Flags: append([]cli.Flag{
			outputFlag,
			&cli.BoolFlag{Name: "main", Usage: "back to the VPC's main table"},
		}, serverFlags...),
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
			obj, err := toMap(s)
			if err != nil {
				return err
			}
			return printObjects(c.String("output"), []map[string]any{obj}, true)
		},
	}
}

// nicSourceDestCheckCmd is "nic set-source-dest-check NIC on|off".
func nicSourceDestCheckCmd() *cli.Command {
	return &cli.Command{
		Name:      "set-source-dest-check",
		Usage:     "turn a NIC's source/destination check on (the default) or off (an appliance that routes target)",
		ArgsUsage: "NIC on|off",
		Flags:     append([]cli.Flag{outputFlag}, serverFlags...),
		BashComplete: func(c *cli.Context) {
			if c.NArg() == 1 {
				fmt.Println("on")
				fmt.Println("off")
			}
		},
		Action: func(c *cli.Context) error {
			if err := noFlagArgs(c); err != nil {
				return err
			}
			if c.NArg() != 2 {
				return errors.New("set-source-dest-check: want NIC on|off")
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
			obj, err := toMap(n)
			if err != nil {
				return err
			}
			return printObjects(c.String("output"), []map[string]any{obj}, true)
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

// decodeRouteTables turns objects as the generic commands hold them into
// route tables.
func decodeRouteTables(objs []map[string]any) ([]client.RouteTable, error) {
	b, err := json.Marshal(objs)
	if err != nil {
		return nil, err
	}
	var ts []client.RouteTable
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("decode route tables: %w", err)
	}
	return ts, nil
}

// printRouteTables prints route tables: as JSON or YAML like other
// objects, or as a table with one line per route, the implicit local
// route first (as AWS shows it).
func printRouteTables(format string, ts []client.RouteTable, single bool) error {
	switch format {
	case "json", "yaml":
		var v any = ts
		if single && len(ts) == 1 {
			v = ts[0]
		}
		if format == "yaml" {
			return yaml.NewEncoder(os.Stdout).Encode(v)
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	case "table":
	default:
		return fmt.Errorf("--output %q: want table, json or yaml", format)
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
		head := []string{t.Name, t.VPC, strconv.FormatBool(t.Main), orDash(strings.Join(t.Subnets, ","), "-")}
		rows := routeRows(t)
		if len(rows) == 0 {
			rows = [][]string{{"-", "", ""}}
		}
		for i, row := range rows {
			if i == 1 {
				head = make([]string, len(head)) // the table once, at its first route
			}
			fmt.Fprintln(w, strings.Join(append(append([]string(nil), head...), row...), "\t"))
		}
	}
	return w.Flush()
}

// routeRows are a table's routes as cells: destination, target, state
// (with why a route to a NIC is a blackhole). Without computed states (an
// older server), the stored routes, state unknown.
func routeRows(t client.RouteTable) [][]string {
	var out [][]string
	if len(t.RouteStates) == 0 {
		for _, r := range t.Routes {
			out = append(out, []string{r.Destination, routeTarget(r.NIC, r.Peering, r.Blackhole, false), "?"})
		}
		return out
	}
	for _, s := range t.RouteStates {
		state := string(s.State)
		if s.Why != "" {
			state += " (" + s.Why + ")"
		}
		out = append(out, []string{s.Destination, routeTarget(s.NIC, s.Peering, s.Blackhole, s.Local), state})
	}
	return out
}

func routeTarget(nic, peering string, blackhole, local bool) string {
	switch {
	case local:
		return "local"
	case blackhole:
		return "blackhole"
	case peering != "":
		return "peering " + peering
	}
	return "nic " + nic
}
