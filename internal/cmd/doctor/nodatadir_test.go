package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/cmd/root"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
)

// runDoctorIn runs `wactl doctor args…` through the real command tree in
// working directory wd, with no config file and only the variables in env
// (RUNTIME_DIRECTORY points at an empty dir: no running service).
func runDoctorIn(t *testing.T, wd string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["RUNTIME_DIRECTORY"]; !ok {
		env["RUNTIME_DIRECTORY"] = t.TempDir()
	}
	ios, _, out, errOut := iostreams.Test()
	f := &cmdutil.Factory{IO: ios, ConfigOptions: config.LoadOptions{SearchPaths: []string{},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Getwd:     func() (string, error) { return wd, nil },
		Hostname:  func() (string, error) { return "host-a", nil }}}
	cmd := root.New(f)
	cmd.SetArgs(append([]string{"doctor"}, args...))
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	return cmdutil.HandleError(ios, context.Background(), err, "wactl doctor"), out.String(), errOut.String()
}

// TestFixCreatesNoDataDirNobodyAskedFor: with no config file, no data dir
// named anywhere and no service on the host, `doctor --fix --yes` run in
// some directory creates nothing there (it used to create
// ./wactl-data/sessions and call that fixed); it says that no data dir is
// configured and prints the command that names one. Named (--data-dir),
// --fix creates it and says where the name came from.
func TestFixCreatesNoDataDirNobodyAskedFor(t *testing.T) {
	wd := t.TempDir()
	code, out, errOut := runDoctorIn(t, wd, nil, "--fix", "--yes", "--offline", "--only", "sessions,config.load")
	if entries, _ := os.ReadDir(wd); len(entries) != 0 {
		t.Errorf("doctor --fix created %v in the working directory\n%s%s", entries, out, errOut)
	}
	want := "wactl doctor --fix --data-dir " + filepath.Join(wd, "wactl-data")
	if !strings.Contains(out, "no data dir is configured") || !strings.Contains(out, want) || !strings.Contains(out, "nothing was created") {
		t.Errorf("exit %d; want the unconfigured data dir explained and %q:\n%s%s", code, want, out, errOut)
	}
	if code != cmdutil.ExitOK && code != cmdutil.ExitProblems {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}

	// The printed fix works: the dir is named, so --fix creates it and says why.
	code, out, errOut = runDoctorIn(t, wd, nil, "--fix", "--yes", "--offline", "--only", "sessions.dir", "--data-dir", filepath.Join(wd, "wactl-data"))
	if fi, err := os.Stat(filepath.Join(wd, "wactl-data", "sessions")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("--fix --data-dir did not create the sessions dir: %v\nexit %d\n%s%s", err, code, out, errOut)
	}
	if !strings.Contains(errOut, "(data_dir from flag") {
		t.Errorf("the fix does not say which data dir it creates and why:\n%s", errOut)
	}
}
