package histq_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/histq"
)

func open(t *testing.T, path string, now func() time.Time) *histq.Queue {
	t.Helper()
	q, err := histq.Open(path, histq.Options{Now: now, MaxParked: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestQueueSurvivesReopen: a put notification, its cursor and retry state
// are there after the file is reopened; a redelivered notification is not
// queued twice; Done removes it; Lose moves it to losses in one step.
func TestQueueSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q", histq.FileName)
	clock := time.UnixMilli(1_700_000_000_000)
	now := func() time.Time { return clock }
	q := open(t, path, now)
	if created, err := q.Put(ctx, "acct", "M1", []byte("n1")); err != nil || !created {
		t.Fatalf("put: %v %v", created, err)
	}
	if created, err := q.Put(ctx, "acct", "M1", []byte("n1")); err != nil || created {
		t.Fatalf("second put: created %v err %v, want false nil", created, err)
	}
	if _, err := q.Put(ctx, "acct", "M2", []byte("n2")); err != nil {
		t.Fatal(err)
	}
	due, err := q.Due(ctx, clock, 10)
	if err != nil || len(due) != 2 || due[0].MessageID != "M1" {
		t.Fatalf("due %+v %v", due, err)
	}
	if err := q.Advance(ctx, due[0].ID, 3, 7, 120); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, due[1].ID, "download: 503", clock.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	q.Close()

	q = open(t, path, now)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("queue file mode %v %v, want 0600", fi.Mode(), err)
	}
	due, err = q.Due(ctx, clock, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due after reopen %+v %v", due, err)
	}
	if e := due[0]; e.Conv != 3 || e.Msg != 7 || e.Recorded != 120 || string(e.Notification) != "n1" {
		t.Fatalf("cursor not persisted: %+v", e)
	}
	due, _ = q.Due(ctx, clock.Add(time.Minute), 10)
	if len(due) != 2 || due[1].Attempts != 1 || due[1].LastError != "download: 503" {
		t.Fatalf("retry not persisted: %+v", due)
	}
	if err := q.Done(ctx, due[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Lose(ctx, due[1], histq.ReasonMediaGone, "404"); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Pending != 0 || st.Lost != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	losses, _ := q.Losses(ctx)
	if len(losses) != 1 || losses[0].MessageID != "M2" || losses[0].Reason != histq.ReasonMediaGone {
		t.Fatalf("losses %+v", losses)
	}
}

// TestParkedBounded: parked edits are found by target after a reopen, and
// past the bound the oldest is dropped and counted.
func TestParkedBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), histq.FileName)
	q := open(t, path, nil)
	for _, tg := range []string{"T1", "T2"} {
		if dropped, err := q.Park(ctx, histq.Parked{AccountID: "a", TargetID: tg, Kind: "edit", Payload: []byte(tg)}); err != nil || dropped {
			t.Fatalf("park %s: %v %v", tg, dropped, err)
		}
	}
	q.Close()
	q = open(t, path, nil)
	if !q.Waiting("a", "T1") || q.Waiting("a", "T3") || q.Waiting("b", "T1") {
		t.Fatal("parked index wrong after reopen")
	}
	dropped, err := q.Park(ctx, histq.Parked{AccountID: "a", TargetID: "T3", Kind: "revoke", Payload: []byte("x")})
	if err != nil || !dropped {
		t.Fatalf("third park: dropped %v err %v, want the oldest dropped", dropped, err)
	}
	if q.Waiting("a", "T1") || !q.Waiting("a", "T3") {
		t.Fatal("bound dropped the wrong entry")
	}
	st, _ := q.Stats(ctx)
	if st.Parked != 2 || st.ParkedDropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	ps, err := q.Parked(ctx, "a", "T2")
	if err != nil || len(ps) != 1 || string(ps[0].Payload) != "T2" {
		t.Fatalf("parked %+v %v", ps, err)
	}
	if err := q.Unpark(ctx, ps[0]); err != nil || q.Waiting("a", "T2") {
		t.Fatalf("unpark: %v", err)
	}
}
