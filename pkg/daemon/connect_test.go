package daemon_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/lock"
)

// switchLock is a lease the test flips by hand, so a step-down can be placed
// exactly between two steps of the daemon.
type switchLock struct {
	cb  lock.Callbacks
	ctl chan bool

	mu      sync.Mutex
	active  bool
	expired bool // held, but its time is up (a holder resumed after a pause)
	epoch   int64
}

func newSwitchLock(cb lock.Callbacks) *switchLock { return &switchLock{cb: cb, ctl: make(chan bool)} }

func (l *switchLock) Run(ctx context.Context) error {
	l.set(true)
	for {
		select {
		case <-ctx.Done():
			l.set(false)
			return nil
		case on := <-l.ctl:
			l.set(on)
		}
	}
}

func (l *switchLock) set(on bool) {
	l.mu.Lock()
	if l.active == on {
		l.mu.Unlock()
		return
	}
	l.active, l.expired = on, false
	if on {
		l.epoch++
	}
	epoch := l.epoch
	l.mu.Unlock()
	if on {
		l.cb.OnActive(epoch)
	} else {
		l.cb.OnPassive("test step-down")
	}
}

// expire makes the held lease run out without the holder noticing yet.
func (l *switchLock) expire(on bool) {
	l.mu.Lock()
	l.expired = on
	l.mu.Unlock()
}

func (l *switchLock) Status() lock.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := lock.Status{Backend: "firestore", InstanceID: "host-a", Epoch: l.epoch, LockStatus: lock.NotHeld, WAMode: lock.Passive}
	if l.active {
		s.LockStatus, s.WAMode = lock.HeldByThisInstance, lock.Active
		s.Holder.InstanceID = "host-a"
		s.LeaseUntil, s.RemainingSec = time.Now().Add(time.Minute), 60
		if l.expired {
			s.LeaseUntil, s.RemainingSec = time.Now().Add(-time.Second), 0
		}
	}
	return s
}

func (l *switchLock) Fence() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.active {
		return 0, false
	}
	return l.epoch, true
}

func (l *switchLock) Inspect(context.Context) (lock.Status, error) { return l.Status(), nil }
func (l *switchLock) StreamReplaced(string)                        {}

// startSwitched runs a daemon on a switchLock; the lock is returned once
// the daemon built it.
func (r *rig) startSwitched(adjust func(*daemon.Options)) (*running, *switchLock) {
	made := make(chan *switchLock, 1)
	run := r.startWith("host-a", r.st, func(o *daemon.Options) {
		o.NewLock = func(cb lock.Callbacks) (lock.Lock, error) {
			l := newSwitchLock(cb)
			made <- l
			return l, nil
		}
		if adjust != nil {
			adjust(o)
		}
	})
	select {
	case l := <-made:
		return run, l
	case <-time.After(10 * time.Second):
		r.t.Fatal("daemon built no lock")
		return nil, nil
	}
}

// liveConnections counts the device's logged-in connections the fake still
// has open.
func liveConnections(srv *wafake.Server, a watest.Account) int {
	n := 0
	for _, c := range srv.DeviceConnections(a.Device) {
		if c.Open() && !c.LoggedIn.IsZero() {
			n++
		}
	}
	return n
}

// opensSince counts the device's connections opened after t.
func opensSince(srv *wafake.Server, a watest.Account, t time.Time) int {
	n := 0
	for _, c := range srv.DeviceConnections(a.Device) {
		if c.Opened.After(t) {
			n++
		}
	}
	return n
}

// TestRecycleAfterStepDownConnectsNothing: the silent-account recycle
// disconnected the client, and the lease is lost before it reconnects. The
// step-down must cancel (and wait for) that connect: afterwards the manager
// is passive and the fake has no live connection of the device.
func TestRecycleAfterStepDownConnectsNothing(t *testing.T) {
	r, accts := newRig(t, "40711000101")
	a := accts[0]
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	restore := daemon.SetBeforeConnect(func(id, why string) {
		if why != "recycle" {
			return
		}
		once.Do(func() {
			close(reached)
			<-release
		})
	})
	defer restore()
	run, lk := r.startSwitched(func(o *daemon.Options) { o.StaleAfter = 300 * time.Millisecond })
	mgr := run.manager(t)
	select {
	case <-reached:
	case <-time.After(15 * time.Second):
		t.Fatal("the silent account was never recycled")
	}
	stepped := make(chan struct{})
	go func() { lk.ctl <- false; close(stepped) }()
	watest.Eventually(t, 10*time.Second, "manager passive", func() bool { return !mgr.Active() })
	close(release)
	select {
	case <-stepped:
	case <-time.After(15 * time.Second):
		t.Fatal("step-down did not return")
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n := liveConnections(r.srv, a); n != 0 {
			t.Fatalf("manager active=%v but the device has %d live connection(s) at the server after the step-down", mgr.Active(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResumedHolderDoesNotReconnect: a holder paused past its lease
// resumes; its socket is gone and whatsmeow would reconnect at once, before
// the lease loop noticed the lease ran out. Nothing may connect until the
// lease is valid again, and then the account comes back by itself.
func TestResumedHolderDoesNotReconnect(t *testing.T) {
	r, accts := newRig(t, "40711000102")
	a := accts[0]
	run, lk := r.startSwitched(nil)
	run.waitHealth(t, "connected", connected(1))
	lk.expire(true)
	dropped := time.Now()
	if err := r.srv.Inject(a.Device, wafake.FaultDrop); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n := opensSince(r.srv, a, dropped); n != 0 {
			t.Fatalf("%d connection(s) opened while the held lease had run out", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The lease turns out to be renewed: the account reconnects.
	lk.expire(false)
	watest.Eventually(t, 15*time.Second, "reconnected once the lease is valid", func() bool {
		return liveConnections(r.srv, a) == 1
	})
	if got := r.srv.MaxConcurrent(a.Device); got != 1 {
		t.Fatalf("%d live connections at once", got)
	}
}
