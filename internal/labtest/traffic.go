package labtest

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
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

// serverPy listens on every "tcp:PORT", "udp:PORT" and "raw:PROTO" of argv,
// echoes TCP lines and UDP datagrams, answers raw IP packets of protocol
// PROTO carrying "probe..." with "reply...", and prints "ready" once every
// socket is bound.
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
def serve_raw(s):
    while True:
        d, a = s.recvfrom(65535)
        body = d[(d[0] & 15) * 4:]
        if body.startswith(b"probe"):
            s.sendto(b"reply" + body[5:], (a[0], 0))
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
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(port))
        threading.Thread(target=serve_raw, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
`

// probePy makes one exchange: tcp (connect, send a line, read it back),
// udp (connected socket: send a datagram, read the echo), icmpts (an ICMP
// timestamp request, type 13, answered by the kernel) or raw (an IP packet
// of protocol "port" answered by serverPy), from source address src
// (0.0.0.0: the kernel's choice). It prints OK,
// TIMEOUT, REFUSED (a TCP reset, or an ICMP port unreachable for UDP) or
// ERR.
const probePy = `import socket, sys
proto, ip, port, timeout, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
size = int(sys.argv[6])
try:
    if proto == "tcp":
        s = socket.create_connection((ip, port), timeout=timeout, source_address=(src, 0))
        s.sendall(b"probe\n")
        line = s.makefile("rb").readline()
        print("OK" if line == b"probe\n" else "ERR bad echo %r" % line)
    elif proto == "icmpts":
        import os, struct, time
        def csum(b):
            t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
            t = (t >> 16) + (t & 0xffff)
            t += t >> 16
            return ~t & 0xffff
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.bind((src, 0))
        ident = os.getpid() & 0xffff
        body = struct.pack("!HHIII", ident, 1, 0, 0, 0)
        s.sendto(struct.pack("!BBH", 13, 0, csum(struct.pack("!BBH", 13, 0, 0) + body)) + body, (ip, 0))
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError()
            s.settimeout(left)
            d, a = s.recvfrom(65535)
            h = (d[0] & 15) * 4
            if a[0] == ip and d[h] == 14 and struct.unpack("!H", d[h + 4:h + 6])[0] == ident:
                print("OK")
                break
    elif proto == "raw":
        import os, time
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, port)
        s.bind((src, 0))
        nonce = b"%d" % os.getpid()
        s.sendto(b"probe" + nonce, (ip, 0))
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError()
            s.settimeout(left)
            d, a = s.recvfrom(65535)
            if a[0] == ip and d[(d[0] & 15) * 4:] == b"reply" + nonce:
                print("OK")
                break
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

// streamPy keeps one TCP connection: a line every 100 ms; it prints
// "connected", then "echo N" for every line that comes back, and "eof" or
// "error ..." when the connection ends.
const streamPy = `import socket, sys, threading, time
ip, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((ip, port), timeout=5)
except OSError as e:
    print("error connect %s" % e, flush=True)
    sys.exit(1)
s.settimeout(None)
print("connected %d" % s.getsockname()[1], flush=True)
def reader():
    n = 0
    try:
        for line in s.makefile("rb"):
            n += 1
            print("echo %d" % n, flush=True)
        print("eof", flush=True)
    except OSError as e:
        print("error read %s" % e, flush=True)
threading.Thread(target=reader, daemon=True).start()
i = 0
while True:
    i += 1
    try:
        s.sendall(b"line %d\n" % i)
    except OSError as e:
        print("error send %s" % e, flush=True)
        sys.exit(1)
    time.sleep(0.1)
`

// VM is a plugged lab VM with its NIC's primary address as text, the form
// probes, reports and tcpdump lines use.
type VM struct {
	*lab.VM
	Addr string
}

// Endpoint is where servers, probes, streams and captures run: a VM (*VM)
// or the lab's internet (*lab.Internet, from Lab.Internet). Probes to an
// endpoint go to its primary address (a VM's Addr; the internet's address
// on the uplink network) unless At says otherwise.
type Endpoint interface {
	Name() string
	Netns() string
	IP() netip.Addr
	Exec(ctx context.Context, argv ...string) (string, error)
	Ping(ctx context.Context, dst netip.Addr, o lab.PingOpts) (lab.PingResult, error)
	Capture(ctx context.Context, filter string) (*lab.Capture, error)
}

var (
	_ Endpoint = (*VM)(nil)
	_ Endpoint = (*lab.Internet)(nil)
)

