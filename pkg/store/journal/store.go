package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// Options tunes the journal; zero values are sensible defaults.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// BatchSize is the number of entries the background shipper moves per
	// round (default 500).
	BatchSize int
	// MinBackoff and MaxBackoff bound the shipper's exponential backoff
	// after a failed round (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// CallTimeout bounds one backend call (default 15s): a partitioned
	// Firestore answers nothing, and the shipper must retry rather than
	// hang.
	CallTimeout time.Duration
	// Retention is how long shipped entries are kept, so that a redelivery
	// is recognised locally while Firestore is down (default 24h).
	Retention time.Duration
	// NoInline ships everything in the background; RecordMessage then
	// returns after the local commit with a provisional outcome.
	NoInline bool
	// JournalFirst commits every live message to the journal before
	// shipping it inline (one or two local fsyncs per message), as wactl
	// did before the direct write; off by default (see RecordMessage).
	JournalFirst bool
	// MaxRefusals is how many times Firestore may refuse an entry
	// (InvalidArgument, OutOfRange) before it is dead-lettered (default
	// 3). RefusalBackoff is the wait before its second try, doubled for
	// each further one (default 5s). Other entries ship meanwhile.
	MaxRefusals    int
	RefusalBackoff time.Duration
}

// Store is a store.Store whose message writes go through the journal.
type Store struct {
	backend store.Store
	id      string // this journal file's identity, part of write tokens
	db      *sql.DB
	lock    *os.File
	o       Options
	log     *slog.Logger

	mu       sync.Mutex // journal writes and inflight marking happen together
	fl       inflight
	degraded atomic.Bool

	kick       chan struct{}
	progressMu sync.Mutex
	progress   chan struct{}
	errMu      sync.Mutex
	shipErr    string

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (or creates) the journal at path (directory 0700, file 0600)
// and starts shipping the entries a previous run left pending to backend.
// The returned store owns backend: Close closes it. On error the caller
// still owns backend. A journal already open in another process is refused.
func Open(path string, backend store.Store, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 15 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	if o.MaxRefusals <= 0 {
		o.MaxRefusals = 3
	}
	if o.RefusalBackoff <= 0 {
		o.RefusalBackoff = 5 * time.Second
	}
	db, lock, err := openDB(path)
	if err != nil {
		return nil, err
	}
	id, err := journalID(db)
	if err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &Store{
		backend: backend, id: id, db: db, lock: lock, o: o, log: o.Logger,
		kick: make(chan struct{}, 1), progress: make(chan struct{}),
		cancel: cancel, done: make(chan struct{}),
	}
	var pending int
	_ = db.QueryRow(`SELECT COUNT(*) FROM entries WHERE state = 0`).Scan(&pending)
	if pending > 0 {
		// Ship the backlog of the previous run before taking inline
		// shortcuts, so that updates keep their order behind it.
		j.degraded.Store(true)
		j.log.Info("journal: shipping entries left by the previous run", "pending", pending, "path", path)
	}
	go j.run(ctx)
	return j, nil
}

func (j *Store) nowMs() int64 { return j.o.Now().UnixMilli() }

func (j *Store) kickShipper() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

func (j *Store) notifyProgress() {
	j.progressMu.Lock()
	close(j.progress)
	j.progress = make(chan struct{})
	j.progressMu.Unlock()
}

func (j *Store) progressCh() <-chan struct{} {
	j.progressMu.Lock()
	defer j.progressMu.Unlock()
	return j.progress
}

func (j *Store) setShipErr(err error) {
	j.errMu.Lock()
	if err == nil {
		j.shipErr = ""
	} else {
		j.shipErr = err.Error()
	}
	j.errMu.Unlock()
}

// messageKey identifies a message locally the way message_ids does in
// Firestore: by WhatsApp id, or by document id for a send not yet sent.
func messageKey(m *store.Message) string {
	if m.WAMessageID != "" {
		return m.AccountID + "|" + m.WAMessageID
	}
	return m.AccountID + "|#" + m.DocID
}

func validate(m *store.Message) error {
	switch {
	case m.AccountID == "":
		return errors.New("store: message without accountId")
	case m.ThreadID == "" || m.DocID == "":
		return errors.New("store: message without threadId or document id")
	case strings.ContainsRune(m.ThreadID, '/') || strings.ContainsRune(m.DocID, '/'):
		return fmt.Errorf("store: threadId %q / docId %q contain '/'", m.ThreadID, m.DocID)
	case !strings.HasPrefix(m.ThreadID, m.AccountID+"__"):
		return fmt.Errorf("store: threadId %q does not belong to account %s", m.ThreadID, m.AccountID)
	}
	return nil
}

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// RecordMessage writes m to Firestore directly while Firestore answers,
// and to the journal first otherwise. A nil error means m is durable (in
// Firestore, or committed to the journal); the outcome is the backend's
// when Firestore took it, else provisional (Skipped when the journal
// already holds the same message, Wrote otherwise).
//
// The direct write is the common case and costs one Firestore commit and
// no local fsync: the journal is there for when Firestore does not answer,
// and a message whose direct write fails is journaled then, under the
// same write token, so that a commit whose answer was lost is recognised
// as this write when the entry ships (see direct.go).
func (j *Store) RecordMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	if err := validate(&m); err != nil {
		return 0, err
	}
	if !j.o.NoInline && !j.o.JournalFirst && !j.degraded.Load() {
		return j.recordDirect(ctx, m)
	}
	return j.journalMessage(ctx, m)
}

