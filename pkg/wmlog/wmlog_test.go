package wmlog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	signallog "go.mau.fi/libsignal/logger"
)

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAdapterLevelsModulesAndFormatting(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	root := New(l, "whatsmeow", Options{})
	root.Infof("connected to %s", "server")
	cli := root.Sub("Client")
	cli.Warnf("retry %d", 3)
	cli.Sub("Socket").Errorf("closed")
	cli.Debugf("plain %% kept")

	lines := decodeLines(t, buf.Bytes())
	want := []struct{ level, msg, module string }{
		{"INFO", "connected to server", "whatsmeow"},
		{"WARN", "retry 3", "whatsmeow/Client"},
		{"ERROR", "closed", "whatsmeow/Client/Socket"},
		{"DEBUG", "plain % kept", "whatsmeow/Client"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d: %s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if lines[i]["level"] != w.level || lines[i]["msg"] != w.msg || lines[i]["module"] != w.module {
			t.Errorf("line %d = %v, want %+v", i, lines[i], w)
		}
	}
}

func TestNodeDumpsDroppedUnlessAsked(t *testing.T) {
	for _, keep := range []bool{false, true} {
		var buf bytes.Buffer
		l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cli := New(l, "Client", Options{NodeDumps: keep})
		cli.Sub("Recv").Debugf("%s", "<iq><pair-device><ref>SECRET</ref></pair-device></iq>")
		cli.Sub("Send").Debugf("%s", "<iq/>")
		cli.Sub("Recv").Warnf("warnings from Recv still pass")
		got := buf.String()
		if keep != strings.Contains(got, "SECRET") {
			t.Errorf("NodeDumps=%v: log = %s", keep, got)
		}
		if !strings.Contains(got, "warnings from Recv still pass") {
			t.Errorf("warning dropped: %s", got)
		}
	}
}

func TestDisabledLevelSkipsFormatting(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	New(l, "x", Options{}).Debugf("%v", panicker{})
	if buf.Len() != 0 {
		t.Fatalf("debug logged at info level: %s", buf.String())
	}
	New(nil, "x", Options{}).Errorf("nil logger must not panic")
}

type panicker struct{}

func (panicker) String() string { panic("formatted although the level is disabled") }

func TestReplaceLibsignalKeepsStdoutClean(t *testing.T) {
	var buf bytes.Buffer
	ReplaceLibsignal(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { signallog.Logger = nil })

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	signallog.Warning("untrusted identity")
	signallog.Error("bad mac")
	os.Stdout = saved
	w.Close()
	printed, _ := io.ReadAll(r)
	if len(printed) != 0 {
		t.Fatalf("libsignal wrote to stdout: %q", printed)
	}
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 2 || lines[0]["msg"] != "untrusted identity" || lines[1]["level"] != "ERROR" ||
		lines[0]["module"] != "libsignal" || !strings.Contains(lines[0]["caller"].(string), "wmlog_test.go") {
		t.Fatalf("libsignal lines = %v", lines)
	}
}
