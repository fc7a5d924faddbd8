package pair

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
)

// ViewOptions configures a TerminalView.
type ViewOptions struct {
	QR QROptions
	// TermWidth, when set, is asked before each code is drawn, so that an
	// operator who widens the window after a refusal sees the next code.
	// It overrides QR.TermWidth.
	TermWidth func() int
	// TermHeight, when set, is the terminal's height in rows, asked like
	// TermWidth. The view's own lines (the instruction above the code, the
	// countdown below) are taken off before the code's height is checked.
	TermHeight func() int
	// Clear clears the screen before each new code (only on a terminal).
	Clear bool
	// PNGFile, when set, receives each code as a PNG image (mode 0600,
	// replaced atomically) instead of drawing it on the terminal.
	PNGFile string
	// NoDraw keeps codes off w (stderr redirected to a file or a pipe,
	// where nobody can scan them and a log would keep a secret); the view
	// says once why and what to use instead.
	NoDraw bool
	// Now is the clock for countdowns. Default time.Now.
	Now func() time.Time
}

// TerminalView renders pairing events for a person: each QR code (redrawn
// when a new one arrives), a countdown line, and a one-line outcome. Use
// Handle as Options.Events and run Run alongside Pair for the countdown.
type TerminalView struct {
	w    io.Writer
	opts ViewOptions

	mu       sync.Mutex
	expires  time.Time // of the code on screen; zero when none is counting
	seq      int
	lastLeft int
	// toldNoDraw: the "not drawn here" line is said once, not per code.
	toldNoDraw bool
	done       chan struct{}
	doneOnce   sync.Once
	err        error
}

// NewTerminalView returns a view writing to w (normally stderr).
func NewTerminalView(w io.Writer, opts ViewOptions) *TerminalView {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &TerminalView{w: w, opts: opts, done: make(chan struct{}), lastLeft: -1}
}

// Err is the first write error, if any.
func (v *TerminalView) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

func (v *TerminalView) printf(format string, args ...any) {
	if v.err == nil {
		_, v.err = fmt.Fprintf(v.w, format, args...)
	}
}

// Handle renders one event.
func (v *TerminalView) Handle(e Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Kind {
	case KindQR:
		v.drawQR(e)
	case KindPairCode:
		v.expires = time.Time{}
		v.printf("On the phone: WhatsApp → Settings → Linked devices → Link a device → Link with phone number instead, then enter:\n\n    %s\n\n", e.Code)
	case KindScanned:
		v.endCountdown()
		v.printf("Scanned by %s, finishing…\n", e.Phone)
	case KindOutcome:
		v.endCountdown()
		if v.opts.PNGFile != "" {
			// The code in it is dead now; do not leave a pairing code around.
			os.Remove(v.opts.PNGFile)
		}
		v.printf("%s\n", OutcomeLine(e))
		v.doneOnce.Do(func() { close(v.done) })
	}
}

// viewRows are the rows the view prints around a code: the instruction
// line above it and the countdown line below.
const viewRows = 2

func (v *TerminalView) drawQR(e Event) {
	v.endCountdown()
	switch {
	case v.opts.PNGFile != "":
		if err := WriteQRPNG(v.opts.PNGFile, e.Code); err != nil {
			v.err = err
			return
		}
		v.printf("QR code %d is in %s: open it and scan it with WhatsApp on the account's phone (Settings → Linked devices → Link a device). The file is replaced with each new code.\n", e.Seq, v.opts.PNGFile)
	case v.opts.NoDraw:
		if !v.toldNoDraw {
			v.toldNoDraw = true
			v.printf("stderr is not a terminal, so the QR code is not drawn there (nobody could scan it, and a log would keep it). Use --qr-png FILE, --code, or --qr-text to draw it anyway.\n")
		}
	default:
		qro := v.opts.QR
		if v.opts.TermWidth != nil {
			qro.TermWidth = v.opts.TermWidth()
		}
		if v.opts.TermHeight != nil {
			if h := v.opts.TermHeight(); h > 0 {
				qro.TermHeight = max(h-viewRows, 1)
			}
		}
		if v.opts.Clear {
			v.printf("\033[H\033[2J")
		}
		v.printf("Scan with WhatsApp: Settings → Linked devices → Link a device.\n")
		if v.err != nil {
			return
		}
		if err := RenderQR(v.w, e.Code, qro); err != nil {
			var tw *TooWideError
			if !errors.As(err, &tw) {
				v.err = err
				return
			}
			if tw.HaveRows > 0 {
				tw.NeedRows += viewRows
				tw.HaveRows += viewRows
			}
			v.printf("%s\n", err)
		}
	}
	v.seq, v.expires, v.lastLeft = e.Seq, e.ExpiresAt, -1
	v.countdown()
}

// countdown rewrites the countdown line in place (no newline until the
// code is replaced or pairing ends).
func (v *TerminalView) countdown() {
	if v.expires.IsZero() {
		return
	}
	left := int(math.Ceil(v.expires.Sub(v.opts.Now()).Seconds()))
	left = max(left, 0)
	if left == v.lastLeft {
		return
	}
	v.lastLeft = left
	v.printf("\r\033[KCode %d expires in %ds", v.seq, left)
}

func (v *TerminalView) endCountdown() {
	if !v.expires.IsZero() {
		v.printf("\n")
	}
	v.expires = time.Time{}
}

// Tick updates the countdown to the current time; Run calls it every 200ms.
func (v *TerminalView) Tick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.countdown()
}

// Run keeps the countdown current until the outcome is shown or ctx ends.
func (v *TerminalView) Run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.done:
			return
		case <-t.C:
			v.Tick()
		}
	}
}

// OutcomeLine is the one-line summary of an outcome event.
func OutcomeLine(e Event) string {
	switch e.Outcome {
	case OutcomePaired:
		return fmt.Sprintf("Paired as %s (device %s).", e.Phone, e.JID)
	case OutcomeExpired:
		return "Expired: no phone scanned a code in time. Nothing was kept; run wactl pair again."
	case OutcomeRefused:
		return "Refused: " + e.Error
	case OutcomeCancelled:
		return "Cancelled. Nothing was kept."
	default:
		return "Pairing failed: " + e.Error
	}
}
