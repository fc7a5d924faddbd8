package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Final writes of a graceful stop.
//
// Account states and counters are fenced writes (docs/lease.md): the store
// takes them only while this process holds a lease epoch, and the lease's
// step-down drops the epoch before OnPassive runs. A shutdown therefore
// steps the manager down itself while the lease is still held, writes what
// only the holder may write, and only then lets the lease step down and
// release. Written after the release, the counter deltas still in memory
// were dropped and the accounts kept the last state written while ACTIVE.
//
// A step-down forced by the lease (lost, renewal too late) has no epoch
// left to write under: the store keeps the counter deltas in memory and
// writes them in this process's next tenure (TestStepDownKeepsCounterDeltas).

// stopForShutdown steps the manager down for good: every client is
// disconnected (messages decrypted meanwhile are recorded), nothing
// activates again, and the history worker stops, so nothing counts after
// the final flush.
func (m *Manager) stopForShutdown() {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.Deactivate("shutdown")
	m.CloseHistory()
}

// flushStatus writes every account whose state changed (the final states
// of a step-down) now, not in the status writer's next round.
func (m *Manager) flushStatus(ctx context.Context) (failed int) {
	return m.status.flush(ctx)
}

// finalWrites runs before the lease is released and returns by until
// (plus a moment for the callees to report): the accounts' final states and
// the store's flush (the journal's backlog and the counter deltas), side by
// side, so that a write Firestore is slow to take in one cannot starve the
// other. What does not make it is logged; the messages stay in the journal
// and are shipped after the release or at the next start. A write still
// under way at until is left to finish or fail on its own: fenced writes
// ask for the epoch again and are refused once the lease is released
// (TestGracefulStopReleasesWithinBudget: before, a counter flush waiting
// behind Firestore held the release for 16 s of a 3.3 s budget).
func (d *Daemon) finalWrites(until time.Time) {
	if _, held := d.lk.Fence(); !held {
		return // nothing fenced can be written any more
	}
	ctx, cancel := context.WithDeadline(context.Background(), until)
	t0 := time.Now()
	var failed atomic.Int64
	var flushErr atomic.Pointer[error]
	var wg sync.WaitGroup
	wg.Go(func() { failed.Store(int64(d.mgr.flushStatus(ctx))) })
	wg.Go(func() {
		if err := d.o.Store.Flush(ctx); err != nil {
			flushErr.Store(&err)
		}
	})
	done := make(chan struct{})
	go func() { wg.Wait(); cancel(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(until) + finalGrace):
		d.log.Warn("final writes still under way at their deadline; releasing the lease (account states not written keep their last value until the next holder writes them; counter deltas not yet written are lost when the process exits; messages are kept)",
			"took", time.Since(t0).Round(time.Millisecond))
		return
	}
	if n := failed.Load(); n > 0 {
		d.log.Warn("final account states not written before releasing the lease", "accounts", n)
	}
	if p := flushErr.Load(); p != nil {
		d.log.Warn("store not flushed before releasing the lease: counter deltas not yet written are lost when the process exits (messages are kept)", "err", *p)
		return
	}
	d.log.Info("final states and counters written before releasing the lease", "took", time.Since(t0).Round(time.Millisecond))
}

// finalGrace is how long finalWrites waits past its deadline for the
// writes to report (they end at the deadline when they honour it).
const finalGrace = 200 * time.Millisecond
