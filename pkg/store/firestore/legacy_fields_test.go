package firestore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// wactl writes the fields the old service wrote, with its types: the
// WhatsApp id as providerMessageId on inbound messages, the tsClient
// bookkeeping, isLidThread on messages and threads, null where the old
// service had no value, an expiring message_ids mapping, and accounts whose
// createdAt is an ISO string and whose empty qrCode/lastError are null.
func TestDocumentsLikeOldService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s, err := firestore.Open(ctx, firestore.Options{Client: c, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := "account_prod_0123456789abcdef0123456789abcdef"
	at := time.Date(2026, 3, 1, 9, 59, 58, 0, time.UTC)
	ev := func(chat, sender types.JID, fromMe bool, id, push string) *events.Message {
		return &events.Message{Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsFromMe: fromMe, IsGroup: chat.Server == types.GroupServer},
			ID:            id, PushName: push, Timestamp: at,
		}, Message: &waE2E.Message{Conversation: proto.String("salut")}}
	}
	peer := types.NewJID("40711000001", types.DefaultUserServer)
	lid := types.NewJID("123456789012345", types.HiddenUserServer)
	pn := types.NewJID("40711000002", types.DefaultUserServer)
	record := func(in msgbuild.Input) store.Message {
		t.Helper()
		in.AccountID, in.Source = acc, msgbuild.SourceRealtime
		r, err := msgbuild.Build(in)
		if err != nil {
			t.Fatal(err)
		}
		if o, err := s.RecordMessage(ctx, r.Message); err != nil || o != store.Wrote {
			t.Fatalf("record: %v %v", o, err)
		}
		return r.Message
	}
	doc := func(m store.Message) map[string]any {
		t.Helper()
		snap, err := c.Collection("threads").Doc(m.ThreadID).Collection("messages").Doc(m.DocID).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return snap.Data()
	}
	check := func(what string, got map[string]any, want map[string]any) {
		t.Helper()
		for k, w := range want {
			v, ok := got[k]
			if !ok {
				t.Errorf("%s: field %s missing", what, k)
				continue
			}
			if !reflect.DeepEqual(v, w) {
				t.Errorf("%s: %s = %#v (%T), want %#v (%T)", what, k, v, v, w, w)
			}
		}
	}

	in := record(msgbuild.Input{Event: ev(peer, peer, false, "3EB0OLDF1", "")})
	check("inbound 1:1", doc(in), map[string]any{
		"providerMessageId": "3EB0OLDF1", "tsClientFallback": false, "tsClientReason": nil,
		"tsClientIso": "2026-03-01T09:59:58.000Z", "isLidThread": false,
		"senderJid": nil, "resolvedJid": nil, "senderName": nil,
	})
	lm := record(msgbuild.Input{Event: ev(lid, lid, false, "3EB0OLDF2", "Ion"), Chat: pn, Sender: pn})
	check("resolved lid chat", doc(lm), map[string]any{
		"isLidThread": true, "resolvedJid": "40711000002@s.whatsapp.net", "rawJid": "123456789012345@lid",
		"senderJid": nil, "senderName": "Ion",
	})
	th, err := c.Collection("threads").Doc(lm.ThreadID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("lid thread", th.Data(), map[string]any{"isLidThread": true, "resolvedJid": "40711000002@s.whatsapp.net"})
	th, err = c.Collection("threads").Doc(in.ThreadID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("1:1 thread", th.Data(), map[string]any{"isLidThread": false, "resolvedJid": nil, "lastMessageSenderName": nil, "displayName": nil, "groupSubject": nil})
	group := types.NewJID("120363012345678901", types.GroupServer)
	gm := record(msgbuild.Input{Event: ev(group, peer, false, "3EB0OLDF3", "Ana")})
	check("group", doc(gm), map[string]any{"senderJid": "40711000001@s.whatsapp.net", "senderName": "Ana", "isLidThread": false})

	mp, err := c.Collection("message_ids").Doc(acc + "__3EB0OLDF1").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exp, ok := mp.Data()["expiresAt"].(time.Time); !ok || !exp.Equal(clock.Add(30*24*time.Hour)) {
		t.Errorf("mapping expiresAt %#v, want the Timestamp %v", mp.Data()["expiresAt"], clock.Add(30*24*time.Hour))
	}

	// Reads still give wactl's view.
	got, err := s.FindMessage(ctx, acc, "3EB0OLDF1")
	if err != nil || got.SenderJID != "40711000001@s.whatsapp.net" || got.ResolvedJID != "40711000001@s.whatsapp.net" || got.ProviderMessageID != "3EB0OLDF1" {
		t.Errorf("read back %+v %v", got, err)
	}

	// Accounts.
	if err := s.PutAccount(ctx, store.Account{ID: acc, Name: "Shop", Status: "connecting"}); err != nil {
		t.Fatal(err)
	}
	ad, err := c.Collection("accounts").Doc(acc).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("account", ad.Data(), map[string]any{"createdAt": "2026-03-01T10:00:00.000Z", "qrCode": nil, "lastError": nil})
	a, err := s.GetAccount(ctx, acc)
	if err != nil || !a.CreatedAt.Equal(clock) {
		t.Fatalf("GetAccount createdAt %v %v", a.CreatedAt, err)
	}
	// An account wactl created earlier (createdAt a Timestamp) reads too.
	old := "account_prod_fedcba9876543210fedcba9876543210"
	if _, err := c.Collection("accounts").Doc(old).Set(ctx, map[string]any{"accountId": old, "createdAt": clock.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if a, err := s.GetAccount(ctx, old); err != nil || !a.CreatedAt.Equal(clock.Add(-time.Hour)) {
		t.Fatalf("Timestamp createdAt read as %v %v", a.CreatedAt, err)
	}
}

// A send the app's proxy queued (its document has tsClient as an ISO
// string and none of the old service's bookkeeping) gets, when wactl
// records the send, what the old outbox worker wrote on it.
func TestAppQueuedDocumentAdopted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	s, err := firestore.Open(ctx, firestore.Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := "account_prod_0123456789abcdef0123456789abcdef"
	jid := "40711000009@s.whatsapp.net"
	q := legacynode.Send{AccountID: acc, ThreadID: acc + "__" + jid, ToJID: jid, UID: "u", ClientMessageID: "c", Text: "salut"}
	reqID, err := (&legacynode.Messages{C: c}).ProxyQueue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC)
	m, err := msgbuild.BuildOutbound(msgbuild.Outbound{AccountID: acc, ToJID: jid, RequestID: reqID, Body: "salut",
		WAMessageID: "3EB0ADOPT1", Status: "sent", At: sent})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := s.RecordMessage(ctx, m); err != nil || o != store.Updated {
		t.Fatalf("record the send: %v %v", o, err)
	}
	snap, err := c.Collection("threads").Doc(q.ThreadID).Collection("messages").Doc(reqID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := snap.Data()
	want := map[string]any{"tsClient": sent, "tsClientFallback": false, "tsClientReason": "sent_time",
		"tsClientIso": "2026-03-01T10:00:05.000Z", "isLidThread": false, "waMessageId": "3EB0ADOPT1", "status": "sent"}
	for k, w := range want {
		if !reflect.DeepEqual(d[k], w) {
			t.Errorf("%s = %#v, want %#v", k, d[k], w)
		}
	}
}
