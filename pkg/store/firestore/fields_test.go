package firestore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// The document the Flutter app reads is checked field by field against the
// contract: every name, and the Go type the client decodes it to
// (string, bool, int64 for integers, time.Time for Timestamps).
func TestMessageDocumentMatchesContract(t *testing.T) {
	t.Parallel()
	c, project := fsemu.NewClient(t)
	s, err := firestore.Open(context.Background(), firestore.Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	acc := "account_prod_0123456789abcdef0123456789abcdef"
	jid := "40711000001@s.whatsapp.net"
	at := time.Date(2026, 2, 3, 4, 5, 6, 789_000_000, time.UTC)
	m := store.Message{
		AccountID: acc, ThreadID: acc + "__" + jid, DocID: "0123456789abcdef01234567",
		ClientJID: jid, ClientJIDRaw: jid + ":3", RawJID: jid, ResolvedJID: jid, NormalizedPhone: "+40711000001",
		PeerType: "user", SenderJID: jid, SenderName: "Ana", Direction: "inbound", Body: "salut",
		WAMessageID: "3EB0FIELDS", WAMessageIDRaw: "3EB0FIELDS", Status: "delivered",
		MessageType: "text", TsClient: at, Source: "realtime", StableKeyHash: "a1b2c3d4", FingerprintHash: "e5f6a7b8",
	}
	before := time.Now().Add(-time.Minute)
	if o, err := s.RecordMessage(ctx, m); err != nil || o != store.Wrote {
		t.Fatalf("RecordMessage = %v, %v", o, err)
	}
	snap, err := c.Collection("threads").Doc(m.ThreadID).Collection("messages").Doc(m.DocID).Get(ctx)
	if err != nil {
		t.Fatalf("the message document %s is not where the app reads it (project %s): %v", m.DocID, project, err)
	}
	got := snap.Data()
	str, boolean, integer, timestamp := reflect.TypeOf(""), reflect.TypeOf(false), reflect.TypeOf(int64(0)), reflect.TypeOf(time.Time{})
	var null reflect.Type // a Firestore null decodes to nil
	want := map[string]struct {
		typ   reflect.Type
		value any // nil: only the type is checked
	}{
		"accountId": {str, acc}, "clientJid": {str, jid}, "clientJidRaw": {str, jid + ":3"},
		// null where the old service wrote null: resolvedJid equal to the
		// raw JID, senderJid of a 1:1 chat, an empty providerMessageId.
		"rawJid": {str, jid}, "resolvedJid": {null, nil}, "normalizedPhone": {str, "+40711000001"},
		"canonicalThreadId": {str, m.ThreadID}, "isLidThread": {boolean, false}, "peerType": {str, "user"}, "isGroup": {boolean, false},
		"senderJid": {null, nil}, "senderName": {str, "Ana"}, "direction": {str, "inbound"}, "body": {str, "salut"},
		"waMessageId": {str, "3EB0FIELDS"}, "waMessageIdRaw": {str, "3EB0FIELDS"}, "providerMessageId": {null, nil},
		"clientMessageId": {str, ""}, "status": {str, "delivered"}, "messageType": {str, "text"}, "mediaType": {str, ""},
		"tsClient": {timestamp, nil}, "tsClientMs": {integer, at.UnixMilli()},
		"tsClientFallback": {boolean, false}, "tsClientReason": {null, nil}, "tsClientIso": {str, "2026-02-03T04:05:06.789Z"},
		"tsServer": {timestamp, nil}, "ingestedAt": {timestamp, nil}, "createdAt": {timestamp, nil},
		"createdAtMs": {integer, at.UnixMilli()}, "schemaVersion": {integer, int64(firestore.SchemaVersion)},
		"source": {str, "realtime"}, "stableKeyHash": {str, "a1b2c3d4"}, "fingerprintHash": {str, "e5f6a7b8"},
	}
	for name, w := range want {
		v, ok := got[name]
		if !ok {
			t.Errorf("field %s missing", name)
			continue
		}
		if reflect.TypeOf(v) != w.typ {
			t.Errorf("field %s has type %T, want %v", name, v, w.typ)
			continue
		}
		if w.value != nil && v != w.value {
			t.Errorf("field %s = %#v, want %#v", name, v, w.value)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected field %s (not in the contract)", name)
		}
	}
	if ts := got["tsClient"].(time.Time); !ts.Equal(at) {
		t.Errorf("tsClient = %v, want %v", ts, at)
	}
	for _, f := range []string{"createdAt", "ingestedAt", "tsServer"} {
		if ts := got[f].(time.Time); ts.Before(before) || ts.After(time.Now().Add(time.Minute)) {
			t.Errorf("%s = %v is not the server's current time", f, ts)
		}
	}

	// The mapping and the thread summary.
	mp, err := c.Collection("message_ids").Doc(acc + "__3EB0FIELDS").Get(ctx)
	if err != nil {
		t.Fatalf("message_ids mapping: %v", err)
	}
	md := mp.Data()
	if md["accountId"] != acc || md["threadId"] != m.ThreadID || md["docId"] != m.DocID || md["waMessageId"] != "3EB0FIELDS" {
		t.Errorf("mapping %v", md)
	}
	if _, ok := md["updatedAt"].(time.Time); !ok {
		t.Errorf("mapping updatedAt is %T, want a Timestamp", md["updatedAt"])
	}
	th, err := c.Collection("threads").Doc(m.ThreadID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	td := th.Data()
	if v, ok := td["lastMessageAt"].(time.Time); !ok || !v.Equal(at) {
		t.Errorf("thread lastMessageAt %#v, want Timestamp %v", td["lastMessageAt"], at)
	}
	if td["lastMessageAtMs"] != at.UnixMilli() || td["lastMessageText"] != "salut" || td["lastMessagePreview"] != "salut" ||
		td["accountId"] != acc || td["clientJid"] != jid || td["canonicalThreadId"] != m.ThreadID || td["peerType"] != "user" {
		t.Errorf("thread summary %v", td)
	}
	if _, ok := td["updatedAt"].(time.Time); !ok {
		t.Errorf("thread updatedAt is %T, want a Timestamp", td["updatedAt"])
	}
}
