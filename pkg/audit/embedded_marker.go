package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

const embeddedJournal = `
CREATE TABLE IF NOT EXISTS cleanup_runs (
	run_id          TEXT PRIMARY KEY,
	status          TEXT NOT NULL,
	started_ms      INTEGER NOT NULL,
	finished_ms     INTEGER NOT NULL DEFAULT 0,
	selection       TEXT NOT NULL,
	marked          INTEGER NOT NULL DEFAULT 0,
	threads_updated INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cleanup_marks (
	run_id            TEXT NOT NULL,
	thread_id         TEXT NOT NULL,
	doc_id            TEXT NOT NULL,
	duplicate_of      TEXT NOT NULL,
	marked_at_ms      INTEGER NOT NULL,
	prev_is_duplicate INTEGER NOT NULL,
	prev_duplicate_of TEXT NOT NULL,
	PRIMARY KEY (run_id, thread_id, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cleanup_threads (
	run_id    TEXT NOT NULL,
	thread_id TEXT NOT NULL,
	prev_ms   INTEGER NOT NULL,
	prev_text TEXT NOT NULL,
	next_ms   INTEGER NOT NULL,
	next_text TEXT NOT NULL,
	PRIMARY KEY (run_id, thread_id)
) WITHOUT ROWID;`

// embeddedMarksPerTx keeps each transaction short, so the daemon's writes
// wait at most one batch for the lock.
const embeddedMarksPerTx = 500

func (e *Embedded) BeginRun(ctx context.Context, r RunInfo) error {
	if err := e.ensureJournal(ctx); err != nil {
		return err
	}
	sel, _ := json.Marshal(selectionMap(r.Selection))
	host, pid := runOwner()
	_, err := e.db.ExecContext(ctx, `INSERT INTO cleanup_runs (run_id, status, started_ms, selection, host, pid, heartbeat_ms) VALUES (?, 'running', ?, ?, ?, ?, ?)`,
		r.ID, r.StartedAt.UnixMilli(), string(sel), host, pid, r.StartedAt.UnixMilli())
	return err
}

// ensureJournal creates the cleanup journal, and adds the columns that
// tell a live run from an interrupted one to a journal made before them.
func (e *Embedded) ensureJournal(ctx context.Context) error {
	if _, err := e.db.ExecContext(ctx, embeddedJournal); err != nil {
		return fmt.Errorf("create the cleanup journal in %s: %w", e.path, err)
	}
	for _, col := range []string{"host TEXT NOT NULL DEFAULT ''", "pid INTEGER NOT NULL DEFAULT 0", "heartbeat_ms INTEGER NOT NULL DEFAULT 0"} {
		name := strings.Fields(col)[0]
		var n int
		if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('cleanup_runs') WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := e.db.ExecContext(ctx, `ALTER TABLE cleanup_runs ADD COLUMN `+col); err != nil {
				return fmt.Errorf("upgrade the cleanup journal in %s: %w", e.path, err)
			}
		}
	}
	return nil
}

func (e *Embedded) FinishRun(ctx context.Context, runID string, marked, threads int) error {
	_, err := e.db.ExecContext(ctx, `UPDATE cleanup_runs SET status = 'done', finished_ms = ?, marked = ?, threads_updated = ? WHERE run_id = ?`,
		time.Now().UnixMilli(), marked, threads, runID)
	return err
}

