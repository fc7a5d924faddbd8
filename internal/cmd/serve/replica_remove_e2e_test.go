package serve_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestReplicaAccountsRemoveWhileStopped (issue 20 item 4): `wactl accounts
// remove` while no daemon runs; the next start does not bring the account
// back from the replica but deletes its copy.
func TestReplicaAccountsRemoveWhileStopped(t *testing.T) {
	h := newReplicaHosts(t)
	dir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept := watest.Pair(t, h.srv, sess, "40733200001")
	gone := watest.Pair(t, h.srv, sess, "40733200002")
	a := h.serve(dir, "host-a")
	a.waitConnected(2, 30*time.Second)
	for _, acct := range []watest.Account{kept, gone} {
		watest.Eventually(t, 15*time.Second, "copy of "+acct.ID, func() bool { return h.generation(acct.ID) >= 1 })
	}
	if code, _ := a.signal(syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // removed/ names have whole seconds
	rm := exec.Command(os.Args[0], "accounts", "remove", gone.ID, "--yes")
	rm.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dir, "STATE_DIRECTORY=" + dir}, h.common...)
	if out, err := rm.CombinedOutput(); err != nil {
		t.Fatalf("accounts remove: %v\n%s", err, out)
	}
	a = h.serve(dir, "host-a")
	a.waitConnected(1, 30*time.Second)
	watest.Eventually(t, 10*time.Second, "copy of the removed account deleted", func() bool { return h.generation(gone.ID) == 0 })
	if _, err := os.Stat(sess.Dir(gone.ID)); err == nil {
		t.Fatal("the removed account came back from the replica")
	}
	if h.generation(kept.ID) == 0 {
		t.Fatal("the kept account's copy was deleted")
	}
}
