package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	pdoctor "github.com/wactl/wactl/pkg/doctor"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

// replicaPointerFixState is a replica whose pointer document was damaged by
// hand, so sessions.replica offers "rebuild the damaged pointer documents".
func replicaPointerFixState() fixState {
	return fixState{"replica pointer damaged", []string{"sessions.replica"}, func(t *testing.T) *pdoctor.Env {
		ctx := context.Background()
		client, project := fsemu.NewClient(t)
		keyFile := filepath.Join(t.TempDir(), "replica.key")
		if err := os.WriteFile(keyFile, []byte(testReplicaKey), 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := replica.LoadKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{})
		if err != nil {
			t.Fatal(err)
		}
		acct := watest.Pair(t, wafake.Start(t), sess, "40755310001")
		snap, err := sess.ExportAccount(ctx, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		rep := replica.New(replica.Options{Client: client, Key: key, Fence: func() (int64, bool) { return 3, true }})
		if _, err := rep.Put(ctx, snap); err != nil {
			t.Fatal(err)
		}
		ptr := client.Collection(replica.Collection).Doc(acct.ID)
		if _, err := ptr.Update(ctx, []firestore.Update{{Path: "generation", Value: "one"}}); err != nil {
			t.Fatal(err)
		}
		env := loadEnv(t, map[string]string{"WACTL_LOCK_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": project,
			"FIRESTORE_EMULATOR_HOST": fsemu.Host(t), "WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": keyFile})
		env.Offline = false
		env.Firestore = func(context.Context) (*firestore.Client, error) { return client, nil }
		return env
	}, false, nil, ""}
}
