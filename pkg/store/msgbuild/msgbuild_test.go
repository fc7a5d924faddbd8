package msgbuild

import (
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/pkg/dedupe"
)

// Expected ids were computed with sha1sum (see package dedupe's tests).
const acc = "account_prod_cd7b11e308a59fd9ab810bce5faf8393"

var at = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func event(chat, sender types.JID, fromMe bool, id string, msg *waE2E.Message) *events.Message {
	return &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsFromMe: fromMe, IsGroup: chat.Server == types.GroupServer},
			ID:            id, PushName: "Ana", Timestamp: at,
		},
		Message: msg,
	}
}

func TestBuildInbound(t *testing.T) {
	peer := types.NewJID("40722000111", types.DefaultUserServer)
	devSender := types.JID{User: "40722000111", Device: 3, Server: types.DefaultUserServer}
	ev := event(peer, devSender, false, "3EB0C431D5A2B7F8E9", &waE2E.Message{Conversation: proto.String("  Hello \n\t world ")})
	r, err := Build(Input{AccountID: acc, Event: ev, Source: SourceRealtime})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Message
	if r.Kind != dedupe.KindChat {
		t.Fatalf("kind %v", r.Kind)
	}
	jid := "40722000111@s.whatsapp.net"
	for name, c := range map[string][2]any{
		"ThreadID":        {m.ThreadID, acc + "__" + jid},
		"DocID":           {m.DocID, "38b91a212df79d5bacc16bb4"},
		"StableKeyHash":   {m.StableKeyHash, "d8d93df6"},
		"FingerprintHash": {m.FingerprintHash, "cd087164"},
		"ClientJID":       {m.ClientJID, jid},
		"SenderJID":       {m.SenderJID, jid},
		"NormalizedPhone": {m.NormalizedPhone, "+40722000111"},
		"PeerType":        {m.PeerType, "user"},
		"Direction":       {m.Direction, "inbound"},
		"Status":          {m.Status, "delivered"},
		"MessageType":     {m.MessageType, "text"},
		"Source":          {m.Source, "realtime"},
		"DisplayName":     {m.DisplayName, "Ana"},
		"Body":            {m.Body, "  Hello \n\t world "},
		"Provider":        {m.ProviderMessageID, "3EB0C431D5A2B7F8E9"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#v, want %#v", name, c[0], c[1])
		}
	}
	if !m.TsClient.Equal(at) {
		t.Errorf("TsClient %v", m.TsClient)
	}
}

