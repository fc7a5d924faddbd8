package doctor

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/pkg/sessions"
)

func TestPGSessionsSkippedWithoutDSN(t *testing.T) {
	env := testEnv(t, nil)
	env.Offline = false
	wantStatus(t, runCheck(t, env, "sessions.postgres"), Skip, "no PostgreSQL device store")
}

func TestPGSessionsUnreachableFailsWhenInUse(t *testing.T) {
	env := testEnv(t, map[string]string{"WACTL_SESSIONS_STORE": "postgres",
		"WACTL_SESSIONS_POSTGRES_DSN": "postgres://wactl:hunter2@127.0.0.1:1/wactl?connect_timeout=2", "WACTL_SESSIONS_POSTGRES_TIMEOUT": "2s"})
	env.Offline = false
	r := runCheck(t, env, "sessions.postgres")
	wantStatus(t, r, Fail, "PostgreSQL device store")
	if evidence(r, "reachable") != "NO" || strings.Contains(r.Summary+strings.Join(r.Notes, ""), "hunter2") {
		t.Fatalf("%+v", r)
	}
}

// Doctor names the schema versions and the accounts each store has: one
// left in the SQLite dir while sessions.store is postgres is a warning with
// the migrate command as the fix.
func TestPGSessionsReportsSchemaAndAccountsPerStore(t *testing.T) {
	dsn := pgtest.DSN(t)
	env := testEnv(t, map[string]string{"WACTL_SESSIONS_STORE": "postgres", "WACTL_SESSIONS_POSTGRES_DSN": dsn})
	env.Offline = false
	const inPG, inLite = "account_prod_0123456789abcdef0123456789abcdef", "account_prod_fedcba9876543210fedcba9876543210"

	// Before anything opened the store: reachable, no tables yet.
	r := runCheck(t, env, "sessions.postgres")
	wantStatus(t, r, OK, "reachable")
	if !strings.HasPrefix(evidence(r, "whatsmeow_schema"), "0 ") {
		t.Fatalf("fresh database: %+v", r.Evidence)
	}

	pg, err := sessions.Open(env.Config.Sessions.Path, sessions.Options{Postgres: &sessions.PostgresOptions{DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Create(sessions.NewAccount{ID: inPG}); err != nil {
		t.Fatal(err)
	}
	lite, err := sessions.Open(filepath.Join(env.Config.Sessions.Path), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lite.Create(sessions.NewAccount{ID: inLite}); err != nil {
		t.Fatal(err)
	}
	r = runCheck(t, env, "sessions.postgres")
	wantStatus(t, r, Warn, "only in the SQLite sessions dir")
	want := map[string]string{"reachable": "YES", "postgres_accounts": "1", "sqlite_only": "1", "postgres_only": "1", "in_both": "0",
		"whatsmeow_schema": func() string {
			v := sessions.WhatsmeowSchemaVersion()
			return strconv.Itoa(v) + " (this wactl: " + strconv.Itoa(v) + ")"
		}()}
	for k, v := range want {
		if got := evidence(r, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(r.Fixes) != 1 || r.Fixes[0].Commands[0] != "wactl sessions migrate --to postgres" {
		t.Fatalf("fixes: %+v", r.Fixes)
	}
}
