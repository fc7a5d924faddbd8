package firestore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// TestCounterWriteOfAKilledHostLocksNothing: host A is killed (kill -9)
// in the middle of writing an account's counters, between the read and
// the write. Host B, which holds the lease next, must still write that
// account's counters at once. With a transaction, A's read left a lock
// the emulator (like Firestore, until the transaction expires) keeps for
// a minute and more: every flush of B retried for ~19 s (five aborted
// attempts) while holding the flush lock, and a graceful stop of B missed
// its shutdown budget (TestPostgresFailoverWithoutQR: "no exit 20s after
// interrupt" under load).
func TestCounterWriteOfAKilledHostLocksNothing(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	ctx := context.Background()
	const acct = "account_prod_killed_mid_counter_write"
	msg := func(id string) store.Message { return counterMsg(acct, "40700000001", id) }
	a, b := openCounterStore(t, c, 1), openCounterStore(t, c, 2)
	t.Cleanup(func() { b.Close() })

	// A stops dead between the read and the write of its counter flush.
	dead, inside := make(chan struct{}), make(chan struct{})
	var once sync.Once
	firestore.SetCounterWriteHook(func(s *firestore.Store, _ string) {
		if s == a {
			once.Do(func() { close(inside) })
			<-dead
		}
	})
	t.Cleanup(func() { firestore.SetCounterWriteHook(nil); close(dead); a.Close() })
	if _, err := a.RecordMessage(ctx, msg("M1")); err != nil {
		t.Fatal(err)
	}
	go a.Flush(ctx)
	select {
	case <-inside:
	case <-time.After(10 * time.Second):
		t.Fatal("A's counter flush never reached its write")
	}

	// B holds the lease now and flushes its own counts of the account.
	if _, err := b.RecordMessage(ctx, msg("M2")); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	t0 := time.Now()
	err := b.Flush(fctx)
	took := time.Since(t0)
	t.Logf("B's flush with A dead mid-write: %s, err %v", took.Round(time.Millisecond), err)
	if err != nil || took > 5*time.Second {
		t.Fatalf("B could not write the account's counters after A died mid-write: %s, %v", took.Round(time.Millisecond), err)
	}
	snap, err := c.Collection("wa_metrics").Doc("counters").Collection("accounts").Doc(acct).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := snap.Data(); d["leaseEpoch"] != int64(2) || d["dedupe"].(map[string]any)["wrote"] != int64(1) {
		t.Fatalf("counters after B's flush: %v", d)
	}
}
