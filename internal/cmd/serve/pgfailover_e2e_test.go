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
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// pgFailoverAccounts is 5 in CI; WACTL_TEST_PG_FAILOVER_ACCOUNTS=20 runs
// the full size.
func pgFailoverAccounts(t *testing.T) int {
	if v := os.Getenv("WACTL_TEST_PG_FAILOVER_ACCOUNTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WACTL_TEST_PG_FAILOVER_ACCOUNTS=%q", v)
		}
		return n
	}
	return 5
}

// TestPostgresFailoverWithoutQR (issue 19 part 3): the accounts are paired
// into the shared PostgreSQL device store through host A; host B has an
// empty data dir. kill -9 A: B gains the Firestore lease and connects every
// account from PostgreSQL without a QR; messages sent before, during and
// after the failover are recorded exactly once and no account is ever
// connected twice. A comes back PASSIVE, and a graceful stop of B hands
// every account back to A.
func TestPostgresFailoverWithoutQR(t *testing.T) {
	n := pgFailoverAccounts(t)
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	dsn := pgtest.DSN(t)
	const ttl = 6 * time.Second
	common := []string{"WACTL_STORE_BACKEND=firestore", "WACTL_LOCK_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT=" + project,
		"FIRESTORE_EMULATOR_HOST=" + fsemu.Host(t),
		"WACTL_LOCK_TTL=6s", "WACTL_LOCK_RENEW_INTERVAL=1s", "WACTL_LOCK_SAFETY_MARGIN=2s", "WACTL_LOCK_RETRY_INTERVAL=1s",
		"WACTL_SESSIONS_STORE=postgres", "WACTL_SESSIONS_POSTGRES_DSN=" + dsn}
	dirA, dirB := t.TempDir(), t.TempDir()
	start := func(dir, instance string) *proc {
		return serve(t, srv, dir, append(append([]string{}, common...), "INSTANCE_ID="+instance)...)
	}

	// Pair through host A's configuration (the store `wactl pair` opens).
	pg, err := sessions.Open(filepath.Join(dirA, "sessions"), sessions.Options{InstanceID: "pair",
		Postgres: &sessions.PostgresOptions{DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	accts := make([]watest.Account, n)
	for i := range accts {
		accts[i] = watest.Pair(t, srv, pg, fmt.Sprintf("407341%05d", i))
	}
	pg.Close()

	send := func(to watest.Account, body string) string {
		t.Helper()
		id, err := srv.SendFromPeer(context.Background(), types.NewJID("40700000066", types.DefaultUserServer), to.Device.ToNonAD(),
			&waE2E.Message{Conversation: proto.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	var sent []string
	sendAll := func(phase string) {
		for i, acct := range accts {
			sent = append(sent, send(acct, fmt.Sprintf("%s %d", phase, i)))
		}
	}

	a := start(dirA, "host-a")
	a.waitConnected(n, 60*time.Second)
	b := start(dirB, "host-b")
	watest.Eventually(t, 20*time.Second, "B PASSIVE", func() bool { m := b.health(); return m != nil && m["waMode"] == "passive" })
	sendAll("before")
	waitRecordedOnce(t, client, sent...)

	a.cmd.Process.Kill()
	<-a.exited
	killed := time.Now()
	sendAll("during") // queued by WhatsApp until B connects the accounts
	m := b.waitConnected(n, 60*time.Second)
	took := time.Since(killed)
	t.Logf("host B (empty disk) connected %d accounts from PostgreSQL %s after kill -9 of A (lease TTL %s, retry 1s)", n, took.Round(time.Millisecond), ttl)
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("B after failover: %v", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(dirB, "sessions")); len(entries) != 0 {
		t.Fatalf("B keeps sessions on its disk: %v", entries)
	}
	sendAll("after")
	waitRecordedOnce(t, client, sent...)

	// A comes back PASSIVE; stopping B hands every account back to A.
	a = start(dirA, "host-a")
	watest.Eventually(t, 20*time.Second, "A PASSIVE", func() bool { m := a.health(); return m != nil && m["waMode"] == "passive" })
	if code, _ := b.signal(syscall.SIGINT); code != 0 {
		t.Fatalf("B exit %d", code)
	}
	a.waitConnected(n, 60*time.Second)
	sendAll("handed back")
	waitRecordedOnce(t, client, sent...)
	for _, acct := range accts {
		if c := srv.MaxConcurrent(acct.Device); c != 1 {
			t.Fatalf("%s: %d connections at once", acct.ID, c)
		}
	}
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
