package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/config"
)

func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }

// testEnv is a doctor environment on a temp data dir: no systemd, ext4
// mountinfo for the temp dir, offline.
func testEnv(t *testing.T, env map[string]string) *Env {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{"STATE_DIRECTORY": dir, "INSTANCE_ID": "host-a"}
	for k, v := range env {
		vars[k] = v
	}
	l, err := config.Load(config.LoadOptions{SearchPaths: []string{},
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Hostname:  func() (string, error) { return "host-a", nil }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	mi := filepath.Join(dir, "mountinfo")
	writeMountInfo(t, mi, "/", "ext4")
	return &Env{Config: &l.Config, Origins: l.Origins, Hostname: "host-a", Offline: true,
		MountInfo: mi, SystemdDir: filepath.Join(dir, "systemd"),
		LookPath: func(string) (string, error) { return "", errors.New("not found") }}
}

func writeMountInfo(t *testing.T, path, mountPoint, fstype string) {
	t.Helper()
	text := "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		fmt.Sprintf("40 22 0:40 / %s rw,nosuid - %s none rw\n", strings.ReplaceAll(mountPoint, " ", `\040`), fstype)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cannedSystemctl answers `systemctl show` with props and records calls.
func cannedSystemctl(env *Env, props string, calls *[]string) {
	env.LookPath = func(string) (string, error) { return "/usr/bin/systemctl", nil }
	env.Run = func(_ context.Context, name string, args ...string) ([]byte, error) {
		if calls != nil {
			*calls = append(*calls, name+" "+strings.Join(args, " "))
		}
		if name == "systemctl" && len(args) > 0 && args[0] == "show" {
			return []byte(props), nil
		}
		return nil, nil
	}
}

func runCheck(t *testing.T, env *Env, name string) Result {
	t.Helper()
	checks := Select(append(Checks(), RestartCheck(0)), []string{name})
	var keep []Check
	for _, c := range checks {
		if c.Name == name {
			keep = append(keep, c)
		}
	}
	rep := Run(context.Background(), env, keep)
	return rep.Checks[0]
}

func evidence(r Result, key string) string {
	for _, e := range r.Evidence {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

func wantStatus(t *testing.T, r Result, s Status, contains string) {
	t.Helper()
	text := r.Summary + " | " + r.Blocking + " | " + strings.Join(r.Notes, " | ")
	if r.Status != s || !strings.Contains(text, contains) {
		t.Fatalf("%s: status %s %q, want %s containing %q\nevidence %v", r.Name, r.Status, text, s, contains, r.Evidence)
	}
}

func fixCommands(r Result) string {
	var b strings.Builder
	for _, f := range r.Fixes {
		b.WriteString(strings.Join(f.Commands, "\n") + "\n")
	}
	return b.String()
}
