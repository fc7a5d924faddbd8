package lock

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func embeddedChild(t *testing.T, dir, instance string) *child {
	return startChild(t, childCfg{Mode: "embedded", Instance: instance, Host: "h", DataDir: dir, Timing: fast})
}

// TestEmbeddedProcesses: a second process on the same data dir waits
// PASSIVE and takes over when the first exits, and again when it is killed.
func TestEmbeddedProcesses(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	a := embeddedChild(t, dir, "a")
	ea := atoi64(t, a.expect(t, "ACTIVE", 10*time.Second)[1])
	b := embeddedChild(t, dir, "b")
	b.expect(t, "RUNNING", 10*time.Second)

	l, err := NewEmbedded(EmbeddedOptions{DataDir: dir, InstanceID: "doctor", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.Inspect(context.Background())
	if err != nil || st.LockStatus != HeldByOther || st.Holder.InstanceID != "a" || st.Holder.PID != a.cmd.Process.Pid || st.Epoch != ea {
		t.Fatalf("Inspect while a holds: %+v %v", st, err)
	}
	select {
	case l := <-b.lines:
		t.Fatalf("second process printed %q while the first holds the lock", l)
	case <-time.After(3 * fast.Retry):
	}
	a.stop(t) // graceful exit
	eb := atoi64(t, b.expect(t, "ACTIVE", 2*time.Second)[1])
	if eb != ea+1 {
		t.Fatalf("epoch %d after %d", eb, ea)
	}
	c := embeddedChild(t, dir, "c")
	c.expect(t, "RUNNING", 10*time.Second)
	b.kill9(t)
	if ec := atoi64(t, c.expect(t, "ACTIVE", 2*time.Second)[1]); ec != eb+1 {
		t.Fatalf("epoch %d after %d", ec, eb)
	}
	fi, err := os.Stat(filepath.Join(dir, HolderFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("holder file mode %v, %v", fi.Mode(), err)
	}
	c.stop(t)
	if st, _ := l.Inspect(context.Background()); st.LockStatus != NotHeld {
		t.Fatalf("after every holder exited: %+v", st)
	}
}

// TestEmbeddedInProcess: two Locks in one process exclude each other too
// (flock is per open file), and deleting the lock file steps the holder down.
func TestEmbeddedInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := newTenures()
	wa, wb := newWatcher("a", rec), newWatcher("b", rec)
	mk := func(name string, w *watcher) *Embedded {
		l, err := NewEmbedded(EmbeddedOptions{DataDir: dir, InstanceID: name, Host: "h", Poll: 50 * time.Millisecond,
			Logger: testLogger(t), Callbacks: w.callbacks()})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	la, lb := mk("a", wa), mk("b", wb)
	stopA := runLock(t, la)
	wa.waitActive(t, time.Second)
	runLock(t, lb)
	wb.assertNoActive(t, 300*time.Millisecond)
	if st := lb.Status(); st.LockStatus != HeldByOther || st.WAMode != Passive || st.Holder.InstanceID != "a" {
		t.Fatalf("b status %+v", st)
	}
	if ep, ok := la.Fence(); !ok || ep < 1 {
		t.Fatalf("Fence %d %v", ep, ok)
	}
	stopA()
	wb.waitActive(t, time.Second)
	// Someone deletes the lock file: the lock no longer protects anything.
	if err := os.Remove(filepath.Join(dir, LockFileName)); err != nil {
		t.Fatal(err)
	}
	wb.waitPassive(t, time.Second)
	wb.waitActive(t, time.Second) // it locks the new file
	rec.check(t)
}
