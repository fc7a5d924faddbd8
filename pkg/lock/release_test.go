package lock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/legacynode"
)

// TestReleaseLegacy: `wactl lease release` ends only a stopped old
// service's lease, judged on Firestore's clock (issue 18.5).
func TestReleaseLegacy(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	ctx := context.Background()
	idle := 2 * time.Second // above the scaled renew interval (1.5 s), below the lease (4.5 s)

	if r, err := ReleaseLegacy(ctx, c, "", "vm", idle); err != nil || r.Released || r.Lease.Exists {
		t.Fatalf("absent document: %+v %v", r, err)
	}
	// The old service runs (renews every 0.6 s): never released.
	node, err := legacynode.NewLock(legacynode.LockOptions{Client: c, InstanceID: "vm", Scale: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	nctx, stopNode := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = node.Run(nctx); close(done) }()
	t.Cleanup(func() { stopNode(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !node.Active() {
		if time.Now().After(deadline) {
			t.Fatal("the simulated old service did not become ACTIVE")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 3 {
		_, err := ReleaseLegacy(ctx, c, "", "vm", idle)
		if !errors.Is(err, ErrReleaseRefused) || !strings.Contains(err.Error(), "still running") {
			t.Fatalf("release while the old service renews: %v", err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	if _, err := ReleaseLegacy(ctx, c, "", "other", idle); !errors.Is(err, ErrReleaseRefused) || !strings.Contains(err.Error(), `held by "vm"`) {
		t.Fatalf("wrong holder: %v", err)
	}
	// Stopped like the deployed old service: the document stays.
	stopNode()
	<-done
	v, err := ReadLease(ctx, c, "")
	if err != nil || !v.Exists || v.Expired || v.Format != "legacy" {
		t.Fatalf("after the old service stopped: %+v %v", v, err)
	}
	time.Sleep(idle + 200*time.Millisecond)
	if v, _ := ReadLease(ctx, c, ""); !v.StaleLegacy(idle) {
		t.Fatalf("not seen as stale: %+v", v)
	}
	r, err := ReleaseLegacy(ctx, c, "", "vm", idle)
	if err != nil || !r.Released {
		t.Fatalf("release of a stopped old service: %+v %v", r, err)
	}
	if v, _ := ReadLease(ctx, c, ""); !v.Expired || v.Holder != "vm" {
		t.Fatalf("after release: %+v", v)
	}
	// A wactl takes over at once.
	w := newWatcher("wactl", nil)
	runLock(t, newFS(t, c, "wactl-vm", w, nil))
	w.waitActive(t, 3*time.Second)
	// ... and its lease is never released by the command.
	if _, err := ReleaseLegacy(ctx, c, "", "wactl:wactl-vm", time.Nanosecond); !errors.Is(err, ErrReleaseRefused) || !strings.Contains(err.Error(), "wactl holder") {
		t.Fatalf("wactl's lease: %v", err)
	}
	if _, err := ReleaseLegacy(ctx, c, "", "wactl-vm", time.Nanosecond); !errors.Is(err, ErrReleaseRefused) || !strings.Contains(err.Error(), `held by "wactl:wactl-vm"`) {
		t.Fatalf("wactl's lease under its bare id: %v", err)
	}
}
