package serve_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// pgFailoverAccounts is the 20 accounts, all paired through host
// A's API (16.9–23.4 s for the whole test at load 2–13 on 2 cores, the
// pairing about 1 s of it); under the race detector, whose children are
// several times slower, 5. WACTL_TEST_PG_FAILOVER_ACCOUNTS overrides both.
func pgFailoverAccounts(t *testing.T) int {
	if v := os.Getenv("WACTL_TEST_PG_FAILOVER_ACCOUNTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WACTL_TEST_PG_FAILOVER_ACCOUNTS=%q", v)
		}
		return n
	}
	if raceEnabled {
		return 5
	}
	return 20
}

// TestPostgresFailoverWithoutQR (issue 19 part 3): every account is paired
// into the shared PostgreSQL device store through host A's running API
// (add-account, QR scanned by the fake phone, several pairings at once);
// host B has an empty data dir. kill -9 A: B gains the Firestore lease and connects every
// account from PostgreSQL without a QR; messages sent before, during and
// after the failover are recorded exactly once and no account is ever
// connected twice. B then replies to a peer twice (turning the Signal
// ratchet with keys B made). A comes back PASSIVE and opens no connection
// while B is ACTIVE; a graceful stop of B hands every account back to A,
// which connects them without a QR. Unlike the backup case
// (TestBackupFailoverToEmptyHost) nothing diverged: both hosts use the one
// database, so A's first message is read by the peer and no message at
// all needs a retry receipt.
func TestPostgresFailoverWithoutQR(t *testing.T) {
	began := time.Now()
	n := pgFailoverAccounts(t)
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	dsn := pgtest.DSN(t)
	const ttl = 6 * time.Second
	common := []string{"WACTL_STORE_BACKEND=firestore", "WACTL_LOCK_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT=" + project,
		"FIRESTORE_EMULATOR_HOST=" + fsemu.Host(t), "WACTL_API_SERVICE_TOKEN=" + token,
		"WACTL_LOCK_TTL=6s", "WACTL_LOCK_RENEW_INTERVAL=1s", "WACTL_LOCK_SAFETY_MARGIN=2s", "WACTL_LOCK_RETRY_INTERVAL=1s",
		"WACTL_SESSIONS_STORE=postgres", "WACTL_SESSIONS_POSTGRES_DSN=" + dsn,
		"GOTRACEBACK=all"} // every goroutine in stop's SIGQUIT dump
	dirA, dirB := t.TempDir(), t.TempDir()
	// start runs a host; tag names its process on the fake (ConnRecord.Client).
	start := func(dir, instance, tag string) *proc {
		return serve(t, srv, dir, append(append([]string{}, common...), "INSTANCE_ID="+instance, wafake.EnvClientTag+"="+tag)...)
	}
	setUp := time.Since(began)

	// Every account is paired through the running host A's API (QR scan),
	// the path the app takes, several at once; nothing is pre-paired.
	const talker = "40700000066"
	f := &failoverTraffic{t: t, srv: srv, client: client, talker: talker}
	a := start(dirA, "host-a", "host-a")
	watest.Eventually(t, 30*time.Second, "A ACTIVE", func() bool { m := a.health(); return m != nil && m["waMode"] == "active" })
	phones := make([]string, n)
	for i := range phones {
		phones[i] = fmt.Sprintf("407341%05d", i)
	}
	accts := pairAllViaAPI(t, srv, a, phones)
	a.waitConnected(n, 60*time.Second)
	paired := time.Now()
	b := start(dirB, "host-b", "host-b")
	watest.Eventually(t, 20*time.Second, "B PASSIVE", func() bool { m := b.health(); return m != nil && m["waMode"] == "passive" })
	f.sendAll(accts, "before", talker)
	f.waitRecordedOnce()

	a.cmd.Process.Kill()
	<-a.exited
	killed := time.Now()
	f.sendAll(accts, "during", talker) // queued by WhatsApp until B connects the accounts
	m := b.waitConnected(n, 60*time.Second)
	took := time.Since(killed)
	t.Logf("host B (empty disk) connected %d accounts from PostgreSQL %s after kill -9 of A (lease TTL %s, retry 1s)", n, took.Round(time.Millisecond), ttl)
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("B after failover: %v", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(dirB, "sessions")); len(entries) != 0 {
		t.Fatalf("B keeps sessions on its disk: %v", entries)
	}
	f.sendAll(accts, "after", talker)
	f.waitRecordedOnce()
	f.converse(b, accts[0], "B") // the shared store moves on under B

	// A comes back PASSIVE and opens nothing while B is ACTIVE.
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

	// Stopping B hands every account back to A.
	handoff := time.Now()
	code, stopped := stop(t, b, syscall.SIGINT, 20*time.Second)
	if code != 0 {
		t.Fatalf("B exit %d", code)
	}
	m = back.waitConnected(n, 60*time.Second)
	t.Logf("A connected %d accounts %s after SIGINT of B (B exited after %s)", n, time.Since(handoff).Round(time.Millisecond), stopped.Round(time.Millisecond))
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("A after the handoff: %v", m)
	}
	// One store: A goes on from the state B left, so the talker reads A's
	// first message and nothing needs a retry receipt.
	if out := f.reply(back, accts[0], "A handed back, first word"); out.DecryptError != "" {
		t.Fatalf("the talker could not read A's first message after the handoff: %s", out.DecryptError)
	}
	f.sendAll(accts, "handed back", talker)
	f.waitRecordedOnce()
	if r := f.retries(began); len(r) != 0 {
		t.Fatalf("retry receipts with a shared store: %v", r)
	}
	for _, acct := range accts {
		if c := srv.MaxConcurrent(acct.Device); c != 1 {
			t.Fatalf("%s: %d connections at once", acct.ID, c)
		}
	}
	t.Logf("%d accounts: set-up %s, pairing and A's start %s, %d inbound messages recorded exactly once, 0 retry receipts; test took %s",
		n, setUp.Round(100*time.Millisecond), paired.Sub(began.Add(setUp)).Round(100*time.Millisecond), len(f.sent),
		time.Since(began).Round(100*time.Millisecond))
}

// waitRecordedOnce waits until each WhatsApp message id has its message
// document, then checks that none has two.
func waitRecordedOnce(t *testing.T, client *firestore.Client, ids ...string) {
	t.Helper()
	count := func(id string) int {
		docs, err := client.CollectionGroup("messages").Where("waMessageId", "==", id).Documents(context.Background()).GetAll()
		if err != nil {
			return -1
		}
		return len(docs)
	}
	for _, id := range ids {
		watest.Eventually(t, 30*time.Second, "message "+id+" recorded", func() bool { return count(id) >= 1 })
	}
	time.Sleep(time.Second) // a duplicate would land within this
	for _, id := range ids {
		if c := count(id); c != 1 {
			t.Fatalf("message %s recorded %d times", id, c)
		}
	}
}
