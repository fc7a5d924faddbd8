package serve_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestPostgresOutageDegradesAndLosesNothing (issue 19 part 1): PostgreSQL,
// the device store, stops under a serving daemon. /health reports it
// (status error, 503, sessions_dir_writable false) while it is down; a message that arrives meanwhile is recorded exactly
// once after it returns, and so are the ones before and after.
func TestPostgresOutageDegradesAndLosesNothing(t *testing.T) {
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	cluster := pgtest.Start(t)
	dsn := cluster.NewDatabase(t)
	dir := t.TempDir()
	pg, err := sessions.Open(filepath.Join(dir, "sessions"), sessions.Options{Postgres: &sessions.PostgresOptions{DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	accts := []watest.Account{watest.Pair(t, srv, pg, "40735000001"), watest.Pair(t, srv, pg, "40735000002")}
	pg.Close()
	p := serve(t, srv, dir, "WACTL_STORE_BACKEND=firestore", "WACTL_LOCK_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT="+project,
		"FIRESTORE_EMULATOR_HOST="+fsemu.Host(t), "WACTL_SESSIONS_STORE=postgres", "WACTL_SESSIONS_POSTGRES_DSN="+dsn,
		"WACTL_SESSIONS_POSTGRES_TIMEOUT=2s")
	p.waitConnected(2, 30*time.Second)
	send := func(to watest.Account, body string) string {
		t.Helper()
		id, err := srv.SendFromPeer(context.Background(), types.NewJID("40700000055", types.DefaultUserServer), to.Device.ToNonAD(),
			&waE2E.Message{Conversation: proto.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	var sent []string
	for i, a := range accts {
		sent = append(sent, send(a, fmt.Sprintf("before %d", i)))
	}
	waitRecordedOnce(t, client, sent...)

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 30*time.Second, "/health in error (503) while PostgreSQL is down", func() bool {
		m := p.health()
		return m != nil && m["status"] == "error" && m["ok"] == false && m["sessions_dir_writable"] == false
	})
	for i, a := range accts {
		sent = append(sent, send(a, fmt.Sprintf("during %d", i)))
	}
	time.Sleep(2 * time.Second)
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 30*time.Second, "/health healthy again", func() bool {
		m := p.health()
		return m != nil && m["sessions_dir_writable"] == true
	})
	for i, a := range accts {
		sent = append(sent, send(a, fmt.Sprintf("after %d", i)))
	}
	waitRecordedOnce(t, client, sent...)
}
