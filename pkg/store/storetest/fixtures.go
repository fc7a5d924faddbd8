package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// base is the time of message 0; message times are base + i seconds.
var base = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func accountFor(n int) string {
	return dedupe.AccountIDFromCanonical("test", fmt.Sprintf("+4070000%04d", n))
}

// peer returns the canonical JID of peer n of a test.
func peer(n int) string { return fmt.Sprintf("4071100%04d@s.whatsapp.net", n) }

// Inbound builds an inbound text message i from peer p with every
// identifier computed the way the contract says.
func Inbound(accountID string, p int, waID string, at time.Time, body string) store.Message {
	jid := peer(p)
	typ := dedupe.TypeText
	return store.Message{
		AccountID:       accountID,
		ThreadID:        dedupe.ThreadID(accountID, jid),
		DocID:           dedupe.MessageDocID(accountID, waID),
		ClientJID:       jid,
		ClientJIDRaw:    jid,
		RawJID:          jid,
		ResolvedJID:     jid,
		NormalizedPhone: dedupe.NormalizedPhone(jid),
		PeerType:        dedupe.PeerType(jid),
		SenderJID:       jid,
		SenderName:      fmt.Sprintf("Peer %d", p),
		Direction:       "inbound",
		Body:            body,
		WAMessageID:     waID,
		WAMessageIDRaw:  waID,
		Status:          "delivered",
		MessageType:     typ,
		TsClient:        at,
		Source:          "realtime",
		StableKeyHash:   dedupe.StableKeyHash(dedupe.StableKey(accountID, jid, waID, false, "")),
		FingerprintHash: dedupe.FingerprintHash(dedupe.Fingerprint(jid, "inbound", jid, at.UnixMilli(), typ, body)),
		DisplayName:     fmt.Sprintf("Peer %d", p),
	}
}

// outbound builds an app send queued under requestID (no WhatsApp id yet).
func outbound(accountID string, p int, requestID string, at time.Time, body string) store.Message {
	m := Inbound(accountID, p, "", at, body)
	m.DocID = requestID
	m.WAMessageID, m.WAMessageIDRaw, m.StableKeyHash = "", "", ""
	m.Direction = "outbound"
	m.Status = "queued"
	m.Source = "outbound"
	m.SenderJID = ""
	m.SenderName = ""
	m.DisplayName = ""
	m.ClientMessageID = "client-" + requestID[:8]
	m.FingerprintHash = dedupe.FingerprintHash(dedupe.Fingerprint(m.ClientJID, "outbound", "", at.UnixMilli(), m.MessageType, body))
	return m
}

// echo is the WhatsApp echo of a send: the id-derived document id.
func echo(accountID string, p int, waID string, at time.Time, body string) store.Message {
	m := Inbound(accountID, p, waID, at, body)
	m.Direction = "outbound"
	m.Status = "sent"
	m.SenderJID = ""
	m.SenderName = ""
	m.DisplayName = ""
	m.ProviderMessageID = waID
	m.StableKeyHash = dedupe.StableKeyHash(dedupe.StableKey(accountID, m.ClientJID, waID, true, ""))
	m.FingerprintHash = dedupe.FingerprintHash(dedupe.Fingerprint(m.ClientJID, "outbound", "", at.UnixMilli(), m.MessageType, body))
	return m
}

func requestID(n int) string {
	return strings.Repeat(fmt.Sprintf("%08x", n), 8)
}

func record(t *testing.T, s store.Store, m store.Message, want ...store.Outcome) store.Outcome {
	t.Helper()
	o, err := s.RecordMessage(ctx(t), m)
	if err != nil {
		t.Fatalf("RecordMessage(%s): %v", m.WAMessageID, err)
	}
	if len(want) > 0 {
		ok := false
		for _, w := range want {
			ok = ok || o == w
		}
		if !ok {
			t.Fatalf("RecordMessage(%s/%s) = %v, want one of %v", m.WAMessageID, m.DocID, o, want)
		}
	}
	return o
}

func messages(t *testing.T, s store.Store, threadID string) []store.Message {
	t.Helper()
	ms, err := s.ListMessages(ctx(t), threadID, store.Page{Limit: 100000})
	if err != nil {
		t.Fatalf("ListMessages(%s): %v", threadID, err)
	}
	return ms
}

func onlyMessage(t *testing.T, s store.Store, threadID string) store.Message {
	t.Helper()
	ms := messages(t, s, threadID)
	if len(ms) != 1 {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.DocID
		}
		t.Fatalf("thread %s has %d documents %v, want exactly 1", threadID, len(ms), ids)
	}
	return ms[0]
}

func counters(t *testing.T, s store.Store, accountID string) store.Counters {
	t.Helper()
	c, err := s.Counters(ctx(t), accountID)
	if err != nil {
		t.Fatalf("Counters(%s): %v", accountID, err)
	}
	return c
}

func wantCounters(t *testing.T, got store.Counters, wrote, skipped, strong int64) {
	t.Helper()
	if got.DedupeWrote != wrote || got.DedupeSkipped != skipped || got.DedupeStrongSkipped != strong {
		t.Fatalf("dedupe counters wrote/skipped/strongSkipped = %d/%d/%d, want %d/%d/%d",
			got.DedupeWrote, got.DedupeSkipped, got.DedupeStrongSkipped, wrote, skipped, strong)
	}
}

func sameMs(a, b time.Time) bool { return a.UnixMilli() == b.UnixMilli() }

func near(a, b time.Time, d time.Duration) bool {
	x := a.Sub(b)
	return x <= d && x >= -d
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func thread(t *testing.T, s store.Store, id string) store.Thread {
	t.Helper()
	th, err := s.GetThread(ctx(t), id)
	if err != nil {
		t.Fatalf("GetThread(%s): %v", id, err)
	}
	return th
}
