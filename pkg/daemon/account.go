package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/wmlog"
)

// Daemon states of an account (mapped to the contract's status strings by
// ContractStatus).
const (
	StateConnecting     = "connecting"
	StateQRReady        = "qr_ready"
	StateConnected      = "connected"
	StateReconnecting   = "reconnecting"
	StateNeedsQR        = "needs_qr"
	StateLoggedOut      = "logged_out"
	StateReplaced       = "replaced"
	StateBanned         = "banned"
	StateClientOutdated = "client_outdated"
	StateStopped        = "stopped"
	StatePassive        = "passive"
)

// account is one WhatsApp account and, while ACTIVE, its client.
type account struct {
	m  *Manager
	id string

	mu             sync.Mutex
	name, phone    string
	state          string
	bannedUntil    time.Time
	lastEventAt    time.Time
	lastMessageAt  time.Time
	connectedAt    time.Time
	disconnectedAt time.Time
	reconnects     int
	logouts        int
	lastError      string
	lastErrorAt    time.Time
	hasDisk        bool
	stale          bool
	connectedOnce  bool // this client has connected before: later Connected events are reconnects
	recycled       bool // recycled for staleness and no traffic since: do not recycle again
	waJID          string
	pairing        PairingState
	pairRunning    bool
	dev            *sessions.Device
	cli            *whatsmeow.Client

	// Connecting goes through Manager.connect (connect.go) only.
	connCtx      context.Context // the client's connection lifetime; nil until its first connect
	connCancel   context.CancelFunc
	connAbort    func()            // aborts the dial of a connect in flight (wasock.WithDialAbort)
	connecting   int               // connects in flight through the gate
	connEpoch    int64             // lease epoch the last connect was allowed under
	reconnecting *whatsmeow.Client // the client a reconnect loop runs for
	gen          int               // bumped by stop: retry loops of an older generation end
	retry        retryState
	closer       clientCloser // every disconnect of this account's clients
}

// start opens the account's device store (taking its per-account OS lock,
// so no other process can connect it) and connects a client.
func (a *account) start(ctx context.Context) error {
	a.mu.Lock()
	if a.cli != nil {
		a.mu.Unlock()
		return nil
	}
	a.state = StateConnecting
	a.mu.Unlock()

	m := a.m
	dev, err := m.o.Sessions.OpenDevice(ctx, a.id, sessions.DeviceOptions{})
	if err != nil {
		a.fail(StateStopped, fmt.Errorf("open session: %w", err))
		return fmt.Errorf("account %s: %w", a.id, err)
	}
	if !dev.Paired() {
		dev.Close()
		a.setState(StateNeedsQR, "no paired device on disk")
		return nil
	}
	cli := a.newClient(dev)
	if ctx.Err() != nil {
		// Deactivated while the store was opening: connect nothing.
		dev.Close()
		return ctx.Err()
	}
	a.mu.Lock()
	a.dev, a.cli = dev, cli
	a.hasDisk = true
	a.stale, a.recycled, a.connectedOnce = false, false, false
	if dev.Store.ID != nil {
		a.waJID = dev.Store.ID.ToNonAD().String()
	}
	if a.name == "" {
		a.name, a.phone = dev.Account.Name, dev.Account.Phone
	}
	a.mu.Unlock()

	if err := m.connect(a, cli, "restore"); err != nil {
		if refused(err) {
			// Stepped down (or stopped) while restoring: Deactivate closes
			// the store.
			return nil
		}
		// The session is fine; WhatsApp or the network is not. Retry
		// through the gate with backoff.
		a.fail(StateReconnecting, fmt.Errorf("connect: %w", err))
		a.reconnectAfter(cli, "connect failed: "+err.Error(), m.backoff(1))
	}
	a.m.status.mark(a.id)
	return nil
}

// newClient makes the account's whatsmeow client the one way every path
// (restore, pairing, recycle) must: configured for a daemon and with the
// event handler registered before it can connect.
func (a *account) newClient(dev *sessions.Device) *whatsmeow.Client {
	m := a.m
	// The logger is also the ingest gate (ingestgate.go): it bounds the
	// nodes queued for the handler.
	gate := ingestLogger(wmlog.New(m.log.With("account", a.id), "Client", wmlog.Options{}), a.id)
	cli := whatsmeow.NewClient(dev.Store, gate)
	gate.attach(cli)
	// Nothing is acknowledged before the store has it: with the decrypted
	// event buffer a message whose handler failed is decrypted again when
	// the server redelivers it.
	cli.EnableDecryptedEventBuffer = true
	// whatsmeow's own reconnects (after a drop, a keepalive failure, the
	// 515 after pairing) would connect without asking the lease, e.g. the
	// instant a paused process resumes: the daemon reconnects instead,
	// through Manager.connect (connect.go).
	cli.EnableAutoReconnect = false
	cli.InitialAutoReconnect = false
	cli.DisableLoginAutoReconnect = true
	cli.AutoReconnectHook = func(error) bool { return false }
	// A step-down aborts a dial in flight through its HTTP round trip,
	// never through the connect's context (wasock.WithDialAbort).
	wasock.UseAbortableHTTP(cli)
	if m.o.ConfigureClient != nil {
		m.o.ConfigureClient(cli)
	}
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if socketEnded(evt) {
			setLive(cli, false) // even for a client no longer current
		}
		return a.handleOf(cli, evt)
	})
	return cli
}

