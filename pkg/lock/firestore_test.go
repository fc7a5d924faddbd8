package lock

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
)

func newFS(t *testing.T, c *firestore.Client, instance string, w *watcher, mod func(*FirestoreOptions)) *Firestore {
	t.Helper()
	o := FirestoreOptions{Client: c, InstanceID: instance, Host: "host-" + instance, DataDir: filepath.Join(t.TempDir(), instance),
		Timing: fast, Logger: testLogger(t), Callbacks: w.callbacks()}
	if mod != nil {
		mod(&o)
	}
	l, err := NewFirestore(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func leaseDoc(t *testing.T, c *firestore.Client) map[string]any {
	t.Helper()
	s, err := c.Doc(DefaultDocPath).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Data()
}

// assertNodeFields checks the fields the Node service reads keep its
// types, and that the holder is instance in wactl's form ("wactl:<id>"),
// which no old service's INSTANCE_ID can take for its own.
func assertNodeFields(t *testing.T, d map[string]any, instance string) {
	t.Helper()
	if want := "wactl:" + instance; d[fHolder] != want {
		t.Fatalf("holderInstanceId = %v, want %s", d[fHolder], want)
	}
	if _, ok := d[fLeaseUntil].(int64); !ok {
		t.Fatalf("leaseUntil is %T, want an integer number of ms", d[fLeaseUntil])
	}
	for _, f := range []string{fAcquiredAt, fUpdatedAt} {
		if _, ok := d[f].(time.Time); !ok {
			t.Fatalf("%s is %T, want a timestamp", f, d[f])
		}
	}
	if _, ok := d[fPreviousHolder]; !ok {
		t.Fatalf("previousHolder missing")
	}
}

func TestAcquireRenewRelease(t *testing.T) {
	t.Run("with data dir", func(t *testing.T) { testAcquireRenewRelease(t, true) })
	t.Run("without data dir", func(t *testing.T) { testAcquireRenewRelease(t, false) })
}

func testAcquireRenewRelease(t *testing.T, withDir bool) {
	t.Parallel()
	c, _ := emuClient(t)
	w := newWatcher("a", nil)
	l := newFS(t, c, "a", w, func(o *FirestoreOptions) {
		if !withDir {
			o.DataDir = ""
		}
	})
	stop := runLock(t, l)
	e := w.waitActive(t, 5*time.Second)
	if ep, ok := l.Fence(); !ok || ep != e {
		t.Fatalf("Fence = %d,%v want %d,true", ep, ok, e)
	}
	d := leaseDoc(t, c)
	assertNodeFields(t, d, "a")
	first := d[fLeaseUntil].(int64)
	time.Sleep(3 * fast.Renew)
	d = leaseDoc(t, c)
	if d[fLeaseUntil].(int64) <= first || d[fEpoch].(int64) != e {
		t.Fatalf("not renewed with the same epoch: leaseUntil %v→%v epoch %v", first, d[fLeaseUntil], d[fEpoch])
	}
	st := l.Status()
	if st.LockStatus != HeldByThisInstance || st.WAMode != Active || st.Epoch != e || st.RemainingSec <= 0 || st.RemainingSec > fast.TTL.Seconds() {
		t.Fatalf("status %+v", st)
	}
	stop()
	if r := w.waitPassive(t, time.Second); r != "shutdown" {
		t.Fatalf("passive reason %q", r)
	}
	d = leaseDoc(t, c)
	if d[fEpoch].(int64) != e || d[fHolder] != "wactl:a" {
		t.Fatalf("release changed holder/epoch: %v", d)
	}
	// Released = expired on Firestore's clock: another takes over at once.
	w2 := newWatcher("b", nil)
	l2 := newFS(t, c, "b", w2, nil)
	runLock(t, l2)
	if e2 := w2.waitActive(t, time.Second); e2 != e+1 {
		t.Fatalf("epoch after release %d, want %d", e2, e+1)
	}
	assertNodeFields(t, leaseDoc(t, c), "b")
	if p := leaseDoc(t, c)[fPreviousHolder]; p != "wactl:a" {
		t.Fatalf("previousHolder %v", p)
	}
}

// TestNodeFormatLease: a lease written by the old Node service.
func TestNodeFormatLease(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	ctx := context.Background()
	until := time.Now().Add(2500 * time.Millisecond).UnixMilli()
	if _, err := c.Doc(DefaultDocPath).Set(ctx, map[string]any{fHolder: "node-7f3a", fLeaseUntil: until,
		fAcquiredAt: time.Now(), fUpdatedAt: time.Now(), fPreviousHolder: nil}); err != nil {
		t.Fatal(err)
	}
	w := newWatcher("wactl", nil)
	l := newFS(t, c, "wactl", w, nil)
	runLock(t, l)
	w.assertNoActive(t, 1500*time.Millisecond)
	st := l.Status()
	if st.LockStatus != HeldByOther || st.Holder.InstanceID != "node-7f3a" || st.WAMode != Passive || st.RemainingSec <= 0 {
		t.Fatalf("status while Node holds: %+v", st)
	}
	w.waitActive(t, 3*time.Second)
	if now := time.Now().UnixMilli(); now < until {
		t.Fatalf("took over %d ms before the Node lease expired", until-now)
	}
	d := leaseDoc(t, c)
	assertNodeFields(t, d, "wactl")
	if d[fPreviousHolder] != "node-7f3a" {
		t.Fatalf("previousHolder %v", d[fPreviousHolder])
	}
	if left := d[fLeaseUntil].(int64) - time.Now().UnixMilli(); left <= 0 || left > fast.TTL.Milliseconds() {
		t.Fatalf("leaseUntil %d ms ahead, want within the TTL", left)
	}
}

// TestGarbageLease: unreadable documents are "unknown", never stolen while
// someone keeps writing them, taken over once nobody has for GarbageGrace.
func TestGarbageLease(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	ctx := context.Background()
	ref := c.Doc(DefaultDocPath)
	n := 0
	write := func() {
		n++ // an identical rewrite would not change the document's update time
		if _, err := ref.Set(ctx, map[string]any{fHolder: int64(42), fLeaseUntil: "tomorrow", fEpoch: "x", "n": n}); err != nil {
			t.Log(err)
		}
	}
	write()
	grace := 3 * time.Second
	w := newWatcher("a", nil)
	l := newFS(t, c, "a", w, func(o *FirestoreOptions) { o.Timing.GarbageGrace = grace })
	runLock(t, l)
	// A live (if broken) writer rewrites it every second: never stolen.
	stopWriter := make(chan struct{})
	var once sync.Once
	stopIt := func() { once.Do(func() { close(stopWriter) }) }
	t.Cleanup(stopIt)
	go func() {
		for {
			select {
			case <-stopWriter:
				return
			case <-time.After(time.Second):
				write()
			}
		}
	}()
	w.assertNoActive(t, grace+time.Second)
	if st := l.Status(); st.LockStatus != Unknown || st.WAMode != Passive || !strings.Contains(st.Conflict, "unreadable") {
		t.Fatalf("status %+v", st)
	}
	stopIt()
	stoppedAt := time.Now()
	e := w.waitActive(t, grace+2*time.Second)
	if since := time.Since(stoppedAt); since < grace-time.Second {
		t.Fatalf("taken over %s after the last write, grace is %s", since, grace)
	}
	if e < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("epoch %d after an unreadable epoch must jump past any +1 sequence", e)
	}
	assertNodeFields(t, leaseDoc(t, c), "a")
}

// TestSameInstanceOtherHost: two hosts configured with one instance id.
func TestSameInstanceOtherHost(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	wa := newWatcher("a@host1", nil)
	la := newFS(t, c, "same", wa, func(o *FirestoreOptions) { o.Host = "host1" })
	runLock(t, la)
	wa.waitActive(t, 5*time.Second)
	wb := newWatcher("a@host2", nil)
	lb := newFS(t, c, "same", wb, func(o *FirestoreOptions) { o.Host = "host2" })
	runLock(t, lb)
	wb.assertNoActive(t, 2*fast.TTL)
	st := lb.Status()
	if st.WAMode != Passive || !strings.Contains(st.Conflict, "host1") || !strings.Contains(st.Conflict, "instance id") {
		t.Fatalf("duplicate instance id not reported: %+v", st)
	}
	if ist, err := lb.Inspect(context.Background()); err != nil || ist.LockStatus != HeldByOther || ist.Conflict == "" {
		t.Fatalf("Inspect from the other host: %+v %v", ist, err)
	}
}

// TestSkewedClocks: wall clocks 30 s fast or slow change nothing.
func TestSkewedClocks(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	rec := newTenures()
	wa, wb := newWatcher("slow", rec), newWatcher("fast", rec)
	la := newFS(t, c, "slow", wa, func(o *FirestoreOptions) { o.Clock = &testClock{skew: -30 * time.Second} })
	lb := newFS(t, c, "fast", wb, func(o *FirestoreOptions) { o.Clock = &testClock{skew: 30 * time.Second} })
	runLock(t, la)
	ea := wa.waitActive(t, 5*time.Second)
	runLock(t, lb)
	wb.assertNoActive(t, 2*fast.TTL) // a +30 s clock does not steal a live lease
	// An intruder takes the lease with a newer epoch (as after a partition).
	ctx := context.Background()
	snap, err := c.Doc(DefaultDocPath).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	until := snap.ReadTime.Add(3 * time.Second).UnixMilli()
	if _, err := c.Doc(DefaultDocPath).Update(ctx, []firestore.Update{{Path: fHolder, Value: "intruder"},
		{Path: fEpoch, Value: ea + 1}, {Path: fSession, Value: "x"}, {Path: fLeaseUntil, Value: until}},
		firestore.LastUpdateTime(snap.UpdateTime)); err != nil {
		t.Skipf("the holder renewed in between; rerun (%v)", err)
	}
	// The intruder ignores the protocol (it writes over a live lease), so
	// it is not a tenure: the point is how fast the holder notices.
	// A −30 s clock does not keep a lost lease: it steps down at its next renewal.
	if r := wa.waitPassive(t, fast.Renew+fast.CallTimeout); !strings.Contains(r, "lost") {
		t.Fatalf("slow-clock holder stepped down for %q", r)
	}
	var got int64
	select {
	case got = <-wa.actives:
	case got = <-wb.actives:
	case <-time.After(4 * time.Second):
		t.Fatal("nobody took over after the intruder's lease expired")
	}
	if got != ea+2 {
		t.Fatalf("epoch after intruder %d, want %d", got, ea+2)
	}
	time.Sleep(fast.TTL)
	rec.check(t)
	if n := rec.activeCount(); n != 1 {
		t.Fatalf("%d active", n)
	}
}

// TestMonotonicJump: a holder whose monotonic clock jumps past its deadline
// (a paused process) steps down without waiting for any Firestore call, then
// renews its own lease with the same epoch.
func TestMonotonicJump(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	clk := &testClock{}
	w := newWatcher("a", nil)
	l := newFS(t, c, "a", w, func(o *FirestoreOptions) { o.Clock = clk; o.Timing = DefaultTiming.WithDefaults() })
	runLock(t, l)
	e := w.waitActive(t, 5*time.Second)
	clk.jump.Add(int64(DefaultTiming.TTL))
	if r := w.waitPassive(t, time.Second); !strings.Contains(r, "not confirmed") {
		t.Fatalf("reason %q", r)
	}
	if e2 := w.waitActive(t, 3*time.Second); e2 != e {
		t.Fatalf("re-activated with epoch %d, want own %d", e2, e)
	}
}

// TestStreamReplaced: evidence from WhatsApp makes the holder re-check at once.
func TestStreamReplaced(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	w := newWatcher("a", nil)
	l := newFS(t, c, "a", w, func(o *FirestoreOptions) { o.Timing = DefaultTiming.WithDefaults() })
	runLock(t, l)
	e := w.waitActive(t, 5*time.Second)
	ctx := context.Background()
	if err := fsemu.Write(ctx, func(ctx context.Context) error {
		_, err := c.Doc(DefaultDocPath).Update(ctx, []firestore.Update{{Path: fHolder, Value: "other"},
			{Path: fEpoch, Value: e + 1}, {Path: fSession, Value: "x"}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l.StreamReplaced("conflict type=replaced")
	if r := w.waitPassive(t, 2*time.Second); !strings.Contains(r, "lost") { // renewals are 5 s apart
		t.Fatalf("reason %q", r)
	}
}

func TestInspectReadOnly(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	w := newWatcher("a", nil)
	holder := newFS(t, c, "a", w, nil)
	doctor := newFS(t, c, "a", newWatcher("doctor", nil), func(o *FirestoreOptions) { o.Host = "host-a" })
	ctx := context.Background()
	st, err := doctor.Inspect(ctx)
	if err != nil || st.LockStatus != NotHeld {
		t.Fatalf("before: %+v %v", st, err)
	}
	runLock(t, holder)
	e := w.waitActive(t, 5*time.Second)
	before := leaseDoc(t, c)
	st, err = doctor.Inspect(ctx)
	if err != nil || st.LockStatus != HeldByThisInstance || st.Epoch != e || st.WAMode != Passive || st.RemainingSec <= 0 {
		t.Fatalf("doctor beside the holder: %+v %v", st, err)
	}
	other := newFS(t, c, "b", newWatcher("b", nil), nil)
	if st, _ := other.Inspect(ctx); st.LockStatus != HeldByOther || st.Holder.InstanceID != "wactl:a" {
		t.Fatalf("other instance: %+v", st)
	}
	if after := leaseDoc(t, c); after[fEpoch] != before[fEpoch] || after[fHolder] != before[fHolder] {
		t.Fatal("Inspect wrote the lease")
	}
}
