package cleanup

import (
	"context"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

func TestFirestoreSeedCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	if err := audittest.WriteFirestore(ctx, c, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c)
	b := audit.NewFirestore(c)
	opts := Options{Selection: seedSel(), Now: func() time.Time { return now }}

	dry, err := Run(ctx, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if dry.ScannedMessages != 500 || dry.GroupsWithDuplicates != 96 || dry.DuplicatesToMark != 112 || dry.DuplicatesAlreadyMarked != 0 || !dry.DryRun {
		t.Fatalf("dry run: %+v", dry)
	}
	if len(dry.SampleGroups) != 10 || dry.SampleGroups[0].Canonical == "" || len(dry.SampleGroups[0].ToMark) == 0 {
		t.Fatalf("dry run groups: %+v", dry.SampleGroups)
	}
	equalState(t, "after dry run", before, snapshot(t, c))

	opts.Apply = true
	app, err := Run(ctx, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if app.Marked != 112 || app.DuplicatesToMark != dry.DuplicatesToMark || app.GroupsWithDuplicates != dry.GroupsWithDuplicates || app.RunID == "" {
		t.Fatalf("apply: %+v", app)
	}
	after := snapshot(t, c)
	if after.countMarked() != 112 {
		t.Fatalf("%d documents marked, want 112", after.countMarked())
	}
	for p, m := range after.msgs {
		if m["isDuplicate"] == true {
			if m["cleanupRunId"] != app.RunID || m["duplicateOf"] == "" || m["duplicateMarkedAt"] == nil {
				t.Fatalf("%s marked without its fields: %v", p, m)
			}
			// The canonical copy is the original (ingested first).
			if len(p) < 64 {
				t.Fatalf("the original %s was marked instead of its copy", p)
			}
		}
	}

	// The seed's surprise, explained by the flag.
	ex, err := audit.Run(ctx, b, audit.Options{Selection: seedSel(), ExcludeMarked: true})
	if err != nil || ex.DuplicatesCount != 0 || ex.TotalDocs != 388 || ex.MarkedDocs != 112 {
		t.Fatalf("audit --exclude-marked: %+v %v", ex, err)
	}
	all, err := audit.Run(ctx, b, audit.Options{Selection: seedSel()})
	if err != nil || all.DuplicatesCount != 112 || all.TotalDocs != 500 || all.MarkedDocs != 112 || all.ActiveDocs != 388 {
		t.Fatalf("audit: %+v %v", all, err)
	}

	again, err := Run(ctx, b, opts)
	if err != nil || again.Marked != 0 || again.DuplicatesAlreadyMarked != 112 || again.DuplicatesToMark != 0 {
		t.Fatalf("second apply: %+v %v", again, err)
	}

	u, err := Undo(ctx, b, app.RunID)
	if err != nil || u.Unmarked != 112 || u.Skipped != 0 {
		t.Fatalf("undo: %+v %v", u, err)
	}
	equalState(t, "after undo", before, snapshot(t, c))
	if _, err := Undo(ctx, b, "cr-nonexistent"); err == nil {
		t.Fatal("undo of an unknown run succeeded")
	}
}
