// Package labrun brings up a lab for a policy together with a controller
// managing it: in-process (tests) or as a daemon process of the openvpc
// binary (`openvpc lab up`), reading the policy from a file or from its
// embedded etcd store fed through the API. It is the glue behind the demo
// and the lab integration tests.
package labrun

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/ovsproc"
	"github.com/openvpc/openvpc/internal/serve"
	"github.com/openvpc/openvpc/lab"
	"github.com/openvpc/openvpc/model"
)

// Options configure Up.
type Options struct {
	Name string // lab name, [a-z0-9]{1,6}
	Dir  string // default /tmp/openvpc-lab-<name>
	// Binary, if set, runs the controller as a daemon process of this openvpc
	// binary; otherwise it runs in-process.
	Binary string
	// Store runs the controller on an embedded etcd store (in Dir/store)
	// and loads the policy through the API; otherwise it reads a policy file.
	Store bool
	Log   logrus.FieldLogger
	// AuditInterval is the in-process controller's flow audit period
	// (0: the controller's default).
	AuditInterval time.Duration
	// EnsureInterval is how often the in-process controller re-checks
	// (and repairs) each host's bridge setup (0: the controller's default).
	EnsureInterval time.Duration
	// NoVMs skips making VM namespaces (scale tests plug dummy ports).
	NoVMs bool
	// VMGroups puts several placed NICs of the policy into one VM each:
	// the first NIC of a group is the VM's primary NIC (eth0, its name),
	// the others its secondary NICs (eth1, ...), all on one host
	// (labpolicy.GroupVMs). Other NICs get a VM each.
	VMGroups [][]string
	// VswitchdArgs are extra ovs-vswitchd arguments (e.g. --enable-dummy).
	VswitchdArgs []string
	// Ephemeral marks a test's lab: it belongs to this process, and before
	// it is made, labs of dead test processes in OrphanGlob are removed (a
	// panicking test kills its binary before TestMain can tear down).
	Ephemeral bool
}

// OrphanGlob is where test labs keep their state dirs (os.MkdirTemp("",
// "ovp...")), swept for orphans before an ephemeral lab starts.
var OrphanGlob = filepath.Join(os.TempDir(), "ovp*")

// hostSockName is the controller socket's name in each host's OVS run dir.
const hostSockName = "openvpc-controller.sock"

// Env is a running lab with its controller.
type Env struct {
	Lab        *lab.Lab
	PolicyPath string // the effective policy file (file mode: what the controller reads)
	OpenFlow   string // where the controller listens, unix:...
	OFTarget   string // controller target written into the bridges
	APIAddr    string // unix:... of the controller's HTTP API
	TokenPath  string // store mode: the admin token file

	opts Options
	log  logrus.FieldLogger

	mu     sync.Mutex
	policy *model.Policy // file mode: the policy; store mode: what was first applied
	srv    *serve.Server
	pid    int

	poolMu sync.Mutex
	pools  map[netip.Prefix]bool // pool CIDRs routed on-link in the internet
}

// Up builds the lab for the policy in file and starts a controller for it.
func Up(ctx context.Context, file string, opts Options) (*Env, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := model.ParseYAML(data)
	if err != nil {
		return nil, err
	}
	return UpPolicy(ctx, p, opts)
}

// UpPolicy is Up for a policy value.
func UpPolicy(ctx context.Context, p *model.Policy, opts Options) (*Env, error) {
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	if opts.Dir == "" {
		opts.Dir = "/tmp/openvpc-lab-" + opts.Name
	}
	eff, _, spec, err := labpolicy.Prepare(p, opts.Name, opts.Dir)
	if err != nil {
		return nil, err
	}
	if opts.NoVMs {
		spec.VMs = nil
	} else if err := labpolicy.GroupVMs(&spec, opts.VMGroups); err != nil {
		return nil, err
	}
	for i := range spec.Hosts {
		spec.Hosts[i].VswitchdArgs = opts.VswitchdArgs
	}
	if opts.Ephemeral {
		spec.Ephemeral = true
		if _, err := lab.SweepOrphans(ctx, OrphanGlob, opts.Log.WithField("part", "lab")); err != nil {
			opts.Log.WithError(err).Warn("removing labs of dead test processes")
		}
	}
	l, err := lab.Up(ctx, spec, opts.Log.WithField("part", "lab"))
	if err != nil {
		return nil, err
	}
	e := &Env{Lab: l, opts: opts, log: opts.Log, policy: eff, pools: poolsOf(eff),
		PolicyPath: filepath.Join(opts.Dir, "policy.yaml"),
		OpenFlow:   "unix:" + filepath.Join(opts.Dir, "of.sock"),
		// OVS connects only to unix sockets inside its run directory; a
		// target without '/' is relative to it, so every host gets a
		// symlink there to the controller's one socket.
		OFTarget:  "unix:" + hostSockName,
		APIAddr:   "unix:" + filepath.Join(opts.Dir, "api.sock"),
		TokenPath: filepath.Join(opts.Dir, "admin.token")}
	fail := func(err error) (*Env, error) {
		e.Down(context.Background())
		return nil, err
	}
	if err := labpolicy.Attach(eff, l); err != nil {
		return fail(err)
	}
	_, ofPath := controller.SplitAddr(e.OpenFlow)
	for _, h := range l.Hosts() {
		link := filepath.Join(h.OVS().Dir(), hostSockName)
		os.Remove(link)
		if err := os.Symlink(ofPath, link); err != nil {
			return fail(fmt.Errorf("link controller socket for %s: %w", h.Name(), err))
		}
	}
	if err := e.writePolicy(); err != nil {
		return fail(err)
	}
	if err := e.StartController(ctx); err != nil {
		return fail(err)
	}
	if opts.Store {
		if err := e.applyPolicy(ctx); err != nil {
			return fail(err)
		}
	}
	return e, nil
}

