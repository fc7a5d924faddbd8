package doctor_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/cmd/root"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
	pdoctor "github.com/wactl/wactl/pkg/doctor"
)

// fixState is one failing state doctor is driven into.
type fixState struct {
	name  string
	only  []string
	setup func(t *testing.T) *pdoctor.Env
	// sandbox: run the fix's commands (sudo and systemctl stubbed) and
	// expect the check to pass afterwards.
	sandbox bool
	// forbid: no command may contain it (it would fail the same way, or
	// act on something that is not there).
	forbid []string
}

// TestEveryFixParsesAndWorks drives the checks into their failing states
// and takes every fix they print: each command must parse (bash -n), each
// wactl command must pass the real command tree's flag and argument
// validation, and where the sandbox allows, running the fix makes the
// check pass.
func TestEveryFixParsesAndWorks(t *testing.T) {
	base := func(t *testing.T, vars map[string]string) *pdoctor.Env {
		return loadEnv(t, vars)
	}
	states := []fixState{
		{"config problems", []string{"config.load"}, func(t *testing.T) *pdoctor.Env {
			l, err := config.Load(config.LoadOptions{SearchPaths: []string{}, LookupEnv: func(k string) (string, bool) {
				if k == "PORT" {
					return "not-a-port", true
				}
				return "", false
			}})
			env := base(t, nil)
			env.Config, env.ConfigErr = &l.Config, err
			return env
		}, false, nil},
		{"config unreadable", []string{"config.load"}, func(t *testing.T) *pdoctor.Env {
			l, err := config.Load(config.LoadOptions{ConfigFile: "/etc/wactl/config.yaml", LookupEnv: func(string) (string, bool) { return "", false },
				ReadFile: func(p string) ([]byte, error) { return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission} }})
			env := base(t, nil)
			env.Config, env.ConfigErr, env.ConfigFile = &l.Config, err, "/etc/wactl/config.yaml"
			return env
		}, false, []string{"wactl config"}},
		{"config warnings", []string{"config.load"}, func(t *testing.T) *pdoctor.Env {
			return base(t, map[string]string{"WACTL_API_FIREBASE_PROJECT_ID": "proj"})
		}, false, nil},
		{"sessions dir missing", []string{"sessions.dir"}, func(t *testing.T) *pdoctor.Env {
			return base(t, map[string]string{"SESSIONS_PATH": filepath.Join(t.TempDir(), "a", "sessions")})
		}, true, nil},
		{"sessions dir open to all", []string{"sessions.dir"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			os.Mkdir(dir, 0o700)
			os.Chmod(dir, 0o777)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, true, nil},
		{"no paired session", []string{"sessions.inventory"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			os.Mkdir(dir, 0o700)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, false, nil},
		{"unit without INSTANCE_ID", []string{"systemd.unit"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, map[string]string{"STATE_DIRECTORY": t.TempDir()})
			unit, _ := os.ReadFile("../../../configs/wactl.service")
			os.MkdirAll(env.SystemdDir, 0o755)
			os.WriteFile(filepath.Join(env.SystemdDir, "wactl.service"), []byte(strings.ReplaceAll(string(unit), "Environment=INSTANCE_ID=wactl-%H\n", "")), 0o644)
			return env
		}, true, nil},
		{"daemon down, no unit", []string{"daemon.http"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, nil)
			env.BaseURL = "http://127.0.0.1:1"
			return env
		}, false, []string{"systemctl start", "journalctl"}},
		{"daemon down, unit installed", []string{"daemon.http"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, nil)
			env.BaseURL = "http://127.0.0.1:1"
			env.LookPath = func(string) (string, error) { return "/usr/bin/systemctl", nil }
			env.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
				return []byte("LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\n"), nil
			}
			return env
		}, false, nil},
		{"account needs QR, client outdated", []string{"daemon.accounts"}, func(t *testing.T) *pdoctor.Env {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"accounts":[{"accountId":"account_prod_0123456789abcdef0123456789abcdef","state":"needs_qr"},{"accountId":"account_prod_fedcba9876543210fedcba9876543210","state":"client_outdated"}]}`))
			}))
			t.Cleanup(srv.Close)
			env := base(t, nil)
			env.BaseURL = srv.URL
			return env
		}, false, nil},
		{"API without authentication", []string{"api.auth"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, nil)
			env.Offline = true
			return env
		}, false, nil},
	}
	seen := 0
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			env := st.setup(t)
			offline := env.Offline
			rep := pdoctor.Run(context.Background(), env, pdoctor.Select(pdoctor.Checks(), st.only))
			env.Offline = offline
			var fixes []pdoctor.Fix
			for _, c := range rep.Checks {
				if c.Status == pdoctor.Fail || c.Status == pdoctor.Warn {
					fixes = append(fixes, c.Fixes...)
				}
			}
			if len(fixes) == 0 {
				t.Fatalf("state produced no fix: %+v", rep.Checks)
			}
			for _, f := range fixes {
				for _, c := range f.Commands {
					seen++
					checkCommand(t, c)
					for _, bad := range st.forbid {
						if strings.Contains(c, bad) {
							t.Errorf("fix %q suggests %q here", c, bad)
						}
					}
				}
			}
			if !st.sandbox {
				return
			}
			script := "set -e\nsudo() { \"$@\"; }\nsystemctl() { :; }\n"
			for _, f := range fixes {
				script += strings.Join(f.Commands, "\n") + "\n"
			}
			if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil {
				t.Fatalf("running the fix: %v\n%s\n%s", err, script, out)
			}
			again := pdoctor.Run(context.Background(), env.Fresh(), pdoctor.Select(pdoctor.Checks(), st.only))
			for _, c := range again.Checks {
				if c.Status != pdoctor.OK {
					t.Fatalf("after the fix %s is %s: %s\nscript:\n%s", c.Name, c.Status, c.Summary, script)
				}
			}
		})
	}
	t.Logf("%d commands checked", seen)
}

// checkCommand parses c with bash -n and, for a wactl command, runs it
// through the real command tree with a configuration that cannot load: a
// usage error (exit 2) means the command as printed does not work.
func checkCommand(t *testing.T, c string) {
	t.Helper()
	if out, err := exec.Command("bash", "-n", "-c", c).CombinedOutput(); err != nil {
		t.Errorf("fix command does not parse: %q: %s", c, out)
		return
	}
	line, _, _ := strings.Cut(c, "   #")
	args := strings.Fields(line)
	for len(args) > 0 && (args[0] == "sudo" || strings.HasPrefix(args[0], "-") || args[0] == "wactl" && false) {
		if args[0] == "sudo" && len(args) > 2 && args[1] == "-u" {
			args = args[3:]
			continue
		}
		args = args[1:]
	}
	if len(args) == 0 || args[0] != "wactl" {
		return
	}
	args = args[1:]
	ios, _, _, errOut := iostreams.Test()
	f := &cmdutil.Factory{IO: ios, ConfigOptions: config.LoadOptions{ConfigFile: "/sandbox/config.yaml",
		LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile:  func(string) ([]byte, error) { return nil, errors.New("sandbox: no configuration") }}}
	cmd := root.New(f)
	if len(args) > 0 && (args[0] == "doctor" || args[0] == "serve") {
		// These would run; parsing their flags is enough.
		sub, rest, err := cmd.Find(args)
		if err == nil {
			err = sub.ParseFlags(rest)
		}
		if err == nil {
			err = sub.ValidateArgs(sub.Flags().Args())
		}
		if err != nil {
			t.Errorf("fix command %q: %v", c, err)
		}
		return
	}
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	_, err := cmd.ExecuteC()
	if code := cmdutil.HandleError(ios, context.Background(), err, "wactl"); code == cmdutil.ExitUsage {
		t.Errorf("fix command %q is a usage error (exit 2): %s", c, errOut)
	}
}
