package latency

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// phase is one measured run: when each message left, and when it arrived.
type phase struct {
	mu    sync.Mutex
	start map[string]time.Time
	lat   []time.Duration
	span  time.Duration
}

func newPhase() *phase { return &phase{start: map[string]time.Time{}} }

func (p *phase) began(id string, at time.Time) {
	p.mu.Lock()
	p.start[id] = at
	p.mu.Unlock()
}

// collect matches arrivals with starts; the ids never seen are the loss.
func (p *phase) collect(seen func(id string) (time.Time, bool)) (lost int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lat = p.lat[:0]
	for id, t0 := range p.start {
		t1, ok := seen(id)
		if !ok {
			lost++
			continue
		}
		p.lat = append(p.lat, max(t1.Sub(t0), 0))
	}
	sort.Slice(p.lat, func(i, j int) bool { return p.lat[i] < p.lat[j] })
	return lost
}

func (p *phase) q(f float64) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	i := int(f*float64(len(p.lat))+0.5) - 1
	return p.lat[min(max(i, 0), len(p.lat)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// rateSpec is one rate and how long to hold it.
type rateSpec struct {
	perSec float64
	secs   float64
}

// rates reads WACTL_BENCH_RATES ("rate:seconds,…"); default 1 msg/s for
// 20 s (one message per account), 100 for 5 s, 1,000 for 2 s: short, so
// the shared machine is not held for long.
func rates() []rateSpec {
	v := os.Getenv("WACTL_BENCH_RATES")
	if v == "" {
		v = "1:20,100:5,1000:2"
	}
	var out []rateSpec
	for _, f := range strings.Split(v, ",") {
		r, s, _ := strings.Cut(f, ":")
		rv, err1 := strconv.ParseFloat(r, 64)
		sv, err2 := strconv.ParseFloat(s, 64)
		if err1 != nil || err2 != nil || rv <= 0 || sv <= 0 {
			panic("WACTL_BENCH_RATES: want rate:seconds,… got " + v)
		}
		out = append(out, rateSpec{rv, sv})
	}
	return out
}

// pace calls send for message k of total at start + k/rate, spread
// round-robin over workers (one per account, so one account's messages
// keep their order); it returns the time the last one left. send gets the
// time message k was due: every phase starts its clock there, so a sender
// that falls behind (a bare writer waiting for its previous write) counts
// its backlog as wactl's per-account queue counts in wactl's figure.
func pace(r rateSpec, workers int, send func(worker, k int, due time.Time)) time.Duration {
	total := max(int(r.perSec*r.secs), workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < total; k += workers {
				at := start.Add(time.Duration(float64(k) / r.perSec * float64(time.Second)))
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				send(w, k, at)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func (p *phase) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.start))
	for id := range p.start {
		out = append(out, id)
	}
	return out
}

// syncMap is a sync.Map of message id → time.
type syncMap = sync.Map