// applyPolicy loads the effective policy into the store through the API.
func (e *Env) applyPolicy(ctx context.Context) error {
	cl, err := e.Client("")
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(e.PolicyPath)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = cl.Apply(ctx, doc, false)
		if err == nil || time.Now().After(deadline) || client.StatusOf(err) != 0 {
			return err
		}
		time.Sleep(50 * time.Millisecond) // daemon not listening yet
	}
}

// AdminToken is the store's admin token (store mode).
func (e *Env) AdminToken() (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(e.TokenPath)
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no admin token in %s: %w", e.TokenPath, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client returns an API client with token ("" = the admin token).
func (e *Env) Client(token string) (*client.Client, error) {
	if token == "" && e.opts.Store {
		t, err := e.AdminToken()
		if err != nil {
			return nil, err
		}
		token = t
	}
	return client.New(e.APIAddr, token, "")
}

// Policy returns a copy of the current policy (store mode: read from the
// store).
func (e *Env) Policy() *model.Policy {
	e.mu.Lock()
	srv := e.srv
	var b []byte
	if srv == nil && e.opts.Store {
		e.mu.Unlock()
		return e.exported() // daemon on its store: ask it
	}
	if srv == nil || srv.Store == nil {
		b, _ = e.policy.ToYAML()
	}
	e.mu.Unlock()
	if b == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, _, err := srv.Store.Policy(ctx)
		if err != nil {
			e.log.WithError(err).Error("read policy from store")
			return &model.Policy{}
		}
		return p
	}
	p, _ := model.ParseYAML(b)
	return p
}

func (e *Env) exported() *model.Policy {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := e.Client("")
	if err == nil {
		var b []byte
		if b, err = cl.Export(ctx); err == nil {
			var p *model.Policy
			if p, err = model.ParseYAML(b); err == nil {
				return p
			}
		}
	}
	e.log.WithError(err).Error("export policy from the controller")
	return &model.Policy{}
}

// Net builds the current policy.
func (e *Env) Net() (*model.Net, error) { return model.Build(e.Policy()) }

// UpdatePolicy changes the policy without a restart: in file mode it
// rewrites the file (an in-process controller is told at once, as SIGHUP
// would; a daemon notices the change); in store mode it is one store
// transaction.
func (e *Env) UpdatePolicy(edit func(p *model.Policy)) error {
	e.mu.Lock()
	srv := e.srv
	e.mu.Unlock()
	if srv == nil && e.opts.Store {
		return fmt.Errorf("labrun: the controller daemon owns its store: change the policy through the API")
	}
	if srv != nil && srv.Store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := srv.Store.Update(ctx, func(p *model.Policy) error { edit(p); return nil })
		return err
	}
	e.mu.Lock()
	edit(e.policy)
	e.mu.Unlock()
	if err := e.writePolicy(); err != nil {
		return err
	}
	if srv != nil && srv.File != nil {
		srv.File.Reload()
	}
	return nil
}

func (e *Env) writePolicy() error {
	e.mu.Lock()
	b, err := e.policy.ToYAML()
	e.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := e.PolicyPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}
	return os.Rename(tmp, e.PolicyPath)
}

// poolsOf returns the CIDRs of a policy's public IP pools.
func poolsOf(p *model.Policy) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	for _, pl := range p.PublicIPPools {
		if c, err := netip.ParsePrefix(pl.CIDR); err == nil && c.Addr().Is4() {
			out[c.Masked()] = true
		}
	}
	return out
}

