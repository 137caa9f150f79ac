package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/pipelines"
)

func apiGet(c *cli.Context, path string, query url.Values) ([]byte, error) {
	cl, err := apiClient(c)
	if err != nil {
		return nil, err
	}
	return cl.Raw(c.Context, path, query)
}

func showCmd() *cli.Command {
	return &cli.Command{
		Name:  "show",
		Usage: "list hosts, their connection state, bound NICs and flow counts",
		Flags: append([]cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}}, serverFlags...),
		Action: func(c *cli.Context) error {
			body, err := apiGet(c, "/v1/status", nil)
			if err != nil {
				return err
			}
			if c.String("output") == "json" {
				_, err := os.Stdout.Write(body)
				return err
			}
			var st controller.Status
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("decode status: %w", err)
			}
			if st.PolicyError != "" {
				fmt.Printf("policy error (previous policy in force): %s\n\n", st.PolicyError)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "HOST\tDPID\tUNDERLAY\tENCAPS\tOPENFLOW\tSYNC\tFLOWS\tVM_MTU\tNICS\tERROR")
			for _, h := range st.Hosts {
				conn := "down"
				if h.Connected {
					conn = "up"
				}
				sync := "no"
				if h.InSync {
					sync = "yes"
				}
				nics := make([]string, 0, len(h.BoundNICs))
				for n, p := range h.BoundNICs {
					nics = append(nics, fmt.Sprintf("%s@%d", n, p))
				}
				sort.Strings(nics)
				for _, n := range h.PendingNICs {
					nics = append(nics, n+"(unplugged)")
				}
				errs := strings.TrimSpace(h.LastError + " " + h.OVSDBError)
				vmMTU := "-"
				if h.VMMTU > 0 {
					vmMTU = fmt.Sprint(h.VMMTU)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", h.Name, h.DatapathID, h.UnderlayIP, orDash(strings.Join(h.Encaps, ","), "-"),
					conn, sync, h.Flows, vmMTU, strings.Join(nics, ","), errs)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			// Traffic that cannot flow: a kind the datapath cannot send
			// with, peers without a kind in common.
			for _, h := range st.Hosts {
				for _, p := range h.Problems {
					fmt.Printf("host %s: %s\n", h.Name, p)
				}
			}
			for _, h := range st.Hosts {
				if g := h.Gateway; g != nil {
					fmt.Println(gatewayLine(h.Name, g))
				}
			}
			return nil
		},
	}
}

// gatewayLine describes a gateway host's uplink for `show`.
func gatewayLine(host string, g *controller.GatewayStatus) string {
	port := "not plugged"
	if g.UplinkPort != 0 {
		port = fmt.Sprintf("port %d", g.UplinkPort)
	}
	router := g.NextHop + " unresolved (outbound traffic dropped until it answers ARP)"
	if g.NextHopMAC != "" {
		how := "resolved"
		if g.Pinned {
			how = "pinned"
		}
		router = fmt.Sprintf("%s at %s (%s)", g.NextHop, g.NextHopMAC, how)
	}
	return fmt.Sprintf("gateway %s: uplink %s (%s) %s, router %s, serves %d public IPs %s",
		host, g.Interface, port, g.IP, router, len(g.PublicIPs), strings.Join(g.PublicIPs, ","))
}

func dumpFlowsCmd() *cli.Command {
	return &cli.Command{
		Name:      "dump-flows",
		Usage:     "show the flows installed on a host's br-int with table names and statistics, like ovs-ofctl dump-flows (read over OpenFlow)",
		ArgsUsage: "HOST [TABLE]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "table", Usage: "only this table (name or number)"},
			&cli.BoolFlag{Name: "no-stats", Usage: "omit duration, n_packets, n_bytes and idle_age (like ovs-ofctl --no-stats)"},
		}, serverFlags...),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return fmt.Errorf("dump-flows: want HOST and optionally TABLE (flags go before HOST)")
			}
			q := url.Values{}
			t := c.String("table")
			if c.NArg() == 2 {
				t = c.Args().Get(1)
			}
			if t != "" {
				if _, err := pipelines.TableByName(t); err != nil {
					return fmt.Errorf("--table: %w", err)
				}
				q.Set("table", t)
			}
			if c.Bool("no-stats") {
				q.Set("stats", "0")
			}
			body, err := apiGet(c, "/v1/hosts/"+url.PathEscape(c.Args().First())+"/flows", q)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(body)
			return err
		},
	}
}

func loadPolicyFile(path string) (*model.Policy, *model.Net, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := model.ParseYAML(data)
	if err != nil {
		return nil, nil, err
	}
	n, err := model.Build(p)
	return p, n, err
}

