package ovsdb

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
)

// newLogr adapts a logrus logger for libovsdb, which logs through logr.
// libovsdb's verbosity levels map to logrus as V(0) info, V(1..3) debug
// (connects, reconnects, monitors) and V(4+) trace (every transaction and
// update). libovsdb's errors are mostly transient (a failed reconnect
// attempt), so they become warnings.
func newLogr(log logrus.FieldLogger) logr.Logger {
	return logr.New(&logrusSink{log: log})
}

type logrusSink struct {
	log  logrus.FieldLogger
	name string
}

func (s *logrusSink) Init(logr.RuntimeInfo) {}

func levelFor(v int) logrus.Level {
	switch {
	case v <= 0:
		return logrus.InfoLevel
	case v <= 3:
		return logrus.DebugLevel
	default:
		return logrus.TraceLevel
	}
}

func (s *logrusSink) Enabled(v int) bool {
	lvl := levelFor(v)
	switch l := s.log.(type) {
	case *logrus.Entry:
		return l.Logger.IsLevelEnabled(lvl)
	case *logrus.Logger:
		return l.IsLevelEnabled(lvl)
	}
	return lvl <= logrus.InfoLevel
}

func (s *logrusSink) entry(kv []any) *logrus.Entry {
	f := logrus.Fields{}
	if s.name != "" {
		f["logger"] = s.name
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f[fmt.Sprint(kv[i])] = kv[i+1]
	}
	if len(kv)%2 == 1 {
		f["extra"] = kv[len(kv)-1]
	}
	return s.log.WithFields(f)
}

func (s *logrusSink) Info(v int, msg string, kv ...any) {
	s.entry(kv).Log(levelFor(v), "libovsdb: "+msg)
}

func (s *logrusSink) Error(err error, msg string, kv ...any) {
	s.entry(kv).WithError(err).Warn("libovsdb: " + msg)
}

func (s *logrusSink) WithValues(kv ...any) logr.LogSink {
	return &logrusSink{log: s.entry(kv), name: s.name}
}

func (s *logrusSink) WithName(name string) logr.LogSink {
	n := name
	if s.name != "" {
		n = s.name + "/" + name
	}
	return &logrusSink{log: s.log, name: n}
}