// SyncInternet makes the lab internet's on-link routes follow the current
// policy's public IP pools, as an operator routes a pool to the gateways:
// it routes the pools added since the lab came up (or the last call) and
// unroutes those removed; routes added by other means stay. Without an
// internet it does nothing. Policy changes do not call it by themselves
// (labtest's do).
func (e *Env) SyncInternet(ctx context.Context) error {
	in := e.Lab.Internet()
	if in == nil {
		return nil
	}
	e.poolMu.Lock()
	defer e.poolMu.Unlock()
	want := poolsOf(e.Policy())
	for _, c := range slices.SortedFunc(maps.Keys(e.pools), netip.Prefix.Compare) {
		if !want[c] {
			if err := in.DelOnLink(ctx, c); err != nil {
				return err
			}
			delete(e.pools, c)
		}
	}
	for _, c := range slices.SortedFunc(maps.Keys(want), netip.Prefix.Compare) {
		if !e.pools[c] {
			if err := in.AddOnLink(ctx, c); err != nil {
				return err
			}
			e.pools[c] = true
		}
	}
	return nil
}

// Controller returns the in-process controller (nil in daemon mode).
func (e *Env) Controller() *controller.Controller {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return nil
	}
	return e.srv.Controller
}

// StartController starts the controller (in-process or as a daemon).
func (e *Env) StartController(ctx context.Context) error {
	_, ofPath := controller.SplitAddr(e.OpenFlow)
	_, apiPath := controller.SplitAddr(e.APIAddr)
	os.Remove(ofPath)
	os.Remove(apiPath)
	if e.opts.Binary != "" {
		return e.startDaemon()
	}
	ofLn, err := controller.Listen(e.OpenFlow)
	if err != nil {
		return err
	}
	apiLn, err := controller.Listen(e.APIAddr)
	if err != nil {
		ofLn.Close()
		return err
	}
	cfg := serve.Config{OpenFlow: ofLn, OpenFlowTarget: e.OFTarget, API: apiLn,
		Log: e.log, StartupGrace: 5 * time.Second, AuditInterval: e.opts.AuditInterval, EnsureInterval: e.opts.EnsureInterval, PollInterval: 200 * time.Millisecond}
	if e.opts.Store {
		cfg.DataDir, cfg.AdminTokenFile = filepath.Join(e.opts.Dir, "store"), e.TokenPath
	} else {
		cfg.PolicyFile = e.PolicyPath
	}
	srv, err := serve.Start(ctx, cfg)
	if err != nil {
		ofLn.Close()
		apiLn.Close()
		return err
	}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	return nil
}

func (e *Env) startDaemon() error {
	logf, err := os.OpenFile(filepath.Join(e.opts.Dir, "controller.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"controller", "--openflow", e.OpenFlow, "--openflow-target", e.OFTarget, "--listen", e.APIAddr}
	if e.opts.Store {
		args = append(args, "--data-dir", filepath.Join(e.opts.Dir, "store"), "--admin-token-file", e.TokenPath)
	} else {
		args = append(args, "--policy", e.PolicyPath)
	}
	cmd := exec.Command(e.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start controller: %w", err)
	}
	e.mu.Lock()
	e.pid = cmd.Process.Pid
	e.mu.Unlock()
	if err := e.Lab.TrackProcess("controller", cmd.Process.Pid); err != nil {
		return err
	}
	go cmd.Wait() // reap
	return nil
}

// StopController stops the controller; the switches keep their flows.
func (e *Env) StopController() {
	e.mu.Lock()
	srv, pid := e.srv, e.pid
	e.srv, e.pid = nil, 0
	e.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	if pid != 0 {
		ovsproc.StopPID(pid, 10*time.Second)
	}
}

// WaitReady waits until the controller knows every lab host and reports
// all of them in sync (right after an apply, /readyz alone could answer
// before the controller has even seen the new policy).
func (e *Env) WaitReady(ctx context.Context) error {
	for {
		err := e.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller not ready: %v: %w", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Env) ready(ctx context.Context) error {
	cl, err := e.Client("")
	if err != nil {
		return err
	}
	var st controller.Status
	b, err := cl.Raw(ctx, "/v1/status", nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	in := map[string]bool{}
	for _, h := range st.Hosts {
		in[h.Name] = h.InSync
	}
	for _, h := range e.Lab.Hosts() {
		if !in[h.Name()] {
			return fmt.Errorf("host %s not in sync", h.Name())
		}
	}
	_, err = cl.Raw(ctx, "/readyz", nil)
	return err
}

// Down stops the controller and removes the lab.
func (e *Env) Down(ctx context.Context) error {
	e.StopController()
	return e.Lab.Down(ctx)
}

// HTTPClient returns a client for a controller API address (unix:/path or
// host:port); requests use any host name in the URL.
func HTTPClient(addr string) *http.Client {
	network, address := controller.SplitAddr(addr)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}
