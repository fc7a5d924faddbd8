package journal_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// holdCounterDocs simulates hosts killed (kill -9) between the read and the
// commit of a counter transaction (what wactl did before counters were
// written with conditional writes): each transaction reads an account's
// counters document and never ends, so Firestore (the emulator keeps such
// a lock over a minute) refuses every write of that document for a while
// (Aborted after ~2 s). The locks go when release is called.
func holdCounterDocs(t *testing.T, c *firestore.Client, accounts []string) (release func()) {
	t.Helper()
	var refs []*firestore.DocumentRef
	for _, acc := range accounts {
		refs = append(refs, c.Collection("wa_metrics").Doc("counters").Collection("accounts").Doc(acc))
	}
	return fsemu.HoldDeadTransaction(t, c, refs...)
}

// accountMsg is message i of account acc (msg(i) moved to that account).
func accountMsg(acc string, i int) store.Message {
	m := msg(i)
	m.AccountID = acc
	m.ThreadID = acc + "__" + m.ClientJID
	return m
}

// TestFlushEndsByItsDeadline: the graceful stop's final Flush (the journal
// backlog, then the backend's counter deltas) must end by its context's
// deadline, with the journal-first writes (receipts) shipped. In the CI
// failure (TestPostgresFailoverWithoutQR, host B) the journal had nothing
// left to ship: Flush spent ~17-19 s after its 3.3 s deadline in the
// Firestore store's counter flush, which waits for the background counter
// round (10 s timeout of its own, holding the flush lock) without looking at
// the caller's context, while counters documents locked by the killed host
// A refused every write. The stop overran and the lease release waited.
func TestFlushEndsByItsDeadline(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	ctx := context.Background()
	accounts := []string{
		"account_test_00000000000000000000000000000011", "account_test_00000000000000000000000000000012",
		"account_test_00000000000000000000000000000013", "account_test_00000000000000000000000000000014",
	}
	// Serve's store: Firestore behind the journal, fenced by a held lease,
	// counter deltas persisted in the background (often here, so that a
	// round is under way when the stop comes).
	fs, err := fsstore.Open(ctx, fsstore.Options{Client: c, CounterFlushInterval: 50 * time.Millisecond,
		Fence: func() (int64, bool) { return 7, true }})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), fs, journal.Options{})
	if err != nil {
		fs.Close()
		t.Fatal(err)
	}
	for k, acc := range accounts {
		if _, err := j.RecordMessage(ctx, accountMsg(acc, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Flush(ctx); err != nil { // the counters documents exist
		t.Fatal(err)
	}
	release := holdCounterDocs(t, c, accounts)
	t.Cleanup(func() { release(); j.Close() })

	// Just before the stop: more messages (counter deltas for the locked
	// documents) and receipts for them from several handlers at once, most
	// of which go to the journal first.
	for k, acc := range accounts {
		if _, err := j.RecordMessage(ctx, accountMsg(acc, 10+k)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for k, acc := range accounts {
		for _, i := range []int{k, 10 + k} {
			wg.Go(func() {
				m := accountMsg(acc, i)
				if err := j.UpdateReceipt(ctx, store.Receipt{AccountID: acc, WAMessageIDs: []string{m.WAMessageID}, Status: "read"}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	t.Logf("journal backlog at the stop: %d", j.Health(ctx).JournalBacklog)

	const budget = 1500 * time.Millisecond
	fctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	t0 := time.Now()
	ferr := j.Flush(fctx)
	took := time.Since(t0)
	t.Logf("Flush with a %v deadline returned after %v: %v", budget, took.Round(time.Millisecond), ferr)
	if took > budget+time.Second {
		t.Errorf("Flush returned %v after its %v deadline: a graceful stop overruns its budget and the lease release waits", (took - budget).Round(time.Millisecond), budget)
	}
	if ferr == nil {
		t.Errorf("Flush reported success while the locked counters documents could not be written")
	}
	// The journal part ships at once: nothing journal-first is left.
	if n := j.Health(ctx).JournalBacklog; n != 0 {
		t.Errorf("%d journal entries left after the final Flush with Firestore up", n)
	}
	for k, acc := range accounts {
		for _, i := range []int{k, 10 + k} {
			m := accountMsg(acc, i)
			snap, err := c.Collection("threads").Doc(m.ThreadID).Collection("messages").Doc(m.DocID).Get(ctx)
			if err != nil || snap.Data()["status"] != "read" {
				t.Errorf("receipt of %s/%s not applied: status %v, %v", acc, m.WAMessageID, snap.Data()["status"], err)
			}
		}
	}
	// Nothing is lost: once the documents are free, the deltas held back
	// are written by the next flush.
	release()
	if err := j.Flush(ctx); err != nil {
		t.Fatalf("Flush after the locks went: %v", err)
	}
	for _, acc := range accounts {
		snap, err := c.Collection("wa_metrics").Doc("counters").Collection("accounts").Doc(acc).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w := snap.Data()["dedupe"].(map[string]any)["wrote"]; w != int64(2) {
			t.Errorf("counters of %s: dedupe.wrote=%v, want 2 (a delta lost)", acc, w)
		}
	}
}
