package demo

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// tcpServer listens on the given ports in a VM and echoes every line.
const tcpServer = `
import socket, sys, threading
def serve(c):
    f = c.makefile('rwb', 0)
    for line in f:
        f.write(line)
def listen(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port)); s.listen(16)
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
for p in sys.argv[1:]:
    threading.Thread(target=listen, args=(int(p),), daemon=True).start()
print('listening', flush=True)
threading.Event().wait()
`

// tcpProbe connects, sends a line and prints what happened: ok, timeout
// (dropped) or refused.
const tcpProbe = `
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    s.sendall(b'hi\n'); print('ok' if s.recv(16) == b'hi\n' else 'bad')
except socket.timeout: print('timeout')
except ConnectionRefusedError: print('refused')
`

// startServer runs tcpServer in a VM until the returned stop is called.
func startServer(ctx context.Context, v *lab.VM, ports ...string) (stop func(), err error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", v.Netns(), "python3", "-u", "-c", tcpServer}, ports...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server in %s: %w", v.Name(), err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	buf := make([]byte, 64)
	if n, err := out.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "listening") {
		stop()
		return nil, fmt.Errorf("server in %s did not start: %v", v.Name(), err)
	}
	return stop, nil
}

func tcpTry(ctx context.Context, from *lab.VM, ip, port string) string {
	out, err := from.Exec(ctx, "python3", "-c", tcpProbe, ip, port, "1.0")
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// securityGroup puts a-app1 into a new group that admits only tcp 5432 from
// the web NICs (the VPC's default group) and checks, with real connections,
// what gets through; then puts a-app1 back into its default group.
func securityGroup(ctx context.Context, e *labrun.Env) (string, error) {
	web, err := vm(e, "a-web1")
	if err != nil {
		return "", err
	}
	app, err := vm(e, "a-app1")
	if err != nil {
		return "", err
	}
	stop, err := startServer(ctx, app, "5432", "5433")
	if err != nil {
		return "", err
	}
	defer stop()
	setGroup := func(groups ...string) error {
		return e.UpdatePolicy(func(p *model.Policy) {
			if len(groups) > 0 && !hasGroup(p, "demo-db") {
				p.SecurityGroups = append(p.SecurityGroups, model.SecurityGroup{Name: "demo-db", VPC: "acme-vpc",
					Ingress: []model.Rule{{Protocol: "tcp", Ports: "5432", Group: "acme-vpc-default"}},
					Egress:  []model.Rule{model.AllEgress()}})
			}
			for i := range p.NICs {
				if p.NICs[i].Name == "a-app1" {
					p.NICs[i].SecurityGroups = groups
				}
			}
		})
	}
	// until polls a probe until it gives want (the change is in flight).
	until := func(what, want string, probe func() string) error {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := probe()
			if got == want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: got %q, want %q", what, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pingOK := func() string {
		r, err := ping(ctx, e, "a-web1", "10.0.2.10", 1)
		if err != nil || r.Received != 1 {
			return "no reply"
		}
		return "reply"
	}
	if err := setGroup("demo-db"); err != nil {
		return "", err
	}
	defer setGroup()
	if err := until("ping a-web1 → a-app1 in demo-db", "no reply", pingOK); err != nil {
		return "", err
	}
	if got := tcpTry(ctx, web, "10.0.2.10", "5432"); got != "ok" {
		return "", fmt.Errorf("tcp 5432 (allowed) from a-web1: %s", got)
	}
	if got := tcpTry(ctx, web, "10.0.2.10", "5433"); got != "timeout" {
		return "", fmt.Errorf("tcp 5433 (no rule, a server listens) from a-web1: %s, want it dropped", got)
	}
	if err := setGroup(); err != nil {
		return "", err
	}
	if err := until("ping a-web1 → a-app1 back in the default group", "reply", pingOK); err != nil {
		return "", err
	}
	if got := tcpTry(ctx, web, "10.0.2.10", "5433"); got != "ok" {
		return "", fmt.Errorf("tcp 5433 back in the default group: %s", got)
	}
	return "a-app1 in a group with only tcp 5432 from the web tier: 5432 connects, 5433 and ping dropped; back in its default group all pass", nil
}

func hasGroup(p *model.Policy, name string) bool {
	for _, g := range p.SecurityGroups {
		if g.Name == name {
			return true
		}
	}
	return false
}
