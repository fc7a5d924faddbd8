package audit_test

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// peakRSS resets the kernel's high-water mark of this process's resident
// set, and returns a function reading it (VmHWM) in MB.
func peakRSS(b *testing.B) func() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS: %v", err)
	}
	return func() float64 {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return 0
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				return float64(kb) / 1024
			}
		}
		return 0
	}
}

// BenchmarkEmbeddedAudit1M audits 1,000,000 messages in 1,000 threads, 10%
// of them duplicates, of an embedded store (target: ≤ 3 s, ≤ 150 MB RSS).
// Sub-benchmarks, in one run over one database: baseline is the previous
// twelve-column scan, scan the current one; tsindex repeats both after
// adding the store's index on ts_client_ms (messages_by_ts); limit500
// is the default --limit over the whole table.
func BenchmarkEmbeddedAudit1M(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "wactl.db")
	// WACTL_AUDIT_BENCH_DB keeps the database for inspecting query plans.
	if p := os.Getenv("WACTL_AUDIT_BENCH_DB"); p != "" {
		path = p
	}
	if err := audittest.CreateSQLite(ctx, path); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	base := now.Add(-24 * time.Hour).UnixMilli()
	for _, q := range []string{
		// Measured first as stores before the store's ts_client_ms
		// index (migration messages_by_ts), then with it.
		`DROP INDEX IF EXISTS messages_by_ts`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000)
		 INSERT INTO threads (id, account_id) SELECT 'account_prod_x__' || i || '@s.whatsapp.net', 'account_prod_x' FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 999999)
		 INSERT INTO messages (tkey, thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, normalized_phone,
		   peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw, provider_message_id,
		   client_message_id, status, message_type, media_type, ts_client_ms, source, stable_key_hash, fingerprint_hash,
		   created_at_ms, ingested_at_ms, updated_at_ms)
		 SELECT i % 1000 + 1, 'account_prod_x__' || (i % 1000 + 1) || '@s.whatsapp.net', printf('%024x', i), 'account_prod_x', '', '', '', '', '',
		   'user', 0, '', '', 'inbound', 'message body ' || i, printf('3EB0%016X', i), '', printf('3EB0%016X', i), '', 'delivered', 'text', '',
		   ` + strconv.FormatInt(base, 10) + ` + (i % 900000) * 50, 'realtime', printf('%08x', i % 900000), printf('%08x', i), 0, 0, 0 FROM n`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	// The daemon's store checkpoints its WAL; a million rows left in the
	// WAL would measure WAL lookups instead.
	checkpoint := func() {
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
	}
	checkpoint()
	all := audit.Selection{Window: 48 * time.Hour, Limit: 1_000_000, Key: audit.KeyAuto, Now: now}
	small := audit.Selection{Window: 48 * time.Hour, Limit: 500, Key: audit.KeyAuto, Now: now}
	run := func(name string, baseline bool, sel audit.Selection, wantDocs, wantDups int) {
		b.Run(name, func(b *testing.B) {
			e, err := audit.OpenEmbedded(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			var src audit.Source = e
			if baseline {
				src = &audit.BaselineEmbedded{Embedded: e}
			}
			rss := peakRSS(b)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := audit.Run(ctx, src, audit.Options{Selection: sel})
				if err != nil {
					b.Fatal(err)
				}
				if r.TotalDocs != wantDocs || (wantDups >= 0 && r.DuplicatesCount != wantDups) {
					b.Fatalf("totalDocs=%d duplicatesCount=%d", r.TotalDocs, r.DuplicatesCount)
				}
			}
			b.StopTimer()
			// CPU seconds per audit: on a shared, oversubscribed machine
			// wall time measures the neighbours; the CPU time is what the
			// audit costs.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(rss(), "peakRSS-MB")
		})
	}
	run("baseline", true, all, 1_000_000, 100_000)
	run("scan", false, all, 1_000_000, 100_000)
	run("baseline/limit500", true, small, 500, -1)
	run("scan/limit500", false, small, 500, -1)
	if _, err := db.Exec(`CREATE INDEX messages_by_ts ON messages (ts_client_ms DESC)`); err != nil {
		b.Fatal(err)
	}
	checkpoint()
	run("tsindex/baseline", true, all, 1_000_000, 100_000)
	run("tsindex/scan", false, all, 1_000_000, 100_000)
	run("tsindex/baseline/limit500", true, small, 500, -1)
	run("tsindex/scan/limit500", false, small, 500, -1)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
