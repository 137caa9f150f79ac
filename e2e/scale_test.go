package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/internal/policygen"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

var scale = flag.Bool("scale", false, "run the convergence scale test (slow; used by make bench)")

// TestScaleConvergence measures, on real OVS, the brief's yardstick shape: H
// hosts × P dummy ports (ovs-vswitchd --enable-dummy, ports carrying
// iface-ids like VMs): time from controller start to every host in sync,
// flows per host, and the time for one change (a new NIC) to be installed.
// Only with -scale; it reports figures and asserts correctness, not time.
func TestScaleConvergence(t *testing.T) {
	if !*scale {
		t.Skip("convergence scale test: run with -scale (make bench)")
	}
	// The OVN yardstick: 2 × 200 ports with 50 groups × 20 rules, 3 × 500
	// with 100 × 20; every NIC in two groups of its VPC.
	for _, shape := range []struct{ hosts, ports, groups int }{{2, 200, 50}, {3, 500, 100}} {
		t.Run(fmt.Sprintf("%dx%d", shape.hosts, shape.ports), func(t *testing.T) {
			scaleRun(t, shape.hosts, shape.ports, shape.groups)
		})
	}
}

func scaleRun(t *testing.T, hosts, ports, groups int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := policygen.Generate(policygen.Params{Hosts: hosts, NICsPerHost: ports, HostsPerVPC: hosts, VPCsPerHost: 10,
		Groups: groups, RulesPerGroup: 20})
	for i := range p.Hosts {
		p.Hosts[i].UnderlayIP = "" // the lab assigns
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	// Under labrun.OrphanGlob, so a later run removes the lab if this test
	// dies before its teardown.
	dir, err := os.MkdirTemp("", "ovp-scale")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e, err := labrun.UpPolicy(ctx, p, labrun.Options{Name: lab.UniqueName('s'), Dir: dir, Log: log, NoVMs: true, Store: true, Ephemeral: true,
		VswitchdArgs: []string{"--enable-dummy"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Down(context.Background())
	// Stop the controller, plug every port, then time a cold start (from
	// the store, the production path).
	n, err := e.Net()
	if err != nil {
		t.Fatal(err)
	}
	e.StopController()
	for _, h := range e.Lab.Hosts() {
		var args []string
		for _, nn := range n.NICNames {
			if n.NICs[nn].Host == h.Name() {
				port := "d" + strings.TrimPrefix(nn, "nic")
				args = append(args, "--", "add-port", "br-int", port, "--", "set", "Interface", port, "type=dummy", "external_ids:iface-id="+nn)
			}
		}
		if _, err := h.OVS().Vsctl(ctx, args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := e.StartController(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	converge := time.Since(start)
	flows := map[string]int{}
	var program time.Duration // switch connected → its full flow set installed
	for _, h := range e.Controller().Status().Hosts {
		flows[h.Name] = h.Flows
		if h.ConnectedAt != nil && h.LastSync != nil && h.LastSync.Sub(*h.ConnectedAt) > program {
			program = h.LastSync.Sub(*h.ConnectedAt)
		}
		if len(h.BoundNICs) != ports {
			t.Errorf("%s: %d NICs bound, want %d", h.Name, len(h.BoundNICs), ports)
		}
	}
	// One change: a new NIC (policy + port) on the first host.
	first := e.Lab.Hosts()[0]
	start = time.Now()
	if err := e.UpdatePolicy(func(p *model.Policy) {
		p.NICs = append(p.NICs, model.NIC{Name: "extra", Subnet: p.Subnets[0].Name, Host: first.Name(), IP: "10.0.0.253"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.OVS().Vsctl(ctx, "add-port", "br-int", "dextra", "--", "set", "Interface", "dextra", "type=dummy", "external_ids:iface-id=extra"); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := first.OVS().Ofctl(ctx, "dump-flows", "br-int", "table=0")
		if err == nil && strings.Count(out, "in_port=") > ports {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatal("new NIC's flows not installed within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	change := time.Since(start)
	// One rule: authorize tcp 9999 into a group with members on every host,
	// until it is on the first host's switch; then revoke it.
	ruleChange := func(add bool) time.Duration {
		start := time.Now()
		if err := e.UpdatePolicy(func(p *model.Policy) {
			g := &p.SecurityGroups[0]
			if add {
				g.Ingress = append(g.Ingress, model.Rule{Protocol: "tcp", Ports: "9999", CIDR: "192.0.2.0/24"})
			} else {
				g.Ingress = g.Ingress[:len(g.Ingress)-1]
			}
		}); err != nil {
			t.Fatal(err)
		}
		for {
			// A filtered dump: the switch returns only the new rule's flow.
			out, err := first.OVS().Ofctl(ctx, "dump-flows", "br-int", "table=55,tcp,tp_dst=9999")
			if err == nil && strings.Contains(out, "tp_dst=9999") == add {
				return time.Since(start)
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("rule change (add=%v) not installed within a minute", add)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ruleAdd, ruleDel := ruleChange(true), ruleChange(false)
	t.Logf("RESULT hosts=%d ports/host=%d groups=%dx20 converge=%v program=%v flows/host=%v one-change=%v rule-add=%v rule-remove=%v",
		hosts, ports, groups, converge.Round(time.Millisecond), program.Round(time.Millisecond), flows, change.Round(time.Millisecond),
		ruleAdd.Round(time.Millisecond), ruleDel.Round(time.Millisecond))
}
