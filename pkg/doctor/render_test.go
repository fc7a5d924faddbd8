package doctor

import (
	"bytes"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// A passing check is one line; its evidence shows with -v (Verbose) only.
// Failed and warned checks keep theirs.
func TestTextPassingChecksOneLine(t *testing.T) {
	t.Parallel()
	var quiet, verbose bytes.Buffer
	WriteText(&quiet, goldenReport(), PlainMarks, TextOptions{})
	WriteText(&verbose, goldenReport(), PlainMarks, TextOptions{Verbose: true})
	if strings.Contains(quiet.String(), "MainPID=15603") {
		t.Fatalf("evidence of a passing check without -v:\n%s", quiet.String())
	}
	for _, want := range []string{"exists=NO", "note: hardening"} {
		if !strings.Contains(quiet.String(), want) {
			t.Fatalf("evidence of a failed/warned check %q missing:\n%s", want, quiet.String())
		}
	}
	if !strings.Contains(verbose.String(), "    MainPID=15603") {
		t.Fatalf("-v does not show a passing check's evidence:\n%s", verbose.String())
	}
}

// At a width, prose wraps (ANSI escapes count nothing) and commands stay
// exact: a trailing comment moves above the command instead.
func TestTextWrapsToWidth(t *testing.T) {
	t.Parallel()
	rep := goldenReport()
	long := strings.Repeat("the sessions dir is on a file system that is emptied at every reboot ", 3)
	rep.Checks[1].Summary = long
	rep.Checks[1].Evidence = append(rep.Checks[1].Evidence, KV{"path", strings.Repeat("/very-long-dir", 10)})
	cmd := "sudo systemctl edit wactl"
	rep.Checks[1].Fixes = append(rep.Checks[1].Fixes, Fix{Summary: "edit", Commands: []string{cmd + "   # [Service] Environment=INSTANCE_ID=wactl-%H and a long comment"}})
	red := PlainMarks
	red.Fail = "\x1b[31m✗\x1b[0m"
	red.Bold = func(s string) string { return "\x1b[1m" + s + "\x1b[0m" }
	var b bytes.Buffer
	WriteText(&b, rep, red, TextOptions{Width: 80})
	for _, l := range strings.Split(b.String(), "\n") {
		if ansi.StringWidth(l) > 80 && !strings.Contains(l, "50-wactl-doctor.conf") {
			t.Errorf("line of %d columns: %q", ansi.StringWidth(l), l)
		}
	}
	if !strings.Contains(b.String(), "\n   "+cmd+"\n") || !strings.Contains(b.String(), "# [Service] Environment=") {
		t.Fatalf("command not kept exact:\n%s", b.String())
	}
	if strings.Count(strings.Join(strings.Fields(ansi.Strip(b.String())), " "), "emptied at every reboot") != 3 {
		t.Fatalf("wrapping lost words:\n%s", b.String())
	}
}

// At a width a passing or skipped check is one line, however long its
// summary; -v shows it whole.
func TestTextPassingAndSkippedOneLineAtWidth(t *testing.T) {
	t.Parallel()
	rep := goldenReport()
	rep.Checks[0].Summary = strings.Repeat("long passing summary ", 8)
	rep.Checks[3].Summary = "skipped: " + strings.Repeat("long reason ", 10)
	var b, v bytes.Buffer
	WriteText(&b, rep, PlainMarks, TextOptions{Width: 80})
	WriteText(&v, rep, PlainMarks, TextOptions{Width: 80, Verbose: true})
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "✓ systemd.service") || strings.HasPrefix(l, "- daemon.burst") {
			if ansi.StringWidth(l) > 80 || !strings.HasSuffix(l, "…") || strings.HasPrefix(lines[i+1], " ") {
				t.Errorf("not one line of at most 80 columns: %q / next %q", l, lines[i+1])
			}
		}
	}
	if strings.Count(strings.Join(strings.Fields(v.String()), " "), "long reason") != 10 {
		t.Fatalf("-v does not show the whole summary:\n%s", v.String())
	}
}
