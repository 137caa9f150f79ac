package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// Connection settings: flags, then environment, then ~/.config/openvpc/config.yaml.
var serverFlags = []cli.Flag{
	&cli.StringFlag{Name: "server", EnvVars: []string{"OPENVPC_SERVER"}, Usage: "API: https://host:port, http://host:port, host:port or unix:/path (default from the config file, else 127.0.0.1:8780)"},
	&cli.StringFlag{Name: "token", EnvVars: []string{"OPENVPC_TOKEN"}, Usage: "bearer token"},
	&cli.StringFlag{Name: "ca", EnvVars: []string{"OPENVPC_CA"}, Usage: "PEM file of the CA that signed the API's TLS certificate"},
	&cli.StringFlag{Name: "lab", Usage: "talk to the controller of this local lab (its socket and admin token)"},
}

type cliConfig struct {
	Server string `yaml:"server"`
	Token  string `yaml:"token"`
	CA     string `yaml:"ca"`
}

func loadCLIConfig() (cliConfig, error) {
	var cfg cliConfig
	home, err := os.UserHomeDir()
	if err != nil {
		return cfg, nil
	}
	b, err := os.ReadFile(filepath.Join(home, ".config", "openvpc", "config.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("~/.config/openvpc/config.yaml: %w", err)
	}
	return cfg, nil
}

// verbAction is the action of a verb: it checks the arguments (usage,
// their number) and the required flags, calls the API with the command's
// client and prints the object it answers with.
func verbAction[T any](usage string, min, max int, required []string, print func(format string, xs []T, single bool) error,
	call func(c *cli.Context, cl *client.Client) (*T, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := checkArgs(c, usage, min, max); err != nil {
			return err
		}
		for _, f := range required {
			if c.String(f) == "" {
				return fmt.Errorf("%s: --%s is required", c.Command.Name, f)
			}
		}
		cl, err := apiClient(c)
		if err != nil {
			return err
		}
		x, err := call(c, cl)
		if err != nil {
			return err
		}
		return print(c.String("output"), []T{*x}, true)
	}
}

func apiClient(c *cli.Context) (*client.Client, error) {
	cfg, err := loadCLIConfig()
	if err != nil {
		return nil, err
	}
	server, token, ca := c.String("server"), c.String("token"), c.String("ca")
	if l := c.String("lab"); l != "" {
		dir := labDir(l, "")
		server = "unix:" + dir + "/api.sock"
		if token == "" {
			if b, err := os.ReadFile(dir + "/admin.token"); err == nil {
				token = strings.TrimSpace(string(b))
			}
		}
	}
	if server == "" {
		server = cfg.Server
	}
	if token == "" {
		token = cfg.Token
	}
	if ca == "" {
		ca = cfg.CA
	}
	if server == "" {
		server = "127.0.0.1:8780"
	}
	if !strings.HasPrefix(server, "unix:") && !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return client.New(server, token, ca)
}

var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table, json or yaml"}

// verbFlags are --output, then extra, then the server flags.
func verbFlags(extra ...cli.Flag) []cli.Flag {
	return append(append([]cli.Flag{outputFlag}, extra...), serverFlags...)
}

// checkArgs refuses flags after the arguments and a number of arguments
// below min or above max (max < 0: no limit): "COMMAND: want USAGE".
func checkArgs(c *cli.Context, want string, min, max int) error {
	if err := noFlagArgs(c); err != nil {
		return err
	}
	if c.NArg() < min || (max >= 0 && c.NArg() > max) {
		return fmt.Errorf("%s: want %s", c.Command.Name, want)
	}
	return nil
}

// printObject prints one object of kind, as the API answered it, in the
// format of --output.
func printObject(c *cli.Context, kind string, v any) error {
	obj, err := toMap(v)
	if err != nil {
		return err
	}
	return printKind(c.String("output"), kind, []map[string]any{obj}, true)
}

// printEncoded prints v as JSON or YAML (done), or for table nothing (not
// done); any other format is an error.
func printEncoded(format string, v any) (done bool, err error) {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return true, err
		}
		fmt.Println(string(b))
		return true, nil
	case "yaml":
		return true, yaml.NewEncoder(os.Stdout).Encode(v)
	case "table":
		return false, nil
	}
	return true, fmt.Errorf("--output %q: want table, json or yaml", format)
}

// oneOrAll is items[0] for a single item that was asked for alone, else
// items.
func oneOrAll[T any](items []T, single bool) any {
	if single && len(items) == 1 {
		return items[0]
	}
	return items
}

