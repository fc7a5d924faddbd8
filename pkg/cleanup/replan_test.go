package cleanup

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// racedGroups picks two groups of two from a dry run: in the first the
// daemon will mark the planned duplicate itself (the echo of an app send,
// as the store does on a raced echo), in the second it marks the planned
// canonical copy instead.
func racedGroups(t *testing.T, ctx context.Context, b audit.Backend) (same, flipped SampleGroup) {
	t.Helper()
	dry, err := Run(ctx, b, Options{Selection: seedSel(), SampleGroups: 200, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var pairs []SampleGroup
	for _, g := range dry.SampleGroups {
		if g.Size == 2 && len(g.ToMark) == 1 {
			pairs = append(pairs, g)
		}
	}
	if len(pairs) < 2 {
		t.Fatalf("the seed has %d groups of two", len(pairs))
	}
	return pairs[0], pairs[1]
}

// A daemon-like writer marks documents between the plan and the commit.
// Cleanup must not overwrite those marks (an undo would then unmark a copy
// the daemon marked: two live documents for one send), nor mark the last
// live copy of a group whose canonical copy the daemon marked (none left).
func TestFirestoreMarksAfterPlanAreKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	if err := audittest.WriteFirestore(ctx, c, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	b := audit.NewFirestore(c)
	same, flipped := racedGroups(t, ctx, b)
	msg := func(g SampleGroup, id string) *firestore.DocumentRef {
		return c.Collection("threads").Doc(g.ThreadID).Collection("messages").Doc(id)
	}
	daemon := func() {
		for _, w := range []struct {
			ref *firestore.DocumentRef
			of  string
		}{{msg(same, same.ToMark[0]), same.Canonical}, {msg(flipped, flipped.Canonical), flipped.ToMark[0]}} {
			if _, err := w.ref.Update(ctx, []firestore.Update{
				{Path: "isDuplicate", Value: true}, {Path: "duplicateOf", Value: w.of},
				{Path: "duplicateMarkedAt", Value: firestore.ServerTimestamp}, {Path: "updatedAt", Value: firestore.ServerTimestamp},
			}); err != nil {
				t.Error(err)
			}
		}
	}
	res, err := Run(ctx, b, Options{Selection: seedSel(), Apply: true, afterPlan: daemon, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replanned != 2 || res.Marked != 110 {
		t.Fatalf("apply: marked %d, replanned %d; want 110 and 2 (%+v)", res.Marked, res.Replanned, res)
	}
	check := func(when string) {
		t.Helper()
		s := snapshot(t, c)
		d := s.msgs[same.ThreadID+"/"+same.ToMark[0]]
		if d["isDuplicate"] != true || d["duplicateOf"] != same.Canonical || d["cleanupRunId"] != nil {
			t.Fatalf("%s: the daemon's mark was overwritten: %v", when, d)
		}
		if s.msgs[same.ThreadID+"/"+same.Canonical]["isDuplicate"] != nil {
			t.Fatalf("%s: the canonical copy of the first group is marked", when)
		}
		cm, dm := s.msgs[flipped.ThreadID+"/"+flipped.Canonical], s.msgs[flipped.ThreadID+"/"+flipped.ToMark[0]]
		if cm["isDuplicate"] != true || cm["cleanupRunId"] != nil || dm["isDuplicate"] != nil {
			t.Fatalf("%s: the second group must keep exactly its one live copy: %v / %v", when, cm, dm)
		}
	}
	check("after apply")
	if u, err := Undo(ctx, b, res.RunID); err != nil || u.Unmarked != 110 {
		t.Fatalf("undo: %+v, %v", u, err)
	}
	check("after undo")
}

func TestEmbeddedMarksAfterPlanAreKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(ctx, path, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	b := openEmbedded(t, path)
	same, flipped := racedGroups(t, ctx, b)
	daemon := func() {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		for _, w := range [][3]string{{same.ThreadID, same.ToMark[0], same.Canonical}, {flipped.ThreadID, flipped.Canonical, flipped.ToMark[0]}} {
			if _, err := db.Exec(`UPDATE messages SET is_duplicate = 1, duplicate_of = ? WHERE thread_id = ? AND doc_id = ?`, w[2], w[0], w[1]); err != nil {
				t.Error(err)
			}
		}
	}
	res, err := Run(ctx, b, Options{Selection: seedSel(), Apply: true, afterPlan: daemon, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replanned != 2 || res.Marked != 110 {
		t.Fatalf("apply: marked %d, replanned %d; want 110 and 2", res.Marked, res.Replanned)
	}
	check := func(when string) {
		t.Helper()
		s := sqlSnapshot(t, path)
		if d := s.msgs[same.ThreadID+"/"+same.ToMark[0]]; d[0] != 1 || d[1] != same.Canonical {
			t.Fatalf("%s: the daemon's mark was lost: %v", when, d)
		}
		if cm, dm := s.msgs[flipped.ThreadID+"/"+flipped.Canonical], s.msgs[flipped.ThreadID+"/"+flipped.ToMark[0]]; cm[0] != 1 || dm[0] != 0 {
			t.Fatalf("%s: the second group must keep exactly its one live copy: %v / %v", when, cm, dm)
		}
	}
	check("after apply")
	if u, err := Undo(ctx, b, res.RunID); err != nil || u.Unmarked != 110 {
		t.Fatalf("undo: %+v, %v", u, err)
	}
	check("after undo")
}
