package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Checks Open makes before trusting the file, and errors that say what to
// do (issue 16 item 10).

// ErrDiskFull marks errors caused by a full file system (ENOSPC or
// SQLITE_FULL): the fix is free space, not a repair.
var ErrDiskFull = errors.New("disk full (no space left on device)")

// IsDiskFull reports whether err comes from a full file system.
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "no space left on device")
}

func isCorrupt(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "file is not a database") || strings.Contains(msg, "database disk image is malformed")
}

// explain wraps an error about the database file with its cause in plain
// words and the fix; other errors are returned as they are.
func explain(path string, err error) error {
	switch {
	case err == nil:
		return nil
	case IsDiskFull(err):
		return fmt.Errorf("%w: %s: %v; free space on the file system that holds it (df -h %s), then restart",
			ErrDiskFull, path, err, filepath.Dir(path))
	case isCorrupt(err):
		return fmt.Errorf("%s is damaged (%v): stop wactl, keep a copy (cp %s %s.broken), then recover what SQLite can "+
			"(sqlite3 %s .recover | sqlite3 %s.recovered && mv %s.recovered %s) or restore a backup",
			path, err, path, path, path, path, path, path)
	}
	return err
}

// refuseEmptyInUsedDir refuses a 0-byte database in a data dir that has
// been used: sessions of accounts or the lock's holder file. SQLite would
// take the empty file as a new database and the daemon would run on an
// empty history; such a file was truncated or replaced, and the old one
// (or its -wal) may still be recoverable. In a fresh data dir an empty file
// is only a crash between creating it and the first migration.
func refuseEmptyInUsedDir(path string) error {
	st, err := os.Stat(path)
	if err != nil || st.Size() != 0 || !st.Mode().IsRegular() {
		return nil
	}
	dir := filepath.Dir(path)
	var evidence []string
	if _, err := os.Stat(filepath.Join(dir, "wactl.lock.json")); err == nil { // pkg/lock's holder file
		evidence = append(evidence, "a lock history (wactl.lock.json)")
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "sessions")); err == nil {
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), "account_") {
				evidence = append(evidence, "account sessions (sessions/)")
				break
			}
		}
	}
	if w, err := os.Stat(path + "-wal"); err == nil && w.Size() > 0 {
		evidence = append(evidence, "a write-ahead log ("+filepath.Base(path)+"-wal)")
	}
	if len(evidence) == 0 {
		return nil
	}
	return fmt.Errorf("%s is empty (0 bytes) but this data dir has %s: the store was truncated or replaced, not new, "+
		"and opening it would start an empty message history. Stop wactl and restore it from a backup; "+
		"or, to start an empty store on purpose, remove it: rm %s", path, strings.Join(evidence, " and "), path)
}
