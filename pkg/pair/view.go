package pair

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
	// Clear clears the screen before each new code (only on a terminal).
	Clear bool
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
	done     chan struct{}
	doneOnce sync.Once
	err      error
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
		v.printf("%s\n", OutcomeLine(e))
		v.doneOnce.Do(func() { close(v.done) })
	}
}

func (v *TerminalView) drawQR(e Event) {
	v.endCountdown()
	qro := v.opts.QR
	if v.opts.TermWidth != nil {
		qro.TermWidth = v.opts.TermWidth()
	}
	if v.opts.Clear {
		v.printf("\033[H\033[2J")
	}
	v.printf("Scan with WhatsApp on the account's phone: Settings → Linked devices → Link a device.\n")
	if v.err != nil {
		return
	}
	if err := RenderQR(v.w, e.Code, qro); err != nil {
		var tw *TooWideError
		if !errors.As(err, &tw) {
			v.err = err
			return
		}
		v.printf("%s\n", err)
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
