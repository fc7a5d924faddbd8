package pair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wasock"
)

var (
	// ErrAlreadyPaired: the device store already holds a paired device.
	ErrAlreadyPaired = errors.New("account is already paired")
	// ErrExpired: every code expired before a phone scanned one.
	ErrExpired = errors.New("pairing expired: no phone scanned the code in time")
	// ErrConnectionLost: the connection to WhatsApp closed before it sent
	// a code (a network or server failure); nothing was kept.
	ErrConnectionLost = errors.New("the connection to WhatsApp was lost before it sent a pairing code: check the network (DNS, firewall, proxy) and run wactl pair again")
	// ErrRefused: a phone other than the account's scanned; nothing was kept.
	ErrRefused = errors.New("pairing refused")
	// ErrCancelled: the context ended (e.g. Ctrl-C) before pairing finished.
	ErrCancelled = errors.New("pairing cancelled")
)

// Options configures Pair.
type Options struct {
	// ExpectedPhone is the account's canonical phone ("+digits"). When set,
	// a scan by any other phone is refused before anything is saved.
	ExpectedPhone string
	// PhoneCode pairs by an 8-character code typed on the phone instead of
	// a QR code; it needs ExpectedPhone.
	PhoneCode bool
	// ClientDisplayName is shown on the phone for PhoneCode pairing.
	// Default "Chrome (Linux)".
	ClientDisplayName string
	// Events receives every event in order; the last one is always an
	// outcome. Calls are serialised. Nil drops events.
	Events func(Event)
	// ConnectedTimeout bounds the wait, after the phone confirmed, for the
	// client's reconnect and login with the new identity. Default 30s.
	ConnectedTimeout time.Duration
	// Now is the clock for expiry times. Default time.Now.
	Now func() time.Time
	// Logger gets diagnostics (never codes). Default: discard.
	Logger *slog.Logger
	// Driver connects and disconnects the client. Zero: the client's own
	// Connect and Disconnect (local pairing). The daemon passes its connect
	// gate, so a pairing connects only while the daemon is ACTIVE.
	Driver Driver
}

// Driver is how Pair and UnlinkWith open and close the client's
// connection. A nil field uses the client's own method.
type Driver struct {
	// Connect opens the connection; it may refuse (the daemon's gate).
	Connect func(ctx context.Context) error
	// Disconnect closes it; it must be safe beside the caller's own
	// closes (the daemon serialises every close of an account's clients).
	Disconnect func()
}

func (d Driver) connect(ctx context.Context, cli *whatsmeow.Client) error {
	if d.Connect != nil {
		return d.Connect(ctx)
	}
	return cli.Connect()
}

func (d Driver) disconnect(cli *whatsmeow.Client) {
	if d.Disconnect != nil {
		d.Disconnect()
		return
	}
	wasock.Close(cli)
}

// Result is how Pair ended.
type Result struct {
	Outcome Outcome
	JID     types.JID // the new device when paired; the scanning phone's when refused
	Phone   string    // "+digits" of the phone that scanned, if one did
}

// Pair links client's (unpaired) device to a phone. It must be called on a
// client that is not connected; it connects it, shows codes through
// opts.Events until a phone confirms or the codes run out, and returns. The
// error is nil exactly when the outcome is paired; then the device is saved
// in the client's store and the client is left connected (the caller
// disconnects or keeps using it). On any other outcome the client is
// disconnected and its store holds nothing new.
//
// An already paired device is refused with ErrAlreadyPaired: re-pairing
// (--force) means Unlink, then a fresh device from the container.
func Pair(ctx context.Context, client *whatsmeow.Client, opts Options) (Result, error) {
	p := &pairing{opts: opts, client: client}
	p.defaults()
	res, err := p.run(ctx)
	ev := Event{Kind: KindOutcome, Outcome: res.Outcome, Phone: res.Phone}
	if res.Outcome == OutcomePaired {
		ev.JID = res.JID.String()
	}
	if err != nil {
		ev.Error = err.Error()
	}
	p.emit(ev)
	return res, err
}

type pairing struct {
	opts   Options
	client *whatsmeow.Client
	log    *slog.Logger
	digits string // expected phone without "+"

	emitMu sync.Mutex // serialises opts.Events

	mu        sync.Mutex // guards the fields below
	scanned   types.JID
	refused   bool
	connected chan struct{}
	success   bool
}

func (p *pairing) defaults() {
	if p.opts.Now == nil {
		p.opts.Now = time.Now
	}
	if p.opts.ConnectedTimeout <= 0 {
		p.opts.ConnectedTimeout = 30 * time.Second
	}
	if p.opts.ClientDisplayName == "" {
		p.opts.ClientDisplayName = "Chrome (Linux)"
	}
	p.log = p.opts.Logger
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.digits = strings.TrimPrefix(p.opts.ExpectedPhone, "+")
	p.connected = make(chan struct{})
}