// addrOf is an endpoint's primary address as text.
func addrOf(e Endpoint) string {
	if v, ok := e.(*VM); ok {
		return v.Addr
	}
	return e.IP().String()
}

// proc is a background process in an endpoint's namespace, killed by its
// PID when the test ends.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startIn starts a python script in the endpoint and calls onLine for
// every line it prints; it is killed (by PID) at the end of the test.
func startIn(t testing.TB, v Endpoint, script string, onLine func(string), args ...string) *proc {
	t.Helper()
	argv := append([]string{"netns", "exec", v.Netns(), python, "-u", "-c", script}, args...)
	cmd := exec.Command("ip", argv...) // ip netns exec execs python: same PID
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	Must(t, err)
	cmd.Stderr = cmd.Stdout
	Must(t, cmd.Start())
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

// Serve starts an echo server in the endpoint on the given "tcp:N", "udp:N" and
// "raw:PROTO" sockets and waits until they are bound, so that a probe's
// result says what the network did, not that the server was late.
func Serve(t testing.TB, v Endpoint, sockets ...string) {
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
		t.Fatalf("server in %s %v exited: %s", v.Name(), sockets, strings.Join(lines, " | "))
	case <-time.After(15 * time.Second):
		t.Fatalf("server in %s %v not ready", v.Name(), sockets)
	}
}

// Probe results, as probePy prints them.
const (
	ok      = "OK"      // the exchange completed
	blocked = "TIMEOUT" // no answer at all
	refused = "REFUSED" // TCP reset, or ICMP port unreachable for UDP
)

const probeTimeout = time.Second

// Probe is one kind of exchange between two endpoints (VMs, or a VM and
// the internet); its OK, Blocked and Refused make the expectations Expect
// checks.
type Probe struct {
	from  Endpoint
	proto string // tcp, udp, ping, icmpts, raw
	to    Endpoint
	port  int    // port, or IP protocol for raw
	src   string // source address ("": the primary one)
	dst   string // destination address ("": the primary one of to)
	size  int    // udp: datagram size (0: a few bytes)
}

func (p Probe) String() string {
	s := fmt.Sprintf("%s → %s %s", p.from.Name(), p.to.Name(), p.proto)
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

// At returns the probe sent to another of the destination's addresses.
func (p Probe) At(dst string) Probe { p.dst = dst; return p }

// Via returns the probe sent from another of the sender's addresses.
func (p Probe) Via(src string) Probe { p.src = src; return p }

// Bytes returns the probe with a datagram of n bytes (udp).
func (p Probe) Bytes(n int) Probe { p.size = n; return p }

func (p Probe) dstIP() string { return cmp.Or(p.dst, addrOf(p.to)) }

func (p Probe) run(ctx context.Context) string {
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
			return ok
		}
		return blocked
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

// TCP connects, sends a line and reads it back.
func TCP(from, to Endpoint, port int) Probe {
	return Probe{from: from, proto: "tcp", to: to, port: port}
}

// UDP sends a datagram from a connected socket and reads the echo.
func UDP(from, to Endpoint, port int) Probe {
	return Probe{from: from, proto: "udp", to: to, port: port}
}

// Ping is one ICMP echo.
func Ping(from, to Endpoint) Probe { return Probe{from: from, proto: "ping", to: to} }

// ICMPTimestamp is an ICMP exchange other than echo (type 13 → 14).
func ICMPTimestamp(from, to Endpoint) Probe { return Probe{from: from, proto: "icmpts", to: to} }

// RawIP is an exchange of IP packets of protocol proto (neither TCP, UDP
// nor ICMP; conntrack tracks it generically) with a server on "raw:PROTO".
func RawIP(from, to Endpoint, proto int) Probe {
	return Probe{from: from, proto: "raw", to: to, port: proto}
}

// Expectation is a probe and the result it must give.
type Expectation struct {
	Probe
	want string
}

// OK expects the exchange to complete.
func (p Probe) OK() Expectation { return Expectation{p, ok} }

// Blocked expects no answer at all.
func (p Probe) Blocked() Expectation { return Expectation{p, blocked} }

// Refused expects a TCP reset, or an ICMP port unreachable for UDP.
func (p Probe) Refused() Expectation { return Expectation{p, refused} }

// Expect polls every expectation (concurrently) until each has shown its
// result, within the lab's Settle; then, with the policy evidently in
// force, it checks all of them once more: a blocked probe must still be
// blocked, an allowed one must still pass (one retry, for a lost packet).
// A failure dumps the flows first.
func (l *Lab) Expect(t testing.TB, what string, exps ...Expectation) {
	t.Helper()
	ctx := Ctx(t)
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
				if got == e.want || time.Since(start) > l.Settle || ctx.Err() != nil {
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
			bad = append(bad, fmt.Sprintf("%v: want %s, still %s after %v", e.Probe, e.want, res[i].last, l.Settle))
		}
	}
	if len(bad) > 0 {
		l.Dump(t, what)
		t.Fatalf("%s:\n  %s", what, strings.Join(bad, "\n  "))
	}
	took := time.Since(start)
	slowest := 0
	for i := range res {
		if res[i].took > res[slowest].took {
			slowest = i
		}
	}
	slow := fmt.Sprintf("%v: %s after %v", exps[slowest].Probe, exps[slowest].want, res[slowest].took.Round(time.Millisecond))
	// Confirmation round.
	for i, e := range exps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tries := 1
			if e.want == ok {
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
			bad = append(bad, fmt.Sprintf("%v: want %s, got %s once the policy was in force", e.Probe, e.want, res[i].last))
		}
	}
	if len(bad) > 0 {
		l.Dump(t, what)
		t.Fatalf("%s:\n  %s", what, strings.Join(bad, "\n  "))
	}
	t.Logf("%s: %d expectations hold (shown within %v; last %s)", what, len(exps), took.Round(time.Millisecond), slow)
}

