package pair

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rsc.io/qr"

	"github.com/wactl/wactl/pkg/pair/pairtest"
)

func TestTerminalViewShowsCodesCountdownAndOutcome(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	width := 20
	v := NewTerminalView(&buf, ViewOptions{Now: func() time.Time { return now }, TermWidth: func() int { return width }})

	// Too narrow: the code is not drawn and the operator is told how wide.
	v.Handle(Event{Kind: KindQR, Code: sampleCode, Seq: 1, ExpiresAt: now.Add(60 * time.Second)})
	need, _ := QRWidth(sampleCode, 0)
	if out := buf.String(); !strings.Contains(out, "--code") || strings.Contains(out, "█") || !strings.Contains(out, "Code 1 expires in 60s") {
		t.Fatalf("narrow terminal output:\n%s", out)
	}
	now = now.Add(1500 * time.Millisecond)
	v.Tick()
	v.Tick() // same second: no redraw
	if got := strings.Count(buf.String(), "expires in 59s"); got != 1 {
		t.Fatalf("countdown drawn %d times:\n%q", got, buf.String())
	}

	// Widened: the next code is drawn and decodes to the same modules.
	width = need
	buf.Reset()
	v.Handle(Event{Kind: KindQR, Code: sampleCode, Seq: 2, ExpiresAt: now.Add(20 * time.Second)})
	mods, err := pairtest.ParseHalfBlocks(buf.String(), false)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	want, _ := qr.Encode(sampleCode, qr.L)
	for y := range mods {
		for x := range mods[y] {
			if mods[y][x] != want.Black(x, y) {
				t.Fatalf("module (%d,%d) differs", x, y)
			}
		}
	}
	if !strings.Contains(buf.String(), "Code 2 expires in 20s") {
		t.Fatalf("no countdown for code 2:\n%s", buf.String())
	}
	now = now.Add(30 * time.Second)
	v.Tick()
	if !strings.Contains(buf.String(), "Code 2 expires in 0s") {
		t.Fatal("countdown went negative or stopped")
	}

	buf.Reset()
	v.Handle(Event{Kind: KindScanned, Phone: "+40712345678"})
	v.Handle(Event{Kind: KindOutcome, Outcome: OutcomePaired, Phone: "+40712345678", JID: "40712345678:3@s.whatsapp.net"})
	v.Tick()
	if got := buf.String(); got != "\nScanned by +40712345678, finishing…\nPaired as +40712345678 (device 40712345678:3@s.whatsapp.net).\n" {
		t.Fatalf("end of output = %q", got)
	}
	select {
	case <-v.done:
	default:
		t.Fatal("Run would not stop after the outcome")
	}
	if v.Err() != nil {
		t.Fatal(v.Err())
	}
}

func TestOutcomeLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Outcome: OutcomeExpired}, "Expired"},
		{Event{Outcome: OutcomeRefused, Error: "pairing refused: the phone that scanned is +1"}, "Refused: pairing refused: the phone that scanned is +1"},
		{Event{Outcome: OutcomeCancelled}, "Cancelled. Nothing was kept."},
		{Event{Outcome: OutcomeError, Error: "boom"}, "Pairing failed: boom"},
	} {
		if got := OutcomeLine(tc.e); !strings.HasPrefix(got, tc.want) || strings.Contains(got, "\n") {
			t.Errorf("OutcomeLine(%+v) = %q", tc.e, got)
		}
	}
}

func TestTerminalViewPairCode(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	v := NewTerminalView(&buf, ViewOptions{})
	v.Handle(Event{Kind: KindPairCode, Code: "ABCD-EFGH"})
	v.Handle(Event{Kind: KindOutcome, Outcome: OutcomeExpired})
	if out := buf.String(); !strings.Contains(out, "    ABCD-EFGH\n") || !strings.HasSuffix(out, "run wactl pair again.\n") {
		t.Fatalf("output = %q", out)
	}
}

// Into a redirected stderr no code is drawn, unless asked: the view says
// once why and what to use.
func TestTerminalViewNoDraw(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	v := NewTerminalView(&buf, ViewOptions{NoDraw: true})
	for seq := 1; seq <= 3; seq++ {
		v.Handle(Event{Kind: KindQR, Code: sampleCode, Seq: seq, ExpiresAt: time.Now().Add(20 * time.Second)})
	}
	out := buf.String()
	if strings.ContainsAny(out, "█▀▄") || strings.Contains(out, sampleCode) {
		t.Fatalf("a code reached a redirected stderr:\n%s", out)
	}
	if n := strings.Count(out, "not drawn"); n != 1 || !strings.Contains(out, "--qr-png") || !strings.Contains(out, "--qr-text") {
		t.Fatalf("want one explanation naming --qr-png and --qr-text, got %d:\n%s", n, out)
	}
}

// The view takes its own two lines off the terminal's height.
func TestTerminalViewChecksHeight(t *testing.T) {
	t.Parallel()
	_, rows, _ := QRSize(sampleCode, 0)
	for _, tc := range []struct {
		height int
		drawn  bool
	}{{rows + viewRows - 1, false}, {rows + viewRows, true}} {
		var buf bytes.Buffer
		v := NewTerminalView(&buf, ViewOptions{TermWidth: func() int { return 200 }, TermHeight: func() int { return tc.height }})
		v.Handle(Event{Kind: KindQR, Code: sampleCode, Seq: 1, ExpiresAt: time.Now().Add(20 * time.Second)})
		_, err := pairtest.ParseHalfBlocks(buf.String(), false)
		if drawn := err == nil; drawn != tc.drawn {
			t.Fatalf("height %d: drawn=%v, want %v:\n%s", tc.height, drawn, tc.drawn, buf.String())
		}
		if !tc.drawn && !strings.Contains(buf.String(), fmt.Sprintf("× %d rows", rows+viewRows)) {
			t.Fatalf("height %d: the message does not give the rows the view needs:\n%s", tc.height, buf.String())
		}
		if lines := strings.Count(buf.String(), "\n") + 1; tc.drawn && lines > tc.height {
			t.Fatalf("height %d: printed %d lines", tc.height, lines)
		}
	}
}

// --qr-png: each code lands in a 0600 image that decodes to the code, and
// the file is gone when pairing ends.
func TestTerminalViewPNG(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pair.png")
	var buf bytes.Buffer
	v := NewTerminalView(&buf, ViewOptions{PNGFile: path})
	v.Handle(Event{Kind: KindQR, Code: sampleCode, Seq: 1, ExpiresAt: time.Now().Add(20 * time.Second)})
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("PNG file: %v %v", st, err)
	}
	f, _ := os.Open(path)
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := pairtest.DecodeImage(img)
	if err != nil || got != sampleCode {
		t.Fatalf("PNG decodes to %q, %v", got, err)
	}
	if strings.ContainsAny(buf.String(), "█▀▄") || !strings.Contains(buf.String(), path) {
		t.Fatalf("terminal output with --qr-png:\n%s", buf.String())
	}
	v.Handle(Event{Kind: KindOutcome, Outcome: OutcomeExpired})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the PNG of a dead code was left behind: %v", err)
	}
}
