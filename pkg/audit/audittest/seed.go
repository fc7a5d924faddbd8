// Package audittest builds message data in the shapes the audit meets in
// production — the seed audit's 500 messages of which 388 unique, and the
// old system's odd documents — and writes it raw into Firestore or the
// embedded database, bypassing the store (which would refuse duplicates).
package audittest

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/firestore"
)

// Account is the account of the seeded messages.
const Account = "account_prod_0123456789abcdef0123456789abcdef"

// Thread ids of the seed.
var (
	ThreadA = Account + "__40711111111@s.whatsapp.net"
	ThreadB = Account + "__40722222222@s.whatsapp.net"
)

// Msg is one raw message document.
type Msg struct {
	Thread string
	ID     string
	Fields map[string]any
}

func hexSum(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// message builds a contract-shaped document for message n of a thread.
func message(thread string, n int, ts time.Time) Msg {
	waID := fmt.Sprintf("3EB0%016X", n)
	jid := thread[len(Account)+2:]
	dir := "inbound"
	if n%2 == 1 {
		dir = "outbound"
	}
	body := fmt.Sprintf("message %d", n)
	return Msg{Thread: thread, ID: hexSum(Account + "|" + waID)[:24], Fields: map[string]any{
		"accountId": Account, "clientJid": jid, "canonicalThreadId": thread,
		"direction": dir, "body": body, "messageType": "text",
		"waMessageId": waID, "providerMessageId": waID, "status": "delivered", "source": "realtime",
		"tsClient": ts, "tsClientMs": ts.UnixMilli(), "createdAt": ts.Add(time.Second),
		"ingestedAt": ts.Add(2 * time.Second), "schemaVersion": int64(2),
		"stableKeyHash":   hexSum(Account + "|" + jid + "|" + waID + "|0|")[:8],
		"fingerprintHash": hexSum(jid + "|" + dir + "||" + fmt.Sprint(ts.UnixMilli()) + "|text|" + hexSum(body)[:8])[:8],
	}}
}

// copyOf is a second document of the same message, as the old system wrote
// under the proxy's requestId: same content, other id, ingested later.
func copyOf(m Msg, k int) Msg {
	f := make(map[string]any, len(m.Fields))
	for key, v := range m.Fields {
		f[key] = v
	}
	ts := f["tsClient"].(time.Time)
	f["ingestedAt"] = ts.Add(time.Duration(5+k) * time.Second)
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", m.Thread, m.ID, k)))
	return Msg{Thread: m.Thread, ID: hex.EncodeToString(h[:]), Fields: f}
}

// Seed reproduces the seed audit's shape for a 48h window ending at now:
// 500 documents in the window, 388 distinct messages (80 with one extra
// copy, 16 with two), plus 40 older documents outside the window (10 of
// them copies) that a correct window leaves out.
func Seed(now time.Time) []Msg {
	var out []Msg
	for i := 0; i < 388; i++ {
		th := ThreadA
		if i%3 == 0 {
			th = ThreadB
		}
		m := message(th, i, now.Add(-time.Duration(i+1)*time.Minute).Truncate(time.Second))
		out = append(out, m)
		switch {
		case i%4 == 0 && i < 320:
			out = append(out, copyOf(m, 1))
		case i%4 == 2 && i < 64:
			out = append(out, copyOf(m, 1), copyOf(m, 2))
		}
	}
	for i := 0; i < 30; i++ {
		m := message(ThreadA, 1000+i, now.Add(-49*time.Hour-time.Duration(i)*time.Minute).Truncate(time.Second))
		out = append(out, m)
		if i < 10 {
			out = append(out, copyOf(m, 1))
		}
	}
	return out
}

// Legacy returns documents in the old system's shapes, all in the window
// ending at now, and what auto grouping must find in them.
//   - a message stored twice: once with tsClient as an ISO string and no
//     hashes, once as a Timestamp; they share providerMessageId.
//   - a message stored twice without hashes or provider id, one copy
//     without tsClient (only tsClientMs): grouped by the legacy fingerprint.
//   - two receipt stubs named by raw WhatsApp ids, same second, no content:
//     each its own group (the legacy fingerprint would merge them).
//   - one document whose tsClient string is garbage: a parse failure.
func Legacy(now time.Time) []Msg {
	ts := now.Add(-time.Hour).Truncate(time.Second)
	base := map[string]any{"accountId": Account, "canonicalThreadId": ThreadA, "messageType": "text", "status": "delivered"}
	with := func(extra map[string]any) map[string]any {
		f := map[string]any{}
		for k, v := range base {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	return []Msg{
		{ThreadA, "legacy-string-ts", with(map[string]any{"direction": "inbound", "body": "salut", "providerMessageId": "3EB0AAAA",
			"tsClient": ts.Format("2006-01-02T15:04:05.000Z07:00"), "ingestedAt": ts.Add(time.Second)})},
		{ThreadA, "legacy-timestamp", with(map[string]any{"direction": "inbound", "body": "salut", "providerMessageId": "3EB0AAAA",
			"tsClient": ts, "tsClientMs": ts.UnixMilli(), "ingestedAt": ts.Add(3 * time.Second)})},
		{ThreadA, "legacy-no-ts", with(map[string]any{"direction": "outbound", "body": "ok", "tsClientMs": ts.Add(time.Minute).UnixMilli()})},
		{ThreadA, "legacy-no-hash", with(map[string]any{"direction": "outbound", "body": "ok", "tsClient": ts.Add(time.Minute)})},
		{ThreadA, "3EB0STUB0001", map[string]any{"accountId": Account, "status": "read", "tsClient": ts.Add(2 * time.Minute)}},
		{ThreadA, "3EB0STUB0002", map[string]any{"accountId": Account, "status": "read", "tsClient": ts.Add(2 * time.Minute)}},
		{ThreadA, "legacy-garbage-ts", with(map[string]any{"direction": "inbound", "body": "x", "tsClient": "yesterday-ish"})},
		{ThreadA, "legacy-old-string", with(map[string]any{"direction": "inbound", "body": "old", "tsClient": now.Add(-72 * time.Hour).Format(time.RFC3339)})},
	}
}

// WriteFirestore writes msgs raw (batches of 500) and a thread document
// per thread whose summary is its newest message.
func WriteFirestore(ctx context.Context, c *firestore.Client, msgs []Msg) error {
	for chunk := range slices.Chunk(msgs, 500) {
		b := c.Batch()
		for _, m := range chunk {
			b.Set(c.Collection("threads").Doc(m.Thread).Collection("messages").Doc(m.ID), m.Fields)
		}
		if _, err := b.Commit(ctx); err != nil {
			return err
		}
	}
	newest := map[string]Msg{}
	for _, m := range msgs {
		ts, ok := m.Fields["tsClient"].(time.Time)
		if !ok {
			continue
		}
		if cur, ok := newest[m.Thread]; !ok || ts.After(cur.Fields["tsClient"].(time.Time)) {
			newest[m.Thread] = m
		}
	}
	for th, m := range newest {
		ts := m.Fields["tsClient"].(time.Time)
		_, err := c.Collection("threads").Doc(th).Set(ctx, map[string]any{
			"accountId": Account, "lastMessageAt": ts, "lastMessageAtMs": ts.UnixMilli(),
			"lastMessageText": m.Fields["body"], "lastMessagePreview": m.Fields["body"],
		}, firestore.MergeAll)
		if err != nil {
			return err
		}
	}
	return nil
}

// Many returns n messages in ThreadA, each stored twice, newest first from
// now−1min. The newest message's copy carries a tsClient 30 s later (an
// echo stamped on arrival), so the thread summary points at a copy that
// cleanup marks and must then move back to the original.
func Many(now time.Time, n int) []Msg {
	var out []Msg
	for i := 0; i < n; i++ {
		m := message(ThreadA, i, now.Add(-time.Duration(i+1)*time.Minute).Truncate(time.Second))
		cp := copyOf(m, 1)
		if i == 0 {
			ts := m.Fields["tsClient"].(time.Time).Add(30 * time.Second)
			cp.Fields["tsClient"], cp.Fields["tsClientMs"] = ts, ts.UnixMilli()
		}
		out = append(out, m, cp)
	}
	return out
}
