package wafake_test

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

// BenchmarkRestoredLogin measures Connect → events.Connected for a paired
// device restored from its SQLite store (prekeys already uploaded).
func BenchmarkRestoredLogin(b *testing.B) {
	srv, err := wafake.New(fastOpts)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	path := b.TempDir() + "/wm.db"
	container, err := wafake.OpenStore(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer container.Close()
	cli := srv.NewClient(container.NewDevice(), nil)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			connected <- struct{}{}
		}
	})
	qr, _ := cli.GetQRChannel(context.Background())
	if err := cli.Connect(); err != nil {
		b.Fatal(err)
	}
	if _, err := srv.Scan(context.Background(), (<-qr).Code, "15550000090"); err != nil {
		b.Fatal(err)
	}
	<-connected
	b.ResetTimer()
	for b.Loop() {
		wasock.Close(cli)
		if err := cli.Connect(); err != nil {
			b.Fatal(err)
		}
		<-connected
	}
	b.StopTimer()
	wasock.Close(cli)
}
