package firestore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	gcfirestore "cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// TestCounterWriteWithLostAnswerCountsOnce: a counter flush whose write
// landed but whose answer was lost (a timeout, Firestore frozen right after
// the commit) is not applied a second time by the next flush, and one that
// did not land is applied exactly once. Before, the delta was put back at
// once and the next flush added it again: TestOutageFrozenEmulator
// (pkg/store/journal) counted 5,001 of 5,000.
func TestCounterWriteWithLostAnswerCountsOnce(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	ctx := context.Background()
	s := openCounterStore(t, c, 1)
	t.Cleanup(func() { s.Close() })
	const acct = "account_prod_lost_counter_answer"
	msg := func(id string) store.Message { return counterMsg(acct, "40700000002", id) }
	var lose atomic.Int32 // the next n writes lose their answer
	firestore.SetCounterLostAnswerHook(func(got *firestore.Store, _ string) bool {
		return got == s && lose.Add(-1) >= 0
	})
	t.Cleanup(func() { firestore.SetCounterLostAnswerHook(nil) })

	record := func(id string) {
		t.Helper()
		if _, err := s.RecordMessage(ctx, msg(id)); err != nil {
			t.Fatal(err)
		}
	}
	want := func(n int64, when string) { t.Helper(); wantCounted(t, s, acct, n, when) }

	// The write lands, its answer is lost: the flush reports the error.
	record("M1")
	lose.Store(1)
	if err := s.Flush(ctx); err == nil {
		t.Fatal("a flush whose answer was lost reported success")
	}
	want(1, "after the lost answer and the next flush")

	// Twice in a row, with new messages between: still exact.
	record("M2")
	lose.Store(1)
	_ = s.Flush(ctx)
	record("M3")
	lose.Store(1)
	_ = s.Flush(ctx)
	want(3, "after two lost answers in a row")

	// A write that did not land (refused before it was made: a newer
	// epoch would be ErrFenced; here the emulator is simply asked again
	// after a lost answer of another account) is applied once.
	record("M4")
	want(4, "after a plain flush")
}

// counterMsg is an inbound message id of acct from peer (digits).
func counterMsg(acct, peer, id string) store.Message {
	jid := peer + "@s.whatsapp.net"
	return store.Message{AccountID: acct, ThreadID: acct + "__" + jid, DocID: id,
		ClientJID: jid, Direction: "inbound", Body: "hi " + id, WAMessageID: id,
		Status: "delivered", MessageType: "text", TsClient: time.Now(), Source: "realtime"}
}

// openCounterStore opens a store fenced at epoch (0: not fenced, as the
// tools open it) whose counters are written only when a test flushes.
func openCounterStore(t *testing.T, c *gcfirestore.Client, epoch int64) *firestore.Store {
	t.Helper()
	var fence func() (int64, bool)
	if epoch != 0 {
		fence = func() (int64, bool) { return epoch, true }
	}
	s, err := firestore.Open(context.Background(), firestore.Options{Client: c, CounterFlushInterval: time.Hour, Fence: fence})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantCounted flushes s and checks acct's count of messages written.
func wantCounted(t *testing.T, s *firestore.Store, acct string, n int64, when string) {
	t.Helper()
	ctx := context.Background()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("%s: flush: %v", when, err)
	}
	cn, err := s.Counters(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if cn.DedupeWrote != n {
		t.Fatalf("%s: counted %d messages written, want %d", when, cn.DedupeWrote, n)
	}
}
