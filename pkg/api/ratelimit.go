package api

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is one token bucket per principal, for mutations only. Keys are
// authenticated principals, never client IPs: the Cloud Functions share a
// few egress IPs (the old per-IP limits put every user in one bucket).
type limiter struct {
	perMin int
	burst  int
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	used time.Time
}

const idleBucket = 10 * time.Minute

func newLimiter(perMin, burst int, now func() time.Time) *limiter {
	return &limiter{perMin: perMin, burst: burst, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key; when none is left it says how long to wait.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l.perMin < 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > idleBucket {
		for k, b := range l.buckets {
			if now.Sub(b.used) > idleBucket {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(rate.Limit(float64(l.perMin)/60), l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	if b.l.AllowN(now, 1) {
		return true, 0
	}
	r := b.l.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	if d == rate.InfDuration {
		d = time.Duration(math.MaxInt32) * time.Second
	}
	return false, d
}

func itoa(n int) string { return strconv.Itoa(n) }
