package sessions_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestBackupAcrossStores: one snapshot format for both device stores. An
// account paired into per-account SQLite files is backed up, restored into
// PostgreSQL (a host with an empty disk), connects from there without a QR
// and receives; a backup taken from PostgreSQL while the account is
// connected restores into an empty SQLite root and connects too. Restoring
// over the connected PostgreSQL account is refused; over a changed one it
// needs --force and keeps the replaced copy.
func TestBackupAcrossStores(t *testing.T) {
	dsn := pgtest.DSN(t)
	srv := wafake.Start(t)
	sqliteA := openRoot(t, filepath.Join(t.TempDir(), "sessions"))
	a := watest.Pair(t, srv, sqliteA, "40755700001")
	c := connect(t, srv, sqliteA, a.ID)
	send(t, srv, "40700000071", a, "m1")
	receive(t, c, "m1")
	c.close()
	key, ids := newKey(t)
	file := filepath.Join(t.TempDir(), "sqlite.age")
	writeBackup(t, sqliteA, file, key)

	pg, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{InstanceID: "pg-host",
		Postgres: &sessions.PostgresOptions{DSN: dsn, MaxConns: 4, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if res := restore(t, pg, file, ids, sessions.RestoreOptions{}); res[0].Outcome != sessions.OutcomeRestored {
		t.Fatalf("SQLite backup into PostgreSQL: %+v", res[0])
	}
	orig, _ := sqliteA.ExportAccount(context.Background(), a.ID)
	inPG, err := pg.ExportAccount(context.Background(), a.ID)
	if err != nil || inPG.DeviceJID != orig.DeviceJID || inPG.RowCount() < orig.RowCount() {
		t.Fatalf("in PostgreSQL: %v, %d rows (SQLite %d)", err, inPG.RowCount(), orig.RowCount())
	}
	if res := restore(t, pg, file, ids, sessions.RestoreOptions{}); res[0].Outcome != sessions.OutcomeUnchanged {
		t.Fatalf("same backup again: %+v", res[0])
	}

	c = connect(t, srv, pg, a.ID)
	send(t, srv, "40700000071", a, "m2")
	receive(t, c, "m2")
	// Backup from PostgreSQL while the account is connected.
	pgFile := filepath.Join(t.TempDir(), "pg.age")
	snap := writeBackup(t, pg, pgFile, key)
	if snap.Accounts[0].SourceStore != "postgres" || !snap.Accounts[0].Paired() {
		t.Fatalf("PostgreSQL snapshot: %+v", snap.Accounts[0].SourceStore)
	}
	if res := restore(t, pg, file, ids, sessions.RestoreOptions{Force: true}); res[0].Outcome != sessions.OutcomeRefusedLive {
		t.Fatalf("restore over the connected PostgreSQL account: %+v", res[0])
	}
	c.close()

	sqliteB := openRoot(t, filepath.Join(t.TempDir(), "b", "sessions"))
	if res := restore(t, sqliteB, pgFile, ids, sessions.RestoreOptions{}); res[0].Outcome != sessions.OutcomeRestored {
		t.Fatalf("PostgreSQL backup into SQLite: %+v", res[0])
	}
	c = connect(t, srv, sqliteB, a.ID)
	send(t, srv, "40700000071", a, "m3")
	receive(t, c, "m3")
	c.close()

	// PostgreSQL's account changed after the first backup (m2): refused
	// without --force, replaced with it, the old copy kept.
	if res := restore(t, pg, file, ids, sessions.RestoreOptions{}); res[0].Outcome != sessions.OutcomeRefusedNewer {
		t.Fatalf("over a changed PostgreSQL account: %+v", res[0])
	}
	res := restore(t, pg, file, ids, sessions.RestoreOptions{Force: true})
	if res[0].Outcome != sessions.OutcomeReplaced || res[0].MovedTo == "" {
		t.Fatalf("forced: %+v", res[0])
	}
	if st, err := os.Stat(res[0].MovedTo); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("replaced copy %s: %v", res[0].MovedTo, err)
	}
	if _, err := sessions.ReadBackup(res[0].MovedTo, nil, true); err != nil {
		t.Fatalf("the replaced copy does not read back: %v", err)
	}
}