// stop disconnects the client and closes the device store, leaving the
// account in state.
func (a *account) stop(state, reason string) {
	a.mu.Lock()
	cli, dev := a.cli, a.dev
	a.cli, a.dev = nil, nil
	a.gen++
	connCancel := a.connCancel
	if a.connecting > 0 && a.connAbort != nil {
		// A connect that passed the gate before this stop: abort its dial.
		// If its websocket is already open, it finishes and is closed below.
		a.connAbort()
	}
	a.connCtx, a.connCancel, a.connAbort = nil, nil, nil
	if cli != nil || a.state == StateConnected || a.state == StateConnecting || a.state == StateReconnecting || state == StatePassive {
		a.state = state
	}
	a.disconnectedAt = a.m.o.Now()
	a.mu.Unlock()
	a.waitConnects()
	if cli != nil {
		// The handler stays: with no handler whatsmeow would count a
		// message decrypted during the close as handled, mark it so in its
		// event buffer and acknowledge it on redelivery unrecorded.
		// handleOf refuses events of a client that is no longer current.
		a.disconnect(cli)
	}
	if connCancel != nil {
		connCancel()
	}
	if dev != nil {
		if err := dev.Close(); err != nil {
			a.m.log.Warn("closing session store failed", "account", a.id, "err", err)
		}
	}
	a.m.status.mark(a.id)
	_ = reason
}

func (a *account) setState(state, why string) {
	a.mu.Lock()
	a.state = state
	if why != "" {
		a.lastError, a.lastErrorAt = why, a.m.o.Now()
	}
	a.mu.Unlock()
	a.m.status.mark(a.id)
}

func (a *account) fail(state string, err error) {
	a.m.log.Error("account error", "account", a.id, "state", state, "err", err)
	a.setState(state, err.Error())
}

