package serve_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// BenchmarkRestoreStores restores WACTL_BENCH_ACCOUNTS (default 50) paired
// accounts to connected with the SQLite device store (the baseline) and
// with PostgreSQL (a private cluster on a unix socket, the data dir empty),
// in one run, and reports the RSS once all are connected.
//
//	go test ./internal/cmd/serve -run '^$' -bench RestoreStores -benchtime 3x
func BenchmarkRestoreStores(b *testing.B) {
	n := 50
	if v := os.Getenv("WACTL_BENCH_ACCOUNTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	for _, kind := range []string{sessions.StoreKindSQLite, sessions.StoreKindPostgres} {
		b.Run(kind, func(b *testing.B) {
			srv, err := wafake.New(wafake.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			dataDir := b.TempDir()
			opts := sessions.Options{}
			var env []string
			if kind == sessions.StoreKindPostgres {
				dsn := pgtest.DSN(b)
				opts.Postgres = &sessions.PostgresOptions{DSN: dsn}
				env = []string{"WACTL_SESSIONS_STORE=postgres", "WACTL_SESSIONS_POSTGRES_DSN=" + dsn}
				dataDir = b.TempDir() // pairing wrote nothing here either; serve starts on an empty disk
			}
			sess, err := sessions.Open(filepath.Join(b.TempDir(), "sessions"), opts)
			if kind == sessions.StoreKindSQLite {
				sess, err = sessions.Open(filepath.Join(dataDir, "sessions"), opts)
			}
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				watest.Pair(b, srv, sess, fmt.Sprintf("4076700%04d", i))
			}
			sess.Close()
			b.ResetTimer()
			var rss int64
			for i := 0; i < b.N; i++ {
				start := time.Now()
				p := serve(b, srv, dataDir, env...)
				watest.Eventually(b, 60*time.Second, "all connected", func() bool {
					m := p.health()
					return m != nil && m["connected"] == float64(n)
				})
				b.ReportMetric(time.Since(start).Seconds(), "s-to-all-connected")
				rss = rssKB(p.cmd.Process.Pid)
				p.cmd.Process.Signal(syscall.SIGINT)
				<-p.exited
				if code := p.cmd.ProcessState.ExitCode(); code != 0 {
					b.Fatalf("exit %d after SIGINT", code)
				}
			}
			b.ReportMetric(float64(rss)/1024, "MB-RSS-connected")
			b.ReportMetric(float64(n), "accounts")
		})
	}
}
