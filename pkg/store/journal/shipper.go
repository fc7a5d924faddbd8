package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// tokenRecorder is implemented by backends that commit many messages at
// once and take write tokens (the Firestore store): an entry shipped again
// with its token after a lost answer reports what the first attempt did.
// Other backends get one call per message.
type tokenRecorder interface {
	RecordMessagesTokens(ctx context.Context, msgs []store.Message, tokens []string) ([]store.Outcome, error)
	RecordHistoryTokens(ctx context.Context, accountID string, msgs []store.Message, tokens []string) (store.HistoryResult, error)
}

const pruneEvery = 10 * time.Minute

func (j *Store) run(ctx context.Context) {
	defer close(j.done)
	backoff := j.o.MinBackoff
	lastPrune := time.Time{}
	for {
		n, err := j.shipBatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			j.notifyProgress()
		}
		if err != nil {
			j.degraded.Store(true)
			j.setShipErr(err)
			j.log.Warn("journal: shipping failed; retrying", "in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, j.o.MaxBackoff)
			continue
		}
		backoff = j.o.MinBackoff
		if n > 0 {
			j.setShipErr(nil)
			continue
		}
		// Inline shipping resumes only once the backlog is gone (entries
		// being shipped inline right now, and refused entries waiting for
		// their next try, aside): inline writes racing a backlog for the
		// same threads make both retry.
		var pending bool
		var nextTry sql.NullInt64
		if err := j.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM entries WHERE state = 0 AND next_ms <= ?)`, j.nowMs()).Scan(&pending); err == nil && !pending {
			j.degraded.Store(false)
		}
		_ = j.db.QueryRowContext(ctx, `SELECT MIN(next_ms) FROM entries WHERE state = 0 AND next_ms > 0`).Scan(&nextTry)
		if time.Since(lastPrune) > pruneEvery {
			j.prune(ctx)
			lastPrune = time.Now()
		}
		idle := 5 * time.Second
		if nextTry.Valid {
			idle = min(idle, max(10*time.Millisecond, time.UnixMilli(nextTry.Int64).Sub(j.o.Now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-j.kick:
		case <-time.After(idle):
		}
	}
}

// loadBatch returns the oldest pending entries that are due (a refused
// entry waits for its next try) and not being shipped inline. An update
// (receipt, edit, revoke) newer than an inline shipment in progress ends
// the batch: its target may be in that shipment. An update behind a
// refused entry of its account waits until that entry is shipped or
// dead-lettered, for the same reason; other accounts are not held back.
func (j *Store) loadBatch(ctx context.Context) ([]entry, error) {
	// Holding mu makes "journaled and marked inflight" atomic with respect
	// to this read: an entry is never picked up by both paths.
	j.mu.Lock()
	defer j.mu.Unlock()
	ranges, lowest := j.fl.snapshot()
	q := `SELECT seq, kind, account, payload, attempts FROM entries e WHERE state = 0 AND next_ms <= ?
		AND (kind IN ('live', 'history') OR NOT EXISTS (SELECT 1 FROM entries r
			WHERE r.state = 0 AND r.next_ms > 0 AND r.account = e.account AND r.seq < e.seq))`
	args := []any{j.nowMs()}
	for lo, hi := range ranges {
		q += ` AND seq NOT BETWEEN ? AND ?`
		args = append(args, lo, hi)
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, j.o.BatchSize)
	rows, err := j.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.seq, &e.kind, &e.account, &e.payload, &e.attempts); err != nil {
			return nil, err
		}
		if !isMessageKind(e.kind) && lowest != 0 && e.seq > lowest {
			break
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func isMessageKind(k string) bool { return k == kindLive || k == kindHistory }

// shipBatch ships one batch in journal order and returns how many entries
// it settled (shipped, dead-lettered, or refused and set to wait). Entries
// are marked as each call succeeds, so a failure midway keeps the progress
// made. Only a failure that concerns every entry alike (an outage) stops
// the batch; an entry Firestore refuses is isolated and the rest ships.
func (j *Store) shipBatch(ctx context.Context) (int, error) {
	batch, err := j.loadBatch(ctx)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	// Accounts with an entry refused in this round: their later updates
	// wait (they may target it).
	held := map[string]bool{}
	done := 0
	for i := 0; i < len(batch); {
		k := i + 1
		if isMessageKind(batch[i].kind) {
			for k < len(batch) && isMessageKind(batch[k].kind) {
				k++
			}
			n, err := j.shipMessages(ctx, batch[i:k], held)
			done += n
			if err != nil {
				return done, err
			}
		} else if !held[batch[i].account] {
			n, err := j.shipUpdate(ctx, batch[i], held)
			done += n
			if err != nil {
				return done, err
			}
		}
		i = k
	}
	return done, nil
}

func (j *Store) call(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, j.o.CallTimeout)
	defer cancel()
	return f(cctx)
}

// shipMessages ships a run of message entries: live ones in one backend
// call, history ones per account.
func (j *Store) shipMessages(ctx context.Context, run []entry, held map[string]bool) (int, error) {
	var live []entry
	var liveMsgs []store.Message
	hist := map[string][]entry{}
	histMsgs := map[string][]store.Message{}
	var accounts []string
	var bad []int64
	for _, e := range run {
		var m store.Message
		if err := json.Unmarshal(e.payload, &m); err != nil {
			bad = append(bad, e.seq)
			continue
		}
		if e.kind == kindLive {
			live, liveMsgs = append(live, e), append(liveMsgs, m)
		} else {
			if _, ok := hist[e.account]; !ok {
				accounts = append(accounts, e.account)
			}
			hist[e.account] = append(hist[e.account], e)
			histMsgs[e.account] = append(histMsgs[e.account], m)
		}
	}
	if err := j.deadLetter(ctx, bad, "malformed", "journal entry does not decode"); err != nil {
		return 0, err
	}
	done := len(bad)
	if len(live) > 0 {
		n, err := j.shipGroup(ctx, live, held, func(ctx context.Context, idx []int) error {
			msgs, tokens := make([]store.Message, len(idx)), make([]string, len(idx))
			for k, i := range idx {
				msgs[k], tokens[k] = liveMsgs[i], j.liveToken(live[i].seq, live[i].payload)
			}
			return j.recordLive(ctx, msgs, tokens)
		})
		done += n
		if err != nil {
			return done, err
		}
	}
	for _, account := range accounts {
		es, all := hist[account], histMsgs[account]
		n, err := j.shipGroup(ctx, es, held, func(ctx context.Context, idx []int) error {
			msgs, seqs := make([]store.Message, len(idx)), make([]int64, len(idx))
			for k, i := range idx {
				msgs[k], seqs[k] = all[i], es[i].seq
			}
			// Malformed history messages are counted by the backend, not
			// refused; the journal validated them before accepting them.
			_, err := j.recordHistory(ctx, account, msgs, j.tokens(0, seqs))
			return err
		})
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// shipGroup ships es with ship (which takes indexes into es). When the
// backend refuses the call, the group is split in halves until the
// refused entries are alone: they are set to wait (or dead-lettered) and
// every other entry ships. Retried parts keep their write tokens, so a
// part that landed before its call failed is reported, not written again.
// A failure that is not a refusal stops the group with what was shipped
// marked.
func (j *Store) shipGroup(ctx context.Context, es []entry, held map[string]bool, ship func(context.Context, []int) error) (int, error) {
	done := 0
	var try func(idx []int) error
	try = func(idx []int) error {
		err := j.call(ctx, func(ctx context.Context) error { return ship(ctx, idx) })
		switch classify(err) {
		case verdictShipped:
			seqs := make([]int64, len(idx))
			for k, i := range idx {
				seqs[k] = es[i].seq
			}
			if err := j.mark(ctx, seqs, stateShipped, ""); err != nil {
				return err
			}
			done += len(idx)
			return nil
		case verdictRetry:
			return err
		}
		if len(idx) > 1 {
			h := len(idx) / 2
			if err := try(idx[:h]); err != nil {
				return err
			}
			return try(idx[h:])
		}
		waiting, rerr := j.refuse(ctx, es[idx[0]], err)
		if rerr != nil {
			return rerr
		}
		if waiting {
			held[es[idx[0]].account] = true
		}
		done++
		return nil
	}
	idx := make([]int, len(es))
	for i := range idx {
		idx[i] = i
	}
	return done, try(idx)
}

// recordLive ships live messages; a failed call is retried whole, with the
// same tokens, so that nothing is counted twice.
func (j *Store) recordLive(ctx context.Context, live []store.Message, tokens []string) error {
	if tr, ok := j.backend.(tokenRecorder); ok {
		_, err := tr.RecordMessagesTokens(ctx, live, tokens)
		return err
	}
	for _, m := range live {
		if _, err := j.backend.RecordMessage(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// shipUpdate ships one receipt, edit or revoke. An unknown target
// (ErrNotFound) is the store's answer: the entry is marked shipped with
// it as its note.
func (j *Store) shipUpdate(ctx context.Context, e entry, held map[string]bool) (int, error) {
	var f func(context.Context) error
	var err error
	switch e.kind {
	case kindReceipt:
		var r store.Receipt
		err = json.Unmarshal(e.payload, &r)
		f = func(ctx context.Context) error { return j.backend.UpdateReceipt(ctx, r) }
	case kindEdit:
		var x store.Edit
		err = json.Unmarshal(e.payload, &x)
		f = func(ctx context.Context) error { return j.backend.ApplyEdit(ctx, x) }
	case kindRevoke:
		var x store.Revoke
		err = json.Unmarshal(e.payload, &x)
		f = func(ctx context.Context) error { return j.backend.ApplyRevoke(ctx, x) }
	default:
		err = fmt.Errorf("unknown journal entry kind %q", e.kind)
	}
	if err != nil {
		return 1, j.deadLetter(ctx, []int64{e.seq}, "malformed", err.Error())
	}
	err = j.call(ctx, f)
	switch classify(err) {
	case verdictShipped:
		note := ""
		if err != nil {
			note = err.Error()
		}
		return 1, j.mark(ctx, []int64{e.seq}, stateShipped, note)
	case verdictRetry:
		return 0, err
	}
	waiting, rerr := j.refuse(ctx, e, err)
	if waiting {
		held[e.account] = true
	}
	return 1, rerr
}

func (j *Store) mark(ctx context.Context, seqs []int64, state int, note string) error {
	if len(seqs) == 0 {
		return nil
	}
	// Bookkeeping of a shipment that happened must not be cut short by
	// shutdown: the entries would only be shipped again.
	ctx = context.WithoutCancel(ctx)
	var n any
	if note != "" {
		n = note
	}
	for start := 0; start < len(seqs); start += 500 {
		part := seqs[start:min(start+500, len(seqs))]
		args := []any{state, state, j.nowMs(), n}
		for _, s := range part {
			args = append(args, s)
		}
		q := `UPDATE entries SET state = ?, payload = CASE WHEN ? = 1 THEN NULL ELSE payload END, done_ms = ?, last_error = ?
			WHERE state = 0 AND seq IN (?` + strings.Repeat(",?", len(part)-1) + `)`
		if _, err := j.db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("journal: mark entries: %w", err)
		}
	}
	return nil
}

func (j *Store) prune(ctx context.Context) {
	cut := j.o.Now().Add(-j.o.Retention).UnixMilli()
	if _, err := j.db.ExecContext(ctx, `DELETE FROM entries WHERE state = 1 AND done_ms < ?`, cut); err != nil {
		j.log.Warn("journal: prune failed", "err", err)
	}
}

// token names a journal entry for the backend's write tokens.
func (j *Store) token(seq int64) string { return j.id + ":" + strconv.FormatInt(seq, 10) }

func (j *Store) tokens(_ int64, seqs []int64) []string {
	out := make([]string, len(seqs))
	for i, s := range seqs {
		out[i] = j.token(s)
	}
	return out
}

func (j *Store) recordOne(ctx context.Context, seq int64, m store.Message) (store.Outcome, error) {
	if tr, ok := j.backend.(tokenRecorder); ok {
		out, err := tr.RecordMessagesTokens(ctx, []store.Message{m}, []string{j.token(seq)})
		if err != nil {
			return 0, err
		}
		return out[0], nil
	}
	return j.backend.RecordMessage(ctx, m)
}

func (j *Store) recordHistory(ctx context.Context, account string, msgs []store.Message, tokens []string) (store.HistoryResult, error) {
	if tr, ok := j.backend.(tokenRecorder); ok {
		return tr.RecordHistoryTokens(ctx, account, msgs, tokens)
	}
	return j.backend.RecordHistory(ctx, account, msgs)
}
