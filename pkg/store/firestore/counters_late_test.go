package firestore_test

import (
	"context"
	"sync"
	"testing"

	gcfirestore "cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// TestCounterWriteThatLandsLateCountsOnce: a counter write whose caller gave
// up (its deadline passed while a dead transaction's lock held the
// document) can still be made by Firestore afterwards, after the next
// flush has read the document and found no sign of it. That flush must not
// count the delta a second time. Seen in TestFlushEndsByItsDeadline
// (pkg/store/journal): dedupe.wrote=3 where 2 messages were written. Both
// forms: the late write lands between the next flush's read and its write,
// and two writes in doubt in a row, the older of which lands late (the
// newer one then must never land). Fenced (serve) and not (the tools).
func TestCounterWriteThatLandsLateCountsOnce(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	t.Run("fenced", func(t *testing.T) { lateCounterWrites(t, c, 1, "account_prod_late_counter_write") })
	t.Run("unfenced", func(t *testing.T) { lateCounterWrites(t, c, 0, "account_prod_late_counter_write_tool") })
}

func lateCounterWrites(t *testing.T, c *gcfirestore.Client, epoch int64, acct string) {
	ctx := context.Background()
	s := openCounterStore(t, c, epoch)
	t.Cleanup(func() { s.Close() })
	record := func(id string) {
		t.Helper()
		if _, err := s.RecordMessage(ctx, counterMsg(acct, "40700000003", id)); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var held []func() error // writes made later, oldest first
	holdNext := 0
	firestore.SetCounterHoldWriteHook(func(got *firestore.Store, _ string, write func() error) bool {
		mu.Lock()
		defer mu.Unlock()
		if got != s || holdNext == 0 {
			return false
		}
		holdNext--
		held = append(held, write)
		return true
	})
	t.Cleanup(func() { firestore.SetCounterHoldWriteHook(nil) })
	// landOldest makes the oldest held write between the next flush's read
	// and its write.
	landOldest := func() {
		firestore.SetCounterWriteHook(func(got *firestore.Store, _ string) {
			mu.Lock()
			defer mu.Unlock()
			if got != s || len(held) == 0 {
				return
			}
			w := held[0]
			held = held[1:]
			if err := w(); err != nil {
				t.Errorf("the late write was refused: %v", err)
			}
			firestore.SetCounterWriteHook(nil)
		})
	}
	t.Cleanup(func() { firestore.SetCounterWriteHook(nil) })
	flushHeld := func(n int) {
		t.Helper()
		mu.Lock()
		holdNext = n
		mu.Unlock()
		if err := s.Flush(ctx); err == nil {
			t.Fatal("a flush whose write was never answered reported success")
		}
	}
	want := func(n int64, when string) { t.Helper(); wantCounted(t, s, acct, n, when) }

	// The document does not exist yet: the held write is its Create.
	record("M1")
	flushHeld(1)
	record("M2")
	landOldest()
	want(2, "a held Create landing after the next flush's read")

	// Two writes in doubt in a row, both conditional on the same version;
	// the older one lands late, during the third flush.
	record("M3")
	flushHeld(1)
	record("M4")
	flushHeld(1)
	record("M5")
	landOldest()
	want(5, "the older of two held updates landing during the next flush")
	mu.Lock()
	rest := held
	held = nil
	mu.Unlock()
	for _, w := range rest {
		if err := w(); err == nil {
			t.Error("a write made on a version the document has left landed")
		}
	}
	want(5, "after the newer held update was tried")
}
