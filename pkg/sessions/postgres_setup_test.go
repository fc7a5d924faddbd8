package sessions

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/pgtest"
)

// TestPostgresFirstOpenByManyHostsAtOnce (issue 19 part 1: whatsmeow's own
// upgrades, run under a lock): several hosts open an empty database at the
// same moment, as a fleet started together does. Every open succeeds and
// the schema is created once: whatsmeow's and wactl's version tables hold
// one row each. Without the schema advisory lock the racing upgrades fail
// (duplicate tables or version rows).
func TestPostgresFirstOpenByManyHostsAtOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	const hosts = 6
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, hosts)
	stores := make([]*Store, hosts)
	for i := range hosts {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(filepath.Join(t.TempDir(), "sessions"), Options{InstanceID: "host",
				Postgres: &PostgresOptions{DSN: dsn, MaxConns: 2, Timeout: 10 * time.Second}})
		})
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			defer s.Close()
		}
		if errs[i] != nil {
			t.Errorf("host %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		return
	}
	db := stores[0].pg.db
	for _, q := range []string{"SELECT count(*) FROM whatsmeow_version", "SELECT count(*) FROM wactl_version"} {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s: %d rows, %v (want 1)", q, n, err)
		}
	}
}
