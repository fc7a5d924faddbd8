package journal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/journal"
)

// With Firestore unreachable (nothing listens on the port), messages are
// still recorded, readable through FindMessage, counted in Health, kept in
// a private file, and the journal refuses a second process.
func TestUnreachableBackend(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "journal.db")
	j := open(t, "127.0.0.1:1", "unreachable", path, journal.Options{
		CallTimeout: 300 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}, false, nil)
	ctx := context.Background()
	for i := range 20 {
		o, err := j.RecordMessage(ctx, msg(i))
		if err != nil || o != store.Wrote {
			t.Fatalf("RecordMessage(%d) = %v, %v; want a provisional wrote", i, o, err)
		}
	}
	if o, err := j.RecordMessage(ctx, msg(3)); err != nil || o != store.Skipped {
		t.Fatalf("redelivery while down = %v, %v; want skipped (known to the journal)", o, err)
	}
	if err := j.UpdateReceipt(ctx, store.Receipt{AccountID: testAccount, WAMessageIDs: []string{msg(1).WAMessageID}, Status: "read"}); err != nil {
		t.Fatalf("a receipt while Firestore is down must be journaled: %v", err)
	}
	if _, err := j.RecordMessage(ctx, store.Message{AccountID: testAccount, ThreadID: "other__x", DocID: "d"}); err == nil {
		t.Fatal("an invalid message was journaled")
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := j.FindMessage(fctx, testAccount, msg(7).WAMessageID)
	if err != nil || got.DocID != msg(7).DocID || got.Body != msg(7).Body {
		t.Fatalf("FindMessage from the journal = %+v, %v", got, err)
	}
	// send-message's check finds the journal's copy too; the outbox item
	// is Firestore's alone, and unreadable is not "absent".
	chk := store.CheckSend(fctx, j, testAccount, msg(7).WAMessageID, "key-while-down")
	if chk.MessageErr != nil || chk.Message.DocID != msg(7).DocID {
		t.Fatalf("CheckSend's message from the journal = %+v, %v", chk.Message.DocID, chk.MessageErr)
	}
	if chk.OutboxErr == nil || errors.Is(chk.OutboxErr, store.ErrNotFound) {
		t.Fatalf("CheckSend's outbox item with Firestore down: %v, want an error other than not found", chk.OutboxErr)
	}
	time.Sleep(20 * time.Millisecond)
	h := j.Health(ctx)
	if h.Reachable || h.JournalBacklog != 22 || h.JournalOldest <= 0 || h.LastError == "" {
		t.Fatalf("health %+v; want unreachable, backlog 22 with an age and an error", h)
	}
	sctx, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if err := j.Flush(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with Firestore down = %v, want the context's deadline", err)
	}
	for _, f := range []string{path, path + "-wal"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("journal directory mode %v, want 0700", st.Mode().Perm())
	}
	if _, err := journal.Open(path, nil, journal.Options{}); err == nil {
		t.Fatal("a second process could open the same journal")
	}
}
