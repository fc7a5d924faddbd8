package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
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
// (restore, recycle, reconnect after a drop, the login reconnect after
// pairing). Under m.mu, the lock Deactivate takes to step down, it checks
// that the manager is ACTIVE, that the lease still holds an epoch for this
// process with time left on it, and that cli is still the account's
// client; it then registers the attempt, so that a step-down cancels it
// (through the client's context) and waits for it before disconnecting
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
	a.mu.Lock()
	if a.cli != cli || cli == nil {
		a.mu.Unlock()
		m.mu.Unlock()
		return errNotCurrent
	}
	if a.connCtx == nil {
		// The connection's lifetime: cancelled by stop after the client is
		// disconnected, and by a step-down while a connect is in flight.
		a.connCtx, a.connCancel = context.WithCancel(context.WithoutCancel(m.ctx))
	}
	ctx := a.connCtx
	a.connecting++
	a.connEpoch = epoch
	a.mu.Unlock()
	m.connecting.Add(1)
	m.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.connecting--
		a.mu.Unlock()
		m.connecting.Done()
	}()
	runBeforeConnect(a.id, why)
	if err := cli.ConnectContext(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("connect cancelled by a step-down or stop: %w", err)
		}
		return err
	}
	return nil
}

// cancelConnects cancels the context of every account whose connect is in
// flight; Deactivate then waits for them.
func (m *Manager) cancelConnects(accts []*account) {
	for _, a := range accts {
		a.mu.Lock()
		if a.connecting > 0 && a.connCancel != nil {
			a.connCancel()
		}
		a.mu.Unlock()
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
