package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestEmptyStoreInAUsedDataDirIsRefused is issue 16 item 10: a 0-byte
// wactl.db beside sessions and a lock history was taken as a new store,
// silently starting an empty history. Refuse, naming the file and the fix;
// a 0-byte file in a fresh data dir (a crash before the first migration)
// still opens.
func TestEmptyStoreInAUsedDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sessions", "account_prod_abc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wactl.lock.json"), []byte(`{"epoch":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, FileName)
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), Options{Dir: dir})
	if err == nil {
		s.Close()
		t.Fatal("an empty store in a used data dir was opened as a new one")
	}
	for _, want := range []string{db, "is empty (0 bytes)", "restore", "rm " + db} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if st, _ := os.Stat(db); st.Size() != 0 {
		t.Fatalf("the refused file was written to (%d bytes)", st.Size())
	}

	fresh := t.TempDir()
	if err := os.WriteFile(filepath.Join(fresh, FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), Options{Dir: fresh})
	if err != nil {
		t.Fatalf("a 0-byte file in a fresh data dir: %v", err)
	}
	s.Close()
}

// TestCorruptStoreErrorGivesTheFix: a damaged file is named with what to
// do, not only SQLite's words.
func TestCorruptStoreErrorGivesTheFix(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, FileName)
	junk := []byte(strings.Repeat("this is not a database file ", 200))
	if err := os.WriteFile(db, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Options{Dir: dir})
	if err == nil {
		t.Fatal("opened junk")
	}
	for _, want := range []string{db, "damaged", "sqlite3 " + db + " .recover", "backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestDiskFullIsNamed: ENOSPC reads as a full disk, not as an unreadable
// store.
func TestDiskFullIsNamed(t *testing.T) {
	err := explain("/var/lib/wactl/wactl.db", fmt.Errorf("write: %w", syscall.ENOSPC))
	if !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "free space") {
		t.Fatalf("%v", err)
	}
	if !IsDiskFull(err) {
		t.Fatal("IsDiskFull misses a wrapped ENOSPC")
	}
	// SQLite's own words for it (SQLITE_FULL) count too.
	if !IsDiskFull(explain("/x.db", fmt.Errorf("database or disk is full (13)"))) {
		t.Fatal("SQLITE_FULL not recognised")
	}
}