// printHeaded prints rows of cols cells (none: one "-" row) as lines of a
// tabwriter, head (the object they belong to) in front of the first and
// blanks in front of the others.
func printHeaded(w io.Writer, head []string, rows [][]string, cols int) {
	if len(rows) == 0 {
		rows = [][]string{append([]string{"-"}, make([]string, cols-1)...)}
	}
	for i, row := range rows {
		if i == 1 {
			head = make([]string, len(head)) // the object once, at its first row
		}
		fmt.Fprintln(w, strings.Join(append(append([]string(nil), head...), row...), "\t"))
	}
}

// decodeAs turns objects as the generic commands hold them into Ts (what,
// plural, for errors).
func decodeAs[T any](objs []map[string]any, what string) ([]T, error) {
	b, err := json.Marshal(objs)
	if err != nil {
		return nil, err
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return out, nil
}

func kindsUsage() string { return strings.Join(client.Kinds, ", ") + "; settings" }

// printKind prints objects of a kind: security groups as a table of their
// rules, route tables as a table of their routes, internet gateways, public
// IP pools and public IPs as tables with their state, everything else (and
// any JSON or YAML) as printObjects does.
func printKind(format, kind string, objs []map[string]any, single bool) error {
	if format == "table" && client.Collection(kind) == "security-groups" {
		gs, err := decodeAs[model.SecurityGroup](objs, "security groups")
		if err != nil {
			return err
		}
		return printGroups(format, gs, single)
	}
	if format == "table" && client.Collection(kind) == "peerings" {
		// Unaccepted peerings omit the field; show it as false.
		for _, o := range objs {
			if _, ok := o["accepted"]; !ok {
				o["accepted"] = false
			}
		}
	}
	if format == "table" && client.Collection(kind) == "route-tables" {
		ts, err := decodeAs[client.RouteTable](objs, "route tables")
		if err != nil {
			return err
		}
		return printRouteTables(format, ts, single)
	}
	if format == "table" {
		switch client.Collection(kind) {
		case "hosts":
			hs, err := decodeAs[client.Host](objs, "hosts")
			if err != nil {
				return err
			}
			return printHosts(format, hs, single)
		case "internet-gateways":
			gs, err := decodeAs[client.InternetGateway](objs, "internet gateways")
			if err != nil {
				return err
			}
			return printGateways(format, gs, single)
		case "public-ip-pools":
			ps, err := decodeAs[client.PublicIPPool](objs, "public IP pools")
			if err != nil {
				return err
			}
			return printPools(format, ps, single)
		case "public-ips":
			xs, err := decodeAs[client.PublicIP](objs, "public IPs")
			if err != nil {
				return err
			}
			return printPublicIPs(format, xs, single)
		}
	}
	return printObjects(format, objs, single)
}

func getCmd() *cli.Command {
	return &cli.Command{
		Name:         "get",
		Usage:        "list objects of a kind, or show one (" + kindsUsage() + ")",
		ArgsUsage:    "KIND [NAME]",
		Flags:        verbFlags(),
		BashComplete: completeKinds,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "KIND [NAME]", 1, 2); err != nil {
				return err
			}
			if client.IsSettings(c.Args().First()) {
				return getSettings(c)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			var objs []map[string]any
			if c.NArg() == 2 {
				var one map[string]any
				if err := cl.Get(c.Context, c.Args().Get(0), c.Args().Get(1), &one); err != nil {
					return err
				}
				objs = []map[string]any{one}
			} else if err := cl.List(c.Context, c.Args().Get(0), &objs); err != nil {
				return err
			}
			return printKind(c.String("output"), c.Args().Get(0), objs, c.NArg() == 2)
		},
	}
}

// integral turns JSON numbers that are whole (decoded as float64) back
// into integers, so keys and VNIs print as written.
func integral(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = integral(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integral(e)
		}
	}
	return v
}

