package replica_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

// TestPointerWriteOfAKilledHostLocksNothing: host A is killed (kill -9)
// between the read and the write of an account's pointer document — in a
// copy's flip, a delete's tombstone, or an operator's repair (from chunks,
// or to a tombstone). Host B, which holds the lease next (newer epoch),
// must write its copy of the account at once, and a restore must read
// B's generation. With a transaction, A's read left a lock the emulator
// (like Firestore, until the transaction expires) keeps for a minute and
// more: B's flip was aborted and retried for its whole budget — at
// failover, when B must write its first copy. When A comes back to life
// anyway (a paused host, not a dead one), its write is refused and B's
// pointer stays.
func TestPointerWriteOfAKilledHostLocksNothing(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	k, _ := writeKey(t, t.TempDir())

	damagePointer := func(t *testing.T, id string) {
		ptr := c.Collection(replica.Collection).Doc(id)
		if _, err := ptr.Update(context.Background(), []firestore.Update{{Path: "generation", Value: "two"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		name string
		// prepare writes A's copies (A holds epoch 1), damages what the
		// case needs, and returns the generation B's copy gets.
		prepare func(t *testing.T, a *replica.Replica, snap *sessions.AccountSnapshot) int64
		// stuck is what A does when it is stopped dead mid-write, and
		// refused what it gets when it is let go afterwards.
		stuck   func(a, op *replica.Replica, snap *sessions.AccountSnapshot) error
		refused error
	}{
		{name: "copy's flip", prepare: func(t *testing.T, a *replica.Replica, snap *sessions.AccountSnapshot) int64 {
			mustPut(t, a, snap, 1)
			return 3 // above the chunks of A's unfinished generation 2
		}, stuck: func(a, _ *replica.Replica, snap *sessions.AccountSnapshot) error {
			_, err := a.Put(context.Background(), snap)
			return err
		}, refused: store.ErrFenced},
		{name: "delete's tombstone", prepare: func(t *testing.T, a *replica.Replica, snap *sessions.AccountSnapshot) int64 {
			mustPut(t, a, snap, 1)
			return 2
		}, stuck: func(a, _ *replica.Replica, snap *sessions.AccountSnapshot) error {
			return a.Delete(context.Background(), snap.AccountID)
		}, refused: store.ErrFenced},
		{name: "repair from chunks", prepare: func(t *testing.T, a *replica.Replica, snap *sessions.AccountSnapshot) int64 {
			mustPut(t, a, snap, 1)
			mustPut(t, a, snap, 2)
			damagePointer(t, snap.AccountID)
			return 3
		}, stuck: func(_, op *replica.Replica, snap *sessions.AccountSnapshot) error {
			_, err := op.RepairPointer(context.Background(), snap.AccountID)
			return err
		}, refused: store.ErrFenced},
		{name: "repair to a tombstone", prepare: func(t *testing.T, a *replica.Replica, snap *sessions.AccountSnapshot) int64 {
			mustPut(t, a, snap, 1)
			chunk := c.Collection(replica.Collection).Doc(snap.AccountID).Collection("chunks").Doc(firstChunk(1))
			if _, err := chunk.Update(context.Background(), []firestore.Update{{Path: "data", Value: []byte("not age")}}); err != nil {
				t.Fatal(err)
			}
			damagePointer(t, snap.AccountID)
			return 2
		}, stuck: func(_, op *replica.Replica, snap *sessions.AccountSnapshot) error {
			_, err := op.RepairPointer(context.Background(), snap.AccountID)
			return err
		}, refused: replica.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := openStore(t)
			acct := watest.Pair(t, srv, src, fmt.Sprintf("4075520002%d", i+1))
			snap := export(t, src, acct.ID)
			fa, fb := &fence{}, &fence{}
			fa.epoch.Store(1)
			fb.epoch.Store(2)
			a, b := newReplica(c, k, fa), newReplica(c, k, fb)
			op := replica.New(replica.Options{Client: c, Key: k, Instance: "doctor"}) // wactl doctor --fix: no lease
			wantGen := tc.prepare(t, a, snap)

			// A stops dead between the read and the write of the pointer.
			dead, inside := make(chan struct{}), make(chan struct{})
			var once sync.Once
			replica.SetPointerWriteHook(func(r *replica.Replica, id string) {
				if r == a || r == op {
					once.Do(func() { close(inside) })
					<-dead
				}
			})
			aErr := make(chan error, 1)
			var release sync.Once
			let := func() { release.Do(func() { close(dead) }) }
			t.Cleanup(func() { let(); <-aErr; replica.SetPointerWriteHook(nil) })
			go func() { aErr <- tc.stuck(a, op, snap) }()
			select {
			case <-inside:
			case <-time.After(10 * time.Second):
				t.Fatal("A never reached its pointer write")
			}

			// B holds the lease now and writes its copy of the account.
			bctx, cancel := context.WithTimeout(ctx, 8*time.Second)
			defer cancel()
			t0 := time.Now()
			res, err := b.Put(bctx, snap)
			took := time.Since(t0)
			t.Logf("B's copy with A dead mid-write (%s): %s, %+v, err %v", tc.name, took.Round(time.Millisecond), res, err)
			if err != nil || took > 5*time.Second {
				t.Fatalf("B could not write the account's copy after A died mid-write (%s): %s, %v", tc.name, took.Round(time.Millisecond), err)
			}
			if res.Generation != wantGen || res.Epoch != 2 {
				t.Fatalf("B's copy: %+v, want generation %d under epoch 2", res, wantGen)
			}
			rr := b.RestoreAccount(ctx, openStore(t), acct.ID)
			if rr.Outcome != replica.Restored || rr.Err != nil || rr.Generation != wantGen || rr.Digest != snap.Digest {
				t.Fatalf("restore after B's copy: %+v, want generation %d restored", rr, wantGen)
			}

			// A is let go (a paused host): its write is refused, B's
			// pointer stays.
			let()
			select {
			case err := <-aErr:
				aErr <- err
				if !errors.Is(err, tc.refused) {
					t.Fatalf("A's write after B's copy: %v, want %v", err, tc.refused)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("A's write never returned once let go")
			}
			got, in, err := b.Get(ctx, acct.ID)
			if err != nil || in.Generation != wantGen || in.Epoch != 2 || got.Digest != snap.Digest {
				t.Fatalf("B's copy after A's refused write: %+v %v", in, err)
			}
		})
	}
}

func mustPut(t *testing.T, r *replica.Replica, snap *sessions.AccountSnapshot, gen int64) {
	t.Helper()
	res, err := r.Put(context.Background(), snap)
	if err != nil || res.Generation != gen {
		t.Fatalf("put: %+v %v, want generation %d", res, err, gen)
	}
}

// TestPointerWriteReplacesTheWholeDocument: the conditional write that
// replaced the transaction's Set writes the same document Set wrote from
// Info — the same fields, no more — also over a tombstone left by a
// repair (its deleted, deletedAt and repaired go) and over a hand-added
// field.
func TestPointerWriteReplacesTheWholeDocument(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200025")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(3)
	r := newReplica(c, k, f)
	snap := export(t, src, acct.ID)
	ptr := c.Collection(replica.Collection).Doc(acct.ID)
	if _, err := ptr.Set(ctx, map[string]any{"accountId": acct.ID, "deleted": true, "deletedAt": time.Now(),
		"generation": int64(4), "epoch": int64(2), "repaired": true, "note": "by hand"}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Put(ctx, snap)
	if err != nil || res.Generation != 5 {
		t.Fatalf("put over a repaired tombstone: %+v %v", res, err)
	}
	got, err := ptr.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in, err := replica.ParsePointer(got)
	if err != nil {
		t.Fatal(err)
	}
	// The same Info as Set writes it, elsewhere.
	ref := c.Collection("replica_shape").Doc(acct.ID)
	if _, err := ref.Set(ctx, in); err != nil {
		t.Fatal(err)
	}
	want, err := ref.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := fmt.Sprint(got.Data()), fmt.Sprint(want.Data()); g != w {
		t.Fatalf("pointer document\n%s\nwant (Set of its Info)\n%s", g, w)
	}
}

// TestStalledHostsCleanupKeepsTheNextHoldersCopy: host A flips the pointer
// (to its copy, or to a tombstone) and stalls — a paused VM, not a dead
// process — before deleting chunks; its lease expires and host B writes a
// newer generation. When A wakes up, its cleanup must not delete B's
// chunks, which the pointer now names: the copy would be refused as
// damaged ("chunk 0 is missing") at the next failover.
func TestStalledHostsCleanupKeepsTheNextHoldersCopy(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	k, _ := writeKey(t, t.TempDir())
	for i, tc := range []struct {
		name    string
		stalled func(a *replica.Replica, snap *sessions.AccountSnapshot) error
		bGen    int64
	}{
		{name: "copy", bGen: 3, stalled: func(a *replica.Replica, snap *sessions.AccountSnapshot) error {
			res, err := a.Put(context.Background(), snap)
			if err == nil && res.Generation != 2 {
				err = fmt.Errorf("A's copy at generation %d, want 2", res.Generation)
			}
			return err
		}},
		{name: "delete", bGen: 2, stalled: func(a *replica.Replica, snap *sessions.AccountSnapshot) error {
			return a.Delete(context.Background(), snap.AccountID)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := openStore(t)
			acct := watest.Pair(t, srv, src, fmt.Sprintf("4075520003%d", i+1))
			snap := export(t, src, acct.ID)
			fa, fb := &fence{}, &fence{}
			fa.epoch.Store(1)
			fb.epoch.Store(2)
			a, b := newReplica(c, k, fa), newReplica(c, k, fb)
			mustPut(t, a, snap, 1)

			wake, inside := make(chan struct{}), make(chan struct{})
			var once, woke sync.Once
			replica.SetCleanupHook(func(r *replica.Replica, _ string) {
				if r == a {
					once.Do(func() { close(inside) })
					<-wake
				}
			})
			aDone := make(chan error, 1)
			t.Cleanup(func() { woke.Do(func() { close(wake) }); <-aDone; replica.SetCleanupHook(nil) })
			go func() { aDone <- tc.stalled(a, snap) }()
			select {
			case <-inside:
			case <-time.After(10 * time.Second):
				t.Fatal("A never reached its cleanup")
			}
			mustPut(t, b, snap, tc.bGen)
			woke.Do(func() { close(wake) })
			if err := <-aDone; err != nil {
				t.Fatal(err)
			}
			aDone <- nil
			got, in, err := b.Get(ctx, acct.ID)
			if err != nil || in.Generation != tc.bGen || in.Epoch != 2 || got.Digest != snap.Digest {
				t.Fatalf("B's copy after A's late cleanup: %+v %v", in, err)
			}
		})
	}
}

// TestStalledWriterNeverSharesAGeneration: a deposed host A (it has not
// noticed yet) and the new holder B read the same pointer. A writes the
// first chunk of its copy and stalls; B writes its copy; A wakes up and
// writes its other chunks. Both used to choose the same generation and the
// same chunk names, so A's late chunks replaced B's and the current copy
// failed its checksum at the next restore. B's copy must stay readable.
func TestStalledWriterNeverSharesAGeneration(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200041")
	k, _ := writeKey(t, t.TempDir())
	old := replica.ChunkSize
	replica.ChunkSize = 4 << 10 // several chunks
	t.Cleanup(func() { replica.ChunkSize = old })
	snap := export(t, src, acct.ID)
	fa, fb := &fence{}, &fence{}
	fa.epoch.Store(1)
	fb.epoch.Store(2)
	a, b := newReplica(c, k, fa), newReplica(c, k, fb)
	mustPut(t, a, snap, 1)

	wake, inside := make(chan struct{}), make(chan struct{})
	var once, woke sync.Once
	replica.SetChunkWriteHook(func(r *replica.Replica, _ string, n int) {
		if r == a && n == 0 {
			once.Do(func() { close(inside) })
			<-wake
		}
	})
	aDone := make(chan error, 1)
	t.Cleanup(func() { woke.Do(func() { close(wake) }); <-aDone; replica.SetChunkWriteHook(nil) })
	go func() { _, err := a.Put(ctx, snap); aDone <- err }()
	select {
	case <-inside:
	case <-time.After(10 * time.Second):
		t.Fatal("A never wrote its first chunk")
	}
	res, err := b.Put(ctx, snap)
	if err != nil || res.Chunks < 2 {
		t.Fatalf("B's copy: %+v %v", res, err)
	}
	woke.Do(func() { close(wake) })
	aErr := <-aDone
	aDone <- aErr
	if !errors.Is(aErr, store.ErrFenced) {
		t.Fatalf("A's late copy: %v, want ErrFenced", aErr)
	}
	got, in, err := b.Get(ctx, acct.ID)
	if err != nil || in.Generation != res.Generation || in.Epoch != 2 || got.Digest != snap.Digest {
		t.Fatalf("B's copy (generation %d) after A's late chunks: %+v %v", res.Generation, in, err)
	}
	if n := chunkCount(t, c, acct.ID); n != res.Chunks {
		t.Fatalf("%d chunk documents after A gave up, want B's %d", n, res.Chunks)
	}
}
