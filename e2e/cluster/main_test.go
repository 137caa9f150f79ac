// Package cluster runs the controller as a daemon process of the openvpc
// binary (built once by TestMain) and checks what only a real process can
// show: a SIGKILL in the middle of a large apply leaves all of it or none of
// it in the store; the controller runs on an external 3-member etcd cluster
// and survives losing a member and a restart; the API serves TLS to the Go
// client and the CLI. Needs root (network namespaces, OVS).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// bin is the openvpc binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "cluster: these tests need root (network namespaces, OVS); run `make test` as root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ovpcbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "openvpc")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go" // where scripts/install-deps.sh puts it
	}
	start := time.Now()
	if out, err := exec.Command(goTool, "build", "-o", bin, "../../cmd/openvpc").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: build openvpc: %v\n%s", err, out)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("cluster: built %s in %v\n", bin, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

func testLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.WarnLevel)
	return l
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// upLab brings up a lab of hosts only, in store mode, with the controller
// as a daemon of bin; it is torn down when the test ends.
func upLab(t *testing.T, prefix byte, hosts ...string) *labrun.Env {
	t.Helper()
	dir, err := os.MkdirTemp("", "ovpc"+string(prefix))
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) }) // runs last: after the lab is down
	p := &model.Policy{}
	for _, h := range hosts {
		p.Hosts = append(p.Hosts, model.Host{Name: h})
	}
	ctx := ctxFor(t, 2*time.Minute)
	env, err := labrun.UpPolicy(ctx, p, labrun.Options{Name: lab.UniqueName(prefix), Dir: dir, Log: testLog(), Store: true, Binary: bin, Ephemeral: true})
	must(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, filepath.Join(dir, "controller.log"))
		}
		if err := env.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	must(t, env.WaitReady(wctx))
	return env
}

// logTail logs the last lines of a daemon's log.
func logTail(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("last lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

// netFromAPI builds the policy as the API exports it to the admin.
func netFromAPI(ctx context.Context, t *testing.T, cl *client.Client) (*model.Policy, *model.Net) {
	t.Helper()
	b, err := cl.Export(ctx)
	must(t, err)
	p, err := model.ParseYAML(b)
	must(t, err)
	n, err := model.Build(p)
	if err != nil {
		t.Fatalf("exported policy does not build: %v", err)
	}
	return p, n
}

// reach waits until from's pings to ip are answered (want) or not.
func reach(ctx context.Context, t *testing.T, from *lab.VM, ip string, want bool) time.Duration {
	t.Helper()
	start := time.Now()
	dst := netip.MustParseAddr(ip)
	for {
		r, err := from.Ping(ctx, dst, lab.PingOpts{Count: 1, Timeout: 300 * time.Millisecond})
		if err == nil && (r.Received == 1) == want {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second || ctx.Err() != nil {
			t.Fatalf("%s → %s: reachable=%v still after %v (last error %v)", from.Name(), ip, !want, time.Since(start).Round(time.Millisecond), err)
		}
	}
}

// labControllerPID returns the PID of the controller daemon labrun started
// for env: the last live "controller" process in the lab's state.json that
// is a child of this test process running `bin controller`. labrun has no
// accessor for it.
func labControllerPID(t *testing.T, env *labrun.Env) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.Lab.Dir(), "state.json"))
	must(t, err)
	var st struct {
		Processes []struct {
			Name  string `json:"name"`
			PID   int    `json:"pid"`
			Start uint64 `json:"start"`
		} `json:"processes"`
	}
	must(t, json.Unmarshal(b, &st))
	for i := len(st.Processes) - 1; i >= 0; i-- {
		p := st.Processes[i]
		if p.Name != "controller" {
			continue
		}
		stat, ok := procStat(p.PID)
		if !ok || stat.start != p.Start || stat.ppid != os.Getpid() {
			continue
		}
		argv := procArgv(p.PID)
		if len(argv) < 2 || argv[0] != bin || argv[1] != "controller" {
			continue
		}
		return p.PID
	}
	t.Fatalf("no live controller daemon of this test in %s", env.Lab.Dir())
	return 0
}

type stat struct {
	state string
	ppid  int
	start uint64
}

// procStat reads the state, parent and start time of a live process.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return stat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return stat{}, false
	}
	return stat{state: f[0], ppid: ppid, start: start}, true
}

func procArgv(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// killPID SIGKILLs a process this test started and waits until it is gone
// (its parent, labrun, reaps it).
func killPID(t *testing.T, pid int, start uint64) {
	t.Helper()
	if st, ok := procStat(pid); !ok || st.start != start {
		t.Fatalf("process %d is gone already", pid)
	}
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, ok := procStat(pid); !ok || st.start != start {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive 10 s after SIGKILL", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// daemon is an `openvpc controller` process this test started itself.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startDaemon runs `bin controller args...`, its output appended to
// logPath. The test's cleanup stops it (if the test did not).
func startDaemon(t *testing.T, logPath string, args ...string) *daemon {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	defer logf.Close()
	cmd := exec.Command(bin, append([]string{"controller"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(logPath)}
	must(t, cmd.Start())
	d := &daemon{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.stop)
	return d
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop ends the daemon: SIGTERM, then SIGKILL after 10 s. os.Process
// signals through a pidfd, so a recycled PID is never hit.
func (d *daemon) stop() {
	if d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// apiUp waits until the daemon's API answers an authenticated request.
func apiUp(ctx context.Context, t *testing.T, d *daemon, cl *client.Client) {
	t.Helper()
	var err error
	for {
		var accounts []model.Account
		if err = cl.List(ctx, "account", &accounts); err == nil {
			return
		}
		if client.StatusOf(err) != 0 {
			t.Fatalf("API: %v", err)
		}
		if d.exited() {
			logTail(t, d.log)
			t.Fatalf("controller daemon exited: %s", d.cmd.ProcessState)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("API not up: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitAPI waits until an API answers an authenticated request (a daemon
// labrun just started).
func waitAPI(ctx context.Context, t *testing.T, cl *client.Client) {
	t.Helper()
	var err error
	for {
		var accounts []model.Account
		if err = cl.List(ctx, "account", &accounts); err == nil {
			return
		}
		if client.StatusOf(err) != 0 {
			t.Fatalf("API: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("API not up: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readToken waits for an admin token file.
func readToken(ctx context.Context, t *testing.T, d *daemon, path string) string {
	t.Helper()
	for {
		b, err := os.ReadFile(path)
		if tok := strings.TrimSpace(string(b)); err == nil && tok != "" {
			return tok
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if d.exited() {
			logTail(t, d.log)
			t.Fatalf("controller daemon exited: %s", d.cmd.ProcessState)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no admin token in %s", path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
