package doctor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/histq"
)

// TestHistoryQueueCheck: doctor names every lost history sync (reason,
// attempts, whether the phone was asked again) and counts queued ones.
func TestHistoryQueueCheck(t *testing.T) {
	env := testEnv(t, nil)
	ctx := context.Background()
	if r := checkHistoryQueue(ctx, env); r.Status != OK {
		t.Fatalf("no queue: %+v", r)
	}
	q, err := histq.Open(filepath.Join(env.Config.DataDir, histq.FileName), histq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, id := range []string{"N1", "N2"} {
		if _, err := q.Put(ctx, "account_x", id, []byte("notification")); err != nil {
			t.Fatal(err)
		}
	}
	if r := checkHistoryQueue(ctx, env); r.Status != OK || !strings.Contains(r.Summary, "2 queued") {
		t.Fatalf("two queued: %+v", r)
	}
	due, _ := q.Due(ctx, time.Now(), 10)
	due[0].Attempts = 8
	if _, err := q.Lose(ctx, due[0], histq.ReasonMediaGone, "404"); err != nil {
		t.Fatal(err)
	}
	r := checkHistoryQueue(ctx, env)
	if r.Status != Warn || !strings.Contains(r.Summary, "1 history syncs could not be recorded") || len(r.Notes) != 1 ||
		!strings.Contains(r.Notes[0], "N1: history_media_unavailable after 8 attempts") || len(r.Fixes) != 1 {
		t.Fatalf("one loss: %+v", r)
	}
}
