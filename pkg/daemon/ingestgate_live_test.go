package daemon_test

import (
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
)

// TestIngestGateFollowsTheSocket: the gate's idea of which sockets may
// still deliver (a reader waiting for a dead socket's queue would wait for
// ever, and that queue would count against every other account) follows
// the daemon's connects and disconnects and whatsmeow's Disconnected,
// without asking whatsmeow's racy Client.IsConnected.
func TestIngestGateFollowsTheSocket(t *testing.T) {
	r, accts := newRig(t, "40711000031")
	var mu sync.Mutex
	var clients []*whatsmeow.Client
	run := r.startWith("host-a", r.st, func(o *daemon.Options) {
		configure := o.ConfigureClient
		o.ConfigureClient = func(c *whatsmeow.Client) {
			configure(c)
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}
	})
	run.waitHealth(t, "connected", connected(1))
	current := func() *whatsmeow.Client {
		mu.Lock()
		defer mu.Unlock()
		if len(clients) != 1 {
			t.Fatalf("%d clients made for one account, want 1", len(clients))
		}
		return clients[0]
	}
	cli := current()
	if live, ok := daemon.GateLive(cli); !ok || !live {
		t.Fatalf("connected client: gate live=%v (gated=%v), want live", live, ok)
	}

	// A drop by the server: Disconnected marks the socket gone before the
	// daemon reconnects the same client (seen from the hook that runs
	// right before a connect), and the reconnect marks it live again.
	downAtReconnect := make(chan bool, 8)
	defer daemon.SetBeforeConnect(func(account, why string) {
		if account == accts[0].ID {
			live, _ := daemon.GateLive(cli)
			downAtReconnect <- !live
		}
	})()
	if err := r.srv.Inject(accts[0].Device, wafake.FaultDrop); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "reconnect after drop", func() bool {
		st := run.accountState(t, accts[0].ID)
		return st["status"] == "connected" && st["reconnectCount"].(float64) >= 1
	})
	select {
	case down := <-downAtReconnect:
		if !down {
			t.Error("the gate still counted the dropped socket as live when the daemon reconnected")
		}
	default:
		t.Fatal("the reconnect did not go through the daemon's connect")
	}
	if live, _ := daemon.GateLive(current()); !live {
		t.Fatal("reconnected client: the gate counts its socket as gone")
	}

	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	if live, _ := daemon.GateLive(current()); live {
		t.Fatal("after shutdown the gate still counts the socket as live")
	}
}
