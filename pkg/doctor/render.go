package doctor

import (
	"encoding/json"

	"fmt"
	"github.com/charmbracelet/x/ansi"
	"io"
	"strings"
	"time"
)

// Marks are the status markers of the text rendering; the CLI passes
// coloured ones. They are characters, so meaning survives NO_COLOR.
type Marks struct {
	OK, Warn, Fail, Skip string
	Bold                 func(string) string
}

// PlainMarks are the uncoloured markers.
var PlainMarks = Marks{OK: "✓", Warn: "!", Fail: "✗", Skip: "-", Bold: func(s string) string { return s }}

func (m Marks) of(s Status) string {
	switch s {
	case OK:
		return m.OK
	case Warn:
		return m.Warn
	case Fail:
		return m.Fail
	}
	return m.Skip
}

// TextOptions shape the text rendering.
type TextOptions struct {
	// Verbose shows the evidence and notes of passing checks too; failed
	// and warned checks always show theirs.
	Verbose bool
	// Width wraps prose (summaries, evidence, notes) to this many display
	// columns; 0 does not wrap. Commands are never wrapped (they must stay
	// exact); a trailing comment moves onto its own line instead.
	Width int
}

// WriteText renders the report for a terminal: one line per passing or
// skipped check (cut at the width; whole with Verbose), evidence for the
// others, the verdict and the fix steps.
func WriteText(w io.Writer, rep *Report, m Marks, opts ...TextOptions) error {
	var o TextOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	var b strings.Builder
	para := func(indent, hang int, text string) {
		b.WriteString(wrapText(strings.Repeat(" ", indent)+text, o.Width, hang))
		b.WriteByte('\n')
	}
	para(0, 2, fmt.Sprintf("%s — host %s, instance %s, %s", m.Bold("wactl doctor"), orDash(rep.Host), orDash(rep.InstanceID),
		rep.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC")))
	b.WriteByte('\n')
	width := 0
	for _, c := range rep.Checks {
		width = max(width, len(c.Name))
	}
	// A summary wraps under itself unless that leaves it too narrow.
	hang := width + 4
	if o.Width > 0 && o.Width-hang < 40 {
		hang = 4
	}
	for _, c := range rep.Checks {
		line := fmt.Sprintf("%s %-*s  %s", m.of(c.Status), width, c.Name, c.Summary)
		quiet := c.Status == Skip || (c.Status == OK && !o.Verbose)
		if quiet && !o.Verbose && o.Width > 0 {
			// One line each: the rest is in -v and --json.
			b.WriteString(ansi.Truncate(line, o.Width, "…"))
			b.WriteByte('\n')
			continue
		}
		para(0, hang, line)
		if quiet {
			continue
		}
		if o.Width > 0 {
			// On a terminal, evidence pairs share lines: a failing check
			// should not take a screen.
			cur := ""
			for _, e := range c.Evidence {
				kv := e.Key + "=" + e.Value
				if cur != "" && 4+ansi.StringWidth(cur)+2+ansi.StringWidth(kv) <= o.Width {
					cur += "  " + kv
					continue
				}
				if cur != "" {
					para(4, 6, cur)
				}
				cur = kv
			}
			if cur != "" {
				para(4, 6, cur)
			}
		} else {
			for _, e := range c.Evidence {
				para(4, 6, e.Key+"="+e.Value)
			}
		}
		for _, n := range c.Notes {
			para(4, 6, "note: "+n)
		}
	}
	b.WriteByte('\n')
	para(0, 2, fmt.Sprintf("%s %s  (%d ok, %d warn, %d fail, %d skipped)", m.Bold("Verdict:"), m.Bold(rep.Verdict),
		rep.Counts.OK, rep.Counts.Warn, rep.Counts.Fail, rep.Counts.Skip))
	if len(rep.Blocking) > 0 {
		b.WriteString("Blocking reasons:\n")
		for _, br := range rep.Blocking {
			para(2, 4, "- "+br)
		}
	}
	if steps := fixSteps(rep); len(steps) > 0 {
		fmt.Fprintf(&b, "\n%s\n", m.Bold("Fix steps (exact):"))
		for i, s := range steps {
			auto := ""
			if s.fix.Auto {
				auto = "  [--fix applies this]"
			}
			para(0, 3, fmt.Sprintf("%d) %s: %s%s", i+1, s.check, s.fix.Summary, auto))
			for _, c := range s.fix.Commands {
				for _, line := range commandLines(c, o.Width-3) {
					fmt.Fprintf(&b, "   %s\n", line)
				}
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrapText word-wraps s to width display columns (ANSI escapes take none),
// indenting continuation lines by hang; width 0 leaves s alone.
func wrapText(s string, width, hang int) string {
	if width <= 0 || ansi.StringWidth(s) <= width {
		return s
	}
	first := ansi.Wrap(s, width, "")
	lines := strings.Split(first, "\n")
	if len(lines) == 1 {
		return s
	}
	rest := strings.TrimLeft(strings.Join(lines[1:], " "), " ")
	pad := strings.Repeat(" ", hang)
	more := strings.Split(ansi.Wrap(rest, max(width-hang, 20), ""), "\n")
	for i := range more {
		more[i] = pad + strings.TrimSpace(more[i])
	}
	return strings.TrimRight(lines[0], " ") + "\n" + strings.Join(more, "\n")
}

// commandLines splits a fix command for display: its lines as they are,
// and a one-line command too wide for width with its trailing "# comment"
// on a comment line of its own above it. The command stays exact.
func commandLines(c string, width int) []string {
	lines := strings.Split(c, "\n")
	if width <= 0 || len(lines) > 1 || ansi.StringWidth(c) <= width {
		return lines
	}
	cmd, comment, ok := strings.Cut(c, "   # ")
	if !ok || strings.ContainsAny(cmd, "'\"") {
		return lines
	}
	// The comment wraps as comment lines; the command stays one line.
	var out []string
	for _, l := range strings.Split(ansi.Wrap(comment, max(width-2, 20), " "), "\n") {
		out = append(out, "# "+strings.TrimSpace(l))
	}
	return append(out, strings.TrimRight(cmd, " "))
}

type step struct {
	check string
	fix   Fix
}

// fixSteps are the fixes of failed checks first, then of warnings.
func fixSteps(rep *Report) []step {
	var out []step
	for _, want := range []Status{Fail, Warn} {
		for _, c := range rep.Checks {
			if c.Status != want {
				continue
			}
			for _, f := range c.Fixes {
				out = append(out, step{c.Name, f})
			}
		}
	}
	return out
}

// WriteMarkdown renders a report to paste into a ticket.
func WriteMarkdown(w io.Writer, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# wactl doctor — %s\n\n", orDash(rep.Host))
	fmt.Fprintf(&b, "- instance: `%s`\n- generated: %s\n- offline: %v\n\n", orDash(rep.InstanceID),
		rep.GeneratedAt.UTC().Format(time.RFC3339), rep.Offline)
	b.WriteString("## Checklist\n\n| | Check | Result |\n|---|---|---|\n")
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", PlainMarks.of(c.Status), c.Name, mdCell(c.Summary))
	}
	b.WriteString("\n## Evidence\n")
	for _, c := range rep.Checks {
		if c.Status == Skip || (len(c.Evidence) == 0 && len(c.Notes) == 0) {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n", c.Name)
		for _, e := range c.Evidence {
			fmt.Fprintf(&b, "- `%s=%s`\n", e.Key, e.Value)
		}
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "- note: %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\n## Verdict: %s\n", rep.Verdict)
	if len(rep.Blocking) > 0 {
		b.WriteString("\nBlocking reasons:\n")
		for _, br := range rep.Blocking {
			fmt.Fprintf(&b, "- %s\n", br)
		}
	}
	if steps := fixSteps(rep); len(steps) > 0 {
		b.WriteString("\n## Fix steps (exact)\n")
		for i, s := range steps {
			fmt.Fprintf(&b, "\n%d) %s — %s\n```bash\n%s\n```\n", i+1, s.check, s.fix.Summary, strings.Join(s.fix.Commands, "\n"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// jsonReport is the documented JSON shape (see doc.go).
type jsonReport struct {
	*Report
	DurationMs int64        `json:"durationMs"`
	Checks     []jsonResult `json:"checks"`
}

type jsonResult struct {
	Result
	DurationMs int64 `json:"durationMs"`
}

// WriteJSON renders the report as JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	jr := jsonReport{Report: rep, DurationMs: rep.Duration.Milliseconds(), Checks: make([]jsonResult, len(rep.Checks))}
	for i, c := range rep.Checks {
		if c.Fixes == nil {
			c.Fixes = []Fix{}
		}
		if c.Notes == nil {
			c.Notes = []string{}
		}
		jr.Checks[i] = jsonResult{Result: c, DurationMs: c.Duration.Milliseconds()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jr)
}
