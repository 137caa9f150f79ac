package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Limits the embedded etcd runs with. etcd's defaults (128 operations and
// 1.5 MiB per request) would cap one Update at about a hundred objects.
// An external cluster should use similar values (--max-txn-ops,
// --max-request-bytes) for bulk changes.
const (
	MaxTxnOps       = 16384
	MaxRequestBytes = 8 << 20
)

// Embedded is a single-member etcd running inside this process, its client
// URL on loopback.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// StartEmbedded starts a single-member etcd with its data under dir and its
// client and peer URLs on free loopback ports (new ones each start; the data
// does not depend on them). ctx bounds the start-up. Close stops it.
func StartEmbedded(ctx context.Context, dir string, log logrus.FieldLogger) (*Embedded, error) {
	log = orDiscard(log)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // etcd's data is private
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	var lastErr error
	// Free ports are found by binding :0 and closing; another process may
	// take one in between, hence the retries.
	for attempt := 0; attempt < 5; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		cfg, err := memberConfig(memberSpec{
			Name:           "openvpc",
			Dir:            dir,
			ClientURL:      fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
			PeerURL:        peer,
			InitialCluster: "openvpc=" + peer,
			ClusterToken:   "openvpc",
		}, log)
		if err != nil {
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
		e, err := embed.StartEtcd(cfg)
		if err == nil {
			err = waitReady(ctx, e)
			if err == nil {
				em := &Embedded{etcd: e}
				for _, l := range e.Clients {
					em.endpoints = append(em.endpoints, "http://"+l.Addr().String())
				}
				log.WithFields(logrus.Fields{"dir": dir, "endpoints": em.endpoints}).Info("embedded etcd ready")
				return em, nil
			}
			return nil, fmt.Errorf("embedded etcd in %s: %w", dir, err)
		}
		if !isAddrInUse(err) {
			return nil, fmt.Errorf("embedded etcd in %s: %w", dir, err)
		}
		lastErr = err
		log.WithError(err).Debug("embedded etcd: port taken, retrying")
	}
	return nil, fmt.Errorf("embedded etcd in %s: %w", dir, lastErr)
}

// Endpoints returns the client URLs.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Err reports fatal errors of the running server.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server; its data stays in dir.
func (e *Embedded) Close() error {
	e.closeOnce.Do(e.etcd.Close)
	return nil
}

// memberSpec describes one etcd member on loopback.
type memberSpec struct {
	Name, Dir          string
	ClientURL, PeerURL string
	InitialCluster     string // name=peerURL,...
	ClusterToken       string
}

func memberConfig(m memberSpec, log logrus.FieldLogger) (*embed.Config, error) {
	cu, err := url.Parse(m.ClientURL)
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(m.PeerURL)
	if err != nil {
		return nil, err
	}
	for _, u := range []*url.URL{cu, pu} {
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%s: only loopback addresses are supported", u)
		}
	}
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.Dir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = m.InitialCluster
	cfg.InitialClusterToken = m.ClusterToken
	cfg.ClusterState = embed.ClusterStateFlagNew // ignored once the data dir exists
	cfg.MaxTxnOps = MaxTxnOps
	cfg.MaxRequestBytes = MaxRequestBytes
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	cfg.EnableGRPCGateway = false
	// Only set by etcd's flag parsing; 0 would log every request as slow.
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapToLogrus(log.WithField("component", "etcd")))
	return cfg, nil
}

// waitReady waits until e serves clients (for a cluster: has a leader).
func waitReady(ctx context.Context, e *embed.Etcd) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd failed: %w", err)
	case <-e.Server.StopNotify():
		e.Close()
		return errors.New("etcd stopped while starting")
	case <-ctx.Done():
		e.Close()
		return fmt.Errorf("etcd not ready: %w", ctx.Err())
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

