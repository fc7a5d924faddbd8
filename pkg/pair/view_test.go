package pair

import (
	"bytes"
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
	if out := buf.String(); !strings.Contains(out, "at least") || strings.Contains(out, "█") || !strings.Contains(out, "Code 1 expires in 60s") {
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
