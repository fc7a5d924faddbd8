package wafake_test

import (
	"errors"
	"slices"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

// TestPeerReceiptsReachClient: after the client sent two messages to a
// fake peer, the peer's delivery receipt for one and read receipt for both
// arrive as events.Receipt with those IDs, type and chat, and the client
// acknowledges each receipt.
func TestPeerReceiptsReachClient(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000036")
	me := *cli.Store.ID
	ctx := ctxT(t)
	peer := phoneJID("15557770006")
	for _, id := range []string{"OUT-1", "OUT-2"} {
		if _, err := cli.SendMessage(ctx, peer, text(id), whatsmeow.SendRequestExtra{ID: id}); err != nil {
			t.Fatal(err)
		}
	}

	if err := srv.SendReceipt(ctx, peer, me.ToNonAD(), []string{"OUT-1"}, wafake.ReceiptDelivered); err != nil {
		t.Fatal(err)
	}
	r := waitEvent[*events.Receipt](t, rec)
	if r.Type != types.ReceiptTypeDelivered || !slices.Equal(r.MessageIDs, []string{"OUT-1"}) ||
		r.Chat != peer || r.Sender != peer || r.IsFromMe || r.Timestamp.IsZero() {
		t.Fatalf("delivery receipt = %+v", r)
	}
	if err := srv.WaitReceiptAcked(ctx, me, "OUT-1", wafake.ReceiptDelivered); err != nil {
		t.Fatal(err)
	}

	if err := srv.SendReceipt(ctx, peer, me.ToNonAD(), []string{"OUT-1", "OUT-2"}, wafake.ReceiptRead); err != nil {
		t.Fatal(err)
	}
	r = waitEvent[*events.Receipt](t, rec)
	if r.Type != types.ReceiptTypeRead || !slices.Equal(r.MessageIDs, []string{"OUT-1", "OUT-2"}) || r.Chat != peer {
		t.Fatalf("read receipt = %+v", r)
	}
	if err := srv.WaitReceiptAcked(ctx, me, "OUT-1", wafake.ReceiptRead); err != nil {
		t.Fatal(err)
	}
	if p := srv.Pending(me); len(p) != 0 {
		t.Fatalf("pending after both receipts were acknowledged: %v", p)
	}
}

func TestSendReceiptErrors(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	ctx := ctxT(t)
	if err := srv.SendReceipt(ctx, phoneJID("15557770007"), phoneJID("15550000099"), nil, ""); err == nil {
		t.Fatal("receipt without ids accepted")
	}
	if err := srv.SendReceipt(ctx, phoneJID("15557770007"), phoneJID("15550000099"), []string{"X"}, ""); !errors.Is(err, wafake.ErrNoDevice) {
		t.Fatalf("receipt to an unknown device: %v, want ErrNoDevice", err)
	}
}

// TestPeerReceiptWaitsForLogin: a receipt sent while the client is offline
// is delivered when it logs in again, like a queued message.
func TestPeerReceiptWaitsForLogin(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000037")
	me := *cli.Store.ID
	ctx := ctxT(t)
	peer := phoneJID("15557770008")
	if _, err := cli.SendMessage(ctx, peer, text("later"), whatsmeow.SendRequestExtra{ID: "OUT-3"}); err != nil {
		t.Fatal(err)
	}
	wasock.Close(cli)
	if err := srv.WaitAllClosed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.SendReceipt(ctx, peer, me.ToNonAD(), []string{"OUT-3"}, wafake.ReceiptRead); err != nil {
		t.Fatal(err)
	}
	if p := srv.Pending(me); len(p) != 1 {
		t.Fatalf("pending while offline = %v, want the receipt", p)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	r := waitEvent[*events.Receipt](t, rec)
	if r.Type != types.ReceiptTypeRead || !slices.Equal(r.MessageIDs, []string{"OUT-3"}) {
		t.Fatalf("receipt after login = %+v", r)
	}
	if err := srv.WaitReceiptAcked(ctx, me, "OUT-3", wafake.ReceiptRead); err != nil {
		t.Fatal(err)
	}
}
