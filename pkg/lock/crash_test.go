package lock

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
)

// TestKill9Takeover: the holder process is killed with SIGKILL; another
// instance takes over within TTL + retry.
func TestKill9Takeover(t *testing.T) {
	t.Parallel()
	c, project := emuClient(t)
	cfg := childBase(fsemu.Host(t), project)
	cfg.Mode, cfg.Instance, cfg.Host, cfg.DataDir = "firestore", "victim", "h", filepath.Join(t.TempDir(), "v")
	p := startChild(t, cfg)
	e := atoi64(t, p.expect(t, "ACTIVE", 20*time.Second)[1])
	w := newWatcher("heir", nil)
	runLock(t, newFS(t, c, "heir", w, nil))
	w.assertNoActive(t, fast.TTL)
	killed := time.Now()
	p.kill9(t)
	e2 := w.waitActive(t, fast.TTL+fast.Retry+2*time.Second)
	took := time.Since(killed)
	if e2 != e+1 {
		t.Fatalf("epoch %d after %d", e2, e)
	}
	t.Logf("takeover %s after kill -9 (TTL %s, retry %s)", took.Round(time.Millisecond), fast.TTL, fast.Retry)
	if took > fast.TTL+fast.Retry+time.Second {
		t.Errorf("took %s, more than TTL + retry", took)
	}
}

// TestRestartAfterKill9: the same instance restarted on the same host and
// data dir after SIGKILL is ACTIVE again at once, with the DEFAULT 20 s TTL
// (waiting for expiry would take ~20 s).
func TestRestartAfterKill9(t *testing.T) {
	t.Parallel()
	c, project := emuClient(t)
	cfg := childBase(fsemu.Host(t), project)
	cfg.Mode, cfg.Instance, cfg.Host, cfg.DataDir = "firestore", "inst", "h", filepath.Join(t.TempDir(), "d")
	cfg.Timing = DefaultTiming.WithDefaults()
	p := startChild(t, cfg)
	e := atoi64(t, p.expect(t, "ACTIVE", 20*time.Second)[1])
	// A contender of another instance must not profit from the restart.
	w := newWatcher("other", nil)
	runLock(t, newFS(t, c, "other", w, func(o *FirestoreOptions) { o.Timing = DefaultTiming.WithDefaults() }))
	p.kill9(t)
	started := time.Now()
	p2 := startChild(t, cfg)
	f := p2.expect(t, "ACTIVE", 10*time.Second)
	spawnToActive := time.Since(started)
	inProcess := time.Duration(atoi64(t, f[2]))
	if e2 := atoi64(t, f[1]); e2 != e+1 {
		t.Fatalf("epoch %d after restart, want %d", e2, e+1)
	}
	t.Logf("restart → ACTIVE: %s from spawn, %s inside the process", spawnToActive.Round(time.Millisecond), inProcess.Round(time.Millisecond))
	if inProcess > time.Second {
		t.Errorf("restarted instance ACTIVE after %s, want within 1 s", inProcess)
	}
	w.assertNoActive(t, 500*time.Millisecond)
	p2.stop(t)
}

// TestFrozenEmulator: Firestore stops answering (SIGSTOP) under the holder.
// The holder steps down before its leaseUntil; after SIGCONT someone holds
// the lease again; at no moment are two processes active.
func TestFrozenEmulator(t *testing.T) {
	t.Parallel()
	e := fsemu.Start(t)
	c, _ := e.NewClient(t)
	warm(t, c)
	rec := newTenures()
	wa, wb := newWatcher("a", rec), newWatcher("b", rec)
	la := newFS(t, c, "a", wa, nil)
	runLock(t, la)
	wa.waitActive(t, 5*time.Second)
	runLock(t, newFS(t, c, "b", wb, nil))
	time.Sleep(fast.Renew)
	if err := e.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozen := true
	t.Cleanup(func() {
		if frozen {
			_ = e.Thaw()
		}
	})
	leaseUntil := la.Status().LeaseUntil // the last lease it wrote (Firestore clock = this machine's)
	r := wa.waitPassive(t, fast.TTL)
	down := time.Now()
	if !strings.Contains(r, "not confirmed") {
		t.Fatalf("reason %q", r)
	}
	if !down.Before(leaseUntil) {
		t.Fatalf("stepped down at %s, after its lease ended at %s", down.Format(time.StampMilli), leaseUntil.Format(time.StampMilli))
	}
	t.Logf("stepped down %s before leaseUntil", leaseUntil.Sub(down).Round(time.Millisecond))
	time.Sleep(fast.TTL)
	if err := e.Thaw(); err != nil {
		t.Fatal(err)
	}
	frozen = false
	select {
	case <-wa.actives:
	case <-wb.actives:
	case <-time.After(3 * fast.TTL):
		t.Fatal("nobody ACTIVE after thaw")
	}
	time.Sleep(fast.TTL)
	rec.check(t)
	if n := rec.activeCount(); n != 1 {
		t.Fatalf("%d active after thaw", n)
	}
}