func printObjects(format string, objs []map[string]any, single bool) error {
	for _, o := range objs {
		integral(o)
	}
	if done, err := printEncoded(format, oneOrAll(objs, single)); done {
		return err
	}
	cols := map[string]bool{}
	for _, o := range objs {
		for k := range o {
			cols[k] = true
		}
	}
	delete(cols, "name")
	names := []string{"name"}
	var rest []string
	for k := range cols {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	names = append(names, rest...)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.ToUpper(strings.Join(names, "\t")))
	for _, o := range objs {
		row := make([]string, len(names))
		for i, k := range names {
			row[i] = cell(o[k])
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return strings.Join(parts, ",")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case map[string]any:
		// An object field (a host's uplink): field=value, by field name.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + cell(x[k])
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// setFields turns --set field=value pairs into an object. Lists are comma
// separated; numbers stay numbers; a dotted field sets a field of an
// object field (--set uplink.next_hop=198.51.100.1; "uplink=" removes it).
func setFields(obj map[string]any, sets []string) error {
	for _, s := range joinSetPieces(sets) {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("--set %q: want field=value", s)
		}
		if outer, inner, dotted := strings.Cut(k, "."); dotted {
			if outer == "" || inner == "" {
				return fmt.Errorf("--set %q: want field.field=value", s)
			}
			sub, ok := obj[outer].(map[string]any)
			if !ok {
				if obj[outer] != nil {
					return fmt.Errorf("--set %s: %s is not an object", k, outer)
				}
				sub = map[string]any{}
				obj[outer] = sub
			}
			if err := setFields(sub, []string{inner + "=" + v}); err != nil {
				return err
			}
			continue
		}
		switch k {
		case "secondary_ips", "security_groups", "grants":
			var list []string
			if v != "" {
				list = strings.Split(v, ",")
			}
			obj[k] = list
		case "encaps":
			// Empty: [] (a host then uses the deployment's kinds, the
			// settings go back to the default), not null (which keeps them).
			list := []string{}
			if v != "" {
				list = strings.Split(v, ",")
			}
			obj[k] = list
		case "underlay_mtu":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return fmt.Errorf("--set %s: %q is not a number", k, v)
			}
			obj[k] = n
		case "vni", "port_key":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("--set %s: %q is not a number", k, v)
			}
			obj[k] = n
		case "uplink":
			if v != "" {
				return fmt.Errorf("--set uplink=%q: set its fields (--set uplink.interface=eth1 ...), or uplink= to remove it", v)
			}
			obj[k] = nil
			continue
		case "shared", "default", "main", "source_dest_check", "accepted":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("--set %s: %q is not true or false", k, v)
			}
			obj[k] = b
		default:
			obj[k] = v
		}
	}
	return nil
}

// joinSetPieces undoes urfave/cli's splitting of a slice flag's values at
// commas: a piece without "=" continues the value before it (--set
// encaps=geneve,vxlan arrives as "encaps=geneve", "vxlan").
func joinSetPieces(sets []string) []string {
	var out []string
	for _, s := range sets {
		if len(out) > 0 && !strings.Contains(s, "=") {
			out[len(out)-1] += "," + s
			continue
		}
		out = append(out, s)
	}
	return out
}

func readObjectFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

func createCmd() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create an object: openvpc create --set account=acme --set cidr=10.0.0.0/16 vpc web (or -f object.yaml); openvpc create --vpc web security-group ssh; openvpc create --vpc web route-table via-fw; openvpc create --vpc web --peer-vpc db peering web-db; openvpc create internet-gateway igw1 (--vpc V attaches it); openvpc create --cidr 203.0.113.0/24 public-ip-pool pub (admin)",
		ArgsUsage: "KIND [NAME]",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "set", Usage: "field=value (repeatable; lists comma separated)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "object as YAML or JSON"},
			&cli.StringFlag{Name: "vpc", Usage: "same as --set vpc=V (subnets, security groups, route tables, internet gateways)"},
			&cli.StringFlag{Name: "cidr", Usage: "same as --set cidr=C (VPCs, subnets, public IP pools)"},
			&cli.StringFlag{Name: "peer-vpc", Usage: "same as --set peer_vpc=V (peerings: the accepter's VPC)"},
			&cli.StringFlag{Name: "account", Usage: "same as --set account=A"},
			&cli.StringFlag{Name: "description", Usage: "same as --set description=D (security groups)"},
			outputFlag,
		}, serverFlags...),
		BashComplete: completeKinds,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "KIND [NAME]", 1, 2); err != nil {
				return err
			}
			if client.IsSettings(c.Args().First()) {
				return errSettingsSingleton
			}
			obj := map[string]any{}
			if f := c.String("file"); f != "" {
				var err error
				if obj, err = readObjectFile(f); err != nil {
					return err
				}
			}
			if c.NArg() == 2 {
				obj["name"] = c.Args().Get(1)
			}
			for _, f := range []string{"vpc", "cidr", "account", "description"} {
				if c.IsSet(f) {
					obj[f] = c.String(f)
				}
			}
			if c.IsSet("peer-vpc") {
				obj["peer_vpc"] = c.String("peer-vpc")
			}
			if err := setFields(obj, c.StringSlice("set")); err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			if err := cl.Create(c.Context, c.Args().Get(0), &obj); err != nil {
				return err
			}
			return printKind(c.String("output"), c.Args().Get(0), []map[string]any{obj}, true)
		},
	}
}

