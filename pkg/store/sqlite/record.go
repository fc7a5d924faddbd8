package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// historyChunk bounds one history transaction: big enough to amortise the
// fsync, small enough that a huge sync never holds much in memory or blocks
// live writes for long.
const historyChunk = 2000

// Validate reports what makes a message unrecordable.
func Validate(m *store.Message) error {
	switch {
	case m.AccountID == "":
		return errors.New("message has no account id")
	case m.ThreadID == "":
		return errors.New("message has no thread id")
	case m.DocID == "":
		return errors.New("message has no document id")
	case !strings.HasPrefix(m.ThreadID, m.AccountID+"__") || len(m.ThreadID) == len(m.AccountID)+2:
		return fmt.Errorf("thread id %q does not belong to account %q (want <accountId>__<jid>)", m.ThreadID, m.AccountID)
	case strings.Contains(m.DocID, "/") || strings.Contains(m.ThreadID, "/"):
		return fmt.Errorf("document id %q or thread id %q contains '/'", m.DocID, m.ThreadID)
	}
	return nil
}

type counterDelta struct {
	wrote, skipped, strong, hWrote, hSkipped int64
	hLastRunMs                               int64
	hLastBatch                               int
}

// recorder applies messages inside one transaction and writes the thread
// summaries and counters once at the end.
type recorder struct {
	s        *Store
	ts       txStmts
	nowMs    int64
	nowArg   any                       // nowMs boxed once, not three times per message
	newest   map[string]*store.Message // newest new document per thread
	counters map[string]*counterDelta
	tkeys    map[string]int64
}

func (s *Store) newRecorder(tx *sql.Tx) *recorder {
	st := s.stmts
	now := s.now().UnixMilli()
	return &recorder{s: s, ts: txStmts{tx: tx, st: st}, nowMs: now, nowArg: now,
		newest: map[string]*store.Message{}, counters: map[string]*counterDelta{}, tkeys: map[string]int64{}}
}

func (r *recorder) delta(acc string) *counterDelta {
	d := r.counters[acc]
	if d == nil {
		d = &counterDelta{}
		r.counters[acc] = d
	}
	return d
}

