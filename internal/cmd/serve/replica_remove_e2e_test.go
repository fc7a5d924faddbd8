package serve_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestReplicaAccountsRemoveWhileStopped (issue 20 items 3, 4): `wactl
// accounts remove` while no daemon runs; the next start does not bring the
// account back from the replica but deletes its copy. A logout by WhatsApp
// deletes the copy; an account paired through the daemon is copied at once.
func TestReplicaAccountsRemoveWhileStopped(t *testing.T) {
	h := newReplicaHosts(t)
	h.common = append(h.common, "WACTL_API_SERVICE_TOKEN="+token)
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

	// Logout by WhatsApp (the user unlinks the device on the phone): the
	// copy goes, so no host brings the session back.
	if err := h.srv.Inject(kept.Device, wafake.FaultLogout); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 15*time.Second, "copy of the logged-out account deleted", func() bool { return h.generation(kept.ID) == 0 })

	// Pairing through the daemon (the app's add-account and a QR scan):
	// the copy is written right after, within a poll.
	code, m := a.call(t, "POST", "/api/whatsapp/add-account", map[string]any{"name": "Shop", "phone": "+40733200003"}, nil)
	if code != 200 {
		t.Fatalf("add-account %d %v", code, m)
	}
	id := m["account"].(map[string]any)["id"].(string)
	var qr string
	watest.Eventually(t, 20*time.Second, "QR", func() bool {
		_, m := a.call(t, "GET", "/api/whatsapp/accounts", nil, nil)
		for _, x := range m["accounts"].([]any) {
			if am := x.(map[string]any); am["id"] == id {
				if s, _ := am["qrCode"].(string); s != "" {
					qr = decodeQRPure(t, s)
					return qr != ""
				}
			}
		}
		return false
	})
	if _, err := h.srv.Scan(context.Background(), qr, "40733200003"); err != nil {
		t.Fatal(err)
	}
	paired := time.Now()
	watest.Eventually(t, 15*time.Second, "copy after pairing", func() bool { return h.generation(id) >= 1 })
	t.Logf("copy written %s after the QR scan", time.Since(paired).Round(time.Millisecond))
}
