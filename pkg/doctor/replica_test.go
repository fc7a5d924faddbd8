package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"
	"filippo.io/age"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

func replicaKeyFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "replica.key")
	if err := os.WriteFile(path, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplicaCheck (issue 20 item 5): recommended with the Firestore lease
// and no PostgreSQL; a loose key file fails with a chmod fix that --fix
// applies; copies encrypted to another host's key fail.
func TestReplicaCheck(t *testing.T) {
	client, project := fsemu.NewClient(t)
	base := map[string]string{"WACTL_LOCK_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": project,
		"FIRESTORE_EMULATOR_HOST": fsemu.Host(t)}

	env := testEnv(t, base)
	r := runCheck(t, env, "sessions.replica")
	wantStatus(t, r, Warn, "every phone needs a new QR")
	if len(r.Fixes) != 1 || !strings.Contains(r.Fixes[0].Commands[0], "age-keygen") {
		t.Fatalf("fixes: %+v", r.Fixes)
	}
	wantStatus(t, runCheck(t, testEnv(t, nil), "sessions.replica"), OK, "not needed")

	loose := replicaKeyFile(t, 0o644)
	vars := map[string]string{"WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": loose}
	for k, v := range base {
		vars[k] = v
	}
	env = testEnv(t, vars)
	r = runCheck(t, env, "sessions.replica")
	wantStatus(t, r, Fail, "chmod 600")
	if len(r.Fixes) != 1 || !r.Fixes[0].Auto {
		t.Fatalf("fixes: %+v", r.Fixes)
	}
	if err := r.Fixes[0].apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, runCheck(t, env, "sessions.replica"), OK, "not checked (--offline)")

	env.Offline = false
	env.Firestore = func(context.Context) (*firestore.Client, error) { return client, nil }
	wantStatus(t, runCheck(t, env, "sessions.replica"), OK, "0 copies")
	if _, err := client.Collection("wa_sessions_v2").Doc("account_prod_0123456789abcdef0123456789abcdef").Set(context.Background(),
		map[string]any{"recipientFingerprint": "00112233445566778899aabbccddeeff", "generation": 1}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, runCheck(t, env, "sessions.replica"), Fail, "give every host the same sessions.replica_key_file")
}

// TestReplicaCheckDamagedPointerAndCopy (issue 20 gaps 3, 4): a pointer
// document damaged by hand fails the check with the repair command, whose
// fix rebuilds it from its chunks; a copy with an altered chunk (what the
// restore refuses) fails the check by name.
func TestReplicaCheckDamagedPointerAndCopy(t *testing.T) {
	ctx := context.Background()
	client, project := fsemu.NewClient(t)
	keyFile := replicaKeyFile(t, 0o600)
	key, err := replica.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := wafake.Start(t)
	sess, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := replica.New(replica.Options{Client: client, Key: key, Fence: func() (int64, bool) { return 3, true }})
	var ids []string
	for _, phone := range []string{"40755300001", "40755300002"} {
		acct := watest.Pair(t, srv, sess, phone)
		snap, err := sess.ExportAccount(ctx, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rep.Put(ctx, snap); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acct.ID)
	}
	env := testEnv(t, map[string]string{"WACTL_LOCK_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": project,
		"FIRESTORE_EMULATOR_HOST": fsemu.Host(t), "WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": keyFile})
	env.Offline = false
	env.Firestore = func(context.Context) (*firestore.Client, error) { return client, nil }
	wantStatus(t, runCheck(t, env, "sessions.replica"), OK, "2 copies, all to this host's key and readable")

	ptr := client.Collection(replica.Collection).Doc(ids[0])
	if _, err := ptr.Update(ctx, []firestore.Update{{Path: "generation", Value: "one"}}); err != nil {
		t.Fatal(err)
	}
	r := runCheck(t, env, "sessions.replica")
	wantStatus(t, r, Fail, "pointer documents are damaged")
	if !strings.Contains(r.Summary+r.Blocking, ids[0]) || len(r.Fixes) != 1 || r.Fixes[0].Commands[0] != "wactl doctor --fix" || !r.Fixes[0].Auto {
		t.Fatalf("damaged pointer: %+v", r)
	}
	if err := r.Fixes[0].apply(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, runCheck(t, env, "sessions.replica"), OK, "2 copies")
	if _, in, err := rep.Get(ctx, ids[0]); err != nil || in.Generation != 1 {
		t.Fatalf("after the fix: %+v %v", in, err)
	}

	// One byte of the second copy's chunk altered.
	chunks, err := client.Collection(replica.Collection).Doc(ids[1]).Collection("chunks").Documents(ctx).GetAll()
	if err != nil || len(chunks) != 1 {
		t.Fatalf("chunks: %d %v", len(chunks), err)
	}
	v, _ := chunks[0].DataAt("data")
	data := append([]byte{}, v.([]byte)...)
	data[len(data)/2] ^= 1
	if _, err := chunks[0].Ref.Update(ctx, []firestore.Update{{Path: "data", Value: data}}); err != nil {
		t.Fatal(err)
	}
	r = runCheck(t, env, "sessions.replica")
	wantStatus(t, r, Fail, "copies are damaged")
	if !strings.Contains(r.Summary+r.Blocking, ids[1]) {
		t.Fatalf("the damaged copy is not named: %+v", r)
	}
}
