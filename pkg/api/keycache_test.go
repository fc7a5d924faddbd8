package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyKeys serves a keyServer's certificates through a switch: ok, down
// (503) or hanging (the request blocks until the test ends).
type flakyKeys struct {
	ks      *keyServer
	srv     *httptest.Server
	mode    atomic.Value // "ok" | "down" | "hang"
	fetches atomic.Int64
	hanging atomic.Int64
	release chan struct{}
}

func newFlakyKeys(t *testing.T) *flakyKeys {
	f := &flakyKeys{ks: newKeyServer(t), release: make(chan struct{})}
	f.mode.Store("ok")
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.fetches.Add(1)
		switch f.mode.Load() {
		case "down":
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case "hang":
			f.hanging.Add(1)
			select {
			case <-f.release:
			case <-r.Context().Done():
			}
			f.hanging.Add(-1)
			http.Error(w, "gave up", http.StatusServiceUnavailable)
			return
		}
		res, err := http.Get(f.ks.srv.URL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Cache-Control", res.Header.Get("Cache-Control"))
		buf := make([]byte, 64<<10)
		n, _ := res.Body.Read(buf)
		for n > 0 {
			_, _ = w.Write(buf[:n])
			n, _ = res.Body.Read(buf)
		}
	}))
	t.Cleanup(func() {
		close(f.release)
		f.srv.Close()
	})
	return f
}

func (f *flakyKeys) cache(clk *clock) *keyCache {
	return &keyCache{url: f.srv.URL, client: f.srv.Client(), now: clk.Now}
}

// waitIdle waits until no fetch of k is running.
func waitIdle(t *testing.T, k *keyCache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		k.mu.Lock()
		idle := k.inflight == nil
		k.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the key fetch did not end")
}

// Item 4: past max-age with the key URL failing, every request refetched
// (10 fetches for 10 tokens). Now the old keys stay, one fetch runs, and
// failures back off.
func TestKeyCacheKeepsKeysAndBacksOff(t *testing.T) {
	f := newFlakyKeys(t)
	clk := newClock()
	k := f.cache(clk)
	ctx := context.Background()
	if _, err := k.key(ctx, f.ks.kid); err != nil {
		t.Fatal(err)
	}
	f.mode.Store("down")
	clk.Add(time.Hour + time.Second) // past max-age
	for i := 0; i < 10; i++ {
		if _, err := k.key(ctx, f.ks.kid); err != nil {
			t.Fatalf("request %d with the key URL down: %v", i, err)
		}
		if _, err := k.key(ctx, "garbage-kid"); err == nil {
			t.Fatal("unknown kid accepted")
		}
		waitIdle(t, k)
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the first and one refresh)", n)
	}
	// Backoff: the next refresh waits, and the wait grows.
	clk.Add(minBackoff)
	_, _ = k.key(ctx, f.ks.kid)
	waitIdle(t, k)
	clk.Add(minBackoff)
	_, _ = k.key(ctx, f.ks.kid)
	waitIdle(t, k)
	if n := f.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after two backoff steps, want 3 (5 s, then 10 s)", n)
	}
	// Back up: refreshed, backoff reset.
	f.mode.Store("ok")
	clk.Add(maxBackoff)
	_, _ = k.key(ctx, f.ks.kid)
	waitIdle(t, k)
	k.mu.Lock()
	fresh := k.failures == 0 && k.expires.After(clk.Now())
	k.mu.Unlock()
	if !fresh {
		t.Fatal("keys not refreshed once the URL answered again")
	}
}

// Item 4: with no keys at all and the URL down, requests answer
// "unavailable" without a fetch each.
func TestKeyCacheNoKeysBacksOff(t *testing.T) {
	f := newFlakyKeys(t)
	f.mode.Store("down")
	clk := newClock()
	k := f.cache(clk)
	for i := 0; i < 10; i++ {
		if _, err := k.key(context.Background(), "kid-"+itoa(i)); err == nil {
			t.Fatal("accepted without keys")
		}
	}
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 10 garbage tokens, want 1", n)
	}
}

// Item 4: the fetch ran under the cache's mutex, so with a hanging key URL
// a valid user waited 15 s. Now a cached key answers at once, and garbage
// tokens wait on one fetch in flight.
func TestKeyCacheHangingURLBlocksNobody(t *testing.T) {
	f := newFlakyKeys(t)
	clk := newClock()
	k := f.cache(clk)
	ctx := context.Background()
	if _, err := k.key(ctx, f.ks.kid); err != nil {
		t.Fatal(err)
	}
	f.mode.Store("hang")
	clk.Add(time.Hour + time.Second)
	// Garbage tokens start waiting on the hanging refresh.
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, _ = k.key(ctx, "garbage-"+itoa(i))
		}()
	}
	done := make(chan error, 1)
	go func() {
		_, err := k.key(ctx, f.ks.kid)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request with a cached key waited for the hanging key URL")
	}
	for deadline := time.Now().Add(5 * time.Second); f.hanging.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if h := f.hanging.Load(); h != 1 {
		t.Fatalf("%d fetches hanging, want exactly 1", h)
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// The hanging fetch ends (its timeout, here the release): the waiting
	// garbage tokens are refused, nothing else is fetched.
	f.mode.Store("down")
	f.release <- struct{}{}
	wg.Wait()
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the hang, want 2", n)
	}
}
