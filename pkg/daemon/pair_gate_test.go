package daemon_test

import (
	"context"
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
	"github.com/wactl/wactl/pkg/sessions"
)

// pairRig is a daemon on a switchLock with its admin socket; stepDownOn
// steps it down synchronously the next time it builds a client for which
// the predicate holds (between a pairing's checks and its connect).
type pairRig struct {
	*rig
	run   *running
	lk    *switchLock
	mgr   *daemon.Manager
	admin *daemon.AdminClient
	hook  atomic.Pointer[func(*whatsmeow.Client) bool]
}

func newPairRig(t *testing.T, phones ...string) (*pairRig, []watest.Account) {
	r, accts := newRig(t, phones...)
	p := &pairRig{rig: r}
	addr := r.srv.Addr()
	p.run, p.lk = r.startSwitched(func(o *daemon.Options) {
		o.AdminSocket = r.dataDir + "/wactl.sock"
		o.ConfigureClient = func(c *whatsmeow.Client) {
			wafake.ConfigureClient(c, addr)
			if f := p.hook.Load(); f != nil && (*f)(c) {
				p.hook.Store(nil)
				p.stepDown(t)
			}
		}
	})
	p.run.waitHealth(t, "active", func(m map[string]any) bool { return m["waMode"] == "active" && m["connected"] == float64(len(phones)) })
	p.mgr = p.run.manager(t)
	// /health says active once the lease is gained, a moment before the
	// manager has activated; a pairing asked in between is refused.
	watest.Eventually(t, 10*time.Second, "manager ACTIVE", p.mgr.Active)
	var err error
	if p.admin, err = daemon.DialAdmin(r.dataDir); err != nil {
		t.Fatal(err)
	}
	return p, accts
}

func (p *pairRig) stepDown(t *testing.T) {
	p.lk.ctl <- false
	watest.Eventually(t, 10*time.Second, "PASSIVE", func() bool { return !p.mgr.Active() })
}

// pairingConnsSince counts connections without an identity (pairings)
// opened at the fake after t0, and how many of them are still open.
func pairingConnsSince(srv *wafake.Server, t0 time.Time) (opened, open int) {
	for _, c := range srv.Connections() {
		if c.Pairing && !c.Opened.Before(t0) {
			opened++
			if c.Open() {
				open++
			}
		}
	}
	return opened, open
}

// assertForgotten: nothing of account id is left, on disk or on the
// daemon's dashboard.
func (p *pairRig) assertForgotten(t *testing.T, id string) {
	t.Helper()
	watest.Eventually(t, 5*time.Second, "nothing left of "+id, func() bool {
		if _, err := p.sess.Get(id); err == nil {
			return false
		}
		list, err := p.sess.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			if a.ID == id {
				return false
			}
		}
		for _, a := range p.run.get(t, "/api/status/dashboard")["accounts"].([]any) {
			if a.(map[string]any)["accountId"] == id {
				return false
			}
		}
		return true
	})
}

// TestPairingAfterStepDownConnectsNothing: a pairing through the daemon
// connects its new device through the connect gate. The daemon steps down
// after the pairing passed its ACTIVE check but before it connects: nothing
// may reach WhatsApp (before, pair.Pair connected by itself and showed a
// QR code on a PASSIVE instance), and nothing is kept.
func TestPairingAfterStepDownConnectsNothing(t *testing.T) {
	p, _ := newPairRig(t)
	p.hook.Store(new(func(c *whatsmeow.Client) bool { return c.Store.ID == nil }))
	id, _ := dedupe.AccountID("prod", "40711000091", "40")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	var codes atomic.Int32
	out, err := p.admin.Pair(ctx, daemon.PairRequest{AccountID: id, Phone: "+40711000091"}, func(e pair.Event) {
		if e.Kind == pair.KindQR {
			codes.Add(1)
		}
	})
	t.Logf("outcome %+v, %v", out, err)
	if out.Outcome == pair.OutcomePaired || codes.Load() != 0 {
		t.Fatalf("a PASSIVE instance paired or showed %d code(s): %+v", codes.Load(), out)
	}
	if opened, _ := pairingConnsSince(p.srv, t0); opened != 0 {
		t.Fatalf("the pairing opened %d connection(s) to WhatsApp after the step-down", opened)
	}
	if !strings.Contains(out.Error, "PASSIVE") {
		t.Fatalf("error %q does not say the instance is PASSIVE", out.Error)
	}
	p.assertForgotten(t, id)
}

