// Package ovsdb connects to a host's Open_vSwitch database with libovsdb
// (github.com/ovn-kubernetes/libovsdb), using the trimmed models in
// ovsdb/vswitchd.
//
// Dial returns a libovsdb client.Client that already monitors the tables
// OpenVPC uses (only the modelled columns, so that a newer server does not
// trip libovsdb's cache) and reconnects by itself with backoff; after a
// reconnect libovsdb rebuilds its cache. Transact wraps client.Transact with a
// deadline and ovsdb.CheckOperationResults.
package ovsdb

import (
	"context"
	"crypto/tls"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ovsdb/vswitchd"
)

// DefaultTimeout bounds Dial and Transact when the caller's context has no
// deadline of its own.
const DefaultTimeout = 30 * time.Second

// Reconnect behaviour. The per-attempt timeout must stay below the
// inactivity timeout (libovsdb checks).
const (
	reconnectAttemptTimeout = 10 * time.Second
	inactivityTimeout       = 30 * time.Second
	backoffInitial          = 200 * time.Millisecond
	backoffMax              = 5 * time.Second
)

// Option configures Dial.
type Option func(*options)

type options struct {
	tls *tls.Config
}

// WithTLS sets the TLS configuration for ssl: endpoints (required for them).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// Model returns the client database model for the tables OpenVPC uses.
func Model() (model.ClientDBModel, error) {
	m, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return model.ClientDBModel{}, fmt.Errorf("ovsdb: build model: %w", err)
	}
	return m, nil
}

