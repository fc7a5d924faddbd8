package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load on the real filesystem and fails if it does not
// return within 5 s (a FIFO without a writer blocks an open for ever).
func loadWithin(t *testing.T, o LoadOptions) ([]string, error) {
	t.Helper()
	type res struct {
		probs []string
		err   error
	}
	done := make(chan res, 1)
	go func() {
		_, err := Load(o)
		var pe *ProblemsError
		var out []string
		if errors.As(err, &pe) {
			for _, p := range pe.Problems {
				out = append(out, p.String())
			}
		}
		done <- res{out, err}
	}()
	select {
	case r := <-done:
		return r.probs, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Load still reading after 5 s")
		return nil, nil
	}
}

func realOpts(e func(string) (string, bool)) LoadOptions {
	o := opts(e, nil)
	o.ReadFile = nil // the real filesystem, with its limits
	o.SearchPaths = []string{}
	return o
}

// TestSecretAndConfigFilesAreBounded is issue 16 item 8:
// WACTL_API_SERVICE_TOKEN_FILE=/dev/zero grew `config validate` to 23 GB.
// Secret files are capped at 64 KiB, config files at 4 MiB, and anything
// but a regular file is refused, each with an error naming the variable or
// file and what to do.
func TestSecretAndConfigFilesAreBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big-token")
	if err := os.WriteFile(big, []byte(strings.Repeat("a", 65<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	bigConfig := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(bigConfig, []byte("# "+strings.Repeat("x", 5<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "token")
	if err := os.WriteFile(ok, []byte(strings.Repeat("t", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		o    LoadOptions
		want string
	}{
		"secret-devzero": {realOpts(env("WACTL_API_SERVICE_TOKEN_FILE", "/dev/zero")),
			"WACTL_API_SERVICE_TOKEN_FILE=/dev/zero: not a regular file"},
		"secret-fifo": {realOpts(env("WACTL_API_SERVICE_TOKEN_FILE", fifo)),
			"WACTL_API_SERVICE_TOKEN_FILE=" + fifo + ": not a regular file"},
		"secret-dir": {realOpts(env("WACTL_API_SERVICE_TOKEN_FILE", dir)),
			"WACTL_API_SERVICE_TOKEN_FILE=" + dir + ": not a regular file"},
		"secret-too-big": {realOpts(env("WACTL_API_SERVICE_TOKEN_FILE", big)),
			"WACTL_API_SERVICE_TOKEN_FILE=" + big + ": larger than 64 KiB"},
		"config-devzero": {func() LoadOptions { o := realOpts(env()); o.ConfigFile = "/dev/zero"; return o }(),
			"config file /dev/zero: not a regular file"},
		"config-too-big": {func() LoadOptions { o := realOpts(env()); o.ConfigFile = bigConfig; return o }(),
			"config file " + bigConfig + ": larger than 4 MiB"},
	} {
		t.Run(name, func(t *testing.T) {
			probs, err := loadWithin(t, tc.o)
			if err == nil || !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Fatalf("want a problem containing %q, got %v (%v)", tc.want, probs, err)
			}
		})
	}
	// A normal secret file still loads (trailing newline trimmed).
	l, err := Load(realOpts(env("WACTL_API_SERVICE_TOKEN_FILE", ok)))
	if err != nil || l.Config.API.ServiceToken != strings.Repeat("t", 40) {
		t.Fatalf("normal token file: %v %q", err, l.Config.API.ServiceToken)
	}
}
