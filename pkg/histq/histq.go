// Package histq is the durable queue between WhatsApp's history-sync
// notifications and the message store.
//
// whatsmeow acknowledges a history-sync notification to WhatsApp when the
// daemon's handler returns; the history itself (an encrypted blob on the
// media servers, or an inline bootstrap payload) is recorded much later. The
// notification is therefore committed here first (SQLite, WAL,
// synchronous=FULL) and only then acknowledged; a worker downloads and
// records it conversation by conversation, persisting a cursor, and deletes
// the entry only once every message of it is durable in the store. A
// notification whose blob cannot be downloaded any more is moved to the
// losses table with its reason, where /health, /metrics and `wactl doctor`
// count it.
//
// The same file keeps edits and revokes that arrived before the message they
// change (see parked.go).
package histq

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// FileName is the queue's file under the data directory.
const FileName = "history-queue.db"

var schema = []string{
	`CREATE TABLE IF NOT EXISTS entries (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		account     TEXT    NOT NULL,
		msg_id      TEXT    NOT NULL,
		notif       BLOB    NOT NULL,
		created_ms  INTEGER NOT NULL,
		next_ms     INTEGER NOT NULL DEFAULT 0,
		attempts    INTEGER NOT NULL DEFAULT 0,
		conv        INTEGER NOT NULL DEFAULT 0,
		msg         INTEGER NOT NULL DEFAULT 0,
		recorded    INTEGER NOT NULL DEFAULT 0,
		last_error  TEXT    NOT NULL DEFAULT '',
		UNIQUE(account, msg_id)
	)`,
	`CREATE INDEX IF NOT EXISTS entries_due ON entries(next_ms, id)`,
	`CREATE TABLE IF NOT EXISTS losses (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		account     TEXT    NOT NULL,
		msg_id      TEXT    NOT NULL,
		reason      TEXT    NOT NULL,
		detail      TEXT    NOT NULL,
		attempts    INTEGER NOT NULL,
		recorded    INTEGER NOT NULL,
		at_ms       INTEGER NOT NULL,
		rerequested INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE IF NOT EXISTS parked (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		account     TEXT    NOT NULL,
		target      TEXT    NOT NULL,
		kind        TEXT    NOT NULL,
		payload     BLOB    NOT NULL,
		at_ms       INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS parked_target ON parked(account, target)`,
	`CREATE TABLE IF NOT EXISTS skips (
		account     TEXT    NOT NULL,
		reason      TEXT    NOT NULL,
		n           INTEGER NOT NULL,
		PRIMARY KEY (account, reason)
	)`,
}

// Options tune a queue.
type Options struct {
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
	// MaxParked bounds the edits and revokes kept for a target not yet
	// recorded (default 10,000); beyond it the oldest is dropped and
	// counted.
	MaxParked int
}

// Queue is one queue file. Its methods are safe for concurrent use.
type Queue struct {
	db   *sql.DB
	now  func() time.Time
	maxP int
	pk   parkedIndex
}

