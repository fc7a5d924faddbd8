package wafake_test

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
)

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

func TestEncryptedDMFromPeer(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000030")
	me := *cli.Store.ID
	peer := phoneJID("15557770001")
	ctx := ctxT(t)
	for i, body := range []string{"hello", "second one"} {
		id, err := srv.SendFromPeer(ctx, peer, me.ToNonAD(), text(body), wafake.MessageOptions{PushName: "Alice"})
		if err != nil {
			t.Fatal(err)
		}
		msg := waitEvent[*events.Message](t, rec)
		if msg.Info.ID != id || msg.Info.Sender != peer || msg.Message.GetConversation() != body || msg.Info.IsFromMe {
			t.Fatalf("message %d = %+v / %q", i, msg.Info, msg.Message.GetConversation())
		}
		if msg.Info.PushName != "Alice" {
			t.Fatalf("push name %q", msg.Info.PushName)
		}
		if err := srv.WaitDelivered(ctx, me, id); err != nil {
			t.Fatal(err)
		}
	}
	if p := srv.Pending(me); len(p) != 0 {
		t.Fatalf("pending after receipts: %v", p)
	}
}

func TestNewsletterPlaintextMessage(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000031")
	me := *cli.Store.ID
	nl := types.JID{User: "120363000000000001", Server: types.NewsletterServer}
	id, err := srv.SendNewsletter(nl, me.ToNonAD(), text("channel post"))
	if err != nil {
		t.Fatal(err)
	}
	msg := waitEvent[*events.Message](t, rec)
	if msg.Info.ID != id || msg.Info.Chat != nl || msg.Message.GetConversation() != "channel post" {
		t.Fatalf("newsletter message = %+v", msg.Info)
	}
	if err := srv.WaitDelivered(ctxT(t), me, id); err != nil {
		t.Fatal(err)
	}
}

func TestGroupMessageFromPeer(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000032")
	me := *cli.Store.ID
	group := types.JID{User: "120363000000000777", Server: types.GroupServer}
	peer := phoneJID("15557770002")
	ctx := ctxT(t)
	for _, body := range []string{"group hello", "group again"} {
		id, err := srv.SendGroupFromPeer(ctx, group, peer, me.ToNonAD(), text(body))
		if err != nil {
			t.Fatal(err)
		}
		for {
			msg := waitEvent[*events.Message](t, rec)
			if msg.Message.GetConversation() == "" {
				continue // the sender key distribution part
			}
			if msg.Info.ID != id || msg.Info.Chat != group || msg.Info.Sender != peer || msg.Message.GetConversation() != body {
				t.Fatalf("group message = %+v %q", msg.Info, msg.Message.GetConversation())
			}
			break
		}
		if err := srv.WaitDelivered(ctx, me, id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistorySyncBootstrap(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000033")
	me := *cli.Store.ID
	peer := phoneJID("15557770003")
	ctx := ctxT(t)
	liveID, err := srv.SendFromPeer(ctx, peer, me.ToNonAD(), text("live"))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Message](t, rec)

	old := time.Now().Add(-48 * time.Hour)
	webMsg := func(id, body string, ts time.Time, fromMe bool) *waHistorySync.HistorySyncMsg {
		return &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
			Key:              &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), FromMe: proto.Bool(fromMe), ID: proto.String(id)},
			Message:          text(body),
			MessageTimestamp: proto.Uint64(uint64(ts.Unix())),
		}}
	}
	hs := &waHistorySync.HistorySync{Conversations: []*waHistorySync.Conversation{{
		ID: proto.String(peer.String()),
		Messages: []*waHistorySync.HistorySyncMsg{
			webMsg("OLD1", "older in", old, false),
			webMsg("OLD2", "older out", old.Add(time.Minute), true),
			webMsg(liveID, "live", time.Now(), false),
		},
	}}}
	hsID, err := srv.SendHistorySync(ctx, me, hs)
	if err != nil {
		t.Fatal(err)
	}
	// whatsmeow acknowledges a history sync with its own receipt type.
	if err := srv.WaitReceipt(ctx, me, hsID, "hist_sync"); err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.HistorySync](t, rec)
	convs := evt.Data.GetConversations()
	if len(convs) != 1 || len(convs[0].GetMessages()) != 3 {
		t.Fatalf("history sync = %v", evt.Data)
	}
	chat, _ := types.ParseJID(convs[0].GetID())
	var ids []string
	for _, m := range convs[0].GetMessages() {
		parsed, err := cli.ParseWebMessage(chat, m.GetMessage())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, parsed.Info.ID)
		if parsed.Info.ID == "OLD2" && !parsed.Info.IsFromMe {
			t.Fatal("own history message not marked IsFromMe")
		}
	}
	if ids[2] != liveID {
		t.Fatalf("history ids %v do not repeat live id %s", ids, liveID)
	}
}

func TestFailedHandlerGetsRedelivery(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000034")
	me := *cli.Store.ID

	var mu sync.Mutex
	var seen []string
	fail := true
	got := make(chan string, 4)
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		m, ok := evt.(*events.Message)
		if !ok {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.Info.ID+"/"+m.Message.GetConversation())
		ok = !fail
		fail = false
		got <- m.Info.ID
		return ok // false the first time: the store write "failed"
	})
	if !cli.EnableDecryptedEventBuffer {
		t.Fatal("NewClient must enable the decrypted event buffer")
	}
	id, err := srv.SendFromPeer(ctxT(t), phoneJID("15557770004"), me.ToNonAD(), text("keep me"))
	if err != nil {
		t.Fatal(err)
	}
	<-got
	waitEvent[*events.Message](t, rec)
	if p := srv.Pending(me); len(p) != 1 || p[0] != id {
		t.Fatalf("pending = %v, want the failed message", p)
	}
	// The server redelivers unacknowledged messages at the next login.
	if err := srv.Inject(me, wafake.FaultDrop); err != nil {
		t.Fatal(err)
	}
	<-got
	if err := srv.WaitDelivered(ctxT(t), me, id); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != seen[1] || seen[0] != id+"/keep me" {
		t.Fatalf("handler saw %v, want the same message twice", seen)
	}
	if n := srv.Transmissions(me, id); n != 2 {
		t.Fatalf("transmissions = %d, want 2", n)
	}
}

func TestClientSendIsRecordedAndDecrypted(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000035")
	ctx := ctxT(t)
	peer := phoneJID("15557770005")

	// First send: the client has no session and fetches the peer's prekeys.
	resp, err := cli.SendMessage(ctx, peer, text("outgoing 1"), whatsmeow.SendRequestExtra{ID: "REQ-1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Timestamp.IsZero() {
		t.Fatal("send acknowledged without timestamp")
	}
	// Reply from the peer, then a second send over the established session.
	if _, err := srv.SendFromPeer(ctx, peer, cli.Store.ID.ToNonAD(), text("reply")); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Message](t, rec)
	if _, err := cli.SendMessage(ctx, peer, text("outgoing 2"), whatsmeow.SendRequestExtra{ID: "REQ-2"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"outgoing 1", "outgoing 2"} {
		sends := srv.SentByID([]string{"REQ-1", "REQ-2"}[i])
		if len(sends) != 1 {
			t.Fatalf("%d sends with id REQ-%d, want exactly 1", len(sends), i+1)
		}
		s := sends[0]
		if s.DecryptError != "" || s.Message.GetConversation() != want || s.To != peer || s.From != *cli.Store.ID {
			t.Fatalf("send %d = %+v (%q)", i+1, s, s.Message.GetConversation())
		}
	}
}
