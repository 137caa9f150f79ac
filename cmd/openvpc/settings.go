package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/model"
)

// The deployment's settings (one object: `openvpc get settings`, `openvpc
// update --set encaps=geneve,vxlan settings`, `openvpc set-encaps geneve
// vxlan`) and the host table with what the tunnel kinds and MTUs make of
// each host.

// errSettingsSingleton answers create and delete of the settings.
var errSettingsSingleton = errors.New("settings is one object that always exists: change it with `openvpc update --set encaps=KIND,... settings` or `openvpc set-encaps KIND...`")

// getSettings is `openvpc get settings`.
func getSettings(c *cli.Context) error {
	if c.NArg() > 1 {
		return fmt.Errorf("%s: settings is one object, without a name", c.Command.Name)
	}
	cl, err := apiClient(c)
	if err != nil {
		return err
	}
	var st client.Settings
	if err := cl.GetSettings(c.Context, &st); err != nil {
		return err
	}
	return printSettings(c.String("output"), st)
}

// updateSettings is `openvpc update --set encaps=... settings`: a GET,
// the --set fields, a PUT.
func updateSettings(c *cli.Context) error {
	if c.NArg() > 1 {
		return fmt.Errorf("%s: settings is one object, without a name", c.Command.Name)
	}
	cl, err := apiClient(c)
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := cl.GetSettings(c.Context, &obj); err != nil {
		return err
	}
	if err := setFields(obj, c.StringSlice("set")); err != nil {
		return err
	}
	if err := cl.UpdateSettings(c.Context, &obj); err != nil {
		return err
	}
	st, err := decodeAs[client.Settings]([]map[string]any{obj}, "settings")
	if err != nil {
		return err
	}
	return printSettings(c.String("output"), st[0])
}

func printSettings(format string, st client.Settings) error {
	if done, err := printEncoded(format, st); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ENCAPS\tIN_FORCE")
	fmt.Fprintf(w, "%s\t%s\n", orDash(strings.Join(st.Encaps, ","), "- (default)"), strings.Join(st.EffectiveEncaps, ","))
	return w.Flush()
}

func setEncapsCmd() *cli.Command {
	return &cli.Command{
		Name: "set-encaps",
		Usage: "set the deployment's tunnel kinds in order of preference (vxlan, geneve, gre, stt; admin): " +
			"a pair of hosts uses the first both can use; --default: back to vxlan",
		ArgsUsage: "KIND...",
		Flags: verbFlags(
			&cli.BoolFlag{Name: "default", Usage: "go back to the default order (vxlan)"},
		),
		Action: func(c *cli.Context) error {
			if err := noFlagArgs(c); err != nil {
				return err
			}
			var kinds []string
			for _, a := range c.Args().Slice() {
				for _, k := range strings.Split(a, ",") {
					if k = strings.TrimSpace(k); k != "" {
						kinds = append(kinds, k)
					}
				}
			}
			switch {
			case c.Bool("default") && len(kinds) > 0:
				return fmt.Errorf("%s: --default or kinds, not both", c.Command.Name)
			case !c.Bool("default") && len(kinds) == 0:
				return fmt.Errorf("%s: want KIND... (vxlan, geneve, gre, stt), or --default", c.Command.Name)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			st, err := cl.SetEncaps(c.Context, kinds)
			if err != nil {
				return err
			}
			return printSettings(c.String("output"), *st)
		},
	}
}

// printHosts prints hosts: where they are, the tunnel kinds they can use,
// their VMs' MTU, the kind used with each peer, the uplink of a gateway
// host, and one line per problem.
func printHosts(format string, hs []client.Host, single bool) error {
	if done, err := printEncoded(format, oneOrAll(hs, single)); done {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tUNDERLAY_IP\tDATAPATH\tENCAPS\tUNDERLAY_MTU\tVM_MTU\tTUNNELS\tUPLINK\tPROBLEMS")
	for _, h := range hs {
		mtu := h.UnderlayMTU
		if mtu == 0 {
			mtu = model.DefaultUnderlayMTU
		}
		vm := "-"
		if h.VMMTU > 0 {
			vm = strconv.Itoa(h.VMMTU)
		}
		peers := make([]string, 0, len(h.Tunnels))
		for p, k := range h.Tunnels {
			peers = append(peers, p+"="+k)
		}
		sort.Strings(peers)
		uplink := "-"
		if h.Uplink != nil {
			m, err := toMap(h.Uplink)
			if err != nil {
				return err
			}
			uplink = cell(m)
		}
		head := []string{h.Name, orDash(h.UnderlayIP, "-"), orDash(h.DatapathType, "netdev"), orDash(strings.Join(h.UsableEncaps, ","), "-"),
			strconv.Itoa(mtu), vm, orDash(strings.Join(peers, ","), "-"), uplink}
		var rows [][]string
		for _, p := range h.Problems {
			rows = append(rows, []string{p})
		}
		printHeaded(w, head, rows, 1)
	}
	return w.Flush()
}
