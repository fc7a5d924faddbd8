package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

func testValidation(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	good := Inbound(acc, 1, "VALID1", base, "hi")
	cases := map[string]func(m *store.Message){
		"no account":          func(m *store.Message) { m.AccountID = "" },
		"no thread":           func(m *store.Message) { m.ThreadID = "" },
		"no doc id":           func(m *store.Message) { m.DocID = "" },
		"foreign thread":      func(m *store.Message) { m.ThreadID = accountFor(2) + "__" + m.ClientJID },
		"doc id with a slash": func(m *store.Message) { m.DocID = "a/b" },
	}
	for name, mutate := range cases {
		m := good
		mutate(&m)
		if _, err := s.RecordMessage(ctx(t), m); err == nil {
			t.Errorf("%s: RecordMessage accepted an invalid message", name)
		}
	}
	if n := len(messages(t, s, good.ThreadID)); n != 0 {
		t.Fatalf("invalid messages left %d documents", n)
	}
	record(t, s, good, store.Wrote)
}

func testRoundTrip(t *testing.T, open Opener) {
	s, clock, _ := openFresh(t, open, false)
	acc := accountFor(1)
	body := strings.Repeat("ăîșț ", 30) // 150 characters, multi-byte
	m := Inbound(acc, 1, "3EB0RT0001", base.Add(1500*time.Millisecond), body)
	m.MediaType = "image/jpeg"
	m.MessageType = "image"
	m.WAMessageIDRaw = " 3EB0RT0001"
	before := clock.Now()
	record(t, s, m, store.Wrote)

	got := onlyMessage(t, s, m.ThreadID)
	type field struct {
		name      string
		got, want any
	}
	for _, f := range []field{
		{"AccountID", got.AccountID, m.AccountID}, {"ThreadID", got.ThreadID, m.ThreadID},
		{"DocID", got.DocID, m.DocID}, {"ClientJID", got.ClientJID, m.ClientJID},
		{"ClientJIDRaw", got.ClientJIDRaw, m.ClientJIDRaw}, {"RawJID", got.RawJID, m.RawJID},
		{"ResolvedJID", got.ResolvedJID, m.ResolvedJID}, {"NormalizedPhone", got.NormalizedPhone, m.NormalizedPhone},
		{"PeerType", got.PeerType, m.PeerType}, {"IsGroup", got.IsGroup, m.IsGroup},
		{"SenderJID", got.SenderJID, m.SenderJID}, {"SenderName", got.SenderName, m.SenderName},
		{"Direction", got.Direction, m.Direction}, {"Body", got.Body, m.Body},
		{"WAMessageID", got.WAMessageID, m.WAMessageID}, {"WAMessageIDRaw", got.WAMessageIDRaw, m.WAMessageIDRaw},
		{"Status", got.Status, m.Status}, {"MessageType", got.MessageType, m.MessageType},
		{"MediaType", got.MediaType, m.MediaType}, {"Source", got.Source, m.Source},
		{"StableKeyHash", got.StableKeyHash, m.StableKeyHash}, {"FingerprintHash", got.FingerprintHash, m.FingerprintHash},
		{"TsClientMs", got.TsClient.UnixMilli(), m.TsClient.UnixMilli()},
		{"Edited", got.Edited, false}, {"Revoked", got.Revoked, false}, {"IsDuplicate", got.IsDuplicate, false},
	} {
		if f.got != f.want {
			t.Errorf("message %s = %#v, want %#v", f.name, f.got, f.want)
		}
	}
	if got.CreatedAt.IsZero() {
		t.Error("message createdAt missing: the app never shows a message without it")
	}
	if !near(got.IngestedAt, before, time.Minute) {
		t.Errorf("ingestedAt %v not near the store clock %v", got.IngestedAt, before)
	}

	th := thread(t, s, m.ThreadID)
	for _, f := range []field{
		{"ID", th.ID, m.ThreadID}, {"AccountID", th.AccountID, acc}, {"ClientJID", th.ClientJID, m.ClientJID},
		{"PeerType", th.PeerType, "user"}, {"IsGroup", th.IsGroup, false},
		{"LastMessageAtMs", th.LastMessageAt.UnixMilli(), m.TsClient.UnixMilli()},
		{"LastMessageText", th.LastMessageText, body},
		{"LastMessagePreview", th.LastMessagePreview, string([]rune(body)[:100])},
		{"LastMessageDirection", th.LastMessageDirection, "inbound"},
		{"LastMessageSenderName", th.LastMessageSenderName, m.SenderName},
		{"DisplayName", th.DisplayName, m.DisplayName},
		{"NormalizedPhone", th.NormalizedPhone, m.NormalizedPhone},
	} {
		if f.got != f.want {
			t.Errorf("thread %s = %#v, want %#v", f.name, f.got, f.want)
		}
	}
	if th.UpdatedAt.IsZero() {
		t.Error("thread updatedAt missing")
	}
	found, err := s.FindMessage(ctx(t), acc, m.WAMessageID)
	if err != nil || found.DocID != m.DocID || found.ThreadID != m.ThreadID {
		t.Fatalf("FindMessage = %s/%s, %v; want %s/%s", found.ThreadID, found.DocID, err, m.ThreadID, m.DocID)
	}
}

