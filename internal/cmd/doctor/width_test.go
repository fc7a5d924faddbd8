package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/wactl/wactl/internal/cmd/doctor"
	"github.com/wactl/wactl/internal/iostreams"
)

// On an 80-column colour terminal doctor's lines fit (fix commands stay
// whole: they are copied), a passing or skipped check is one line, and
// -v adds the evidence of the passing ones.
func TestDoctorFits80Columns(t *testing.T) {
	root := t.TempDir()
	env := loadEnv(t, map[string]string{"STATE_DIRECTORY": root, "INSTANCE_ID": "host-a",
		"SESSIONS_PATH": filepath.Join(root, "a-rather-long-directory-name-for-the-sessions", "of-this-host", "sessions")})
	unit, _ := os.ReadFile("../../../configs/wactl.service")
	os.MkdirAll(env.SystemdDir, 0o755)
	os.WriteFile(filepath.Join(env.SystemdDir, "wactl.service"), []byte(strings.ReplaceAll(string(unit), "Environment=INSTANCE_ID=wactl-%H\n", "")), 0o644)
	run := func(verbose bool) []string {
		ios, _, out, _ := iostreams.Test()
		ios.SetTTY(false, true, true)
		ios.SetTerminalSize(80, 24)
		doctor.Run(context.Background(), &doctor.Options{IO: ios, Offline: true, Verbose: verbose, Env: env.Fresh()})
		if !strings.Contains(out.String(), "\x1b[") {
			t.Fatalf("no colour: %q", out)
		}
		return strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	}
	lines := run(false)
	fixes := false
	passing := 0
	for i, l := range lines {
		plain := ansi.Strip(l)
		if strings.HasPrefix(plain, "Fix steps") {
			fixes = true
		}
		command := fixes && strings.HasPrefix(plain, "   ") && !strings.HasPrefix(plain, "   #")
		if w := ansi.StringWidth(l); w > 80 && !command {
			t.Errorf("line of %d columns: %q", w, plain)
		}
		if (strings.HasPrefix(plain, "✓ ") || strings.HasPrefix(plain, "- ")) && i+1 < len(lines) {
			passing++
			if next := ansi.Strip(lines[i+1]); strings.HasPrefix(next, " ") {
				t.Errorf("passing check takes more than one line: %q, %q", plain, next)
			}
		}
	}
	if passing == 0 {
		t.Fatal("no passing check in the report")
	}
	if verbose := run(true); len(verbose) <= len(lines) {
		t.Errorf("-v shows no more (%d lines, %d without)", len(verbose), len(lines))
	}
	t.Logf("%d lines at 80 columns:\n%s", len(lines), ansi.Strip(strings.Join(lines, "\n")))
}
