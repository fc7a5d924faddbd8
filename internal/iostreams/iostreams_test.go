package iostreams

import (
	"os"
	"strings"
	"testing"
)

func TestNoColorWhenPipedOrNoColor(t *testing.T) {
	s, _, _, _ := Test()
	if s.ColorOut() || s.ColorErr() {
		t.Fatal("buffers are not terminals: colour must be off")
	}
	if got := s.StyleOut().Red("x"); got != "x" {
		t.Fatalf("piped output styled: %q", got)
	}
	s.SetTTY(true, true, true)
	if !s.ColorOut() {
		t.Fatal("terminal without NO_COLOR: colour expected")
	}
	if got := s.StyleOut().Red("x"); !strings.Contains(got, "\x1b[") {
		t.Fatalf("terminal output not styled: %q", got)
	}
	s.SetNoColor(true)
	if s.ColorOut() || s.ColorErr() {
		t.Fatal("NO_COLOR must turn colour off")
	}
	if got := s.StyleErr().Fail(); got != "✗" {
		t.Fatalf("marker must survive NO_COLOR as plain text: %q", got)
	}
}

func TestSystemHonoursNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	if s := System(); s.ColorOut() || s.ColorErr() {
		t.Fatal("NO_COLOR (even empty) must disable colour")
	}
}

func TestCanPromptNeedsStdinAndStderr(t *testing.T) {
	s, _, _, _ := Test()
	s.SetTTY(false, true, true)
	if s.CanPrompt() {
		t.Fatal("no prompting without a terminal on stdin")
	}
	s.SetTTY(true, false, true)
	if !s.CanPrompt() {
		t.Fatal("stdout piped must not prevent prompting on stderr")
	}
}

func TestTableAlignsStyledCells(t *testing.T) {
	s, _, out, _ := Test()
	s.SetTTY(false, true, false)
	st := s.StyleOut()
	if err := st.Table(out, []string{"A", "BB"}, [][]string{{st.Green("x"), "1"}, {"long", "2"}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	col := func(l string) int { return strings.LastIndex(stripANSI(l), " ") + 1 }
	if col(lines[1]) != col(lines[2]) || col(lines[0]) != col(lines[2]) {
		t.Fatalf("misaligned:\n%s", stripANSI(out.String()))
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestSystemHonoursClicolorForce(t *testing.T) {
	t.Setenv("TERM", "xterm")
	t.Setenv("CLICOLOR_FORCE", "1")
	t.Setenv("NO_COLOR", "restored after the test")
	os.Unsetenv("NO_COLOR")
	// Under go test stdout and stderr are not terminals.
	if s := System(); !s.ColorOut() || !s.ColorErr() {
		t.Fatal("CLICOLOR_FORCE=1 must keep colour in a pipe")
	}
	t.Setenv("CLICOLOR_FORCE", "0")
	if s := System(); s.ColorOut() {
		t.Fatal("CLICOLOR_FORCE=0 must not force colour")
	}
	t.Setenv("CLICOLOR_FORCE", "1")
	t.Setenv("NO_COLOR", "1")
	if s := System(); s.ColorOut() || s.ColorErr() {
		t.Fatal("NO_COLOR must win over CLICOLOR_FORCE")
	}
}

// FitTable keeps a table within the width: droppable columns go first
// (highest Drop), then wrapping columns wrap; coloured cells line up.
func TestFitTableDropsThenWraps(t *testing.T) {
	s, _, out, _ := Test()
	s.SetTTY(false, true, false)
	st := s.StyleOut()
	id := "account_prod_0123456789abcdef0123456789abcdef"
	cols := []Column{{Header: "ID"}, {Header: "NOTE", Wrap: true}, {Header: "EXTRA", Drop: 1}, {Header: "STATE"}}
	rows := [][]string{{id, strings.Repeat("word ", 12), "dropme-dropme-dropme", st.Green("connected")}, {"short", "n", "x", st.Red("corrupt")}}
	dropped, err := st.FitTable(out, 80, cols, rows)
	if err != nil || len(dropped) != 1 || dropped[0] != "EXTRA" {
		t.Fatalf("dropped %v, %v", dropped, err)
	}
	for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if w := Width(l); w > 80 {
			t.Errorf("%d columns: %q", w, l)
		}
	}
	if !strings.Contains(out.String(), id+"  word") || strings.Contains(out.String(), "dropme") {
		t.Fatalf("id cut or column not dropped:\n%s", out)
	}
	if strings.Count(out.String(), "word") != 12 {
		t.Fatalf("wrapping lost words:\n%s", out)
	}
}
