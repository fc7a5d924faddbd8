package serve_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"filippo.io/age"

	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestReplicaPurgeWhileStoppedAndRefusedCopies (issue 20 gaps 2, 3, 4):
//   - `accounts remove --purge` while no daemon runs, Firestore reachable:
//     the copy becomes a tombstone at once;
//   - the same with Firestore unreachable: the purge leaves a tombstone
//     under removed/, and the next start deletes the copy instead of
//     restoring it (before: both accounts came back from their copies);
//   - a copy encrypted to another key is refused and named on /health;
//   - a pointer damaged by hand is reported and rewritten by the ACTIVE
//     host's next copy of that account.
func TestReplicaPurgeWhileStoppedAndRefusedCopies(t *testing.T) {
	h := newReplicaHosts(t)
	ctx := context.Background()
	dir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	online := watest.Pair(t, h.srv, sess, "40733400001")
	offline := watest.Pair(t, h.srv, sess, "40733400002")
	kept := watest.Pair(t, h.srv, sess, "40733400003")
	a := h.serve(dir, "host-a")
	a.waitConnected(3, 30*time.Second)
	for _, acct := range []watest.Account{online, offline, kept} {
		watest.Eventually(t, 15*time.Second, "copy of "+acct.ID, func() bool { return h.generation(acct.ID) >= 1 })
	}
	if code, _ := a.signal(syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d", code)
	}
	keptGen := h.generation(kept.ID)

	remove := func(id string, env ...string) string {
		t.Helper()
		rm := exec.Command(os.Args[0], "accounts", "remove", id, "--purge", "--yes")
		rm.Env = append(append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dir, "STATE_DIRECTORY=" + dir}, h.common...), env...)
		out, err := rm.CombinedOutput()
		if err != nil {
			t.Fatalf("accounts remove --purge %s: %v\n%s", id, err, out)
		}
		return string(out)
	}
	out := remove(online.ID)
	if !strings.Contains(out, "is deleted") || h.generation(online.ID) != 0 {
		t.Fatalf("purge with Firestore reachable: copy at generation %d; output:\n%s", h.generation(online.ID), out)
	}
	out = remove(offline.ID, "FIRESTORE_EMULATOR_HOST=127.0.0.1:1")
	if !strings.Contains(out, "could not be deleted now") || h.generation(offline.ID) == 0 {
		t.Fatalf("purge with Firestore unreachable: copy at generation %d; output:\n%s", h.generation(offline.ID), out)
	}

	// A copy encrypted to another host's key, of an account this host does
	// not have.
	other, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := watest.Pair(t, h.srv, other, "40733400004")
	fid, _ := age.GenerateX25519Identity()
	fkeyPath := filepath.Join(t.TempDir(), "foreign.key")
	os.WriteFile(fkeyPath, []byte(fid.String()+"\n"), 0o600)
	fkey, err := replica.LoadKey(fkeyPath)
	if err != nil {
		t.Fatal(err)
	}
	var epoch atomic.Int64
	epoch.Store(1 << 40) // any holder's epoch is below: this copy is not overwritten by accident
	fsnap, err := other.ExportAccount(ctx, foreign.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.New(replica.Options{Client: h.client, Key: fkey, Fence: func() (int64, bool) { return epoch.Load(), true }}).Put(ctx, fsnap); err != nil {
		t.Fatal(err)
	}
	// The kept account's pointer damaged by hand.
	if _, err := h.client.Collection(replica.Collection).Doc(kept.ID).Update(ctx, []firestore.Update{{Path: "generation", Value: "seven"}}); err != nil {
		t.Fatal(err)
	}

	a = h.serve(dir, "host-a")
	a.waitConnected(1, 30*time.Second)
	watest.Eventually(t, 10*time.Second, "copy of the account purged offline deleted", func() bool { return h.generation(offline.ID) == 0 })
	for _, acct := range []watest.Account{online, offline} {
		if _, err := os.Stat(sess.Dir(acct.ID)); err == nil {
			t.Fatalf("the purged account %s came back from the replica", acct.ID)
		}
	}
	var warn string
	watest.Eventually(t, 10*time.Second, "/health names the refused copy", func() bool {
		m := a.health()
		ws, _ := m["warnings"].([]any)
		for _, w := range ws {
			if s, _ := w.(string); strings.Contains(s, foreign.ID) {
				warn = s
				return true
			}
		}
		return false
	})
	if !strings.Contains(warn, "refused") || !strings.Contains(warn, "another key") {
		t.Fatalf("/health warning: %q", warn)
	}
	r := replica.New(replica.Options{Client: h.client, Key: h.key})
	watest.Eventually(t, 15*time.Second, "damaged pointer rewritten", func() bool {
		_, in, err := r.Get(ctx, kept.ID)
		return err == nil && in.Generation > keptGen
	})
	// The log line follows the pointer's flip (after the old chunks go).
	watest.Eventually(t, 5*time.Second, "the damaged pointer reported and its repair logged", func() bool {
		l := a.log()
		return strings.Contains(l, "pointer document is damaged") && strings.Contains(l, "pointer document was damaged; rewritten")
	})
}