func testRedelivery(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	m := Inbound(acc, 1, "3EB0REDELIVER", base, "hello")
	record(t, s, m, store.Wrote)
	// A retry after a decryption failure and a history repeat carry the
	// same id, possibly with other details (push name, source).
	m2 := m
	m2.SenderName = "Renamed"
	m2.Source = "history_sync"
	record(t, s, m2, store.Skipped, store.Updated)
	record(t, s, m, store.Skipped, store.Updated)
	got := onlyMessage(t, s, m.ThreadID)
	if got.DocID != m.DocID || got.Body != "hello" {
		t.Fatalf("document %s body %q, want %s %q", got.DocID, got.Body, m.DocID, "hello")
	}
	wantCounters(t, counters(t, s, acc), 1, 2, 0)
}

func testEchoOfQueuedSend(t *testing.T, open Opener) {
	s, clock, _ := openFresh(t, open, false)
	acc := accountFor(1)
	req := requestID(1)
	created, err := s.EnqueueOutbox(ctx(t), store.OutboxItem{RequestID: req, AccountID: acc, ToJID: peer(1), Body: "sent from app", Status: "queued", CreatedAt: clock.Now()})
	if err != nil || !created {
		t.Fatalf("EnqueueOutbox = %v, %v; want created", created, err)
	}
	q := outbound(acc, 1, req, base, "sent from app")
	record(t, s, q, store.Wrote)
	if got := onlyMessage(t, s, q.ThreadID); got.Status != "queued" || got.DocID != req {
		t.Fatalf("queued document %s status %q", got.DocID, got.Status)
	}

	// The send succeeded: the same document learns its WhatsApp id.
	sent := q
	sent.WAMessageID, sent.WAMessageIDRaw, sent.ProviderMessageID = "3EB0SENT01", "3EB0SENT01", "3EB0SENT01"
	sent.Status = "sent"
	record(t, s, sent, store.Updated)

	// The echo (history sync, another device) has the id-derived doc id.
	e := echo(acc, 1, "3EB0SENT01", base, "sent from app")
	record(t, s, e, store.Skipped, store.Updated)
	record(t, s, e, store.Skipped, store.Updated)

	got := onlyMessage(t, s, q.ThreadID)
	if got.DocID != req {
		t.Fatalf("the one document is %s, want the requestId %s", got.DocID, req)
	}
	if got.WAMessageID != "3EB0SENT01" || got.ProviderMessageID != "3EB0SENT01" || got.ClientMessageID != q.ClientMessageID {
		t.Fatalf("document ids wa=%q provider=%q client=%q", got.WAMessageID, got.ProviderMessageID, got.ClientMessageID)
	}
	if got.Status != "sent" {
		t.Fatalf("status %q, want sent", got.Status)
	}
	f, err := s.FindMessage(ctx(t), acc, "3EB0SENT01")
	if err != nil || f.DocID != req {
		t.Fatalf("FindMessage → %q, %v; want %s", f.DocID, err, req)
	}
	wantCounters(t, counters(t, s, acc), 1, 3, 0)
	if it, err := s.GetOutbox(ctx(t), req); err != nil || it.RequestID != req {
		t.Fatalf("GetOutbox = %+v, %v", it, err)
	}
	if created, err := s.EnqueueOutbox(ctx(t), store.OutboxItem{RequestID: req, AccountID: acc, ToJID: peer(1), Body: "other", Status: "queued"}); err != nil || created {
		t.Fatalf("second EnqueueOutbox = %v, %v; want not created", created, err)
	}
}

