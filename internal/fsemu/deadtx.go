package fsemu

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
)

// HoldDeadTransaction holds each document with a transaction that read it
// and never commits: what a host killed (kill -9) inside a transaction
// leaves behind. Firestore refuses writes of those documents (the emulator:
// Aborted after ~2 s) until the locks go, when release is called (also at
// the end of the test).
func HoldDeadTransaction(t testing.TB, c *firestore.Client, refs ...*firestore.DocumentRef) (release func()) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, ref := range refs {
		held := make(chan struct{})
		wg.Go(func() {
			_ = c.RunTransaction(context.Background(), func(ctx context.Context, tx *firestore.Transaction) error {
				if _, err := tx.Get(ref); err != nil {
					t.Errorf("dead host's read of %s: %v", ref.Path, err)
				}
				close(held)
				<-stop
				return errors.New("the host died before its commit")
			}, firestore.MaxAttempts(1))
		})
		select {
		case <-held:
		case <-time.After(20 * time.Second):
			t.Fatalf("the dead host's transaction never read %s", ref.Path)
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(stop); wg.Wait() }) }
	t.Cleanup(release)
	return release
}
