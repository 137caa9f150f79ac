package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/sirupsen/logrus"
)

const (
	stateFile     = "state.json"
	inventoryFile = "inventory.json"
	stateVersion  = 1
)

// state is everything a lab made, persisted in Dir/state.json before it is
// made, so that DownDir can undo it after the process that ran Up died.
type state struct {
	Version       int           `json:"version"`
	Name          string        `json:"name"`
	Dir           string        `json:"dir"`
	CreatedDir    bool          `json:"created_dir"` // Dir did not exist before Up: Down removes it whole
	UnderlayNetns string        `json:"underlay_netns"`
	UnderlayDev   string        `json:"underlay_bridge"`
	Netns         []string      `json:"netns"`   // in creation order
	Devices       []deviceState `json:"devices"` // every link the lab created, by netns
	Hosts         []hostState   `json:"hosts"`
	VMs           []vmState     `json:"vms"`
	Processes     []procState   `json:"processes"` // tracked processes, stopped first on Down
	NextVM        int           `json:"next_vm"`   // index for the next VM's host-side device name
	// Internet is the lab's internet (Spec.Internet); its namespace is in
	// Netns like every other.
	Internet *internetState `json:"internet,omitempty"`
	// Owner is the process that made an ephemeral lab (Spec.Ephemeral).
	Owner *procState `json:"owner,omitempty"`
	// Pairs are the baseline pairs (AddVethPair, AddNormalBridgePair);
	// their namespaces are in Netns like every other.
	Pairs []pairState `json:"pairs,omitempty"`
}

type deviceState struct {
	Netns string `json:"netns"`
	Name  string `json:"name"`
}

type hostState struct {
	Name        string     `json:"name"`
	Netns       string     `json:"netns"`
	OVSDir      string     `json:"ovs_dir"`
	UnderlayIP  netip.Addr `json:"underlay_ip"`
	UnderlayDev string     `json:"underlay_dev"`
	UnderlayMTU int        `json:"underlay_mtu,omitempty"`
	VswitchdPID int        `json:"vswitchd_pid,omitempty"`
	OvsdbPID    int        `json:"ovsdb_server_pid,omitempty"`
}

type vmState struct {
	Name    string         `json:"name"`
	Host    string         `json:"host"`
	Netns   string         `json:"netns"`
	NIC     string         `json:"nic"`
	MAC     string         `json:"mac"`
	Addrs   []netip.Prefix `json:"addrs"`
	Gateway netip.Addr     `json:"gateway,omitzero"`
	MTU     int            `json:"mtu,omitempty"`
	// Extra are the VM's secondary NICs (eth1, ...); the fields above
	// describe its primary NIC, eth0.
	Extra []nicState `json:"extra,omitempty"`
}

// nicState is a VM's secondary NIC.
type nicState struct {
	Name  string         `json:"name"`  // iface-id
	Iface string         `json:"iface"` // in the VM
	NIC   string         `json:"nic"`   // host-side veth, the port on br-int
	MAC   string         `json:"mac"`
	Addrs []netip.Prefix `json:"addrs"`
	MTU   int            `json:"mtu,omitempty"`
}

// nics returns the VM's NICs, eth0 first.
func (s *vmState) nics() []VMNIC {
	mac := func(m string) net.HardwareAddr { a, _ := net.ParseMAC(m); return a }
	out := []VMNIC{{Name: s.Name, Iface: VMIface, Dev: s.NIC, MAC: mac(s.MAC), Addrs: slices.Clone(s.Addrs), MTU: s.MTU}}
	for _, e := range s.Extra {
		out = append(out, VMNIC{Name: e.Name, Iface: e.Iface, Dev: e.NIC, MAC: mac(e.MAC), Addrs: slices.Clone(e.Addrs), MTU: e.MTU})
	}
	return out
}

// setNIC changes the device and MTU recorded for the VM's NIC named name.
func (s *vmState) setNIC(name string, f func(dev *string, mtu *int)) {
	if name == s.Name {
		f(&s.NIC, &s.MTU)
		return
	}
	for i := range s.Extra {
		if s.Extra[i].Name == name {
			f(&s.Extra[i].NIC, &s.Extra[i].MTU)
		}
	}
}

// pairState is a baseline pair of namespaces.
type pairState struct {
	Name  string          `json:"name"`
	Kind  string          `json:"kind"`
	Netns []string        `json:"netns"` // a, b, then the switch's (OVS pairs)
	Addrs [2]netip.Prefix `json:"addrs"`
	MTU   int             `json:"mtu,omitempty"`
	// OVS is the private OVS of a NORMAL-bridge pair (its dir and PIDs,
	// stopped like a host's).
	OVS *hostState `json:"ovs,omitempty"`
}

type procState struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/PID/stat starttime, to never signal a recycled PID
}

func (s *state) host(name string) *hostState {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i]
		}
	}
	return nil
}

func (s *state) vm(name string) *vmState {
	for i := range s.VMs {
		if s.VMs[i].Name == name {
			return &s.VMs[i]
		}
	}
	return nil
}

// writeJSON writes v to path atomically (temp file + rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%s: unsupported state version %d", filepath.Join(dir, stateFile), st.Version)
	}
	if st.Dir == "" {
		st.Dir = dir
	}
	return &st, nil
}

