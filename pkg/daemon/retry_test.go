package daemon_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
)

// fakeTimers is the retry clock: the test decides when a wait ends.
type fakeTimers struct {
	mu      sync.Mutex
	waits   []time.Duration
	pending []chan time.Time
}

func (f *fakeTimers) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.pending = append(f.pending, ch)
	f.mu.Unlock()
	return ch
}

// fire ends every wait started so far and reports how many it ended.
func (f *fakeTimers) fire() int {
	f.mu.Lock()
	p := f.pending
	f.pending = nil
	f.mu.Unlock()
	for _, ch := range p {
		ch <- time.Now()
	}
	return len(p)
}

func (f *fakeTimers) requested() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

func snapshotOf(m *daemon.Manager, id string) daemon.AccountStatus {
	for _, a := range m.Accounts() {
		if a.ID == id {
			return a
		}
	}
	return daemon.AccountStatus{}
}

// TestRestoreRetriedWhileActive: an account whose restore fails while the
// daemon is ACTIVE (its session held by another process) is retried with
// backoff, shows the reason and the next retry time, and connects once the
// session is free, with nobody restarting anything.
func TestRestoreRetriedWhileActive(t *testing.T) {
	r, accts := newRig(t, "40711000111")
	a := accts[0]
	held, err := r.sess.Lock(a.ID) // "another process" holds the session
	if err != nil {
		t.Fatal(err)
	}
	timers := &fakeTimers{}
	now := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	addr := r.srv.Addr()
	m := daemon.NewManager(daemon.ManagerOptions{
		Sessions: r.sess, Store: r.st, Now: func() time.Time { return now },
		ConfigureClient: func(c *whatsmeow.Client) { wafake.ConfigureClient(c, addr) },
		After:           timers.After, RetryMin: time.Second, RetryMax: 4 * time.Second,
	})
	m.Activate(context.Background())
	defer m.Close()

	var st daemon.AccountStatus
	watest.Eventually(t, 10*time.Second, "first retry scheduled", func() bool {
		st = snapshotOf(m, a.ID)
		return st.RetryCount == 1
	})
	if st.State != daemon.StateStopped || st.RetryReason == "" || !st.NextRetryAt.Equal(now.Add(time.Second)) {
		t.Fatalf("after a failed restore: %+v", st)
	}
	if !strings.Contains(st.RetryReason, a.ID) {
		t.Fatalf("retry reason %q does not name the account", st.RetryReason)
	}
	// Still held: the next wait doubles.
	timers.fire()
	watest.Eventually(t, 10*time.Second, "second retry scheduled", func() bool {
		st = snapshotOf(m, a.ID)
		return st.RetryCount == 2
	})
	if !st.NextRetryAt.Equal(now.Add(2 * time.Second)) {
		t.Fatalf("second retry at %v, want in 2s", st.NextRetryAt)
	}
	// The other process lets go: the next attempt restores the account.
	held.Release()
	timers.fire()
	watest.Eventually(t, 15*time.Second, "restored after the session was freed", func() bool {
		return liveConnections(r.srv, a) == 1 && snapshotOf(m, a.ID).State == daemon.StateConnected
	})
	if st = snapshotOf(m, a.ID); st.RetryCount != 0 || !st.NextRetryAt.IsZero() || st.RetryReason != "" {
		t.Fatalf("retry not cleared after success: %+v", st)
	}
	if got := timers.requested(); len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Fatalf("waits %v, want [1s 2s]", got)
	}
	// Stepping down ends retries and disconnects.
	m.Deactivate("test")
	if n := liveConnections(r.srv, a); n != 0 {
		watest.Eventually(t, 5*time.Second, "closed after step-down", func() bool { return liveConnections(r.srv, a) == 0 })
	}
}
