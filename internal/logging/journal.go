package logging

import (
	"context"
	"io"
	"log/slog"
)

// journald reads a "<N>" prefix on each stderr line as the line's syslog
// priority (sd-daemon(3)); without it every line is "info" and
// `journalctl -p warning` shows nothing of wactl's warnings.
const (
	prioErr     = "<3>"
	prioWarning = "<4>"
	prioInfo    = "<6>"
	prioDebug   = "<7>"
)

func priorityOf(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return prioErr
	case l >= slog.LevelWarn:
		return prioWarning
	case l >= slog.LevelInfo:
		return prioInfo
	}
	return prioDebug
}

// prefixWriter prepends a fixed prefix to every Write. slog's built-in
// handlers write each record with one Write call, so the prefix lands at the
// start of each line.
type prefixWriter struct {
	w      io.Writer
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	buf := make([]byte, 0, len(p.prefix)+len(b))
	buf = append(append(buf, p.prefix...), b...)
	if _, err := p.w.Write(buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// journalHandler routes each record to a handler whose writer carries that
// record's priority prefix. The inner handlers are built alike, so
// WithAttrs and WithGroup apply to all of them.
type journalHandler struct {
	byPrio map[string]slog.Handler
}

func newJournalHandler(w io.Writer, build func(io.Writer) slog.Handler) slog.Handler {
	h := &journalHandler{byPrio: map[string]slog.Handler{}}
	for _, p := range []string{prioErr, prioWarning, prioInfo, prioDebug} {
		h.byPrio[p] = build(&prefixWriter{w: w, prefix: []byte(p)})
	}
	return h
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.byPrio[priorityOf(l)].Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.byPrio[priorityOf(r.Level)].Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.derive(func(in slog.Handler) slog.Handler { return in.WithAttrs(as) })
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return h.derive(func(in slog.Handler) slog.Handler { return in.WithGroup(name) })
}

func (h *journalHandler) derive(f func(slog.Handler) slog.Handler) slog.Handler {
	n := &journalHandler{byPrio: make(map[string]slog.Handler, len(h.byPrio))}
	for p, in := range h.byPrio {
		n.byPrio[p] = f(in)
	}
	return n
}
