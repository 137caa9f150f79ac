package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/pipelines"
)

// memSource is a Source held in memory.
type memSource struct {
	mu      sync.Mutex
	p       *model.Policy
	err     error
	changed chan struct{}
}

func newMemSource(p *model.Policy) *memSource {
	return &memSource{p: p, changed: make(chan struct{}, 1)}
}

func (m *memSource) Load(context.Context) (*model.Policy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	b, _ := m.p.ToYAML()
	return model.ParseYAML(b)
}
func (m *memSource) Changed() <-chan struct{} { return m.changed }
func (m *memSource) Run(ctx context.Context)  { <-ctx.Done() }
func (m *memSource) set(p *model.Policy, err error) {
	m.mu.Lock()
	m.p, m.err = p, err
	m.mu.Unlock()
	m.changed <- struct{}{}
}

// fakeAgent reports bindings set by the test.
type fakeAgent struct {
	mu      sync.Mutex
	reports map[string]func(Bindings)
	initial map[string]Bindings
}

func (a *fakeAgent) Session(ctx context.Context, h *model.HostInfo, report func(Bindings), _ <-chan struct{}) error {
	a.mu.Lock()
	a.reports[h.Name] = report
	b, ok := a.initial[h.Name]
	a.mu.Unlock()
	if ok {
		report(b)
	}
	<-ctx.Done()
	return nil
}

func (a *fakeAgent) report(t *testing.T, host string, b Bindings) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		r := a.reports[host]
		a.mu.Unlock()
		if r != nil {
			r(b)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session for host %s", host)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeSwitch applies bundles to an in-memory table like OVS would.
type fakeSwitch struct {
	dpid uint64
	mu   sync.Mutex
	fl   map[ofrules.Key]ofrules.Flow
	// bundles records each bundle's mods; failNext makes the next bundle fail.
	bundles  [][]ofrules.FlowMod
	failNext bool
	closed   bool
}

func newFakeSwitch(dpid uint64) *fakeSwitch {
	return &fakeSwitch{dpid: dpid, fl: map[ofrules.Key]ofrules.Flow{}}
}

func (s *fakeSwitch) DPID() uint64 { return s.dpid }
func (s *fakeSwitch) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
func (s *fakeSwitch) Bundle(_ context.Context, mods []ofrules.FlowMod) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bundles = append(s.bundles, mods)
	if s.failNext {
		s.failNext = false
		return errors.New("injected bundle failure")
	}
	for _, m := range mods {
		k := m.Flow.Key()
		switch m.Op {
		case ofrules.OpDeleteCookie:
			for kk, f := range s.fl {
				if f.Cookie&m.CookieMask == m.Flow.Cookie&m.CookieMask {
					delete(s.fl, kk)
				}
			}
		case ofrules.OpAdd:
			s.fl[k] = m.Flow
		case ofrules.OpModifyStrict:
			if f, ok := s.fl[k]; ok {
				f.Actions = m.Flow.Actions
				s.fl[k] = f
			}
		case ofrules.OpDeleteStrict:
			delete(s.fl, k)
		}
	}
	return nil
}
func (s *fakeSwitch) DumpFlows(context.Context, uint64, uint64) ([]ofrules.Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ofrules.Flow
	for _, f := range s.fl {
		out = append(out, f)
	}
	return out, nil
}
func (s *fakeSwitch) text() string {
	fs, _ := s.DumpFlows(context.Background(), 0, 0)
	ofrules.SortFlows(fs)
	return FlowsText(fs, nil)
}
func (s *fakeSwitch) bundleCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bundles)
}

const basePolicy = `
accounts: [{name: acme}]
hosts:
  - {name: h1, underlay_ip: 172.31.0.11}
  - {name: h2, underlay_ip: 172.31.0.12}
vpcs: [{name: v, account: acme, cidr: 10.0.0.0/16}]
subnets:
  - {name: s1, vpc: v, cidr: 10.0.1.0/24}
  - {name: s2, vpc: v, cidr: 10.0.2.0/24}
nics:
  - {name: n1, subnet: s1, host: h1, ip: 10.0.1.10}
  - {name: n2, subnet: s2, host: h2, ip: 10.0.2.10}
`

