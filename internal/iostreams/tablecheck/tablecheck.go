// Package tablecheck checks, for tests, that terminal output fits a width
// and that a table's columns line up, measured in display columns (ANSI
// escapes take none).
package tablecheck

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Problems lists every line of out wider than width, and every table row
// (the lines after the one starting with header, up to a line starting
// with "(" — the note after a table) that has text just left of where a
// header column starts, which is where misalignment shows. Lines starting
// with a skip prefix (headings spanning the table) are not rows.
func Problems(out string, width int, header string, skip ...string) []string {
	var probs []string
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > width {
			probs = append(probs, fmt.Sprintf("line of %d columns (> %d): %q", w, width, ansi.Strip(l)))
		}
	}
	h := -1
	for i, l := range lines {
		if strings.HasPrefix(ansi.Strip(l), header) {
			h = i
			break
		}
	}
	if h < 0 {
		return append(probs, fmt.Sprintf("no table header %q", header))
	}
	head := []rune(ansi.Strip(lines[h]))
	var starts []int // rune index = display column for the ASCII headers
	for i := 2; i < len(head); i++ {
		if head[i] != ' ' && head[i-1] == ' ' && head[i-2] == ' ' {
			starts = append(starts, i)
		}
	}
rows:
	for _, l := range lines[h+1:] {
		row := ansi.Strip(l)
		if strings.HasPrefix(row, "(") {
			break
		}
		for _, p := range skip {
			if strings.HasPrefix(row, p) {
				continue rows
			}
		}
		// Display column of each rune, then: a cell starts (text after
		// two spaces, or after only spaces from the line start) only at a
		// header column, and no text runs into a header column from the left.
		var xs []int
		var rs []rune
		x := 0
		for _, r := range row {
			xs, rs = append(xs, x), append(rs, r)
			x += ansi.StringWidth(string(r))
		}
		isStart := map[int]bool{0: true}
		for _, s := range starts {
			isStart[s] = true
		}
		for i, r := range rs {
			if r == ' ' {
				continue
			}
			lead := i == 0 || strings.TrimSpace(string(rs[:i])) == "" || i >= 2 && rs[i-1] == ' ' && rs[i-2] == ' '
			if lead && !isStart[xs[i]] {
				probs = append(probs, fmt.Sprintf("cell at column %d is not under a header column: %q under %q", xs[i], row, string(head)))
				continue rows
			}
			if i > 0 && rs[i-1] != ' ' && isStart[xs[i]] && xs[i] > 0 {
				probs = append(probs, fmt.Sprintf("text runs into the column at %d: %q under %q", xs[i], row, string(head)))
				continue rows
			}
		}
	}
	return probs
}
