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

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// Security groups: get/create/delete work through the generic commands
// (kind security-group); these are the AWS-like verbs on rules, grants and
// NIC membership.

// noFlagArgs refuses a flag written after the positional arguments, which
// urfave/cli would take as one more argument.
func noFlagArgs(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			return fmt.Errorf("%s: flags go before the arguments (got %q after them)", c.Command.Name, a)
		}
	}
	return nil
}

// completeKinds offers the kinds as the first argument.
func completeKinds(c *cli.Context) {
	if c.NArg() == 0 {
		for _, k := range client.Kinds {
			fmt.Println(k)
		}
		fmt.Println(client.SettingsKind)
	}
}

var ruleFlags = []cli.Flag{
	&cli.StringFlag{Name: "protocol", Aliases: []string{"p"}, Usage: "tcp, udp, icmp, all or a protocol number 0-255"},
	&cli.StringFlag{Name: "ports", Usage: "tcp/udp destination port or range FROM-TO (default all)"},
	&cli.IntFlag{Name: "icmp-type", Usage: "icmp type (default any)"},
	&cli.IntFlag{Name: "icmp-code", Usage: "icmp code, with --icmp-type (default any)"},
	&cli.StringFlag{Name: "cidr", Usage: "peer network: source of ingress, destination of egress"},
	&cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "peer security group (of your account, or granted to it)"},
	&cli.StringFlag{Name: "description", Usage: "what the rule is for"},
}

// ruleFromFlags builds the rule the flags describe.
func ruleFromFlags(c *cli.Context) (model.Rule, error) {
	r := model.Rule{Protocol: c.String("protocol"), Ports: c.String("ports"), CIDR: c.String("cidr"),
		Group: c.String("group"), Description: c.String("description")}
	if c.IsSet("icmp-type") {
		v := c.Int("icmp-type")
		r.ICMPType = &v
	}
	if c.IsSet("icmp-code") {
		v := c.Int("icmp-code")
		r.ICMPCode = &v
	}
	switch {
	case r.Protocol == "":
		return r, errors.New("--protocol is required")
	case (r.CIDR == "") == (r.Group == ""):
		return r, errors.New("give one peer: --cidr or --group")
	}
	return r, nil
}

func authorizeCmd(d client.Direction) *cli.Command {
	return &cli.Command{
		Name:      "authorize-" + string(d),
		Usage:     "allow " + string(d) + " traffic: add a rule to a security group",
		ArgsUsage: "GROUP",
		Flags:     verbFlags(ruleFlags...),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "GROUP", 1, 1); err != nil {
				return err
			}
			r, err := ruleFromFlags(c)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Command.Name, err)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			g, err := cl.Authorize(c.Context, c.Args().First(), d, r)
			if err != nil {
				return err
			}
			return printGroups(c.String("output"), []model.SecurityGroup{*g}, true)
		},
	}
}

func revokeCmd(d client.Direction) *cli.Command {
	return &cli.Command{
		Name:      "revoke-" + string(d),
		Usage:     "remove an " + string(d) + " rule from a security group, by --id or by the flags it was added with",
		ArgsUsage: "GROUP",
		Flags:     verbFlags(append([]cli.Flag{&cli.UintFlag{Name: "id", Usage: "the rule's id (see get security-group GROUP)"}}, ruleFlags...)...),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "GROUP", 1, 1); err != nil {
				return err
			}
			var r model.Rule
			var err error
			if c.IsSet("id") {
				id := c.Uint("id")
				if id == 0 || uint64(id) > 1<<32-1 {
					return fmt.Errorf("%s: --id %d is not a rule id", c.Command.Name, id)
				}
				r.ID = uint32(id)
			} else if r, err = ruleFromFlags(c); err != nil {
				return fmt.Errorf("%s: %w (or give --id)", c.Command.Name, err)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			g, err := cl.Revoke(c.Context, c.Args().First(), d, r)
			if err != nil {
				return err
			}
			return printGroups(c.String("output"), []model.SecurityGroup{*g}, true)
		},
	}
}

