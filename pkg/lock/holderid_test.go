package lock

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
)

// TestUpgradeReclaimsEarlierVersionLease: a lease written by a wactl from
// before the "wactl:" prefix (holderInstanceId is the bare instance id, its
// binding valid) is still this instance's after an upgrade: doctor beside
// it says "held by this instance", and the upgraded process on the same
// host and data dir reclaims it at once (not after its TTL), rewriting the
// holder in wactl's form with the next epoch.
func TestUpgradeReclaimsEarlierVersionLease(t *testing.T) {
	t.Parallel()
	c, _ := emuClient(t)
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "a")
	startedAt := time.UnixMicro(time.Now().Add(-time.Hour).UnixMicro()).UTC()
	until := time.Now().Add(60 * time.Second).UnixMilli()
	old := Holder{InstanceID: "a", Host: "host-a", PID: 4242, StartedAt: startedAt, DataDir: dataDir, Session: "s-before-upgrade"}
	if _, err := c.Doc(DefaultDocPath).Set(ctx, map[string]any{
		fHolder: "a", fLeaseUntil: until, fAcquiredAt: firestore.ServerTimestamp, fUpdatedAt: firestore.ServerTimestamp,
		fPreviousHolder: nil, fEpoch: int64(7), fHost: "host-a", fPID: int64(4242), fStartedAt: startedAt,
		fDataDir: dataDir, fSession: old.Session, fBinding: bindingOf(old, until, 7),
	}); err != nil {
		t.Fatal(err)
	}
	v, err := ReadLease(ctx, c, "")
	if err != nil || v.Format != "wactl" || v.Holder != "a" {
		t.Fatalf("earlier version's lease read as %+v %v", v, err)
	}
	doctor := newFS(t, c, "a", newWatcher("doctor", nil), func(o *FirestoreOptions) { o.DataDir = dataDir })
	if st, err := doctor.Inspect(ctx); err != nil || st.LockStatus != HeldByThisInstance || st.Holder.PID != 4242 {
		t.Fatalf("doctor beside the earlier version's lease: %+v %v", st, err)
	}
	w := newWatcher("a", nil)
	runLock(t, newFS(t, c, "a", w, func(o *FirestoreOptions) { o.DataDir = dataDir }))
	start := time.Now()
	e := w.waitActive(t, 5*time.Second)
	if took := time.Since(start); took > 5*time.Second || time.Now().UnixMilli() >= until {
		t.Fatalf("reclaimed after %s, not at once", took)
	}
	d := leaseDoc(t, c)
	assertNodeFields(t, d, "a")
	if e != 8 || d[fEpoch] != int64(8) || d[fPreviousHolder] != "a" {
		t.Fatalf("epoch %d, document %v", e, d)
	}
}

// TestHolderIDForm: what wactl writes, how it is read back, and the ids
// that would make the prefix ambiguous.
func TestHolderIDForm(t *testing.T) {
	if HolderID("vm") != "wactl:vm" {
		t.Fatal(HolderID("vm"))
	}
	for holder, want := range map[string]struct {
		id       string
		prefixed bool
	}{"wactl:vm": {"vm", true}, "vm": {"vm", false}, "wactl-vm": {"wactl-vm", false}, "wactl:": {"", true}} {
		if id, p := InstanceOfHolder(holder); id != want.id || p != want.prefixed {
			t.Errorf("InstanceOfHolder(%q) = %q,%v", holder, id, p)
		}
	}
	if !sameInstance("wactl:vm", "vm") || !sameInstance("vm", "vm") || sameInstance("wactl:vm", "wactl-vm") || sameInstance("wactl:vm2", "vm") {
		t.Fatal("sameInstance")
	}
	c, _ := emuClient(t)
	for _, id := range []string{"wactl:vm", "a:b"} {
		_, err := NewFirestore(FirestoreOptions{Client: c, InstanceID: id, Host: "h"})
		if err == nil || !strings.Contains(err.Error(), "':'") {
			t.Errorf("instance id %q accepted: %v", id, err)
		}
	}
}
