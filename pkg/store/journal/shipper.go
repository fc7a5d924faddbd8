package journal

import (
	"context"
	"encoding/json"
	"errors"
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
		// being shipped inline right now aside): inline writes racing a
		// backlog for the same threads make both retry.
		var pending bool
		if err := j.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM entries WHERE state = 0)`).Scan(&pending); err == nil && !pending {
			j.degraded.Store(false)
		}
		if time.Since(lastPrune) > pruneEvery {
			j.prune(ctx)
			lastPrune = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-j.kick:
		case <-time.After(5 * time.Second):
		}
	}
}

// loadBatch returns the oldest pending entries not being shipped inline.
// An update (receipt, edit, revoke) newer than an inline shipment in
// progress ends the batch: its target may be in that shipment.
func (j *Store) loadBatch(ctx context.Context) ([]entry, error) {
	// Holding mu makes "journaled and marked inflight" atomic with respect
	// to this read: an entry is never picked up by both paths.
	j.mu.Lock()
	defer j.mu.Unlock()
	ranges, lowest := j.fl.snapshot()
	q := `SELECT seq, kind, account, payload FROM entries WHERE state = 0`
	var args []any
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
		if err := rows.Scan(&e.seq, &e.kind, &e.account, &e.payload); err != nil {
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
// left the backlog. Entries are marked as each run succeeds, so a failure
// midway keeps the progress made.
func (j *Store) shipBatch(ctx context.Context) (int, error) {
	batch, err := j.loadBatch(ctx)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	done := 0
	for i := 0; i < len(batch); {
		k := i + 1
		if isMessageKind(batch[i].kind) {
			for k < len(batch) && isMessageKind(batch[k].kind) {
				k++
			}
			if err := j.shipMessages(ctx, batch[i:k]); err != nil {
				return done, err
			}
		} else if err := j.shipUpdate(ctx, batch[i]); err != nil {
			return done, err
		}
		done += k - i
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
// call, history ones per account. A permanent refusal sends the run through
// one entry at a time so that only the bad entries are set aside.
func (j *Store) shipMessages(ctx context.Context, run []entry) error {
	var live []store.Message
	var liveSeqs []int64
	hist := map[string][]store.Message{}
	histSeqs := map[string][]int64{}
	var bad []entry
	for _, e := range run {
		var m store.Message
		if err := json.Unmarshal(e.payload, &m); err != nil {
			bad = append(bad, e)
			continue
		}
		if e.kind == kindLive {
			live, liveSeqs = append(live, m), append(liveSeqs, e.seq)
		} else {
			hist[e.account] = append(hist[e.account], m)
			histSeqs[e.account] = append(histSeqs[e.account], e.seq)
		}
	}
	for _, e := range bad {
		if err := j.mark(ctx, []int64{e.seq}, stateDead, "journal entry does not decode"); err != nil {
			return err
		}
	}
	if len(live) > 0 {
		err := j.call(ctx, func(ctx context.Context) error { return j.recordLive(ctx, live, liveSeqs) })
		if isPermanent(err) && len(live) > 1 {
			for i, m := range live {
				err := j.call(ctx, func(ctx context.Context) error { _, err := j.recordOne(ctx, liveSeqs[i], m); return err })
				if err := j.settle(ctx, liveSeqs[i:i+1], err); err != nil {
					return err
				}
			}
		} else if err := j.settle(ctx, liveSeqs, err); err != nil {
			return err
		}
	}
	for account, msgs := range hist {
		seqs := histSeqs[account]
		err := j.call(ctx, func(ctx context.Context) error {
			_, err := j.recordHistory(ctx, account, msgs, j.tokens(0, seqs))
			return err
		})
		if err != nil {
			return err // RecordHistory counts bad messages instead of failing
		}
		if err := j.mark(ctx, seqs, stateShipped, ""); err != nil {
			return err
		}
	}
	return nil
}

// recordLive ships live messages; a failed call is retried whole, with the
// same tokens, so that nothing is counted twice.
func (j *Store) recordLive(ctx context.Context, live []store.Message, seqs []int64) error {
	if tr, ok := j.backend.(tokenRecorder); ok {
		_, err := tr.RecordMessagesTokens(ctx, live, j.tokens(0, seqs))
		return err
	}
	for _, m := range live {
		if _, err := j.backend.RecordMessage(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// settle marks entries after a backend answer and returns the error that
// should stop the shipper (transient failures only).
func (j *Store) settle(ctx context.Context, seqs []int64, err error) error {
	switch {
	case err == nil:
		return j.mark(ctx, seqs, stateShipped, "")
	case errors.Is(err, store.ErrNotFound):
		return j.mark(ctx, seqs, stateShipped, err.Error())
	case isPermanent(err):
		j.log.Error("journal: the backend refused an entry for good; kept in the journal as dead", "seqs", seqs, "err", err)
		return j.mark(ctx, seqs, stateDead, err.Error())
	}
	return err
}

func (j *Store) shipUpdate(ctx context.Context, e entry) error {
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
		return j.mark(ctx, []int64{e.seq}, stateDead, err.Error())
	}
	return j.settle(ctx, []int64{e.seq}, j.call(ctx, f))
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
