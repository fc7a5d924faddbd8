package sessions

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wactl/wactl/internal/pgtest"
)

// blockTable holds an ACCESS EXCLUSIVE lock on table from a connection of
// its own, as a stuck migration or a hung administrator session would,
// until the test ends or release is called.
func blockTable(t *testing.T, dsn, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(ctx)
			conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// TestPostgresCallsEndWhenTheServerHangs (issue 19 part 1, "timeouts on
// every call"): with PostgreSQL up but not answering a table (a lock
// held elsewhere), wactl's own calls and whatsmeow's calls through the
// store's pool fail within sessions.postgres_timeout instead of hanging,
// and work again once the table is free.
func TestPostgresCallsEndWhenTheServerHangs(t *testing.T) {
	dsn := pgtest.DSN(t)
	const timeout = time.Second
	s, err := Open(filepath.Join(t.TempDir(), "sessions"), Options{InstanceID: "host",
		Postgres: &PostgresOptions{DSN: dsn, MaxConns: 4, Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const id = "account_prod_0123456789abcdef0123456789abcdef"
	if _, err := s.Create(NewAccount{ID: id, Name: "shop", Phone: "+40712345678"}); err != nil {
		t.Fatal(err)
	}
	// bounded runs call against the blocked table; a call that does not
	// end in time fails the test (the lock is released so it can end).
	bounded := func(what string, release func(), call func() error) {
		t.Helper()
		began := time.Now()
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			took := time.Since(began)
			if err == nil {
				t.Fatalf("%s on a blocked table succeeded after %s", what, took)
			}
			t.Logf("%s on a blocked table failed after %s: %v", what, took.Round(time.Millisecond), err)
		case <-time.After(3 * timeout):
			release()
			<-done
			t.Fatalf("%s on a blocked table still waited after %s (sessions.postgres_timeout %s)", what, 3*timeout, timeout)
		}
		release()
	}

	release := blockTable(t, dsn, "wactl_accounts")
	bounded("wactl's metadata read", release, func() error { _, err := s.Get(id); return err })
	if _, err := s.Get(id); err != nil {
		t.Fatalf("after the lock is gone: %v", err)
	}

	release = blockTable(t, dsn, "whatsmeow_device")
	bounded("whatsmeow's device query", release, func() error {
		_, err := s.pg.container.GetAllDevices(context.Background())
		return err
	})
	if _, err := s.pg.container.GetAllDevices(context.Background()); err != nil {
		t.Fatalf("after the lock is gone: %v", err)
	}
}

// TestPostgresPoolIsBounded (issue 19 part 1, "bounded pools"): however
// many calls wait at once, the store opens at most
// sessions.postgres_max_conns connections for them (plus the one that
// holds the advisory locks).
func TestPostgresPoolIsBounded(t *testing.T) {
	dsn := pgtest.DSN(t)
	const maxConns, callers = 2, 8
	s, err := Open(filepath.Join(t.TempDir(), "sessions"), Options{InstanceID: "host",
		Postgres: &PostgresOptions{DSN: dsn, MaxConns: maxConns, Timeout: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := blockTable(t, dsn, "whatsmeow_device")
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { s.pg.container.GetAllDevices(context.Background()) })
	}
	// Count while the callers wait on the lock (each holds a connection).
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	most := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'wactl'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		most = max(most, n)
	}
	release()
	wg.Wait()
	t.Logf("%d callers waiting at once: at most %d wactl connections (max_conns %d, +1 for the advisory locks)", callers, most, maxConns)
	if most > maxConns+1 {
		t.Fatalf("%d wactl connections with sessions.postgres_max_conns %d", most, maxConns)
	}
	if most < maxConns {
		t.Fatalf("only %d wactl connections: the callers did not wait at once, the test proves nothing", most)
	}
}
