package wafake_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

func TestHandshakeNeedsTrustedRoot(t *testing.T) {
	// The handshake only succeeds because TestMain trusted the test root:
	// the client verified the fake's chain and sent its payload, so the fake
	// saw a pairing connection.
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _ := srv.NewTestClient(t)
	qr, _ := cli.GetQRChannel(context.Background())
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	<-qr
	recs := srv.Connections()
	if len(recs) != 1 || !recs[0].Pairing {
		t.Fatalf("records = %+v, want one pairing connection", recs)
	}
}

func TestRestoredDeviceLogsIn(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container, path, _ := pair(t, srv, "15550000010")
	jid := *cli.Store.ID
	wasock.Close(cli)
	_ = container.Close()

	// A new process: reopen the SQLite file and connect without a QR code.
	c2, err := wafake.OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	dev, err := c2.GetDevice(context.Background(), jid)
	if err != nil || dev == nil {
		t.Fatalf("device %s not in store: %v", jid, err)
	}
	cli2 := srv.NewClient(dev, nil)
	defer wasock.Close(cli2)
	rec := record(cli2)
	if err := cli2.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Connected](t, rec)
	if got := srv.UnknownIQs(); len(got) != 0 {
		t.Fatalf("client sent queries the fake does not answer: %v", got)
	}
	if srv.MaxConcurrent(jid) != 1 {
		t.Fatalf("two connections of %s overlapped", jid)
	}
}

func TestRestoredDeviceLogsInOnFreshServer(t *testing.T) {
	// A daemon test may restart the fake; a device it never saw pairs
	// against the derived LID and still logs in.
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, _ := pair(t, srv, "15550000011")
	jid := *cli.Store.ID
	wasock.Close(cli)
	srv2 := wafake.Start(t, fastOpts)
	cli2 := srv2.NewClient(cli.Store, nil)
	defer wasock.Close(cli2)
	rec := record(cli2)
	if err := cli2.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Connected](t, rec)
	if !srv2.IsLive(jid) {
		t.Fatalf("fresh server does not see %s live", jid)
	}
}

func TestManyDevicesOnOneServer(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	const n = 4
	var wg sync.WaitGroup
	jids := make(chan string, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli, _, _, _, err := pairE(t, srv, fmt.Sprintf("1555100%04d", i))
			if err != nil {
				errs <- err
				return
			}
			jids <- cli.Store.ID.String()
		}()
	}
	wg.Wait()
	close(jids)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for j := range jids {
		seen[j] = true
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct devices, want %d", len(seen), n)
	}
	live := 0
	for _, r := range srv.Connections() {
		if r.Open() && !r.LoggedIn.IsZero() {
			live++
		}
	}
	if live != n {
		t.Fatalf("%d live logged-in connections, want %d", live, n)
	}
}

func TestClientLogoutRemovesDevice(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container, _, _ := pair(t, srv, "15550000012")
	jid := *cli.Store.ID
	if err := cli.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if !srv.IsRemoved(jid) {
		t.Fatal("fake did not record the logout")
	}
	if dev, err := container.GetDevice(context.Background(), jid); err != nil || dev != nil {
		t.Fatalf("device still in store after Logout: %v %v", dev, err)
	}
}