func updateCmd() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "change fields of an object: openvpc update --set host=h2 nic web1; openvpc update --set encaps=geneve,vxlan settings (admin)",
		ArgsUsage: "KIND NAME (settings: no NAME)",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "set", Usage: "field=value (repeatable; lists comma separated)"},
			outputFlag,
		}, serverFlags...),
		BashComplete: completeKinds,
		Action: func(c *cli.Context) error {
			if c.NArg() >= 1 && client.IsSettings(c.Args().First()) {
				if err := noFlagArgs(c); err != nil {
					return err
				}
				return updateSettings(c)
			}
			if err := checkArgs(c, "KIND NAME", 2, 2); err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			kind, name := c.Args().Get(0), c.Args().Get(1)
			var obj map[string]any
			if err := cl.Get(c.Context, kind, name, &obj); err != nil {
				return err
			}
			if err := setFields(obj, c.StringSlice("set")); err != nil {
				return err
			}
			if err := cl.Update(c.Context, kind, name, &obj); err != nil {
				return err
			}
			return printKind(c.String("output"), kind, []map[string]any{obj}, true)
		},
	}
}

func deleteCmd() *cli.Command {
	return &cli.Command{
		Name:         "delete",
		Usage:        "delete an object",
		ArgsUsage:    "KIND NAME",
		Flags:        serverFlags,
		BashComplete: completeKinds,
		Action: func(c *cli.Context) error {
			if c.NArg() >= 1 && client.IsSettings(c.Args().First()) {
				return errSettingsSingleton
			}
			if err := checkArgs(c, "KIND NAME", 2, 2); err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			return cl.Delete(c.Context, c.Args().Get(0), c.Args().Get(1))
		},
	}
}

func nicCmd() *cli.Command {
	ipAction := func(add bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 2 {
				return errors.New("want NIC IP")
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			if add {
				_, err = cl.AddSecondaryIP(c.Context, c.Args().Get(0), c.Args().Get(1))
			} else {
				_, err = cl.RemoveSecondaryIP(c.Context, c.Args().Get(0), c.Args().Get(1))
			}
			return err
		}
	}
	return &cli.Command{
		Name:  "nic",
		Usage: "NIC operations",
		Subcommands: []*cli.Command{
			{Name: "add-ip", Usage: "add a secondary IP to a running NIC", ArgsUsage: "NIC IP", Flags: serverFlags, Action: ipAction(true)},
			{Name: "remove-ip", Usage: "remove a secondary IP", ArgsUsage: "NIC IP", Flags: serverFlags, Action: ipAction(false)},
			nicSetGroupsCmd(),
			nicSourceDestCheckCmd(),
		},
	}
}

func applyCmd() *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "create or update every object of a policy file in one transaction (idempotent)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true},
			&cli.BoolFlag{Name: "dry-run", Usage: "show what would change, change nothing"},
		}, serverFlags...),
		Action: func(c *cli.Context) error {
			doc, err := os.ReadFile(c.String("file"))
			if err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			ch, err := cl.Apply(c.Context, doc, c.Bool("dry-run"))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, x := range ch.Changes {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", x.Op, x.Kind, x.Name, strings.Join(x.Fields, ","))
			}
			w.Flush()
			if ch.DryRun {
				fmt.Println("(dry run: nothing changed)")
			}
			return nil
		},
	}
}

func exportCmd() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write the policy visible to your token as YAML (re-importable with apply)",
		Flags: serverFlags,
		Action: func(c *cli.Context) error {
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			b, err := cl.Export(c.Context)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(b)
			return err
		},
	}
}

func tokenCmd() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "API tokens (admin)",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a token for an account (or --admin); the secret is shown once",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "account"}, &cli.BoolFlag{Name: "admin"}, &cli.StringFlag{Name: "description"},
				}, serverFlags...),
				Action: func(c *cli.Context) error {
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					t, err := cl.CreateToken(c.Context, client.TokenRequest{Account: c.String("account"), Admin: c.Bool("admin"), Description: c.String("description")})
					if err != nil {
						return err
					}
					fmt.Printf("id: %s\nsecret: %s\n", t.ID, t.Secret)
					return nil
				},
			},
			{
				Name: "list", Flags: serverFlags,
				Action: func(c *cli.Context) error {
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					ts, err := cl.ListTokens(c.Context)
					if err != nil {
						return err
					}
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tACCOUNT\tADMIN\tCREATED\tDESCRIPTION")
					for _, t := range ts {
						fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\n", t.ID, t.Account, t.Admin, t.Created.Format("2006-01-02 15:04"), t.Description)
					}
					return w.Flush()
				},
			},
			{
				Name: "revoke", ArgsUsage: "ID", Flags: serverFlags,
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return errors.New("token revoke: want ID")
					}
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					return cl.RevokeToken(c.Context, c.Args().First())
				},
			},
		},
	}
}
