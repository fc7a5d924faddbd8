package accounts_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/cmd/accounts"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
)

// TestListCreatesNothingAndSaysWhereItLooked: with no data dir configured,
// `accounts list` in an empty working directory created ./wactl-data and
// printed nothing useful (issue 17). It must create nothing, fail, name the
// directory it looked in and why, and name the running service's data dir.
func TestListCreatesNothingAndSaysWhereItLooked(t *testing.T) {
	wd, run := t.TempDir(), t.TempDir()
	service := filepath.Join(t.TempDir(), "var-lib-wactl")
	os.WriteFile(filepath.Join(run, config.RuntimeDataDirFile), []byte(service+"\n"), 0o644)
	t.Setenv("RUNTIME_DIRECTORY", run) // where ServiceDataDir looks
	ios, _, out, _ := iostreams.Test()
	err := accounts.RunList(context.Background(), &accounts.ListOptions{IO: ios, Load: func() (*config.Loaded, error) {
		// The working directory's default, as from an SSH shell.
		return config.Load(config.LoadOptions{SearchPaths: []string{}, LookupEnv: func(string) (string, bool) { return "", false },
			Getwd: func() (string, error) { return wd, nil }})
	}})
	if err == nil {
		t.Fatalf("listing nothing succeeded: %s", out)
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(wd, "wactl-data", "sessions"), "nothing was created", service, "accounts list --data-dir " + service} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if entries, _ := os.ReadDir(wd); len(entries) != 0 {
		t.Fatalf("created %v in the working directory", entries)
	}
}
