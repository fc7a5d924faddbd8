package wafake

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wasock"
)

// Start starts a fake server for one test and closes it at cleanup.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStore opens a fresh SQLite whatsmeow store in t.TempDir() and returns
// the container, its path and a new unpaired device in it.
func TestStore(t testing.TB) (*sqlstore.Container, string, *store.Device) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "whatsmeow.db")
	c, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, path, c.NewDevice()
}

// NewTestClient is NewClient for a fresh unpaired device in a new store; the
// client is disconnected at cleanup.
func (s *Server) NewTestClient(t testing.TB) (*whatsmeow.Client, *sqlstore.Container) {
	t.Helper()
	c, _, dev := TestStore(t)
	cli := s.NewClient(dev, nil)
	t.Cleanup(func() { wasock.Close(cli) })
	return cli, c
}

// PairTestClient pairs cli, a client of an unpaired device pointed at a
// fake server: it connects, has phone scan the first QR code and returns
// the new device JID once whatsmeow reports Connected on the login that
// follows (after its post-login IQs, which run on a goroutine of its own).
func (s *Server) PairTestClient(t testing.TB, cli *whatsmeow.Client, phone string) types.JID {
	t.Helper()
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qr
	if item.Event != whatsmeow.QRChannelEventCode {
		t.Fatalf("pairing %s: first QR item = %+v, want a code", phone, item)
	}
	jid, err := s.Scan(ctx, item.Code, phone)
	if err != nil {
		t.Fatalf("pairing %s: scan: %v", phone, err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatalf("pairing %s: no Connected after pair-success", phone)
	}
	return jid
}
