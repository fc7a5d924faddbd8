package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"
)

// DeadLetter is a journal entry the backend refused for good. Its payload
// stays in the journal; RetryDeadLetters puts it back in the queue.
type DeadLetter struct {
	Seq     int64  `json:"seq"`
	Kind    string `json:"kind"` // live, history, receipt, edit, revoke
	Account string `json:"accountId"`
	// Ref is the message's WhatsApp id (or "#"+document id for a send
	// without one); empty for receipts, edits and revokes.
	Ref       string    `json:"ref"`
	Code      string    `json:"code"` // gRPC code of the refusal, or "malformed"
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"createdAt"`
	DeadAt    time.Time `json:"deadAt"`
}

// refuse handles an entry the backend said no to: it waits (next_ms) and
// is tried again, alone, until it has been refused MaxRefusals times; then,
// or at once when the store's own validation refused it, it is
// dead-lettered. It reports whether the entry is still pending.
func (j *Store) refuse(ctx context.Context, e entry, err error) (bool, error) {
	if classify(err) == verdictMalformed || e.attempts+1 >= j.o.MaxRefusals {
		return false, j.deadLetter(ctx, []int64{e.seq}, codeName(err), err.Error())
	}
	wait := j.o.RefusalBackoff << min(e.attempts, 10)
	ctx = context.WithoutCancel(ctx)
	_, uerr := j.db.ExecContext(ctx, `UPDATE entries SET attempts = attempts + 1, last_error = ?, next_ms = ? WHERE seq = ? AND state = 0`,
		err.Error(), j.o.Now().Add(wait).UnixMilli(), e.seq)
	if uerr != nil {
		return true, fmt.Errorf("journal: note a refused entry: %w", uerr)
	}
	j.log.Warn("journal: Firestore refused an entry; the others keep shipping, it is tried again alone",
		"seq", e.seq, "kind", e.kind, "account", e.account, "refusals", e.attempts+1, "of", j.o.MaxRefusals, "retry_in", wait, "err", err)
	return true, nil
}

// deadLetter moves pending entries to the dead-letter table and marks them
// dead, in one transaction: an entry leaves the queue only with its row
// there, and keeps its payload for a retry.
func (j *Store) deadLetter(ctx context.Context, seqs []int64, code, msg string) error {
	if len(seqs) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: dead-letter entries: %w", err)
	}
	defer tx.Rollback()
	now := j.nowMs()
	for start := 0; start < len(seqs); start += 500 {
		part := seqs[start:min(start+500, len(seqs))]
		in := `(?` + strings.Repeat(",?", len(part)-1) + `)`
		args := []any{code, msg, now}
		for _, s := range part {
			args = append(args, s)
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO dead_letters(seq, kind, account, ref, code, error, attempts, created_ms, dead_ms)
			SELECT seq, kind, account, COALESCE(substr(mkey, instr(mkey, '|') + 1), ''), ?, ?, attempts + 1, created_ms, ?
			FROM entries WHERE state = 0 AND seq IN `+in, args...); err != nil {
			return fmt.Errorf("journal: dead-letter entries: %w", err)
		}
		args = []any{stateDead, now, msg}
		for _, s := range part {
			args = append(args, s)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE entries SET state = ?, attempts = attempts + 1, done_ms = ?, last_error = ?
			WHERE state = 0 AND seq IN `+in, args...); err != nil {
			return fmt.Errorf("journal: dead-letter entries: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: dead-letter entries: %w", err)
	}
	j.log.Error("journal: entries refused for good moved to the dead letters; shipping continues (list: wactl journal dead-letters, retry: wactl journal retry)",
		"seqs", seqs, "code", code, "err", msg)
	return nil
}

func (j *Store) deadLetterRange(ctx context.Context, lo, hi int64, code, msg string) error {
	seqs := make([]int64, 0, hi-lo+1)
	for s := lo; s <= hi; s++ {
		seqs = append(seqs, s)
	}
	return j.deadLetter(ctx, seqs, code, msg)
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func listDeadLetters(ctx context.Context, q queryer) ([]DeadLetter, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, kind, account, ref, code, error, attempts, created_ms, dead_ms FROM dead_letters ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var created, dead int64
		if err := rows.Scan(&d.Seq, &d.Kind, &d.Account, &d.Ref, &d.Code, &d.Error, &d.Attempts, &created, &dead); err != nil {
			return nil, err
		}
		d.CreatedAt, d.DeadAt = time.UnixMilli(created).UTC(), time.UnixMilli(dead).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

func countDeadLetters(ctx context.Context, q queryer) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters`).Scan(&n)
	return n, err
}

// ErrNoDeadLetter is returned by a retry naming an entry that is not a
// dead letter.
var ErrNoDeadLetter = errors.New("journal: no such dead letter")

// retryDeadLetters puts dead letters back in the queue (all of them when
// seqs is empty) and returns how many. Each is tried again from scratch:
// refused again MaxRefusals times, it comes back here.
func retryDeadLetters(ctx context.Context, db *sql.DB, seqs []int64) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if len(seqs) == 0 {
		rows, err := tx.QueryContext(ctx, `SELECT seq FROM dead_letters ORDER BY seq`)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return 0, err
			}
			seqs = append(seqs, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	for _, s := range seqs {
		r, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE seq = ?`, s)
		if err != nil {
			return 0, err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return 0, fmt.Errorf("%w: %d (list them with `wactl journal dead-letters`)", ErrNoDeadLetter, s)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE entries SET state = ?, attempts = 0, next_ms = 0, done_ms = NULL
			WHERE seq = ? AND state = ?`, statePending, s, stateDead); err != nil {
			return 0, err
		}
	}
	return len(seqs), tx.Commit()
}

// DeadLetters lists the entries the backend refused for good.
func (j *Store) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return listDeadLetters(ctx, j.db)
}

// RetryDeadLetters queues dead letters again (every one when seqs is
// empty) and wakes the shipper.
func (j *Store) RetryDeadLetters(ctx context.Context, seqs []int64) (int, error) {
	j.mu.Lock()
	n, err := retryDeadLetters(ctx, j.db, seqs)
	j.mu.Unlock()
	if err == nil && n > 0 {
		j.kickShipper()
	}
	return n, err
}

// Admin reads and retries the dead letters of a journal file while the
// daemon that ships it may be running (SQLite serialises the two
// processes; the daemon's shipper sees a retried entry on its next round,
// within seconds). It never ships anything itself.
type Admin struct {
	db   *sql.DB
	path string
}

// OpenAdmin opens the journal at path for DeadLetters and Retry.
func OpenAdmin(path string) (*Admin, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no journal at %s (wactl serve creates it in Firestore mode; check --data-dir)", path)
	} else if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: read %s: %w", path, err)
	}
	if v < schemaVersion {
		db.Close()
		return nil, fmt.Errorf("journal %s has schema version %d, which has no dead-letter table: start this version of wactl serve once to upgrade it", path, v)
	}
	if v > schemaVersion {
		db.Close()
		return nil, fmt.Errorf("journal %s has schema version %d, newer than this wactl (%d): use the wactl that wrote it", path, v, schemaVersion)
	}
	return &Admin{db: db, path: path}, nil
}

// DeadLetters lists the dead letters.
func (a *Admin) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return listDeadLetters(ctx, a.db)
}

// Retry queues dead letters again (all when seqs is empty).
func (a *Admin) Retry(ctx context.Context, seqs []int64) (int, error) {
	return retryDeadLetters(ctx, a.db, seqs)
}

// Close closes the file.
func (a *Admin) Close() error { return a.db.Close() }
