package serve_test

import (
	"context"
	"path/filepath"
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
	"github.com/wactl/wactl/pkg/sessions"
)

// TestBackfillAsksThePhoneAndRecordsTheAnswer: POST
// /api/whatsapp/backfill/{accountId} on a running `wactl serve` sends
// WhatsApp's on-demand history request to the account's own phone,
// anchored at the newest recorded message of each recent chat, and the
// phone's answer (an ON_DEMAND history sync) is recorded through the
// durable history queue. An unknown account is 404.
func TestBackfillAsksThePhoneAndRecordsTheAnswer(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct := watest.Pair(t, srv, sess, "40722000081")
	p := serve(t, srv, dataDir, "WACTL_API_SERVICE_TOKEN="+token)
	p.waitConnected(1, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	peer := types.NewJID("40788000081", types.DefaultUserServer)
	liveID, err := srv.SendFromPeer(ctx, peer, acct.Device.ToNonAD(), &waE2E.Message{Conversation: proto.String("latest")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitDelivered(ctx, acct.Device, liveID); err != nil {
		t.Fatal(err)
	}
	count := embeddedCount(t, filepath.Join(dataDir, "wactl.db"), acct.ID)
	// After pairing the phone always sends the first history sync; that is
	// also what gives the companion its encryption session with the phone.
	if _, err := srv.SendHistoryNotification(ctx, acct.Device, &waHistorySync.HistorySync{}, wafake.HistoryOptions{Inline: true}); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "first history sync accepted", func() bool { return srv.HistoryAcked(acct.Device) == 1 })

	if code, m := p.call(t, "POST", "/api/whatsapp/backfill/account_prod_unknown", nil, nil); code != 404 || m["error"] != "account_not_found" {
		t.Fatalf("unknown account: %d %v", code, m)
	}
	before := len(srv.Sent())
	code, m := p.call(t, "POST", "/api/whatsapp/backfill/"+acct.ID, nil, nil)
	if code != 200 || m["success"] != true || m["status"] != "requested" || m["threads"] != 1.0 || m["accountId"] != acct.ID {
		t.Fatalf("backfill: %d %v", code, m)
	}
	var req *waE2E.PeerDataOperationRequestMessage_HistorySyncOnDemandRequest
	for _, s := range srv.Sent()[before:] {
		if r := s.Message.GetProtocolMessage().GetPeerDataOperationRequestMessage().GetHistorySyncOnDemandRequest(); r != nil {
			req = r
		}
	}
	if req == nil || req.GetOldestMsgID() != liveID || req.GetChatJID() != peer.String() || req.GetOnDemandMsgCount() != 100 {
		t.Fatalf("on-demand request %v, want anchored at %s in %s for 100 messages", req, liveID, peer)
	}
	// The phone answers with the older messages of that chat.
	old := time.Now().Add(-24 * time.Hour)
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_ON_DEMAND.Enum(), Conversations: []*waHistorySync.Conversation{{ID: proto.String(peer.String())}}}
	for i, id := range []string{"OD1", "OD2", "OD3"} {
		hs.Conversations[0].Messages = append(hs.Conversations[0].Messages, &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
			Key:              &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), ID: proto.String(id)},
			Message:          &waE2E.Message{Conversation: proto.String("older " + id)},
			MessageTimestamp: proto.Uint64(uint64(old.Add(time.Duration(i) * time.Minute).Unix())),
		}})
	}
	if _, err := srv.SendHistoryNotification(ctx, acct.Device, hs, wafake.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 15*time.Second, "the phone's answer recorded", func() bool { return count() == 4 })
}
