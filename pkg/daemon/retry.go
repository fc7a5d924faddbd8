package daemon

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
)

// retryState is an account's pending retry, shown per account on /health
// (a warning) and the dashboard: why it is not connected, when the daemon
// tries again and how many attempts failed in a row.
type retryState struct {
	reason string
	next   time.Time
	count  int
	// restoring: a restore retry loop runs for this account.
	restoring bool
}

// noteRetry records that the next attempt is in d.
func (a *account) noteRetry(reason string, d time.Duration) {
	a.mu.Lock()
	a.retry.reason, a.retry.next = reason, a.m.o.Now().Add(d)
	a.retry.count++
	a.mu.Unlock()
	a.m.status.mark(a.id)
}

// clearRetry forgets the pending retry (connected, stopped or passive).
func (a *account) clearRetry() {
	a.mu.Lock()
	restoring := a.retry.restoring
	a.retry = retryState{restoring: restoring}
	a.mu.Unlock()
	a.m.status.mark(a.id)
}

// scheduleRestore retries restoring an account whose restore failed while
// the daemon is ACTIVE (its session held by another process, a store
// error, ...), with backoff, until it is restored, stopped or deleted, or
// the manager steps down. Without it such an account stayed stopped until
// the next restart. One loop per account; Deactivate waits for it.
func (a *account) scheduleRestore(reason string) {
	m := a.m
	m.mu.Lock()
	if !m.active || m.accounts[a.id] != a {
		m.mu.Unlock()
		return
	}
	ctx := m.ctx
	a.mu.Lock()
	if a.retry.restoring {
		a.mu.Unlock()
		m.mu.Unlock()
		return
	}
	a.retry.restoring = true
	gen := a.gen
	a.mu.Unlock()
	m.starting.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.starting.Done()
		defer func() {
			a.mu.Lock()
			a.retry.restoring = false
			a.mu.Unlock()
		}()
		for attempt := 1; ; attempt++ {
			d := m.backoff(attempt)
			a.noteRetry(reason, d)
			m.log.Warn("account not restored; retrying", "account", a.id, "in", d, "attempt", attempt, "reason", reason)
			select {
			case <-ctx.Done():
				a.clearRetry()
				return
			case <-m.o.After(d):
			}
			m.mu.Lock()
			ours := m.accounts[a.id] == a
			m.mu.Unlock()
			a.mu.Lock()
			stopped := a.gen != gen
			a.mu.Unlock()
			if !ours || stopped || ctx.Err() != nil {
				// Deleted, disconnected by the API, or passive: not ours to retry.
				a.clearRetry()
				return
			}
			err := a.start(ctx)
			if err == nil {
				a.clearRetry()
				return
			}
			reason = err.Error()
		}
	}()
}

// reconnectAfter starts the reconnect loop for cli after d (see
// account.reconnect).
func (a *account) reconnectAfter(cli *whatsmeow.Client, why string, d time.Duration) {
	if cli == nil {
		return
	}
	a.reconnect(cli, why, d)
}

// keepAliveFailed replaces whatsmeow's forced reconnect after
// KeepAliveMaxFailTime without an answered ping (switched off with its
// auto-reconnect): drop the dead socket and reconnect through the gate.
func (a *account) keepAliveFailed(lastSuccess time.Time) {
	if lastSuccess.IsZero() || time.Since(lastSuccess) <= whatsmeow.KeepAliveMaxFailTime {
		return
	}
	a.mu.Lock()
	cli := a.cli
	a.mu.Unlock()
	if cli == nil {
		return
	}
	a.m.log.Warn("keepalive failing for too long; reconnecting", "account", a.id)
	go func() {
		a.disconnect(cli)
		a.reconnectAfter(cli, "keepalive failed", 0)
	}()
}

// loginReconnect is the reconnect after pairing (stream error 515) that
// whatsmeow would otherwise make by itself.
func (a *account) loginReconnect() {
	a.mu.Lock()
	cli := a.cli
	a.mu.Unlock()
	if cli == nil {
		return
	}
	go func() {
		a.disconnect(cli)
		if err := a.m.connect(a, cli, "login after pairing"); err != nil && !refused(err) {
			a.fail(StateReconnecting, fmt.Errorf("login after pairing: %w", err))
			a.reconnectAfter(cli, "login after pairing failed: "+err.Error(), a.m.backoff(1))
		}
	}()
}

// waitConnects returns when no connect of this account is in flight.
func (a *account) waitConnects() {
	for {
		a.mu.Lock()
		n := a.connecting
		a.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// retryWarning is the account's line in /health's warnings.
func retryWarning(a AccountStatus) string {
	return fmt.Sprintf("account %s is %s: %s; retry %d at %s", a.ID, a.State, a.RetryReason, a.RetryCount,
		a.NextRetryAt.UTC().Format(time.RFC3339))
}
