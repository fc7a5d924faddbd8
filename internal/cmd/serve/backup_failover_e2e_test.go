package serve_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestBackupFailoverToEmptyHost (issue 19 part 3, second case): no shared
// device store. Host A serves the accounts from its SQLite files and a
// backup is taken while it runs (as cron would); A dies (kill -9); the
// operator restores the backup onto host B's empty data dir and starts it:
// B gains the lease and connects every account without a QR, and messages
// sent before, while A was down, and after are recorded exactly once.
func TestBackupFailoverToEmptyHost(t *testing.T) {
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	common := []string{"WACTL_STORE_BACKEND=firestore", "WACTL_LOCK_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT=" + project,
		"FIRESTORE_EMULATOR_HOST=" + fsemu.Host(t),
		"WACTL_LOCK_TTL=6s", "WACTL_LOCK_RENEW_INTERVAL=1s", "WACTL_LOCK_SAFETY_MARGIN=2s", "WACTL_LOCK_RETRY_INTERVAL=1s"}
	dirA, dirB := t.TempDir(), t.TempDir()
	sess, err := sessions.Open(filepath.Join(dirA, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts := []watest.Account{watest.Pair(t, srv, sess, "40737000001"), watest.Pair(t, srv, sess, "40737000002"), watest.Pair(t, srv, sess, "40737000003")}
	n := len(accts)

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

	var sent []string
	sendAll := func(phase, from string) {
		for i, acct := range accts {
			id, err := srv.SendFromPeer(context.Background(), types.NewJID(from, types.DefaultUserServer), acct.Device.ToNonAD(),
				&waE2E.Message{Conversation: proto.String(fmt.Sprintf("%s %d", phase, i))})
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, id)
		}
	}

	a := serve(t, srv, dirA, append(append([]string{}, common...), "INSTANCE_ID=host-a")...)
	a.waitConnected(n, 30*time.Second)
	sendAll("before", "40700000033")
	waitRecordedOnce(t, client, sent...)
	backup := filepath.Join(t.TempDir(), "wactl.age")
	wactl(dirA, "sessions", "backup", "--out", backup, "--recipient", id.Recipient().String())

	a.cmd.Process.Kill()
	<-a.exited
	sendAll("while A is down", "40700000033")
	wactl(dirB, "sessions", "restore", backup, "--identity", keyFile)
	start := time.Now()
	b := serve(t, srv, dirB, append(append([]string{}, common...), "INSTANCE_ID=host-b")...)
	m := b.waitConnected(n, 40*time.Second)
	t.Logf("host B (restored from the backup) connected %d accounts %s after it started", n, time.Since(start).Round(time.Millisecond))
	if m["waMode"] != "active" || m["needs_qr"] != float64(0) {
		t.Fatalf("B: %v", m)
	}
	sendAll("after", "40700000033")
	sendAll("after, new peer", "40700000034")
	waitRecordedOnce(t, client, sent...)
	for _, acct := range accts {
		if c := srv.MaxConcurrent(acct.Device); c != 1 {
			t.Fatalf("%s: %d connections at once", acct.ID, c)
		}
	}
}
