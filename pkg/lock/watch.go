package lock

import (
	"context"
	"time"
)

// watchWhileActive listens to the lease document while this process holds
// it and kicks the loop (an immediate read and decision) as soon as the
// document stops being this process's bound lease. Renewals alone notice a
// foreign write only up to Renew later, and a writer that takes a live
// lease from wactl is ACTIVE beside it for that long. The old service did
// so by "extending" a lease carrying its own INSTANCE_ID until wactl wrote
// its holder as "wactl:<id>" (identity.go); the listener stays as a second
// line against any other writer, shortening the overlap to the time
// Firestore takes to deliver the change. It only kicks: the decision stays with the loop's read.
func (f *Firestore) watchWhileActive(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		if !f.isActive() {
			select {
			case <-ctx.Done():
				return
			case <-f.activeCh():
			}
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		stop := f.onStepDown(cancel)
		it := f.doc.Snapshots(wctx)
		for {
			snap, err := it.Next()
			if err != nil {
				break
			}
			backoff = 200 * time.Millisecond
			if !snap.Exists() {
				f.kickNow()
				continue
			}
			l := parseLease(snap.Data())
			if !l.Wactl || l.Holder.Session != f.me.Session {
				f.kickNow()
			}
		}
		it.Stop()
		stop()
		cancel()
		if ctx.Err() != nil {
			return
		}
		if wctx.Err() != nil {
			continue // stepped down: wait for the next step up
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Firestore) kickNow() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Firestore) isActive() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// activeCh is closed at the next step up.
func (f *Firestore) activeCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.upCh == nil {
		f.upCh = make(chan struct{})
	}
	if f.active {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return f.upCh
}

// onStepDown runs fn at the next step down; stop unregisters it.
func (f *Firestore) onStepDown(fn func()) (stop func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		fn()
		return func() {}
	}
	id := f.downSeq
	f.downSeq++
	if f.downFns == nil {
		f.downFns = map[int]func(){}
	}
	f.downFns[id] = fn
	return func() {
		f.mu.Lock()
		delete(f.downFns, id)
		f.mu.Unlock()
	}
}
