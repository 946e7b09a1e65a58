package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// The raft library logs through hclog and memberlist through the standard
// library's log package, each in its own text format. These bridges hand
// their lines to the node's slog handler instead, at their own levels, so
// a node's log is one format (--log-format json included) and one level
// filter.

// hclogBridge is an hclog.Logger that writes through slog. Raft's trace
// lines go out at debug, its own "name" as the component.
type hclogBridge struct {
	log  *slog.Logger
	name string
	args []any
}

func newHCLog(l *slog.Logger, name string) hclog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &hclogBridge{log: l.With("component", name), name: name}
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (b *hclogBridge) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	b.log.Log(context.Background(), slogLevel(level), msg, hclogArgs(args)...)
}

// hclogArgs turns hclog's key-value pairs into slog's, with values that
// hclog would format (errors, Stringers) as strings.
func hclogArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		key := fmt.Sprint(args[i])
		if i+1 == len(args) {
			out = append(out, slog.String("EXTRA_VALUE_AT_END", key))
			break
		}
		switch v := args[i+1].(type) {
		case hclog.Format: // hclog.Fmt("%+v", x)
			if len(v) > 0 {
				if format, ok := v[0].(string); ok {
					out = append(out, slog.String(key, fmt.Sprintf(format, v[1:]...)))
					continue
				}
			}
			out = append(out, slog.String(key, fmt.Sprint(v...)))
		case error:
			out = append(out, slog.String(key, v.Error()))
		case fmt.Stringer:
			out = append(out, slog.String(key, v.String()))
		default:
			out = append(out, slog.Any(key, v))
		}
	}
	return out
}

func (b *hclogBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *hclogBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *hclogBridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *hclogBridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *hclogBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }

func (b *hclogBridge) enabled(l slog.Level) bool { return b.log.Enabled(context.Background(), l) }
func (b *hclogBridge) IsTrace() bool             { return false } // raft's trace is too chatty even at debug
func (b *hclogBridge) IsDebug() bool             { return b.enabled(slog.LevelDebug) }
func (b *hclogBridge) IsInfo() bool              { return b.enabled(slog.LevelInfo) }
func (b *hclogBridge) IsWarn() bool              { return b.enabled(slog.LevelWarn) }
func (b *hclogBridge) IsError() bool             { return b.enabled(slog.LevelError) }
func (b *hclogBridge) ImpliedArgs() []any        { return b.args }
func (b *hclogBridge) Name() string              { return b.name }
func (b *hclogBridge) SetLevel(hclog.Level)      {} // the slog handler's level rules
func (b *hclogBridge) GetLevel() hclog.Level {
	switch {
	case b.IsDebug():
		return hclog.Debug
	case b.IsInfo():
		return hclog.Info
	case b.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (b *hclogBridge) With(args ...any) hclog.Logger {
	return &hclogBridge{log: b.log.With(hclogArgs(args)...), name: b.name, args: append(append([]any{}, b.args...), args...)}
}

func (b *hclogBridge) Named(name string) hclog.Logger {
	if b.name != "" {
		name = b.name + "." + name
	}
	return b.ResetNamed(name)
}

func (b *hclogBridge) ResetNamed(name string) hclog.Logger {
	return &hclogBridge{log: b.log.With("component", name), name: name, args: b.args}
}

func (b *hclogBridge) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(nil), "", 0)
}

func (b *hclogBridge) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &stdLogBridge{log: b.log}
}

// stdLogBridge is the writer of a standard library *log.Logger (with no
// prefix or flags) whose lines start with a "[LEVEL]" tag, as memberlist's
// do: "[DEBUG] memberlist: Stream connection from=...". It logs each line
// through slog at that level, without the tag.
type stdLogBridge struct{ log *slog.Logger }

func newStdLog(l *slog.Logger, component string) *log.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return log.New(&stdLogBridge{log: l.With("component", component)}, "", 0)
}

func (w *stdLogBridge) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level, msg := splitLevel(string(line))
		w.log.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// splitLevel takes the "[LEVEL] " tag off a line; a line without one is
// logged at info.
func splitLevel(line string) (slog.Level, string) {
	tag, rest, ok := strings.Cut(line, "] ")
	if !ok || !strings.HasPrefix(tag, "[") {
		return slog.LevelInfo, line
	}
	level := slog.LevelInfo
	switch strings.ToUpper(tag[1:]) {
	case "TRACE", "DEBUG":
		level = slog.LevelDebug
	case "INFO":
		level = slog.LevelInfo
	case "WARN", "WARNING":
		level = slog.LevelWarn
	case "ERR", "ERROR":
		level = slog.LevelError
	default:
		return slog.LevelInfo, line
	}
	return level, strings.TrimPrefix(rest, "memberlist: ")
}
