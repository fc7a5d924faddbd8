package pair_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTmuxCleanupWaitsForTheCommand: a wactl child tidies its session files
// when interrupted, so a terminal's cleanup must not return (and let
// t.TempDir's removal start) before the command in it has ended. Here the
// command takes a second to tidy up after Ctrl-C; the marker it writes last
// must exist once the subtest's cleanups have run.
func TestTmuxCleanupWaitsForTheCommand(t *testing.T) {
	needTmux(t)
	marker := filepath.Join(t.TempDir(), "tidied")
	t.Run("session", func(t *testing.T) {
		script := `trap "sleep 1; touch '` + marker + `'; exit 130" INT; echo READY; while :; do sleep 0.1; done`
		s := startTmuxLine(t, 80, 24, "sh -c '"+strings.ReplaceAll(script, "'", `'\''`)+"'")
		s.waitFor("the command to start", 10*time.Second, func(scr string) bool { return strings.Contains(scr, "READY") })
	})
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the terminal's cleanup returned before its command had ended: %v", err)
	}
}
