package firestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	// inDoubt (under flushMu) holds, per account, the writes whose answer
	// never came (a timeout, an outage, Firestore frozen after the commit):
	// one of them may have landed, or land later still (a write queued
	// behind a dead transaction's lock is made after its caller gave up).
	// Each write carries a fresh token in lastFlushId; the next write of
	// that account reads the document, settles the doubt from the token it
	// finds, and re-applies only what did not land. Restoring the delta at
	// once counted it twice whenever it had landed
	// (TestCounterWriteWithLostAnswerCountsOnce), and so did trusting one
	// read-back when the write landed after it
	// (TestCounterWriteThatLandsLateCountsOnce).
	inDoubt map[string]*doubtfulWrite
}

// doubtfulWrite: counter writes of one account whose outcome is unknown.
// Each write is conditional on the version of the document it read,
// and none of them changed it, so all were made on the same version: at
// most one can land, and none once the document has changed.
type doubtfulWrite struct {
	owed  *counterDelta // what the account owes Firestore if none landed
	tries []doubtfulTry
}

// doubtfulTry is one write in doubt and the part of owed it carried.
type doubtfulTry struct {
	token   string
	carried *counterDelta
}

// settle says what is still owed when the document's lastFlushId is token,
// and which writes in doubt can still land on top of it.
func (dw *doubtfulWrite) settle(token string) (*counterDelta, []doubtfulTry) {
	if dw == nil {
		return &counterDelta{}, nil
	}
	for _, t := range dw.tries {
		if t.token == token {
			// It landed; the others were made on the version it replaced.
			return subDelta(dw.owed, t.carried), nil
		}
	}
	return dw.owed, dw.tries
}

// counterLostAnswerHook, when set (tests only), runs after a counter write
// that succeeded; true turns its answer into a lost one (the write stays).
var counterLostAnswerHook func(s *Store, account string) bool

var errCounterAnswerLost = errors.New("counter write: answer lost (test)")

// counterHoldWriteHook, when set (tests only), may take a counter write
// instead of making it: the write is made when the test calls it, and the
// flush sees a lost answer (a write Firestore makes after its caller gave
// up).
var counterHoldWriteHook func(s *Store, account string, write func() error) bool

// counterWriteHook, when set (tests only), runs between a counter write's
// read and its write: a process killed there leaves whatever the read took.
var counterWriteHook func(s *Store, account string)

