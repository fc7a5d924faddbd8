package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestFormats(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Options{Format: "json", Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("hello", "account", "a1")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if m["msg"] != "hello" || m["account"] != "a1" || m["time"] == nil {
		t.Fatalf("%v", m)
	}

	buf.Reset()
	l, _ = New(&buf, Options{Journal: true})
	l.Warn("w")
	if strings.Contains(buf.String(), "time=") || !strings.Contains(buf.String(), "level=WARN msg=w") {
		t.Fatalf("journal text: %q", buf.String())
	}
	if _, err := New(&buf, Options{Format: "xml"}); err == nil {
		t.Fatal("bad format accepted")
	}
	if _, err := New(&buf, Options{Level: "loud"}); err == nil {
		t.Fatal("bad level accepted")
	}
}

func TestJournalDetection(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "j")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if !isJournal(fmt.Sprintf("%d:%d", st.Dev, st.Ino), f) {
		t.Fatal("matching JOURNAL_STREAM not detected")
	}
	if isJournal("1:2", f) || isJournal("", f) {
		t.Fatal("non-matching stream detected as journal")
	}
}

func TestJournalPriorities(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		l, err := New(&buf, Options{Journal: true, Format: format, Level: "debug"})
		if err != nil {
			t.Fatal(err)
		}
		l = l.With("component", "test").WithGroup("g")
		l.Debug("d", "k", 1)
		l.Info("i", "k", 1)
		l.Warn("w", "k", 1)
		l.Error("e", "k", 1)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("%s: want 4 lines, got %q", format, buf.String())
		}
		for i, want := range []string{"<7>", "<6>", "<4>", "<3>"} {
			if !strings.HasPrefix(lines[i], want) {
				t.Errorf("%s line %d: want prefix %s: %q", format, i, want, lines[i])
			}
			if !strings.Contains(lines[i], "component") || !strings.Contains(lines[i], "g.k") && !strings.Contains(lines[i], `"g":{"k":1}`) {
				t.Errorf("%s line %d lost attributes or group: %q", format, i, lines[i])
			}
		}
	}
	// Outside the journal nothing is prefixed.
	var buf bytes.Buffer
	l, _ := New(&buf, Options{})
	l.Warn("w")
	if strings.HasPrefix(buf.String(), "<") {
		t.Fatalf("prefix outside the journal: %q", buf.String())
	}
}

func TestJournalLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New(&buf, Options{Journal: true, Level: "warn"})
	l.Info("hidden")
	l.Warn("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.HasPrefix(got, "<4>") {
		t.Fatalf("%q", got)
	}
}

func TestInstallRoutesStandardLog(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var buf bytes.Buffer
	l, _ := New(&buf, Options{Journal: true})
	Install(l)
	log.Printf("http: Accept error: too many open files")
	if got := buf.String(); !strings.HasPrefix(got, "<6>") || !strings.Contains(got, "too many open files") {
		t.Fatalf("standard logger not routed through slog: %q", got)
	}
}
