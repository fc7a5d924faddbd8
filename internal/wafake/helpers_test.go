package wafake_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
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
type recorder struct {
	ch        chan any
	connected atomic.Int64 // Connected events seen
}

func record(cli *whatsmeow.Client) *recorder {
	r := &recorder{ch: make(chan any, 1024)}
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			r.connected.Add(1)
		}
		r.ch <- evt
	})
	return r
}

// closeSettled closes cli once whatsmeow has finished the work it starts on
// its own goroutine after each login of dev (the prekey count and passive
// IQs, which end with the Connected event), so that the close never meets
// one of those writes (docs/races.md: the write reads the socket's conn
// without the lock the close writes it under). A test that ends right
// after a reconnect would otherwise close the socket under them. dev is
// passed in, not read from cli.Store.ID, which whatsmeow clears on its own
// goroutine when the server logs the device out.
func closeSettled(srv *wafake.Server, cli *whatsmeow.Client, rec *recorder, dev *types.JID) {
	if dev != nil {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && rec.connected.Load() < int64(logins(srv, *dev)) {
			time.Sleep(10 * time.Millisecond)
		}
		// When the server has closed the device's every connection,
		// whatsmeow's read pump closes the client's side by itself, and a
		// Disconnect meeting that close races inside whatsmeow
		// (NoiseSocket.Stop writes FrameSocket.OnDisconnect unlocked while
		// the read pump's Close reads it). Wait until whatsmeow has let go
		// of the socket; Disconnect then has nothing to stop.
		for time.Now().Before(deadline) && !anyOpen(srv, *dev) && !wasock.Detached(cli) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	wasock.Close(cli)
}

// anyOpen reports whether the fake still has a connection of dev open.
func anyOpen(srv *wafake.Server, dev types.JID) bool {
	for _, r := range srv.DeviceConnections(dev) {
		if r.Open() {
			return true
		}
	}
	return false
}

// logins counts the connections on which the fake logged dev in.
func logins(srv *wafake.Server, dev types.JID) int {
	n := 0
	for _, r := range srv.DeviceConnections(dev) {
		if !r.LoggedIn.IsZero() {
			n++
		}
	}
	return n
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
	rec := record(cli)
	var paired atomic.Pointer[types.JID]
	t.Cleanup(func() { closeSettled(srv, cli, rec, paired.Load()) })
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
	paired.Store(&jid)
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