func affected(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// one records one message and counts its outcome.
func (r *recorder) one(m *store.Message) (store.Outcome, error) {
	o, err := r.decide(m)
	if err != nil {
		return 0, err
	}
	r.count(m, o)
	return o, nil
}

func (r *recorder) count(m *store.Message, o store.Outcome) {
	d := r.delta(m.AccountID)
	switch o {
	case store.Wrote:
		d.wrote++
		if cur := r.newest[m.ThreadID]; cur == nil || m.TsClient.After(cur.TsClient) {
			r.newest[m.ThreadID] = m
		}
	case store.StrongSkipped:
		d.strong++
	default:
		d.skipped++
	}
}

func (r *recorder) decide(m *store.Message) (store.Outcome, error) {
	st := r.s.stmts
	if m.WAMessageID != "" {
		seq, found, err := r.mappingSeq(m)
		if err != nil {
			return 0, err
		}
		if found {
			if seq, err = r.adoptRacedEcho(seq, m); err != nil {
				return 0, err
			}
			return r.merge(seq, m)
		}
		if r.s.opts.StrongDedupe && m.FingerprintHash != "" {
			err := r.ts.get(st.strongMatch).QueryRow(m.ThreadID, ms(m.TsClient), m.FingerprintHash, m.Direction, m.MessageType, m.DocID).Scan(&seq)
			switch {
			case err == nil:
				// The id points at the surviving document, so receipts
				// and edits of this id still find a message.
				return store.StrongSkipped, r.addAlias(m, seq)
			case !errors.Is(err, sql.ErrNoRows):
				return 0, fmt.Errorf("strong dedupe lookup: %w", err)
			}
		}
	}
	tkey, err := r.threadKey(m)
	if err != nil {
		return 0, err
	}
	var seq int64
	err = r.ts.get(st.insertMessage).QueryRow(r.messageArgs(tkey, m)...).Scan(&seq)
	switch {
	case err == nil:
		return store.Wrote, r.mapOwnDoc(m, seq)
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("insert message: %w", err)
	}
	// The document id exists already: an app send queued under its
	// requestId, now recorded with its WhatsApp id.
	return r.mergeExistingDoc(m)
}

func (r *recorder) mergeExistingDoc(m *store.Message) (store.Outcome, error) {
	var seq int64
	if err := r.ts.get(r.s.stmts.docSeq).QueryRow(m.DocID).Scan(&seq); err != nil {
		return 0, fmt.Errorf("find document %s: %w", m.DocID, err)
	}
	if err := r.mapOwnDoc(m, seq); err != nil {
		return 0, err
	}
	return r.merge(seq, m)
}

// adoptRacedEcho handles an app send (m, under its requestId) recorded
// with its WhatsApp id after the echo of the same send got a document of
// its own (history sync or another device got there first). The app shows
// the requestId document, so that one stays: the echo's document is marked
// a duplicate of it (never deleted) and the id is pointed at it. It returns
// the document m belongs to: the app's, or seq unchanged when there is no
// such race.
func (r *recorder) adoptRacedEcho(seq int64, m *store.Message) (int64, error) {
	derived := dedupe.MessageDocID(m.AccountID, m.WAMessageID)
	if m.DocID == derived {
		return seq, nil
	}
	var foundDoc string
	var appSeq int64
	if err := r.ts.tx.QueryRow(`SELECT doc_id FROM messages WHERE seq = ?`, seq).Scan(&foundDoc); err != nil {
		return 0, fmt.Errorf("echo race check: %w", err)
	}
	if foundDoc != derived {
		return seq, nil // the id already leads to another document on purpose
	}
	if err := r.ts.get(r.s.stmts.docSeq).QueryRow(m.DocID).Scan(&appSeq); errors.Is(err, sql.ErrNoRows) {
		return seq, nil // no app document: the echo's is the only one
	} else if err != nil {
		return 0, fmt.Errorf("echo race check: %w", err)
	}
	if _, err := r.ts.tx.Exec(`UPDATE messages SET is_duplicate = 1, duplicate_of = ?, updated_at_ms = ? WHERE seq = ? AND is_duplicate = 0`,
		m.DocID, r.nowMs, seq); err != nil {
		return 0, fmt.Errorf("mark the echo's document a duplicate: %w", err)
	}
	// An alias row from an earlier version may point at the echo's.
	if _, err := r.ts.tx.Exec(`INSERT INTO message_ids (account_id, wa_message_id, seq) VALUES (?, ?, ?)
ON CONFLICT (account_id, wa_message_id) DO UPDATE SET seq = excluded.seq`, m.AccountID, m.WAMessageID, appSeq); err != nil {
		return 0, fmt.Errorf("message_ids: %w", err)
	}
	return appSeq, nil
}

// mappingSeq finds the document a WhatsApp id already has: its alias, or
// its derived document.
func (r *recorder) mappingSeq(m *store.Message) (int64, bool, error) {
	var seq sql.NullInt64
	err := r.ts.get(r.s.stmts.getMapping).QueryRow(m.AccountID, m.WAMessageID, dedupe.MessageDocID(m.AccountID, m.WAMessageID)).Scan(&seq)
	if err != nil {
		return 0, false, fmt.Errorf("message_ids lookup: %w", err)
	}
	return seq.Int64, seq.Valid, nil
}

// mapOwnDoc makes m's WhatsApp id find seq, the document of m's own
// document id. An id finds its derived document without a row, so only a
// document with another id (an app send, keyed by its requestId) needs an
// alias.
func (r *recorder) mapOwnDoc(m *store.Message, seq int64) error {
	if m.WAMessageID == "" || dedupe.IsMessageDocID(m.DocID, m.AccountID, m.WAMessageID) {
		return nil
	}
	return r.addAlias(m, seq)
}

// addAlias points m's WhatsApp id at document seq.
func (r *recorder) addAlias(m *store.Message, seq int64) error {
	if _, err := r.ts.get(r.s.stmts.insertMapping).Exec(m.AccountID, m.WAMessageID, seq); err != nil {
		return fmt.Errorf("message_ids: %w", err)
	}
	return nil
}

// threadKey returns the key of the message's thread, creating the row on
// its first message. Keys are cached for the transaction only, so a rolled
// back creation is never remembered.
func (r *recorder) threadKey(m *store.Message) (int64, error) {
	if k, ok := r.tkeys[m.ThreadID]; ok {
		return k, nil
	}
	var k int64
	if err := r.ts.get(r.s.stmts.ensureThread).QueryRow(m.ThreadID, m.AccountID).Scan(&k); err != nil {
		return 0, fmt.Errorf("thread %s: %w", m.ThreadID, err)
	}
	r.tkeys[m.ThreadID] = k
	return k, nil
}

func (r *recorder) messageArgs(tkey int64, m *store.Message) []any {
	return []any{tkey, m.ThreadID, m.DocID, m.AccountID, m.ClientJID, m.ClientJIDRaw, m.RawJID, m.ResolvedJID, m.NormalizedPhone,
		m.PeerType, b2i(m.IsGroup), m.SenderJID, m.SenderName, m.Direction, m.Body, m.WAMessageID, m.WAMessageIDRaw,
		m.ProviderMessageID, m.ClientMessageID, m.Status, m.MessageType, m.MediaType, ms(m.TsClient), m.Source,
		m.StableKeyHash, m.FingerprintHash, r.nowArg, r.nowArg, r.nowArg}
}

func (r *recorder) merge(seq int64, m *store.Message) (store.Outcome, error) {
	changed, err := affected(r.ts.get(r.s.stmts.mergeMessage).Exec(
		m.WAMessageID, m.WAMessageIDRaw, m.ProviderMessageID, m.ClientMessageID, m.Status, m.StableKeyHash, r.nowMs, seq))
	if err != nil {
		return 0, fmt.Errorf("merge repeat of %s: %w", m.DocID, err)
	}
	if changed {
		return store.Updated, nil
	}
	return store.Skipped, nil
}

// finish writes the thread summaries and counters gathered by one().
func (r *recorder) finish() error {
	st := r.s.stmts
	for _, m := range r.newest {
		if _, err := r.ts.get(st.upsertThread).Exec(
			m.ThreadID, m.AccountID, m.ClientJID, m.ClientJIDRaw, m.RawJID, m.ResolvedJID, m.PeerType, b2i(m.IsGroup),
			ms(m.TsClient), m.Body, preview(m.Body), m.SenderName, m.Direction,
			m.DisplayName, m.GroupSubject, m.NormalizedPhone, r.nowMs); err != nil {
			return fmt.Errorf("thread summary: %w", err)
		}
	}
	for acc, d := range r.counters {
		if _, err := r.ts.get(st.addCounters).Exec(acc, d.wrote, d.skipped, d.strong, d.hWrote, d.hSkipped, d.hLastRunMs, d.hLastBatch); err != nil {
			return fmt.Errorf("counters: %w", err)
		}
	}
	return nil
}

// preview is the first 100 characters.
func preview(s string) string {
	n := 0
	for i := range s {
		if n == 100 {
			return s[:i]
		}
		n++
	}
	return s
}

// RecordMessage stores one message; see store.Store.
func (s *Store) RecordMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	if err := Validate(&m); err != nil {
		return 0, fmt.Errorf("sqlite store: %w", err)
	}
	var out store.Outcome
	err := s.write(ctx, func(tx *sql.Tx) error {
		r := s.newRecorder(tx)
		o, err := r.one(&m)
		if err != nil {
			return err
		}
		out = o
		return r.finish()
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: record message %s: %w", m.DocID, err)
	}
	return out, nil
}

// RecordHistory stores a history-sync batch in transactions of at most
// historyChunk messages. Invalid messages are counted in Errors and left out.
func (s *Store) RecordHistory(ctx context.Context, accountID string, msgs []store.Message) (store.HistoryResult, error) {
	res := store.HistoryResult{Total: len(msgs)}
	runMs := s.now().UnixMilli()
	if len(msgs) == 0 {
		err := s.write(ctx, func(tx *sql.Tx) error {
			r := s.newRecorder(tx)
			d := r.delta(accountID)
			d.hLastRunMs, d.hLastBatch = runMs, 0
			return r.finish()
		})
		return res, err
	}
	var fixed []store.Message
	outs := make([]store.Outcome, min(len(msgs), historyChunk))
	for start := 0; start < len(msgs); start += historyChunk {
		chunk := msgs[start:min(start+historyChunk, len(msgs))]
		// The caller's messages are recorded in place (read only); a
		// copy is made only for a chunk that needs the account id filled
		// in or invalid messages left out — a sync's messages are large
		// and copying them all was a measurable part of the garbage.
		batch := chunk
		if !recordable(chunk, accountID) {
			if fixed == nil {
				fixed = make([]store.Message, 0, len(chunk))
			}
			batch = fixed[:0]
			for _, m := range chunk {
				if m.AccountID == "" {
					m.AccountID = accountID
				}
				if m.AccountID != accountID || Validate(&m) != nil {
					res.Errors++
					continue
				}
				batch = append(batch, m)
			}
		}
		var saved, skipped int
		err := s.write(ctx, func(tx *sql.Tx) error {
			saved, skipped = 0, 0
			r := s.newRecorder(tx)
			if err := r.many(batch, outs); err != nil {
				return err
			}
			for _, o := range outs[:len(batch)] {
				if o == store.Wrote {
					saved++
				} else {
					skipped++
				}
			}
			d := r.delta(accountID)
			d.hWrote, d.hSkipped = int64(saved), int64(skipped)
			d.hLastRunMs, d.hLastBatch = runMs, len(msgs)
			return r.finish()
		})
		if err != nil {
			return res, fmt.Errorf("sqlite store: record history (%d of %d messages committed): %w", res.Saved+res.Skipped, len(msgs), err)
		}
		res.Saved += saved
		res.Skipped += skipped
	}
	return res, nil
}

// recordable reports whether every message of chunk can be recorded as it
// is: the account's, and valid.
func recordable(chunk []store.Message, accountID string) bool {
	for i := range chunk {
		if chunk[i].AccountID != accountID || Validate(&chunk[i]) != nil {
			return false
		}
	}
	return true
}
