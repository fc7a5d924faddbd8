package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/lock"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// fencedFirestore opens the store as serve does: Firestore behind the local
// journal, fenced by the lease the daemon builds later (ref), with counter
// deltas persisted only every flushEvery.
func fencedFirestore(t *testing.T, r *rig, client *firestore.Client, ref *lock.FenceRef, flushEvery time.Duration) *journal.Store {
	t.Helper()
	fs, err := fsstore.Open(context.Background(), fsstore.Options{Client: client, Fence: ref.Fence, CounterFlushInterval: flushEvery})
	if err != nil {
		t.Fatal(err)
	}
	st, err := journal.Open(filepath.Join(r.dataDir, "journal.db"), fs, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// counterDoc reads wa_metrics/counters/accounts/{id}: dedupe.wrote and the
// document's epoch (0 when absent).
func counterDoc(t *testing.T, client *firestore.Client, id string) (wrote, epoch int64) {
	t.Helper()
	snap, err := client.Collection("wa_metrics").Doc("counters").Collection("accounts").Doc(id).Get(context.Background())
	if err != nil {
		return 0, 0
	}
	d := snap.Data()
	if dd, ok := d["dedupe"].(map[string]any); ok {
		wrote, _ = dd["wrote"].(int64)
	}
	epoch, _ = d["leaseEpoch"].(int64)
	return wrote, epoch
}

// TestGracefulStopPersistsCounters: counter deltas still in memory when the
// daemon is stopped (SIGINT right after messages) reach the store. They are
// fenced writes, so they must be written while the lease is still held:
// before, the flush ran after the release, the fence refused it and the
// counts were dropped. The accounts' final state (passive) is written
// before the release for the same reason.
func TestGracefulStopPersistsCounters(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	r, accts := newRig(t, "40711000081")
	a := accts[0]
	ref := new(lock.FenceRef)
	// Only the final flush can persist the counts.
	st := fencedFirestore(t, r, client, ref, time.Hour)
	run := r.startWith("host-fs", st, func(o *daemon.Options) {
		o.StoreBackend = "firestore"
		o.NewLock = func(cb lock.Callbacks) (lock.Lock, error) {
			lk, err := lock.NewFirestore(lock.FirestoreOptions{Client: client, InstanceID: "host-fs", DataDir: r.dataDir,
				Timing: lock.Timing{TTL: 4 * time.Second, Renew: time.Second, SafetyMargin: time.Second, Retry: 500 * time.Millisecond}, Callbacks: cb})
			if err == nil {
				ref.Set(lk)
			}
			return lk, err
		}
	})
	run.waitHealth(t, "connected", connected(1))
	ctx := context.Background()
	watest.Eventually(t, 10*time.Second, "accounts/{id} connected", func() bool {
		snap, err := client.Collection("accounts").Doc(a.ID).Get(ctx)
		return err == nil && snap.Data()["status"] == "connected"
	})
	epoch, held := ref.Fence()
	if !held {
		t.Fatal("no epoch held while ACTIVE")
	}
	const n = 3
	for i := range n {
		id, err := r.srv.SendFromPeer(ctx, peerJID("40799000081"), a.Device.ToNonAD(), text(fmt.Sprintf("counted %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.srv.WaitDelivered(ctx, a.Device, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	if wrote, docEpoch := counterDoc(t, client, a.ID); wrote != n || docEpoch != epoch {
		t.Fatalf("after a graceful stop the counters document has dedupe.wrote=%d leaseEpoch=%d, want %d under epoch %d (deltas dropped)", wrote, docEpoch, n, epoch)
	}
	snap, err := client.Collection("accounts").Doc(a.ID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := snap.Data()["status"]; s != "passive" {
		t.Fatalf("accounts/%s status %v after a graceful stop, want passive (the final state written before the release)", a.ID, s)
	}
}

// TestStepDownKeepsCounterDeltas: the epoch is gone before OnPassive runs
// (the lease may be another's), so deltas counted while ACTIVE and during
// the step-down cannot be written then; they are kept and written in the
// process's next tenure, never lost.
func TestStepDownKeepsCounterDeltas(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	r, accts := newRig(t, "40711000082")
	a := accts[0]
	made := make(chan *switchLock, 1)
	ref := new(lock.FenceRef)
	st := fencedFirestore(t, r, client, ref, time.Hour)
	run := r.startWith("host-a", st, func(o *daemon.Options) {
		o.StoreBackend = "firestore"
		o.NewLock = func(cb lock.Callbacks) (lock.Lock, error) {
			l := newSwitchLock(cb)
			ref.Set(l)
			made <- l
			return l, nil
		}
	})
	var l *switchLock
	select {
	case l = <-made:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon built no lock")
	}
	run.waitHealth(t, "connected", connected(1))
	ctx := context.Background()
	const n = 2
	for i := range n {
		id, err := r.srv.SendFromPeer(ctx, peerJID("40799000082"), a.Device.ToNonAD(), text(fmt.Sprintf("kept %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.srv.WaitDelivered(ctx, a.Device, id); err != nil {
			t.Fatal(err)
		}
	}
	l.ctl <- false // the lease is lost: no epoch to write under
	watest.Eventually(t, 10*time.Second, "PASSIVE", func() bool { return !run.manager(t).Active() })
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if wrote, _ := counterDoc(t, client, a.ID); wrote != 0 {
		t.Fatalf("counters written without a held epoch: dedupe.wrote=%d", wrote)
	}
	if c, err := st.Counters(ctx, a.ID); err != nil || c.DedupeWrote != n {
		t.Fatalf("counts kept in memory after the step-down: %+v %v, want dedupe.wrote=%d", c, err, n)
	}
	l.ctl <- true // the next tenure
	run.waitHealth(t, "connected again", connected(1))
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if wrote, docEpoch := counterDoc(t, client, a.ID); wrote != n || docEpoch != 2 {
		t.Fatalf("counters after the next tenure: dedupe.wrote=%d leaseEpoch=%d, want %d under epoch 2", wrote, docEpoch, n)
	}
}
