package tunnels

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/pipelines"
)

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// migrate moves vm (its NIC) to host while peer pings it every 10 ms, and
// returns the gap: the replies lost, times 10 ms.
func migrate(t *testing.T, vm, peer *labtest.VM, to string) time.Duration {
	t.Helper()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := peer.Exec(labtest.Ctx(t), "ping", "-i", "0.01", "-c", "400", "-W", "1", vm.Addr)
		done <- result{out, err}
	}()
	time.Sleep(time.Second)
	res, err := env.Lab.MoveVM(labtest.Ctx(t), vm.Name(), to, lab.MoveOpts{MakeBeforeBreak: true, Overlap: 200 * time.Millisecond, Announce: true})
	labtest.Must(t, err)
	r := <-done
	m := pingStats.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("ping during the move: %v\n%s", r.err, r.out)
	}
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	gap := time.Duration(sent-got) * 10 * time.Millisecond
	t.Logf("moved %s %s → %s in %v (link down %v, both ports %v); %d/%d replies: gap %v", vm.Name(), res.From, res.To,
		res.Took.Round(time.Millisecond), res.LinkDown.Round(time.Millisecond), res.Overlap.Round(time.Millisecond), got, sent, gap)
	if got == 0 || sent-got > 150 {
		t.Fatalf("traffic did not resume after the move: %d/%d replies\n%s", got, sent, r.out)
	}
	return gap
}

// 5. Live migration: the VM's port (same iface-id, MAC, IP) moves from h1 to
// h2 while a VM on h3 pings it every 10 ms — both ports exist for a moment,
// the newest wins — and the ping resumes with no policy change; TCP
// connections open across the move (either way) go on. Its security groups
// still apply, and h1 keeps no flow for it.
func TestMigration(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t5", "10.95")
		p.NICs = append(p.NICs, nic("t5", "t5m", "s1", "h1", "10.95.1.10"), nic("t5", "t5p", "s2", "h3", "10.95.2.10"))
	})
	v := env.Plug(t, "t5m", "t5p")
	m, p := v["t5m"], v["t5p"]
	labtest.Serve(t, m, "tcp:80", "tcp:81")
	labtest.Serve(t, p, "tcp:80")
	env.Expect(t, "before", labtest.Ping(p, m).OK(), labtest.TCP(p, m, 80).OK(), labtest.TCP(p, m, 81).Blocked())

	n, err := env.Net()
	labtest.Must(t, err)
	key := n.NICs["t5m"].PortKey
	in := env.OpenStream(t, p, m, 80) // a connection to the VM, open across the move
	out := env.OpenStream(t, m, p, 80)
	gap := migrate(t, m, p, "h2")
	env.Expect(t, "after the move", labtest.Ping(p, m).OK())
	in.WaitMore(t, in.WaitMore(t, 0, 1), 5)
	out.WaitMore(t, out.WaitMore(t, 0, 1), 5)
	env.Expect(t, "after the move: the same rules", labtest.Ping(p, m).OK(), labtest.TCP(p, m, 80).OK(),
		labtest.TCP(p, m, 81).Blocked(), labtest.Ping(m, p).OK())
	flows, err := env.Controller().DumpFlows(labtest.Ctx(t), "h1")
	labtest.Must(t, err)
	for _, f := range flows {
		if f.Cookie&pipelines.CookieMask == pipelines.CookieOpenVPC && (f.Cookie>>48)&0xff == pipelines.CatPort && uint32(f.Cookie&0xffffffffffff) == key {
			t.Errorf("h1 still has a flow of the moved NIC: %s", f.Text(pipelines.TableName))
		}
	}
	for _, h := range env.Controller().Status().Hosts {
		if _, bound := h.BoundNICs["t5m"]; bound != (h.Name == "h2") {
			t.Errorf("%s: t5m bound=%v", h.Name, bound)
		}
	}
	// The orchestrator records the new placement: nothing changes.
	env.Update(t, func(p *model.Policy) { labtest.NICOf(p, "t5m").Host = "h2" })
	env.Expect(t, "placement updated", labtest.Ping(p, m).OK(), labtest.TCP(p, m, 81).Blocked())
	in.WaitMore(t, in.WaitMore(t, 0, 1), 5) // its conntrack zone there is now the pinned one
	out.WaitMore(t, out.WaitMore(t, 0, 1), 5)
	t.Logf("RESULT migration gap=%v", gap)
}

// 6. A VM with two NICs in two subnets: each NIC is its own port with its own
// iface-id, both reachable.
func TestSecondaryNIC(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t6", "10.96")
		p.NICs = append(p.NICs, nic("t6", "t6m0", "s1", "h1", "10.96.1.10"), nic("t6", "t6m1", "s2", "h1", "10.96.2.10"),
			nic("t6", "t6p", "s1", "h2", "10.96.1.20"))
	})
	multi := env.PlugMulti(t, "t6m0", "t6m1")
	p := env.Plug(t, "t6p")["t6p"]
	env.Expect(t, "both NICs of one VM", labtest.Ping(p, multi["t6m0"]).OK(), labtest.Ping(p, multi["t6m1"]).OK(),
		labtest.TCP(multi["t6m0"], p, 5201).Refused())
	var h1 map[string]uint32
	for _, h := range env.Controller().Status().Hosts {
		if h.Name == "h1" {
			h1 = h.BoundNICs
		}
	}
	if h1["t6m0"] == 0 || h1["t6m1"] == 0 || h1["t6m0"] == h1["t6m1"] {
		t.Fatalf("h1's bound NICs %v: want t6m0 and t6m1 on ports of their own", h1)
	}
}

// 7. Host setup repairs drift: with h2's GRE tunnel port deleted and its
// bridge's fail_mode changed by hand, traffic h1–h2 stops; the controller's
// host agent restores both and traffic flows again.
func TestHostSetupRepairsDrift(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t7", "10.97")
		p.NICs = append(p.NICs, nic("t7", "t7a", "s1", "h1", "10.97.1.10"), nic("t7", "t7b", "s1", "h2", "10.97.1.11"))
	})
	v := env.Plug(t, "t7a", "t7b")
	env.Expect(t, "before", labtest.Ping(v["t7a"], v["t7b"]).OK())
	o := env.Lab.Host("h2").OVS()
	ctx := labtest.Ctx(t)
	if out, err := o.Vsctl(ctx, "del-port", "br-int", "ovpn-gre", "--", "set-fail-mode", "br-int", "standalone"); err != nil {
		t.Fatalf("drift by hand: %v: %s", err, out)
	}
	deadline := time.Now().Add(env.Settle)
	for {
		ports, _ := o.Vsctl(ctx, "list-ports", "br-int")
		mode, _ := o.Vsctl(ctx, "get-fail-mode", "br-int")
		if strings.Contains(ports, "ovpn-gre") && strings.TrimSpace(mode) == "secure" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not repaired after %v: ports %q, fail_mode %q", env.Settle, ports, mode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	env.Expect(t, "after the repair", labtest.Ping(v["t7a"], v["t7b"]).OK(), labtest.Ping(v["t7b"], v["t7a"]).OK())
}
