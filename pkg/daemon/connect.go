package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/wasock"
)

// Why the gate refused to connect a client.
var (
	errNotActive    = errors.New("not connecting: this instance is not ACTIVE")
	errLeaseNotHeld = errors.New("not connecting: the lease holds no epoch for this process")
	errLeaseRunOut  = errors.New("not connecting: the held lease has run out and is not renewed yet (this process was paused or cut off)")
	errNotCurrent   = errors.New("not connecting: the account's client was stopped or replaced")
)

// refused reports whether err is the gate saying no (as opposed to
// WhatsApp or the network failing).
func refused(err error) bool {
	return errors.Is(err, errNotActive) || errors.Is(err, errLeaseNotHeld) ||
		errors.Is(err, errLeaseRunOut) || errors.Is(err, errNotCurrent)
}

// connect is the one place wactl connects an account's whatsmeow client
// (restore, recycle, reconnect after a drop, a pairing's first connection
// and its login reconnect, and the old device `pair --force` unlinks,
// registered with addAux). Under m.mu, the lock Deactivate takes to step down, it checks
// that the manager is ACTIVE, that the lease still holds an epoch for this
// process with time left on it, and that cli is still the account's
// client; it then registers the attempt, so that a step-down cancels it
// (through its dial, wasock.WithDialAbort) and waits for it before disconnecting
// every client. whatsmeow's own reconnects are switched off (newClient):
// a process that resumes after a pause cannot reconnect before its lease
// loop has had a say.
func (m *Manager) connect(a *account, cli *whatsmeow.Client, why string) error {
	// The lock is asked outside m.mu: it calls Deactivate, which takes
	// m.mu, from its own goroutine.
	epoch, held := m.o.Fence()
	runOut := false
	if m.o.Lease != nil {
		st := m.o.Lease()
		runOut = !st.LeaseUntil.IsZero() && st.RemainingSec <= 0
	}
	m.mu.Lock()
	switch {
	case !m.active:
		m.mu.Unlock()
		return errNotActive
	case !held:
		m.mu.Unlock()
		return errLeaseNotHeld
	case runOut:
		m.mu.Unlock()
		return errLeaseRunOut
	}
	var ctx context.Context
	var done func()
	if x := m.aux[cli]; x != nil && x.a == a && cli != nil {
		// The old device of a `pair --force` (pairing.go): not the
		// account's client, registered for the unlink.
		ctx = x.ctx
		x.connecting++
		done = func() {
			m.mu.Lock()
			x.connecting--
			m.mu.Unlock()
		}
	} else {
		a.mu.Lock()
		if a.cli != cli || cli == nil {
			a.mu.Unlock()
			m.mu.Unlock()
			return errNotCurrent
		}
		if a.connCtx == nil {
			// The connection's lifetime: cancelled by stop only after the
			// client is disconnected. A step-down or stop aborts the dial
			// of a connect in flight instead (wasock.WithDialAbort).
			ctx, cancel := context.WithCancel(context.WithoutCancel(m.ctx))
			a.connCtx, a.connAbort = wasock.WithDialAbort(ctx)
			a.connCancel = cancel
		}
		ctx = a.connCtx
		a.connecting++
		a.connEpoch = epoch
		a.mu.Unlock()
		done = func() {
			a.mu.Lock()
			a.connecting--
			a.mu.Unlock()
		}
	}
	m.connecting.Add(1)
	m.mu.Unlock()
	defer func() {
		done()
		m.connecting.Done()
	}()
	runBeforeConnect(a.id, why)
	setLive(cli, true)
	if err := cli.ConnectContext(ctx); err != nil {
		if !errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			setLive(cli, false)
		}
		if wasock.DialAborted(ctx) || ctx.Err() != nil {
			return fmt.Errorf("connect cancelled by a step-down or stop: %w", err)
		}
		return err
	}
	return nil
}

// abortConnects aborts the dial of every account's connect in flight, and
// of every auxiliary client's; Deactivate then waits for them. A connect
// whose websocket is already open finishes, and is closed with the rest.
func (m *Manager) abortConnects(accts []*account) {
	for _, a := range accts {
		a.mu.Lock()
		if a.connecting > 0 && a.connAbort != nil {
			a.connAbort()
		}
		a.mu.Unlock()
	}
	m.mu.Lock()
	for _, x := range m.aux {
		if x.connecting > 0 {
			x.abort()
		}
	}
	m.mu.Unlock()
}