// handle is the one event handler of every client. It returns false only
// when a message could not be made durable: whatsmeow then sends no
// receipt, the server redelivers, and the buffered plaintext is handled
// again.
func (a *account) handle(evt any) bool {
	now := a.m.o.Now()
	a.mu.Lock()
	a.lastEventAt = now
	wasStale := a.stale
	a.stale = false
	a.mu.Unlock()
	if wasStale {
		a.m.status.changed() // /health shows it at once (statuscache.go)
	}

	switch evt.(type) {
	case *events.Message, *events.Receipt, *events.HistorySync, *events.UndecryptableMessage:
		// Traffic from WhatsApp (not the events every login produces): the
		// connection is alive, and a later silence may be recycled again.
		a.mu.Lock()
		a.recycled = false
		a.mu.Unlock()
	}
	switch e := evt.(type) {
	case *events.Message:
		ok := a.recordMessage(e)
		if ok {
			observeLiveDelay(e.Info.Timestamp, a.m.o.Now()) // metrics.go
		}
		return ok
	case *events.HistorySync:
		return a.recordHistory(e)
	case *events.Receipt:
		return a.recordReceipt(e)
	case *events.Connected:
		a.mu.Lock()
		if a.connectedOnce {
			a.reconnects++ // every Connected after the first is a reconnect, whatever caused it
		}
		a.connectedOnce = true
		a.state, a.connectedAt = StateConnected, now
		if a.cli != nil && a.cli.Store.ID != nil {
			a.waJID = a.cli.Store.ID.ToNonAD().String()
		}
		a.mu.Unlock()
		a.m.log.Info("connected", "account", a.id)
	case *events.Disconnected:
		a.mu.Lock()
		if a.state == StateConnected || a.state == StateConnecting {
			a.state = StateReconnecting
		}
		a.disconnectedAt = now
		cli := a.cli
		a.mu.Unlock()
		a.m.log.Warn("disconnected; reconnecting", "account", a.id)
		a.reconnectAfter(cli, "disconnected", 0)
	case *events.LoggedOut:
		// whatsmeow has deleted the device from the store itself (a confirmed
		// logout). The account stays; it needs a new pairing.
		a.mu.Lock()
		a.logouts++
		a.hasDisk = false
		a.mu.Unlock()
		a.m.log.Warn("logged out by WhatsApp; the account needs a new QR scan", "account", a.id, "reason", e.Reason.String())
		go func() {
			a.stop(StateNeedsQR, "logged out")
			a.setState(StateNeedsQR, "logged out: "+e.Reason.String())
			if _, err := a.m.o.Sessions.MarkUnpaired(a.id); err != nil {
				a.m.log.Warn("could not mark account unpaired", "account", a.id, "err", err)
			}
		}()
	case *events.StreamReplaced:
		a.m.log.Error("STREAM REPLACED: another process connected this account; not reconnecting", "account", a.id)
		go func() {
			a.stop(StateReplaced, "stream replaced")
			a.setState(StateReplaced, "another process connected this account (stream replaced)")
			if a.m.o.StreamReplaced != nil {
				a.m.o.StreamReplaced("account " + a.id)
			}
		}()
	case *events.TemporaryBan:
		a.mu.Lock()
		a.bannedUntil = now.Add(e.Expire)
		a.mu.Unlock()
		a.m.log.Error("temporarily banned by WhatsApp", "account", a.id, "code", e.Code.String(), "expire", e.Expire)
		go func() {
			a.stop(StateBanned, "temporary ban")
			a.setState(StateBanned, e.String())
		}()
	case *events.ClientOutdated:
		a.m.log.Error("WhatsApp rejected the client version (405); set whatsapp.version_override or upgrade wactl", "account", a.id)
		go func() {
			a.stop(StateClientOutdated, "client outdated")
			a.setState(StateClientOutdated, "client outdated (405)")
		}()
	case *events.ManualLoginReconnect:
		// The 515 after a pairing: log in again as the new device, through
		// the gate (whatsmeow would reconnect by itself without asking).
		a.loginReconnect()
	case *events.ConnectFailure:
		a.setState(a.currentState(), fmt.Sprintf("connect failure %d: %s", int(e.Reason), e.Message))
	case *events.KeepAliveTimeout:
		// The connection is not answering; whatsmeow forces a reconnect
		// after KeepAliveMaxFailTime.
		st := a.currentState()
		if st == StateConnected {
			st = StateReconnecting
		}
		a.setState(st, fmt.Sprintf("keepalive timeout (%d errors)", e.ErrorCount))
		a.keepAliveFailed(e.LastSuccess)
	case *events.KeepAliveRestored:
		a.mu.Lock()
		a.lastError = ""
		if a.state == StateReconnecting && a.cli != nil && a.cli.IsLoggedIn() {
			a.state = StateConnected
		}
		a.mu.Unlock()
	default:
		return true
	}
	a.m.status.mark(a.id)
	return true
}

func (a *account) currentState() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// checkStale marks a connected account stale after StaleAfter without an
// event and recycles its connection once.
func (a *account) checkStale(now time.Time) {
	a.mu.Lock()
	if a.state != StateConnected || a.cli == nil {
		a.mu.Unlock()
		return
	}
	last := later(a.lastEventAt, a.connectedAt)
	if now.Sub(last) < a.m.o.StaleAfter {
		a.mu.Unlock()
		return
	}
	wasStale := a.stale
	a.stale = true
	cli, recycled := a.cli, a.recycled
	a.recycled = true
	a.mu.Unlock()
	if !wasStale {
		a.m.status.changed()
	}
	if recycled {
		return
	}
	a.m.log.Warn("account stale: no event for too long; recycling its connection once", "account", a.id, "after", a.m.o.StaleAfter)
	go func() {
		a.disconnect(cli)
		if err := a.m.connect(a, cli, "recycle"); err != nil && !errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			if refused(err) {
				return
			}
			a.fail(StateReconnecting, fmt.Errorf("recycle: %w", err))
			a.reconnectAfter(cli, "recycle failed: "+err.Error(), a.m.backoff(1))
		}
	}()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (a *account) snapshot(now time.Time) AccountStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AccountStatus{
		ID: a.id, Name: a.name, Phone: a.phone, State: a.state, BannedUntil: a.bannedUntil,
		LastEventAt: a.lastEventAt, LastMessageAt: a.lastMessageAt, ReconnectCount: a.reconnects,
		LastError: a.lastError, HasDiskSession: a.hasDisk, IsStale: a.stale,
		RetryReason: a.retry.reason, NextRetryAt: a.retry.next, RetryCount: a.retry.count,
	}
}