func (p *pairing) emit(e Event) {
	if p.opts.Events == nil {
		return
	}
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	p.opts.Events(e)
}

func (p *pairing) check() error {
	if p.client == nil || p.client.Store == nil {
		return errors.New("pair: no client or device store")
	}
	if p.opts.ExpectedPhone != "" && !validPhone(p.opts.ExpectedPhone) {
		return fmt.Errorf("expected phone %q is not canonical +digits", p.opts.ExpectedPhone)
	}
	if p.opts.PhoneCode && p.opts.ExpectedPhone == "" {
		return errors.New("pairing with a code needs the account's phone number (--phone)")
	}
	if id := p.client.Store.ID; id != nil {
		return fmt.Errorf("%w as +%s (device %s): use --force to unlink it and pair again", ErrAlreadyPaired, id.User, id)
	}
	if p.client.IsConnected() {
		return errors.New("pair: client is already connected; pairing must start from a disconnected client")
	}
	return nil
}

func (p *pairing) run(ctx context.Context) (Result, error) {
	if err := p.check(); err != nil {
		return Result{Outcome: OutcomeError}, err
	}
	cli := p.client
	prev := cli.PrePairCallback
	cli.PrePairCallback = p.prePair(prev)
	defer func() { cli.PrePairCallback = prev }()

	// The pairing is driven by the client's own events, not by
	// whatsmeow's GetQRChannel: its channel is closed by the Disconnected
	// handler while its code emitter may still send on it, a data race
	// every time the server ends a pairing (docs/races.md, race 1). Here
	// one goroutine (loop) owns the codes and their timer, and the handler
	// only hands events over; nothing is ever closed under a sender.
	evs := make(chan any, 64)
	done := make(chan struct{})
	handler := cli.AddEventHandler(func(evt any) {
		p.onEvent(evt)
		if pairingEvent(evt) {
			select {
			case evs <- evt:
			case <-done: // the pairing is over: later events are not ours
			}
		}
	})
	defer cli.RemoveEventHandler(handler)
	defer close(done) // before the handler's removal: a blocked send ends first

	if ctx.Err() != nil {
		return Result{Outcome: OutcomeCancelled}, fmt.Errorf("%w: %w", ErrCancelled, ctx.Err())
	}
	if err := p.opts.Driver.connect(ctx, cli); err != nil {
		p.opts.Driver.disconnect(cli)
		return Result{Outcome: OutcomeError}, fmt.Errorf("connect to WhatsApp: %w", err)
	}
	res, err := p.loop(ctx, evs)
	if res.Outcome != OutcomePaired {
		p.opts.Driver.disconnect(cli)
	}
	return res, err
}

// pairingEvent: the events that move a pairing on (those whatsmeow's QR
// channel listens to).
func pairingEvent(evt any) bool {
	switch evt.(type) {
	case *events.QR, *events.QRScannedWithoutMultidevice, *events.ClientOutdated, *events.PairSuccess,
		*events.PairError, *events.Disconnected, *events.Connected, *events.ConnectFailure,
		*events.LoggedOut, *events.TemporaryBan:
		return true
	}
	return false
}

// codeTimeout is how long a code is shown, as whatsmeow's QR channel
// does: the first of a full set of six for 60 s, every other for 20 s.
func codeTimeout(left int) time.Duration {
	if left == 6 {
		return 60 * time.Second
	}
	return 20 * time.Second
}

