package replica_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/store"
)

// TestDamagedPointerRepairedByHolder (issue 20 gap 4): a pointer document
// damaged by hand (a field of the wrong type) made every later write fail
// with a conflict. It is reported as damaged, and the lease holder's next
// write replaces it (precondition on the damaged document's update time,
// fenced by its epoch) above every generation its chunks name; a deposed
// holder cannot.
func TestDamagedPointerRepairedByHolder(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200013")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(5)
	r := newReplica(c, k, f)
	snap := export(t, src, acct.ID)
	for range 3 {
		if _, err := r.Put(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	ptr := c.Collection(replica.Collection).Doc(acct.ID)
	if _, err := ptr.Update(ctx, []firestore.Update{{Path: "generation", Value: "three"}}); err != nil {
		t.Fatal(err)
	}
	_, _, getErr := r.Get(ctx, acct.ID)
	if !errors.Is(getErr, replica.ErrCorrupt) {
		t.Fatalf("get with a damaged pointer: %v", getErr)
	}
	deposed := &fence{}
	deposed.epoch.Store(4)
	if _, err := newReplica(c, k, deposed).Put(ctx, snap); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed holder over a damaged pointer: %v, want ErrFenced", err)
	}
	res, err := r.Put(ctx, snap)
	if err != nil {
		t.Fatalf("holder's write over a damaged pointer: %v", err)
	}
	if res.Generation != 4 {
		t.Fatalf("repaired at generation %d, want 4 (above the chunks' 3)", res.Generation)
	}
	if !strings.Contains(getErr.Error(), "pointer document is damaged") {
		t.Fatalf("the damage is not named: %v", getErr)
	}
	got, in, err := r.Get(ctx, acct.ID)
	if err != nil || got.Digest != snap.Digest || in.Generation != 4 || in.Epoch != 5 {
		t.Fatalf("after the repair: %+v %v", in, err)
	}
}

// TestRepairPointerFromChunks: the operator's repair (wactl doctor --fix)
// rebuilds a damaged pointer from the newest complete generation of
// chunks that opens with this host's key, under a precondition on the
// damaged document's update time, keeping its epoch.
func TestRepairPointerFromChunks(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200014")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(6)
	r := newReplica(c, k, f)
	snap := export(t, src, acct.ID)
	for range 2 {
		if _, err := r.Put(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	ptr := c.Collection(replica.Collection).Doc(acct.ID)
	if _, err := ptr.Update(ctx, []firestore.Update{{Path: "chunks", Value: "x"}, {Path: "sha256", Value: 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.New(replica.Options{Client: c, Key: k}).RepairPointer(ctx, acct.ID); err != nil {
		t.Fatal(err)
	}
	got, in, err := r.Get(ctx, acct.ID)
	if err != nil || got.Digest != snap.Digest || in.Generation != 2 || in.Epoch != 6 {
		t.Fatalf("after the repair: %+v %v", in, err)
	}

	// Nothing opens (the only chunk altered): the repair leaves a
	// tombstone above every generation, which reads as no copy and which
	// the holder's next copy writes over.
	chunk := c.Collection(replica.Collection).Doc(acct.ID).Collection("chunks").Doc(firstChunk(2))
	if _, err := chunk.Update(ctx, []firestore.Update{{Path: "data", Value: []byte("not age")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ptr.Update(ctx, []firestore.Update{{Path: "epoch", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.New(replica.Options{Client: c, Key: k}).RepairPointer(ctx, acct.ID); !errors.Is(err, replica.ErrNoReplica) {
		t.Fatalf("repair with no readable generation: %v", err)
	}
	if _, err := r.Stat(ctx, acct.ID); !errors.Is(err, replica.ErrNoReplica) {
		t.Fatalf("after the tombstone repair: %v", err)
	}
	res, err := r.Put(ctx, snap)
	if err != nil || res.Generation != 3 {
		t.Fatalf("put over the repair's tombstone: %+v %v", res, err)
	}
}