// Stream is a long-lived TCP connection sending a line every 100 ms, to
// show whether an established connection survives a change.
type Stream struct {
	Name string
	l    *Lab
	mu   sync.Mutex
	n    int    // lines echoed back so far
	end  string // "eof" or "error ..." once the connection ended
	p    *proc
}

// OpenStream connects from one endpoint to a TCP echo server in another
// (at its primary address) and waits until lines come back; the
// connection ends with the test, or at Close.
func (l *Lab) OpenStream(t testing.TB, from, to Endpoint, port int) *Stream {
	t.Helper()
	s := &Stream{Name: fmt.Sprintf("stream %s → %s tcp %d", from.Name(), to.Name(), port), l: l}
	s.p = startIn(t, from, streamPy, func(line string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case strings.HasPrefix(line, "echo "):
			s.n, _ = strconv.Atoi(strings.TrimPrefix(line, "echo "))
		case line == "eof" || strings.HasPrefix(line, "error"):
			if s.end == "" {
				s.end = line
			}
		}
	}, addrOf(to), strconv.Itoa(port))
	s.WaitMore(t, 0, 5)
	return s
}

// State returns the lines echoed so far and how the connection ended ("":
// it has not).
func (s *Stream) State() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.end
}

// WaitMore waits until at least more lines beyond from have come back,
// within the lab's Settle; the connection must not end meanwhile.
func (s *Stream) WaitMore(t testing.TB, from, more int) int {
	t.Helper()
	deadline := time.Now().Add(s.l.Settle)
	for {
		n, end := s.State()
		if end != "" {
			s.l.Dump(t, s.Name+" ended")
			t.Fatalf("%s ended after %d echoed lines: %s", s.Name, n, end)
		}
		if n >= from+more {
			return n
		}
		if time.Now().After(deadline) {
			s.l.Dump(t, s.Name+" stalled")
			t.Fatalf("%s stalled: %d lines echoed, want %d within %v", s.Name, n, from+more, s.l.Settle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close kills the stream's client.
func (s *Stream) Close() { s.p.stop() }

// TTLs pings n times and returns the TTLs of the replies (all must come):
// how many routers a path crossed.
func TTLs(t testing.TB, from Endpoint, to string, n int) []int {
	t.Helper()
	r, err := from.Ping(Ctx(t), netip.MustParseAddr(to), lab.PingOpts{Count: n, Interval: 100 * time.Millisecond, Timeout: 2 * time.Second})
	Must(t, err)
	if r.Received != n || len(r.TTLs) != n {
		t.Fatalf("%s → %s: %d of %d replies (TTLs %v)", from.Name(), to, r.Received, n, r.TTLs)
	}
	return r.TTLs
}

// AllAre says whether vs is not empty and every one is want.
func AllAre(vs []int, want int) bool {
	return len(vs) > 0 && !slices.ContainsFunc(vs, func(v int) bool { return v != want })
}
