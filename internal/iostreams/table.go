package iostreams

import (
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// Table writes aligned columns with a bold header. Widths are measured
// without ANSI escapes (lipgloss.Width), so coloured cells line up, which
// text/tabwriter cannot do.
func (st *Styler) Table(w io.Writer, headers []string, rows [][]string) error {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = lipgloss.Width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], lipgloss.Width(c))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string, style func(string) string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(style(c))
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-lipgloss.Width(c)))
			}
		}
		b.WriteString("\n")
	}
	line(headers, st.Bold)
	for _, r := range rows {
		line(r, func(s string) string { return s })
	}
	_, err := io.WriteString(w, b.String())
	return err
}
