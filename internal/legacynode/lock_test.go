package legacynode_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/lock"
)

func TestMain(m *testing.M) {
	child.Run() // serve_test.go re-executes this binary as wactl
	os.Exit(fsemu.Main(m))
}

// scale makes the old service's 90/30/15 s into 1.8/0.6/0.3 s.
const scale = 0.02

// wactlTiming is the default profile at a tenth.
var wactlTiming = lock.Timing{TTL: 2 * time.Second, Renew: 500 * time.Millisecond, SafetyMargin: 500 * time.Millisecond,
	Retry: 200 * time.Millisecond, CallTimeout: time.Second}

// span is one ACTIVE period.
type span struct {
	who        string
	start, end time.Time
}

type recorder struct {
	mu   sync.Mutex
	list []span
	open map[string]int
}

func newRecorder() *recorder { return &recorder{open: map[string]int{}} }

func (r *recorder) on(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[who] = len(r.list)
	r.list = append(r.list, span{who: who, start: time.Now()})
}

func (r *recorder) off(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.open[who]; ok {
		r.list[i].end = time.Now()
		delete(r.open, who)
	}
}

func (r *recorder) isActive(who string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.open[who]
	return ok
}

// overlaps returns every instant two processes were ACTIVE together.
func (r *recorder) overlaps() []string {
	r.mu.Lock()
	list := append([]span(nil), r.list...)
	r.mu.Unlock()
	now := time.Now()
	for i := range list {
		if list[i].end.IsZero() {
			list[i].end = now
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].start.Before(list[j].start) })
	var out []string
	for i := range list {
		for j := i + 1; j < len(list) && list[j].start.Before(list[i].end); j++ {
			if list[j].who != list[i].who {
				out = append(out, list[i].who+" and "+list[j].who+" ACTIVE together for "+
					list[i].end.Sub(list[j].start).Round(time.Millisecond).String())
			}
		}
	}
	return out
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run starts f until the returned stop is called (or the test ends).
func run(t *testing.T, f func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func startNode(t *testing.T, c *gfs.Client, id, name string, rec *recorder) (*legacynode.Lock, func()) {
	t.Helper()
	n, err := legacynode.NewLock(legacynode.LockOptions{Client: c, InstanceID: id, Scale: scale,
		OnActive: func() { rec.on(name) }, OnPassive: func(string) { rec.off(name) }})
	if err != nil {
		t.Fatal(err)
	}
	return n, run(t, n.Run)
}

func startWactl(t *testing.T, c *gfs.Client, id, dataDir, name string, rec *recorder) (*lock.Firestore, func()) {
	t.Helper()
	l, err := lock.NewFirestore(lock.FirestoreOptions{Client: c, InstanceID: id, Host: "vm", DataDir: dataDir,
		Timing: wactlTiming, Logger: slog.New(slog.DiscardHandler),
		Callbacks: lock.Callbacks{OnActive: func(int64) { rec.on(name) }, OnPassive: func(string) { rec.off(name) }}})
	if err != nil {
		t.Fatal(err)
	}
	return l, run(t, l.Run)
}

func warm(t *testing.T) *gfs.Client {
	c, _ := fsemu.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _ = c.Doc("warmup/x").Get(ctx)
	return c
}

// TestNodeFirstSameID: the old service holds the lease under the instance
// id wactl also uses; wactl waits until the old lease runs out after the
// old service stops (it does not delete it), and never before.
func TestNodeFirstSameID(t *testing.T) {
	t.Parallel()
	c := warm(t)
	rec := newRecorder()
	node, stopNode := startNode(t, c, "vm", "node", rec)
	waitFor(t, 5*time.Second, "node ACTIVE", node.Active)
	w, _ := startWactl(t, c, "vm", filepath.Join(t.TempDir(), "data"), "wactl", rec)
	time.Sleep(3 * node.Renew()) // several renewals of each
	if rec.isActive("wactl") {
		t.Fatalf("wactl ACTIVE beside the old service: %+v", w.Status())
	}
	if st := w.Status(); st.LockStatus != lock.HeldByOther || st.Holder != (lock.Holder{InstanceID: "vm"}) || st.Conflict == "" {
		t.Fatalf("wactl status while the old service holds: %+v", st)
	}
	stopNode()
	stopped := time.Now()
	waitFor(t, node.Lease()+3*time.Second, "wactl ACTIVE after the old lease ran out", func() bool { return rec.isActive("wactl") })
	if took := time.Since(stopped); took < node.Lease()-node.Renew()-200*time.Millisecond {
		t.Fatalf("wactl took over %s after the old service stopped; its lease is %s", took, node.Lease())
	}
	if o := rec.overlaps(); len(o) > 0 {
		t.Fatal(o)
	}
}

// TestNodeTookOverCrashedWactlSameID reproduces issue 15.1: a wactl holder
// dies (its fields stay in the document), the old service with the same
// instance id takes the expired lease over with a merge update, and wactl
// restarts on the same host and data dir. It used to "reclaim the lease of
// an earlier process of this instance" while the old service was ACTIVE.
func TestNodeTookOverCrashedWactlSameID(t *testing.T) {
	t.Parallel()
	c := warm(t)
	ctx := context.Background()
	rec := newRecorder()
	dataDir := filepath.Join(t.TempDir(), "data")
	_, stopFirst := startWactl(t, c, "vm", dataDir, "wactl-1", rec)
	waitFor(t, 10*time.Second, "first wactl ACTIVE", func() bool { return rec.isActive("wactl-1") })
	crashed, err := c.Doc(legacynode.DocPath).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopFirst()
	// What kill -9 leaves: the document as the dead holder last wrote it.
	if _, err := c.Doc(legacynode.DocPath).Set(ctx, crashed.Data()); err != nil {
		t.Fatal(err)
	}
	rec.off("wactl-1")
	node, _ := startNode(t, c, "vm", "node", rec)
	waitFor(t, 5*time.Second, "old service ACTIVE after the dead wactl's lease expired", node.Active)
	d, _ := c.Doc(legacynode.DocPath).Get(ctx)
	if d.Data()["holderSession"] == nil {
		t.Fatalf("the old service's merge should have left wactl's fields: %v", d.Data())
	}
	w, _ := startWactl(t, c, "vm", dataDir, "wactl-2", rec)
	time.Sleep(3 * node.Renew())
	if rec.isActive("wactl-2") {
		t.Fatalf("restarted wactl reclaimed the old service's lease: %v", rec.overlaps())
	}
	if st := w.Status(); st.Holder.PID != 0 || st.Holder.Host != "" {
		t.Fatalf("status names the dead wactl process as the holder: %+v", st.Holder)
	}
	if o := rec.overlaps(); len(o) > 0 {
		t.Fatal(o)
	}
}

// TestWactlFirstOtherID: with different ids (the shipped unit's default)
// the old service started beside an ACTIVE wactl waits, and takes over only
// after wactl stopped.
func TestWactlFirstOtherID(t *testing.T) {
	t.Parallel()
	c := warm(t)
	rec := newRecorder()
	_, stopW := startWactl(t, c, "wactl-vm", filepath.Join(t.TempDir(), "data"), "wactl", rec)
	waitFor(t, 10*time.Second, "wactl ACTIVE", func() bool { return rec.isActive("wactl") })
	node, _ := startNode(t, c, "vm", "node", rec)
	time.Sleep(3 * node.Retry())
	if node.Active() {
		t.Fatal("old service ACTIVE beside wactl")
	}
	stopW() // releases: expired at once, holder fields cleared
	d, _ := c.Doc(legacynode.DocPath).Get(context.Background())
	for _, f := range []string{"holderSession", "holderPid", "holderHost", "holderBinding"} {
		if _, ok := d.Data()[f]; ok {
			t.Fatalf("release left %s: %v", f, d.Data())
		}
	}
	waitFor(t, 2*node.Retry()+2*time.Second, "old service ACTIVE after wactl released", node.Active)
	if o := rec.overlaps(); len(o) > 0 {
		t.Fatal(o)
	}
}

// neverActive samples the old service's own view (its waMode) every 5 ms
// until stop is called and reports every sample at which it was ACTIVE
// while cond held.
func neverActive(node *legacynode.Lock, while func() bool) (stop func() (hits int)) {
	done := make(chan struct{})
	res := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				res <- n
				return
			case <-time.After(5 * time.Millisecond):
			}
			if while() && node.Active() {
				n++
			}
		}
	}()
	var once sync.Once
	hits := 0
	return func() int { once.Do(func() { close(done); hits = <-res }); return hits }
}