func orDiscard(log logrus.FieldLogger) logrus.FieldLogger {
	if log != nil {
		return log
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// zapToLogrus returns a zap logger (as etcd wants) that writes to log.
// etcd's info messages are chatty and go to debug; warnings and errors keep
// their level.
func zapToLogrus(log logrus.FieldLogger) *zap.Logger {
	return zap.New(&logrusCore{log: log})
}

type logrusCore struct {
	log    logrus.FieldLogger
	fields []zapcore.Field
}

func (c *logrusCore) Enabled(l zapcore.Level) bool {
	want := logrus.WarnLevel
	if l < zapcore.WarnLevel {
		want = logrus.DebugLevel
	}
	switch lg := c.log.(type) {
	case *logrus.Logger:
		return lg.IsLevelEnabled(want)
	case *logrus.Entry:
		return lg.Logger.IsLevelEnabled(want)
	}
	return true
}

func (c *logrusCore) With(fs []zapcore.Field) zapcore.Core {
	return &logrusCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fs...)}
}

func (c *logrusCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *logrusCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	entry := c.log.WithFields(logrus.Fields(enc.Fields))
	if e.LoggerName != "" {
		entry = entry.WithField("logger", e.LoggerName)
	}
	// Listeners closing at shutdown are reported as errors; they are not.
	errText, _ := enc.Fields["error"].(string)
	errText = strings.ToLower(errText)
	quiet := strings.Contains(errText, "use of closed network connection") || strings.Contains(errText, "server closed") ||
		irrelevantWarnings[e.Message]
	switch {
	case e.Level < zapcore.WarnLevel || quiet:
		entry.Debug(e.Message)
	case e.Level == zapcore.WarnLevel:
		entry.Warn(e.Message)
	default:
		entry.Error(e.Message) // zap itself handles panic/fatal after Write
	}
	return nil
}

func (c *logrusCore) Sync() error { return nil }

// irrelevantWarnings do not apply to an embedded, loopback-only member
// without etcd auth.
var irrelevantWarnings = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// StartCluster starts a cluster of len(dirs) etcd members inside this
// process, member i's data under dirs[i], all URLs on free loopback ports:
// a single-machine stand-in for an external cluster (tests, trials). It
// returns once every member is ready; on error it stops what it started.
func StartCluster(ctx context.Context, dirs []string, log logrus.FieldLogger) ([]*Embedded, error) {
	log = orDiscard(log)
	n := len(dirs)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		ports, err := freePorts(2 * n)
		if err != nil {
			return nil, fmt.Errorf("etcd cluster: %w", err)
		}
		var initial []string
		for i := range dirs {
			initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
		}
		token := fmt.Sprintf("openvpc-%d", time.Now().UnixNano())
		var members []*Embedded
		stopAll := func() {
			for _, m := range members {
				m.Close()
			}
		}
		for i, dir := range dirs {
			if err = os.MkdirAll(dir, 0o700); err != nil {
				break
			}
			var cfg *embed.Config
			cfg, err = memberConfig(memberSpec{
				Name: fmt.Sprintf("m%d", i), Dir: dir,
				ClientURL:      fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
				PeerURL:        fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
				InitialCluster: strings.Join(initial, ","), ClusterToken: token,
			}, log)
			if err != nil {
				break
			}
			var e *embed.Etcd
			if e, err = embed.StartEtcd(cfg); err != nil {
				break
			}
			members = append(members, &Embedded{etcd: e, endpoints: []string{cfg.ListenClientUrls[0].String()}})
		}
		if err == nil {
			for _, m := range members {
				if err = waitReady(ctx, m.etcd); err != nil {
					break
				}
			}
		}
		if err == nil {
			return members, nil
		}
		stopAll()
		if !isAddrInUse(err) {
			return nil, fmt.Errorf("etcd cluster: %w", err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("etcd cluster: %w", lastErr)
}

// IsLeader reports whether this member leads its cluster.
func (e *Embedded) IsLeader() bool { return e.etcd.Server.Leader() == e.etcd.Server.MemberID() }

// Kill stops the member abruptly: no leadership hand-over (failure tests).
func (e *Embedded) Kill() {
	e.closeOnce.Do(func() {
		e.etcd.Server.HardStop()
		e.etcd.Close()
	})
}
