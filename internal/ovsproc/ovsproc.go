// Package ovsproc starts and stops a private Open vSwitch (ovsdb-server and
// ovs-vswitchd) in its own directory and, optionally, its own network
// namespace. It never touches the system OVS service: every socket, pidfile,
// database and log lives under Dir, and processes are stopped by PID.
package ovsproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SchemaPath is Debian's Open_vSwitch schema.
const SchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// Config says where and how to run one OVS instance.
type Config struct {
	Dir   string // private directory (created); must be short enough for unix socket paths
	Netns string // network namespace to run the daemons in; "" = current
	// VswitchdArgs are extra arguments for ovs-vswitchd (e.g. --enable-dummy).
	VswitchdArgs []string
}

// OVS is a running private instance.
type OVS struct {
	cfg Config
}

// Start creates the database if needed and starts both daemons.
func Start(ctx context.Context, cfg Config) (*OVS, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("ovsproc: create %s: %w", cfg.Dir, err)
	}
	o := &OVS{cfg: cfg}
	db := filepath.Join(cfg.Dir, "conf.db")
	if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
		if _, err := o.run(ctx, false, "ovsdb-tool", "create", db, SchemaPath); err != nil {
			return nil, err
		}
	}
	if _, err := o.run(ctx, true, "ovsdb-server", db,
		"--remote=punix:"+o.DBSocket(),
		"--pidfile="+o.pidfile("ovsdb-server"),
		"--unixctl="+filepath.Join(cfg.Dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(cfg.Dir, "ovsdb-server.log"),
		"--detach", "--no-chdir"); err != nil {
		return nil, err
	}
	if _, err := o.Vsctl(ctx, "--no-wait", "init"); err != nil {
		o.Stop()
		return nil, err
	}
	if err := o.StartVswitchd(ctx); err != nil {
		o.Stop()
		return nil, err
	}
	return o, nil
}

// Dir is the instance's private directory.
func (o *OVS) Dir() string { return o.cfg.Dir }

// Netns is the namespace the daemons run in.
func (o *OVS) Netns() string { return o.cfg.Netns }

// DBSocket is the path of the OVSDB unix socket.
func (o *OVS) DBSocket() string { return filepath.Join(o.cfg.Dir, "db.sock") }

// Endpoint is the OVSDB endpoint for libovsdb ("unix:...").
func (o *OVS) Endpoint() string { return "unix:" + o.DBSocket() }

func (o *OVS) pidfile(name string) string { return filepath.Join(o.cfg.Dir, name+".pid") }

// StartVswitchd starts ovs-vswitchd (again, after StopVswitchd).
func (o *OVS) StartVswitchd(ctx context.Context) error {
	args := []string{"unix:" + o.DBSocket(),
		"--pidfile=" + o.pidfile("ovs-vswitchd"),
		"--unixctl=" + filepath.Join(o.cfg.Dir, "ovs-vswitchd.ctl"),
		"--log-file=" + filepath.Join(o.cfg.Dir, "ovs-vswitchd.log"),
		"--detach", "--no-chdir"}
	args = append(args, o.cfg.VswitchdArgs...)
	_, err := o.run(ctx, true, "ovs-vswitchd", args...)
	return err
}

// StopVswitchd stops ovs-vswitchd by PID and waits for it to exit.
func (o *OVS) StopVswitchd() error { return stopPidfile(o.pidfile("ovs-vswitchd")) }

// Stop stops both daemons by PID. It is safe to call more than once.
func (o *OVS) Stop() error {
	return errors.Join(stopPidfile(o.pidfile("ovs-vswitchd")), stopPidfile(o.pidfile("ovsdb-server")))
}

// Vsctl runs ovs-vsctl against this instance's database.
func (o *OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	return o.run(ctx, false, "ovs-vsctl", append([]string{"--db=unix:" + o.DBSocket(), "--timeout=20"}, args...)...)
}

// Ofctl runs ovs-ofctl (OpenFlow 1.5) against a bridge of this instance.
func (o *OVS) Ofctl(ctx context.Context, args ...string) (string, error) {
	return o.run(ctx, false, "ovs-ofctl", append([]string{"-O", "OpenFlow15"}, args...)...)
}

// Appctl runs ovs-appctl against ovs-vswitchd.
func (o *OVS) Appctl(ctx context.Context, args ...string) (string, error) {
	return o.run(ctx, false, "ovs-appctl", append([]string{"-t", filepath.Join(o.cfg.Dir, "ovs-vswitchd.ctl")}, args...)...)
}

// run executes an OVS tool with OVS_RUNDIR etc. pointing at Dir; inNetns runs
// it inside the instance's namespace (daemons must, clients need not).
func (o *OVS) run(ctx context.Context, inNetns bool, name string, args ...string) (string, error) {
	argv := append([]string{name}, args...)
	if inNetns && o.cfg.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", o.cfg.Netns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"OVS_RUNDIR="+o.cfg.Dir, "OVS_DBDIR="+o.cfg.Dir, "OVS_LOGDIR="+o.cfg.Dir, "OVS_SYSCONFDIR="+o.cfg.Dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// stopPidfile sends SIGTERM to the PID in the file, waits up to 5 s, then
// SIGKILLs. A missing pidfile or dead process is not an error.
func stopPidfile(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("ovsproc: bad pidfile %s", path)
	}
	return StopPID(pid, 5*time.Second)
}

// StopPID terminates pid (SIGTERM, then SIGKILL after grace) and waits.
func StopPID(pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func alive(pid int) bool {
	// A zombie of our own child still "exists"; check its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
