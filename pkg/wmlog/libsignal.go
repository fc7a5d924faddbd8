package wmlog

import (
	"context"
	"log/slog"

	signallog "go.mau.fi/libsignal/logger"
)

// ReplaceLibsignal points libsignal's process-wide logger at l. Without it,
// libsignal's default logger prints to stdout, which corrupts CLI output such
// as QR codes and JSON events. Call it once at start-up, before any
// whatsmeow client exists: the variable is a plain global that libsignal
// reads without synchronisation.
func ReplaceLibsignal(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	signallog.Logger = &signalAdapter{l: l.With(slog.String("module", "libsignal"))}
}

type signalAdapter struct{ l *slog.Logger }

func (s *signalAdapter) Debug(caller, msg string)   { s.log(slog.LevelDebug, caller, msg) }
func (s *signalAdapter) Info(caller, msg string)    { s.log(slog.LevelInfo, caller, msg) }
func (s *signalAdapter) Warning(caller, msg string) { s.log(slog.LevelWarn, caller, msg) }
func (s *signalAdapter) Error(caller, msg string)   { s.log(slog.LevelError, caller, msg) }

// Configure exists for libsignal's per-file filter; slog levels do that job.
func (s *signalAdapter) Configure(string) {}

func (s *signalAdapter) log(level slog.Level, caller, msg string) {
	s.l.Log(context.Background(), level, msg, slog.String("caller", caller))
}
