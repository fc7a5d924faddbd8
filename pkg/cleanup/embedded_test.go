package cleanup

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

type sqlState struct {
	msgs    map[string][2]any
	threads map[string][2]any
}

func sqlSnapshot(t *testing.T, path string) sqlState {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := sqlState{msgs: map[string][2]any{}, threads: map[string][2]any{}}
	rows, err := db.Query(`SELECT thread_id, doc_id, is_duplicate, duplicate_of FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var th, id, of string
		var dup int
		if err := rows.Scan(&th, &id, &dup, &of); err != nil {
			t.Fatal(err)
		}
		s.msgs[th+"/"+id] = [2]any{dup, of}
	}
	rows.Close()
	rows, err = db.Query(`SELECT id, last_message_at_ms, last_message_text FROM threads`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, text string
		var ms int64
		if err := rows.Scan(&id, &ms, &text); err != nil {
			t.Fatal(err)
		}
		s.threads[id] = [2]any{ms, text}
	}
	rows.Close()
	return s
}

func (s sqlState) countMarked() int {
	n := 0
	for _, v := range s.msgs {
		if v[0] == 1 {
			n++
		}
	}
	return n
}

func openEmbedded(t *testing.T, path string) *audit.Embedded {
	t.Helper()
	e, err := audit.OpenEmbedded(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEmbeddedSeedCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(ctx, path, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	before := sqlSnapshot(t, path)
	b := openEmbedded(t, path)
	for _, key := range []audit.KeyStrategy{audit.KeyAuto, audit.KeyLegacy} {
		sel := seedSel()
		sel.Key = key
		r, err := audit.Run(ctx, b, audit.Options{Selection: sel})
		if err != nil || r.TotalDocs != 500 || r.UniqueFingerprints != 388 || r.DuplicatesCount != 112 || len(r.Groups) != 10 {
			t.Fatalf("audit %s: %+v %v", key, r, err)
		}
	}
	opts := Options{Selection: seedSel()}
	dry, err := Run(ctx, b, opts)
	if err != nil || dry.ScannedMessages != 500 || dry.GroupsWithDuplicates != 96 || dry.DuplicatesToMark != 112 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	opts.Apply = true
	app, err := Run(ctx, b, opts)
	if err != nil || app.Marked != 112 || app.DuplicatesToMark != 112 {
		t.Fatalf("apply: %+v %v", app, err)
	}
	if n := sqlSnapshot(t, path).countMarked(); n != 112 {
		t.Fatalf("%d marked", n)
	}
	ex, err := audit.Run(ctx, b, audit.Options{Selection: seedSel(), ExcludeMarked: true})
	if err != nil || ex.DuplicatesCount != 0 || ex.TotalDocs != 388 {
		t.Fatalf("exclude-marked: %+v %v", ex, err)
	}
	all, err := audit.Run(ctx, b, audit.Options{Selection: seedSel()})
	if err != nil || all.DuplicatesCount != 112 || all.MarkedDocs != 112 {
		t.Fatalf("audit: %+v %v", all, err)
	}
	again, err := Run(ctx, b, opts)
	if err != nil || again.Marked != 0 || again.DuplicatesAlreadyMarked != 112 {
		t.Fatalf("second apply: %+v %v", again, err)
	}
	u, err := Undo(ctx, b, app.RunID)
	if err != nil || u.Unmarked != 112 {
		t.Fatalf("undo: %+v %v", u, err)
	}
	if after := sqlSnapshot(t, path); !reflect.DeepEqual(before, after) {
		t.Fatal("undo did not restore the original state")
	}
}

func TestEmbeddedThreadRecompute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	data := audittest.Many(now, 20)
	if err := audittest.WriteSQLite(ctx, path, data); err != nil {
		t.Fatal(err)
	}
	before := sqlSnapshot(t, path)
	b := openEmbedded(t, path)
	res, err := Run(ctx, b, Options{Selection: manySel(), Apply: true})
	if err != nil || res.Marked != 20 || res.ThreadsUpdated != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	orig := data[0].Fields["tsClientMs"].(int64)
	if got := sqlSnapshot(t, path).threads[audittest.ThreadA][0]; got != orig {
		t.Fatalf("thread at %v, want the original's %d", got, orig)
	}
	if _, err := Undo(ctx, b, res.RunID); err != nil {
		t.Fatal(err)
	}
	if after := sqlSnapshot(t, path); !reflect.DeepEqual(before, after) {
		t.Fatalf("undo: %v vs %v", before.threads, after.threads)
	}
}

func TestEmbeddedAllKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(ctx, path, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	b := openEmbedded(t, path)
	for _, key := range []audit.KeyStrategy{audit.KeyAuto, audit.KeyStable, audit.KeyFingerprint, audit.KeyLegacy} {
		for _, s := range []audit.Selection{seedSel(), {Window: seedSel().Window, Limit: 10, Now: now}, {Window: seedSel().Window, Limit: 500, ThreadID: audittest.ThreadB, Now: now}} {
			s.Key = key
			r, err := audit.Run(ctx, b, audit.Options{Selection: s})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case s.Limit == 10 && r.TotalDocs != 10,
				s.ThreadID != "" && r.UniqueFingerprints != 130,
				s.Limit == 500 && s.ThreadID == "" && (r.TotalDocs != 500 || r.DuplicatesCount != 112):
				t.Fatalf("key %s selection %+v: %+v", key, s, r)
			}
			for _, g := range r.Groups {
				if len(g.ThreadID) < 20 || len(g.SampleDocIDs) == 0 {
					t.Fatalf("group without real ids: %+v", g)
				}
			}
		}
	}
}