// TestSameIDNeverTwoActive is issue 15.1's last order: wactl and the old
// service with ONE instance id. The old service "extends" any lease whose
// holderInstanceId equals its own INSTANCE_ID; wactl used to write its bare
// instance id there, so an old service started beside an ACTIVE wactl went
// ACTIVE at once and wactl stepped down only when its listener saw the
// write (35–423 ms of two ACTIVE). wactl now writes "wactl:<id>", which no
// old-service id can equal. Both orders: whoever is first stays the only
// ACTIVE one, in its own view and in the other's, until it stops; then the
// other takes over (the old service by its own rule: an expired lease,
// written with its own id).
func TestSameIDNeverTwoActive(t *testing.T) {
	t.Parallel()
	t.Run("wactl first", func(t *testing.T) {
		t.Parallel()
		c := warm(t)
		rec := newRecorder()
		w, stopW := startWactl(t, c, "vm", filepath.Join(t.TempDir(), "data"), "wactl", rec)
		waitFor(t, 10*time.Second, "wactl ACTIVE", func() bool { return rec.isActive("wactl") })
		node, _ := startNode(t, c, "vm", "node", rec)
		stopSampling := neverActive(node, func() bool { return rec.isActive("wactl") })
		time.Sleep(3*node.Renew() + node.Retry())
		if hits := stopSampling(); hits > 0 || node.Active() {
			t.Fatalf("the old service was ACTIVE (its own view) in %d samples while wactl held the lease; overlaps %v", hits, rec.overlaps())
		}
		if !rec.isActive("wactl") {
			t.Fatalf("wactl lost its lease to the old service: %+v", w.Status())
		}
		d, err := c.Doc(legacynode.DocPath).Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if h := d.Data()["holderInstanceId"]; h != "wactl:vm" {
			t.Fatalf("holderInstanceId %v, want wactl:vm", h)
		}
		if st := w.Status(); st.LockStatus != lock.HeldByThisInstance || st.Holder.InstanceID != "wactl:vm" || st.InstanceID != "vm" {
			t.Fatalf("wactl status: %+v", st)
		}
		stopW() // releases: the old service takes the expired lease with its own id
		waitFor(t, 2*node.Retry()+3*time.Second, "old service ACTIVE after wactl released", node.Active)
		d, _ = c.Doc(legacynode.DocPath).Get(context.Background())
		if d.Data()["holderInstanceId"] != "vm" || d.Data()["previousHolder"] != "wactl:vm" {
			t.Fatalf("after the old service's takeover: %v", d.Data())
		}
		if o := rec.overlaps(); len(o) > 0 {
			t.Fatal(o)
		}
	})
	t.Run("old service first", func(t *testing.T) {
		t.Parallel()
		c := warm(t)
		rec := newRecorder()
		node, stopNode := startNode(t, c, "vm", "node", rec)
		waitFor(t, 5*time.Second, "old service ACTIVE", node.Active)
		w, _ := startWactl(t, c, "vm", filepath.Join(t.TempDir(), "data"), "wactl", rec)
		time.Sleep(3 * node.Renew())
		if rec.isActive("wactl") || !node.Active() {
			t.Fatalf("wactl ACTIVE beside the old service: %v %+v", rec.overlaps(), w.Status())
		}
		if st := w.Status(); st.LockStatus != lock.HeldByOther || st.Holder.InstanceID != "vm" {
			t.Fatalf("wactl status while the old service holds: %+v", st)
		}
		stopNode() // leaves its lease to run out
		waitFor(t, node.Lease()+3*time.Second, "wactl ACTIVE after the old lease ran out", func() bool { return rec.isActive("wactl") })
		// The old service restarted beside the new holder stays PASSIVE.
		node2, _ := startNode(t, c, "vm", "node-2", rec)
		stopSampling := neverActive(node2, func() bool { return rec.isActive("wactl") })
		time.Sleep(3*node2.Renew() + node2.Retry())
		if hits := stopSampling(); hits > 0 || node2.Active() || !rec.isActive("wactl") {
			t.Fatalf("restarted old service ACTIVE in %d samples; overlaps %v", hits, rec.overlaps())
		}
		if o := rec.overlaps(); len(o) > 0 {
			t.Fatal(o)
		}
	})
}
