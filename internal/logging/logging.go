// Package logging builds wactl's log/slog logger: human text by default,
// JSON with --log-format json, and, when stderr is the systemd journal, no
// timestamps (journald stamps every line itself) and a syslog priority
// prefix on every line so `journalctl -p warning` works.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
)

// Options select the logger's shape.
type Options struct {
	Level  string // debug | info | warn | error
	Format string // auto | text | json
	// Journal is true when the output is connected to journald; see
	// StderrIsJournal.
	Journal bool
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(orDefault(o.Level, "info")))); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", o.Level)
	}
	ho := &slog.HandlerOptions{Level: lvl}
	if o.Journal {
		ho.ReplaceAttr = dropTime
	}
	var build func(io.Writer) slog.Handler
	switch orDefault(o.Format, "auto") {
	case "json":
		build = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, ho) }
	case "auto", "text":
		build = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, ho) }
	default:
		return nil, fmt.Errorf("log format %q: use auto, text or json", o.Format)
	}
	if o.Journal {
		return slog.New(newJournalHandler(w, build)), nil
	}
	return slog.New(build(w)), nil
}

// Install makes l the process's default logger, so that the standard
// library's log package (net/http's server errors, libraries that call
// log.Printf) goes through the same handler, level and journal priorities
// instead of writing unprefixed lines of its own.
func Install(l *slog.Logger) {
	slog.SetDefault(l)
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// StderrIsJournal reports whether stderr is the journal stream systemd
// announced in $JOURNAL_STREAM ("device:inode"), as sd_journal documents.
func StderrIsJournal() bool {
	return isJournal(os.Getenv("JOURNAL_STREAM"), os.Stderr)
}

func isJournal(stream string, f *os.File) bool {
	if stream == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
