package wafake_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

// TestHistoryNotificationDownloadAndAck: a history notification whose blob
// is on the fake's media endpoint reaches a client with
// ManualHistorySyncDownload as a message event; the blob downloads and
// decodes; the notification stays pending while the handler refuses it
// (hist_sync receipt or not) and is acknowledged by the message receipt
// after the handler accepts it. A removed blob answers 404.
func TestHistoryNotificationDownloadAndAck(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, _ := pair(t, srv, "15550000071")
	cli.ManualHistorySyncDownload = true
	me := *cli.Store.ID
	ctx := ctxT(t)
	var accept atomic.Bool
	notes := make(chan *waE2E.HistorySyncNotification, 8)
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if m, ok := evt.(*events.Message); ok {
			if n := m.Message.GetProtocolMessage().GetHistorySyncNotification(); n != nil {
				notes <- n
				return accept.Load()
			}
		}
		return true
	})
	peer := phoneJID("15557770071")
	hs := &waHistorySync.HistorySync{Conversations: []*waHistorySync.Conversation{{
		ID: proto.String(peer.String()),
		Messages: []*waHistorySync.HistorySyncMsg{{Message: &waWeb.WebMessageInfo{
			Key:              &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), ID: proto.String("H1")},
			Message:          text("from the blob"),
			MessageTimestamp: proto.Uint64(uint64(time.Now().Add(-time.Hour).Unix())),
		}}},
	}}}
	sent, err := srv.SendHistoryNotification(ctx, me, hs, wafake.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := <-notes
	if n.GetDirectPath() == "" || n.InitialHistBootstrapInlinePayload != nil {
		t.Fatalf("notification is not a media reference: %v", n)
	}
	if err := srv.WaitReceipt(ctx, me, sent.ID, "hist_sync"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if p := srv.HistoryPending(me); len(p) != 1 || p[0] != sent.ID {
		t.Fatalf("refused notification not pending: %v", p)
	}
	blob, err := cli.DownloadHistorySync(ctx, n, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := blob.GetConversations()[0].GetMessages()[0].GetMessage().GetMessage().GetConversation(); got != "from the blob" {
		t.Fatalf("downloaded history %q", got)
	}
	// Reconnect: the pending notification comes again; now it is accepted.
	accept.Store(true)
	wasock.Close(cli)
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	<-notes
	if err := srv.WaitDelivered(ctx, me, sent.ID); err != nil {
		t.Fatal(err)
	}
	if p := srv.HistoryPending(me); len(p) != 0 || srv.HistoryAcked(me) != 1 {
		t.Fatalf("pending %v acked %d after accept", p, srv.HistoryAcked(me))
	}
	srv.RemoveMedia(sent.MediaToken)
	if _, err := cli.DownloadHistorySync(ctx, n, true); !errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404) {
		t.Fatalf("download of removed media: %v, want 404", err)
	}
	if srv.MediaFetches(sent.MediaToken) < 2 {
		t.Fatalf("media fetched %d times", srv.MediaFetches(sent.MediaToken))
	}
}
