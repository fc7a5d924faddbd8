package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// TestFencedWrites: serve's embedded store writes accounts and outbox
// claims/results only under a held lease epoch (issue 15.2); a process that
// stepped down (Fence 0,false) writes nothing over the holder's documents.
func TestFencedWrites(t *testing.T) {
	ctx := context.Background()
	var held atomic.Int64
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "wactl.db"),
		Fence: func() (int64, bool) { e := held.Load(); return e, e > 0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := store.Account{ID: "account_prod_x", Name: "Shop", Status: "connected"}
	if err := s.PutAccount(ctx, acc); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("write without a held epoch: %v", err)
	}
	held.Store(3)
	if err := s.PutAccount(ctx, acc); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAccount(ctx, acc.ID); got.Epoch != 3 {
		t.Fatalf("stored epoch %d, want the held 3", got.Epoch)
	}
	if _, err := s.EnqueueOutbox(ctx, store.OutboxItem{RequestID: "r1", AccountID: acc.ID, ToJID: "1@s.whatsapp.net", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	items, err := s.ClaimOutbox(ctx, "me", 3, time.Minute, 5)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %v %v", items, err)
	}
	held.Store(0) // stepped down
	acc.Status = "passive"
	if err := s.PutAccount(ctx, acc); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed account write: %v", err)
	}
	if err := s.CompleteOutbox(ctx, "r1", "me", "3EB0"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed result: %v", err)
	}
	if _, err := s.ClaimOutbox(ctx, "me", 0, time.Minute, 5); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("deposed claim: %v", err)
	}
	held.Store(2) // an older epoch than the documents'
	if err := s.PutAccount(ctx, acc); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("older epoch account write: %v", err)
	}
	if err := s.CompleteOutbox(ctx, "r1", "me", "3EB0"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("older epoch result: %v", err)
	}
	if got, _ := s.GetAccount(ctx, acc.ID); got.Status != "connected" {
		t.Fatalf("account after refused writes: %+v", got)
	}
}