func testEchoOfImmediateSend(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	req := requestID(2)
	sent := outbound(acc, 1, req, base, "direct send")
	sent.WAMessageID, sent.WAMessageIDRaw, sent.ProviderMessageID, sent.Status = "3EB0DIRECT", "3EB0DIRECT", "3EB0DIRECT", "sent"
	record(t, s, sent, store.Wrote)
	record(t, s, echo(acc, 1, "3EB0DIRECT", base, "direct send"), store.Skipped, store.Updated)
	if got := onlyMessage(t, s, sent.ThreadID); got.DocID != req {
		t.Fatalf("document %s, want %s", got.DocID, req)
	}
	// An echo never moves the status backwards.
	if err := s.UpdateReceipt(ctx(t), store.Receipt{AccountID: acc, ChatJID: peer(1), WAMessageIDs: []string{"3EB0DIRECT"}, Status: "read", At: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	record(t, s, echo(acc, 1, "3EB0DIRECT", base, "direct send"), store.Skipped, store.Updated)
	if got := onlyMessage(t, s, sent.ThreadID); got.Status != "read" {
		t.Fatalf("status %q after a late echo, want read", got.Status)
	}
	wantCounters(t, counters(t, s, acc), 1, 2, 0)
}

func testReceipts(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	a := echo(acc, 1, "3EB0RCPT01", base, "one")
	b := echo(acc, 1, "3EB0RCPT02", base.Add(time.Second), "two")
	q := outbound(acc, 1, requestID(3), base.Add(2*time.Second), "three")
	q.WAMessageID, q.ProviderMessageID, q.Status = "3EB0RCPT03", "3EB0RCPT03", "sent"
	for _, m := range []store.Message{a, b, q} {
		record(t, s, m, store.Wrote)
	}
	rc := func(status string, at time.Time, ids ...string) {
		t.Helper()
		if err := s.UpdateReceipt(ctx(t), store.Receipt{AccountID: acc, ChatJID: peer(1), WAMessageIDs: ids, Status: status, At: at}); err != nil {
			t.Fatalf("UpdateReceipt(%s %v): %v", status, ids, err)
		}
	}
	t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute)
	rc("delivered", t1, "3EB0RCPT01", "3EB0RCPT02", "3EB0RCPT03", "3EB0UNKNOWN")
	rc("read", t2, "3EB0RCPT01", "3EB0RCPT03")
	rc("delivered", t2.Add(time.Minute), "3EB0RCPT01") // late delivered after read

	ms := messages(t, s, a.ThreadID)
	if len(ms) != 3 {
		t.Fatalf("%d documents after receipts, want 3 (no stubs)", len(ms))
	}
	by := map[string]store.Message{}
	for _, m := range ms {
		by[m.WAMessageID] = m
	}
	want := map[string]string{"3EB0RCPT01": "read", "3EB0RCPT02": "delivered", "3EB0RCPT03": "read"}
	for id, st := range want {
		m, ok := by[id]
		if !ok {
			t.Fatalf("message %s missing", id)
		}
		if m.Status != st {
			t.Errorf("%s status %q, want %q", id, m.Status, st)
		}
		if !sameMs(m.DeliveredAt, t1) {
			t.Errorf("%s deliveredAt %v, want %v", id, m.DeliveredAt, t1)
		}
		if st == "read" && !sameMs(m.ReadAt, t2) {
			t.Errorf("%s readAt %v, want %v", id, m.ReadAt, t2)
		}
	}
	if by["3EB0RCPT03"].DocID != q.DocID {
		t.Errorf("receipt of a queued send landed on %s, want %s", by["3EB0RCPT03"].DocID, q.DocID)
	}
	if _, err := s.FindMessage(ctx(t), acc, "3EB0UNKNOWN"); !isNotFound(err) {
		t.Fatalf("receipt for an unknown id created something: %v", err)
	}
	if ms, err := s.Inbox(ctx(t), acc, store.Page{Limit: 100}); err != nil || len(ms) != 3 {
		t.Fatalf("Inbox has %d messages, %v; want 3", len(ms), err)
	}
}

func testEditRevoke(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	m := Inbound(acc, 1, "3EB0EDIT01", base, "typo")
	other := Inbound(acc, 1, "3EB0EDIT02", base.Add(time.Second), "keep")
	record(t, s, m, store.Wrote)
	record(t, s, other, store.Wrote)
	if err := s.ApplyEdit(ctx(t), store.Edit{AccountID: acc, ChatJID: m.ClientJID, TargetWAID: m.WAMessageID, NewBody: "fixed", At: base.Add(time.Minute)}); err != nil {
		t.Fatalf("ApplyEdit: %v", err)
	}
	f, err := s.FindMessage(ctx(t), acc, m.WAMessageID)
	if err != nil || f.Body != "fixed" || !f.Edited || f.DocID != m.DocID {
		t.Fatalf("after edit: %s body %q edited %v, %v", f.DocID, f.Body, f.Edited, err)
	}
	if err := s.ApplyRevoke(ctx(t), store.Revoke{AccountID: acc, ChatJID: m.ClientJID, TargetWAID: m.WAMessageID, At: base.Add(2 * time.Minute)}); err != nil {
		t.Fatalf("ApplyRevoke: %v", err)
	}
	f, err = s.FindMessage(ctx(t), acc, m.WAMessageID)
	if err != nil || !f.Revoked || f.DocID != m.DocID {
		t.Fatalf("after revoke: %s revoked %v, %v", f.DocID, f.Revoked, err)
	}
	if n := len(messages(t, s, m.ThreadID)); n != 2 {
		t.Fatalf("%d documents after edit and revoke, want 2", n)
	}
	o, _ := s.FindMessage(ctx(t), acc, other.WAMessageID)
	if o.Body != "keep" || o.Edited || o.Revoked {
		t.Fatalf("the other message changed: %+v", o)
	}
	if err := s.ApplyEdit(ctx(t), store.Edit{AccountID: acc, ChatJID: m.ClientJID, TargetWAID: "NOPE", NewBody: "x", At: base}); !isNotFound(err) {
		t.Fatalf("edit of an unknown message: %v, want ErrNotFound", err)
	}
	if err := s.ApplyRevoke(ctx(t), store.Revoke{AccountID: acc, ChatJID: m.ClientJID, TargetWAID: "NOPE", At: base}); !isNotFound(err) {
		t.Fatalf("revoke of an unknown message: %v, want ErrNotFound", err)
	}
	if n := len(messages(t, s, m.ThreadID)); n != 2 {
		t.Fatalf("%d documents after edits of unknown ids, want 2", n)
	}
}

// testEchoBeforeSendRecorded: the echo of an app send (history sync, or
// another device) arrives before the outbox worker records the WhatsApp id
// on the queued document. The echo got a document of its own; recording
// the send must leave one live document — the app's, which the app already
// shows — with the echo's marked a duplicate of it (never deleted), and
// every later path for that id must land on the app's.
func testEchoBeforeSendRecorded(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	req := requestID(3)
	q := outbound(acc, 1, req, base, "raced")
	record(t, s, q, store.Wrote)
	e := echo(acc, 1, "3EB0RACE01", base, "raced")
	record(t, s, e, store.Wrote) // nothing links it to the queued send yet

	sent := q
	sent.WAMessageID, sent.WAMessageIDRaw, sent.ProviderMessageID = "3EB0RACE01", "3EB0RACE01", "3EB0RACE01"
	sent.Status = "sent"
	record(t, s, sent, store.Updated)
	record(t, s, sent, store.Skipped, store.Updated)
	record(t, s, e, store.Skipped, store.Updated)

	var live, dups []store.Message
	for _, m := range messages(t, s, q.ThreadID) {
		if m.IsDuplicate {
			dups = append(dups, m)
		} else {
			live = append(live, m)
		}
	}
	if len(live) != 1 || live[0].DocID != req || live[0].Status != "sent" || live[0].WAMessageID != "3EB0RACE01" {
		t.Fatalf("live documents %+v; want only %s, sent, with the WhatsApp id", live, req)
	}
	if len(dups) != 1 || dups[0].DocID != e.DocID || dups[0].DuplicateOf != req {
		t.Fatalf("duplicates %+v; want the echo's %s marked a duplicate of %s", dups, e.DocID, req)
	}
	if f, err := s.FindMessage(ctx(t), acc, "3EB0RACE01"); err != nil || f.DocID != req {
		t.Fatalf("FindMessage → %q, %v; want %s", f.DocID, err, req)
	}
	if err := s.UpdateReceipt(ctx(t), store.Receipt{AccountID: acc, ChatJID: peer(1), WAMessageIDs: []string{"3EB0RACE01"}, Status: "read", At: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if f, err := s.FindMessage(ctx(t), acc, "3EB0RACE01"); err != nil || f.Status != "read" {
		t.Fatalf("after the read receipt: %+v, %v", f, err)
	}
}
