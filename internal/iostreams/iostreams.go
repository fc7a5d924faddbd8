// Package iostreams is the one place that knows where output goes: data on
// stdout, progress, prompts and QR codes on stderr, colour only on a
// terminal and never with NO_COLOR. Commands receive an *IOStreams; tests
// pass Test() streams and read the buffers.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams bundles a command's standard streams and what is known of them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer // data: tables, JSON
	ErrOut io.Writer // progress, prompts, QR codes, hints

	stdinTTY, stdoutTTY, stderrTTY bool
	noColor                        bool
	forceColor                     bool // CLICOLOR_FORCE: colour even in a pipe (NO_COLOR still wins)
	termWidth                      func() int
	termHeight                     func() int
}

// System returns the process's streams.
func System() *IOStreams {
	s := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	_, s.noColor = os.LookupEnv("NO_COLOR")
	if os.Getenv("TERM") == "dumb" {
		s.noColor = true
	}
	// The CLICOLOR convention (also gh's): any value but "0" keeps colour
	// when output is piped, e.g. into `less -R`.
	if v, ok := os.LookupEnv("CLICOLOR_FORCE"); ok && v != "" && v != "0" {
		s.forceColor = true
	}
	s.termWidth = func() int {
		for _, f := range []*os.File{os.Stderr, os.Stdout} {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				return w
			}
		}
		return 80
	}
	s.termHeight = func() int {
		if w, h, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 0 && h > 0 {
			return h
		}
		return 0
	}
	return s
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Test returns streams backed by buffers, none of them a terminal.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	s = &IOStreams{In: in, Out: out, ErrOut: errOut, termWidth: func() int { return 80 }}
	return s, in, out, errOut
}

// SetTTY marks the streams as terminals (for tests of terminal behaviour).
func (s *IOStreams) SetTTY(stdin, stdout, stderr bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stderr
}

// SetNoColor forces colour off, as NO_COLOR does.
func (s *IOStreams) SetNoColor(v bool) { s.noColor = v }

func (s *IOStreams) IsStdinTTY() bool  { return s.stdinTTY }
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorOut says whether stdout may carry colour.
func (s *IOStreams) ColorOut() bool { return (s.stdoutTTY || s.forceColor) && !s.noColor }

// ColorErr says whether stderr may carry colour.
func (s *IOStreams) ColorErr() bool { return (s.stderrTTY || s.forceColor) && !s.noColor }

// CanPrompt says whether the user can answer a question: both stdin and
// stderr (where prompts go) must be terminals.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// TerminalWidth is the width of the terminal, 80 when unknown.
func (s *IOStreams) TerminalWidth() int { return s.termWidth() }

// TerminalHeight is the height of the terminal on stderr, 0 when unknown.
func (s *IOStreams) TerminalHeight() int {
	if s.termHeight == nil {
		return 0
	}
	return s.termHeight()
}

// SetTerminalSize fixes the size the streams report (tests).
func (s *IOStreams) SetTerminalSize(cols, rows int) {
	s.termWidth = func() int { return cols }
	s.termHeight = func() int { return rows }
}
