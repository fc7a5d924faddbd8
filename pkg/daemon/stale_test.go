package daemon_test

import (
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
)

// TestMessageAfterStepDownNotAcknowledged: a message whatsmeow dispatches
// on a client the daemon has just stopped (it was decrypted while the
// socket closed) must be refused, so that whatsmeow neither acknowledges it
// nor marks it handled in its decrypted-event buffer and the server
// redelivers it. With the handler removed it counted as handled, and the
// redelivery was acknowledged unrecorded (found by internal/faulttest).
func TestMessageAfterStepDownNotAcknowledged(t *testing.T) {
	r, accts := newRig(t, "40711000121")
	a := accts[0]
	var mu sync.Mutex
	var clients []*whatsmeow.Client
	addr := r.srv.Addr()
	run, lk := r.startSwitched(func(o *daemon.Options) {
		o.ConfigureClient = func(c *whatsmeow.Client) {
			wafake.ConfigureClient(c, addr)
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}
	})
	run.waitHealth(t, "connected", connected(1))
	mgr := run.manager(t)
	mu.Lock()
	cli := clients[len(clients)-1]
	mu.Unlock()
	lk.ctl <- false
	watest.Eventually(t, 10*time.Second, "passive", func() bool { return !mgr.Active() })
	peer := peerJID("40799000121")
	evt := &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: peer, Sender: peer, IsFromMe: false},
			ID:            "3EB0AABBCCDDEEFF0121", Timestamp: time.Now(),
		},
		Message: text("decrypted while the socket closed"),
	}
	if failed := cli.DangerousInternals().DispatchEvent(evt); !failed {
		t.Fatal("a message on a stopped client counted as handled: whatsmeow would acknowledge it and mark it handled, unrecorded")
	}
	if msgs := r.messages(t, r.st, a, peer); len(msgs) != 0 {
		t.Fatalf("stopped client recorded %d message(s)", len(msgs))
	}
}
