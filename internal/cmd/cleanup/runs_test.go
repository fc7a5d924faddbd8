package cleanup

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// `wactl cleanup runs` lists every run; one whose process is gone is
// interrupted and the listing names the undo command. The apply after it
// names it too.
func TestCleanupRunsListsInterrupted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(ctx, path, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	ios, _, out, _ := iostreams.Test()
	if err := RunRuns(ctx, &RunsOptions{IO: ios, Open: opener(path)}); err != nil || !strings.Contains(out.String(), `"count": 0`) {
		t.Fatalf("runs before any: %v %s", err, out)
	}
	ios, _, _, _ = iostreams.Test()
	if err := Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Apply: true, Yes: true, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	// A run killed on this host: its process no longer exists.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if _, err := db.Exec(`INSERT INTO cleanup_runs (run_id, status, started_ms, selection, host, pid, heartbeat_ms) VALUES ('cr-killed', 'running', 1, '{}', ?, 2147483646, 1)`, host); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO cleanup_marks SELECT 'cr-killed', thread_id, doc_id, duplicate_of, marked_at_ms, prev_is_duplicate, prev_duplicate_of FROM cleanup_marks LIMIT 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ios, _, out, _ = iostreams.Test()
	ios.SetTTY(false, true, false)
	if err := RunRuns(ctx, &RunsOptions{IO: ios, Open: opener(path)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cr-killed") || !strings.Contains(out.String(), "interrupted") ||
		!strings.Contains(out.String(), "wactl cleanup --undo cr-killed") {
		t.Fatalf("runs table:\n%s", out)
	}
	ios, _, out, _ = iostreams.Test()
	if err := RunRuns(ctx, &RunsOptions{IO: ios, Open: opener(path)}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Runs []struct {
			ID     string `json:"runId"`
			Status string `json:"status"`
			Marks  int    `json:"marks"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Runs) != 2 || got.Runs[1].ID != "cr-killed" ||
		got.Runs[1].Status != "interrupted" || got.Runs[1].Marks != 3 || got.Runs[0].Status != "done" || got.Runs[0].Marks != 112 {
		t.Fatalf("runs JSON %s: %v", out, err)
	}

	ios, _, out, _ = iostreams.Test()
	ios.SetTTY(false, true, false)
	if err := Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Apply: true, Yes: true, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "interrupted run cr-killed keeps its own marks: undo it with: wactl cleanup --undo cr-killed") {
		t.Fatalf("apply after an interrupted run:\n%s", out)
	}
}
