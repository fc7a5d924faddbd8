package daemon_test

import (
	"context"
	"testing"
)

// The daemon serves /health and the dashboard from a snapshot (issue 21);
// an operator's action shows in the very next answer, not up to
// StatusMaxAge later: a disconnect, then a delete, each read back at once
// while the snapshot before them is fresh.
func TestStatusSnapshotShowsControlsAtOnce(t *testing.T) {
	r, accts := newRig(t, "40711000071")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	mgr := run.manager(t)
	ctx, id := context.Background(), accts[0].ID
	for i := 0; i < 3; i++ { // a current snapshot, read by both routes
		run.get(t, "/health")
		run.accountState(t, id)
	}
	if err := mgr.Disconnect(ctx, id); err != nil {
		t.Fatal(err)
	}
	if m := run.get(t, "/health"); m["connected"] != 0.0 {
		t.Fatalf("/health right after the disconnect: connected %v", m["connected"])
	}
	if st := run.accountState(t, id); st["status"] == "connected" {
		t.Fatalf("dashboard right after the disconnect: %v", st)
	}
	if err := mgr.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if m := run.get(t, "/health"); m["accounts_total"] != 0.0 {
		t.Fatalf("/health right after the delete: accounts_total %v", m["accounts_total"])
	}
	if n := len(run.get(t, "/api/status/dashboard")["accounts"].([]any)); n != 0 {
		t.Fatalf("dashboard right after the delete lists %d accounts", n)
	}
}
