package pair

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/pair"
)

// ui routes pairing events: to pkg/pair's terminal view on stderr (QR
// codes, countdown, outcome line), or as JSON lines on stdout.
type ui struct {
	io   *iostreams.IOStreams
	json bool
	emit func(pair.Event)
	view *pair.TerminalView
	stop context.CancelFunc
}

func newUI(ctx context.Context, o *Options) *ui {
	u := &ui{io: o.IO, json: o.Format == "json"}
	if u.json {
		u.emit, _ = pair.JSONEvents(o.IO.Out)
		return u
	}
	width := func() int {
		if !o.IO.IsStderrTTY() {
			return 0 // a pipe or a log file has no width to respect
		}
		return o.IO.TerminalWidth()
	}
	height := func() int {
		if !o.IO.IsStderrTTY() {
			return 0
		}
		return o.IO.TerminalHeight()
	}
	u.view = pair.NewTerminalView(o.IO.ErrOut, pair.ViewOptions{
		QR: pair.QROptions{Invert: o.Invert}, TermWidth: width, TermHeight: height,
		Clear: o.IO.IsStderrTTY() && o.QRPNG == "",
		// A QR code goes into a redirected stderr only when asked for.
		NoDraw:  !o.IO.IsStderrTTY() && !o.QRText,
		PNGFile: o.QRPNG,
	})
	u.emit = u.view.Handle
	vctx, cancel := context.WithCancel(ctx)
	u.stop = cancel
	if o.IO.IsStderrTTY() {
		go u.view.Run(vctx)
	}
	return u
}

func (u *ui) event(e pair.Event) { u.emit(e) }

func (u *ui) note(msg string) {
	if !u.json {
		fmt.Fprintln(u.io.ErrOut, u.io.StyleErr().Dim(msg))
	}
}

func (u *ui) close() {
	if u.stop != nil {
		u.stop()
	}
}

// finish turns the outcome into the exit status; the view (or the JSON
// stream) has already shown it.
func (u *ui) finish(e pair.Event) error {
	switch e.Outcome {
	case pair.OutcomePaired:
		return nil
	case pair.OutcomeCancelled:
		return context.Canceled
	}
	msg := pair.OutcomeLine(e)
	return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New(msg), Silent: true}
}

// confirm asks a yes/no question on the terminal.
func confirm(ios *iostreams.IOStreams, q string) (bool, error) {
	fmt.Fprintf(ios.ErrOut, "%s [y/N] ", q)
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}
