package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveMovesToRemoved(t *testing.T) {
	t.Parallel()
	s, clock := newStore(t)
	makePaired(t, s, testID, "40712345678")
	dest, err := s.Remove(testID, RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Root(), "removed", "20261127T090000Z-"+testID)
	if dest != want {
		t.Fatalf("dest = %s, want %s", dest, want)
	}
	if _, err := os.Stat(s.Dir(testID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("account dir still in service")
	}
	for _, f := range []string{metadataFile, dbFile} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("removed copy lacks %s: %v", f, err)
		}
	}
	assertMode(t, filepath.Join(s.Root(), "removed"), 0o700)

	// Same id again at the same instant does not overwrite the first copy.
	makePaired(t, s, testID, "40712345678")
	dest2, err := s.Remove(testID, RemoveOptions{})
	if err != nil || dest2 == dest {
		t.Fatalf("second remove: %s, %v", dest2, err)
	}
	inv, _ := s.Inventory(contextBackground())
	if inv.Counts.Removed != 2 || inv.Counts.AccountDirs != 0 || len(inv.Problems) != 0 {
		t.Fatalf("inventory after remove: %+v", inv)
	}
	_ = clock
	if _, err := s.Remove(testID, RemoveOptions{}); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("remove of removed account = %v", err)
	}
}

func TestRemovePurge(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	makePaired(t, s, testID, "40712345678")
	mustCreate(t, s, testID2)
	dest, err := s.Remove(testID, RemoveOptions{Purge: true})
	if err != nil || dest != "" {
		t.Fatalf("purge: %q, %v", dest, err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "removed"))
	if len(entries) != 0 {
		t.Fatalf("purge left %v", entries)
	}
	if _, err := s.Get(testID2); err != nil {
		t.Fatalf("purge touched another account: %v", err)
	}
}