// Dial connects to the Open_vSwitch database at endpoint ("unix:/path",
// "tcp:host:port" or "ssl:host:port", the latter with WithTLS), checks the
// server's schema against the models, starts a monitor of the modelled
// tables and columns and returns once the cache holds the current contents.
//
// The client reconnects by itself (with backoff, forever) when the
// connection drops; transactions issued meanwhile block until reconnected or
// until their context ends. Close the client when done.
func Dial(ctx context.Context, endpoint string, log logrus.FieldLogger, opts ...Option) (client.Client, error) {
	if log == nil {
		log = logrus.StandardLogger()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	scheme, rest, ok := strings.Cut(endpoint, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("ovsdb: endpoint %q: want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT", endpoint)
	}
	switch scheme {
	case client.UNIX, client.TCP:
	case client.SSL:
		if o.tls == nil {
			return nil, fmt.Errorf("ovsdb: endpoint %q: ssl needs a TLS configuration (ovsdb.WithTLS)", endpoint)
		}
	default:
		return nil, fmt.Errorf("ovsdb: endpoint %q: unsupported scheme %q (want unix, tcp or ssl)", endpoint, scheme)
	}
	dbModel, err := Model()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	log = log.WithField("ovsdb", endpoint)
	logger := newLogr(log)
	bo := newReconnectBackoff()
	copts := []client.Option{
		client.WithEndpoint(endpoint),
		client.WithInactivityCheck(inactivityTimeout, reconnectAttemptTimeout, bo),
		client.WithLogger(&logger),
	}
	if o.tls != nil {
		copts = append(copts, client.WithTLSConfig(o.tls))
	}
	cli, err := client.NewOVSDBClient(dbModel, copts...)
	if err != nil {
		return nil, fmt.Errorf("ovsdb: new client for %s: %w", endpoint, err)
	}
	if err := cli.Connect(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("ovsdb: connect to %s: %w", endpoint, err)
	}
	mon, err := monitorRequest(cli, dbModel)
	if err != nil {
		cli.Close()
		return nil, err
	}
	if _, err := cli.Monitor(ctx, mon); err != nil {
		cli.Close()
		return nil, fmt.Errorf("ovsdb: monitor %s: %w", endpoint, err)
	}
	log.Debug("ovsdb connected")
	return &conn{Client: cli, log: log, reaped: make(chan struct{})}, nil
}

// monitorRequest monitors every modelled table, restricted to the modelled
// columns. (MonitorAll would ask for every column of the server's schema,
// and libovsdb fails to apply updates to columns the model lacks.)
func monitorRequest(cli client.Client, dbModel model.ClientDBModel) (*client.Monitor, error) {
	mon := cli.NewMonitor()
	for table, typ := range dbModel.Types() {
		cols := Columns(typ)
		if len(cols) == 0 {
			return nil, fmt.Errorf("ovsdb: model for %s has no columns", table)
		}
		mon.Tables = append(mon.Tables, client.TableMonitor{Table: table, Fields: cols})
	}
	return mon, nil
}

// Columns lists the OVSDB columns (ovsdb struct tags, without _uuid) of a
// model type (struct or pointer to struct).
func Columns(typ reflect.Type) []string {
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var cols []string
	for i := 0; i < typ.NumField(); i++ {
		tag := typ.Field(i).Tag.Get("ovsdb")
		if tag != "" && tag != "_uuid" {
			cols = append(cols, tag)
		}
	}
	return cols
}

// Transact runs ops in one transaction and checks every operation's result
// with ovsdb.CheckOperationResults. ctx gets DefaultTimeout if it has no
// deadline.
func Transact(ctx context.Context, cli client.Client, ops ...libovsdb.Operation) ([]libovsdb.OperationResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	res, err := cli.Transact(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("ovsdb transact: %w", err)
	}
	opErrs, err := libovsdb.CheckOperationResults(res, ops)
	if err != nil {
		return res, fmt.Errorf("ovsdb transact: %w", describeOpErrors(err, opErrs))
	}
	return res, nil
}

// describeOpErrors turns libovsdb's "N ovsdb operations failed" into a
// message that names each failed operation.
func describeOpErrors(err error, opErrs []libovsdb.OperationError) error {
	if len(opErrs) == 0 {
		return err
	}
	parts := make([]string, 0, len(opErrs))
	for _, oe := range opErrs {
		desc := "operation"
		if op := oe.Operation(); op != nil {
			desc = op.Op
			if op.Table != "" {
				desc += " " + op.Table
			}
		}
		parts = append(parts, fmt.Sprintf("%s: %v", desc, oe))
	}
	return fmt.Errorf("%w: %s", err, strings.Join(parts, "; "))
}

// withDefaultTimeout returns ctx with DefaultTimeout if it has no deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// conn wraps the libovsdb client to make Close final.
//
// libovsdb v0.8.1's Close is a no-op while the client is between a lost
// connection and a successful reconnect: the reconnect loop keeps running
// and later connects a client nobody uses any more. So if a reconnect was
// pending, Close closes the client again once it has reconnected.
type conn struct {
	client.Client
	log    logrus.FieldLogger
	once   sync.Once
	reaped chan struct{} // closed once a pending reconnect was closed again
}

func (c *conn) Close() {
	c.once.Do(func() {
		live := c.Client.CurrentEndpoint() != ""
		c.Client.Close()
		if !live {
			c.log.Debug("ovsdb client closed while reconnecting; will close it again once reconnected")
			go c.closeAfterReconnect()
		}
	})
}

func (c *conn) closeAfterReconnect() {
	defer close(c.reaped)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range t.C {
		if c.Client.CurrentEndpoint() != "" {
			c.Client.Close()
			c.log.Debug("closed ovsdb client again after its pending reconnect")
			return
		}
	}
}

// reconnectBackoff is an exponential backoff that never stops: libovsdb
// panics if its reconnect retry gives up.
type reconnectBackoff struct {
	mu  sync.Mutex
	exp *backoff.ExponentialBackOff
}

func newReconnectBackoff() *reconnectBackoff {
	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval = backoffInitial
	exp.MaxInterval = backoffMax
	exp.MaxElapsedTime = 0
	exp.Reset()
	return &reconnectBackoff{exp: exp}
}

func (b *reconnectBackoff) NextBackOff() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.exp.NextBackOff()
	if d == backoff.Stop {
		d = backoffMax
	}
	return d
}

func (b *reconnectBackoff) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.exp.Reset()
}
