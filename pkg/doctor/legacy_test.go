package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/lock"
)

func oldServiceLease(t *testing.T, c *firestore.Client, holder string) {
	t.Helper()
	if _, err := c.Doc(lock.DefaultDocPath).Set(context.Background(), map[string]any{"holderInstanceId": holder,
		"leaseUntil": time.Now().Add(90 * time.Second).UnixMilli(), "acquiredAt": firestore.ServerTimestamp,
		"updatedAt": firestore.ServerTimestamp, "previousHolder": nil,
		// what a wactl that held it before left (the old service merges)
		"holderSession": "s-old", "holderPid": int64(4242), "holderHost": "host-a", "epoch": int64(9)}); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseOldServiceUnderThisID: the old service holds the lease under
// this host's name / this wactl's id (issue 15.1): a warning that names the
// danger, not "held by this instance".
func TestLeaseOldServiceUnderThisID(t *testing.T) {
	t.Parallel()
	for _, holder := range []string{"host-a", "wactl-host-a"} {
		env, client := firestoreEnv(t)
		env.Config.InstanceID = "wactl-host-a"
		oldServiceLease(t, client, holder)
		r := runCheck(t, env, "lease")
		wantStatus(t, r, Warn, "not this wactl")
		if evidence(r, "lockStatus") == string(lock.HeldByThisInstance) || evidence(r, "holder_pid") != "" {
			t.Fatalf("%s: %v", holder, r.Evidence)
		}
	}
}

// TestLeaseStaleOldService: a stopped old service's lease (not renewed for
// longer than its renew interval) blocks takeover: doctor prints the exact
// release command (issue 18.5).
func TestLeaseStaleOldService(t *testing.T) {
	old := legacyRenew
	legacyRenew = 2 * time.Second // Firestore's clock cannot be moved: shorten the interval instead
	defer func() { legacyRenew = old }()
	env, client := firestoreEnv(t)
	env.Config.InstanceID = "wactl-host-a"
	oldServiceLease(t, client, "node-old-1")
	r := runCheck(t, env, "lease")
	if strings.Contains(fixCommands(r), "lease release") {
		t.Fatalf("release offered for a lease renewed just now: %s", fixCommands(r))
	}
	time.Sleep(legacyRenew + 500*time.Millisecond)
	r = runCheck(t, env.Fresh(), "lease")
	wantStatus(t, r, Warn, "has not been renewed")
	if cmds := fixCommands(r); !strings.Contains(cmds, "wactl lease release --holder node-old-1") {
		t.Fatalf("fix: %q", cmds)
	}
}

// TestOldServiceOnHost: the whatsapp-backend unit and a node server.js
// listening on wactl's port are reported.
func TestOldServiceOnHost(t *testing.T) {
	env := testEnv(t, nil)
	env.Config.InstanceID = "host-a"
	cannedSystemctl(env, "LoadState=loaded\nActiveState=inactive\nMainPID=0\nEnvironment=PORT=8080 INSTANCE_ID=%H\nFragmentPath=/etc/systemd/system/whatsapp-backend.service\n", nil)
	root := t.TempDir()
	oldRoot := procRoot
	procRoot = root
	defer func() { procRoot = oldRoot }()
	env.fill()
	r := checkLegacyService(context.Background(), env)
	// One id is no split brain any more (wactl's holder is wactl:host-a,
	// which the old service never takes for its own): a warning about the
	// names, with the fix.
	if r.Status != Warn || !strings.Contains(r.Summary, `instance id "host-a"`) || !strings.Contains(r.Summary, "wactl:host-a") ||
		!strings.Contains(fixCommands(r), "wactl-%H") {
		t.Fatalf("same id: %+v", r)
	}
	env.Config.InstanceID = "wactl-host-a"
	r = checkLegacyService(context.Background(), env)
	if r.Status != Warn || !strings.Contains(r.Summary, "installed") {
		t.Fatalf("installed: %+v", r)
	}
	// node server.js with a socket listening on :8080 (0x1F90).
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "4321", "fd"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "net"), 0o755))
	must(os.WriteFile(filepath.Join(root, "4321", "cmdline"), []byte("/usr/bin/node\x00/opt/whatsapp-backend/server.js\x00"), 0o644))
	must(os.Symlink("socket:[777]", filepath.Join(root, "4321", "fd", "21")))
	must(os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
			"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0\n"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "99", "fd"), 0o755))
	must(os.WriteFile(filepath.Join(root, "99", "cmdline"), []byte("/usr/bin/node\x00other.js\x00"), 0o644))
	r = checkLegacyService(context.Background(), env)
	if r.Status != Fail || !strings.Contains(r.Blocking, "listens on port 8080") || !strings.Contains(evidence(r, "node"), "pid 4321") {
		t.Fatalf("node server.js: %+v", r)
	}
	// Nothing of the old service.
	env2 := testEnv(t, nil)
	env2.fill()
	must(os.RemoveAll(filepath.Join(root, "4321")))
	if r := checkLegacyService(context.Background(), env2); r.Status != OK {
		t.Fatalf("clean host: %+v", r)
	}
}
