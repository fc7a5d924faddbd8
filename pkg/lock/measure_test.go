package lock

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
)

var measure = flag.Bool("lock.measure", false, "run TestMeasure: acquire latency and takeover after kill -9, 20 trials per profile (about 2 minutes)")

var profiles = []struct {
	name string
	t    Timing
}{{"default", DefaultTiming.WithDefaults()}, {"fast", fast}}

// BenchmarkAcquire: from Run to ACTIVE against the emulator, the lease
// having been released by the previous holder (the restart/cutover case).
func BenchmarkAcquire(b *testing.B) {
	for _, p := range profiles {
		b.Run(p.name, func(b *testing.B) {
			c, _ := fsemu.NewClient(b)
			warm(b, c) // JVM warm-up is not acquire latency
			ctx := context.Background()
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				lat = append(lat, acquireOnce(b, ctx, c, fmt.Sprintf("i%d", i%4), p.t))
			}
			b.ReportMetric(float64(median(lat).Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
		})
	}
}

func acquireOnce(tb testing.TB, ctx context.Context, cl *firestore.Client, instance string, tm Timing) time.Duration {
	tb.Helper()
	active := make(chan struct{}, 1)
	l, err := NewFirestore(FirestoreOptions{Client: cl, InstanceID: instance, Host: "bench", Timing: tm,
		Logger: testLogger(tb), Callbacks: Callbacks{OnActive: func(int64) { active <- struct{}{} }}})
	if err != nil {
		tb.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() { _ = l.Run(rctx); close(done) }()
	select {
	case <-active:
	case <-time.After(30 * time.Second):
		tb.Fatal("not ACTIVE in 30 s")
	}
	d := time.Since(start)
	cancel()
	<-done
	return d
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestMeasure prints acquire latency and takeover time after kill -9
// (median and max over 20 trials) for the default and the fast profile.
// Run: go test ./pkg/lock -run TestMeasure -lock.measure -v
func TestMeasure(t *testing.T) {
	if !*measure {
		t.Skip("measurement; run with -lock.measure")
	}
	const trials = 20
	host := fsemu.Host(t)
	for _, p := range profiles {
		c, _ := emuClient(t)
		var acq []time.Duration
		for i := range trials {
			acq = append(acq, acquireOnce(t, context.Background(), c, fmt.Sprintf("i%d", i%4), p.t))
		}
		// Takeover trials run 10 at a time, each on its own project: the
		// time is dominated by the TTL, not by load.
		var mu sync.Mutex
		var take []time.Duration
		for batch := 0; batch < trials; batch += 10 {
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					d := takeoverOnce(t, host, p.t)
					mu.Lock()
					take = append(take, d)
					mu.Unlock()
				})
			}
			wg.Wait()
		}
		t.Logf("profile %-7s (TTL %s renew %s margin %s retry %s): acquire median %s max %s; takeover after kill -9 median %s max %s (n=%d)",
			p.name, p.t.TTL, p.t.Renew, p.t.SafetyMargin, p.t.Retry,
			median(acq).Round(100*time.Microsecond), slices.Max(acq).Round(100*time.Microsecond),
			median(take).Round(time.Millisecond), slices.Max(take).Round(time.Millisecond), len(take))
	}
}

func takeoverOnce(t *testing.T, host string, tm Timing) time.Duration {
	c, project := emuClient(t)
	cfg := childBase(host, project)
	cfg.Mode, cfg.Instance, cfg.Host, cfg.DataDir, cfg.Timing = "firestore", "victim", "h", filepath.Join(t.TempDir(), "v"), tm
	p := startChild(t, cfg)
	p.expect(t, "ACTIVE", 30*time.Second)
	w := newWatcher("heir", nil)
	runLock(t, newFS(t, c, "heir", w, func(o *FirestoreOptions) { o.Timing = tm }))
	time.Sleep(tm.Renew + tm.Retry) // heir is PASSIVE and polling; the holder renewed at least once
	killed := time.Now()
	p.kill9(t)
	w.waitActive(t, tm.TTL+tm.Retry+5*time.Second)
	return time.Since(killed)
}
