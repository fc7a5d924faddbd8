package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

// ManagerOptions configure the account manager.
type ManagerOptions struct {
	Sessions *sessions.Store
	Store    store.Store
	Log      *slog.Logger
	Now      func() time.Time
	// StaleAfter: a connected account with no event for this long is
	// reported stale and recycled once (default 5 min).
	StaleAfter time.Duration
	// ConfigureClient is called on every new whatsmeow client before it
	// connects. Tests use it to point clients at the fake WhatsApp server;
	// production leaves it nil.
	ConfigureClient func(*whatsmeow.Client)
	// StreamReplaced is told when WhatsApp replaced one of our connections
	// (evidence that another process drives the account): the lease.
	StreamReplaced func(detail string)
	// Fence returns the lease epoch for fenced account writes.
	Fence func() (epoch int64, active bool)
	// Worker is written into account documents.
	Worker store.Worker
	// ConnectParallelism bounds simultaneous connects on activation.
	ConnectParallelism int
	// Lease is the lease's status: a held lease whose time has run out
	// (the process was paused) lets nothing connect. Nil: not checked.
	Lease func() lock.Status
	// After is the clock of retries (tests inject one); default time.After.
	After func(time.Duration) <-chan time.Time
	// RetryMin and RetryMax bound the backoff of reconnects and of restores
	// that failed while ACTIVE (defaults 2 s and 2 min).
	RetryMin, RetryMax time.Duration
}

// Manager owns one whatsmeow client per paired account while this instance
// is ACTIVE, and none while PASSIVE. Every client it creates, however it was
// created, gets the same event handler, so no restored account is left
// without message recording.
type Manager struct {
	o      ManagerOptions
	log    *slog.Logger
	status *statusWriter

	mu         sync.Mutex
	accounts   map[string]*account // every known account, connected or not
	active     bool
	ctx        context.Context // lives while ACTIVE; cancelled by Deactivate
	cancel     context.CancelFunc
	starting   sync.WaitGroup                   // restores (and restore retries) in flight
	connecting sync.WaitGroup                   // connects through the gate in flight (connect.go)
	aux        map[*whatsmeow.Client]*auxClient // clients a pairing unlinks (connect.go)
	// downDone is closed when the step-down in progress has disconnected
	// every client: a second Deactivate (the lease's OnPassive during a
	// shutdown that already stepped down) waits for it instead of
	// returning while clients are still connected.
	downDone chan struct{}
	// closing: the process is stopping; nothing activates again.
	closing bool
	boot    Counters
}

// NewManager returns a manager with no clients; Activate connects them.
func NewManager(o ManagerOptions) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ConnectParallelism == 0 {
		o.ConnectParallelism = 16
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 2 * time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(2*time.Minute, o.RetryMin)
	}
	if o.Fence == nil {
		o.Fence = func() (int64, bool) { return 0, true }
	}
	m := &Manager{o: o, log: o.Log, accounts: map[string]*account{}}
	m.status = newStatusWriter(m)
	return m
}

