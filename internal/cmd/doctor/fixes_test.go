package doctor_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/cmd/root"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
	pdoctor "github.com/wactl/wactl/pkg/doctor"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/sessions"
)

// fixState is one failing state doctor is driven into.
type fixState struct {
	name  string
	only  []string
	setup func(t *testing.T) *pdoctor.Env
	// sandbox: run the commands of the fixes --fix would apply (sudo and
	// systemctl stubbed) and expect the check to pass afterwards (or only
	// warn, for a state with a problem no command can fix, such as "no
	// account paired").
	sandbox bool
	// forbid: no command may contain it (it would fail the same way, or
	// act on something that is not there).
	forbid []string
	after  pdoctor.Status
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
		}, false, nil, ""},
		{"config unreadable", []string{"config.load"}, func(t *testing.T) *pdoctor.Env {
			l, err := config.Load(config.LoadOptions{ConfigFile: "/etc/wactl/config.yaml", LookupEnv: func(string) (string, bool) { return "", false },
				ReadFile: func(p string) ([]byte, error) { return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission} }})
			env := base(t, nil)
			env.Config, env.ConfigErr, env.ConfigFile = &l.Config, err, "/etc/wactl/config.yaml"
			return env
		}, false, []string{"wactl config"}, ""},
		{"config warnings", []string{"config.load"}, func(t *testing.T) *pdoctor.Env {
			return base(t, map[string]string{"WACTL_API_FIREBASE_PROJECT_ID": "proj"})
		}, false, nil, ""},
		{"config warning other than the allowlist", []string{"config.load"}, func(t *testing.T) *pdoctor.Env {
			return base(t, map[string]string{"WACTL_API_FIREBASE_PROJECT_ID": "proj", "WACTL_API_ALLOWED_EMAILS": "a@example.com",
				"WACTL_API_ALLOW_ANONYMOUS": "true"})
		}, false, nil, ""},
		{"sessions dir missing", []string{"sessions.dir"}, func(t *testing.T) *pdoctor.Env {
			return base(t, map[string]string{"SESSIONS_PATH": filepath.Join(t.TempDir(), "a", "sessions")})
		}, true, nil, ""},
		{"no data dir configured", []string{"sessions.dir"}, func(t *testing.T) *pdoctor.Env {
			wd := t.TempDir()
			l, err := config.Load(config.LoadOptions{SearchPaths: []string{}, Getwd: func() (string, error) { return wd, nil },
				LookupEnv: func(k string) (string, bool) { return wd, k == "RUNTIME_DIRECTORY" }})
			if err != nil {
				t.Fatal(err)
			}
			env := base(t, nil)
			env.Config, env.Origins = &l.Config, l.Origins
			return env
		}, false, nil, ""},
		{"sessions dir open to all", []string{"sessions.dir"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			os.Mkdir(dir, 0o700)
			os.Chmod(dir, 0o777)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, true, nil, ""},
		{"no paired session", []string{"sessions.inventory"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			os.Mkdir(dir, 0o700)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, false, nil, ""},
		{"unit without INSTANCE_ID", []string{"systemd.unit"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, map[string]string{"STATE_DIRECTORY": t.TempDir()})
			unit, _ := os.ReadFile("../../../configs/wactl.service")
			os.MkdirAll(env.SystemdDir, 0o755)
			os.WriteFile(filepath.Join(env.SystemdDir, "wactl.service"), []byte(strings.ReplaceAll(string(unit), "Environment=INSTANCE_ID=wactl-%H\n", "")), 0o644)
			return env
		}, true, nil, ""},
		{"daemon down, no unit", []string{"daemon.http"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, nil)
			env.BaseURL = "http://127.0.0.1:1"
			return env
		}, false, []string{"systemctl start", "journalctl"}, ""},
		{"daemon down, unit installed", []string{"daemon.http"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, nil)
			env.BaseURL = "http://127.0.0.1:1"
			env.LookPath = func(string) (string, error) { return "/usr/bin/systemctl", nil }
			env.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
				return []byte("LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\n"), nil
			}
			return env
		}, false, nil, ""},
		{"account needs QR, client outdated", []string{"daemon.accounts"}, func(t *testing.T) *pdoctor.Env {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"accounts":[{"accountId":"account_prod_0123456789abcdef0123456789abcdef","state":"needs_qr"},{"accountId":"account_prod_fedcba9876543210fedcba9876543210","state":"client_outdated"}]}`))
			}))
			t.Cleanup(srv.Close)
			env := base(t, nil)
			env.BaseURL = srv.URL
			return env
		}, false, nil, ""},
		{"unit not installed", []string{"systemd.service"}, func(t *testing.T) *pdoctor.Env {
			return systemctlEnv(t, "LoadState=not-found\nActiveState=inactive\nSubState=dead\n")
		}, false, nil, ""},
		{"service stopped", []string{"systemd.service"}, func(t *testing.T) *pdoctor.Env {
			return systemctlEnv(t, "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\nUser=\n")
		}, false, nil, ""},
		{"sessions dir owned by another user", []string{"sessions.dir"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "f"), nil, 0o600)
			os.Chown(dir, 65534, 65534)
			os.Chown(filepath.Join(dir, "f"), 65534, 65534)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, true, nil, ""},
		{"sessions on tmpfs", []string{"sessions.storage"}, func(t *testing.T) *pdoctor.Env {
			return mountEnv(t, "tmpfs")
		}, false, nil, ""},
		{"sessions on overlay", []string{"sessions.storage"}, func(t *testing.T) *pdoctor.Env {
			return mountEnv(t, "overlay")
		}, false, nil, ""},
		{"session files open to others", []string{"sessions.inventory"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			sess, err := sessions.Open(dir, sessions.Options{})
			if err != nil {
				t.Fatal(err)
			}
			id := "account_prod_0123456789abcdef0123456789abcdef"
			if _, err := sess.Create(sessions.NewAccount{ID: id, Name: "Shop", Phone: "+40755000001"}); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(dir, id), 0o755)
			os.Chmod(filepath.Join(dir, id, "account.json"), 0o644)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, true, nil, pdoctor.Warn},
		{"session store corrupt", []string{"sessions.inventory"}, func(t *testing.T) *pdoctor.Env {
			dir := filepath.Join(t.TempDir(), "sessions")
			sess, err := sessions.Open(dir, sessions.Options{})
			if err != nil {
				t.Fatal(err)
			}
			id := "account_prod_0123456789abcdef0123456789abcdef"
			if _, err := sess.Create(sessions.NewAccount{ID: id, Name: "Shop", Phone: "+40755000001"}); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, id, "whatsmeow.db"), bytes.Repeat([]byte("not a database "), 300), 0o600)
			return base(t, map[string]string{"SESSIONS_PATH": dir})
		}, false, nil, ""},
		{"old service with this instance id", []string{"lease.old_service"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, map[string]string{"INSTANCE_ID": "host-a"})
			env.LookPath = func(string) (string, error) { return "/usr/bin/systemctl", nil }
			env.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
				if len(args) > 1 && args[1] == "whatsapp-backend" {
					return []byte("LoadState=loaded\nActiveState=active\nMainPID=42\nEnvironment=INSTANCE_ID=%H\nFragmentPath=/etc/systemd/system/whatsapp-backend.service\n"), nil
				}
				return []byte("LoadState=not-found\n"), nil
			}
			return env
		}, false, nil, ""},
		{"embedded store corrupt", []string{"store.local"}, func(t *testing.T) *pdoctor.Env {
			data := t.TempDir()
			os.WriteFile(filepath.Join(data, "wactl.db"), bytes.Repeat([]byte("not a database "), 300), 0o600)
			return base(t, map[string]string{"WACTL_DATA_DIR": data})
		}, false, nil, ""},
		{"journal dead letters", []string{"journal.dead_letters"}, func(t *testing.T) *pdoctor.Env {
			data := t.TempDir()
			sqliteFile(t, filepath.Join(data, "journal.db"), "PRAGMA user_version=2",
				"CREATE TABLE dead_letters (code TEXT, kind TEXT, dead_ms INTEGER)",
				"INSERT INTO dead_letters VALUES ('InvalidArgument', 'message', 1)")
			return base(t, map[string]string{"WACTL_DATA_DIR": data, "WACTL_STORE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "p"})
		}, false, nil, ""},
		{"journal dead letters, old schema", []string{"journal.dead_letters"}, func(t *testing.T) *pdoctor.Env {
			data := t.TempDir()
			sqliteFile(t, filepath.Join(data, "journal.db"), "PRAGMA user_version=1",
				"CREATE TABLE entries (state INTEGER)", "INSERT INTO entries VALUES (2)")
			return base(t, map[string]string{"WACTL_DATA_DIR": data, "WACTL_STORE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "p"})
		}, false, nil, ""},
		{"history syncs lost", []string{"history.queue"}, func(t *testing.T) *pdoctor.Env {
			data := t.TempDir()
			sqliteFile(t, filepath.Join(data, "history-queue.db"), "CREATE TABLE entries (id INTEGER)", "CREATE TABLE parked (id INTEGER)",
				"CREATE TABLE losses (id INTEGER PRIMARY KEY, account TEXT, msg_id TEXT, reason TEXT, attempts INTEGER, recorded INTEGER, rerequested BOOLEAN)",
				"INSERT INTO losses VALUES (1, 'account_prod_0123456789abcdef0123456789abcdef', 'm1', 'media gone', 5, 0, 1)")
			return base(t, map[string]string{"WACTL_DATA_DIR": data})
		}, false, nil, ""},
		{"lease held by another instance (Firestore)", []string{"lease"}, func(t *testing.T) *pdoctor.Env {
			env, client := firestoreEnv(t)
			now := time.Now()
			_, err := client.Doc(lock.DefaultDocPath).Set(context.Background(), map[string]any{
				"holderInstanceId": "web-old-7f3a", "leaseUntil": float64(now.Add(90 * time.Second).UnixMilli()),
				"acquiredAt": float64(now.UnixMilli()), "updatedAt": float64(now.UnixMilli()), "previousHolder": nil})
			if err != nil {
				t.Fatal(err)
			}
			return env
		}, false, nil, ""},
		{"old service's lease under this instance id (Firestore)", []string{"lease"}, func(t *testing.T) *pdoctor.Env {
			env, client := firestoreEnv(t)
			now := time.Now()
			_, err := client.Doc(lock.DefaultDocPath).Set(context.Background(), map[string]any{
				"holderInstanceId": env.Config.InstanceID, "leaseUntil": float64(now.Add(90 * time.Second).UnixMilli()),
				"acquiredAt": float64(now.UnixMilli()), "updatedAt": float64(now.UnixMilli()), "previousHolder": nil})
			if err != nil {
				t.Fatal(err)
			}
			return env
		}, false, nil, ""},
		{"clock skew (Firestore)", []string{"lease.clock"}, func(t *testing.T) *pdoctor.Env {
			env, _ := firestoreEnv(t)
			env.ClockOffset = 12 * time.Second
			return env
		}, false, nil, ""},
		{"Firestore unreachable", []string{"store.firestore"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, map[string]string{"WACTL_STORE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "p"})
			env.Firestore = func(ctx context.Context) (*firestore.Client, error) {
				return fsclient.New(ctx, fsclient.Options{ProjectID: "p", EmulatorHost: "127.0.0.1:1"})
			}
			return env
		}, false, nil, ""},
		{"API without authentication", []string{"api.auth"}, func(t *testing.T) *pdoctor.Env {
			env := base(t, nil)
			env.Offline = true
			return env
		}, false, nil, ""},
	}
	states = append(states, replicaFixStates()...)    // replica_fix_test.go
	states = append(states, pgSessionsFixStates()...) // pgsessions_fix_test.go
	seen := 0
	var summaries []string
	t.Cleanup(func() { checkEveryFixDriven(t, summaries) })
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
				summaries = append(summaries, f.Summary)
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
				if f.Auto {
					script += strings.Join(f.Commands, "\n") + "\n"
				}
			}
			if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil {
				t.Fatalf("running the fix: %v\n%s\n%s", err, script, out)
			}
			again := pdoctor.Run(context.Background(), env.Fresh(), pdoctor.Select(pdoctor.Checks(), st.only))
			want := st.after
			if want == "" {
				want = pdoctor.OK
			}
			for _, c := range again.Checks {
				if c.Status != want {
					t.Fatalf("after the fix %s is %s: %s\nscript:\n%s", c.Name, c.Status, c.Summary, script)
				}
			}
		})
	}
	t.Logf("%d commands checked", seen)
}

// systemctlEnv answers `systemctl show wactl` with props.
func systemctlEnv(t *testing.T, props string) *pdoctor.Env {
	env := loadEnv(t, nil)
	env.LookPath = func(string) (string, error) { return "/usr/bin/systemctl", nil }
	env.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) { return []byte(props), nil }
	return env
}

// mountEnv puts the sessions dir on a file system of type fstype.
func mountEnv(t *testing.T, fstype string) *pdoctor.Env {
	dir := t.TempDir()
	env := loadEnv(t, map[string]string{"SESSIONS_PATH": filepath.Join(dir, "sessions")})
	mi := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(mi, []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n23 22 0:5 / "+dir+" rw - "+fstype+" "+fstype+" rw\n"), 0o600)
	env.MountInfo = mi
	return env
}

// sqliteFile creates a SQLite file with these statements.
func sqliteFile(t *testing.T, path string, stmts ...string) {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// firestoreEnv is an environment on the Firestore emulator.
func firestoreEnv(t *testing.T) (*pdoctor.Env, *firestore.Client) {
	client, project := fsemu.NewClient(t)
	env := loadEnv(t, map[string]string{"WACTL_STORE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": project,
		"FIRESTORE_EMULATOR_HOST": fsemu.Host(t), "INSTANCE_ID": "wactl-host-a"})
	env.Firestore = func(context.Context) (*firestore.Client, error) { return client, nil }
	return env, client
}

// notDriven are the fixes no state above produces, each with why; every
// other Fix literal in pkg/doctor must have been printed by a state.
var notDriven = map[string]string{
	"end the stopped old service's lease now": "needs a lease unwritten for 30 s of Firestore's clock (lock.LegacyRenewInterval); pkg/doctor TestLegacyLeaseStale shortens it from inside the package",
	"deploy the indexes wactl needs":          "the emulator does not enforce composite indexes",
	"read the restart's log":                  "--restart-test restarts a real systemd service",
	"recreate the permissions":                "needs a sessions dir the service user cannot write although it owns it with mode 0700 (a read-only mount)",
}

// checkEveryFixDriven reads every Fix literal of pkg/doctor and fails for
// one whose summary no state printed (unless notDriven says why).
func checkEveryFixDriven(t *testing.T, got []string) {
	fset := token.NewFileSet()
	files, _ := filepath.Glob("../../../pkg/doctor/*.go")
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if id, ok := lit.Type.(*ast.Ident); !ok || id.Name != "Fix" {
				return true
			}
			prefix := ""
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok || kv.Key.(*ast.Ident).Name != "Summary" {
					continue
				}
				v := kv.Value
				for {
					if b, ok := v.(*ast.BinaryExpr); ok {
						v = b.X
						continue
					}
					break
				}
				if bl, ok := v.(*ast.BasicLit); ok {
					prefix, _ = strconv.Unquote(bl.Value)
				}
			}
			if prefix == "" {
				return true
			}
			for _, s := range got {
				if strings.HasPrefix(s, prefix) {
					return true
				}
			}
			for k := range notDriven {
				if strings.HasPrefix(prefix, k) || strings.HasPrefix(k, prefix) {
					return true
				}
			}
			t.Errorf("%s: fix %q is not produced by any state of TestEveryFixParsesAndWorks", fset.Position(lit.Pos()), prefix)
			return true
		})
	}
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
	// Each command of a pipeline or list on its own.
	for _, part := range shellSplit.Split(line, -1) {
		checkWactl(t, c, strings.Fields(part))
	}
}

var shellSplit = regexp.MustCompile(`\|\||&&|\||;`)

// checkWactl runs args, when it is a wactl command, through the real
// command tree with a configuration that cannot load: a usage error (exit
// 2) means the command as printed does not work.
func checkWactl(t *testing.T, c string, args []string) {
	t.Helper()
	for len(args) > 0 && args[0] == "sudo" {
		if len(args) > 2 && args[1] == "-u" {
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