// TestStepDownDuringPairingKeepsNothing: the daemon steps down while a
// pairing shows its first code. The pairing ends, its connection is
// closed, and no account is kept.
func TestStepDownDuringPairingKeepsNothing(t *testing.T) {
	p, _ := newPairRig(t)
	id, _ := dedupe.AccountID("prod", "40711000092", "40")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	var once atomic.Bool
	out, err := p.admin.Pair(ctx, daemon.PairRequest{AccountID: id, Phone: "+40711000092"}, func(e pair.Event) {
		if e.Kind == pair.KindQR && once.CompareAndSwap(false, true) {
			go p.stepDown(t)
		}
	})
	t.Logf("outcome %+v, %v", out, err)
	if !once.Load() {
		t.Fatalf("no code shown: %+v", out)
	}
	if out.Outcome == pair.OutcomePaired {
		t.Fatalf("paired after stepping down: %+v", out)
	}
	watest.Eventually(t, 5*time.Second, "the pairing's connection closed", func() bool {
		opened, open := pairingConnsSince(p.srv, t0)
		return opened == 1 && open == 0
	})
	p.assertForgotten(t, id)
}

// TestForcePairAfterStepDownUnlinksNothing: `pair --force` logs the old
// device out first. If the daemon steps down before that connect, the old
// device must not be logged in, let alone logged out (another instance may
// be driving it now): before, pair.Unlink connected it by itself and
// unlinked it from a PASSIVE instance. The session stays on disk.
func TestForcePairAfterStepDownUnlinksNothing(t *testing.T) {
	p, accts := newPairRig(t, "40711000093")
	a := accts[0]
	p.hook.Store(new(func(c *whatsmeow.Client) bool { return c.Store.ID != nil }))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := p.admin.Pair(ctx, daemon.PairRequest{AccountID: a.ID, Phone: "+" + a.Phone, Force: true}, nil)
	t.Logf("outcome %+v, %v", out, err)
	if out.Outcome == pair.OutcomePaired || !strings.Contains(out.Error, "PASSIVE") {
		t.Fatalf("outcome %+v, want a refusal naming PASSIVE", out)
	}
	if p.srv.IsRemoved(a.Device) {
		t.Fatal("a PASSIVE instance unlinked the device")
	}
	for _, c := range p.srv.DeviceConnections(a.Device) {
		if !c.Opened.Before(t0) {
			t.Fatalf("the device connected after the step-down: %+v", c)
		}
	}
	if opened, _ := pairingConnsSince(p.srv, t0); opened != 0 {
		t.Fatalf("the pairing opened %d connection(s) after the step-down", opened)
	}
	list, err := p.sess.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.ID == a.ID && s.Store != sessions.StorePaired {
			t.Fatalf("the session on disk is %v after a refused re-pair, want paired", s.Store)
		}
	}
}

// TestStepDownDuringUnlinkConnect: the step-down lands while the old
// device's connect is in flight; it is cancelled and waited for, and the
// device is neither logged in afterwards nor unlinked.
func TestStepDownDuringUnlinkConnect(t *testing.T) {
	p, accts := newPairRig(t, "40711000094")
	a := accts[0]
	restore := daemon.SetBeforeConnect(func(account, why string) {
		if account == a.ID && strings.HasPrefix(why, "unlink") {
			go p.stepDown(t)
			watest.Eventually(t, 5*time.Second, "step-down begun", func() bool { return !p.mgr.Active() })
		}
	})
	defer restore()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := p.admin.Pair(ctx, daemon.PairRequest{AccountID: a.ID, Phone: "+" + a.Phone, Force: true}, nil)
	t.Logf("outcome %+v, %v", out, err)
	if out.Outcome == pair.OutcomePaired {
		t.Fatalf("paired after stepping down: %+v", out)
	}
	if p.srv.IsRemoved(a.Device) {
		t.Fatal("the device was unlinked by an instance that stepped down")
	}
	watest.Eventually(t, 5*time.Second, "no live connection of the device", func() bool { return liveConnections(p.srv, a) == 0 })
}
