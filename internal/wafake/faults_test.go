package wafake_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

// waitDeleted waits until the device row is gone from the SQLite store.
// whatsmeow deletes it right after dispatching LoggedOut, with no event of
// its own, so this is the one place the tests poll.
func waitDeleted(t *testing.T, c *sqlstore.Container, jid types.JID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		dev, err := c.GetDevice(context.Background(), jid)
		if err == nil && dev == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("device %s still in the store after logout", jid)
}

func TestFaultDropReconnects(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000020")
	jid := *cli.Store.ID
	if err := srv.Inject(jid, wafake.FaultDrop); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Disconnected](t, rec)
	waitEvent[*events.Connected](t, rec)
	recs := srv.DeviceConnections(jid)
	last := recs[len(recs)-1]
	if len(recs) != 3 || recs[1].Outcome != "dropped" || !last.Open() || last.LoggedIn.IsZero() {
		t.Fatalf("records = %+v, want pairing, dropped, live", recs)
	}
	if srv.MaxConcurrent(jid) != 1 {
		t.Fatal("connections overlapped across the reconnect")
	}
}

func TestFaultLogoutWhileConnected(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container, _, rec := pair(t, srv, "15550000021")
	jid := *cli.Store.ID
	if err := srv.Inject(jid, wafake.FaultLogout); err != nil {
		t.Fatal(err)
	}
	lo := waitEvent[*events.LoggedOut](t, rec)
	if lo.OnConnect {
		t.Fatalf("LoggedOut.OnConnect = true for a live logout")
	}
	waitDeleted(t, container, jid)
}

func TestFaultLogoutAtConnect(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container, _, rec := pair(t, srv, "15550000022")
	jid := *cli.Store.ID
	wasock.Close(cli)
	if err := srv.Inject(jid, wafake.FaultLogout); err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	lo := waitEvent[*events.LoggedOut](t, rec)
	if !lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("LoggedOut = %+v, want OnConnect with reason 401", lo)
	}
	waitDeleted(t, container, jid)
}

func TestFaultStreamReplaced(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000023")
	jid := *cli.Store.ID
	if err := srv.Inject(jid, wafake.FaultStreamReplaced); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.StreamReplaced](t, rec)
}

func TestSecondConnectionReplacesFirst(t *testing.T) {
	// Two processes running the same session: the server keeps the newest
	// and tells the older one it was replaced. This is what wactl's lease
	// must prevent; here it proves the fake detects it.
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, path, rec := pair(t, srv, "15550000024")
	jid := *cli.Store.ID
	c2, err := wafake.OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	dev, err := c2.GetDevice(context.Background(), jid)
	if err != nil || dev == nil {
		t.Fatal("device not in store", err)
	}
	cli2 := srv.NewClient(dev, nil)
	defer wasock.Close(cli2)
	rec2 := record(cli2)
	if err := cli2.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Connected](t, rec2)
	waitEvent[*events.StreamReplaced](t, rec)
	if got := srv.MaxConcurrent(jid); got != 2 {
		t.Fatalf("MaxConcurrent = %d, want 2 (the overlap must be visible)", got)
	}
}

func TestFaultTempBanThenLifted(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000025")
	jid := *cli.Store.ID
	if err := srv.Inject(jid, wafake.FaultTempBan); err != nil {
		t.Fatal(err)
	}
	ban := waitEvent[*events.TemporaryBan](t, rec)
	if ban.Code != events.TempBanSentToTooManyPeople || ban.Expire != time.Hour {
		t.Fatalf("TemporaryBan = %+v", ban)
	}
	wasock.Close(cli)
	srv.ClearFaults(jid)
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Connected](t, rec)
}

func TestFaultClientOutdated(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000026")
	if err := srv.Inject(*cli.Store.ID, wafake.FaultClientOutdated); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.ClientOutdated](t, rec)
}

func TestFaultStallTimesOutKeepAliveAndReconnects(t *testing.T) {
	if raceEnabled {
		t.Skip("needs wafake.FastKeepAlive, which TestMain leaves off under -race")
	}
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000027")
	jid := *cli.Store.ID
	if err := srv.Inject(jid, wafake.FaultStall); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.KeepAliveTimeout](t, rec)
	// After KeepAliveMaxFailTime the client gives up on the socket and
	// reconnects; the new connection is healthy.
	waitEvent[*events.Connected](t, rec)
	recs := srv.DeviceConnections(jid)
	if recs[1].Outcome != "stalled" || recs[1].Open() {
		t.Fatalf("stalled connection record = %+v", recs[1])
	}
}

func TestRefuseConnectionsForAWhile(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000028")
	srv.RefuseConnections(500 * time.Millisecond)
	if err := srv.Inject(*cli.Store.ID, wafake.FaultDrop); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Disconnected](t, rec)
	waitEvent[*events.Connected](t, rec)
	if srv.RefusedCount() == 0 {
		t.Fatal("no connection attempt was refused")
	}
}

func TestServerWideClientOutdated(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000029")
	wasock.Close(cli)
	srv.SetClientOutdated(true)
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.ClientOutdated](t, rec)
}
