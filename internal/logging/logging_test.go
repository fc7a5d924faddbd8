package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
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
