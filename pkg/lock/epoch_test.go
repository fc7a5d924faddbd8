package lock

import (
	"context"
	"testing"
	"time"
)

// TestEpochUniqueAcrossDeletions: the lease document deleted between
// acquisitions (the Node service deletes it on release; an operator may too)
// must not hand two holders one epoch. Each create used to take the read
// time as its epoch, and the emulator gives two reads of an absent document
// the same read time (internal/faulttest saw 1796359266318 twice).
func TestEpochUniqueAcrossDeletions(t *testing.T) {
	c, _ := emuClient(t)
	ctx := context.Background()
	a := newFS(t, c, "epoch-a", newWatcher("a", nil), nil)
	b := newFS(t, c, "epoch-b", newWatcher("b", nil), nil)
	// Every read sees the first read's time, as Firestore may report it
	// when nothing was committed in between.
	var pinned time.Time
	pin := func(rt time.Time) time.Time {
		if pinned.IsZero() {
			pinned = rt
		}
		return pinned
	}
	a.readTimeHook, b.readTimeHook = pin, pin
	del := func() {
		t.Helper()
		if _, err := c.Doc(DefaultDocPath).Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	acquire := func(l *Firestore) int64 {
		t.Helper()
		out := l.attempt(ctx, 10*time.Second, false)
		if out.err != nil || !out.wrote || out.v.Act != actCreate {
			t.Fatalf("%s: act %s wrote %v contended %v err %v, want a create", l.me.InstanceID, out.v.Act, out.wrote, out.contended, out.err)
		}
		if e, _ := leaseDoc(t, c)[fEpoch].(int64); e != out.v.Epoch {
			t.Fatalf("%s: document epoch %d, acquired %d", l.me.InstanceID, e, out.v.Epoch)
		}
		return out.v.Epoch
	}
	del()
	e1 := acquire(a)
	del()
	e2 := acquire(b)
	del()
	e3 := acquire(a)
	t.Logf("epochs %d, %d, %d (read time pinned at %s)", e1, e2, e3, pinned)
	if !(e1 < e2 && e2 < e3) {
		t.Fatalf("epochs %d (a), %d (b), %d (a): want strictly increasing across deletions of the lease document", e1, e2, e3)
	}
}

// TestEpochHighWaterPrecondition: two acquisitions that read the same
// high-water mark cannot both commit, even when the lease document itself
// lets the second one through (deleted again in between).
func TestEpochHighWaterPrecondition(t *testing.T) {
	c, _ := emuClient(t)
	ctx := context.Background()
	a := newFS(t, c, "epoch-a", newWatcher("a", nil), nil)
	b := newFS(t, c, "epoch-b", newWatcher("b", nil), nil)
	if _, err := c.Doc(DefaultDocPath).Delete(ctx); err != nil {
		t.Fatal(err)
	}
	var pinned time.Time
	var eb int64
	// Between a's read and a's write: b acquires, and the lease document
	// is deleted again, so a's create of the lease alone would succeed.
	a.readTimeHook = func(rt time.Time) time.Time {
		if pinned.IsZero() {
			pinned = rt
			b.readTimeHook = func(time.Time) time.Time { return pinned }
			out := b.attempt(ctx, 10*time.Second, false)
			if !out.wrote {
				t.Errorf("b did not acquire: %+v", out)
			}
			eb = out.v.Epoch
			if _, err := c.Doc(DefaultDocPath).Delete(ctx); err != nil {
				t.Error(err)
			}
		}
		return pinned
	}
	out := a.attempt(ctx, 10*time.Second, false)
	if out.wrote || !out.contended {
		t.Fatalf("a committed epoch %d after b committed %d from the same high-water mark (wrote %v, err %v)", out.v.Epoch, eb, out.wrote, out.err)
	}
	out = a.attempt(ctx, 10*time.Second, false)
	if !out.wrote || out.v.Epoch <= eb {
		t.Fatalf("a's next attempt: wrote %v epoch %d, want an epoch above b's %d (err %v)", out.wrote, out.v.Epoch, eb, out.err)
	}
}
