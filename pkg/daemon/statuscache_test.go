package daemon

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cachedHandler serves status through the snapshot cache with a fake clock.
func cachedHandler(t *testing.T, status StatusFunc, version func() uint64) (http.Handler, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)}
	h := NewHandler(HandlerOptions{Status: status, StatusMaxAge: StatusMaxAge, StatusVersion: version, Now: clock.Now})
	return h, clock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func get(h http.Handler, path, rid string) (int, string) {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:1234" // local: may read the dashboard
	if rid != "" {
		req.Header.Set("X-Request-ID", rid)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// Issue 21 item 3: with 200 accounts /health and the dashboard rebuilt the
// whole status on every request. Served from the snapshot, a burst of
// requests builds it once, and each answer is byte for byte what the
// uncached handler answers for the same status, with its own request id.
func TestStatusSnapshotServesBurstFromOneBuild(t *testing.T) {
	var builds atomic.Int64
	status := func() Status { builds.Add(1); return manyAccounts(200) }
	h, _ := cachedHandler(t, status, nil)
	plain := NewHandler(HandlerOptions{Status: func() Status { return manyAccounts(200) }})
	for _, path := range []string{"/health", "/api/status/dashboard", "/api/status/dashboard?view=flat"} {
		for i := 0; i < 50; i++ {
			rid := "req-" + strings.Repeat("x", i%3) + "<&>\"" // escaped like encoding/json does
			code, body := get(h, path, rid)
			wantCode, want := get(plain, path, rid)
			if code != wantCode || body != want {
				t.Fatalf("%s: cached answer differs from the uncached one:\n%d %s\n%d %s", path, code, body, wantCode, want)
			}
		}
	}
	if n := builds.Load(); n != 1 {
		t.Fatalf("150 requests within %s built the status %d times, want 1", StatusMaxAge, n)
	}
}

// The snapshot is never older than StatusMaxAge, and an account state
// change (a new version) shows at the very next request.
func TestStatusSnapshotBoundAndVersion(t *testing.T) {
	var mu sync.Mutex
	st := sampleStatus()
	var version atomic.Uint64
	var builds atomic.Int64
	status := func() Status { builds.Add(1); mu.Lock(); defer mu.Unlock(); return st }
	h, clock := cachedHandler(t, status, version.Load)
	set := func(f func(*Status)) { mu.Lock(); f(&st); mu.Unlock() }

	if _, body := get(h, "/health", ""); !strings.Contains(body, `"connected":2`) {
		t.Fatalf("first answer: %s", body)
	}
	// A change that is not announced shows once the snapshot is too old,
	// never later.
	set(func(s *Status) { s.StoreReachable = false; s.StoreError = "down" })
	clock.Add(StatusMaxAge - time.Millisecond)
	if _, body := get(h, "/health", ""); strings.Contains(body, "store unreachable") {
		t.Fatal("rebuilt before the bound although nothing announced a change")
	}
	clock.Add(time.Millisecond)
	if _, body := get(h, "/health", ""); !strings.Contains(body, "store unreachable: down") {
		t.Fatalf("snapshot older than %s served: %s", StatusMaxAge, body)
	}
	// An account state change announced by a version shows at once.
	set(func(s *Status) { s.Accounts[1].State = "connected" })
	version.Add(1)
	if _, body := get(h, "/health", ""); !strings.Contains(body, `"connected":3`) {
		t.Fatalf("state change not shown at the next request: %s", body)
	}
	_, dash := get(h, "/api/status/dashboard", "")
	if !strings.Contains(dash, `"connected":3`) {
		t.Fatalf("dashboard: %s", dash)
	}
	if n := builds.Load(); n != 3 {
		t.Fatalf("built %d times, want 3", n)
	}
}

// Concurrent requests around rebuilds never mix bodies or ids.
func TestStatusSnapshotConcurrent(t *testing.T) {
	var version atomic.Uint64
	h, clock := cachedHandler(t, func() Status { return manyAccounts(20) }, version.Load)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				rid := "r" + string(rune('a'+g)) + "-" + string(rune('a'+i%26))
				path := "/health"
				if i%5 == 0 {
					path = "/api/status/dashboard"
				}
				if i%7 == 0 {
					version.Add(1)
					clock.Add(time.Millisecond)
				}
				code, body := get(h, path, rid)
				if code != 200 || !strings.Contains(body, `"requestId":"`+rid+`"`) || !strings.HasSuffix(body, "}\n") {
					t.Errorf("%s: %d %q", path, code, body)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// manyAccounts is sampleStatus with n connected accounts.
func manyAccounts(n int) Status {
	s := sampleStatus()
	base := s.Accounts[0]
	s.Accounts = make([]AccountStatus, n)
	for i := range s.Accounts {
		a := base
		a.ID = "account_" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
		a.LastEventAt = s.Now.Add(-time.Duration(i) * time.Second)
		a.Counters = Counters{DedupeWrote: int64(i)}
		s.Accounts[i] = a
	}
	return s
}

// BenchmarkStatusRoutes200 compares /health and the dashboard with 200
// accounts, cached and built per request, against a bare handler writing
// a fixed body, in the same run (in process, no network: the handlers'
// own cost). The StatusFunc builds a fresh snapshot per call, as the
// daemon's does.
func BenchmarkStatusRoutes200(b *testing.B) {
	status := func() Status { return manyAccounts(200) }
	bareBody := []byte(`{"ok":true}` + "\n")
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bareBody)
	})
	cached := NewHandler(HandlerOptions{Status: status, StatusMaxAge: StatusMaxAge})
	uncached := NewHandler(HandlerOptions{Status: status})
	run := func(b *testing.B, h http.Handler, path string, hdr ...string) {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:1"
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			req.Header = make(http.Header, 1) // a fresh request's, as net/http gives
			for j := 0; j+1 < len(hdr); j += 2 {
				req.Header[hdr[j]] = hdr[j+1 : j+2]
			}
			w := &discardWriter{h: make(http.Header)}
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK || w.n == 0 {
				b.Fatalf("%s: answer %d, %d bytes", path, w.code, w.n)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, bare, "/") })
	b.Run("health/cached", func(b *testing.B) { run(b, cached, "/health") })
	b.Run("health/per-request", func(b *testing.B) { run(b, uncached, "/health") })
	b.Run("dashboard/cached", func(b *testing.B) { run(b, cached, "/api/status/dashboard") })
	b.Run("dashboard/per-request", func(b *testing.B) { run(b, uncached, "/api/status/dashboard") })
	// Accept-Encoding: gzip (statusgzip.go): from the snapshot, and with
	// the compression of each new snapshot included.
	b.Run("dashboard-gzip/cached", func(b *testing.B) {
		run(b, cached, "/api/status/dashboard", "Accept-Encoding", "gzip")
	})
	b.Run("dashboard-gzip/per-request", func(b *testing.B) {
		run(b, uncached, "/api/status/dashboard", "Accept-Encoding", "gzip")
	})
}
