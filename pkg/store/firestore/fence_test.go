package firestore_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// fencedStore is a store as serve opens it: every fenced write asks fence.
func fencedStore(t *testing.T, c *gfs.Client, fence func() (int64, bool)) *firestore.Store {
	t.Helper()
	s, err := firestore.Open(context.Background(), firestore.Options{Client: c, Fence: fence})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// deposeA runs host-a's real Firestore lease until ACTIVE, then lets host-b
// take the lease document (newer epoch) and waits until host-a stepped down.
func deposeA(t *testing.T, c *gfs.Client) (a *lock.Firestore, aEpoch, bEpoch int64, depose func()) {
	t.Helper()
	actives, passives := make(chan int64, 4), make(chan string, 4)
	a, err := lock.NewFirestore(lock.FirestoreOptions{Client: c, InstanceID: "host-a", Host: "host-a",
		Timing: lock.DefaultTiming, Logger: slog.New(slog.DiscardHandler),
		Callbacks: lock.Callbacks{OnActive: func(e int64) { actives <- e }, OnPassive: func(r string) { passives <- r }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case aEpoch = <-actives:
	case <-time.After(20 * time.Second):
		t.Fatal("host-a not ACTIVE")
	}
	bEpoch = aEpoch + 5
	depose = func() {
		// host-a's lease listener may just be restarting: see fsemu.Write.
		if err := fsemu.Write(context.Background(), func(ctx context.Context) error {
			_, err := c.Doc(lock.DefaultDocPath).Update(ctx, []gfs.Update{
				{Path: "holderInstanceId", Value: "host-b"}, {Path: "epoch", Value: bEpoch},
				{Path: "holderSession", Value: "bbbb"}, {Path: "holderHost", Value: "host-b"},
				{Path: "leaseUntil", Value: time.Now().Add(time.Hour).UnixMilli()}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		a.StreamReplaced("test: host-b took the lease")
		select {
		case <-passives:
		case <-time.After(5 * time.Second):
			t.Fatal("host-a did not step down")
		}
	}
	return a, aEpoch, bEpoch, depose
}

func accountAsDaemonWrites(l lock.Lock, worker, status string) store.Account {
	epoch, _ := l.Fence()
	return store.Account{ID: "account_prod_fence", Name: "Shop", Status: status,
		Worker: store.Worker{Service: "wactl", InstanceID: worker}, Epoch: epoch}
}

// TestDeposedAccountWriteFenced reproduces issue 15.2: the account document
// ended "status=passive worker=host-a leaseEpoch=<B's epoch>" while host-b
// held the lease.
func TestDeposedAccountWriteFenced(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	a, aEpoch, bEpoch, depose := deposeA(t, c)
	sa := fencedStore(t, c, a.Fence)
	sb := fencedStore(t, c, func() (int64, bool) { return bEpoch, true })
	ctx := context.Background()

	if err := sa.PutAccount(ctx, accountAsDaemonWrites(a, "host-a", "connected")); err != nil {
		t.Fatalf("host-a writes while ACTIVE: %v", err)
	}
	depose()
	// host-b holds the lease but has not written the account yet: host-a,
	// which holds nothing, must not write either.
	if err := sa.PutAccount(ctx, accountAsDaemonWrites(a, "host-a", "passive")); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed host-a wrote the account before host-b did: %v, want ErrFenced", err)
	}
	if err := sb.PutAccount(ctx, store.Account{ID: "account_prod_fence", Name: "Shop", Status: "connected",
		Worker: store.Worker{Service: "wactl", InstanceID: "host-b"}, Epoch: bEpoch}); err != nil {
		t.Fatalf("host-b: %v", err)
	}
	if err := sa.PutAccount(ctx, accountAsDaemonWrites(a, "host-a", "passive")); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed host-a wrote over host-b: %v, want ErrFenced", err)
	}
	got, err := sb.GetAccount(ctx, "account_prod_fence")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "connected" || got.Worker.InstanceID != "host-b" || got.Epoch != bEpoch {
		t.Fatalf("account doc: status=%s worker=%s leaseEpoch=%d; want connected/host-b/%d (host-a's epoch was %d)",
			got.Status, got.Worker.InstanceID, got.Epoch, bEpoch, aEpoch)
	}
	// A writer whose held epoch is older than the document's is refused,
	// even while it believes it is ACTIVE.
	old := fencedStore(t, c, func() (int64, bool) { return aEpoch, true })
	if err := old.PutAccount(ctx, store.Account{ID: "account_prod_fence", Status: "connected", Epoch: aEpoch}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("older epoch wrote: %v", err)
	}
}

// TestDeposedOutboxFenced: claims and results of a process holding no epoch
// are refused; an item claimed under a newer epoch cannot be finished by an
// older one.
func TestDeposedOutboxFenced(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	a, aEpoch, bEpoch, depose := deposeA(t, c)
	sa := fencedStore(t, c, a.Fence)
	ctx := context.Background()
	for _, id := range []string{"req-1", "req-2"} {
		if _, err := sa.EnqueueOutbox(ctx, store.OutboxItem{RequestID: id, AccountID: "acc", ToJID: "40700000001@s.whatsapp.net", Body: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sa.ClaimOutbox(ctx, "host-a", aEpoch, time.Minute, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim while ACTIVE: %v %v", got, err)
	}
	depose()
	epoch, _ := a.Fence()
	if got, err := sa.ClaimOutbox(ctx, "host-a", epoch, time.Minute, 5); !errors.Is(err, store.ErrFenced) || len(got) != 0 {
		t.Fatalf("deposed claim: %d items, %v; want none and ErrFenced", len(got), err)
	}
	if err := sa.CompleteOutbox(ctx, got0(got), "host-a", "3EB0AA"); err == nil {
		t.Fatal("no item")
	}
	claimed := "req-1"
	if err := sa.CompleteOutbox(ctx, claimed, "host-a", "3EB0AA"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed result: %v, want ErrFenced", err)
	}
	if err := sa.FailOutbox(ctx, claimed, "host-a", "x", time.Now()); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed retry: %v, want ErrFenced", err)
	}
	// host-b (same claimer name: one instance id) claims req-2 under its
	// epoch; a writer still holding host-a's older epoch cannot finish it.
	sb := fencedStore(t, c, func() (int64, bool) { return bEpoch, true })
	if got, err := sb.ClaimOutbox(ctx, "host-a", bEpoch, time.Minute, 5); err != nil || len(got) != 1 || got[0].RequestID != "req-2" {
		t.Fatalf("host-b claim: %v %v", got, err)
	}
	old := fencedStore(t, c, func() (int64, bool) { return aEpoch, true })
	if err := old.CompleteOutbox(ctx, "req-2", "host-a", "3EB0BB"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("older epoch finished a newer claim: %v", err)
	}
	it, _ := sb.GetOutbox(ctx, "req-1")
	if it.Status != "processing" || it.ClaimEpoch != aEpoch {
		t.Fatalf("req-1 after refused writes: %+v", it)
	}
}

func got0(items []store.OutboxItem) string {
	if len(items) > 0 {
		return items[0].RequestID
	}
	return "none"
}

// TestCountersFenced: counter deltas are written only under a held epoch,
// never over a counters document written under a newer epoch, and wait in
// memory meanwhile.
func TestCountersFenced(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	ctx := context.Background()
	var held atomic.Int64
	s := fencedStore(t, c, func() (int64, bool) { e := held.Load(); return e, e > 0 })
	msg := func(id string) store.Message {
		return store.Message{AccountID: "acc", ThreadID: "acc__40700000001@s.whatsapp.net", DocID: id,
			ClientJID: "40700000001@s.whatsapp.net", Direction: "inbound", Body: "hi " + id, WAMessageID: id,
			Status: "delivered", MessageType: "text", TsClient: time.Now(), Source: "realtime"}
	}
	counterDoc := func() map[string]any {
		snap, err := c.Collection("wa_metrics").Doc("counters").Collection("accounts").Doc("acc").Get(ctx)
		if err != nil {
			return nil
		}
		return snap.Data()
	}
	if _, err := s.RecordMessage(ctx, msg("M1")); err != nil { // messages are never fenced
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := counterDoc(); d != nil {
		t.Fatalf("counters written while holding no epoch: %v", d)
	}
	if got, _ := s.Counters(ctx, "acc"); got.DedupeWrote != 1 {
		t.Fatalf("pending count lost: %+v", got)
	}
	// A newer holder (epoch 10) writes the counters document.
	newer := fencedStore(t, c, func() (int64, bool) { return 10, true })
	if _, err := newer.RecordMessage(ctx, msg("M2")); err != nil {
		t.Fatal(err)
	}
	if err := newer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	held.Store(5) // older than the document
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := counterDoc(); d["leaseEpoch"] != int64(10) || d["dedupe"].(map[string]any)["wrote"] != int64(1) {
		t.Fatalf("older epoch wrote the counters: %v", d)
	}
	held.Store(11)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := counterDoc(); d["leaseEpoch"] != int64(11) || d["dedupe"].(map[string]any)["wrote"] != int64(2) {
		t.Fatalf("counters after the next tenure: %v", d)
	}
}