// Refresh reads the accounts on disk so that /health lists them while
// PASSIVE too (with hasDiskSession), without opening any of them.
func (m *Manager) Refresh(ctx context.Context) error {
	list, err := m.o.Sessions.List(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range list {
		a := m.accounts[st.ID]
		if a == nil {
			a = &account{m: m, id: st.ID, state: StatePassive}
			if m.active {
				a.state = StateStopped
			}
			m.accounts[st.ID] = a
		}
		a.mu.Lock()
		if st.Account != nil {
			a.name, a.phone = st.Account.Name, st.Account.Phone
		}
		paired := st.Store == sessions.StorePaired
		a.hasDisk = paired
		if !paired && a.cli == nil && a.state != StateQRReady && a.state != StateConnecting {
			a.state = StateNeedsQR
		}
		a.mu.Unlock()
	}
	return nil
}

// Activate is called when the lease is gained. It marks the manager
// ACTIVE at once and restores every paired account from disk in the
// background, connecting them in parallel; it does not wait for WhatsApp.
func (m *Manager) Activate(ctx context.Context) {
	m.mu.Lock()
	if m.active || m.closing {
		m.mu.Unlock()
		return
	}
	m.active = true
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	actx := m.ctx
	m.starting.Add(1)
	m.mu.Unlock()
	m.status.start(actx)
	go func() {
		defer m.starting.Done()
		if err := m.restoreAll(actx); err != nil {
			m.log.Error("some accounts could not be restored", "err", err)
		}
	}()
	go m.watchStale(actx)
}

func (m *Manager) restoreAll(ctx context.Context) error {
	if err := m.Refresh(ctx); err != nil {
		return err
	}
	var ids []string
	m.mu.Lock()
	for id, a := range m.accounts {
		if a.hasDisk {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	slices.Sort(ids)
	m.log.Info("ACTIVE: restoring accounts from disk", "accounts", len(ids))
	sem := make(chan struct{}, m.o.ConnectParallelism)
	var wg sync.WaitGroup
	var errsMu sync.Mutex
	var errs []error
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := m.start(ctx, id); err != nil {
				errsMu.Lock()
				errs = append(errs, err)
				errsMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Deactivate disconnects every client at once (the lease is lost or the
// process stops): nothing of ours may stay connected once another instance
// can take over. Restores still in flight are cancelled and waited for, so
// none can connect afterwards. It returns when every client is closed.
func (m *Manager) Deactivate(reason string) {
	m.mu.Lock()
	if !m.active {
		done := m.downDone
		m.mu.Unlock()
		if done != nil {
			<-done
		}
		return
	}
	// From here the gate (connect.go) lets nothing connect.
	m.active = false
	done := make(chan struct{})
	m.downDone = done
	defer close(done)
	cancel := m.cancel
	accts := make([]*account, 0, len(m.accounts))
	for _, a := range m.accounts {
		accts = append(accts, a)
	}
	m.mu.Unlock()
	cancel()
	m.abortConnects(accts)
	m.starting.Wait()
	m.connecting.Wait()
	m.closeAux()
	m.mu.Lock()
	accts = accts[:0]
	for _, a := range m.accounts {
		accts = append(accts, a)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range accts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.stop(StatePassive, reason)
		}()
	}
	wg.Wait()
	m.log.Info("PASSIVE: all WhatsApp clients disconnected", "reason", reason, "accounts", len(accts))
}

// waitDown returns once a step-down in progress has stopped every client.
func (m *Manager) waitDown() {
	m.mu.Lock()
	done, active := m.downDone, m.active
	m.mu.Unlock()
	if !active && done != nil {
		<-done
	}
}

// Active reports whether the manager currently drives clients.
func (m *Manager) Active() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active
}

// start opens and connects one account's client; see account.start.
func (m *Manager) start(ctx context.Context, id string) error {
	m.mu.Lock()
	a := m.accounts[id]
	if a == nil {
		a = &account{m: m, id: id}
		m.accounts[id] = a
	}
	m.mu.Unlock()
	err := a.start(ctx)
	if err != nil && ctx.Err() == nil {
		a.scheduleRestore(err.Error())
	}
	return err
}

// Snapshot returns every account's status, sorted by id.
func (m *Manager) Snapshot() ([]AccountStatus, Counters) {
	m.mu.Lock()
	accts := make([]*account, 0, len(m.accounts))
	for _, a := range m.accounts {
		accts = append(accts, a)
	}
	boot := m.boot
	m.mu.Unlock()
	now := m.o.Now()
	out := make([]AccountStatus, 0, len(accts))
	for _, a := range accts {
		out = append(out, a.snapshot(now))
	}
	slices.SortFunc(out, func(a, b AccountStatus) int { return strings.Compare(a.ID, b.ID) })
	return out, boot
}

func (m *Manager) count(f func(*Counters)) {
	m.mu.Lock()
	f(&m.boot)
	m.mu.Unlock()
}

// watchStale reports accounts that are connected but silent for longer
// than StaleAfter, and recycles each such client once rather than leaving
// a zombie connection (the old service stopped recording after 5 quiet
// minutes without anyone noticing).
func (m *Manager) watchStale(ctx context.Context) {
	every := min(m.o.StaleAfter/4, 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.o.Now()
		m.mu.Lock()
		accts := make([]*account, 0, len(m.accounts))
		for _, a := range m.accounts {
			accts = append(accts, a)
		}
		m.mu.Unlock()
		for _, a := range accts {
			a.checkStale(now)
		}
	}
}

// Close deactivates and stops background work.
func (m *Manager) Close() {
	m.Deactivate("shutdown")
	m.status.stop()
}
