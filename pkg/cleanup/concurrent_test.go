package cleanup

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// The daemon keeps recording while a cleanup runs: between the plan and the
// writes, new messages arrive in thread A (one a redelivered copy of a
// message the plan groups) with the thread summary moved to the newest, and
// thread B's summary is moved past every message the run can see.
func TestFirestoreConcurrentRecording(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	seed := audittest.Seed(now)
	if err := audittest.WriteFirestore(ctx, c, seed); err != nil {
		t.Fatal(err)
	}
	live := []string{}
	var newest time.Time
	bMs := now.Add(time.Hour).UnixMilli()
	record := func() {
		b := c.Batch()
		for i := 0; i < 5; i++ {
			ts := now.Add(time.Duration(i+1) * time.Second)
			f := map[string]any{"accountId": audittest.Account, "direction": "inbound", "body": "live", "messageType": "text",
				"tsClient": ts, "tsClientMs": ts.UnixMilli(), "ingestedAt": ts, "stableKeyHash": "live000" + string(rune('0'+i))}
			if i == 0 {
				// A redelivery of the newest seeded message, under a new id.
				for k, v := range seed[0].Fields {
					f[k] = v
				}
			}
			id := "live-" + string(rune('a'+i))
			live = append(live, id)
			b.Set(c.Collection("threads").Doc(audittest.ThreadA).Collection("messages").Doc(id), f)
			newest = ts
		}
		b.Set(c.Collection("threads").Doc(audittest.ThreadA), map[string]any{
			"lastMessageAt": newest, "lastMessageAtMs": newest.UnixMilli(), "lastMessageText": "live"}, firestore.MergeAll)
		b.Set(c.Collection("threads").Doc(audittest.ThreadB), map[string]any{
			"lastMessageAtMs": bMs, "lastMessageText": "in flight"}, firestore.MergeAll)
		if _, err := b.Commit(ctx); err != nil {
			t.Error(err)
		}
	}
	before := snapshot(t, c)
	res, err := Run(ctx, audit.NewFirestore(c), Options{Selection: seedSel(), Apply: true, afterPlan: record})
	if err != nil {
		t.Fatal(err)
	}
	if res.Marked != 112 || res.ThreadsUpdated != 0 || len(res.ThreadsKept) != 1 {
		t.Fatalf("apply: %+v", res)
	}
	after := snapshot(t, c)
	if len(after.msgs) != len(before.msgs)+5 {
		t.Fatalf("%d messages, want %d", len(after.msgs), len(before.msgs)+5)
	}
	for _, id := range live {
		if m := after.msgs[audittest.ThreadA+"/"+id]; m == nil || m["isDuplicate"] != nil {
			t.Fatalf("live message %s: %v", id, m)
		}
	}
	if got := after.threads[audittest.ThreadA]["lastMessageAtMs"]; got != newest.UnixMilli() {
		t.Fatalf("thread A summary at %v, want the newest live message %d", got, newest.UnixMilli())
	}
	if got := after.threads[audittest.ThreadB]["lastMessageAtMs"]; got != bMs {
		t.Fatalf("thread B summary moved back to %v", got)
	}
}