func (p *pairing) loop(ctx context.Context, evs <-chan any) (Result, error) {
	seq := 0
	codeSent := false
	var codes []string // refs not shown yet
	rotate := time.NewTimer(time.Hour)
	rotate.Stop()
	defer rotate.Stop()
	// next shows the next code; false when none is left (expired).
	next := func() (bool, error) {
		if len(codes) == 0 {
			return false, nil
		}
		timeout := codeTimeout(len(codes))
		code := codes[0]
		codes = codes[1:]
		seq++
		rotate.Reset(timeout)
		if !p.opts.PhoneCode {
			p.emit(Event{Kind: KindQR, Code: code, Seq: seq, ExpiresAt: p.opts.Now().Add(timeout)})
			return true, nil
		}
		if codeSent {
			return true, nil // the typed code stays valid while the QR refs rotate
		}
		pc, err := p.client.PairPhone(ctx, p.digits, true, whatsmeow.PairClientChrome, p.opts.ClientDisplayName)
		if err != nil {
			return true, fmt.Errorf("request a pairing code for %s: %w", p.opts.ExpectedPhone, err)
		}
		codeSent = true
		p.emit(Event{Kind: KindPairCode, Code: pc})
		return true, nil
	}
	// A connection that dies inside whatsmeow's Connect, after the
	// handshake but before its disconnect handler is set, produces no
	// event at all: the pairing would wait forever. Before the first
	// code, a socket found closed twice in a row is a lost connection.
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	downTicks := 0
	for {
		var evt any
		select {
		case <-ctx.Done():
			return Result{Outcome: OutcomeCancelled}, fmt.Errorf("%w: %w", ErrCancelled, ctx.Err())
		case <-check.C:
			if seq == 0 && !p.client.IsConnected() {
				if downTicks++; downTicks >= 2 {
					return Result{Outcome: OutcomeError}, ErrConnectionLost
				}
			} else {
				downTicks = 0
			}
			continue
		case <-rotate.C:
			more, err := next()
			if err != nil {
				return Result{Outcome: OutcomeError}, err
			}
			if !more {
				// Every code shown for its time: whatsmeow's channel
				// disconnects and reports a timeout here.
				return Result{Outcome: OutcomeExpired}, ErrExpired
			}
			continue
		case evt = <-evs:
		}
		switch e := evt.(type) {
		case *events.QR:
			codes = slices.Clone(e.Codes)
			more, err := next()
			if err != nil {
				return Result{Outcome: OutcomeError}, err
			}
			if !more {
				return Result{Outcome: OutcomeError}, errors.New("WhatsApp sent no pairing code")
			}
		case *events.PairSuccess:
			return p.paired(ctx)
		case *events.Disconnected:
			if seq == 0 {
				// A server-side close before the first code is a lost
				// connection, not an expiry (issue 17).
				return Result{Outcome: OutcomeError}, ErrConnectionLost
			}
			return Result{Outcome: OutcomeExpired}, ErrExpired
		case *events.PairError:
			return p.failed(e.Error)
		case *events.ClientOutdated:
			return Result{Outcome: OutcomeError}, errors.New("WhatsApp refused this client version as outdated (405): upgrade wactl or set the WhatsApp Web version override")
		case *events.ConnectFailure:
			return Result{Outcome: OutcomeError}, fmt.Errorf("WhatsApp refused the connection (%d %s)", int(e.Reason), e.Message)
		case *events.QRScannedWithoutMultidevice:
			// Not final: the phone can enable multi-device and scan again.
			p.log.Warn("QR scanned by a phone without multi-device support")
		default:
			return Result{Outcome: OutcomeError}, fmt.Errorf("pairing ended unexpectedly (%T): the device may have been paired concurrently; run wactl accounts list", evt)
		}
	}
}

func (p *pairing) failed(cause error) (Result, error) {
	p.mu.Lock()
	refused, scanned := p.refused, p.scanned
	p.mu.Unlock()
	if refused {
		phone := "+" + scanned.User
		return Result{Outcome: OutcomeRefused, JID: scanned, Phone: phone},
			fmt.Errorf("%w: the phone that scanned is %s, but this account's phone is %s; nothing was kept — scan with %s",
				ErrRefused, phone, p.opts.ExpectedPhone, p.opts.ExpectedPhone)
	}
	return Result{Outcome: OutcomeError}, fmt.Errorf("pairing failed: %w", cause)
}

// paired waits for the login that follows the server's post-pairing restart
// (stream error 515), so that "paired" means the session really works.
func (p *pairing) paired(ctx context.Context) (Result, error) {
	id := p.client.Store.ID
	if id == nil {
		return Result{Outcome: OutcomeError}, errors.New("pairing reported success but no device was saved")
	}
	res := Result{Outcome: OutcomePaired, JID: *id, Phone: "+" + id.User}
	timer := time.NewTimer(p.opts.ConnectedTimeout)
	defer timer.Stop()
	select {
	case <-p.connected:
	case <-timer.C:
		// The device is saved, so the account restores on the next start.
		p.log.Warn("paired, but the first login did not complete in time", "timeout", p.opts.ConnectedTimeout)
	case <-ctx.Done():
	}
	return res, nil
}

func (p *pairing) prePair(prev func(types.JID, string, string) bool) func(types.JID, string, string) bool {
	return func(jid types.JID, platform, business string) bool {
		p.mu.Lock()
		p.scanned = jid
		refuse := p.digits != "" && jid.User != p.digits
		p.refused = refuse
		p.mu.Unlock()
		p.emit(Event{Kind: KindScanned, Phone: "+" + jid.User})
		if refuse {
			p.log.Warn("pairing refused: wrong phone scanned", "scanned", "+"+jid.User, "expected", p.opts.ExpectedPhone)
			return false
		}
		if prev != nil {
			return prev(jid, platform, business)
		}
		return true
	}
}

func (p *pairing) onEvent(evt any) {
	switch evt.(type) {
	case *events.PairSuccess:
		p.mu.Lock()
		p.success = true
		p.mu.Unlock()
	case *events.Connected:
		p.mu.Lock()
		if p.success {
			select {
			case <-p.connected:
			default:
				close(p.connected)
			}
		}
		p.mu.Unlock()
	}
}

func validPhone(p string) bool {
	d, ok := strings.CutPrefix(p, "+")
	if !ok || len(d) < 6 || len(d) > 15 {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
