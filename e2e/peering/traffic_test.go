package peering

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvpc/openvpc/lab"
)

// python is the system interpreter (not a shim that may read the caller's
// environment); the scripts use only the standard library.
const python = "/usr/bin/python3"

// serverPy listens on every "tcp:PORT" and "udp:PORT" of argv, echoes TCP
// lines and UDP datagrams, and prints "ready" once every socket is bound.
const serverPy = `import socket, sys, threading
def echo(c):
    try:
        f = c.makefile("rb")
        for line in f:
            c.sendall(line)
    except OSError:
        pass
    finally:
        c.close()
def serve_tcp(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def serve_udp(s):
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d, a)
for spec in sys.argv[1:]:
    proto, port = spec.split(":")
    if proto == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(port)))
        s.listen(128)
        threading.Thread(target=serve_tcp, args=(s,), daemon=True).start()
    elif proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", int(port)))
        threading.Thread(target=serve_udp, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
`

// probePy makes one exchange: tcp (connect, send a line, read it back) or
// udp (connected socket: send a datagram, read the echo), from source
// address src (0.0.0.0: the kernel's choice). It prints OK, TIMEOUT,
// REFUSED (a TCP reset, or an ICMP port unreachable for UDP) or ERR.
const probePy = `import socket, sys
proto, ip, port, timeout, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
size = int(sys.argv[6])
try:
    if proto == "tcp":
        s = socket.create_connection((ip, port), timeout=timeout, source_address=(src, 0))
        s.sendall(b"probe\n")
        line = s.makefile("rb").readline()
        print("OK" if line == b"probe\n" else "ERR bad echo %r" % line)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect((ip, port))
        msg = b"probe" + b"x" * max(0, size - 5)
        s.send(msg)
        d = s.recv(65535)
        print("OK" if d == msg else "ERR bad echo of %d bytes" % len(d))
except (socket.timeout, TimeoutError):
    print("TIMEOUT")
except ConnectionRefusedError:
    print("REFUSED")
except OSError as e:
    print("ERR %s" % e)
`

// proc is a background process in a VM's namespace, killed by its PID when
// the test ends.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startIn starts a python script in the VM and calls onLine for every line
// it prints; it is killed (by PID) at the end of the test.
func startIn(t *testing.T, v *vm, script string, onLine func(string), args ...string) *proc {
	t.Helper()
	argv := append([]string{"netns", "exec", v.Netns(), python, "-u", "-c", script}, args...)
	cmd := exec.Command("ip", argv...) // ip netns exec execs python: same PID
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			onLine(sc.Text())
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// stop kills the process by its PID and reaps it.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.cmd.Wait()
}

// serve starts an echo server in the VM on the given "tcp:N"/"udp:N"
// sockets and waits until they are bound.
func serve(t *testing.T, v *vm, sockets ...string) {
	t.Helper()
	ready := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var lines []string
	p := startIn(t, v, serverPy, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
		if l == "ready" {
			once.Do(func() { close(ready) })
		}
	}, sockets...)
	select {
	case <-ready:
	case <-p.done:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("server in %s %v exited: %s", v.name, sockets, strings.Join(lines, " | "))
	case <-time.After(15 * time.Second):
		t.Fatalf("server in %s %v not ready", v.name, sockets)
	}
}

// Probe results.
const (
	OK      = "OK"      // the exchange completed
	Blocked = "TIMEOUT" // no answer at all
	Refused = "REFUSED" // TCP reset, or ICMP port unreachable for UDP
)

const probeTimeout = time.Second

// probe is one kind of exchange between two VMs.
type probe struct {
	from  *vm
	proto string // tcp, udp, ping
	to    *vm
	port  int    // tcp/udp port
	src   string // source address ("": the primary one)
	dst   string // destination address ("": the primary one of to)
	size  int    // udp: datagram size (0: a few bytes)
}

