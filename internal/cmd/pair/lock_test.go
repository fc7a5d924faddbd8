package pair_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paircmd "github.com/wactl/wactl/internal/cmd/pair"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/lock"
)

// TestLocalPairHoldsTheDataDirLock: `wactl pair` without a daemon holds the
// data dir's lock, the one every `wactl serve` takes before its lease, for
// the whole pairing: a daemon's lock started while the QR code shows stays
// PASSIVE, and becomes ACTIVE once the pairing is over. Before, local
// pairing took only the account's lock, so a daemon could be ACTIVE on the
// same data dir meanwhile.
func TestLocalPairHoldsTheDataDirLock(t *testing.T) {
	e := newEnv(t)
	var activeAt atomic.Int64
	lk, err := lock.NewEmbedded(lock.EmbeddedOptions{DataDir: e.dataDir, InstanceID: "daemon", Poll: 20 * time.Millisecond,
		Callbacks: lock.Callbacks{OnActive: func(int64) { activeAt.Store(time.Now().UnixNano()) }}})
	if err != nil {
		t.Fatal(err)
	}
	lctx, stopLock := context.WithCancel(context.Background())
	lockDone := make(chan error, 1)
	var started atomic.Bool
	defer func() {
		stopLock()
		if started.Load() {
			<-lockDone
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	var during int64 = -1
	var tryErr error
	sc := &scanner{t: t, srv: e.srv, cancel: func() {
		if during != -1 {
			return
		}
		// The QR code shows: start a daemon's lock and give it many polls.
		started.Store(true)
		go func() { lockDone <- lk.Run(lctx) }()
		time.Sleep(300 * time.Millisecond)
		during = activeAt.Load()
		var dl *lock.FileLock
		if dl, tryErr = lock.TryLockDir(e.dataDir); tryErr == nil {
			dl.Unlock()
		}
		cancel()
	}}
	err, _ = e.run(t, ctx, sc, paircmd.Options{Phone: "+40733000011"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want cancellation, got %v", err)
	}
	if during == -1 {
		t.Fatal("no QR code shown")
	}
	if during != 0 {
		t.Fatal("a daemon's lock became ACTIVE on the data dir while wactl pair was pairing locally")
	}
	if !errors.Is(tryErr, lock.ErrHeld) {
		t.Fatalf("the data dir's lock was free during local pairing: %v", tryErr)
	}
	watest.Eventually(t, 5*time.Second, "the daemon's lock ACTIVE after the pairing", func() bool { return activeAt.Load() != 0 })
	assertNoAccounts(t, e)
}

// TestLocalPairRefusedWhileTheDataDirIsLocked: a process holds the data
// dir (a daemon still starting, without its admin socket yet): local
// pairing is refused with what to do, and creates nothing.
func TestLocalPairRefusedWhileTheDataDirIsLocked(t *testing.T) {
	e := newEnv(t)
	dl, err := lock.TryLockDir(e.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Unlock()
	sc := &scanner{t: t, srv: e.srv, phone: "40733000012"}
	err, _ = e.run(t, context.Background(), sc, paircmd.Options{Phone: "+40733000012"})
	if err == nil || !strings.Contains(err.Error(), "in use by another wactl process") || !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("want a refusal naming the data dir lock, got %v", err)
	}
	for _, c := range e.srv.Connections() {
		t.Fatalf("connected to WhatsApp although refused: %+v", c)
	}
	assertNoAccounts(t, e)
}
