package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sessionsDir(env *Env) string { return env.Config.Sessions.Path }

func TestSessionsDirMissingThenFixed(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	dir := sessionsDir(env)
	r := runCheck(t, env, "sessions.dir")
	wantStatus(t, r, Fail, "does not exist")
	if !strings.Contains(fixCommands(r), "install -d -o root -g root -m 700 "+dir) {
		t.Fatalf("fix: %s", fixCommands(r))
	}
	rep := &Report{Checks: []Result{r}}
	for _, f := range Apply(context.Background(), rep.AutoFixes()) {
		if f.Err != nil {
			t.Fatal(f.Err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("after fix: %v %v", fi, err)
	}
	wantStatus(t, runCheck(t, env.Fresh(), "sessions.dir"), OK, "writable")
}

func TestSessionsDirModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode   os.FileMode
		status Status
		want   string
	}{
		{0o700, OK, "writable"},
		{0o750, Warn, "read session keys"},
		{0o777, Fail, "replace session keys"},
	} {
		env := testEnv(t, nil)
		dir := sessionsDir(env)
		os.Mkdir(dir, 0o700)
		os.Chmod(dir, tc.mode)
		r := runCheck(t, env, "sessions.dir")
		wantStatus(t, r, tc.status, tc.want)
		if evidence(r, "sessions_writable") != "YES" {
			t.Fatalf("mode %o: writable=%s", tc.mode, evidence(r, "sessions_writable"))
		}
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown and to probe as another user")
	}
}

func TestSessionsDirForeignOwner(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	env := testEnv(t, nil)
	dir := sessionsDir(env)
	os.Mkdir(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o600)
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	r := runCheck(t, env, "sessions.dir")
	wantStatus(t, r, Fail, "owned by 4242, not by the service user root")
	if !strings.Contains(fixCommands(r), "chown -R root:root "+dir) {
		t.Fatalf("fix: %s", fixCommands(r))
	}
	Apply(context.Background(), (&Report{Checks: []Result{r}}).AutoFixes())
	wantStatus(t, runCheck(t, env.Fresh(), "sessions.dir"), OK, "")
}

// TestSessionsDirUnwritableByServiceUser: doctor as root probes as the
// unit's User= (nobody) with a real setuid child.
func TestSessionsDirUnwritableByServiceUser(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	env := testEnv(t, nil)
	dir := sessionsDir(env)
	os.MkdirAll(dir, 0o700)
	os.Chmod(filepath.Dir(dir), 0o755) // the temp dirs are 0700: let nobody traverse them
	os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o755)
	cannedSystemctl(env, "LoadState=loaded\nActiveState=active\nUser=nobody\n", nil)
	r := runCheck(t, env, "sessions.dir")
	wantStatus(t, r, Fail, "cannot write")
	if evidence(r, "sessions_writable") != "NO" || !strings.Contains(fixCommands(r), "chown -R nobody:nogroup") {
		t.Fatalf("evidence %v fixes %s", r.Evidence, fixCommands(r))
	}
	Apply(context.Background(), (&Report{Checks: []Result{r}}).AutoFixes())
	r = runCheck(t, env.Fresh(), "sessions.dir")
	wantStatus(t, r, OK, "")
	if evidence(r, "sessions_writable") != "YES" {
		t.Fatal(r.Evidence)
	}
}

func TestSessionsStorage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fstype string
		status Status
		want   string
	}{{"tmpfs", Fail, "memory-backed"}, {"overlay", Warn, "container"}, {"xfs", OK, "persistent"}} {
		env := testEnv(t, nil)
		os.Mkdir(sessionsDir(env), 0o700)
		writeMountInfo(t, env.MountInfo, env.Config.DataDir, tc.fstype)
		r := runCheck(t, env, "sessions.storage")
		wantStatus(t, r, tc.status, tc.want)
		if evidence(r, "mount") != env.Config.DataDir {
			t.Fatalf("mount %v", r.Evidence)
		}
	}
}

func TestSessionsStorageLowSpace(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	env.Statfs = func(string) (uint64, uint64, error) { return 10 << 20, 1 << 30, nil }
	wantStatus(t, runCheck(t, env, "sessions.storage"), Fail, "only 10MB free")
}

const acctID = "account_prod_0123456789abcdef0123456789abcdef"

func TestSessionsInventoryCorruptAndLegacy(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	dir := sessionsDir(env)
	os.MkdirAll(filepath.Join(dir, acctID), 0o700)
	os.WriteFile(filepath.Join(dir, acctID, "whatsmeow.db"), []byte("this is not a database, just garbage bytes"), 0o600)
	os.MkdirAll(filepath.Join(dir, "old-baileys-1"), 0o700)
	os.WriteFile(filepath.Join(dir, "old-baileys-1", "creds.json"), []byte(`{"noiseKey":{}}`), 0o600)
	r := runCheck(t, env, "sessions.inventory")
	wantStatus(t, r, Fail, "1 corrupt")
	if evidence(r, "corrupt") != "1" || evidence(r, "legacy_baileys") != "1" || evidence(r, "account_dirs") != "1" {
		t.Fatal(r.Evidence)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "need one re-pair") || !strings.Contains(fixCommands(r), "wactl accounts remove "+acctID) {
		t.Fatalf("notes %v fixes %s", r.Notes, fixCommands(r))
	}
}

func TestSessionsInventoryEmptyWarns(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	os.Mkdir(sessionsDir(env), 0o700)
	r := runCheck(t, env, "sessions.inventory")
	wantStatus(t, r, Warn, "no paired session")
	if evidence(r, "paired") != "0" {
		t.Fatal(r.Evidence)
	}
}

// TestSessionsDirServiceUserIsDataDirOwner: with no unit installed (the
// package's layout in a container, a unit elsewhere), doctor run as root
// takes the data dir's owner for the service user, not root: it used to
// call the service's own sessions dir wrongly owned, offer to chown it to
// root (--fix would have stopped the service) and say "sudo -u root". A
// sessions dir root left in the service's data dir is what it flags.
func TestSessionsDirServiceUserIsDataDirOwner(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	env := testEnv(t, nil)
	data, dir := env.Config.DataDir, sessionsDir(env)
	os.Mkdir(dir, 0o700)
	for _, p := range []string{data, dir} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Dir(data), 0o755) // let nobody reach the data dir for the probe
	r := runCheck(t, env, "sessions.dir")
	wantStatus(t, r, OK, "owned by nobody")
	if got := evidence(r, "service_user"); got != "nobody (owner of "+data+")" {
		t.Errorf("service_user %q", got)
	}
	if len(r.Fixes) != 0 || strings.Contains(fmt.Sprint(r), "root") {
		t.Errorf("fixes %s, result %+v", fixCommands(r), r)
	}

	// Root's sessions dir in the service's data dir is the problem.
	if err := os.Chown(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	r = runCheck(t, env.Fresh(), "sessions.dir")
	wantStatus(t, r, Fail, "owned by root, not by the service user nobody")
	if !strings.Contains(fixCommands(r), "chown -R nobody:nogroup "+dir) {
		t.Fatalf("fix: %s", fixCommands(r))
	}
}

func TestSudoAsOmitsTheCurrentUser(t *testing.T) {
	for _, c := range []struct {
		euid, uid int
		want      string
	}{{0, 0, ""}, {33, 33, ""}, {0, 65534, "sudo -u nobody "}, {0, 4242, "sudo -u '#4242' "}} {
		if got := sudoAs(c.euid, c.uid); got != c.want {
			t.Errorf("sudoAs(%d, %d) = %q, want %q", c.euid, c.uid, got, c.want)
		}
	}
}
