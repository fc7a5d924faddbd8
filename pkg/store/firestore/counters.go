package firestore

import (
	"context"
	"errors"
	"sync"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/store"
)

// counterDelta is what happened since the last flush for one account.
type counterDelta struct {
	wrote, skipped, strong int64
	hWrote, hSkipped       int64
	hLastRunAt             time.Time
	hLastBatch             int
	hasBatch               bool
}

// counterBook accumulates counters in memory and persists them with
// Increment transforms every few seconds: at most a few seconds of counts
// can be lost in a crash, in exchange for no per-message write on one hot
// document.
type counterBook struct {
	s       *Store
	mu      sync.Mutex
	pending map[string]*counterDelta
	// flushMu keeps Counters from reading while a flush is between taking
	// deltas out of memory and landing them in Firestore.
	flushMu sync.RWMutex
}

func newCounterBook(s *Store) *counterBook {
	return &counterBook{s: s, pending: map[string]*counterDelta{}}
}

func (b *counterBook) add(account string, f func(d *counterDelta)) {
	b.mu.Lock()
	d := b.pending[account]
	if d == nil {
		d = &counterDelta{}
		b.pending[account] = d
	}
	f(d)
	b.mu.Unlock()
}

func (b *counterBook) countOutcome(account string, o store.Outcome, history bool) {
	b.add(account, func(d *counterDelta) { d.count(o, history) })
}

// count: a new document counts wrote; a repeat (Skipped or Updated)
// skipped. History counts in both families.
func (d *counterDelta) count(o store.Outcome, history bool) {
	switch o {
	case store.Wrote:
		d.wrote++
	case store.StrongSkipped:
		d.strong++
	default:
		d.skipped++
	}
	if history {
		if o == store.Wrote {
			d.hWrote++
		} else {
			d.hSkipped++
		}
	}
}

// merge adds a call's tally, applied only once the whole call succeeded:
// a failed call is retried with its write tokens and counted then.
func (b *counterBook) merge(account string, t *counterDelta) {
	b.add(account, func(d *counterDelta) {
		d.wrote += t.wrote
		d.skipped += t.skipped
		d.strong += t.strong
		d.hWrote += t.hWrote
		d.hSkipped += t.hSkipped
	})
}

func (b *counterBook) ref(account string) *firestore.DocumentRef {
	return b.s.c.Collection(colMetrics).Doc("counters").Collection("accounts").Doc(account)
}

func (b *counterBook) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	epoch, fenced, err := b.s.heldEpoch("counters", 0)
	if err != nil {
		// Not holding the lease: the deltas stay in memory and are written
		// in this process's next tenure (Counters still shows them).
		return nil
	}
	b.mu.Lock()
	taken := b.pending
	b.pending = map[string]*counterDelta{}
	b.mu.Unlock()
	var firstErr error
	for account, d := range taken {
		data := map[string]any{
			"accountId": account,
			"updatedAt": firestore.ServerTimestamp,
			"dedupe": map[string]any{
				"wrote":         firestore.Increment(d.wrote),
				"skipped":       firestore.Increment(d.skipped),
				"strongSkipped": firestore.Increment(d.strong),
			},
		}
		h := map[string]any{
			"wrote":   firestore.Increment(d.hWrote),
			"skipped": firestore.Increment(d.hSkipped),
		}
		if !d.hLastRunAt.IsZero() {
			h["lastRunAt"] = d.hLastRunAt
		}
		if d.hasBatch {
			h["lastBatchCount"] = int64(d.hLastBatch)
		}
		data["history"] = h
		if err := b.write(ctx, account, data, epoch, fenced); err != nil {
			b.restore(account, d)
			if errors.Is(err, store.ErrFenced) {
				continue // a newer holder writes these counters: keep ours for our next tenure
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// write persists one account's delta. A fenced store writes it in a
// transaction that carries its epoch and refuses a document written under
// a newer one (the delta then waits in memory, see flush).
func (b *counterBook) write(ctx context.Context, account string, data map[string]any, epoch int64, fenced bool) error {
	ref := b.ref(account)
	if !fenced {
		_, err := ref.Set(ctx, data, firestore.MergeAll)
		return err
	}
	data["leaseEpoch"] = epoch
	return b.s.c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil && !isNotFound(err) {
			return err
		}
		if err == nil {
			if err := olderThanDoc("counters "+account, epoch, getInt(snap.Data(), "leaseEpoch")); err != nil {
				return err
			}
		}
		return tx.Set(ref, data, firestore.MergeAll)
	})
}

// pendingCount is how many counts wait in memory (for Close's warning).
func (b *counterBook) pendingCount() (n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.pending {
		n += d.wrote + d.skipped + d.strong + d.hWrote + d.hSkipped
	}
	return n
}

// restore puts an unpersisted delta back, keeping any newer batch facts.
func (b *counterBook) restore(account string, old *counterDelta) {
	b.add(account, func(d *counterDelta) {
		d.wrote += old.wrote
		d.skipped += old.skipped
		d.strong += old.strong
		d.hWrote += old.hWrote
		d.hSkipped += old.hSkipped
		if d.hLastRunAt.IsZero() {
			d.hLastRunAt = old.hLastRunAt
		}
		if !d.hasBatch {
			d.hLastBatch, d.hasBatch = old.hLastBatch, old.hasBatch
		}
	})
}

// Counters returns the persisted totals plus what is not yet flushed.
func (s *Store) Counters(ctx context.Context, accountID string) (store.Counters, error) {
	b := s.counters
	b.flushMu.RLock()
	defer b.flushMu.RUnlock()
	var c store.Counters
	snap, err := b.ref(accountID).Get(ctx)
	if err != nil && !isNotFound(err) {
		s.noteErr(err)
		return c, err
	}
	if err == nil {
		d := snap.Data()
		if dd, ok := d["dedupe"].(map[string]any); ok {
			c.DedupeWrote = getInt(dd, "wrote")
			c.DedupeSkipped = getInt(dd, "skipped")
			c.DedupeStrongSkipped = getInt(dd, "strongSkipped")
		}
		if h, ok := d["history"].(map[string]any); ok {
			c.HistoryWrote = getInt(h, "wrote")
			c.HistorySkipped = getInt(h, "skipped")
			c.HistoryLastRunAt = getTime(h, "lastRunAt")
			c.HistoryLastBatch = int(getInt(h, "lastBatchCount"))
		}
	}
	b.mu.Lock()
	if d := b.pending[accountID]; d != nil {
		c.DedupeWrote += d.wrote
		c.DedupeSkipped += d.skipped
		c.DedupeStrongSkipped += d.strong
		c.HistoryWrote += d.hWrote
		c.HistorySkipped += d.hSkipped
		if !d.hLastRunAt.IsZero() {
			c.HistoryLastRunAt = d.hLastRunAt
		}
		if d.hasBatch {
			c.HistoryLastBatch = d.hLastBatch
		}
	}
	b.mu.Unlock()
	return c, nil
}