func grantCmd(revoke bool) *cli.Command {
	name, usage := "grant", "let another account name a security group as a peer in its rules"
	if revoke {
		name, usage = "revoke-grant", "revoke a grant (the account's rules naming the group stay, inactive)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "GROUP ACCOUNT",
		Flags:     verbFlags(),
		Action: verbAction("GROUP ACCOUNT", 2, 2, nil, printGroups,
			func(c *cli.Context, cl *client.Client) (*model.SecurityGroup, error) {
				if revoke {
					return cl.RevokeGrant(c.Context, c.Args().Get(0), c.Args().Get(1))
				}
				return cl.Grant(c.Context, c.Args().Get(0), c.Args().Get(1))
			}),
	}
}

// nicSetGroupsCmd is "nic set-groups NIC [GROUP...]".
func nicSetGroupsCmd() *cli.Command {
	return &cli.Command{
		Name:      "set-groups",
		Usage:     "replace the security groups of a (running) NIC; none: its account's default group",
		ArgsUsage: "NIC [GROUP...]",
		Flags:     verbFlags(),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "NIC [GROUP...]", 1, -1); err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			n, err := cl.SetNICGroups(c.Context, c.Args().First(), c.Args().Tail())
			if err != nil {
				return err
			}
			return printObject(c, "nic", n)
		},
	}
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// printGroups prints security groups: as JSON or YAML like other objects,
// or as a table with one line per rule.
func printGroups(format string, gs []model.SecurityGroup, single bool) error {
	if done, err := printEncoded(format, oneOrAll(gs, single)); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if single && len(gs) == 1 {
		g := gs[0]
		fmt.Fprintf(w, "name:\t%s\nvpc:\t%s\naccount:\t%s\ndefault:\t%v\ndescription:\t%s\ngrants:\t%s\n\n",
			g.Name, g.VPC, orDash(g.Account, "(the vpc's)"), g.Default, g.Description, orDash(strings.Join(g.Grants, ","), "-"))
		fmt.Fprintln(w, "ID\tDIRECTION\tPROTOCOL\tPORTS/ICMP\tPEER\tDESCRIPTION")
		for _, row := range ruleRows(g) {
			fmt.Fprintln(w, strings.Join(row, "\t"))
		}
		return w.Flush()
	}
	fmt.Fprintln(w, "GROUP\tVPC\tACCOUNT\tDEFAULT\tGRANTS\tID\tDIRECTION\tPROTOCOL\tPORTS/ICMP\tPEER\tDESCRIPTION")
	for _, g := range gs {
		printHeaded(w, []string{g.Name, g.VPC, g.Account, strconv.FormatBool(g.Default), strings.Join(g.Grants, ",")}, ruleRows(g), 6)
	}
	return w.Flush()
}

func orDash(s, dash string) string {
	if s == "" {
		return dash
	}
	return s
}

// ruleRows are a group's rules as table cells: id, direction, protocol,
// ports or icmp type/code, peer, description.
func ruleRows(g model.SecurityGroup) [][]string {
	var out [][]string
	for _, d := range []struct {
		name  string
		rules []model.Rule
	}{{"ingress", g.Ingress}, {"egress", g.Egress}} {
		for _, r := range d.rules {
			peer := r.CIDR
			if r.Group != "" {
				peer = "group " + r.Group
			}
			out = append(out, []string{strconv.FormatUint(uint64(r.ID), 10), d.name, strings.ToLower(r.Protocol), portsCell(r), peer, r.Description})
		}
	}
	return out
}

func portsCell(r model.Rule) string {
	switch strings.ToLower(r.Protocol) {
	case "tcp", "udp", "6", "17":
		return orDash(r.Ports, "all")
	case "icmp", "1":
		if r.ICMPType == nil {
			return "any"
		}
		s := "type " + strconv.Itoa(*r.ICMPType)
		if r.ICMPCode != nil {
			s += " code " + strconv.Itoa(*r.ICMPCode)
		}
		return s
	}
	return ""
}