// auxClient is a client of an account that is not the account's client:
// the old device that `pair --force` logs out before the new pairing. It
// connects through the same gate, and a step-down disconnects it like the
// account's own.
type auxClient struct {
	a          *account
	ctx        context.Context    // its connection's lifetime
	cancel     context.CancelFunc // only once the client is closed
	abort      func()             // the dial of a connect in flight
	connecting int                // under Manager.mu
}

// addAux registers cli as a's auxiliary client while ACTIVE; release
// disconnects it (serialised with the account's other closes) and forgets
// it. Refused when the manager is not ACTIVE.
func (m *Manager) addAux(a *account, cli *whatsmeow.Client) (release func(), err error) {
	m.mu.Lock()
	if !m.active || m.ctx == nil {
		m.mu.Unlock()
		return nil, errNotActive
	}
	if m.aux == nil {
		m.aux = map[*whatsmeow.Client]*auxClient{}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(m.ctx))
	ctx, abort := wasock.WithDialAbort(ctx)
	m.aux[cli] = &auxClient{a: a, ctx: ctx, cancel: cancel, abort: abort}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		x := m.aux[cli]
		delete(m.aux, cli)
		m.mu.Unlock()
		if x != nil {
			a.disconnect(cli)
			x.cancel()
		}
	}, nil
}

// closeAux disconnects every auxiliary client (a step-down, once no
// connect is in flight any more); their owners see their calls fail.
func (m *Manager) closeAux() {
	m.mu.Lock()
	aux := m.aux
	m.aux = nil
	m.mu.Unlock()
	for cli, x := range aux {
		x.a.disconnect(cli)
		x.cancel()
	}
}

// reconnect is the daemon's replacement for whatsmeow's auto-reconnect:
// after a drop (or a failed attempt) it retries through the gate with
// backoff until the client is connected, the client is stopped or
// replaced, or the manager steps down. One loop per account at a time.
func (a *account) reconnect(cli *whatsmeow.Client, why string, delay time.Duration) {
	m := a.m
	m.mu.Lock()
	ctx := m.ctx
	active := m.active
	m.mu.Unlock()
	if !active || ctx == nil {
		return
	}
	a.mu.Lock()
	if a.reconnecting == cli || a.cli != cli {
		a.mu.Unlock()
		return
	}
	a.reconnecting = cli
	a.mu.Unlock()
	go func() {
		defer func() {
			a.mu.Lock()
			if a.reconnecting == cli {
				a.reconnecting = nil
			}
			a.mu.Unlock()
		}()
		for attempt := 1; ; attempt++ {
			if delay > 0 {
				a.noteRetry(why, delay)
				select {
				case <-ctx.Done():
					return
				case <-m.o.After(delay):
				}
			}
			a.mu.Lock()
			current := a.cli == cli
			a.mu.Unlock()
			if !current || ctx.Err() != nil || cli.IsConnected() {
				a.clearRetry()
				return
			}
			err := m.connect(a, cli, why)
			if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) {
				a.clearRetry()
				return
			}
			if errors.Is(err, errNotActive) || errors.Is(err, errNotCurrent) {
				a.clearRetry()
				return
			}
			why = fmt.Sprintf("reconnect failed: %v", err)
			m.log.Warn("reconnect failed; retrying", "account", a.id, "attempt", attempt, "err", err)
			delay = m.backoff(attempt)
		}
	}()
}

// backoff is the wait before retry number attempt+1: RetryMin doubling up
// to RetryMax.
func (m *Manager) backoff(attempt int) time.Duration {
	d := m.o.RetryMin
	for i := 1; i < attempt && d < m.o.RetryMax; i++ {
		d *= 2
	}
	return min(d, m.o.RetryMax)
}

// beforeConnect is a test seam (see export_test.go).
var beforeConnect atomic.Pointer[func(account, why string)]

func runBeforeConnect(id, why string) {
	if f := beforeConnect.Load(); f != nil {
		(*f)(id, why)
	}
}
