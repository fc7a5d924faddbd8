package replica_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
)

// TestDeleteLeavesTombstone (issue 20 gap 2): deleting a copy leaves a
// tombstone pointer that keeps the generation, so no reader restores it
// and the generation never goes back (a re-paired account continues
// above it, and a host whose local session is older is never taken for
// newer).
func TestDeleteLeavesTombstone(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200012")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(4)
	r := newReplica(c, k, f)
	snap := export(t, src, acct.ID)
	for range 2 {
		if _, err := r.Put(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.DeleteUnfenced(ctx, acct.ID); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Collection(replica.Collection).Doc(acct.ID).Get(ctx)
	if err != nil {
		t.Fatalf("no tombstone: %v", err)
	}
	if d, _ := ds.DataAt("deleted"); d != true {
		t.Fatalf("tombstone: %v", ds.Data())
	}
	if g, _ := ds.DataAt("generation"); g != int64(2) {
		t.Fatalf("tombstone generation %v, want 2", g)
	}
	if e, _ := ds.DataAt("epoch"); e != int64(4) {
		t.Fatalf("an unfenced delete lowered the epoch to %v", e)
	}
	if _, err := r.Stat(ctx, acct.ID); !errors.Is(err, replica.ErrNoReplica) {
		t.Fatalf("stat of a tombstone: %v", err)
	}
	if rr := r.RestoreAccount(ctx, openStore(t), acct.ID); rr.Outcome != replica.NoReplica {
		t.Fatalf("restore of a tombstone: %+v", rr)
	}
	if n := chunkCount(t, c, acct.ID); n != 0 {
		t.Fatalf("%d chunks after delete", n)
	}
	res, err := r.Put(ctx, snap)
	if err != nil || res.Generation != 3 {
		t.Fatalf("put over the tombstone: %+v %v, want generation 3", res, err)
	}
}
