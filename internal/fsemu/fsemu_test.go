package fsemu_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
)

func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }

// TestRoundTrip proves the emulator is real: a document written through the
// Go client is read back, and projects are isolated from each other.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, project := fsemu.NewClient(t)
	ref := c.Collection("threads").Doc("a__b")
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := ref.Set(ctx, map[string]any{"lastMessageAt": now, "n": 3}); err != nil {
		t.Fatalf("set: %v", err)
	}
	snap, err := ref.Get(ctx)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got := snap.Data()["n"]; got != int64(3) {
		t.Fatalf("n = %v (%T), want 3", got, got)
	}
	if got := snap.Data()["lastMessageAt"].(time.Time); !got.Equal(now) {
		t.Fatalf("lastMessageAt = %v, want %v", got, now)
	}
	other, _ := fsemu.NewClient(t)
	if _, err := other.Collection("threads").Doc("a__b").Get(ctx); err == nil {
		t.Fatalf("project isolation broken: %s's document visible elsewhere", project)
	}
	if err := fsemu.Reset(fsemu.Host(t), project); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if _, err := ref.Get(ctx); err == nil {
		t.Fatal("document survived Reset")
	}
}

// TestPrivateFreeze shows a private emulator can be paused and resumed: a
// call made while frozen times out, and succeeds after Thaw.
func TestPrivateFreeze(t *testing.T) {
	e := fsemu.Start(t)
	c, _ := e.NewClient(t)
	ctx := context.Background()
	doc := c.Collection("x").Doc("y")
	if _, err := doc.Set(ctx, map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Freeze(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := doc.Get(short)
	cancel()
	if err == nil {
		t.Fatal("read succeeded against a frozen emulator")
	}
	if err := e.Thaw(); err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Get(ctx); err != nil {
		t.Fatalf("after thaw: %v", err)
	}
}
