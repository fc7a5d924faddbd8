package serve_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// backupFailoverAccounts is the 20 accounts in plain runs (CI's
// `go test ./...`); 3, the three roles below, under the race detector or
// -short (CI's `-race -short` pass). WACTL_TEST_BACKUP_FAILOVER_ACCOUNTS
// overrides both. The accounts are pre-paired straight into A's SQLite
// store (watest.Pair against the fake server) before A starts: the issue
// asks pairing through host A only of the PostgreSQL case
// (TestPostgresFailoverWithoutQR pairs every account through A's API).
func backupFailoverAccounts(t *testing.T) int {
	if v := os.Getenv("WACTL_TEST_BACKUP_FAILOVER_ACCOUNTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 {
			t.Fatalf("WACTL_TEST_BACKUP_FAILOVER_ACCOUNTS=%q (3 or more)", v)
		}
		return n
	}
	if raceEnabled || testing.Short() {
		return 3
	}
	return 20
}

// TestBackupFailoverToEmptyHost (issue 19 part 3, second case): no shared
// device store. Host A serves the accounts from its SQLite files and a
// backup is taken while it runs (as cron would); A goes on talking after
// the backup (accts[0] replies to the talker twice), so A's disk and the
// backup diverge; A dies (kill -9); the operator restores the backup onto
// host B's empty data dir and starts it: B gains the lease and connects
// every account without a QR, and messages sent before, while A was down,
// and after are recorded exactly once. B goes on talking too (accts[0] and
// accts[1] reply to the talker twice). Then A comes back on its own, now
// diverged, disk: it stays PASSIVE and opens no connection while B is
// ACTIVE; a graceful stop of B hands every account back to A, which
// connects them without a QR. What A's stale Signal state costs is
// measured and asserted (docs/sessions-postgres.md, "Failover"): the
// accounts B replied from need whatsmeow's retry receipts for the talker's
// next message, inbound-only peers decrypt at once, A's first message on
// the old state cannot be read by the talker, every inbound message is
// recorded exactly once, and no account ever has two connections.
func TestBackupFailoverToEmptyHost(t *testing.T) {
	began := time.Now()
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
	// accts[0] talks on A after the backup and on B, accts[1] on B only,
	// the others only receive.
	n := backupFailoverAccounts(t)
	accts := make([]watest.Account, n)
	for i := range accts {
		accts[i] = watest.Pair(t, srv, sess, fmt.Sprintf("407370%05d", i+1))
	}
	// start runs a host; tag names its process on the fake (ConnRecord.Client).
	start := func(dir, instance, tag string) *proc {
		return serve(t, srv, dir, append(append([]string{}, common...), "INSTANCE_ID="+instance, wafake.EnvClientTag+"="+tag)...)
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wactl := func(dataDir string, args ...string) {
		t.Helper()
		c := exec.Command(os.Args[0], args...)
		c.Env = append(append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir, "INSTANCE_ID=cli"}, srv.Env()...), common...)
		c.Dir = dataDir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("wactl %v: %v\n%s", args, err, out)
		}
	}

	const talker, newPeer = "40700000033", "40700000034"
	f := &failoverTraffic{t: t, srv: srv, client: client, talker: talker}

	a := start(dirA, "host-a", "host-a")
	a.waitConnected(n, 30*time.Second)
	f.sendAll(accts, "before", talker)
	f.waitRecordedOnce()
	backup := filepath.Join(t.TempDir(), "wactl.age")
	wactl(dirA, "sessions", "backup", "--out", backup, "--recipient", id.Recipient().String())
	f.converse(a, accts[0], "A after the backup") // A's disk moves past the backup

	a.cmd.Process.Kill()
	<-a.exited
	f.sendAll(accts, "while A is down", talker)
	wactl(dirB, "sessions", "restore", backup, "--identity", keyFile)
	restored := time.Now()
	b := start(dirB, "host-b", "host-b")
	m := b.waitConnected(n, 40*time.Second)
	t.Logf("host B (restored from the backup) connected %d accounts %s after it started", n, time.Since(restored).Round(time.Millisecond))
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("B: %v", m)
	}
	f.sendAll(accts, "after", talker)
	f.sendAll(accts, "after, new peer", newPeer)
	f.waitRecordedOnce()
	onB := f.retries(restored)
	t.Logf("B on the backup: retry receipts by account %v (accts[0] replied to the talker after the backup)", onB)
	if onB[accts[0].Device.User] == 0 || len(onB) != 1 {
		t.Fatalf("retry receipts on B %v: want some for %s only", onB, accts[0].Device.User)
	}
	f.converse(b, accts[0], "B") // B's store moves past what A has
	f.converse(b, accts[1], "B")

	// A comes back on its diverged disk: PASSIVE, and it opens nothing.
	back := start(dirA, "host-a", "host-a-back")
	watest.Eventually(t, 20*time.Second, "A PASSIVE", func() bool { m := back.health(); return m != nil && m["waMode"] == "passive" })
	f.sendAll(accts, "while A is passive", talker)
	f.waitRecordedOnce()
	if m := back.health(); m["waMode"] != "passive" || m["connected"] != float64(0) {
		t.Fatalf("A while B is ACTIVE: %v", m)
	}
	if c := connectionsBy(srv, "host-a-back"); len(c) != 0 {
		t.Fatalf("A opened connections while PASSIVE: %+v", c)
	}
	f.checkStatuses(accts, "while A is PASSIVE")

	// Graceful handoff back to A.
	handoff := time.Now()
	if code, _ := stop(t, b, syscall.SIGINT, 20*time.Second); code != 0 {
		t.Fatalf("B exit %d", code)
	}
	m = back.waitConnected(n, 30*time.Second)
	t.Logf("A connected %d accounts from its own disk %s after SIGINT of B", n, time.Since(handoff).Round(time.Millisecond))
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("A after the handoff: %v", m)
	}
	// A's first send on its old state, before the talker writes again.
	out1 := f.reply(back, accts[1], "A handed back, first word")
	t.Logf("A's first message to the talker on its old state of %s: decrypt error %q", accts[1].ID, out1.DecryptError)
	if out1.DecryptError == "" {
		// B sent on the same sending chain from the same restored state, so
		// the talker has used this message key already (the fake's peer
		// sends no retry receipt for it; see the docs).
		t.Fatal("the talker read A's message on the state B went on from: the divergence this test measures is gone")
	}
	f.sendAll(accts, "handed back", talker)
	f.sendAll(accts, "handed back, new peer", newPeer)
	f.waitRecordedOnce()
	onA := f.retries(handoff)
	t.Logf("A on its own disk after the handoff: retry receipts by account %v", onA)
	if onA[accts[0].Device.User] == 0 || onA[accts[1].Device.User] == 0 || len(onA) != 2 {
		t.Fatalf("retry receipts on A %v: want some for the accounts B replied from (%s, %s) only", onA, accts[0].Device.User, accts[1].Device.User)
	}
	if by := f.retriedSenders(handoff); len(by) != 1 || by[talker] == 0 {
		t.Fatalf("retry receipts on A by sender %v: want the talker's messages only (the new peer's decrypt at once)", by)
	}
	// Recovered: the next round needs no retry, and A's replies are read.
	again := time.Now()
	f.sendAll(accts, "handed back, again", talker)
	f.waitRecordedOnce()
	if r := f.retries(again); len(r) != 0 {
		t.Fatalf("retry receipts after the recovery: %v", r)
	}
	for _, acct := range accts[:2] {
		if m := f.reply(back, acct, "A after the recovery"); m.DecryptError != "" {
			t.Fatalf("the talker could not read %s's reply after the recovery: %s", acct.ID, m.DecryptError)
		}
	}
	for _, acct := range accts {
		if c := srv.MaxConcurrent(acct.Device); c != 1 {
			t.Fatalf("%s: %d connections at once", acct.ID, c)
		}
	}
	t.Logf("%d inbound messages recorded exactly once; test took %s", len(f.sent), time.Since(began).Round(100*time.Millisecond))
}
