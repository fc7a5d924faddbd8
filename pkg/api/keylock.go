package api

import (
	"context"
	"sync"
)

// keyLocks serialises work on one idempotency key inside this process: the
// send route and the outbox worker take the key's lock before they look at
// what was already sent and before they send, so the two paths of one
// request (proxy outbox item + Cloud Function POST) never send in parallel.
// Across processes only the ACTIVE instance sends (lease + claim epoch).
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

func newKeyLocks() *keyLocks { return &keyLocks{m: map[string]*keyLock{}} }

// lock waits for key until ctx ends; unlock must be called exactly once.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// held is how many keys are locked or awaited (tests: nothing leaks).
func (k *keyLocks) held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
