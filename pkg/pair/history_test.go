package pair

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestPairingClientLeavesHistoryToTheDaemon: a history sync that reaches
// the pairing client (the phone sends it right after pairing) is not
// acknowledged by it, and the next client of the device — the daemon —
// receives it again. (Before, whatsmeow's automatic download acknowledged
// it and the pairing client disconnected without recording it.)
func TestPairingClientLeavesHistoryToTheDaemon(t *testing.T) {
	srv := wafake.Start(t)
	st, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{InstanceID: "pair-test"})
	if err != nil {
		t.Fatal(err)
	}
	acct := watest.Pair(t, srv, st, "40712345699")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev, err := st.OpenDevice(ctx, acct.ID, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()

	cli := srv.NewClient(dev.Store, nil)
	seen := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) { // first: whatsmeow stops at a handler answering false
		if m, ok := evt.(*events.Message); ok && m.Message.GetProtocolMessage().GetHistorySyncNotification() != nil {
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	})
	holdHistory(cli)
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	sent, err := srv.SendHistoryNotification(ctx, acct.Device, &waHistorySync.HistorySync{}, wafake.HistoryOptions{Inline: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-ctx.Done():
		t.Fatal("the pairing client never saw the history sync")
	}
	// Both receipts whatsmeow sends on its own goroutines for the
	// notification must have left before the Disconnect below: whatsmeow's
	// FrameSocket reads its conn without a lock in SendFrame while Close
	// writes it, and `go test -race` reported that race here (CI) when the
	// "peer_msg" receipt was still being sent.
	for _, typ := range []string{"hist_sync", "peer_msg"} {
		if err := srv.WaitReceipt(ctx, acct.Device, sent.ID, typ); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if p := srv.HistoryPending(acct.Device); len(p) != 1 {
		t.Fatalf("the pairing client acknowledged the history sync: pending %v", p)
	}
	wasock.Close(cli)

	// The daemon's client (accepting history) gets it again.
	next := srv.NewClient(dev.Store, nil)
	next.ManualHistorySyncDownload = true
	if err := next.Connect(); err != nil {
		t.Fatal(err)
	}
	defer wasock.Close(next)
	if err := srv.WaitDelivered(ctx, acct.Device, sent.ID); err != nil {
		t.Fatal(err)
	}
}
