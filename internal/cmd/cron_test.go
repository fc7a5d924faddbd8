package cmd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/audit/audittest"
)

// TestCronQuiet runs the crontab lines of docs/operations.md as cron does:
// a child process, no terminal, stdout and stderr to pipes. Clean: no
// output at all and exit 0 (cron sends no mail). Something found: the
// report and exit 3.
func TestCronQuiet(t *testing.T) {
	ctx := context.Background()
	clean, dups := t.TempDir(), t.TempDir()
	if err := audittest.CreateSQLite(ctx, filepath.Join(clean, "wactl.db")); err != nil {
		t.Fatal(err)
	}
	if err := audittest.WriteSQLite(ctx, filepath.Join(dups, "wactl.db"), audittest.Many(time.Now(), 5)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     string // in stdout when something is found
	}{
		{"audit clean", []string{"WACTL_DATA_DIR=" + clean}, []string{"audit", "duplicates", "--quiet"}, 0, ""},
		{"audit clean -q", []string{"WACTL_DATA_DIR=" + clean}, []string{"audit", "duplicates", "-q"}, 0, ""},
		{"audit duplicates", []string{"WACTL_DATA_DIR=" + dups}, []string{"audit", "duplicates", "--quiet"}, 3, "5 duplicates in 10 documents"},
		{"audit duplicates json", []string{"WACTL_DATA_DIR=" + dups}, []string{"audit", "duplicates", "-q", "--json"}, 3, `"duplicatesCount": 5`},
		{"doctor clean", []string{"WACTL_DATA_DIR=" + clean}, []string{"doctor", "--quiet", "--offline", "--only", "config.load,config.instance_id"}, 0, ""},
		{"doctor problem", []string{"WACTL_DATA_DIR=" + clean, "WACTL_SESSIONS_PATH=" + filepath.Join(clean, "missing")},
			[]string{"doctor", "-q", "--offline", "--only", "sessions.dir"}, 3, "✗ sessions.dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// cron's environment: a short PATH, no TERM, no terminal.
			stdout, stderr, code := wactl(t, append([]string{"PATH=/usr/bin:/bin", "INSTANCE_ID=cron-test"}, tc.env...), tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout, stderr)
			}
			if tc.want == "" {
				if stdout != "" || stderr != "" {
					t.Fatalf("cron would mail this:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
				}
				return
			}
			if !strings.Contains(stdout, tc.want) {
				t.Fatalf("report without %q:\nstdout:\n%s\nstderr:\n%s", tc.want, stdout, stderr)
			}
		})
	}
}
