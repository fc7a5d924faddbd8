package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// TestReAddedAccountSurvivesFailover (issue 22 item 2) with the real
// daemon on the Firestore emulator: add, delete, then add the same phone
// again on the ACTIVE instance; the PASSIVE instance lists it, and after
// kill -9 of the ACTIVE one the new ACTIVE instance lists it and counts it
// towards the account limit.
func TestReAddedAccountSurvivesFailover(t *testing.T) {
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	common := []string{"WACTL_STORE_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT=" + project, "FIRESTORE_EMULATOR_HOST=" + fsemu.Host(t),
		"WACTL_API_SERVICE_TOKEN=" + token, "WACTL_API_MAX_ACCOUNTS=1",
		"WACTL_LOCK_TTL=6s", "WACTL_LOCK_RENEW_INTERVAL=1s", "WACTL_LOCK_SAFETY_MARGIN=2s", "WACTL_LOCK_RETRY_INTERVAL=1s"}
	a := serve(t, srv, t.TempDir(), common...)
	watest.Eventually(t, 30*time.Second, "A ACTIVE", func() bool { m := a.health(); return m != nil && m["waMode"] == "active" })
	b := serve(t, srv, t.TempDir(), append(common, "INSTANCE_ID=host-b")...)
	watest.Eventually(t, 30*time.Second, "B PASSIVE", func() bool { m := b.health(); return m != nil && m["waMode"] == "passive" })

	ctx := context.Background()
	add := func() string {
		t.Helper()
		code, m := a.call(t, "POST", "/api/whatsapp/add-account", map[string]any{"name": "Shop", "phone": "+40777000009"}, nil)
		if code != 200 {
			t.Fatalf("add-account %d %v", code, m)
		}
		return m["account"].(map[string]any)["id"].(string)
	}
	stored := func(id string) map[string]any {
		snap, err := client.Collection("accounts").Doc(id).Get(ctx)
		if err != nil {
			return nil
		}
		return snap.Data()
	}
	id := add()
	watest.Eventually(t, 20*time.Second, "account document", func() bool { return stored(id) != nil })
	if code, m := a.call(t, "DELETE", "/api/whatsapp/accounts/"+id, nil, nil); code != 200 {
		t.Fatalf("delete %d %v", code, m)
	}
	watest.Eventually(t, 10*time.Second, "deleted document", func() bool { d := stored(id); return d != nil && d["deletedAt"] != nil })
	time.Sleep(3 * time.Second) // the user adds the phone again
	add()
	watest.Eventually(t, 20*time.Second, "deletion cleared", func() bool {
		d := stored(id)
		_, deleted := d["deletedAt"]
		return d != nil && !deleted && d["status"] != "deleted"
	})

	listed := func(p *proc) bool {
		_, m := p.call(t, "GET", "/api/whatsapp/accounts", nil, nil)
		list, _ := m["accounts"].([]any)
		for _, x := range list {
			if x.(map[string]any)["id"] == id {
				return true
			}
		}
		return false
	}
	watest.Eventually(t, 15*time.Second, "re-added account listed by the PASSIVE instance", func() bool { return listed(b) })

	a.cmd.Process.Kill()
	<-a.exited
	watest.Eventually(t, 30*time.Second, "B ACTIVE", func() bool { m := b.health(); return m != nil && m["waMode"] == "active" })
	watest.Eventually(t, 15*time.Second, "re-added account listed after the failover", func() bool { return listed(b) })
	code, m := b.call(t, "POST", "/api/whatsapp/add-account", map[string]any{"name": "Other", "phone": "+40777000010"}, nil)
	if code != 429 || m["currentAccounts"] != 1.0 {
		t.Fatalf("the re-added account is not counted in the limit: %d %v", code, m)
	}
}
