package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirFromTheRunningService: with no config file, variable or flag
// naming the data dir, the data dir the running service published in its
// runtime directory is used, and says so; anything explicit still wins.
func TestDataDirFromTheRunningService(t *testing.T) {
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, RuntimeDataDirFile), []byte("/var/lib/wactl\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(env map[string]string) *Loaded {
		t.Helper()
		l, err := Load(LoadOptions{SearchPaths: []string{}, LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}, Getwd: func() (string, error) { return "/home/op", nil }})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := load(map[string]string{"RUNTIME_DIRECTORY": run})
	if l.Config.DataDir != "/var/lib/wactl" || l.Config.Sessions.Path != "/var/lib/wactl/sessions" {
		t.Fatalf("data dir %q, sessions %q", l.Config.DataDir, l.Config.Sessions.Path)
	}
	if o := l.Origins["data_dir"]; o.Source != SourceDerived || o.Detail != "the running wactl service ("+filepath.Join(run, RuntimeDataDirFile)+")" {
		t.Fatalf("origin %+v", o)
	}
	if l := load(map[string]string{"RUNTIME_DIRECTORY": run, "WACTL_DATA_DIR": "/srv/mine"}); l.Config.DataDir != "/srv/mine" {
		t.Fatalf("explicit data dir lost: %q", l.Config.DataDir)
	}
	// No service published anything: the working directory's ./wactl-data.
	if l := load(map[string]string{"RUNTIME_DIRECTORY": t.TempDir()}); l.Config.DataDir != "/home/op/wactl-data" {
		t.Fatalf("default %q", l.Config.DataDir)
	}
	// A pointer that is not an absolute path is ignored.
	os.WriteFile(filepath.Join(run, RuntimeDataDirFile), []byte("relative/dir"), 0o644)
	if l := load(map[string]string{"RUNTIME_DIRECTORY": run}); l.Config.DataDir != "/home/op/wactl-data" {
		t.Fatalf("relative pointer used: %q", l.Config.DataDir)
	}
}
