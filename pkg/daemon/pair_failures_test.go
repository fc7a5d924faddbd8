package daemon_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/pair"
)

// TestPairThroughDaemonFailuresKeepNothing: every way a pairing through the
// daemon can fail (WhatsApp unreachable, refused, Ctrl-C, the wrong phone)
// reports its real cause and leaves no account behind: not in the sessions
// directory, not on the daemon's dashboard.
func TestPairThroughDaemonFailuresKeepNothing(t *testing.T) {
	// A port nothing listens on: the "no network" of a server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	r, _ := newRig(t)
	var target atomic.Value
	target.Store(dead)
	dropping := wafake.DropAfterHandshake(t, r.srv.Addr())
	run := r.startWith("host-a", r.st, func(o *daemon.Options) {
		o.AdminSocket = r.dataDir + "/wactl.sock"
		o.ConfigureClient = func(c *whatsmeow.Client) { wafake.ConfigureClient(c, target.Load().(string)) }
	})
	run.waitHealth(t, "active", func(m map[string]any) bool { return m["waMode"] == "active" })
	admin, err := daemon.DialAdmin(r.dataDir)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		phone   string
		setup   func()
		onQR    func(ctx context.Context, cancel func(), code string)
		outcome pair.Outcome
		cause   string // in the outcome's error
	}{
		{name: "unreachable", phone: "40711000061",
			outcome: pair.OutcomeError, cause: "connection refused"},
		{name: "dropped before a code", phone: "40711000065", setup: func() { target.Store(dropping) },
			outcome: pair.OutcomeError, cause: "connection to WhatsApp was lost"},
		{name: "refused", phone: "40711000062", setup: func() { target.Store(r.srv.Addr()); r.srv.RefuseConnections(time.Hour) },
			outcome: pair.OutcomeError, cause: "503"},
		{name: "ctrl-c", phone: "40711000063", setup: func() { r.srv.RefuseConnections(0) },
			onQR: func(_ context.Context, cancel func(), _ string) { cancel() }, outcome: pair.OutcomeCancelled},
		{name: "wrong phone", phone: "40711000064",
			onQR:    func(ctx context.Context, _ func(), code string) { go r.srv.Scan(ctx, code, "40799999998") },
			outcome: pair.OutcomeRefused, cause: "+40799999998"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if raceEnabled && c.name == "dropped before a code" {
				// A close right after the handshake races inside whatsmeow (docs/races.md, 3).
				t.Skip("whatsmeow's handshake-then-close race (docs/races.md); runs in the plain run")
			}
			if c.setup != nil {
				c.setup()
			}
			id, _ := dedupe.AccountID("prod", c.phone, "40")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			out, err := admin.Pair(ctx, daemon.PairRequest{AccountID: id, Phone: "+" + c.phone}, func(e pair.Event) {
				if e.Kind == pair.KindQR && c.onQR != nil {
					c.onQR(ctx, cancel, e.Code)
				}
			})
			t.Logf("%s after %v: %+v, %v", c.name, time.Since(start).Round(time.Millisecond), out, err)
			if out.Outcome != c.outcome {
				t.Fatalf("outcome %q (%s), want %q", out.Outcome, out.Error, c.outcome)
			}
			if c.cause != "" && !strings.Contains(out.Error, c.cause) {
				t.Fatalf("error %q does not name the cause %q", out.Error, c.cause)
			}
			watest.Eventually(t, 5*time.Second, "nothing left of "+id, func() bool {
				if _, err := r.sess.Get(id); err == nil {
					return false
				}
				list, err := r.sess.List(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range list {
					if a.ID == id {
						return false
					}
				}
				for _, a := range run.get(t, "/api/status/dashboard")["accounts"].([]any) {
					if a.(map[string]any)["accountId"] == id {
						return false
					}
				}
				return true
			})
		})
	}
}
