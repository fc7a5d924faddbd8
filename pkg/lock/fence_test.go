package lock

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
)

// TestFenceAfterLosingLease: a deposed holder's Fence must not report the
// new holder's epoch (issue 15.2): writers fenced with it would pass the
// store's epoch check and overwrite the new holder's documents.
func TestFenceAfterLosingLease(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	w := newWatcher("a", nil)
	l := newFS(t, c, "a", w, func(o *FirestoreOptions) { o.Timing = DefaultTiming.WithDefaults() })
	var inPassive [2]int64
	inner := l.opt.OnPassive
	l.opt.OnPassive = func(r string) {
		e, ok := l.Fence()
		inPassive[0] = e
		if ok {
			inPassive[1] = 1
		}
		inner(r)
	}
	runLock(t, l)
	e := w.waitActive(t, 5*time.Second)
	if ep, ok := l.Fence(); !ok || ep != e {
		t.Fatalf("Fence while holding = %d,%v want %d,true", ep, ok, e)
	}
	// host-b takes the lease (its epoch is newer).
	ctx := context.Background()
	if err := fsemu.Write(ctx, func(ctx context.Context) error {
		_, err := c.Doc(DefaultDocPath).Update(ctx, []firestore.Update{{Path: fHolder, Value: "b"},
			{Path: fEpoch, Value: e + 7}, {Path: fSession, Value: "bbbb"}, {Path: fHost, Value: "host-b"},
			{Path: fLeaseUntil, Value: time.Now().Add(time.Hour).UnixMilli()}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l.StreamReplaced("conflict type=replaced")
	w.waitPassive(t, 3*time.Second)
	if inPassive[0] != 0 || inPassive[1] != 0 {
		t.Fatalf("Fence inside OnPassive = %d,%v: a process stepping down must hold no epoch", inPassive[0], inPassive[1] == 1)
	}
	if ep, ok := l.Fence(); ep != 0 || ok {
		t.Fatalf("Fence after losing the lease = %d,%v; want 0,false (the new holder's epoch is %d)", ep, ok, e+7)
	}
	// The status still shows what the document says.
	if st := l.Status(); st.Epoch != e+7 || st.Holder.InstanceID != "b" {
		t.Fatalf("status %+v", st)
	}
}

// TestFenceAfterDeadline: a holder whose renewal deadline passed (a paused
// process) holds no epoch even before its loop notices.
func TestFenceAfterDeadline(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	w := newWatcher("a", nil)
	clk := &testClock{}
	l := newFS(t, c, "a", w, func(o *FirestoreOptions) { o.Timing = DefaultTiming.WithDefaults(); o.Clock = clk })
	runLock(t, l)
	w.waitActive(t, 5*time.Second)
	clk.jump.Store(int64(time.Hour))
	if ep, ok := l.Fence(); ep != 0 || ok {
		t.Fatalf("Fence past the deadline = %d,%v; want 0,false", ep, ok)
	}
}

// TestEmbeddedFenceWhenPassive: the embedded lock reports no epoch when it
// is not ACTIVE.
func TestEmbeddedFenceWhenPassive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := newWatcher("a", nil)
	l, err := NewEmbedded(EmbeddedOptions{DataDir: filepath.Join(dir, "d"), InstanceID: "a", Host: "h", Poll: 50 * time.Millisecond,
		Logger: testLogger(t), Callbacks: w.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	stop := runLock(t, l)
	e := w.waitActive(t, 2*time.Second)
	if ep, ok := l.Fence(); !ok || ep != e {
		t.Fatalf("Fence = %d,%v want %d,true", ep, ok, e)
	}
	stop()
	if ep, ok := l.Fence(); ep != 0 || ok {
		t.Fatalf("Fence after stopping = %d,%v; want 0,false", ep, ok)
	}
}
