package serve_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestReplicaOlderThanTheLastTraffic (issue 20 item 6, docs/replica.md):
// with a long replica interval the copy is the one taken right after
// pairing; a burst from known and new peers is recorded by A, and A is
// killed at once, so the copy B restores predates the burst. What the
// same peers send next is asserted here: it is recorded once. From
// inbound-only peers it decrypts at once (the restored receiving chains are
// only behind, and the Signal ratchet derives forward); from the peer that
// accts[0] answered twice after the copy, it needs whatsmeow's retry
// receipts (a fresh session from the peer). The burst itself is not
// delivered again: A acknowledged it. Then the API's reset and delete on B remove
// the accounts' copies, so no host can bring those sessions back.
func TestReplicaOlderThanTheLastTraffic(t *testing.T) {
	h := newReplicaHosts(t)
	h.common = append(h.common, "WACTL_SESSIONS_REPLICA_INTERVAL=10m", "WACTL_API_SERVICE_TOKEN="+token)
	dirA, dirB := t.TempDir(), t.TempDir()
	sessA, err := sessions.Open(filepath.Join(dirA, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts := []watest.Account{watest.Pair(t, h.srv, sessA, "40733100001"), watest.Pair(t, h.srv, sessA, "40733100002")}
	a := h.serve(dirA, "host-a")
	a.waitConnected(2, 30*time.Second)
	for _, acct := range accts {
		watest.Eventually(t, 15*time.Second, "first copy of "+acct.ID, func() bool { return h.generation(acct.ID) == 1 })
	}
	b := h.serve(dirB, "host-b")
	watest.Eventually(t, 20*time.Second, "B PASSIVE", func() bool { m := b.health(); return m != nil && m["waMode"] == "passive" })

	var burst []string
	for i := range 5 {
		if i == 2 || i == 3 {
			// accts[0] answers peer 101 (twice in all, after the copy):
			// each reply turns the double ratchet with a key the copy lacks.
			code, m := a.call(t, "POST", "/api/whatsapp/send-message",
				map[string]any{"accountId": accts[0].ID, "to": "40700000101", "message": fmt.Sprintf("reply %d", i)}, nil)
			if code != 200 && code != 202 {
				t.Fatalf("send-message: %d %v", code, m)
			}
			time.Sleep(time.Second)
		}
		for _, acct := range accts {
			burst = append(burst, h.send("40700000101", acct, fmt.Sprintf("burst %d", i)))
			burst = append(burst, h.send(fmt.Sprintf("4070000020%d", i), acct, fmt.Sprintf("first contact %d", i)))
		}
	}
	h.waitRecordedOnce(burst...)
	a.cmd.Process.Kill()
	<-a.exited
	for _, acct := range accts {
		if g := h.generation(acct.ID); g != 1 {
			t.Fatalf("%s: copy generation %d, the test needs the pre-burst copy (1)", acct.ID, g)
		}
	}
	b.waitConnected(2, 40*time.Second)
	var next []string
	for i := range 5 {
		for _, acct := range accts {
			next = append(next, h.send("40700000101", acct, fmt.Sprintf("after restore %d", i)))
			next = append(next, h.send(fmt.Sprintf("4070000020%d", i), acct, fmt.Sprintf("again %d", i)))
		}
	}
	h.waitRecordedOnce(append(burst, next...)...)
	retries := map[string]int{}
	for _, r := range h.srv.Receipts() {
		if r.Type == "retry" {
			retries[r.Device.User]++
		}
	}
	t.Logf("stale copy: %d burst messages before the kill, %d after the restore, all recorded once; retry receipts by account: %v", len(burst), len(next), retries)
	if retries[accts[0].Device.User] == 0 {
		t.Fatal("no retry receipt: the peer accts[0] replied to after the copy should have needed the retry path")
	}
	if n := retries[accts[1].Device.User]; n != 0 {
		t.Fatalf("%d retry receipts for the account that never replied", n)
	}

	// Reset and delete through the API: the copies go with the sessions.
	if code, m := b.call(t, "POST", "/api/whatsapp/accounts/"+accts[0].ID+"/reset", nil, nil); code != 200 {
		t.Fatalf("reset: %d %v", code, m)
	}
	if code, m := b.call(t, "DELETE", "/api/whatsapp/accounts/"+accts[1].ID, nil, nil); code != 200 {
		t.Fatalf("delete: %d %v", code, m)
	}
	for _, acct := range accts {
		watest.Eventually(t, 15*time.Second, "copy of "+acct.ID+" deleted", func() bool { return h.generation(acct.ID) == 0 })
	}
}
