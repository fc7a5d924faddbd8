package storetest

import (
	"testing"

	"github.com/wactl/wactl/pkg/store"
)

// testFailedStatus pins where failed sits: above queued and sent (a send
// given up for good marks its document failed), below delivered and read
// (a later receipt proves the message arrived and wins).
func testFailedStatus(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	status := func(m store.Message, want string) {
		t.Helper()
		if got := onlyMessage(t, s, m.ThreadID); got.Status != want || got.DocID != m.DocID {
			t.Fatalf("document %s status %q, want %q", got.DocID, got.Status, want)
		}
	}

	// Never sent: queued → failed, and a replay of the queued write does
	// not bring it back.
	q := outbound(acc, 1, requestID(1), base, "never sent")
	record(t, s, q, store.Wrote)
	failed := q
	failed.Status = "failed"
	record(t, s, failed, store.Updated)
	status(q, "failed")
	record(t, s, q, store.Skipped)
	status(q, "failed")

	// Sent, then failed for good, then WhatsApp delivers after all.
	q2 := outbound(acc, 2, requestID(2), base, "late delivery")
	record(t, s, q2, store.Wrote)
	sent := q2
	sent.WAMessageID, sent.WAMessageIDRaw, sent.ProviderMessageID, sent.Status = "3EB0FAIL02", "3EB0FAIL02", "3EB0FAIL02", "sent"
	record(t, s, sent, store.Updated)
	// As the outbox worker records it: the requestId document, no WhatsApp id.
	failed2 := q2
	failed2.Status = "failed"
	record(t, s, failed2, store.Updated)
	status(q2, "failed")
	record(t, s, sent, store.Skipped)
	status(q2, "failed")
	if err := s.UpdateReceipt(ctx(t), store.Receipt{AccountID: acc, ChatJID: q2.ClientJID, WAMessageIDs: []string{"3EB0FAIL02"}, Status: "delivered", At: base}); err != nil {
		t.Fatal(err)
	}
	status(q2, "delivered")
	record(t, s, failed2, store.Skipped)
	status(q2, "delivered")
	if err := s.UpdateReceipt(ctx(t), store.Receipt{AccountID: acc, ChatJID: q2.ClientJID, WAMessageIDs: []string{"3EB0FAIL02"}, Status: "read", At: base}); err != nil {
		t.Fatal(err)
	}
	status(q2, "read")
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