// DownDir tears down the lab whose state.json is in dir (e.g. after the
// process that ran Up crashed): it stops the recorded processes by PID,
// deletes the recorded network namespaces and removes the lab's files. A dir
// without state.json yields an error wrapping fs.ErrNotExist.
func DownDir(ctx context.Context, dir string) error {
	return downDir(ctx, dir, logrus.StandardLogger().WithField("lab_dir", dir))
}

// SweepOrphans tears down every ephemeral lab whose state dir matches glob
// (e.g. /tmp/ovp*) and whose owner process is gone — left behind by a test
// binary that died before its teardown. Labs of live processes, and labs
// not made ephemeral, are left alone. It returns how many it removed.
func SweepOrphans(ctx context.Context, glob string, log logrus.FieldLogger) (int, error) {
	dirs, err := filepath.Glob(glob)
	if err != nil {
		return 0, fmt.Errorf("lab: sweep %s: %w", glob, err)
	}
	n := 0
	var errs []error
	for _, dir := range dirs {
		st, err := readState(dir)
		if err != nil || st.Owner == nil {
			continue
		}
		if start, ok := procStart(st.Owner.PID); ok && start == st.Owner.Start {
			continue // its owner still runs
		}
		if log != nil {
			log.WithFields(logrus.Fields{"lab": st.Name, "dir": dir, "owner_pid": st.Owner.PID}).Warn("removing a lab whose owner process is gone")
		}
		if err := teardown(ctx, st, orDiscardLog(log)); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: %w", st.Name, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func orDiscardLog(log logrus.FieldLogger) logrus.FieldLogger {
	if log != nil {
		return log
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func downDir(ctx context.Context, dir string, log logrus.FieldLogger) error {
	st, err := readState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab: no %s in %s: %w", stateFile, dir, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return teardown(ctx, st, log)
}

// teardown undoes everything st records, best effort, in the order:
// tracked processes, OVS daemons, namespaces (which destroys every device
// in them), files. It carries on after errors and returns them joined. It
// ignores the cancellation of ctx (a half-removed lab is worse than a slow
// one) but stops after two minutes.
func teardown(ctx context.Context, st *state, log logrus.FieldLogger) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []error

	for _, p := range slices.Backward(st.Processes) {
		if start, ok := procStart(p.PID); ok && start == p.Start {
			log.WithFields(logrus.Fields{"process": p.Name, "pid": p.PID}).Debug("stopping tracked process")
			if err := ovsproc.StopPID(p.PID, 3*time.Second); err != nil {
				errs = append(errs, fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID, err))
			}
		}
	}

	ovses := slices.Clone(st.Hosts)
	for _, p := range st.Pairs {
		if p.OVS != nil {
			ovses = append(ovses, *p.OVS)
		}
	}
	errs = append(errs, parallel(ovses, func(h hostState) error {
		return stopHostOVS(h, log)
	}))

	for _, ns := range slices.Backward(st.Netns) {
		if out, err := run(ctx, "ip", "netns", "pids", ns); err == nil && strings.TrimSpace(out) != "" {
			log.WithFields(logrus.Fields{"netns": ns, "pids": strings.Fields(out)}).
				Warn("processes the lab does not track are still in the namespace; they keep it alive")
		}
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil && netnsExists(ns) {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", ns, err))
		}
	}

	if st.Dir != "" {
		if st.CreatedDir {
			if err := os.RemoveAll(st.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", st.Dir, err))
			}
		} else {
			for _, h := range ovses {
				if h.OVSDir != "" && strings.HasPrefix(h.OVSDir, st.Dir+"/") {
					if err := os.RemoveAll(h.OVSDir); err != nil {
						errs = append(errs, fmt.Errorf("remove %s: %w", h.OVSDir, err))
					}
				}
			}
			for _, f := range []string{inventoryFile, inventoryFile + ".tmp", stateFile + ".tmp", stateFile} {
				if err := os.Remove(filepath.Join(st.Dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		log.WithError(err).Warn("lab teardown incomplete")
	} else {
		log.WithField("name", st.Name).Info("lab down")
	}
	return err
}

// stopHostOVS stops a host's ovs-vswitchd then ovsdb-server: the recorded
// PIDs and the PIDs in the pidfiles, each only if its command line names the
// host's OVS directory (so a recycled PID is never signalled).
func stopHostOVS(h hostState, log logrus.FieldLogger) error {
	if h.OVSDir == "" {
		return nil
	}
	var errs []error
	for _, d := range []struct {
		name string
		pid  int
	}{{"ovs-vswitchd", h.VswitchdPID}, {"ovsdb-server", h.OvsdbPID}} {
		pids := []int{d.pid, readPidfile(filepath.Join(h.OVSDir, d.name+".pid"))}
		for _, pid := range pids {
			if pid <= 1 {
				continue
			}
			if _, ok := procStart(pid); !ok {
				continue
			}
			cl := procCmdline(pid)
			if !strings.Contains(cl, d.name) || !strings.Contains(cl, h.OVSDir+"/") {
				continue
			}
			log.WithFields(logrus.Fields{"host": h.Name, "daemon": d.name, "pid": pid}).Debug("stopping")
			if err := ovsproc.StopPID(pid, 5*time.Second); err != nil {
				errs = append(errs, fmt.Errorf("host %s: stop %s: %w", h.Name, d.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func netnsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}
