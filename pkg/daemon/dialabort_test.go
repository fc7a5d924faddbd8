package daemon_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
)

// heldDial holds the first websocket dial until released, ignoring its
// context, and hands the test that context: the one whatsmeow keeps for the
// socket's read pump.
type heldDial struct {
	once    sync.Once
	reached chan context.Context
	release chan struct{}
	next    http.RoundTripper
}

func (h *heldDial) RoundTrip(req *http.Request) (*http.Response, error) {
	h.once.Do(func() {
		h.reached <- req.Context()
		<-h.release
	})
	return h.next.RoundTrip(req)
}

// TestStepDownAbortsTheDialNotTheConnection: a step-down while a connect
// is in flight must not cancel the connect's context. whatsmeow keeps that
// context for the socket's read pump, which on cancellation closes the
// socket on its own goroutine while the handshake is still setting it up
// (the data race CI's -race run hit in TestResumedHolderDoesNotReconnect).
// The step-down aborts the dial instead: one not answered yet opens no
// connection, and the next lease connects the account normally.
func TestStepDownAbortsTheDialNotTheConnection(t *testing.T) {
	r, accts := newRig(t, "40711000103")
	a := accts[0]
	held := &heldDial{reached: make(chan context.Context, 1), release: make(chan struct{}),
		next: wafake.HTTPClientFor(r.srv.Addr()).Transport}
	run, lk := r.startSwitched(func(o *daemon.Options) {
		o.ConfigureClient = func(c *whatsmeow.Client) {
			wafake.ConfigureClient(c, r.srv.Addr())
			h := &http.Client{Transport: held}
			c.SetWebsocketHTTPClient(h)
			c.SetPreLoginHTTPClient(h)
		}
	})
	mgr := run.manager(t)
	var connCtx context.Context
	select {
	case connCtx = <-held.reached:
	case <-time.After(15 * time.Second):
		t.Fatal("the restore never dialled")
	}
	began := time.Now()
	stepped := make(chan struct{})
	go func() { lk.ctl <- false; close(stepped) }()
	watest.Eventually(t, 10*time.Second, "manager passive", func() bool { return !mgr.Active() })
	time.Sleep(200 * time.Millisecond) // the step-down has aborted (or cancelled) by now
	ctxErr := connCtx.Err()
	close(held.release)
	if ctxErr != nil {
		t.Fatalf("the step-down cancelled the connect's context (%v): whatsmeow's read pump would close the socket the handshake is setting up", ctxErr)
	}
	select {
	case <-stepped:
	case <-time.After(15 * time.Second):
		t.Fatal("step-down did not return")
	}
	if n := opensSince(r.srv, a, began); n != 0 {
		t.Fatalf("the aborted dial still opened %d connection(s) at the server", n)
	}
	if n := liveConnections(r.srv, a); n != 0 {
		t.Fatalf("%d live connection(s) after the step-down", n)
	}
	// A new lease: the account connects, its dial no longer aborted.
	lk.ctl <- true
	watest.Eventually(t, 15*time.Second, "connected again under the next lease", func() bool {
		return liveConnections(r.srv, a) == 1
	})
}
