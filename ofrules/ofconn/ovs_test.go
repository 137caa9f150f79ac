package ofconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/internal/flowtest"
)

// recorder is a Handler (and PacketInHandler) that forwards events to
// channels. Packet-ins that nobody reads are dropped.
type recorder struct {
	connected    chan *Switch
	disconnected chan *Switch
	pins         chan recordedPacketIn
}

type recordedPacketIn struct {
	sw *Switch
	pi PacketIn
}

func newRecorder() *recorder {
	return &recorder{connected: make(chan *Switch, 64), disconnected: make(chan *Switch, 64),
		pins: make(chan recordedPacketIn, 64)}
}

func (r *recorder) Connected(sw *Switch)    { r.connected <- sw }
func (r *recorder) Disconnected(sw *Switch) { r.disconnected <- sw }

func (r *recorder) PacketIn(sw *Switch, pi PacketIn) {
	select {
	case r.pins <- recordedPacketIn{sw, pi}:
	default:
	}
}

// waitPacketIn returns the next packet-in from sw (others are skipped).
func (r *recorder) waitPacketIn(t testing.TB, sw *Switch, d time.Duration) PacketIn {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case p := <-r.pins:
			if p.sw == sw {
				return p.pi
			}
		case <-timeout:
			t.Fatalf("no packet-in within %v", d)
			return PacketIn{}
		}
	}
}

func (r *recorder) waitConnected(t testing.TB, d time.Duration) *Switch {
	t.Helper()
	select {
	case sw := <-r.connected:
		return sw
	case <-time.After(d):
		t.Fatalf("no switch connected within %v", d)
		return nil
	}
}

func (r *recorder) waitDisconnected(t testing.TB, d time.Duration) *Switch {
	t.Helper()
	select {
	case sw := <-r.disconnected:
		return sw
	case <-time.After(d):
		t.Fatalf("no switch disconnected within %v", d)
		return nil
	}
}

// ovsEnv is a private OVS in a fresh netns with one bridge whose controller
// target is our listener.
type ovsEnv struct {
	ovs    *ovsproc.OVS
	bridge string
	dpid   uint64
	rec    *recorder
	target string
}

const testDPID = 0x00000000c0ffee01

// needOVS skips unless we can run a private OVS (root, binaries present).
func needOVS(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real-OVS tests need root")
	}
	for _, b := range []string{"ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("real-OVS tests need %s", b)
		}
	}
}