func TestBuildGroupFromMeAndLID(t *testing.T) {
	group := types.NewJID("120363012345678901", types.GroupServer)
	me := types.JID{User: "40722000111", Device: 12, Server: types.DefaultUserServer}
	ev := event(group, me, true, "ABCDEF", &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/jpeg")}})
	r, err := Build(Input{AccountID: acc, Event: ev, Source: SourceHistory})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Message
	if m.StableKeyHash != "f4db4edd" || !m.IsGroup || m.PeerType != "group" || m.Direction != "outbound" || m.Status != "sent" ||
		m.ProviderMessageID != "ABCDEF" || m.DisplayName != "" || m.NormalizedPhone != "" || m.MessageType != "image" {
		t.Fatalf("group message %+v", m)
	}

	// A @lid chat resolved by the caller to the phone JID lands in the
	// phone thread; the raw JID is kept.
	lid := types.NewJID("123456789012345", types.HiddenUserServer)
	pn := types.NewJID("40722000111", types.DefaultUserServer)
	ev = event(lid, lid, false, "3EB0LID", &waE2E.Message{Conversation: proto.String("x")})
	r, _ = Build(Input{AccountID: acc, Event: ev, Chat: pn, Sender: pn, Source: SourceRealtime})
	if r.Message.ThreadID != acc+"__40722000111@s.whatsapp.net" || r.Message.RawJID != "123456789012345@lid" || r.Message.SenderJID != "40722000111@s.whatsapp.net" {
		t.Fatalf("lid message %+v", r.Message)
	}
	// Unresolved it stays a lid thread.
	r, _ = Build(Input{AccountID: acc, Event: ev, Source: SourceRealtime})
	if r.Message.ThreadID != acc+"__123456789012345@lid" || r.Message.PeerType != "lid" {
		t.Fatalf("unresolved lid %+v", r.Message)
	}
}

func TestBuildEditRevokeProtocol(t *testing.T) {
	peer := types.NewJID("40722000111", types.DefaultUserServer)
	key := &waCommon.MessageKey{ID: proto.String("3EB0TARGET")}
	ev := event(peer, peer, false, "3EB0EDITEVT", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: key, EditedMessage: &waE2E.Message{Conversation: proto.String("fixed")}}})
	r, err := Build(Input{AccountID: acc, Event: ev})
	if err != nil || r.Kind != dedupe.KindEdit || r.Edit.TargetWAID != "3EB0TARGET" || r.Edit.NewBody != "fixed" ||
		r.Edit.ChatJID != "40722000111@s.whatsapp.net" || r.Edit.AccountID != acc {
		t.Fatalf("edit: %+v, %v", r, err)
	}
	ev.Message = &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key}}
	if r, _ = Build(Input{AccountID: acc, Event: ev}); r.Kind != dedupe.KindRevoke || r.Revoke.TargetWAID != "3EB0TARGET" {
		t.Fatalf("revoke: %+v", r)
	}
	ev.Message = &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum()}}
	if r, _ = Build(Input{AccountID: acc, Event: ev}); r.Kind != dedupe.KindProtocol || r.Message.DocID != "" {
		t.Fatalf("protocol: %+v", r)
	}
	if _, err := Build(Input{AccountID: "", Event: ev}); err == nil {
		t.Fatal("no account id accepted")
	}
	if _, err := Build(Input{AccountID: acc, Event: &events.Message{}}); err == nil {
		t.Fatal("event without id accepted")
	}
}

func TestBodyTruncated(t *testing.T) {
	peer := types.NewJID("40722000111", types.DefaultUserServer)
	long := strings.Repeat("ș", MaxBodyChars+5)
	r, _ := Build(Input{AccountID: acc, Event: event(peer, peer, false, "LONG", &waE2E.Message{Conversation: proto.String(long)})})
	if n := len([]rune(r.Message.Body)); n != MaxBodyChars {
		t.Fatalf("body of %d characters, want %d", n, MaxBodyChars)
	}
}

func TestBuildOutboundMatchesEcho(t *testing.T) {
	req := strings.Repeat("ab", 32)
	q, err := BuildOutbound(Outbound{AccountID: acc, ToJID: "+40722000111@c.us", RequestID: req, ClientMessageID: "c1", Body: "hi", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if q.DocID != req || q.Status != "queued" || q.ThreadID != acc+"__40722000111@s.whatsapp.net" || q.Source != "outbound" || q.StableKeyHash != "" {
		t.Fatalf("queued send %+v", q)
	}
	sent, _ := BuildOutbound(Outbound{AccountID: acc, ToJID: "40722000111@s.whatsapp.net", RequestID: req, Body: "hi", WAMessageID: "3EB0C431D5A2B7F8E9", Status: "sent", At: at})
	peer := types.NewJID("40722000111", types.DefaultUserServer)
	echo, _ := Build(Input{AccountID: acc, Event: event(peer, types.JID{User: "40700000001", Server: types.DefaultUserServer}, true, "3EB0C431D5A2B7F8E9", &waE2E.Message{Conversation: proto.String("hi")})})
	if sent.ThreadID != echo.Message.ThreadID || sent.WAMessageID != echo.Message.WAMessageID || sent.StableKeyHash != echo.Message.StableKeyHash {
		t.Fatalf("send and echo disagree:\n%+v\n%+v", sent, echo.Message)
	}
	if _, err := BuildOutbound(Outbound{AccountID: acc, ToJID: "x@s.whatsapp.net"}); err == nil {
		t.Fatal("outbound without ids accepted")
	}
}
