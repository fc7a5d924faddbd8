package iostreams

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styler renders status words and markers for one stream. Markers are
// characters (✓ ! ✗), never colour alone, so meaning survives NO_COLOR and
// pipes.
type Styler struct {
	r       *lipgloss.Renderer
	enabled bool
}

// StyleOut styles text written to stdout; StyleErr to stderr.
func (s *IOStreams) StyleOut() *Styler { return newStyler(s.Out, s.ColorOut()) }
func (s *IOStreams) StyleErr() *Styler { return newStyler(s.ErrOut, s.ColorErr()) }

func newStyler(w io.Writer, color bool) *Styler {
	r := lipgloss.NewRenderer(w)
	if color {
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return &Styler{r: r, enabled: color}
}

func (st *Styler) fg(c string, s string) string {
	return st.r.NewStyle().Foreground(lipgloss.Color(c)).Render(s)
}

func (st *Styler) Bold(s string) string  { return st.r.NewStyle().Bold(true).Render(s) }
func (st *Styler) Dim(s string) string   { return st.fg("245", s) }
func (st *Styler) Green(s string) string { return st.fg("2", s) }
func (st *Styler) Yellow(s string) string {
	return st.fg("3", s)
}
func (st *Styler) Red(s string) string { return st.fg("1", s) }

// Marks for check results.
func (st *Styler) OK() string   { return st.Green("✓") }
func (st *Styler) Warn() string { return st.Yellow("!") }
func (st *Styler) Fail() string { return st.Red("✗") }

// Enabled reports whether colour is on.
func (st *Styler) Enabled() bool { return st.enabled }
