package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func referenceUnit(t *testing.T) string {
	b, err := os.ReadFile("../../configs/wactl.service")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeUnit(t *testing.T, env *Env, text string) {
	t.Helper()
	os.MkdirAll(env.SystemdDir, 0o755)
	if err := os.WriteFile(filepath.Join(env.SystemdDir, "wactl.service"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReferenceUnitPasses also keeps referenceHardening in step with
// configs/wactl.service.
func TestReferenceUnitPasses(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	writeUnit(t, env, referenceUnit(t))
	r := runCheck(t, env, "systemd.unit")
	wantStatus(t, r, OK, "matches")
	if evidence(r, "sessions_path") != "/var/lib/wactl/sessions" || evidence(r, "INSTANCE_ID") != "wactl-host-a" {
		t.Fatal(r.Evidence)
	}
	ref := ParseUnit(referenceUnit(t))
	for k, v := range referenceHardening {
		if got := ref.Last("Service", k); got != v {
			t.Errorf("referenceHardening[%s]=%s but configs/wactl.service says %q", k, v, got)
		}
	}
}

func TestUnitMissingInstanceIDThenDropIn(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	writeUnit(t, env, strings.Replace(referenceUnit(t), "Environment=INSTANCE_ID=wactl-%H", "", 1))
	r := runCheck(t, env, "systemd.unit")
	wantStatus(t, r, Warn, "INSTANCE_ID is not set")
	cmds := fixCommands(r)
	if !strings.Contains(cmds, "Environment=INSTANCE_ID=wactl-%H") || !strings.Contains(cmds, "systemctl daemon-reload && sudo systemctl restart wactl") {
		t.Fatal(cmds)
	}
	for _, f := range Apply(context.Background(), (&Report{Checks: []Result{r}}).AutoFixes()) {
		if f.Err != nil {
			t.Fatal(f.Err)
		}
	}
	wantStatus(t, runCheck(t, env.Fresh(), "systemd.unit"), OK, "")
}

func TestUnitTmpSessionsPath(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	writeUnit(t, env, referenceUnit(t)+"\n[Service]\nEnvironment=\"SESSIONS_PATH=/tmp/wa sessions\"\n")
	r := runCheck(t, env, "systemd.unit")
	wantStatus(t, r, Fail, "PrivateTmp=yes")
	if !strings.Contains(fixCommands(r), "Environment=SESSIONS_PATH=/var/lib/wactl/sessions") {
		t.Fatal(fixCommands(r))
	}
}

func TestUnitReadOnlySessionsAndKillSignal(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	writeUnit(t, env, referenceUnit(t)+"\n[Service]\nEnvironment=SESSIONS_PATH=/opt/wa/sessions\nKillSignal=SIGKILL\nTimeoutStopSec=2\n")
	r := runCheck(t, env, "systemd.unit")
	wantStatus(t, r, Fail, "read-only under ProtectSystem=strict")
	wantStatus(t, r, Fail, "KillSignal=SIGKILL")
	if !strings.Contains(fixCommands(r), "ReadWritePaths=/opt/wa/sessions") || !strings.Contains(fixCommands(r), "TimeoutStopSec=30") {
		t.Fatal(fixCommands(r))
	}
}

func TestSystemdService(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	wantStatus(t, runCheck(t, env, "systemd.service"), Skip, "not a systemd host")

	env = testEnv(t, nil)
	cannedSystemctl(env, "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=15603\nMemoryCurrent=173015040\n"+
		"User=wactl\nEnvironment=INSTANCE_ID=host-a \"SESSIONS_PATH=/var/lib/other/sessions\"\n", nil)
	r := runCheck(t, env, "systemd.service")
	wantStatus(t, r, Warn, "the service uses sessions dir /var/lib/other/sessions")
	if evidence(r, "MainPID") != "15603" || evidence(r, "memory") != "165MB" {
		t.Fatal(r.Evidence)
	}

	env = testEnv(t, nil)
	cannedSystemctl(env, "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\n", nil)
	r = runCheck(t, env, "systemd.service")
	wantStatus(t, r, Fail, "not running")
	if !strings.Contains(fixCommands(r), "journalctl -u wactl") {
		t.Fatal(fixCommands(r))
	}
}

func TestParseUnitContinuationAndReset(t *testing.T) {
	t.Parallel()
	u := ParseUnit("[Service]\nReadWritePaths=/a \\\n  /b\nReadWritePaths=\nReadWritePaths=-/c\n# c\nEnvironment=\"A=1 2\" B=3\n")
	if got := u.List("Service", "ReadWritePaths"); len(got) != 1 || got[0] != "-/c" {
		t.Fatal(got)
	}
	if e := u.Env(); e["A"] != "1 2" || e["B"] != "3" {
		t.Fatal(e)
	}
}

func FuzzParseUnit(f *testing.F) {
	f.Add("[Service]\nEnvironment=\"A=1\" B\\\n=2\nUser=x\n")
	f.Fuzz(func(t *testing.T, s string) {
		u := ParseUnit(s)
		u.Env()
		u.List("Service", "ReadWritePaths")
		ParseShow(s)
		SplitQuoted(s)
		expandSpecifiers(s, "h")
	})
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:40 / /a\\040b rw - tmpfs none rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms := ParseMountInfo(s)
		MountOf(ms, "/a b/c")
	})
}
