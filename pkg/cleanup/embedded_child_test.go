package cleanup

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wactl/wactl/pkg/audit/audittest"
)

// The embedded store commits 500 marks per transaction; 700 duplicates make
// a first batch that the kill leaves committed and a second that it loses.
func TestEmbeddedKilledApplyResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := audittest.Many(now, 700)
	refPath := filepath.Join(t.TempDir(), "ref.db")
	path := filepath.Join(t.TempDir(), "wactl.db")
	for _, p := range []string{refPath, path} {
		if err := audittest.WriteSQLite(ctx, p, data); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Run(ctx, openEmbedded(t, refPath), Options{Selection: manySel(), Apply: true})
	if err != nil || r.Marked != 700 || r.ThreadsUpdated != 1 {
		t.Fatalf("reference run: %+v %v", r, err)
	}
	want := sqlSnapshot(t, refPath)
	before := sqlSnapshot(t, path)

	killChildAfter(t, "committed 500/700", childDB+"="+path)

	mid := sqlSnapshot(t, path)
	if n := mid.countMarked(); n != 500 {
		t.Fatalf("after the kill %d messages are marked, want the first batch (500)", n)
	}
	if mid.threads[audittest.ThreadA] == want.threads[audittest.ThreadA] {
		t.Fatal("thread recomputed before the kill: the test no longer covers the resume of thread summaries")
	}
	b := openEmbedded(t, path)
	runs, err := Runs(ctx, b)
	if err != nil || len(runs) != 1 || runs[0].Status != "interrupted" || runs[0].Marks != 500 {
		t.Fatalf("runs after the kill: %+v, %v", runs, err)
	}
	killed := runs[0].ID
	r2, err := Run(ctx, b, Options{Selection: manySel(), Apply: true})
	if err != nil || r2.Marked != 200 || r2.DuplicatesAlreadyMarked != 500 || r2.ThreadsUpdated != 1 {
		t.Fatalf("rerun: %+v %v", r2, err)
	}
	if len(r2.InterruptedRuns) != 1 || r2.InterruptedRuns[0] != killed {
		t.Fatalf("rerun names interrupted runs %v, want [%s]", r2.InterruptedRuns, killed)
	}
	got := sqlSnapshot(t, path)
	if len(got.msgs) != len(want.msgs) {
		t.Fatalf("%d messages after kill and rerun, %d after one run", len(got.msgs), len(want.msgs))
	}
	for p, v := range want.msgs {
		if got.msgs[p] != v {
			t.Fatalf("%s: %v after kill and rerun, %v after one run", p, got.msgs[p], v)
		}
	}
	if !reflect.DeepEqual(got.threads, want.threads) {
		t.Fatalf("threads after kill and rerun %v, after one run %v", got.threads, want.threads)
	}
	if u, err := Undo(ctx, b, r2.RunID); err != nil || u.Unmarked != 200 {
		t.Fatalf("undo of the rerun: %+v, %v", u, err)
	}
	if n := sqlSnapshot(t, path).countMarked(); n != 500 {
		t.Fatalf("%d marked after undoing the rerun, want the killed run's 500", n)
	}
	if u, err := Undo(ctx, b, killed); err != nil || u.Unmarked != 500 || u.Skipped != 0 {
		t.Fatalf("undo of the interrupted run: %+v, %v", u, err)
	}
	after := sqlSnapshot(t, path)
	if !reflect.DeepEqual(after.msgs, before.msgs) || !reflect.DeepEqual(after.threads, before.threads) {
		t.Fatal("undoing both runs did not restore the database exactly")
	}
}
