package cluster

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// raft logs through hclog and memberlist through the standard log
// package; both are sent to the node's slog.Logger here, with their levels.

// hclogAdapter is an hclog.Logger that writes to a slog.Logger. Raft is
// chatty at info about routine events, so its info lines go out at debug
// unless they say something changed (see raftInfoLevel).
type hclogAdapter struct {
	log  *slog.Logger
	name string
	args []any
}

func newHclog(l *slog.Logger, name string) hclog.Logger {
	return &hclogAdapter{log: l, name: name}
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case hclog.Trace, hclog.Debug:
		lv = slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		lv = raftInfoLevel(msg)
	case hclog.Warn:
		lv = slog.LevelWarn
	default:
		lv = slog.LevelError
	}
	if lv > slog.LevelInfo && raftRoutine(msg) {
		lv = slog.LevelDebug
	}
	if !h.log.Enabled(context.Background(), lv) {
		return
	}
	all := make([]any, 0, 2+len(h.args)+len(args))
	all = append(all, "component", h.name)
	all = append(all, h.args...)
	all = append(all, args...)
	h.log.Log(context.Background(), lv, msg, all...)
}

// raftInfoLevel keeps at info the raft events an operator wants to see
// (elections won and lost, membership changes); the rest goes to debug.
func raftInfoLevel(msg string) slog.Level {
	for _, s := range []string{"entering leader", "entering follower", "election won", "updating configuration", "removed ourself", "restored from snapshot"} {
		if strings.Contains(msg, s) {
			return slog.LevelInfo
		}
	}
	return slog.LevelDebug
}

// raftRoutine tells the warnings and errors raft logs on every retry
// while a member is down or behind: a stopped node stays a member, so
// these would repeat for as long as it is away. The gossip logs "node
// down" once instead.
func raftRoutine(msg string) bool {
	for _, s := range []string{"failed to appendEntries to", "failed to heartbeat to", "failed to contact",
		"failed to install snapshot", "failed to send snapshot to", "failed to get log", "appendEntries rejected",
		"failed to get previous log", "failed to decode incoming command", "failed to make requestVote RPC",
		"failed to make preVote RPC", "skipping application of old log"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (h *hclogAdapter) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hclogAdapter) IsTrace() bool                 { return false }
func (h *hclogAdapter) IsDebug() bool                 { return h.log.Enabled(context.Background(), slog.LevelDebug) }
func (h *hclogAdapter) IsInfo() bool                  { return h.log.Enabled(context.Background(), slog.LevelInfo) }
func (h *hclogAdapter) IsWarn() bool                  { return h.log.Enabled(context.Background(), slog.LevelWarn) }
func (h *hclogAdapter) IsError() bool                 { return h.log.Enabled(context.Background(), slog.LevelError) }
func (h *hclogAdapter) ImpliedArgs() []any            { return h.args }
func (h *hclogAdapter) Name() string                  { return h.name }
func (h *hclogAdapter) SetLevel(hclog.Level)          {}
func (h *hclogAdapter) GetLevel() hclog.Level         { return hclog.Debug }

func (h *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{log: h.log, name: h.name, args: append(append([]any(nil), h.args...), args...)}
}

func (h *hclogAdapter) Named(name string) hclog.Logger {
	return &hclogAdapter{log: h.log, name: h.name + "." + name, args: h.args}
}

func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{log: h.log, name: name, args: h.args}
}

func (h *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}

func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return levelWriter{log: h.log, component: h.name}
}

// levelWriter takes lines of the standard log package in the style
// "[WARN] memberlist: text" and logs them with that level.
type levelWriter struct {
	log       *slog.Logger
	component string
}

func (w levelWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	lv := slog.LevelInfo
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if bytes.HasPrefix(line, []byte(l.prefix)) {
			lv, line = l.level, bytes.TrimSpace(line[len(l.prefix):])
			break
		}
	}
	if lv > slog.LevelInfo && bytes.Contains(line, []byte("use of closed network connection")) {
		lv = slog.LevelDebug // sends racing memberlist's own shutdown
	}
	if w.log.Enabled(context.Background(), lv) {
		w.log.Log(context.Background(), lv, string(line), "component", w.component)
	}
	return len(p), nil
}