// journalMessage commits m to the journal, then ships it inline unless
// Firestore is known to be unreachable.
func (j *Store) journalMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	payload, err := json.Marshal(&m)
	if err != nil {
		return 0, err
	}
	key := messageKey(&m)
	j.mu.Lock()
	seen, err := known(ctx, j.db, key)
	var seq int64
	if err == nil {
		seq, err = insert(ctx, j.db, kindLive, m.AccountID, key, payload, j.nowMs())
	}
	inline := err == nil && !j.o.NoInline && !j.degraded.Load()
	if inline {
		j.fl.add(seq, seq)
	}
	j.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("journal: message not recorded: %w", err)
	}
	provisional := store.Wrote
	if seen {
		provisional = store.Skipped
	}
	if !inline {
		j.kickShipper()
		return provisional, nil
	}
	var out store.Outcome
	shipped, err := j.shipInline(ctx, seq, seq, 1, func(ctx context.Context) error {
		var err error
		out, err = j.recordOne(ctx, seq, m)
		return err
	})
	if err != nil {
		return 0, err
	}
	if !shipped {
		return provisional, nil
	}
	return out, nil
}

// shipInline runs call for the entries lo..hi that this caller journaled.
// It reports whether they were shipped; an error is returned only when the
// backend refused them for good (they are then set aside as dead).
func (j *Store) shipInline(ctx context.Context, lo, hi int64, n int, call func(context.Context) error) (bool, error) {
	defer j.notifyProgress()
	timeout := j.o.CallTimeout * time.Duration(1+n/1000)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := call(cctx)
	cancel()
	// Marked (below) before the shipper may take the entries again.
	defer j.fl.remove(lo)
	// The entries are durable; their bookkeeping must not depend on a
	// caller that gave up.
	bctx := context.WithoutCancel(ctx)
	switch classify(err) {
	case verdictShipped:
		if merr := j.markRange(bctx, lo, hi, stateShipped, errText(err)); merr != nil {
			j.log.Warn("journal: shipped entries not marked; they will be shipped again", "err", merr)
		}
		if err == nil {
			j.setShipErr(nil)
		}
		return true, err
	case verdictMalformed:
		if derr := j.deadLetterRange(bctx, lo, hi, codeName(err), err.Error()); derr != nil {
			j.log.Error("journal: malformed entries not dead-lettered; the shipper will", "err", derr)
		}
		return false, err
	case verdictRefused:
		// Something in this shipment is refused: the shipper isolates it
		// and ships the rest. Not degraded: nothing is wrong with
		// Firestore, and other writes keep shipping inline.
		j.fl.remove(lo)
		j.kickShipper()
		return false, nil
	default:
		j.degraded.Store(true)
		j.setShipErr(err)
		j.log.Warn("journal: Firestore write failed; continuing from the journal", "err", err)
		j.fl.remove(lo)
		j.kickShipper()
		return false, nil
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (j *Store) markRange(ctx context.Context, lo, hi int64, state int, note string) error {
	var n any
	if note != "" {
		n = note
	}
	_, err := j.db.ExecContext(ctx, `UPDATE entries SET state = ?, payload = CASE WHEN ? = 1 THEN NULL ELSE payload END,
		done_ms = ?, last_error = ? WHERE seq BETWEEN ? AND ? AND state = 0`, state, state, j.nowMs(), n, lo, hi)
	return err
}

// historyChunk bounds one journal transaction and one inline shipment of a
// history sync: memory and WAL growth stay bounded for any sync size.
const historyChunk = 1000

// RecordHistory journals the batch in chunks and ships each chunk inline
// while Firestore answers. Counts are the backend's for shipped chunks and
// provisional (known to the journal or not) for the others.
func (j *Store) RecordHistory(ctx context.Context, accountID string, msgs []store.Message) (store.HistoryResult, error) {
	res := store.HistoryResult{Total: len(msgs)}
	chunk := make([]store.Message, 0, min(len(msgs), historyChunk))
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		r, err := j.recordHistoryChunk(ctx, accountID, chunk)
		res.Saved += r.Saved
		res.Skipped += r.Skipped
		res.Errors += r.Errors
		chunk = chunk[:0]
		return err
	}
	for i := range msgs {
		m := msgs[i]
		if m.AccountID == "" {
			m.AccountID = accountID
		}
		if validate(&m) != nil || m.AccountID != accountID {
			res.Errors++
			continue
		}
		chunk = append(chunk, m)
		if len(chunk) == historyChunk {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

func (j *Store) recordHistoryChunk(ctx context.Context, accountID string, msgs []store.Message) (store.HistoryResult, error) {
	var local store.HistoryResult
	j.mu.Lock()
	lo, hi, err := j.insertHistory(ctx, accountID, msgs, &local)
	inline := err == nil && !j.o.NoInline && !j.degraded.Load()
	if inline {
		j.fl.add(lo, hi)
	}
	j.mu.Unlock()
	if err != nil {
		return store.HistoryResult{}, fmt.Errorf("journal: history not recorded: %w", err)
	}
	if !inline {
		j.kickShipper()
		return local, nil
	}
	var r store.HistoryResult
	shipped, err := j.shipInline(ctx, lo, hi, len(msgs), func(ctx context.Context) error {
		var err error
		tokens := make([]string, len(msgs))
		for i := range tokens {
			tokens[i] = j.token(lo + int64(i))
		}
		r, err = j.recordHistory(ctx, accountID, msgs, tokens)
		return err
	})
	if err != nil || !shipped {
		return local, err
	}
	r.Total = 0
	return r, nil
}

func (j *Store) insertHistory(ctx context.Context, accountID string, msgs []store.Message, local *store.HistoryResult) (lo, hi int64, err error) {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	now := j.nowMs()
	for i := range msgs {
		payload, err := json.Marshal(&msgs[i])
		if err != nil {
			return 0, 0, err
		}
		key := messageKey(&msgs[i])
		seen, err := known(ctx, tx, key)
		if err != nil {
			return 0, 0, err
		}
		if seen {
			local.Skipped++
		} else {
			local.Saved++
		}
		seq, err := insert(ctx, tx, kindHistory, accountID, key, payload, now)
		if err != nil {
			return 0, 0, err
		}
		if lo == 0 {
			lo = seq
		}
		hi = seq
	}
	return lo, hi, tx.Commit()
}

// journalUpdate records a receipt, edit or revoke and ships it inline only
// when nothing older is still waiting: it must land after its target.
func (j *Store) journalUpdate(ctx context.Context, kind, account string, v any, call func(context.Context) error) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	seq, err := insert(ctx, j.db, kind, account, "", payload, j.nowMs())
	older := false
	if err == nil {
		err = j.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM entries WHERE state = 0 AND seq < ?)`, seq).Scan(&older)
	}
	inline := err == nil && !older && !j.o.NoInline && !j.degraded.Load()
	if inline {
		j.fl.add(seq, seq)
	}
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("journal: %s not recorded: %w", kind, err)
	}
	if !inline {
		j.kickShipper()
		return nil
	}
	_, err = j.shipInline(ctx, seq, seq, 1, call)
	return err
}

// UpdateReceipt journals the receipt; see store.Store.
func (j *Store) UpdateReceipt(ctx context.Context, r store.Receipt) error {
	return j.journalUpdate(ctx, kindReceipt, r.AccountID, r, func(ctx context.Context) error {
		return j.backend.UpdateReceipt(ctx, r)
	})
}

// ApplyEdit journals the edit. ErrNotFound is returned only when the edit
// was shipped inline and the target is unknown.
func (j *Store) ApplyEdit(ctx context.Context, e store.Edit) error {
	return j.journalUpdate(ctx, kindEdit, e.AccountID, e, func(ctx context.Context) error {
		return j.backend.ApplyEdit(ctx, e)
	})
}

// ApplyRevoke journals the revoke, like ApplyEdit.
func (j *Store) ApplyRevoke(ctx context.Context, r store.Revoke) error {
	return j.journalUpdate(ctx, kindRevoke, r.AccountID, r, func(ctx context.Context) error {
		return j.backend.ApplyRevoke(ctx, r)
	})
}

// FindMessage answers from the journal while the message is not yet
// shipped (Firestore has no copy of it then), else from Firestore.
func (j *Store) FindMessage(ctx context.Context, accountID, waMessageID string) (store.Message, error) {
	if m, ok := j.unshipped(ctx, accountID, waMessageID); ok {
		return m, nil
	}
	return j.backend.FindMessage(ctx, accountID, waMessageID)
}

// CheckSend is FindMessage and GetOutbox as one backend round trip when
// the message is not in the journal.
func (j *Store) CheckSend(ctx context.Context, accountID, waMessageID, requestID string) store.SendCheck {
	if m, ok := j.unshipped(ctx, accountID, waMessageID); ok {
		c := store.SendCheck{Message: m}
		c.Outbox, c.OutboxErr = j.backend.GetOutbox(ctx, requestID)
		return c
	}
	return store.CheckSend(ctx, j.backend, accountID, waMessageID, requestID)
}

// unshipped is the journal's not-yet-shipped copy of a message, if any.
func (j *Store) unshipped(ctx context.Context, accountID, waMessageID string) (store.Message, bool) {
	var payload []byte
	err := j.db.QueryRowContext(ctx, `SELECT payload FROM entries WHERE mkey = ? AND state = 0 AND payload IS NOT NULL ORDER BY seq LIMIT 1`,
		accountID+"|"+waMessageID).Scan(&payload)
	if err != nil {
		return store.Message{}, false
	}
	var m store.Message
	if json.Unmarshal(payload, &m) != nil {
		return store.Message{}, false
	}
	return m, true
}

// Health adds the journal backlog to the backend's health.
func (j *Store) Health(ctx context.Context) store.Health {
	// The local figures first: the backend probe may use up ctx when
	// Firestore is unreachable, which is when they matter most.
	var n int
	var oldest sql.NullInt64
	qerr := j.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_ms) FROM entries WHERE state = 0`).Scan(&n, &oldest)
	h := j.backend.Health(ctx)
	if qerr != nil {
		h.LastError = "journal: " + qerr.Error()
		return h
	}
	h.JournalBacklog = n
	if dead, err := countDeadLetters(ctx, j.db); err == nil {
		h.JournalDeadLetters = dead
	}
	if oldest.Valid {
		h.JournalOldest = j.o.Now().Sub(time.UnixMilli(oldest.Int64))
	}
	j.errMu.Lock()
	if n > 0 && j.shipErr != "" {
		h.LastError = "journal shipping: " + j.shipErr
	}
	j.errMu.Unlock()
	return h
}

// Dead returns how many entries are dead letters: refused for good, kept
// in the journal for an operator (DeadLetters, RetryDeadLetters).
func (j *Store) Dead(ctx context.Context) (int, error) { return countDeadLetters(ctx, j.db) }

// Flush waits until every entry journaled before the call has been shipped
// (or set aside as dead), then flushes the backend.
func (j *Store) Flush(ctx context.Context) error {
	var target sql.NullInt64
	if err := j.db.QueryRowContext(ctx, `SELECT MAX(seq) FROM entries`).Scan(&target); err != nil {
		return err
	}
	for target.Valid {
		wait := j.progressCh()
		var pending bool
		if err := j.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM entries WHERE state = 0 AND seq <= ?)`, target.Int64).Scan(&pending); err != nil {
			return err
		}
		if !pending {
			break
		}
		j.kickShipper()
		select {
		case <-ctx.Done():
			return fmt.Errorf("journal: flush: backlog not shipped yet: %w", ctx.Err())
		case <-wait:
		case <-time.After(time.Second):
		}
	}
	// The backend's flush may outlast ctx: the Firestore store first waits
	// for its background counter round, which runs under a timeout of its
	// own. A graceful stop's final flush must end by its deadline, or the
	// lease release waits (TestFlushEndsByItsDeadline): the backend's flush
	// goes on alone, and what it does not write stays in memory for its
	// next flush (Close).
	done := make(chan error, 1)
	go func() { done <- j.backend.Flush(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("journal: flush: the store's counter deltas not written yet: %w", ctx.Err())
	}
}

// Close stops the shipper (pending entries wait for the next Open), then
// closes the journal and the backend.
func (j *Store) Close() error {
	j.closeOnce.Do(func() {
		j.cancel()
		<-j.done
		err := j.db.Close()
		j.lock.Close()
		if berr := j.backend.Close(); err == nil {
			err = berr
		}
		j.closeErr = err
	})
	return j.closeErr
}

// Everything else reads or writes Firestore directly: accounts and the
// outbox need its current state (claims, fencing), and reads must be fresh.

func (j *Store) PutAccount(ctx context.Context, a store.Account) error {
	return j.backend.PutAccount(ctx, a)
}

func (j *Store) GetAccount(ctx context.Context, id string) (store.Account, error) {
	return j.backend.GetAccount(ctx, id)
}

func (j *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	return j.backend.ListAccounts(ctx)
}

func (j *Store) GetThread(ctx context.Context, threadID string) (store.Thread, error) {
	return j.backend.GetThread(ctx, threadID)
}

func (j *Store) ListThreads(ctx context.Context, accountID string, p store.Page) ([]store.Thread, error) {
	return j.backend.ListThreads(ctx, accountID, p)
}

func (j *Store) ListMessages(ctx context.Context, threadID string, p store.Page) ([]store.Message, error) {
	return j.backend.ListMessages(ctx, threadID, p)
}

func (j *Store) Inbox(ctx context.Context, accountID string, p store.Page) ([]store.Message, error) {
	return j.backend.Inbox(ctx, accountID, p)
}

func (j *Store) EnqueueOutbox(ctx context.Context, it store.OutboxItem) (bool, error) {
	return j.backend.EnqueueOutbox(ctx, it)
}

func (j *Store) ClaimOutbox(ctx context.Context, claimer string, epoch int64, lease time.Duration, limit int) ([]store.OutboxItem, error) {
	return j.backend.ClaimOutbox(ctx, claimer, epoch, lease, limit)
}

func (j *Store) CompleteOutbox(ctx context.Context, requestID, claimer, providerMessageID string) error {
	return j.backend.CompleteOutbox(ctx, requestID, claimer, providerMessageID)
}

func (j *Store) FailOutbox(ctx context.Context, requestID, claimer, errText string, retryAt time.Time) error {
	return j.backend.FailOutbox(ctx, requestID, claimer, errText, retryAt)
}

func (j *Store) GetOutbox(ctx context.Context, requestID string) (store.OutboxItem, error) {
	return j.backend.GetOutbox(ctx, requestID)
}

func (j *Store) Counters(ctx context.Context, accountID string) (store.Counters, error) {
	return j.backend.Counters(ctx, accountID)
}