func (p probe) String() string {
	s := fmt.Sprintf("%s → %s %s", p.from.name, p.to.name, p.proto)
	if p.port != 0 {
		s += " " + strconv.Itoa(p.port)
	}
	if p.src != "" {
		s += " from " + p.src
	}
	if p.dst != "" {
		s += " to " + p.dst
	}
	if p.size != 0 {
		s += fmt.Sprintf(" (%d bytes)", p.size)
	}
	return s
}

func (p probe) dstIP() string { return cmp.Or(p.dst, p.to.ip) }

func (p probe) run(ctx context.Context) string {
	if p.proto == "ping" {
		o := lab.PingOpts{Count: 1, Timeout: probeTimeout}
		if p.src != "" {
			o.Source = netip.MustParseAddr(p.src)
		}
		r, err := p.from.Ping(ctx, netip.MustParseAddr(p.dstIP()), o)
		switch {
		case err != nil:
			return "ERR " + err.Error()
		case r.Received == 1:
			return OK
		}
		return Blocked
	}
	argv := []string{"netns", "exec", p.from.Netns(), python, "-c", probePy, p.proto, p.dstIP(), strconv.Itoa(p.port),
		strconv.FormatFloat(probeTimeout.Seconds(), 'f', 3, 64), cmp.Or(p.src, "0.0.0.0"), strconv.Itoa(p.size)}
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	res := strings.TrimSpace(string(out))
	if err != nil {
		return fmt.Sprintf("ERR %v: %s", err, res)
	}
	return res
}

// Helpers naming probes.
func tcp(from, to *vm, port int) probe { return probe{from: from, proto: "tcp", to: to, port: port} }
func udp(from, to *vm, port int) probe { return probe{from: from, proto: "udp", to: to, port: port} }
func ping(from, to *vm) probe          { return probe{from: from, proto: "ping", to: to} }

// expectation is a probe and the result it must give.
type expectation struct {
	probe
	want string
}

func (p probe) is(want string) expectation { return expectation{p, want} }

// settle is how long a change may take to show in the data plane (file
// mode: the controller reloads the policy at once; changes show within
// about a second).
const settle = 15 * time.Second

// expect polls every expectation (concurrently) until each has shown its
// result, within settle; then, with the policy evidently in force, it
// checks all of them once more: a blocked probe must still be blocked, an
// allowed one must still pass (one retry, for a lost packet).
func expect(t *testing.T, what string, exps ...expectation) {
	t.Helper()
	ctx := ctxT(t)
	start := time.Now()
	type result struct {
		last string
		ok   bool
		took time.Duration
	}
	res := make([]result, len(exps))
	var wg sync.WaitGroup
	for i, e := range exps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got := e.run(ctx)
				res[i] = result{got, got == e.want, time.Since(start)}
				if got == e.want || time.Since(start) > settle || ctx.Err() != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	var bad []string
	for i, e := range exps {
		if !res[i].ok {
			bad = append(bad, fmt.Sprintf("%v: want %s, still %s after %v", e.probe, e.want, res[i].last, settle))
		}
	}
	if len(bad) > 0 {
		dumpFlows(t, what)
		t.Fatalf("%s:\n  %s", what, strings.Join(bad, "\n  "))
	}
	took := time.Since(start)
	slowest := 0
	for i := range res {
		if res[i].took > res[slowest].took {
			slowest = i
		}
	}
	slow := fmt.Sprintf("%v: %s after %v", exps[slowest].probe, exps[slowest].want, res[slowest].took.Round(time.Millisecond))
	// Confirmation round.
	for i, e := range exps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tries := 1
			if e.want == OK {
				tries = 2
			}
			for range tries {
				got := e.run(ctx)
				res[i] = result{got, got == e.want, 0}
				if got == e.want {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, e := range exps {
		if !res[i].ok {
			bad = append(bad, fmt.Sprintf("%v: want %s, got %s once the policy was in force", e.probe, e.want, res[i].last))
		}
	}
	if len(bad) > 0 {
		dumpFlows(t, what)
		t.Fatalf("%s:\n  %s", what, strings.Join(bad, "\n  "))
	}
	t.Logf("%s: %d expectations hold (shown within %v; last %s)", what, len(exps), took.Round(time.Millisecond), slow)
}
