package wafake_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child process trusts the fake only through the environment.
		os.Exit(childMain())
	}
	wafake.TrustTestRoot()
	if !raceEnabled {
		// whatsmeow's FrameSocket reads its conn without a lock when sending
		// and writes it when closing; a keepalive ping sent as the server
		// closes the socket is reported by -race inside whatsmeow. Frequent
		// pings make that likely, so the race build keeps the defaults.
		wafake.FastKeepAlive()
	}
	os.Exit(m.Run())
}

// fastOpts keeps QR codes short-lived so expiry tests finish quickly.
var fastOpts = wafake.Options{PairTimeout: 90 * time.Second, CloseGrace: 100 * time.Millisecond}

// recorder forwards every client event to a channel.
type recorder struct{ ch chan any }

func record(cli *whatsmeow.Client) *recorder {
	r := &recorder{ch: make(chan any, 1024)}
	cli.AddEventHandler(func(evt any) { r.ch <- evt })
	return r
}

// waitEvent returns the first event of type T, failing after a deadline.
func waitEvent[T any](t *testing.T, r *recorder) T {
	t.Helper()
	v, err := nextEvent[T](r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func nextEvent[T any](r *recorder) (T, error) {
	deadline := time.After(60 * time.Second)
	for {
		select {
		case evt := <-r.ch:
			if v, ok := evt.(T); ok {
				return v, nil
			}
		case <-deadline:
			var zero T
			return zero, fmt.Errorf("timed out waiting for %T", zero)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair runs a full QR pairing of a fresh store against srv for phone and
// returns the connected client, its container and store path.
func pair(t *testing.T, srv *wafake.Server, phone string) (*whatsmeow.Client, *sqlstore.Container, string, *recorder) {
	t.Helper()
	cli, container, path, rec, err := pairE(t, srv, phone)
	if err != nil {
		t.Fatal(err)
	}
	return cli, container, path, rec
}

// pairE is pair without t.Fatal, so that goroutines can use it.
func pairE(t *testing.T, srv *wafake.Server, phone string) (*whatsmeow.Client, *sqlstore.Container, string, *recorder, error) {
	path := filepath.Join(t.TempDir(), "whatsmeow.db")
	container, err := wafake.OpenStore(context.Background(), path)
	if err != nil {
		return nil, nil, "", nil, err
	}
	t.Cleanup(func() { _ = container.Close() })
	cli := srv.NewClient(container.NewDevice(), nil)
	t.Cleanup(cli.Disconnect)
	rec := record(cli)
	qr, err := cli.GetQRChannel(context.Background())
	if err != nil {
		return nil, nil, "", nil, err
	}
	if err := cli.Connect(); err != nil {
		return nil, nil, "", nil, err
	}
	item := <-qr
	if item.Event != whatsmeow.QRChannelEventCode {
		return nil, nil, "", nil, fmt.Errorf("first QR item = %+v, want a code", item)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	jid, err := srv.Scan(ctx, item.Code, phone)
	if err != nil {
		return nil, nil, "", nil, err
	}
	if got := <-qr; got != whatsmeow.QRChannelSuccess {
		return nil, nil, "", nil, fmt.Errorf("QR channel ended with %+v, want success", got)
	}
	ps, err := nextEvent[*events.PairSuccess](rec)
	if err != nil {
		return nil, nil, "", nil, err
	}
	if ps.ID != jid {
		return nil, nil, "", nil, fmt.Errorf("PairSuccess ID %s, want %s", ps.ID, jid)
	}
	if _, err := nextEvent[*events.Connected](rec); err != nil {
		return nil, nil, "", nil, err
	}
	return cli, container, path, rec, nil
}

func phoneJID(phone string) types.JID {
	return types.JID{User: phone, Server: types.DefaultUserServer}
}
