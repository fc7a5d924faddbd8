package serve_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestBackupFailoverHandBackWithFreshCopy runs the hand-back procedure
// docs/sessions-postgres.md recommends after a failover from a backup:
// instead of letting host A drive again on its diverged disk
// (TestBackupFailoverToEmptyHost measures what that costs), both hosts
// are stopped, B's sessions are backed up and restored onto A (A's older
// copies are replaced and kept), and A is started. Then A goes on exactly
// from B's state: the talker reads A's first message, no message needs a
// retry receipt, and everything sent, also while no host was ACTIVE, is
// recorded exactly once.
func TestBackupFailoverHandBackWithFreshCopy(t *testing.T) {
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	common := []string{"WACTL_STORE_BACKEND=firestore", "WACTL_LOCK_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT=" + project,
		"FIRESTORE_EMULATOR_HOST=" + fsemu.Host(t), "WACTL_API_SERVICE_TOKEN=" + token,
		"WACTL_LOCK_TTL=6s", "WACTL_LOCK_RENEW_INTERVAL=1s", "WACTL_LOCK_SAFETY_MARGIN=2s", "WACTL_LOCK_RETRY_INTERVAL=1s"}
	dirA, dirB := t.TempDir(), t.TempDir()
	sess, err := sessions.Open(filepath.Join(dirA, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts := []watest.Account{watest.Pair(t, srv, sess, "40737100001"), watest.Pair(t, srv, sess, "40737100002")}
	n := len(accts)
	start := func(dir, instance string) *proc {
		return serve(t, srv, dir, append(append([]string{}, common...), "INSTANCE_ID="+instance, wafake.EnvClientTag+"="+instance)...)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wactl := func(dataDir string, args ...string) []byte {
		t.Helper()
		c := exec.Command(os.Args[0], args...)
		c.Env = append(append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir, "INSTANCE_ID=cli"}, srv.Env()...), common...)
		c.Dir = dataDir
		out, err := c.Output()
		if err != nil {
			t.Fatalf("wactl %v: %v\n%s", args, err, out)
		}
		return out
	}
	backupAndRestore := func(from, to string) []sessions.RestoredAccount {
		t.Helper()
		file := filepath.Join(t.TempDir(), "wactl.age")
		wactl(from, "sessions", "backup", "--out", file, "--recipient", id.Recipient().String())
		var rep struct{ Accounts []sessions.RestoredAccount }
		if out := wactl(to, "sessions", "restore", file, "--identity", keyFile, "--json"); json.Unmarshal(out, &rep) != nil {
			t.Fatalf("restore --json: %s", out)
		}
		return rep.Accounts
	}

	const talker = "40700000035"
	f := &failoverTraffic{t: t, srv: srv, client: client, talker: talker}
	a := start(dirA, "host-a")
	a.waitConnected(n, 30*time.Second)
	f.sendAll(accts, "before", talker)
	f.waitRecordedOnce()
	file := filepath.Join(t.TempDir(), "cron.age")
	wactl(dirA, "sessions", "backup", "--out", file, "--recipient", id.Recipient().String())
	f.converse(a, accts[0], "A after the backup")
	a.cmd.Process.Kill()
	<-a.exited
	wactl(dirB, "sessions", "restore", file, "--identity", keyFile)
	b := start(dirB, "host-b")
	b.waitConnected(n, 40*time.Second)
	f.sendAll(accts, "on B", talker)
	f.waitRecordedOnce()
	for _, acct := range accts {
		f.converse(b, acct, "B")
	}

	// The procedure: stop B (nobody is ACTIVE), copy B's sessions onto A
	// (A's service is stopped), start A.
	if code, _ := b.signal(syscall.SIGINT); code != 0 {
		t.Fatalf("B exit %d", code)
	}
	f.sendAll(accts, "while no host is ACTIVE", talker)
	res := backupAndRestore(dirB, dirA)
	for _, r := range res {
		if r.Outcome != sessions.OutcomeReplaced || r.MovedTo == "" {
			t.Fatalf("restore onto A: %+v (want replaced, the old copy kept)", r)
		}
	}
	handoff := time.Now()
	back := start(dirA, "host-a-back")
	m := back.waitConnected(n, 30*time.Second)
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("A: %v", m)
	}
	for _, acct := range accts {
		if out := f.reply(back, acct, "A, first word"); out.DecryptError != "" {
			t.Fatalf("the talker could not read %s's first message from the fresh copy: %s", acct.ID, out.DecryptError)
		}
	}
	f.sendAll(accts, "handed back", talker)
	f.waitRecordedOnce()
	if r := f.retries(handoff); len(r) != 0 {
		t.Fatalf("retry receipts after handing back with a fresh copy: %v", r)
	}
	for _, acct := range accts {
		if c := srv.MaxConcurrent(acct.Device); c != 1 {
			t.Fatalf("%s: %d connections at once", acct.ID, c)
		}
	}
	t.Logf("handed back with a fresh copy: %d inbound messages recorded exactly once, 0 retry receipts after the hand-back", len(f.sent))
}
