package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSessionsStoreDefaultsToSQLite(t *testing.T) {
	c := mustLoad(t, opts(env(), nil)).Config
	if c.Sessions.Store != "sqlite" || c.Sessions.PostgresMaxConns != 8 || c.Sessions.PostgresTimeout != 15*time.Second || c.Sessions.PostgresDSN != "" {
		t.Fatalf("defaults: %+v", c.Sessions)
	}
}

func TestSessionsPostgresDSNFromFileIsASecret(t *testing.T) {
	dsn := "postgres://wactl:s3cret-pass@db.internal/wactl"
	l := mustLoad(t, opts(env("WACTL_SESSIONS_STORE", "postgres", "WACTL_SESSIONS_POSTGRES_DSN_FILE", "/run/creds/dsn"),
		map[string]string{"/run/creds/dsn": dsn + "\n"}))
	if l.Config.Sessions.Store != "postgres" || l.Config.Sessions.PostgresDSN != dsn {
		t.Fatalf("got %+v", l.Config.Sessions)
	}
	for _, e := range l.Entries() {
		if e.Key == "sessions.postgres_dsn" && strings.Contains(fmt.Sprint(e.Value), "s3cret") {
			t.Fatalf("config show would print the DSN: %+v", e)
		}
	}
}

func TestSessionsStoreValidation(t *testing.T) {
	got := strings.Join(problems(t, opts(env("WACTL_SESSIONS_STORE", "mysql"), nil)), "\n")
	if !strings.Contains(got, `sessions.store: "mysql" is not one of sqlite, postgres`) {
		t.Errorf("bad store: %s", got)
	}
	got = strings.Join(problems(t, opts(env("WACTL_SESSIONS_STORE", "postgres", "WACTL_SESSIONS_POSTGRES_MAX_CONNS", "0",
		"WACTL_SESSIONS_POSTGRES_TIMEOUT", "10ms"), nil)), "\n")
	for _, w := range []string{
		"sessions.postgres_dsn: is required with sessions.store: postgres",
		"sessions.postgres_max_conns: 0 is out of range",
		"sessions.postgres_timeout: 10ms is out of range",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}
