package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestReplicaIdleAccountWritesNothing: the copy loop, with an injected
// clock, writes a paired account once, then nothing while it stays idle
// (however long), nothing when only its files' times move, a changed
// session only once the interval has passed, and records each written
// generation beside the session (replica.json). This replaces the idle
// check of TestReplicaFailoverToEmptyHost, whose 4.5 s window was shorter
// than the 5 s interval and so could not see a write.
func TestReplicaIdleAccountWritesNothing(t *testing.T) {
	ctx := context.Background()
	client, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	sess, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{InstanceID: "idle-test"})
	if err != nil {
		t.Fatal(err)
	}
	acct := watest.Pair(t, srv, sess, "40755400001")
	id, _ := age.GenerateX25519Identity()
	keyPath := filepath.Join(t.TempDir(), "replica.key")
	if err := os.WriteFile(keyPath, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := replica.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	s := newReplicaSync(ReplicaOptions{Client: client, Key: key, Interval: time.Minute}, sess,
		slog.New(slog.DiscardHandler), now, "idle-test", func() (int64, bool) { return 1, true })
	r := replica.New(replica.Options{Client: client, Key: key})
	gen := func() int64 {
		in, err := r.Stat(ctx, acct.ID)
		if err != nil {
			return 0
		}
		return in.Generation
	}
	local := func() int64 { g, _ := replica.LocalGeneration(sess.Dir(acct.ID)); return g }

	s.pass(ctx, false)
	if gen() != 1 || local() != 1 {
		t.Fatalf("after the first pass: copy at %d, local at %d, want 1 and 1", gen(), local())
	}
	for range 3 { // idle for hours
		advance(time.Hour)
		s.pass(ctx, false)
	}
	if gen() != 1 {
		t.Fatalf("idle account written: generation %d", gen())
	}
	// Only the files' times move (a checkpoint): read, same digest, no write.
	touched := time.Now()
	for _, n := range []string{"whatsmeow.db", "account.json"} {
		os.Chtimes(filepath.Join(sess.Dir(acct.ID), n), touched, touched)
	}
	advance(time.Hour)
	s.pass(ctx, false)
	if gen() != 1 {
		t.Fatalf("a time-only change was written: generation %d", gen())
	}
	// A real change: written once the interval has passed, not before.
	dev, err := sess.OpenDevice(ctx, acct.ID, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dev.Store.PushName = "changed"
	if err := dev.Store.Save(ctx); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	s.pass(ctx, false) // the last write was an hour ago (by the clock): written now
	if gen() != 2 || local() != 2 {
		t.Fatalf("after a change: copy at %d, local at %d, want 2 and 2", gen(), local())
	}
	dev, err = sess.OpenDevice(ctx, acct.ID, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dev.Store.PushName = "changed again"
	if err := dev.Store.Save(ctx); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	advance(10 * time.Second)
	s.pass(ctx, false)
	if gen() != 2 {
		t.Fatalf("written within the interval: generation %d", gen())
	}
	advance(time.Minute)
	s.pass(ctx, false)
	if gen() != 3 || local() != 3 {
		t.Fatalf("after the interval: copy at %d, local at %d, want 3 and 3", gen(), local())
	}
}
