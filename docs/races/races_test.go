//go:build racerepro

// Package races reproduces the two data races inside whatsmeow that
// `go test -race` can report in wactl's tests (docs/races.md). Run:
//
//	go test -race -tags racerepro -count=1 ./docs/races/
//
// Both tests are expected to FAIL with "race detected" while the pinned
// whatsmeow has the races; they pass without -race.
package races

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
)

func TestMain(m *testing.M) {
	wafake.TrustTestRoot()
	// Frequent pings: a server close lands on one sooner.
	wafake.FastKeepAlive()
	m.Run()
}

// TestServerCloseDuringKeepAlive: the server drops a logged-in connection
// while whatsmeow's keepalive loop sends a ping. FrameSocket.SendFrame
// reads fs.conn without fs.lock (framesocket.go:124) and the read pump's
// Close writes it (framesocket.go:82). Nothing the caller does orders the
// two: the ping and the close both run in whatsmeow's goroutines.
func TestServerCloseDuringKeepAlive(t *testing.T) {
	srv := wafake.Start(t)
	cli, _ := srv.NewTestClient(t)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	jid := srv.PairTestClient(t, cli, "15550001111")
	<-connected // the login after pairing; the channel now counts reconnects
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		// whatsmeow reconnects by itself after each drop.
		time.Sleep(time.Duration(150+i%7*37) * time.Millisecond)
		_ = srv.Inject(jid, wafake.FaultDrop)
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("no reconnect after a drop")
		}
	}
}

// TestQRChannelClosedByServer: the server ends a pairing connection while
// whatsmeow's QR emitter sends a code. qrChannel.handleEvent closes
// qrc.output on Disconnected (qrchan.go:148) while emitQRs sends on it
// (qrchan.go:87); both are whatsmeow's goroutines.
func TestQRChannelClosedByServer(t *testing.T) {
	for i := 0; i < 20; i++ {
		srv := wafake.Start(t, wafake.Options{PairTimeout: 300 * time.Millisecond, QRRefs: 2, CloseGrace: 50 * time.Millisecond})
		cli, _ := srv.NewTestClient(t)
		qr, err := cli.GetQRChannel(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.Connect(); err != nil {
			t.Fatal(err)
		}
		for range qr {
		}
	}
}
