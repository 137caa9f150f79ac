package labtest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// env: h1 has an explicit underlay MTU (VMs plugged there get the model's
// VM MTU), h2 the lab's defaults.
var env = New(Options{Name: "labtest", Prefix: 'l', Hosts: []string{"h1", "h2"}, Settle: 15 * time.Second,
	Policy: func(p *model.Policy) { p.Hosts[0].UnderlayMTU = 1500 }})

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("labtest: skipped, the lab needs root")
		os.Exit(0)
	}
	env.Main(m)
}

// TestPlugMulti: one VM with NICs in two subnets reaches each subnet
// through its own NIC, and Plug gives VMs on a host with an explicit
// underlay MTU the model's VM MTU.
func TestPlugMulti(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		p.Accounts = append(p.Accounts, model.Account{Name: "pm"})
		p.VPCs = append(p.VPCs, model.VPC{Name: "pm", Account: "pm", CIDR: "10.61.0.0/16"})
		p.Subnets = append(p.Subnets,
			model.Subnet{Name: "pm-1", VPC: "pm", CIDR: "10.61.1.0/24"},
			model.Subnet{Name: "pm-2", VPC: "pm", CIDR: "10.61.2.0/24"})
		p.NICs = append(p.NICs,
			model.NIC{Name: "pm-a", Subnet: "pm-1", Host: "h1", IP: "10.61.1.10"},
			model.NIC{Name: "pm-a2", Subnet: "pm-2", Host: "h1", IP: "10.61.2.10"},
			model.NIC{Name: "pm-b", Subnet: "pm-1", Host: "h2", IP: "10.61.1.20"},
			model.NIC{Name: "pm-c", Subnet: "pm-2", Host: "h2", IP: "10.61.2.20"},
			model.NIC{Name: "pm-d", Subnet: "pm-2", Host: "h1", IP: "10.61.2.30"})
	})
	multi := env.PlugMulti(t, "pm-a", "pm-a2")
	vms := env.Plug(t, "pm-b", "pm-c", "pm-d")
	a, a2, b, c, d := multi["pm-a"], multi["pm-a2"], vms["pm-b"], vms["pm-c"], vms["pm-d"]
	if a.VM != a2.VM || a.Name() != "pm-a" || a2.Addr != "10.61.2.10" || len(a.NICs()) != 2 || env.Lab.VMOf("pm-a2") != a.VM {
		t.Fatalf("PlugMulti: %+v %+v", a, a2)
	}
	n, err := env.Net()
	Must(t, err)
	if want := n.NICs["pm-a"].MTU; a.MTU() != want || a.NICs()[1].MTU != want || d.MTU() != want || want >= 1500 || want == 0 {
		t.Errorf("MTUs on h1: %d, %d, %d; the model's %d", a.MTU(), a.NICs()[1].MTU, d.MTU(), want)
	}
	if b.MTU() != 0 {
		t.Errorf("b on h2 (no explicit underlay MTU) got MTU %d", b.MTU())
	}
	if out := Sh(t, a, "ip", "-4", "route", "show"); !strings.Contains(out, "default via 10.61.1.1 dev "+lab.VMIface) ||
		!strings.Contains(out, "10.61.2.0/24 dev eth1") {
		t.Errorf("routes:\n%s", out)
	}
	Serve(t, a, "tcp:7001")
	Serve(t, c, "tcp:7001")
	env.Expect(t, "a VM with two NICs",
		Ping(a, b).OK(), Ping(a2, c).OK(), Ping(c, a2).OK(), Ping(b, a).OK(), Ping(d, a2).OK(),
		TCP(a2, c, 7001).OK(), TCP(c, a2, 7001).OK(), TCP(b, a, 7001).OK())
}
