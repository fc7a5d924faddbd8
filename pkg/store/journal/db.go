package journal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Entry kinds.
const (
	kindLive    = "live"
	kindHistory = "history"
	kindReceipt = "receipt"
	kindEdit    = "edit"
	kindRevoke  = "revoke"
)

// Entry states.
const (
	statePending = 0
	stateShipped = 1
	stateDead    = 2 // dead-lettered: refused for good, kept with its payload (see dead_letters)
)

// schemaVersion 2 added entries.next_ms (a refused entry waits until then
// without holding back the others) and the dead_letters table.
const schemaVersion = 2

var schema = []string{
	`CREATE TABLE IF NOT EXISTS entries (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		kind       TEXT    NOT NULL,
		account    TEXT    NOT NULL,
		mkey       TEXT,
		payload    BLOB,
		created_ms INTEGER NOT NULL,
		state      INTEGER NOT NULL DEFAULT 0,
		done_ms    INTEGER,
		attempts   INTEGER NOT NULL DEFAULT 0,
		last_error TEXT,
		next_ms    INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS entries_mkey ON entries(mkey) WHERE mkey IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS entries_state ON entries(state, seq)`,
	// Pending entries that were refused at least once: an update of the
	// same account waits behind them (it may target one of them).
	`CREATE INDEX IF NOT EXISTS entries_refused ON entries(account, seq) WHERE state = 0 AND next_ms > 0`,
	`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	// One row per dead-lettered entry (entries.state = 2, payload kept):
	// what was refused, why and when, for `wactl journal dead-letters`.
	`CREATE TABLE IF NOT EXISTS dead_letters (
		seq        INTEGER PRIMARY KEY,
		kind       TEXT    NOT NULL,
		account    TEXT    NOT NULL,
		ref        TEXT    NOT NULL DEFAULT '',
		code       TEXT    NOT NULL,
		error      TEXT    NOT NULL,
		attempts   INTEGER NOT NULL,
		created_ms INTEGER NOT NULL,
		dead_ms    INTEGER NOT NULL
	)`,
}

// journalID returns the random identity of this journal file, created on
// first use: entry tokens must differ between journals (another host,
// a journal moved aside) while staying stable across restarts.
func journalID(db *sql.DB) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if _, err := db.Exec(`INSERT OR IGNORE INTO meta(key, value) VALUES ('id', ?)`, hex.EncodeToString(b[:])); err != nil {
		return "", err
	}
	var id string
	err := db.QueryRow(`SELECT value FROM meta WHERE key = 'id'`).Scan(&id)
	return id, err
}

type entry struct {
	seq      int64
	kind     string
	account  string
	payload  []byte
	attempts int
}

// openDB opens (creating if needed) the journal file with the durability
// settings the journal's promise rests on, and takes an exclusive lock so
// that two processes never ship the same journal.
func openDB(path string) (*sql.DB, *os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("journal: create directory for %s: %w", path, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %s is in use by another wactl process (%v): stop it first", path, err)
	}
	// SQLite gives its -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	// One connection: every write is serialised anyway, and the pragmas
	// above then apply to the only connection there is.
	db.SetMaxOpenConns(1)
	if err := migrate(db); err != nil {
		db.Close()
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %s: %w (move the file aside to start a new journal only after shipping it)", path, err)
	}
	return db, lock, nil
}

func migrate(db *sql.DB) error {
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("journal schema version %d is newer than this wactl (%d)", v, schemaVersion)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal (%v)", mode, err)
	}
	// One transaction: a crash midway leaves the file at its old version,
	// and the next start migrates it again from the start.
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if v == 1 {
		// Version 1 files have entries without next_ms, and dead entries
		// without a dead_letters row.
		if _, err := tx.Exec(`ALTER TABLE entries ADD COLUMN next_ms INTEGER NOT NULL DEFAULT 0`); err != nil {
			return err
		}
	}
	for _, s := range schema {
		if _, err := tx.Exec(s); err != nil {
			return err
		}
	}
	if v == 1 {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO dead_letters(seq, kind, account, ref, code, error, attempts, created_ms, dead_ms)
			SELECT seq, kind, account, COALESCE(substr(mkey, instr(mkey, '|') + 1), ''), 'malformed', COALESCE(last_error, ''),
				attempts, created_ms, COALESCE(done_ms, created_ms)
			FROM entries WHERE state = 2`); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func insert(ctx context.Context, x execer, kind, account, mkey string, payload []byte, nowMs int64) (int64, error) {
	var key any
	if mkey != "" {
		key = mkey
	}
	r, err := x.ExecContext(ctx, `INSERT INTO entries(kind, account, mkey, payload, created_ms) VALUES (?,?,?,?,?)`,
		kind, account, key, payload, nowMs)
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

func known(ctx context.Context, x execer, mkey string) (bool, error) {
	var one int
	err := x.QueryRowContext(ctx, `SELECT 1 FROM entries WHERE mkey = ? LIMIT 1`, mkey).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
