// Package labrun brings up a lab for a policy file together with a
// controller managing it: in-process (tests) or as a daemon process of the
// openvpc binary (`openvpc lab up`). It is the glue behind the demo and the
// lab integration tests.
package labrun

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/controller"
	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/ovsproc"
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
	Log    logrus.FieldLogger
	// AuditInterval is the in-process controller's flow audit period
	// (0: the controller's default).
	AuditInterval time.Duration
	// NoVMs skips making VM namespaces (scale tests plug dummy ports).
	NoVMs bool
	// VswitchdArgs are extra ovs-vswitchd arguments (e.g. --enable-dummy).
	VswitchdArgs []string
}

// hostSockName is the controller socket's name in each host's OVS run dir.
const hostSockName = "openvpc-controller.sock"

// Env is a running lab with its controller.
type Env struct {
	Lab        *lab.Lab
	PolicyPath string // the effective policy file the controller reads
	OpenFlow   string // where the controller listens, unix:...
	OFTarget   string // controller target written into the bridges
	APIAddr    string // unix:... of the controller's HTTP API

	opts Options
	log  logrus.FieldLogger

	mu      sync.Mutex
	policy  *model.Policy
	ctrl    *controller.Controller
	src     *controller.FileSource
	cancel  context.CancelFunc
	done    chan struct{}
	httpSrv *http.Server
	pid     int
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
	}
	for i := range spec.Hosts {
		spec.Hosts[i].VswitchdArgs = opts.VswitchdArgs
	}
	l, err := lab.Up(ctx, spec, opts.Log.WithField("part", "lab"))
	if err != nil {
		return nil, err
	}
	e := &Env{Lab: l, opts: opts, log: opts.Log, policy: eff,
		PolicyPath: filepath.Join(opts.Dir, "policy.yaml"),
		OpenFlow:   "unix:" + filepath.Join(opts.Dir, "of.sock"),
		// OVS connects only to unix sockets inside its run directory; a
		// target without '/' is relative to it, so every host gets a
		// symlink there to the controller's one socket.
		OFTarget: "unix:" + hostSockName,
		APIAddr:  "unix:" + filepath.Join(opts.Dir, "api.sock")}
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
	return e, nil
}

// Policy returns a copy of the effective policy.
func (e *Env) Policy() *model.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := e.policy.ToYAML()
	p, _ := model.ParseYAML(b)
	return p
}

// Net builds the effective policy.
func (e *Env) Net() (*model.Net, error) { return model.Build(e.Policy()) }

// UpdatePolicy edits the effective policy file; the controller picks the
// change up without a restart (an in-process one is told at once, as
// SIGHUP would; a daemon notices the file change).
func (e *Env) UpdatePolicy(edit func(p *model.Policy)) error {
	e.mu.Lock()
	edit(e.policy)
	e.mu.Unlock()
	if err := e.writePolicy(); err != nil {
		return err
	}
	e.mu.Lock()
	src := e.src
	e.mu.Unlock()
	if src != nil {
		src.Reload()
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

// Controller returns the in-process controller (nil in daemon mode).
func (e *Env) Controller() *controller.Controller {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ctrl
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
	src := controller.NewFileSource(e.PolicyPath)
	src.Interval = 200 * time.Millisecond
	c := controller.New(controller.Config{Source: src, OpenFlow: ofLn, OpenFlowTarget: e.OFTarget,
		Log: e.log.WithField("part", "controller"), StartupGrace: 5 * time.Second, AuditInterval: e.opts.AuditInterval})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(apiLn)
	runErr := make(chan error, 1)
	go func() {
		defer close(done)
		err := c.Run(cctx)
		ofLn.Close()
		runErr <- err
	}()
	e.mu.Lock()
	e.ctrl, e.cancel, e.done, e.httpSrv, e.src = c, cancel, done, srv, src
	e.mu.Unlock()
	select {
	case err := <-runErr:
		return fmt.Errorf("controller: %w", err)
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func (e *Env) startDaemon() error {
	logf, err := os.OpenFile(filepath.Join(e.opts.Dir, "controller.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.opts.Binary, "controller", "--policy", e.PolicyPath,
		"--openflow", e.OpenFlow, "--openflow-target", e.OFTarget, "--listen", e.APIAddr)
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
	cancel, done, srv, pid := e.cancel, e.done, e.httpSrv, e.pid
	e.ctrl, e.cancel, e.done, e.httpSrv, e.pid, e.src = nil, nil, nil, nil, 0, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
		srv.Close()
	}
	if pid != 0 {
		ovsproc.StopPID(pid, 10*time.Second)
	}
}

// WaitReady waits until the controller reports every host in sync.
func (e *Env) WaitReady(ctx context.Context) error {
	cl := HTTPClient(e.APIAddr)
	for {
		resp, err := cl.Get("http://openvpc/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
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
