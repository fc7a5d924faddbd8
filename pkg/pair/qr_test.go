package pair

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"rsc.io/qr"

	"github.com/wactl/wactl/pkg/pair/pairtest"
)

// A code shaped like whatsmeow's: ref,noise key,identity key,adv secret.
const sampleCode = "2@Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4,dGhpcyBpcyBhIG5vaXNlIGtleSB0aGlydHl0d28hIQ==,aWRlbnRpdHkga2V5IG9mIHRoaXJ0eXR3byBieXRlcyE=,YWR2IHNlY3JldCBrZXkgb2YgdGhpcnR5dHdvIGJ5dGU="

func TestRenderQRRoundTrips(t *testing.T) {
	t.Parallel()
	want, err := qr.Encode(sampleCode, qr.L)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   QROptions
		margin int
	}{
		{"dark terminal", QROptions{}, 2},
		{"light terminal", QROptions{Invert: true}, 2},
		{"quiet zone 1 raised to 2", QROptions{QuietZone: 1}, 2},
		{"odd quiet zone", QROptions{QuietZone: 3}, 3},
		{"wide quiet zone", QROptions{QuietZone: 4, Invert: true}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderQR(&buf, sampleCode, tc.opts); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for i, l := range lines {
				if n := utf8.RuneCountInString(l); n != want.Size+2*tc.margin {
					t.Fatalf("line %d is %d columns, want %d", i, n, want.Size+2*tc.margin)
				}
			}
			// Rows: the code plus the margin above and below, two per line.
			if got, wantLines := len(lines), (want.Size+2*tc.margin+1)/2; got != wantLines {
				t.Fatalf("%d lines, want %d", got, wantLines)
			}
			if w, _ := QRWidth(sampleCode, tc.opts.QuietZone); w != want.Size+2*tc.margin {
				t.Fatalf("QRWidth = %d", w)
			}
			mods, err := pairtest.ParseHalfBlocks(out, tc.opts.Invert)
			if err != nil {
				t.Fatal(err)
			}
			if len(mods) != want.Size {
				t.Fatalf("decoded %d rows, want %d", len(mods), want.Size)
			}
			for y := range mods {
				for x := range mods[y] {
					if mods[y][x] != want.Black(x, y) {
						t.Fatalf("module (%d,%d) = %v, want %v", x, y, mods[y][x], want.Black(x, y))
					}
				}
			}
			// The margin really is light on every side: the dark area is the
			// code's size with at least margin light modules around it.
			grid := pixels(lines, tc.opts.Invert)
			minX, minY, maxX, maxY := len(grid[0]), len(grid), -1, -1
			for y, row := range grid {
				for x, dark := range row {
					if dark {
						minX, maxX = min(minX, x), max(maxX, x)
						minY, maxY = min(minY, y), max(maxY, y)
					}
				}
			}
			if maxX-minX+1 != want.Size || maxY-minY+1 != want.Size {
				t.Fatalf("dark area (%d,%d)-(%d,%d) is not the %d-module code", minX, minY, maxX, maxY, want.Size)
			}
			if minX < tc.margin || minY < tc.margin || len(grid[0])-1-maxX < tc.margin || len(grid)-1-maxY < tc.margin {
				t.Fatalf("quiet zone < %d: dark area (%d,%d)-(%d,%d) in %dx%d", tc.margin, minX, minY, maxX, maxY, len(grid[0]), len(grid))
			}
			// Decoding with the wrong polarity must not give the same code.
			if wrong, err := pairtest.ParseHalfBlocks(out, !tc.opts.Invert); err == nil && len(wrong) == want.Size {
				t.Fatal("inverted parse also matched: the test cannot tell polarities apart")
			}
		})
	}
}

// pixels expands lines into the full pixel grid (quiet zone included).
func pixels(lines []string, invert bool) [][]bool {
	var grid [][]bool
	for _, l := range lines {
		var up, down []bool
		for _, r := range l {
			u := r == '█' || r == '▀'
			d := r == '█' || r == '▄'
			if !invert {
				u, d = !u, !d
			}
			up, down = append(up, u), append(down, d)
		}
		grid = append(grid, up, down)
	}
	return grid
}

func TestRenderQRRefusesNarrowTerminal(t *testing.T) {
	t.Parallel()
	need, err := QRWidth(sampleCode, 2)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = RenderQR(&buf, sampleCode, QROptions{TermWidth: need - 1})
	var tw *TooWideError
	if !errors.As(err, &tw) || tw.Need != need || tw.Have != need-1 {
		t.Fatalf("RenderQR on a narrow terminal = %v", err)
	}
	if !strings.Contains(err.Error(), "needs "+strconv.Itoa(need)+" columns") || !strings.Contains(err.Error(), "--qr-png") {
		t.Errorf("message does not say how wide: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatal("drew something although refusing")
	}
	if err := RenderQR(&buf, sampleCode, QROptions{TermWidth: need}); err != nil {
		t.Fatalf("exact fit refused: %v", err)
	}
	if err := RenderQR(&buf, "", QROptions{}); err == nil {
		t.Fatal("empty code accepted")
	}
}

func TestRenderQRReportsWriteErrors(t *testing.T) {
	t.Parallel()
	if err := RenderQR(failWriter{}, sampleCode, QROptions{}); err == nil {
		t.Fatal("write error swallowed")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestParseHalfBlocksSkipsSurroundingText(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	buf.WriteString("Scan this code with WhatsApp (1 of 6, 60s left)\n")
	if err := RenderQR(&buf, sampleCode, QROptions{Invert: true}); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("Waiting…\n")
	// A screen capture trims trailing blanks, which are light in invert mode.
	var trimmed []string
	for _, l := range strings.Split(buf.String(), "\n") {
		trimmed = append(trimmed, strings.TrimRight(l, " "))
	}
	mods, err := pairtest.ParseHalfBlocks(strings.Join(trimmed, "\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := qr.Encode(sampleCode, qr.L)
	for y := range mods {
		for x := range mods[y] {
			if mods[y][x] != want.Black(x, y) {
				t.Fatalf("module (%d,%d) differs", x, y)
			}
		}
	}
}

// A code taller than the screen scrolls its top away: refused like a too
// wide one, and the rows QRSize promises are the rows drawn.
func TestRenderQRRefusesShortTerminal(t *testing.T) {
	t.Parallel()
	cols, rows, err := QRSize(sampleCode, 2)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = RenderQR(&buf, sampleCode, QROptions{TermWidth: 80, TermHeight: rows - 1})
	var tw *TooWideError
	if !errors.As(err, &tw) || tw.NeedRows != rows || tw.HaveRows != rows-1 {
		t.Fatalf("RenderQR on a short terminal = %v", err)
	}
	if buf.Len() != 0 {
		t.Fatal("drew something although refusing")
	}
	for _, want := range []string{strconv.Itoa(cols) + " columns × " + strconv.Itoa(rows) + " rows", "--code", "--qr-png"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	for _, invert := range []bool{false, true} {
		buf.Reset()
		if err := RenderQR(&buf, sampleCode, QROptions{TermWidth: cols, TermHeight: rows, Invert: invert}); err != nil {
			t.Fatalf("exact fit refused: %v", err)
		}
		if got := strings.Count(buf.String(), "\n"); got != rows {
			t.Errorf("invert=%v: drew %d rows, QRSize said %d", invert, got, rows)
		}
	}
}
