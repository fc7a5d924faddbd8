package daemon_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/store"
)

func editOf(chat types.JID, target, body string, fromMe bool, at time.Time) *waE2E.Message {
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Key:           &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(fromMe), ID: proto.String(target)},
		Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
		EditedMessage: &waE2E.Message{Conversation: proto.String(body)},
		TimestampMS:   proto.Int64(at.UnixMilli()),
	}}
}

func revokeOf(chat types.JID, target string, fromMe bool) *waE2E.Message {
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Key:  &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(fromMe), ID: proto.String(target)},
		Type: waE2E.ProtocolMessage_REVOKE.Enum(),
	}}
}

func byWAID(msgs []store.Message) map[string]store.Message {
	out := map[string]store.Message{}
	for _, m := range msgs {
		out[m.WAMessageID] = m
	}
	return out
}

// TestEditBeforeItsMessageIsKept: a live edit that arrives before the
// message it edits is acknowledged, kept (counted as parked), and applied
// when the message arrives. (On ca70e15 it was acknowledged and dropped.)
func TestEditBeforeItsMessageIsKept(t *testing.T) {
	r, accts := newRig(t, "40711000081")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	a, peer := accts[0], peerJID("40799000081")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	editID, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), editOf(peer, "EARLY1", "edited text", false, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.WaitDelivered(ctx, a.Device, editID); err != nil {
		t.Fatal(err) // ca70e15 on SQLite: never acknowledged (a wrapped ErrNotFound failed the handler), redelivered forever
	}
	s, err := run.manager(t).HistoryStatus(ctx)
	if err != nil || s.Parked != 1 {
		t.Fatalf("parked %d (%v), want the early edit kept", s.Parked, err)
	}
	if _, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("original text"),
		wafake.MessageOptions{ID: "EARLY1", Timestamp: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "edit applied to its late message", func() bool {
		m, ok := byWAID(r.messages(t, r.st, a, peer))["EARLY1"]
		return ok && m.Body == "edited text" && m.Edited
	})
	if s, _ := run.manager(t).HistoryStatus(ctx); s.Parked != 0 {
		t.Fatalf("parked %d after the target arrived", s.Parked)
	}
}

// TestHistoryEditsAndRevokesApplied: edits and revokes inside a history
// sync are applied (on ca70e15 they were skipped), also when the revoke
// comes before its message in the blob.
func TestHistoryEditsAndRevokesApplied(t *testing.T) {
	r, accts := newRig(t, "40711000082")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	a, peer, ctx := accts[0], peerJID("40799000082"), context.Background()
	old := time.Now().Add(-48 * time.Hour)
	hmsg := func(id string, m *waE2E.Message, ts time.Time) *waHistorySync.HistorySyncMsg {
		return &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
			Key:              &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), FromMe: proto.Bool(false), ID: proto.String(id)},
			Message:          m,
			MessageTimestamp: proto.Uint64(uint64(ts.Unix())),
		}}
	}
	hs := &waHistorySync.HistorySync{Conversations: []*waHistorySync.Conversation{{
		ID: proto.String(peer.String()),
		Messages: []*waHistorySync.HistorySyncMsg{
			hmsg("HR-REVOKE", revokeOf(peer, "HB", false), old.Add(3*time.Minute)),
			hmsg("HA", text("first version"), old),
			hmsg("HB", text("to be deleted"), old.Add(time.Minute)),
			hmsg("HA-EDIT", editOf(peer, "HA", "second version", false, old.Add(2*time.Minute)), old.Add(2*time.Minute)),
		},
	}}}
	if _, err := r.srv.SendHistoryNotification(ctx, a.Device, hs, wafake.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 15*time.Second, "history edit and revoke applied", func() bool {
		got := byWAID(r.messages(t, r.st, a, peer))
		return len(got) == 2 && got["HA"].Body == "second version" && got["HA"].Edited && got["HB"].Revoked
	})
	// The queue entry is deleted just after its last message is recorded.
	watest.Eventually(t, 5*time.Second, "history queue entry done", func() bool {
		s, err := run.manager(t).HistoryStatus(ctx)
		return err == nil && s.Parked == 0 && s.Pending == 0
	})
}
