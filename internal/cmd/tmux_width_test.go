package cmd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/iostreams/tablecheck"
	"github.com/wactl/wactl/pkg/audit/audittest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestTablesFitRealTerminal80x24 runs `audit duplicates` and `accounts
// list` in a real 80x24 terminal (tmux, colour on) and reads the screen
// with its escapes, wrapped lines joined: no line is wider than 80 display
// columns and the columns line up.
func TestTablesFitRealTerminal80x24(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing: install the tmux package")
		}
		t.Skip("SKIPPED LOUDLY: tmux not installed")
	}
	ctx := context.Background()
	data := t.TempDir()
	if err := audittest.WriteSQLite(ctx, filepath.Join(data, "wactl.db"), audittest.Many(time.Now(), 5)); err != nil {
		t.Fatal(err)
	}
	sess, err := sessions.Open(filepath.Join(data, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"account_prod_0123456789abcdef0123456789abcdef", "account_prod_fedcba9876543210fedcba9876543210"} {
		if _, err := sess.Create(sessions.NewAccount{ID: id, Name: fmt.Sprintf("Magazin Central Bucuresti — vanzari %d", i), Phone: fmt.Sprintf("+4075500000%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args   []string
		header string
		skip   []string
	}{
		{[]string{"audit", "duplicates", "--top", "5"}, "SIZE", []string{"thread ", "    "}},
		{[]string{"accounts", "list"}, "ACCOUNT", nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "tmux.sock")
			done := filepath.Join(t.TempDir(), "done")
			line := fmt.Sprintf("env -i PATH=/usr/bin:/bin TERM=xterm-256color WACTL_TEST_MAIN=1 WACTL_DATA_DIR=%s INSTANCE_ID=t %s %s; touch %s; sleep 60",
				data, os.Args[0], strings.Join(tc.args, " "), done)
			c := exec.Command("tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "w", "-x", "80", "-y", "24", line)
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("tmux: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
			deadline := time.Now().Add(15 * time.Second)
			for {
				if _, err := os.Stat(done); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the command did not finish")
				}
				time.Sleep(50 * time.Millisecond)
			}
			out, err := exec.Command("tmux", "-S", sock, "capture-pane", "-p", "-e", "-J", "-t", "w").Output()
			if err != nil {
				t.Fatal(err)
			}
			screen := strings.TrimRight(string(out), "\n ")
			if !strings.Contains(screen, "\x1b[") {
				t.Errorf("no colour on the terminal")
			}
			for _, p := range tablecheck.Problems(screen, 80, tc.header, tc.skip...) {
				t.Error(p)
			}
			if t.Failed() {
				t.Logf("screen:\n%s", screen)
			}
		})
	}
}
