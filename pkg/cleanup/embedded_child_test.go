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

	killChildAfter(t, "committed 500/700", childDB+"="+path)

	mid := sqlSnapshot(t, path)
	if n := mid.countMarked(); n != 500 {
		t.Fatalf("after the kill %d messages are marked, want the first batch (500)", n)
	}
	if mid.threads[audittest.ThreadA] == want.threads[audittest.ThreadA] {
		t.Fatal("thread recomputed before the kill: the test no longer covers the resume of thread summaries")
	}
	r2, err := Run(ctx, openEmbedded(t, path), Options{Selection: manySel(), Apply: true})
	if err != nil || r2.Marked != 200 || r2.DuplicatesAlreadyMarked != 500 || r2.ThreadsUpdated != 1 {
		t.Fatalf("rerun: %+v %v", r2, err)
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
}
