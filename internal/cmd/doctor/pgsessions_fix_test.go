package doctor_test

import (
	"testing"

	"github.com/wactl/wactl/internal/pgtest"
	pdoctor "github.com/wactl/wactl/pkg/doctor"
	"github.com/wactl/wactl/pkg/sessions"
)

// pgSessionsFixStates drive the sessions.postgres check's fixes (issue 19)
// for TestEveryFixParsesAndWorks: accounts left in the store the
// configuration does not read.
func pgSessionsFixStates() []fixState {
	const id = "account_prod_0123456789abcdef0123456789abcdef"
	return []fixState{
		{"accounts left in the SQLite dir under sessions.store: postgres", []string{"sessions.postgres"}, func(t *testing.T) *pdoctor.Env {
			env := loadEnv(t, map[string]string{"STATE_DIRECTORY": t.TempDir(), "WACTL_SESSIONS_STORE": "postgres",
				"WACTL_SESSIONS_POSTGRES_DSN": pgtest.DSN(t)})
			lite, err := sessions.Open(env.Config.Sessions.Path, sessions.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lite.Create(sessions.NewAccount{ID: id}); err != nil {
				t.Fatal(err)
			}
			return env
		}, false, nil, ""},
		{"accounts only in PostgreSQL under sessions.store: sqlite", []string{"sessions.postgres"}, func(t *testing.T) *pdoctor.Env {
			dsn := pgtest.DSN(t)
			env := loadEnv(t, map[string]string{"STATE_DIRECTORY": t.TempDir(), "WACTL_SESSIONS_POSTGRES_DSN": dsn})
			pg, err := sessions.Open(env.Config.Sessions.Path, sessions.Options{Postgres: &sessions.PostgresOptions{DSN: dsn}})
			if err != nil {
				t.Fatal(err)
			}
			defer pg.Close()
			if _, err := pg.Create(sessions.NewAccount{ID: id}); err != nil {
				t.Fatal(err)
			}
			return env
		}, false, nil, ""},
	}
}