// Open opens (creating if needed) the queue at path, 0600 in a 0700
// directory.
func Open(path string, o Options) (*Queue, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxParked <= 0 {
		o.MaxParked = 10000
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history queue: create directory for %s: %w", path, err)
	}
	// Create the file 0600 before SQLite does (it would use the umask).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history queue: %w", err)
	}
	f.Close()
	// synchronous(FULL): in WAL mode NORMAL may lose the last commits on
	// power loss, and a commit here is what lets WhatsApp forget the
	// notification.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history queue: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	for _, s := range schema {
		if _, err := db.Exec(s); err != nil {
			db.Close()
			return nil, fmt.Errorf("history queue: schema of %s: %w", path, err)
		}
	}
	q := &Queue{db: db, now: o.Now, maxP: o.MaxParked}
	if err := q.loadParked(); err != nil {
		db.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the file.
func (q *Queue) Close() error { return q.db.Close() }

// Entry is one queued notification.
type Entry struct {
	ID        int64
	AccountID string
	MessageID string // the WhatsApp id of the notification message
	// Notification is the marshalled waE2E.HistorySyncNotification,
	// including any inline bootstrap payload.
	Notification []byte
	CreatedAt    time.Time
	NextAt       time.Time
	Attempts     int
	// Cursor: conversations before Conv are recorded, and the first Msg
	// messages of conversation Conv.
	Conv, Msg int
	Recorded  int // messages recorded so far (for the loss report)
	LastError string
}

// Put commits a notification. A notification already queued (WhatsApp
// redelivered it) is left as it is; created says whether this was new.
// A nil error means the notification survives a crash.
func (q *Queue) Put(ctx context.Context, accountID, msgID string, notif []byte) (created bool, err error) {
	if accountID == "" || msgID == "" || len(notif) == 0 {
		return false, errors.New("history queue: a notification needs an account, a message id and a payload")
	}
	res, err := q.db.ExecContext(ctx, `INSERT OR IGNORE INTO entries(account, msg_id, notif, created_ms) VALUES (?, ?, ?, ?)`,
		accountID, msgID, notif, q.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("history queue: put %s: %w", msgID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

const entryCols = `id, account, msg_id, notif, created_ms, next_ms, attempts, conv, msg, recorded, last_error`

func scanEntry(sc interface{ Scan(...any) error }) (Entry, error) {
	var e Entry
	var created, next int64
	err := sc.Scan(&e.ID, &e.AccountID, &e.MessageID, &e.Notification, &created, &next, &e.Attempts, &e.Conv, &e.Msg, &e.Recorded, &e.LastError)
	e.CreatedAt, e.NextAt = time.UnixMilli(created), time.UnixMilli(next)
	return e, err
}

// Due returns up to limit entries whose next attempt is due at now, oldest
// first.
func (q *Queue) Due(ctx context.Context, now time.Time, limit int) ([]Entry, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE next_ms <= ? ORDER BY id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("history queue: due: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("history queue: due: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Get returns one entry.
func (q *Queue) Get(ctx context.Context, id int64) (Entry, error) {
	e, err := scanEntry(q.db.QueryRowContext(ctx, `SELECT `+entryCols+` FROM entries WHERE id = ?`, id))
	if err != nil {
		return Entry{}, fmt.Errorf("history queue: entry %d: %w", id, err)
	}
	return e, nil
}

// Advance persists the cursor after messages up to (conv, msg) are durable
// in the store; recorded is the running count.
func (q *Queue) Advance(ctx context.Context, id int64, conv, msg, recorded int) error {
	_, err := q.db.ExecContext(ctx, `UPDATE entries SET conv = ?, msg = ?, recorded = ? WHERE id = ?`, conv, msg, recorded, id)
	if err != nil {
		return fmt.Errorf("history queue: cursor of %d: %w", id, err)
	}
	return nil
}

// Retry records a failed attempt and when to try again.
func (q *Queue) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	_, err := q.db.ExecContext(ctx, `UPDATE entries SET attempts = attempts + 1, last_error = ?, next_ms = ? WHERE id = ?`,
		errText, next.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("history queue: retry of %d: %w", id, err)
	}
	return nil
}

// Done deletes an entry whose every message is durable in the store.
func (q *Queue) Done(ctx context.Context, id int64) error {
	if _, err := q.db.ExecContext(ctx, `DELETE FROM entries WHERE id = ?`, id); err != nil {
		return fmt.Errorf("history queue: done %d: %w", id, err)
	}
	return nil
}

// Pending is how many notifications wait, per account.
func (q *Queue) Pending(ctx context.Context) (map[string]int, error) {
	return q.countBy(ctx, `SELECT account, count(*) FROM entries GROUP BY account`)
}

func (q *Queue) countBy(ctx context.Context, query string) (map[string]int, error) {
	rows, err := q.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("history queue: count: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			return nil, err
		}
		out[a] = n
	}
	return out, rows.Err()
}

// Defer postpones an entry without counting a download attempt (the store
// refused a batch: that is never a reason to give history up).
func (q *Queue) Defer(ctx context.Context, id int64, errText string, next time.Time) error {
	_, err := q.db.ExecContext(ctx, `UPDATE entries SET last_error = ?, next_ms = ? WHERE id = ?`, errText, next.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("history queue: defer %d: %w", id, err)
	}
	return nil
}

// Ref names a due entry without loading its notification.
type Ref struct {
	ID        int64
	AccountID string
}

// DueRefs lists up to limit entries due at now, oldest first: the worker
// picks those whose account it can serve, so an offline account's backlog
// never holds up another's.
func (q *Queue) DueRefs(ctx context.Context, now time.Time, limit int) ([]Ref, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT id, account FROM entries WHERE next_ms <= ? ORDER BY id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("history queue: due: %w", err)
	}
	defer rows.Close()
	var out []Ref
	for rows.Next() {
		var r Ref
		if err := rows.Scan(&r.ID, &r.AccountID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