// startOVS starts everything and registers cleanups (also run on failure
// or panic). kind is "unix" or "tcp".
func startOVS(t testing.TB, kind string, cfg Config) *ovsEnv {
	t.Helper()
	needOVS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	pid := os.Getpid()
	dir, err := os.MkdirTemp("", fmt.Sprintf("ofc%d-", pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := fmt.Sprintf("ofconn-%d-%s", pid, filepath.Base(dir)[len(fmt.Sprintf("ofc%d-", pid)):])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v %s", ns, err, out)
	}
	o, err := ovsproc.Start(ctx, ovsproc.Config{Dir: dir, Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.log")); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("ovs-vswitchd.log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
		// A test may leave vswitchd stopped (SIGSTOP): continue it first.
		if pid, err := vswitchdPID(dir); err == nil {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		if err := o.Stop(); err != nil {
			t.Logf("stop OVS: %v", err)
		}
	})

	var ln net.Listener
	var target string
	switch kind {
	case "unix":
		sock := filepath.Join(dir, "of.sock")
		ln, err = net.Listen("unix", sock)
		target = "unix:" + sock
	case "tcp":
		// Inside the netns: OVS must reach it there. Listen on the netns's
		// loopback by entering it for the listen call only.
		ln, err = listenInNetns(ns, "tcp", "127.0.0.1:0")
		if err == nil {
			target = "tcp:" + ln.Addr().String()
		}
	default:
		t.Fatalf("unknown listener kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	env := &ovsEnv{ovs: o, bridge: "brof", dpid: testDPID, rec: newRecorder(), target: target}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.DebugLevel)
		l.SetOutput(testWriter{t})
		cfg.Log = l
	}
	sctx, scancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(sctx, ln, cfg, env.rec) }()
	t.Cleanup(func() {
		scancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})

	if _, err := o.Vsctl(ctx, "add-br", env.bridge,
		"--", "set", "bridge", env.bridge, "datapath_type=netdev", "fail_mode=secure",
		"protocols=OpenFlow13,OpenFlow15", fmt.Sprintf("other_config:datapath-id=%016x", env.dpid),
		"--", "--id=@c", "create", "Controller", "target=\""+target+"\"", "max_backoff=1000", "connection_mode=out-of-band",
		"--", "set", "bridge", env.bridge, "controller=@c"); err != nil {
		t.Fatal(err)
	}
	return env
}

// listenInNetns opens a listener inside network namespace ns by running
// the listen call on a locked OS thread switched into it.
func listenInNetns(ns, network, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it exits with the goroutine, so the
		// namespace switch cannot leak to other goroutines.
		lockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := setns(int(f.Fd())); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		ln, err := net.Listen(network, addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}

func vswitchdPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testCookies puts every catalogue flow in one cookie space.
const (
	catCookie   = 0xca00000000000000
	cookieSpace = 0xff00000000000000
)

func catalogue() []ofrules.Flow {
	fs := flowtest.Catalogue()
	for i := range fs {
		fs[i].Cookie = catCookie | fs[i].Cookie&^cookieSpace
	}
	return fs
}

func adds(fs []ofrules.Flow) []ofrules.FlowMod {
	out := make([]ofrules.FlowMod, len(fs))
	for i, f := range fs {
		out[i] = ofrules.FlowMod{Op: ofrules.OpAdd, Flow: f}
	}
	return out
}

func texts(fs []ofrules.Flow) []string {
	out := make([]string, len(fs))
	for i := range fs {
		out[i] = fs[i].Text(nil)
	}
	sort.Strings(out)
	return out
}

// sameFlows compares two flow lists by text and by Key (which compares
// the match's values and masks exactly).
func sameFlows(t *testing.T, want, got []ofrules.Flow) {
	t.Helper()
	wt, gt := texts(want), texts(got)
	if !reflect.DeepEqual(wt, gt) {
		t.Errorf("flows differ: want %d, got %d", len(wt), len(gt))
		w := map[string]bool{}
		for _, s := range wt {
			w[s] = true
		}
		g := map[string]bool{}
		for _, s := range gt {
			g[s] = true
		}
		for _, s := range wt {
			if !g[s] {
				t.Errorf("missing: %s", s)
			}
		}
		for _, s := range gt {
			if !w[s] {
				t.Errorf("extra:   %s", s)
			}
		}
		return
	}
	keys := map[ofrules.Key]bool{}
	for i := range want {
		keys[want[i].Key()] = true
	}
	for i := range got {
		if !keys[got[i].Key()] {
			t.Errorf("decoded match differs in value/mask from the encoded one: %s (%+v)", got[i].Text(nil), got[i].Match)
		}
	}
}

func ofctlCount(t *testing.T, env *ovsEnv, cookie, mask uint64) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := env.ovs.Ofctl(ctx, "dump-flows", env.bridge, fmt.Sprintf("cookie=%#x/%#x", cookie, mask))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(out, "cookie=")
}

func TestOVS(t *testing.T) {
	env := startOVS(t, "unix", Config{EchoInterval: 500 * time.Millisecond, EchoTimeout: 3 * time.Second})
	sw := env.rec.waitConnected(t, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("Connected", func(t *testing.T) {
		if sw.DPID() != env.dpid {
			t.Fatalf("dpid %#x, want %#x", sw.DPID(), env.dpid)
		}
		if sw.NumTables() < 200 {
			t.Errorf("n_tables %d", sw.NumTables())
		}
		if err := sw.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		// We install nothing of our own.
		fs, err := sw.DumpFlows(ctx, 0, 0)
		if err != nil || len(fs) != 0 {
			t.Fatalf("fresh bridge: %d flows, %v", len(fs), err)
		}
	})

	t.Run("CatalogueRoundTrip", func(t *testing.T) {
		want := catalogue()
		if err := sw.Bundle(ctx, adds(want)); err != nil {
			t.Fatal(err)
		}
		got, err := sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		sameFlows(t, want, got)
		if n := ofctlCount(t, env, catCookie, cookieSpace); n != len(want) {
			t.Errorf("ovs-ofctl dump-flows sees %d flows, want %d", n, len(want))
		}
	})

	t.Run("FlowStats", func(t *testing.T) {
		testFlowStats(ctx, t, env, sw)
	})

	t.Run("InvalidFlowAbortsBundle", func(t *testing.T) {
		before, err := sw.DumpFlows(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		bad := ofrules.Flow{Table: 40, Priority: 7, Cookie: 0xcb00000000000002, Actions: []ofrules.Action{ofrules.Goto{Table: 10}}}
		mods := []ofrules.FlowMod{
			{Op: ofrules.OpDeleteCookie, Flow: ofrules.Flow{Cookie: catCookie}, CookieMask: cookieSpace},
			{Op: ofrules.OpAdd, Flow: ofrules.Flow{Table: 40, Priority: 5, Cookie: 0xcb00000000000001}},
			{Op: ofrules.OpAdd, Flow: bad},
			{Op: ofrules.OpAdd, Flow: ofrules.Flow{Table: 41, Priority: 5, Cookie: 0xcb00000000000003}},
		}
		err = sw.Bundle(ctx, mods)
		var be *BundleError
		if !errors.As(err, &be) {
			t.Fatalf("want *BundleError, got %v", err)
		}
		t.Logf("bundle error: %v", err)
		if len(be.Mods) != 1 || be.Mods[0].Index != 2 || be.Mods[0].Err.Name() != "OFPBIC_BAD_TABLE_ID" {
			t.Errorf("error does not name flow-mod #2 with OFPBIC_BAD_TABLE_ID: %+v", be.Mods)
		}
		if !strings.Contains(err.Error(), bad.Text(nil)) {
			t.Errorf("error %q does not contain %q", err, bad.Text(nil))
		}
		after, err := sw.DumpFlows(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameFlows(t, before, after)
		// The connection is still usable.
		if err := sw.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("EncodeErrorSendsNothing", func(t *testing.T) {
		err := sw.Bundle(ctx, []ofrules.FlowMod{{Op: ofrules.OpAdd, Flow: ofrules.Flow{
			Match: ofrules.NewMatch(ofrules.Exact(ofrules.IPv4Dst, 1))}}})
		if err == nil || !strings.Contains(err.Error(), "needs dl_type") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("ReplaceByCookie", func(t *testing.T) {
		other := ofrules.Flow{Table: 200, Priority: 1, Cookie: 0xdd00000000000001}
		if err := sw.Bundle(ctx, adds([]ofrules.Flow{other})); err != nil {
			t.Fatal(err)
		}
		set2 := flowtest.Many(1000, catCookie|0x10000)
		mods := append([]ofrules.FlowMod{{Op: ofrules.OpDeleteCookie, Flow: ofrules.Flow{Cookie: catCookie}, CookieMask: cookieSpace}}, adds(set2)...)
		if err := sw.Bundle(ctx, mods); err != nil {
			t.Fatal(err)
		}
		got, err := sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		sameFlows(t, set2, got)
		rest, err := sw.DumpFlows(ctx, 0xdd00000000000000, cookieSpace)
		if err != nil || len(rest) != 1 || rest[0].Text(nil) != other.Text(nil) {
			t.Fatalf("other cookie space touched: %v %v", rest, err)
		}
		// Modify-strict and delete-strict of single flows.
		mod := set2[0]
		mod.Actions = []ofrules.Action{ofrules.Output{Port: 9}}
		if err := sw.Bundle(ctx, []ofrules.FlowMod{{Op: ofrules.OpModifyStrict, Flow: mod}, {Op: ofrules.OpDeleteStrict, Flow: set2[1]}}); err != nil {
			t.Fatal(err)
		}
		got, err = sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]ofrules.Flow{mod}, set2[2:]...)
		sameFlows(t, want, got)
	})

	t.Run("Bundle20k", func(t *testing.T) {
		flows := flowtest.Many(20000, catCookie|0x20000)
		mods := append([]ofrules.FlowMod{{Op: ofrules.OpDeleteCookie, Flow: ofrules.Flow{Cookie: catCookie}, CookieMask: cookieSpace}}, adds(flows)...)
		start := time.Now()
		if err := sw.Bundle(ctx, mods); err != nil {
			t.Fatal(err)
		}
		t.Logf("20k-flow bundle: %v", time.Since(start))
		start = time.Now()
		got, err := sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("20k-flow dump: %v", time.Since(start))
		sameFlows(t, flows, got)
		if n := ofctlCount(t, env, catCookie, cookieSpace); n != len(flows) {
			t.Errorf("ovs-ofctl dump-flows sees %d flows, want %d", n, len(flows))
		}
	})

	t.Run("WatchdogDisconnectsStoppedSwitch", func(t *testing.T) {
		pid, err := vswitchdPID(env.ovs.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		continued := false
		cont := func() {
			if !continued {
				continued = true
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		defer cont()
		start := time.Now()
		gone := env.rec.waitDisconnected(t, 15*time.Second)
		if gone != sw {
			t.Fatalf("a different switch disconnected")
		}
		t.Logf("disconnected %v after SIGSTOP: %v", time.Since(start), gone.Err())
		if !strings.Contains(fmt.Sprint(gone.Err()), "echo") {
			t.Errorf("disconnect reason %v", gone.Err())
		}
		if err := sw.Barrier(ctx); err == nil {
			t.Errorf("barrier on a closed switch succeeded")
		}
		cont()
		sw = env.rec.waitConnected(t, 30*time.Second)
		if sw.DPID() != env.dpid {
			t.Fatalf("reconnected with dpid %#x", sw.DPID())
		}
		// fail_mode=secure keeps the flows while the controller is away.
		got, err := sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil || len(got) != 20000 {
			t.Fatalf("after reconnect: %d flows, %v", len(got), err)
		}
	})

	t.Run("ReconnectAfterVswitchdRestart", func(t *testing.T) {
		if err := env.ovs.StopVswitchd(); err != nil {
			t.Fatal(err)
		}
		gone := env.rec.waitDisconnected(t, 15*time.Second)
		t.Logf("disconnected: %v", gone.Err())
		if err := env.ovs.StartVswitchd(ctx); err != nil {
			t.Fatal(err)
		}
		sw = env.rec.waitConnected(t, 30*time.Second)
		if sw.DPID() != env.dpid {
			t.Fatalf("reconnected with dpid %#x", sw.DPID())
		}
		// A restart loses every flow: the controller must reinstall.
		got, err := sw.DumpFlows(ctx, 0, 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("after restart: %d flows, %v", len(got), err)
		}
		want := catalogue()
		if err := sw.Bundle(ctx, adds(want)); err != nil {
			t.Fatal(err)
		}
		got, err = sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		sameFlows(t, want, got)
	})

	t.Run("CloseAndReconnect", func(t *testing.T) {
		old := sw
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		<-old.Done()
		env.rec.waitDisconnected(t, 5*time.Second)
		sw = env.rec.waitConnected(t, 30*time.Second)
		if err := old.Barrier(ctx); err == nil {
			t.Error("closed switch still answers")
		}
		if err := sw.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// testFlowStats checks the counters DumpFlows reads against ovs-ofctl's
// after packets went through a flow: packet-outs whose actions resubmit
// into the flow's table credit it (ofproto/trace would not).
func testFlowStats(ctx context.Context, t *testing.T, env *ovsEnv, sw *Switch) {
	const (
		statsCookie = 0xcc00000000000001
		statsTable  = 60
	)
	f := ofrules.Flow{Table: statsTable, Priority: 100, Cookie: statsCookie,
		Match: ofrules.NewMatch(ofrules.Exact(ofrules.EthType, ofrules.EthTypeIPv4))}
	if err := sw.Bundle(ctx, adds([]ofrules.Flow{f})); err != nil {
		t.Fatal(err)
	}
	defer func() {
		del := ofrules.FlowMod{Op: ofrules.OpDeleteCookie, Flow: ofrules.Flow{Cookie: statsCookie}, CookieMask: cookieSpace}
		if err := sw.Bundle(ctx, []ofrules.FlowMod{del}); err != nil {
			t.Errorf("delete the stats flow: %v", err)
		}
	}()
	dump := func() *ofrules.Flow {
		t.Helper()
		got, err := sw.DumpFlows(ctx, statsCookie, cookieSpace)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Text(nil) != f.Text(nil) {
			t.Fatalf("dump: %v", texts(got))
		}
		if got[0].Stats == nil {
			t.Fatalf("no stats for %s", got[0].Text(nil))
		}
		return &got[0]
	}

	// A new flow: zero counters, a duration and an idle age.
	st := dump().Stats
	t.Logf("fresh flow: %+v", *st)
	if st.Packets != 0 || st.Bytes != 0 || st.Duration < 0 || st.Duration > time.Minute || st.IdleAge < 0 || st.IdleAge > time.Minute {
		t.Errorf("fresh flow stats %+v", *st)
	}

	// 60-byte IPv4 frames.
	frame := "0200000000020200000000010800" + "45000014000100004011" + "0000" + "0a0000010a000002" + strings.Repeat("00", 26)
	const n, size = 3, 60
	for i := 0; i < n; i++ {
		if out, err := env.ovs.Ofctl(ctx, "packet-out", env.bridge,
			fmt.Sprintf("in_port=CONTROLLER packet=%s actions=resubmit(,%d)", frame, statsTable)); err != nil {
			t.Fatalf("packet-out: %v %s", err, out)
		}
	}
	var fl *ofrules.Flow
	for deadline := time.Now().Add(10 * time.Second); ; {
		fl = dump()
		if fl.Stats.Packets >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fl.Stats.Packets != n || fl.Stats.Bytes != n*size {
		t.Errorf("after %d packet-outs: %+v", n, *fl.Stats)
	}

	// ovs-ofctl dump-flows sees the same counters and prints the same
	// fields in the same order (durations and ages move between the two
	// dumps; ovs-ofctl says "ip" for dl_type=0x800).
	ours := fl.TextWithStats(nil)
	out, err := env.ovs.Ofctl(ctx, "dump-flows", env.bridge, fmt.Sprintf("cookie=%#x/-1", uint64(statsCookie)))
	if err != nil {
		t.Fatal(err)
	}
	var theirs string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "cookie=") {
			theirs = strings.TrimSpace(l)
		}
	}
	t.Logf("ours:   %s\ntheirs: %s", ours, theirs)
	wantCounters := fmt.Sprintf(" n_packets=%d, n_bytes=%d,", n, n*size)
	if !strings.Contains(ours, wantCounters) || !strings.Contains(theirs, wantCounters) {
		t.Errorf("counters differ from%s:\nours:   %s\ntheirs: %s", wantCounters, ours, theirs)
	}
	norm := func(s string) string {
		s = regexp.MustCompile(`duration=[0-9.]+s`).ReplaceAllString(s, "duration=*")
		s = regexp.MustCompile(`idle_age=[0-9]+`).ReplaceAllString(s, "idle_age=*")
		return strings.Replace(s, ",dl_type=0x800 ", ",ip ", 1)
	}
	if norm(ours) != norm(theirs) {
		t.Errorf("ovs-ofctl prints the flow differently:\nours:   %s\ntheirs: %s", ours, theirs)
	}
	if !regexp.MustCompile(`^cookie=0xcc00000000000001, duration=\d+(\.\d+)?s, table=60, n_packets=3, n_bytes=180, idle_age=\d+, priority=100,dl_type=0x800 actions=drop$`).MatchString(ours) {
		t.Errorf("TextWithStats: %s", ours)
	}
	if fl.Text(nil) != f.Text(nil) {
		t.Errorf("Text with stats: %s", fl.Text(nil))
	}
}

// TestOVSTCPTarget checks an active tcp: controller target inside the netns.
func TestOVSTCPTarget(t *testing.T) {
	env := startOVS(t, "tcp", Config{})
	sw := env.rec.waitConnected(t, 30*time.Second)
	if sw.DPID() != env.dpid {
		t.Fatalf("dpid %#x", sw.DPID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := catalogue()
	if err := sw.Bundle(ctx, adds(want)); err != nil {
		t.Fatal(err)
	}
	got, err := sw.DumpFlows(ctx, catCookie, cookieSpace)
	if err != nil {
		t.Fatal(err)
	}
	sameFlows(t, want, got)
}

// BenchmarkBundle100kOVS reports how long a 100k-flow replace bundle takes
// on a real (userspace) OVS, and a full dump of it.
func BenchmarkBundle100kOVS(b *testing.B) {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	env := startOVS(b, "unix", Config{Log: l})
	sw := env.rec.waitConnected(b, 30*time.Second)
	ctx := context.Background()
	flows := flowtest.Many(100000, catCookie)
	mods := append([]ofrules.FlowMod{{Op: ofrules.OpDeleteCookie, Flow: ofrules.Flow{Cookie: catCookie}, CookieMask: cookieSpace}}, adds(flows)...)
	var dump time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sw.Bundle(ctx, mods); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		start := time.Now()
		got, err := sw.DumpFlows(ctx, catCookie, cookieSpace)
		if err != nil || len(got) != len(flows) {
			b.Fatalf("dump: %d flows, %v", len(got), err)
		}
		dump += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(dump.Milliseconds())/float64(b.N), "dump-ms/op")
}

func lockOSThread() { runtime.LockOSThread() }

func setns(fd int) error {
	return unix.Setns(fd, unix.CLONE_NEWNET)
}

// TestOVSPacketInOut sends ARP frames with PacketOut and receives them back
// as packet-ins from flows with a controller action: through two patch
// ports peered with each other (out of pb, in on pa), and from the kernel
// through an internal port (the path of ARP replies from the wire).
func TestOVSPacketInOut(t *testing.T) {
	env := startOVS(t, "unix", Config{})
	sw := env.rec.waitConnected(t, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const (
		portA, portB, portK = 11, 12, 13
		pinCookie           = 0x0e00000000000001
		kernCookie          = 0x0e00000000000002
		shortCookie         = 0x0e00000000000003
	)
	if _, err := env.ovs.Vsctl(ctx,
		"add-port", env.bridge, "pa", "--", "set", "interface", "pa", "type=patch", "options:peer=pb", fmt.Sprintf("ofport_request=%d", portA),
		"--", "add-port", env.bridge, "pb", "--", "set", "interface", "pb", "type=patch", "options:peer=pa", fmt.Sprintf("ofport_request=%d", portB),
		"--", "add-port", env.bridge, "pk", "--", "set", "interface", "pk", "type=internal", fmt.Sprintf("ofport_request=%d", portK)); err != nil {
		t.Fatal(err)
	}
	arp := func(in uint32, table uint8, cookie uint64) ofrules.Flow {
		return ofrules.Flow{Table: table, Priority: 100, Cookie: cookie,
			Match:   ofrules.NewMatch(ofrules.Exact(ofrules.InPort, uint64(in)), ofrules.Exact(ofrules.EthType, ofrules.EthTypeARP)),
			Actions: []ofrules.Action{ofrules.Controller{MaxLen: 1500}}}
	}
	flows := []ofrules.Flow{
		arp(portA, 0, pinCookie),
		// Through another table, to see the table id.
		{Table: 0, Priority: 100, Cookie: kernCookie, Match: ofrules.NewMatch(ofrules.Exact(ofrules.InPort, portK)),
			Actions: []ofrules.Action{ofrules.Goto{Table: 7}}},
		arp(portK, 7, kernCookie),
		// ARP replies on pa, asking for the first 20 bytes only.
		{Table: 0, Priority: 200, Cookie: shortCookie,
			Match: ofrules.NewMatch(ofrules.Exact(ofrules.InPort, portA), ofrules.Exact(ofrules.EthType, ofrules.EthTypeARP),
				ofrules.Exact(ofrules.ArpOp, 2)),
			Actions: []ofrules.Action{ofrules.Controller{MaxLen: 20}}},
	}
	if err := sw.Bundle(ctx, adds(flows)); err != nil {
		t.Fatal(err)
	}

	// An IPv4 frame out of pb comes in on pa but matches no flow: no
	// packet-in (a table miss drops in OpenFlow 1.3+). PacketOut returns
	// after its barrier, so the next packet-in is the ARP's.
	ipv4 := hexBytes(t, "ffffffffffff 020b00000001 0800 45000014000100004011 0000 0a4200010a420002"+strings.Repeat("00", 26))
	if err := sw.PacketOut(ctx, 0, portB, ipv4); err != nil {
		t.Fatal(err)
	}
	req := arpFrame(1, testMAC1, testIP1, [6]byte{}, testIP2)
	if err := sw.PacketOut(ctx, 0, portB, req); err != nil {
		t.Fatal(err)
	}
	pi := env.rec.waitPacketIn(t, sw, 10*time.Second)
	t.Logf("packet-in via patch ports: %+v", pi)
	if pi.InPort != portA || pi.TableID != 0 || pi.Cookie != pinCookie || pi.TotalLen != uint16(len(req)) || !bytes.Equal(pi.Data, req) {
		t.Errorf("packet-in %+v\nwant in_port %d, table 0, cookie %#x, data %x", pi, portA, uint64(pinCookie), req)
	}
	// OVS reports output:CONTROLLER reached while executing a packet-out
	// as OFPR_PACKET_OUT, even behind a patch port.
	if pi.Reason != ReasonPacketOut && pi.Reason != ReasonApplyAction {
		t.Errorf("reason %d", pi.Reason)
	}

	// The controller action's max_len would truncate the frame, but OVS
	// 3.1 sends the whole frame anyway (it no longer buffers packets).
	reply := arpFrame(2, testMAC1, testIP1, [6]byte{2, 0, 0, 0, 0, 9}, testIP2)
	if err := sw.PacketOut(ctx, 0, portB, reply); err != nil {
		t.Fatal(err)
	}
	pi = env.rec.waitPacketIn(t, sw, 10*time.Second)
	t.Logf("packet-in for controller max_len=20: %d of %d bytes", len(pi.Data), pi.TotalLen)
	if pi.InPort != portA || pi.Cookie != shortCookie || pi.TotalLen != uint16(len(reply)) || len(pi.Data) < 20 ||
		!bytes.Equal(pi.Data, reply[:len(pi.Data)]) {
		t.Errorf("packet-in %+v", pi)
	}

	// Frames from the kernel: it sends ARP requests out of pk when asked
	// to reach a neighbour. These are OFPR_APPLY_ACTION packet-ins with
	// OVS's default asynchronous configuration.
	ns := env.ovs.Netns()
	for _, args := range [][]string{
		{"ip", "link", "set", "pk", "address", "02:0b:00:00:00:0d", "up"},
		{"ip", "addr", "add", "10.67.0.1/24", "dev", "pk"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		_ = exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "10.67.0.2").Run()
	}()
	defer func() { <-pinged }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		pi = env.rec.waitPacketIn(t, sw, time.Until(deadline))
		// The kernel may also send IPv6 neighbour discovery; only the ARP
		// for 10.67.0.2 is ours.
		if len(pi.Data) >= 42 && bytes.Equal(pi.Data[12:14], []byte{8, 6}) && bytes.Equal(pi.Data[38:42], []byte{10, 67, 0, 2}) {
			break
		}
		t.Logf("other packet-in: %+v", pi)
	}
	t.Logf("packet-in from the kernel: %+v", pi)
	if pi.InPort != portK || pi.TableID != 7 || pi.Cookie != kernCookie || pi.Reason != ReasonApplyAction ||
		!bytes.Equal(pi.Data[6:12], []byte{2, 0xb, 0, 0, 0, 0xd}) || !bytes.Equal(pi.Data[28:32], []byte{10, 67, 0, 1}) ||
		int(pi.TotalLen) != len(pi.Data) {
		t.Errorf("kernel ARP packet-in %+v", pi)
	}

	// Errors from the switch are returned (OVS silently drops output to
	// port 0 or to a port that does not exist).
	var ofe *OFError
	for _, c := range []struct{ in, out uint32 }{{0xffffff00, portB}, {0, 0xffffffff}} {
		err := sw.PacketOut(ctx, c.in, c.out, req)
		t.Logf("packet-out in_port %#x out %#x: %v", c.in, c.out, err)
		if !errors.As(err, &ofe) {
			t.Errorf("packet-out in_port %#x out %#x: want *OFError, got %v", c.in, c.out, err)
		}
	}
	// The connection is still usable, and nothing was dropped.
	if err := sw.PacketOut(ctx, portA, portB, req); err != nil {
		t.Fatal(err)
	}
	if pi := env.rec.waitPacketIn(t, sw, 10*time.Second); pi.InPort != portA || !bytes.Equal(pi.Data, req) {
		t.Errorf("packet-in %+v", pi)
	}
	if d := sw.PacketInsDropped(); d != 0 {
		t.Errorf("%d packet-ins dropped", d)
	}
}
