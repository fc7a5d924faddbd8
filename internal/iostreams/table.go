package iostreams

import (
	"io"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Width is the display width of s: ANSI escapes take no column, East Asian
// wide characters and emoji two.
func Width(s string) int { return ansi.StringWidth(s) }

// Column is one column of a table that must fit a width.
type Column struct {
	Header string
	// Drop > 0: the column may be left out when the table is too wide, the
	// highest Drop first. 0: never left out.
	Drop int
	// Wrap: the column's cells may wrap onto more lines. Never set it on a
	// column people copy whole (ids): those are dropped or kept, not cut.
	Wrap bool
	// Break: with Wrap, a word longer than the column (a URL) may break
	// across lines too; without it the column is never narrower than its
	// longest word.
	Break bool
}

// minWrap is the narrowest a wrapping column is made.
const minWrap = 12

// Table writes aligned columns with a bold header, as wide as it needs.
func (st *Styler) Table(w io.Writer, headers []string, rows [][]string) error {
	cols := make([]Column, len(headers))
	for i, h := range headers {
		cols[i] = Column{Header: h}
	}
	_, err := st.FitTable(w, 0, cols, rows)
	return err
}

// FitTable writes aligned columns with a bold header in at most width
// display columns (0: no limit). Widths are measured without ANSI escapes,
// so coloured cells line up, which text/tabwriter cannot do. When the
// table is too wide it first leaves out droppable columns, highest Drop
// first, then wraps the Wrap columns, widest first. It returns the headers
// of the columns it left out, for the caller to say so. A row of one cell
// in a table of more columns is a heading spanning the table: written as
// it is (wrapped to width) and not counted in the column widths.
func (st *Styler) FitTable(w io.Writer, width int, cols []Column, rows [][]string) (dropped []string, err error) {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = Width(c.Header)
	}
	spanning := func(r []string) bool { return len(r) == 1 && len(cols) > 1 }
	for _, r := range rows {
		if spanning(r) {
			continue
		}
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], Width(c))
			}
		}
	}
	keep := make([]bool, len(cols))
	for i := range keep {
		keep[i] = true
	}
	total := func() int {
		n, t := 0, 0
		for i, k := range keep {
			if k {
				t += widths[i]
				n++
			}
		}
		return t + 2*max(n-1, 0)
	}
	// A wrapping column is never narrower than its longest word: words
	// (ids in a list) are not cut.
	minW := make([]int, len(cols))
	for i, c := range cols {
		minW[i] = widths[i]
		if c.Wrap && c.Break {
			minW[i] = min(widths[i], minWrap)
		} else if c.Wrap {
			minW[i] = min(widths[i], max(minWrap, longestWord(c.Header)))
			for _, r := range rows {
				if i < len(r) && !spanning(r) {
					minW[i] = min(widths[i], max(minW[i], longestWord(r[i])))
				}
			}
		}
	}
	narrowest := func() int {
		n, t := 0, 0
		for i, k := range keep {
			if k {
				t += minW[i]
				n++
			}
		}
		return t + 2*max(n-1, 0)
	}
	if width > 0 {
		// Leave columns out only while wrapping alone cannot fit.
		for narrowest() > width {
			best := -1
			for i, c := range cols {
				if keep[i] && c.Drop > 0 && (best < 0 || c.Drop > cols[best].Drop) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			keep[best] = false
			dropped = append(dropped, cols[best].Header)
		}
		// Narrow the widest wrapping column, one column at a time: the
		// wrapping columns end up about as wide as each other.
		for total() > width {
			widest := -1
			for i, c := range cols {
				if keep[i] && c.Wrap && widths[i] > minW[i] && (widest < 0 || widths[i] > widths[widest]) {
					widest = i
				}
			}
			if widest < 0 {
				break
			}
			widths[widest]--
		}
	}
	var idx []int
	for i, k := range keep {
		if k {
			idx = append(idx, i)
		}
	}
	var b strings.Builder
	line := func(cells []string, style func(string) string) {
		// Each cell becomes its lines at its column's width.
		parts := make([][]string, len(idx))
		height := 1
		for j, i := range idx {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			p := []string{c}
			if cols[i].Wrap && Width(c) > widths[i] {
				p = strings.Split(ansi.Wrap(c, widths[i], " ,/"), "\n")
			}
			parts[j] = p
			height = max(height, len(p))
		}
		for l := 0; l < height; l++ {
			var row strings.Builder
			for j, i := range idx {
				c := ""
				if l < len(parts[j]) {
					c = strings.TrimRight(parts[j][l], " ")
				}
				if j > 0 {
					row.WriteString("  ")
				}
				if c != "" {
					row.WriteString(style(c))
				}
				if j < len(idx)-1 {
					row.WriteString(strings.Repeat(" ", max(widths[i]-Width(c), 0)))
				}
			}
			b.WriteString(strings.TrimRight(row.String(), " "))
			b.WriteString("\n")
		}
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.Header
	}
	line(headers, st.Bold)
	for _, r := range rows {
		if spanning(r) {
			b.WriteString(Wrap(r[0], width, 4))
			b.WriteString("\n")
			continue
		}
		line(r, func(s string) string { return s })
	}
	_, err = io.WriteString(w, b.String())
	return dropped, err
}

// Wrap word-wraps s to width display columns, indenting continuation lines
// by hang spaces; width 0 leaves s alone.
func Wrap(s string, width, hang int) string {
	if width <= 0 || Width(s) <= width {
		return s
	}
	lines := strings.Split(ansi.Wrap(s, width, ""), "\n")
	if len(lines) == 1 {
		return s
	}
	rest := strings.TrimSpace(strings.Join(lines[1:], " "))
	more := strings.Split(ansi.Wrap(rest, max(width-hang, minWrap), ""), "\n")
	pad := strings.Repeat(" ", hang)
	for i := range more {
		more[i] = pad + strings.TrimSpace(more[i])
	}
	return strings.TrimRight(lines[0], " ") + "\n" + strings.Join(more, "\n")
}

func longestWord(s string) int {
	n := 0
	for _, w := range strings.Fields(s) {
		n = max(n, Width(strings.TrimSuffix(w, ",")))
	}
	return n
}