func (e *Embedded) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Mark marks each batch in one transaction with its journal rows. A mark
// is written only while the document is as the plan saw it (not marked)
// and its canonical copy is still live, so a mark never overwrites another
// run's or the daemon's; documents that changed are counted and Mark
// returns ErrChangedSincePlan (see the Firestore backend).
func (e *Embedded) Mark(ctx context.Context, runID string, at time.Time, marks []Mark, progress func(int)) (int, error) {
	done, changed := 0, 0
	for chunk := range slices.Chunk(marks, embeddedMarksPerTx) {
		n, c := 0, 0
		err := e.tx(ctx, func(tx *sql.Tx) error {
			n, c = 0, 0
			for _, m := range chunk {
				ct := m.CanonicalThreadID
				if ct == "" {
					ct = m.ThreadID
				}
				r, err := tx.ExecContext(ctx, `UPDATE messages SET is_duplicate = 1, duplicate_of = ?
WHERE tkey = (SELECT tkey FROM threads WHERE id = ?) AND doc_id = ? AND is_duplicate = 0
  AND EXISTS (SELECT 1 FROM messages c WHERE c.tkey = (SELECT tkey FROM threads WHERE id = ?) AND c.doc_id = ? AND c.is_duplicate = 0)`,
					m.DuplicateOf, m.ThreadID, m.DocID, ct, m.DuplicateOf)
				if err != nil {
					return err
				}
				if k, _ := r.RowsAffected(); k == 0 {
					var exists bool
					if err := tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM messages WHERE tkey = (SELECT tkey FROM threads WHERE id = ?) AND doc_id = ?)`,
						m.ThreadID, m.DocID).Scan(&exists); err != nil {
						return err
					}
					if exists {
						c++
					}
					continue
				}
				prevOf, _ := m.Prev["duplicateOf"].(string)
				if _, err := tx.ExecContext(ctx, `INSERT INTO cleanup_marks VALUES (?, ?, ?, ?, ?, 0, ?)`,
					runID, m.ThreadID, m.DocID, m.DuplicateOf, at.UnixMilli(), prevOf); err != nil {
					return err
				}
				n++
			}
			_, err := tx.ExecContext(ctx, `UPDATE cleanup_runs SET heartbeat_ms = ? WHERE run_id = ?`, time.Now().UnixMilli(), runID)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("mark duplicates (after %d marked; rerun to finish): %w", done, err)
		}
		done += n
		changed += c
		if progress != nil {
			progress(done)
		}
	}
	if changed > 0 {
		return done, changedSincePlan(changed)
	}
	return done, nil
}

// Runs lists the cleanup runs, newest first; a run recorded as running
// whose process is gone is reported (and recorded) as interrupted.
func (e *Embedded) Runs(ctx context.Context) ([]RunRecord, error) {
	var exists bool
	if err := e.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = 'cleanup_runs')`).Scan(&exists); err != nil || !exists {
		return nil, err
	}
	if err := e.ensureJournal(ctx); err != nil {
		return nil, err
	}
	rows, err := e.db.QueryContext(ctx, `SELECT r.run_id, r.status, r.started_ms, r.finished_ms, r.host, r.pid, r.heartbeat_ms,
		(SELECT count(*) FROM cleanup_marks m WHERE m.run_id = r.run_id) FROM cleanup_runs r`)
	if err != nil {
		return nil, err
	}
	var out []RunRecord
	for rows.Next() {
		var r RunRecord
		var started, finished, hb int64
		if err := rows.Scan(&r.ID, &r.Status, &started, &finished, &r.Host, &r.PID, &hb, &r.Marks); err != nil {
			rows.Close()
			return nil, err
		}
		r.StartedAt = time.UnixMilli(started).UTC()
		if finished > 0 {
			r.FinishedAt = time.UnixMilli(finished).UTC()
		}
		if hb > 0 {
			r.HeartbeatAt = time.UnixMilli(hb).UTC()
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	for i := range out {
		if out[i].interrupted(now) {
			out[i].Status = "interrupted"
			if _, err := e.db.ExecContext(ctx, `UPDATE cleanup_runs SET status = 'interrupted' WHERE run_id = ? AND status = 'running'`, out[i].ID); err != nil {
				return nil, err
			}
		}
	}
	sortRuns(out)
	return out, nil
}

// RecomputeThread follows the same rule as the Firestore backend, inside
// one IMMEDIATE transaction: the daemon cannot write in between.
func (e *Embedded) RecomputeThread(ctx context.Context, runID, threadID string) (ThreadChange, error) {
	var ch ThreadChange
	err := e.tx(ctx, func(tx *sql.Tx) error {
		ch = ThreadChange{}
		var curMs int64
		var curText string
		err := tx.QueryRowContext(ctx, `SELECT last_message_at_ms, last_message_text FROM threads WHERE id = ?`, threadID).Scan(&curMs, &curText)
		if errors.Is(err, sql.ErrNoRows) {
			ch.Kept = "thread missing"
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT ts_client_ms, body, is_duplicate FROM messages WHERE tkey = (SELECT tkey FROM threads WHERE id = ?) ORDER BY ts_client_ms DESC, seq DESC LIMIT 200`, threadID)
		if err != nil {
			return err
		}
		found, dupAtOrAfter := false, false
		var nMs int64
		var text string
		for rows.Next() {
			var ts int64
			var body string
			var dup bool
			if err := rows.Scan(&ts, &body, &dup); err != nil {
				rows.Close()
				return err
			}
			if dup {
				if ts >= curMs {
					dupAtOrAfter = true
				}
				continue
			}
			found, nMs, text = true, ts, body
			break
		}
		rows.Close()
		switch {
		case !found:
			ch.Kept = "no non-duplicate message found"
			return nil
		case nMs == curMs && text == curText:
			return nil
		case nMs < curMs && !dupAtOrAfter:
			ch.Kept = "summary is newer than every message seen (live write)"
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE threads SET last_message_at_ms = ?, last_message_text = ? WHERE id = ?`, nMs, text, threadID); err != nil {
			return err
		}
		ch.Updated = true
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO cleanup_threads VALUES (?, ?, ?, ?, ?, ?)`, runID, threadID, curMs, curText, nMs, text)
		return err
	})
	if err != nil {
		return ThreadChange{}, fmt.Errorf("recompute thread %s: %w", threadID, err)
	}
	return ch, nil
}

func (e *Embedded) Undo(ctx context.Context, runID string) (UndoResult, error) {
	var res UndoResult
	var status string
	err := e.db.QueryRowContext(ctx, `SELECT status FROM cleanup_runs WHERE run_id = ?`, runID).Scan(&status)
	if err != nil {
		return res, fmt.Errorf("%w %q in %s (%v): check the run id printed by `wactl cleanup --apply`", errNoRun, runID, e.path, err)
	}
	err = e.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE messages SET is_duplicate = j.prev_is_duplicate, duplicate_of = j.prev_duplicate_of
FROM cleanup_marks j JOIN threads t ON t.id = j.thread_id
WHERE j.run_id = ? AND messages.tkey = t.tkey AND messages.doc_id = j.doc_id
  AND messages.is_duplicate = 1 AND messages.duplicate_of = j.duplicate_of`, runID)
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		var total int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cleanup_marks WHERE run_id = ?`, runID).Scan(&total); err != nil {
			return err
		}
		res.Unmarked, res.Skipped = int(n), total-int(n)
		r, err = tx.ExecContext(ctx, `UPDATE threads SET last_message_at_ms = j.prev_ms, last_message_text = j.prev_text
FROM cleanup_threads j
WHERE j.run_id = ? AND threads.id = j.thread_id AND threads.last_message_at_ms = j.next_ms AND threads.last_message_text = j.next_text`, runID)
		if err != nil {
			return err
		}
		n, _ = r.RowsAffected()
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cleanup_threads WHERE run_id = ?`, runID).Scan(&total); err != nil {
			return err
		}
		res.ThreadsRestored, res.ThreadsKept = int(n), total-int(n)
		_, err = tx.ExecContext(ctx, `UPDATE cleanup_runs SET status = 'undone' WHERE run_id = ?`, runID)
		return err
	})
	return res, err
}
