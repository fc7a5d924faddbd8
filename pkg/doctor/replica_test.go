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
