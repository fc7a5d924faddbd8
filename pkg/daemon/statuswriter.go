package daemon

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// statusWriter mirrors account state to accounts/{id} in the background:
// event handlers only mark an account dirty, so a slow store never delays
// message handling, and bursts of events coalesce into one write.
//
// A write the store refuses (an outage) is not dropped: the account stays
// dirty and is written again after a backoff, so the latest state of every
// account reaches the store once it is reachable.
type statusWriter struct {
	m  *Manager
	mu sync.Mutex
	// flushing is held by flush: Delete waits on it (barrier) so that no
	// status write of a deleted account lands after its "deleted".
	flushing sync.Mutex
	dirty    map[string]bool
	// version counts marks: /health's snapshot is current while it holds.
	version atomic.Uint64
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	// failures in a row; retryAfter is the backoff after n of them.
	failures   int
	retryAfter func(n int) time.Duration
}

func newStatusWriter(m *Manager) *statusWriter {
	return &statusWriter{m: m, dirty: map[string]bool{}, wake: make(chan struct{}, 1),
		retryAfter: doubling(500*time.Millisecond, 30*time.Second)}
}

// start runs the writer from the first activation until stop (Close): it
// outlives PASSIVE periods so the final states of a step-down are written;
// writes carry the lease epoch, so a newer holder's documents win.
func (w *statusWriter) start(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return
	}
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done = make(chan struct{})
	go w.loop(ctx, w.done)
}

func (w *statusWriter) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel = nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// changed announces a change /health shows but the store does not keep
// (an account turning stale or live again).
func (w *statusWriter) changed() { w.version.Add(1) }

func (w *statusWriter) mark(id string) {
	w.mu.Lock()
	w.dirty[id] = true
	w.mu.Unlock()
	// After the state it announces is in place: a snapshot taken at the
	// old version is rebuilt (statuscache.go).
	w.version.Add(1)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *statusWriter) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			// Final states (passive, stopped) of a shutdown are written too.
			fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			w.flush(fctx)
			cancel()
			return
		case <-w.wake:
		case <-retry:
		}
		retry = nil
		if failed := w.flush(ctx); failed > 0 {
			w.failures++
			retry = time.After(w.retryAfter(w.failures))
		} else {
			w.failures = 0
		}
	}
}

// flush writes every dirty account and returns how many writes failed;
// those stay dirty.
func (w *statusWriter) flush(ctx context.Context) (failed int) {
	w.flushing.Lock() // see barrier
	defer w.flushing.Unlock()
	w.mu.Lock()
	ids := make([]string, 0, len(w.dirty))
	for id := range w.dirty {
		ids = append(ids, id)
	}
	w.dirty = map[string]bool{}
	w.mu.Unlock()
	for _, id := range ids {
		w.m.mu.Lock()
		a := w.m.accounts[id]
		w.m.mu.Unlock()
		if a == nil {
			continue
		}
		doc := a.document(w.m)
		// Each write bounded on its own: one that hangs (an unreachable
		// Firestore, a conflict retried over and over) must not hold the
		// flush lock that the final writes of a stop wait for.
		wctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
		err := w.m.o.Store.PutAccount(wctx, doc)
		cancel()
		if errors.Is(err, store.ErrFenced) {
			if _, held := w.m.o.Fence(); !held {
				// Our own step-down or release: nothing to report.
				w.m.log.Debug("account status not written: this process no longer holds the lease", "account", id)
				continue
			}
			// A newer lease holder writes this account now; our view is stale.
			w.m.log.Warn("account status not written: a newer lease holder owns it", "account", id)
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				w.m.log.Warn("account status not written; retrying", "account", id, "err", err)
			}
			w.mu.Lock()
			w.dirty[id] = true
			w.mu.Unlock()
			failed++
		}
	}
	return failed
}

// statusWriteTimeout bounds one account status write.
const statusWriteTimeout = 10 * time.Second

// document is the accounts/{id} view of an account.
func (a *account) document(m *Manager) store.Account {
	epoch, _ := m.o.Fence()
	a.mu.Lock()
	defer a.mu.Unlock()
	doc := store.Account{
		ID: a.id, Name: a.name, PhoneE164: a.phone, Status: ContractStatus(a.state),
		UpdatedAt: m.o.Now(), WAJid: a.waJID, LastConnectedAt: a.connectedAt,
		LastDisconnectedAt: a.disconnectedAt, LastError: a.lastError, LastErrorAt: a.lastErrorAt,
		RequiresQR: a.state == StateNeedsQR || a.state == StateLoggedOut, LogoutCount: a.logouts,
		Worker: m.o.Worker, Epoch: epoch,
	}
	doc.Worker.Uptime = m.o.Now().Sub(m.o.Worker.BootTs)
	return doc
}

// barrier returns once a flush in progress (which may hold an account
// removed since) has finished.
func (w *statusWriter) barrier() {
	// Called once an account is out of the manager's map (deleted, or a
	// failed pairing removed): /health and the dashboard drop it at once.
	w.changed()
	w.flushing.Lock()
	defer w.flushing.Unlock()
}
