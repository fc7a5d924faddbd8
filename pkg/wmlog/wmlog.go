// Package wmlog routes whatsmeow's and libsignal's logging into log/slog.
//
// whatsmeow logs through its own waLog.Logger interface and libsignal writes
// to stdout by default; both would otherwise corrupt CLI output (QR codes,
// JSON events) and bypass the daemon's structured logs.
package wmlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// Options tunes the adapter.
type Options struct {
	// NodeDumps keeps whatsmeow's debug dumps of every sent and received
	// protocol node (modules ending in "/Send" and "/Recv"). They are dropped
	// by default because pairing nodes carry the refs a QR code is built from,
	// and secrets must never reach the logs.
	NodeDumps bool
}

// New returns a waLog.Logger that writes to l. module names the root
// component (e.g. "whatsmeow"); Sub appends to it with "/" like whatsmeow's
// own loggers, and the result is logged as the "module" attribute.
func New(l *slog.Logger, module string, opts Options) waLog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &adapter{l: l, module: module, opts: opts}
}

type adapter struct {
	l      *slog.Logger
	module string
	opts   Options
}

func (a *adapter) Errorf(msg string, args ...any) { a.log(slog.LevelError, msg, args) }
func (a *adapter) Warnf(msg string, args ...any)  { a.log(slog.LevelWarn, msg, args) }
func (a *adapter) Infof(msg string, args ...any)  { a.log(slog.LevelInfo, msg, args) }
func (a *adapter) Debugf(msg string, args ...any) { a.log(slog.LevelDebug, msg, args) }

func (a *adapter) Sub(module string) waLog.Logger {
	m := module
	if a.module != "" {
		m = a.module + "/" + module
	}
	return &adapter{l: a.l, module: m, opts: a.opts}
}

func (a *adapter) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	// Checking Enabled first skips the Sprintf of whatsmeow's very chatty
	// debug lines when debug is off.
	if !a.l.Enabled(ctx, level) {
		return
	}
	if level == slog.LevelDebug && !a.opts.NodeDumps && isNodeDump(a.module) {
		return
	}
	// Always a format string, as in whatsmeow's own loggers ("%%" → "%").
	text := fmt.Sprintf(msg, args...)
	if a.module == "" {
		a.l.Log(ctx, level, text)
		return
	}
	a.l.Log(ctx, level, text, slog.String("module", a.module))
}

func isNodeDump(module string) bool {
	return module == "Send" || module == "Recv" ||
		strings.HasSuffix(module, "/Send") || strings.HasSuffix(module, "/Recv")
}
