package sessions

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"modernc.org/sqlite"
)

// StoreState is what inventory found in an account's whatsmeow database.
type StoreState string

const (
	StoreMissing    StoreState = "missing"    // no whatsmeow.db: never opened
	StoreUnpaired   StoreState = "unpaired"   // database without a saved device
	StorePaired     StoreState = "paired"     // a device is saved: restores on start
	StoreCorrupt    StoreState = "corrupt"    // not a database, or damaged
	StoreUnreadable StoreState = "unreadable" // permissions or I/O errors
)

const (
	sqliteCorrupt = 11 // SQLITE_CORRUPT
	sqliteNotADB  = 26 // SQLITE_NOTADB
)

var sqliteHeader = []byte("SQLite format 3\x00")

// inspectDB examines a whatsmeow database read-only, never creating or
// changing it. deep runs PRAGMA quick_check, which reads every page.
func inspectDB(ctx context.Context, path string, deep bool) (state StoreState, jid string, err error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return StoreMissing, "", nil
	}
	if err != nil {
		return StoreUnreadable, "", err
	}
	if !st.Mode().IsRegular() {
		return StoreCorrupt, "", fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() == 0 {
		// wactl pre-creates the file empty; SQLite reads it as an empty database.
		return StoreUnpaired, "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return StoreUnreadable, "", err
	}
	head := make([]byte, 100)
	_, rerr := io.ReadFull(f, head)
	f.Close()
	if rerr != nil {
		return StoreCorrupt, "", fmt.Errorf("truncated: %d bytes, shorter than an SQLite header", st.Size())
	}
	if !bytes.Equal(head[:16], sqliteHeader) {
		return StoreCorrupt, "", errors.New("not an SQLite database (bad header)")
	}

	// A reader of a WAL database creates -wal and -shm files, which an
	// inventory must not do. A database without a -wal file is fully
	// checkpointed, so it is read as immutable (no locks, no side files).
	// If it looks damaged that way, a writer may have started meanwhile:
	// look again through the normal (read-only) path.
	if !fileExists(path + "-wal") {
		state, jid, err = queryDB(ctx, path, readImmutable, deep)
		if state != StoreCorrupt || !fileExists(path+"-wal") {
			return state, jid, err
		}
	}
	if owner, ok := st.Sys().(*syscall.Stat_t); !ok || int(owner.Uid) == os.Geteuid() {
		return queryDB(ctx, path, readWAL, deep)
	}
	// Someone else's database (root or an operator surveying the service's
	// sessions): a WAL reader creates the -shm index when it is missing.
	// SQLite gives root's to the database's owner, but anyone else's would
	// be theirs, mode 0600, and the service could not open its own
	// database; an inventory creates nothing either way. So the owner's
	// -shm is only read (readonly_shm), and without one (a crash or a copy
	// left the -wal alone) only the main file is read.
	if fileExists(path + "-shm") {
		state, jid, err = queryDB(ctx, path, readWALSharedRO, deep)
		if state != StoreUnreadable || fileExists(path+"-shm") {
			return state, jid, err
		}
	}
	state, jid, err = queryDB(ctx, path, readImmutable, deep)
	if err == nil && fileExists(path+"-wal") {
		err = &WALNotReadError{Path: path + "-wal", Owner: sudoUser(ownerUID(st))}
	}
	return state, jid, err
}

// WALNotReadError: the survey read a database without its -wal, which only
// the owner may replay (it needs a -shm that is missing); the last writes
// may be missing from what it reports.
type WALNotReadError struct {
	Path  string
	Owner string // as sudo -u takes it
}

func (e *WALNotReadError) Error() string {
	return fmt.Sprintf("%s was not read: it has no -shm and creating one would leave a file its owner may not open; "+
		"what the database's main file says is reported; the service replays the -wal when it opens the account; "+
		"to read it now: sudo -u %s wactl accounts list", e.Path, e.Owner)
}

func ownerUID(fi os.FileInfo) int {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid)
	}
	return os.Geteuid()
}

// How queryDB opens a database; every way is read-only.
type readMode int

const (
	readImmutable   readMode = iota // the main file only: no locks, no side files
	readWAL                         // with its -wal, creating the -shm if missing (the owner)
	readWALSharedRO                 // with its -wal and the owner's -shm, never writing the -shm
)

func queryDB(ctx context.Context, path string, mode readMode, deep bool) (StoreState, string, error) {
	dsn := "file:" + escapeURIPath(path) + "?mode=ro&_pragma=busy_timeout(5000)"
	switch mode {
	case readImmutable:
		dsn += "&immutable=1"
	case readWALSharedRO:
		dsn += "&readonly_shm=1"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return StoreUnreadable, "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if deep {
		var res string
		if err := db.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&res); err != nil {
			return classifyDBErr(err)
		}
		if res != "ok" {
			return StoreCorrupt, "", fmt.Errorf("quick_check: %s", res)
		}
	}
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='whatsmeow_device'").Scan(&tables); err != nil {
		return classifyDBErr(err)
	}
	if tables == 0 {
		return StoreUnpaired, "", nil
	}
	var jid string
	err = db.QueryRowContext(ctx, "SELECT jid FROM whatsmeow_device ORDER BY jid LIMIT 1").Scan(&jid)
	if errors.Is(err, sql.ErrNoRows) {
		return StoreUnpaired, "", nil
	}
	if err != nil {
		return classifyDBErr(err)
	}
	return StorePaired, jid, nil
}

func classifyDBErr(err error) (StoreState, string, error) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteCorrupt, sqliteNotADB:
			return StoreCorrupt, "", err
		}
	}
	return StoreUnreadable, "", err
}