type harness struct {
	t      *testing.T
	src    *memSource
	agent  *fakeAgent
	c      *Controller
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, policy string, initial map[string]Bindings) *harness {
	t.Helper()
	p, err := model.ParseYAML([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, src: newMemSource(p), agent: &fakeAgent{reports: map[string]func(Bindings){}, initial: initial}, done: make(chan error, 1)}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	h.c = New(Config{Source: h.src, Log: log, Agent: h.agent, StartupGrace: 200 * time.Millisecond, AuditInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			t.Error("controller did not stop")
		}
	})
	h.waitFor(func() bool { return h.c.Status().PolicyGeneration > 0 }, "policy loaded")
	return h
}

func (h *harness) waitFor(cond func() bool, what string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expected compiles the host's flows from the controller's current view.
func (h *harness) expected(host string) string {
	h.c.mu.Lock()
	snap := h.c.snapshotLocked()
	h.c.mu.Unlock()
	fs, err := pipelines.Compile(snap, host)
	if err != nil {
		h.t.Fatal(err)
	}
	return FlowsText(fs.Flows(), nil)
}

func (h *harness) connect(host string) *fakeSwitch {
	n, _ := model.Build(mustPolicy(h.t, h.src))
	sw := newFakeSwitch(n.Hosts[host].DatapathID)
	h.c.switchConnected(sw)
	return sw
}

func mustPolicy(t *testing.T, s *memSource) *model.Policy {
	p, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bound(ports map[string]uint32) Bindings {
	return Bindings{Ports: ports, TunnelPorts: map[string]uint32{"vxlan": 1}}
}

func TestConnectReplacesAllThenSendsDiffs(t *testing.T) {
	h := start(t, basePolicy, map[string]Bindings{"h1": bound(map[string]uint32{"n1": 5}), "h2": bound(map[string]uint32{"n2": 7})})
	sw := h.connect("h1")
	h.waitFor(func() bool { return sw.text() == h.expected("h1") && sw.text() != "" }, "h1 programmed")
	first := sw.bundles[0]
	if first[0].Op != ofrules.OpDeleteCookie || first[0].Flow.Cookie != pipelines.CookieOpenVPC || first[0].CookieMask != pipelines.CookieMask {
		t.Fatalf("first bundle does not start by replacing our cookie space: %v", first[0])
	}
	// A secondary IP: only a handful of mods, no full replace.
	p := mustPolicy(t, h.src)
	p.NICs[1].SecondaryIPs = []string{"10.0.2.20"}
	h.src.set(p, nil)
	h.waitFor(func() bool { return sw.bundleCount() >= 2 && sw.text() == h.expected("h1") }, "diff applied")
	last := sw.bundles[len(sw.bundles)-1]
	for _, m := range last {
		if m.Op == ofrules.OpDeleteCookie {
			t.Fatal("incremental change sent a full replace")
		}
	}
	// n2's new IP needs an ARP entry, a destination entry and (n2 being in
	// n1's default group, which admits its own members) a peer address of
	// n1's ingress rule on h1.
	if len(last) != 3 {
		t.Errorf("secondary IP on a remote NIC: %d mods, want 3:\n%v", len(last), last)
	}
	if got := h.c.Status().Hosts[0]; !got.Connected || !got.InSync || got.Flows == 0 {
		t.Errorf("status %+v", got)
	}
}

func TestPendingNICs(t *testing.T) {
	h := start(t, basePolicy, nil)
	h.agent.report(t, "h1", bound(map[string]uint32{}))
	h.waitFor(func() bool { return len(h.c.Status().Hosts[0].PendingNICs) > 0 }, "pending NIC listed")
	if got := h.c.Status().Hosts[0].PendingNICs; len(got) != 1 || got[0] != "n1" {
		t.Errorf("pending NICs on h1: %v, want [n1]", got)
	}
	h.agent.report(t, "h1", bound(map[string]uint32{"n1": 4}))
	h.waitFor(func() bool { return len(h.c.Status().Hosts[0].PendingNICs) == 0 }, "n1 no longer pending once bound")
}

func TestNotProgrammedBeforeBindings(t *testing.T) {
	h := start(t, basePolicy, nil)
	sw := h.connect("h1")
	time.Sleep(400 * time.Millisecond) // past the startup grace
	if n := sw.bundleCount(); n != 0 {
		t.Fatalf("%d bundles sent before the host's bindings were known", n)
	}
	h.agent.report(t, "h1", bound(map[string]uint32{"n1": 5}))
	h.waitFor(func() bool { return sw.bundleCount() == 1 && sw.text() == h.expected("h1") }, "programmed after bindings")
}

func TestBundleFailureRetriesWithFullReplace(t *testing.T) {
	h := start(t, basePolicy, map[string]Bindings{"h1": bound(map[string]uint32{"n1": 5}), "h2": bound(map[string]uint32{"n2": 7})})
	sw := h.connect("h1")
	h.waitFor(func() bool { return sw.text() == h.expected("h1") }, "programmed")
	sw.mu.Lock()
	sw.failNext = true
	sw.mu.Unlock()
	h.agent.report(t, "h1", bound(map[string]uint32{"n1": 6})) // n1 re-plugged on another ofport
	h.waitFor(func() bool { return sw.bundleCount() >= 3 && sw.text() == h.expected("h1") }, "retry after failure")
	retry := sw.bundles[2]
	if retry[0].Op != ofrules.OpDeleteCookie {
		t.Fatal("the retry after a failed bundle is not a full replace")
	}
	if h.c.Status().Hosts[0].LastError != "" {
		t.Errorf("error not cleared: %s", h.c.Status().Hosts[0].LastError)
	}
}

func TestBadPolicyKeepsPrevious(t *testing.T) {
	h := start(t, basePolicy, map[string]Bindings{"h1": bound(map[string]uint32{"n1": 5}), "h2": bound(map[string]uint32{"n2": 7})})
	sw := h.connect("h1")
	h.waitFor(func() bool { return sw.text() == h.expected("h1") }, "programmed")
	before := sw.text()
	p := mustPolicy(t, h.src)
	p.Subnets[1].CIDR = "10.0.1.0/25" // overlaps s1
	h.src.set(p, nil)
	h.waitFor(func() bool { return h.c.Status().PolicyError != "" }, "policy error reported")
	if msg := h.c.Status().PolicyError; !strings.Contains(msg, `subnet "s2": cidr: 10.0.1.0/25 overlaps subnet "s1"`) {
		t.Errorf("policy error %q does not name the field", msg)
	}
	h.src.set(nil, errors.New("file vanished"))
	time.Sleep(100 * time.Millisecond)
	if sw.text() != before {
		t.Fatal("flows changed after a rejected policy")
	}
	h.src.set(mustPolicyFrom(t, basePolicy), nil)
	h.waitFor(func() bool { return h.c.Status().PolicyError == "" }, "error cleared by a good policy")
}

func TestUnknownSwitchClosed(t *testing.T) {
	h := start(t, basePolicy, nil)
	sw := newFakeSwitch(0xdead)
	h.c.switchConnected(sw)
	if !sw.closed {
		t.Fatal("switch with an unknown datapath id was kept")
	}
}

// After every one of a random sequence of policy and binding changes, the
// incrementally maintained switch state equals a full compile (the oracle).
func TestIncrementalEqualsFull(t *testing.T) {
	h := start(t, basePolicy, map[string]Bindings{"h1": bound(map[string]uint32{"n1": 5}), "h2": bound(map[string]uint32{"n2": 7})})
	sws := map[string]*fakeSwitch{"h1": h.connect("h1"), "h2": h.connect("h2")}
	rng := rand.New(rand.NewSource(1))
	ports := map[string]map[string]uint32{"h1": {"n1": 5}, "h2": {"n2": 7}}
	nextIP := 20
	for step := 0; step < 60; step++ {
		p := mustPolicy(t, h.src)
		switch rng.Intn(4) {
		case 0: // new NIC, bound on a random host
			host := []string{"h1", "h2"}[rng.Intn(2)]
			name := fmt.Sprintf("x%d", step)
			sub := 1 + rng.Intn(2)
			p.NICs = append(p.NICs, model.NIC{Name: name, Subnet: fmt.Sprintf("s%d", sub), Host: host, IP: fmt.Sprintf("10.0.%d.%d", sub, nextIP)})
			nextIP++
			h.src.set(p, nil)
			ports[host] = clonePorts(ports[host])
			ports[host][name] = uint32(100 + step)
			h.agent.report(t, host, bound(ports[host]))
		case 1: // remove a NIC
			if len(p.NICs) > 2 {
				i := 2 + rng.Intn(len(p.NICs)-2)
				p.NICs = append(p.NICs[:i], p.NICs[i+1:]...)
				h.src.set(p, nil)
			}
		case 2: // secondary IP on n1 or n2
			i := rng.Intn(2)
			sn := []string{"10.0.1.", "10.0.2."}[i]
			p.NICs[i].SecondaryIPs = append(p.NICs[i].SecondaryIPs, fmt.Sprintf("%s%d", sn, nextIP))
			nextIP++
			h.src.set(p, nil)
		case 3: // unplug a random port
			host := []string{"h1", "h2"}[rng.Intn(2)]
			ports[host] = clonePorts(ports[host])
			for n := range ports[host] {
				if n != "n1" && n != "n2" {
					delete(ports[host], n)
					break
				}
			}
			h.agent.report(t, host, bound(ports[host]))
		}
		for _, host := range []string{"h1", "h2"} {
			sw := sws[host]
			h.waitFor(func() bool { return sw.text() == h.expected(host) }, fmt.Sprintf("step %d: %s converged", step, host))
		}
	}
	for host, sw := range sws {
		full := 0
		for _, b := range sw.bundles {
			if b[0].Op == ofrules.OpDeleteCookie {
				full++
			}
		}
		if full != 1 {
			t.Errorf("%s: %d full replaces, want only the one at connect", host, full)
		}
	}
}

func clonePorts(m map[string]uint32) map[string]uint32 {
	out := map[string]uint32{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mustPolicyFrom(t *testing.T, s string) *model.Policy {
	p, err := model.ParseYAML([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A change to a VPC a host does not carry does not recompile that host.
func TestUnconcernedHostSkipped(t *testing.T) {
	const twoVPCs = basePolicy + `  - {name: g1, subnet: gs, host: h2, ip: 10.0.1.10}
`
	pol := strings.Replace(twoVPCs, "vpcs: [{name: v, account: acme, cidr: 10.0.0.0/16}]",
		"vpcs: [{name: v, account: acme, cidr: 10.0.0.0/16}, {name: g, account: acme, cidr: 10.0.0.0/16}]", 1)
	pol = strings.Replace(pol, "subnets:\n", "subnets:\n  - {name: gs, vpc: g, cidr: 10.0.1.0/24}\n", 1)
	h := start(t, pol, map[string]Bindings{"h1": bound(map[string]uint32{"n1": 5}), "h2": bound(map[string]uint32{"n2": 7, "g1": 8})})
	s1, s2 := h.connect("h1"), h.connect("h2")
	h.waitFor(func() bool { return s1.text() == h.expected("h1") && s2.text() == h.expected("h2") }, "programmed")
	b1, b2 := s1.bundleCount(), s2.bundleCount()
	skippedBefore := h.c.skipped.Load()
	p := mustPolicy(t, h.src)
	for i := range p.NICs {
		if p.NICs[i].Name == "g1" {
			p.NICs[i].SecondaryIPs = []string{"10.0.1.20"}
		}
	}
	h.src.set(p, nil)
	h.waitFor(func() bool { return s2.bundleCount() > b2 && s2.text() == h.expected("h2") }, "h2 updated")
	h.waitFor(func() bool { return h.c.skipped.Load() > skippedBefore }, "h1 skipped")
	if s1.bundleCount() != b1 || s1.text() != h.expected("h1") {
		t.Fatal("h1 was touched by a change to a VPC it does not carry")
	}
}