func newCounterBook(s *Store) *counterBook {
	return &counterBook{s: s, pending: map[string]*counterDelta{}, inDoubt: map[string]*doubtfulWrite{}}
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

// lockFlush takes flushMu for a flush, unless ctx ends first: a flush in
// progress (the background round, retrying against an unreachable
// Firestore) must not hold a caller past its deadline, such as the final
// writes of a graceful stop.
func (b *counterBook) lockFlush(ctx context.Context) error {
	for !b.flushMu.TryLock() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (b *counterBook) flush(ctx context.Context) error {
	if err := b.lockFlush(ctx); err != nil {
		return err
	}
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
	for account := range b.inDoubt {
		if taken[account] == nil {
			taken[account] = &counterDelta{} // settle it, even with nothing new
		}
	}
	var firstErr error
	for account, d := range taken {
		if err := b.write(ctx, account, d, epoch, fenced); err != nil {
			if !errors.Is(err, errInDoubt) {
				// Nothing of this call landed (ErrFenced: a newer holder
				// writes these counters; ours wait for our next tenure).
				b.restore(account, d)
			}
			if errors.Is(err, store.ErrFenced) {
				continue
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// errInDoubt marks a write whose outcome is unknown: its delta is in
// inDoubt, not to be restored.
var errInDoubt = errors.New("counter write in doubt")

// counterData is the document write that adds d, tagged with token.
func counterData(account string, d *counterDelta, token string) map[string]any {
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
	return map[string]any{
		"accountId": account,
		"updatedAt": firestore.ServerTimestamp,
		"dedupe": map[string]any{
			"wrote":         firestore.Increment(d.wrote),
			"skipped":       firestore.Increment(d.skipped),
			"strongSkipped": firestore.Increment(d.strong),
		},
		"history":     h,
		"lastFlushId": token,
	}
}

// write persists one account's delta d, with whatever earlier writes in
// doubt still owe. It reads the document and writes only if it is
// unchanged since (its update time, or its absence); a fenced store also
// refuses a document written under a newer epoch (the delta then waits in
// memory, see flush). A write that lost a race reads again. Not a transaction: a
// transaction's read holds a lock until it ends, and one whose process died
// (kill -9) between its read and its commit left the document locked for
// the minute and more Firestore (and its emulator) takes to expire it, so
// the next lease holder could not write that account's counters and its
// flush, retrying, held up a graceful stop
// (TestCounterWriteOfAKilledHostLocksNothing). An error wrapping
// errInDoubt means this call's write may have landed: d is then in
// inDoubt. Any other error: nothing of d landed.
func (b *counterBook) write(ctx context.Context, account string, d *counterDelta, epoch int64, fenced bool) error {
	ref := b.ref(account)
	prior := b.inDoubt[account]
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		snap, err := ref.Get(ctx)
		if err != nil && !isNotFound(err) {
			return err
		}
		exists := err == nil
		var token string
		if exists {
			if err := olderThanDoc("counters "+account, epoch, getInt(snap.Data(), "leaseEpoch")); err != nil {
				return err
			}
			token, _ = snap.Data()["lastFlushId"].(string)
		}
		owed, tries := prior.settle(token)
		if counterWriteHook != nil {
			counterWriteHook(b.s, account)
		}
		err = b.attempt(ctx, account, sumDelta(owed, d), tries, func(data map[string]any) error {
			if fenced {
				data["leaseEpoch"] = epoch
			}
			if exists {
				_, err := ref.Update(ctx, leafUpdates(nil, data), firestore.LastUpdateTime(snap.UpdateTime))
				return err
			}
			_, err := ref.Create(ctx, data)
			return err
		})
		// Only a lost race is retried here; anything else (an outage, a
		// document another process's transaction holds) returns, and the
		// delta waits for the next flush.
		if err == nil || !refused(err) || attempt >= 10 {
			return err
		}
		if err := waitRetry(ctx, &backoff); err != nil {
			return err
		}
	}
}

// attempt makes one write of delta, and keeps the books: written or
// refused, the doubt is as before (a refused write landed nothing); an
// unknown outcome joins tries, the writes in doubt made on the same
// version of the document.
func (b *counterBook) attempt(ctx context.Context, account string, delta *counterDelta, tries []doubtfulTry, send func(map[string]any) error) error {
	if delta.zero() {
		delete(b.inDoubt, account)
		return nil
	}
	token := newFlushToken()
	do := func() error { return send(counterData(account, delta, token)) }
	var err error
	if counterHoldWriteHook != nil && counterHoldWriteHook(b.s, account, do) {
		err = errCounterAnswerLost
	} else {
		err = do()
		if err == nil && counterLostAnswerHook != nil && counterLostAnswerHook(b.s, account) {
			err = errCounterAnswerLost
		}
	}
	switch {
	case err == nil:
		delete(b.inDoubt, account)
		return nil
	case refused(err):
		return err
	}
	b.inDoubt[account] = &doubtfulWrite{owed: delta, tries: append(slices.Clip(tries), doubtfulTry{token: token, carried: delta})}
	return fmt.Errorf("%w: %w", errInDoubt, err)
}

// leafUpdates turns nested maps into one update per leaf field, as Set
// with MergeAll merges them: an Update of a whole map would replace it.
func leafUpdates(prefix firestore.FieldPath, data map[string]any) []firestore.Update {
	var up []firestore.Update
	for k, v := range data {
		path := append(append(firestore.FieldPath{}, prefix...), k)
		if m, ok := v.(map[string]any); ok {
			up = append(up, leafUpdates(path, m)...)
			continue
		}
		up = append(up, firestore.Update{FieldPath: path, Value: v})
	}
	return up
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

func newFlushToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sumDelta is a + b, a new delta (batch facts: b's, when it has them).
func sumDelta(a, b *counterDelta) *counterDelta {
	s := *b
	addDelta(&s, a)
	return &s
}

// subDelta is what of owed is left once part landed (batch facts: owed's).
func subDelta(owed, part *counterDelta) *counterDelta {
	s := *owed
	s.wrote -= part.wrote
	s.skipped -= part.skipped
	s.strong -= part.strong
	s.hWrote -= part.hWrote
	s.hSkipped -= part.hSkipped
	return &s
}

// zero: nothing to write (no count and no batch fact).
func (d *counterDelta) zero() bool {
	return d.wrote == 0 && d.skipped == 0 && d.strong == 0 && d.hWrote == 0 && d.hSkipped == 0 &&
		d.hLastRunAt.IsZero() && !d.hasBatch
}

// addDelta adds old's counts to d (batch facts: d's, when it has them).
func addDelta(d, old *counterDelta) {
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
}

// restore puts an unpersisted delta back, keeping any newer batch facts.
func (b *counterBook) restore(account string, old *counterDelta) {
	b.add(account, func(d *counterDelta) { addDelta(d, old) })
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
