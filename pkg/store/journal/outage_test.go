package journal_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store/journal"
)

const outageN = 5000

// Firestore frozen (SIGSTOP) while 5,000 messages and 500 redeliveries are
// recorded: every call returns once the message is durable locally, the
// backlog is visible in Health, and after the thaw all 5,000 land exactly
// once.
func TestOutageFrozenEmulator(t *testing.T) {
	t.Parallel()
	e := fsemu.Start(t)
	c, project := e.NewClient(t)
	j := open(t, e.Host, project, filepath.Join(t.TempDir(), "journal.db"), journal.Options{
		CallTimeout: 4 * time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	}, false, nil)
	ctx := context.Background()
	if _, err := j.RecordMessage(ctx, msg(0)); err != nil {
		t.Fatal(err)
	}
	if err := e.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozen := true
	t0 := time.Now()
	defer func() {
		if frozen {
			e.Thaw()
		}
	}()
	for i := 1; i < outageN; i++ {
		if _, err := j.RecordMessage(ctx, msg(i)); err != nil {
			t.Fatalf("RecordMessage(%d) while Firestore is down: %v", i, err)
		}
	}
	for i := 0; i < 500; i++ {
		if _, err := j.RecordMessage(ctx, msg(i*7)); err != nil {
			t.Fatal(err)
		}
	}
	h := j.Health(ctx)
	if h.Reachable || h.JournalBacklog < outageN-1 || h.JournalOldest <= 0 || h.LastError == "" {
		t.Fatalf("health while frozen: %+v", h)
	}
	if err := e.Thaw(); err != nil {
		t.Fatal(err)
	}
	frozen = false
	t.Logf("recorded %d messages + 500 redeliveries while frozen in %v", outageN, time.Since(t0))
	t1 := time.Now()
	fctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("backlog shipped after the thaw in %v", time.Since(t1))
	if h := j.Health(ctx); h.JournalBacklog != 0 || !h.Reachable {
		t.Fatalf("health after flush: %+v", h)
	}
	landed(t, c, outageN)
	cn, err := j.Counters(ctx, testAccount)
	if err != nil {
		t.Fatal(err)
	}
	// Write tokens make a retried shipment report what its first attempt
	// did, so the counters are exact even across the outage.
	if cn.DedupeWrote != outageN || cn.DedupeSkipped != 500 {
		t.Fatalf("counters wrote/skipped %d/%d, want %d/500", cn.DedupeWrote, cn.DedupeSkipped, outageN)
	}
}

// The recording process is killed (SIGKILL) midway, restarted, and records
// from the first unacknowledged message: every acknowledged message
// survives, the restarted process ships the backlog, all land exactly once.
func TestRecorderKilledMidway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		freeze bool // Firestore down while the first process runs
	}{{"shipping", false}, {"firestore-down", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Only a test that freezes Firestore needs an emulator of its own.
			c, project := fsemu.NewClient(t)
			host := fsemu.Host(t)
			var e *fsemu.Emulator
			if tc.freeze {
				e = fsemu.Start(t)
				c, project = e.NewClient(t)
				host = e.Host
			}
			env := map[string]string{"HOST": host, "PROJECT": project, "PATH": filepath.Join(t.TempDir(), "journal.db")}
			if !tc.freeze {
				// Background shipping is in progress when the kill lands.
				env["NOINLINE"] = "1"
			} else if err := e.Freeze(); err != nil {
				t.Fatal(err)
			}
			last := child(t, env, 0, outageN, outageN/2)
			if tc.freeze {
				if err := e.Thaw(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("first process killed after acknowledging message %d", last)
			if last < outageN/2-1 {
				t.Fatalf("only %d acks before the kill", last+1)
			}
			delete(env, "NOINLINE")
			child(t, env, last+1, outageN, 0)
			landed(t, c, outageN)
		})
	}
}