func validateCmd() *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "check a policy file and print every problem",
		Flags: []cli.Flag{&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true}},
		Action: func(c *cli.Context) error {
			_, n, err := loadPolicyFile(c.String("file"))
			if err != nil {
				return err
			}
			fmt.Printf("ok: %d vpcs, %d subnets, %d nics, %d hosts\n", len(n.VPCs), len(n.Subnets), len(n.NICs), len(n.Hosts))
			return nil
		},
	}
}

func compileCmd() *cli.Command {
	return &cli.Command{
		Name:  "compile",
		Usage: "print the flows a host would get, offline, assuming every NIC placed on it is bound (ofports 10, 11, ... by name; tunnel port 1; uplink 2)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true},
			&cli.StringFlag{Name: "host", Required: true},
			&cli.StringFlag{Name: "table", Usage: "only this table (name or number)"},
		},
		Action: func(c *cli.Context) error {
			_, n, err := loadPolicyFile(c.String("file"))
			if err != nil {
				return err
			}
			snap := offlineSnapshot(n)
			fs, err := pipelines.Compile(snap, c.String("host"))
			if err != nil {
				return err
			}
			flows := fs.Flows()
			if t := c.String("table"); t != "" {
				tn, err := pipelines.TableByName(t)
				if err != nil {
					return fmt.Errorf("--table: %w", err)
				}
				kept := flows[:0]
				for _, f := range flows {
					if f.Table == tn {
						kept = append(kept, f)
					}
				}
				flows = kept
			}
			fmt.Print(controller.FlowsText(flows, snap.Net))
			return nil
		},
	}
}

func traceCmd() *cli.Command {
	return &cli.Command{
		Name:  "trace",
		Usage: "explain what a host does with a packet, table by table, naming the security-group rule that allows it (against the flows the host's switch holds, or offline with -f)",
		ArgsUsage: "HOST PACKET   (PACKET like ovs-ofctl: tcp,nw_dst=10.0.2.10,tp_dst=5432; " +
			"source MAC/IP, in_port and destination MAC default from --from)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "the NIC the packet comes from (on HOST)"},
			&cli.StringFlag{Name: "from-host", Usage: "or: the host the packet is tunnelled from"},
			&cli.StringFlag{Name: "vpc", Usage: "the VPC of a tunnelled packet"},
			&cli.BoolFlag{Name: "from-uplink", Usage: "or: the packet comes from outside, on a gateway host's uplink (from its router)"},
			&cli.StringFlag{Name: "ct", Value: "new", Usage: "conntrack state the packet has: new, est (an established connection) or rel"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "trace offline on the flows compiled from this policy file (every placed NIC bound, as compile assumes)"},
		}, serverFlags...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("trace: want HOST and PACKET (flags go before HOST)")
			}
			host, packet := c.Args().Get(0), c.Args().Get(1)
			in := pipelines.TraceInput{FromNIC: c.String("from"), FromHost: c.String("from-host"), VPC: c.String("vpc"), Packet: packet, CtState: c.String("ct"),
				FromUplink: c.Bool("from-uplink")}
			if f := c.String("file"); f != "" {
				_, n, err := loadPolicyFile(f)
				if err != nil {
					return err
				}
				snap := offlineSnapshot(n)
				fs, err := pipelines.Compile(snap, host)
				if err != nil {
					return err
				}
				text, _, err := pipelines.Trace(snap, host, fs.Flows(), in)
				if err != nil {
					return err
				}
				fmt.Print(text)
				return nil
			}
			q := url.Values{"packet": {packet}, "ct": {in.CtState}}
			if in.FromUplink {
				q.Set("from_uplink", "1")
			}
			for k, v := range map[string]string{"from": in.FromNIC, "from_host": in.FromHost, "vpc": in.VPC} {
				if v != "" {
					q.Set(k, v)
				}
			}
			body, err := apiGet(c, "/v1/hosts/"+url.PathEscape(host)+"/trace", q)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(body)
			return err
		},
	}
}

// offlineSnapshot binds every placed NIC on its host (ofports 10, 11, ...
// by name) with the tunnel port at 1, as `compile` and `trace -f` assume.
func offlineSnapshot(n *model.Net) *pipelines.Snapshot {
	snap := &pipelines.Snapshot{Net: n, Hosts: map[string]pipelines.HostState{}}
	for _, hn := range n.HostNames {
		st := pipelines.HostState{Ports: map[string]uint32{}, TunnelPorts: pipelines.OfflinePorts(n.Hosts[hn])}
		if n.Hosts[hn].Uplink != nil {
			st.UplinkPort = 2
		}
		port := uint32(10)
		for _, nn := range n.NICNames {
			if n.NICs[nn].Host == hn {
				st.Ports[nn] = port
				port++
			}
		}
		snap.Hosts[hn] = st
	}
	return snap
}
