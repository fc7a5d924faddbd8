package lock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDeletedLockFileNoSecondHolder reproduces issue 15.4: deleting
// <data_dir>/wactl.lock let a second process lock a new file and be ACTIVE
// while the first still was (until its next poll).
func TestDeletedLockFileNoSecondHolder(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	rec := newTenures()
	wa, wb := newWatcher("a", rec), newWatcher("b", rec)
	// a never polls during the test: the window is as long as it can be.
	la, err := NewEmbedded(EmbeddedOptions{DataDir: dir, InstanceID: "a", Host: "h", Poll: time.Hour,
		Logger: testLogger(t), Callbacks: wa.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	runLock(t, la)
	wa.waitActive(t, 2*time.Second)
	if err := os.Remove(filepath.Join(dir, LockFileName)); err != nil {
		t.Fatal(err)
	}
	lb, err := NewEmbedded(EmbeddedOptions{DataDir: dir, InstanceID: "b", Host: "h", Poll: 20 * time.Millisecond,
		Logger: testLogger(t), Callbacks: wb.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	runLock(t, lb)
	wb.assertNoActive(t, 500*time.Millisecond)
	if _, ok := la.Fence(); !ok {
		t.Fatal("a lost its fence")
	}
	// The same holds for the Firestore backend's data dir lock.
	if fl, err := TryLockDir(dir); err == nil {
		fl.Unlock()
		t.Fatal("TryLockDir succeeded while a holds the data dir")
	}
	if held, err := probeDir(dir); err != nil || !held {
		t.Fatalf("probe after the file was deleted: held=%v err=%v", held, err)
	}
	rec.check(t)
}

// TestLockFileRecreatedByHolder: a holder whose lock file was deleted
// re-takes its lock (the file exists again) without any other process
// getting in between.
func TestLockFileRecreatedByHolder(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	w := newWatcher("a", nil)
	l, err := NewEmbedded(EmbeddedOptions{DataDir: dir, InstanceID: "a", Host: "h", Poll: 20 * time.Millisecond,
		Logger: testLogger(t), Callbacks: w.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	runLock(t, l)
	w.waitActive(t, 2*time.Second)
	if err := os.Remove(filepath.Join(dir, LockFileName)); err != nil {
		t.Fatal(err)
	}
	w.waitPassive(t, time.Second)
	w.waitActive(t, time.Second)
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); err != nil {
		t.Fatalf("lock file not re-created: %v", err)
	}
}
