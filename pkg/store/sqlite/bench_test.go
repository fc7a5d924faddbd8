package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/storetest"
)

// batchSize is what one whatsmeow history-sync conversation chunk carries,
// roughly; RecordHistory is the batching API under test.
const batchSize = 1000

var benchBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// genMessage is message i of a synthetic sync: 50 chats, realistic bodies,
// and WhatsApp ids as random as real ones (so the mapping index sees
// random inserts, not an append).
func genMessage(acc string, i int) store.Message {
	id := fmt.Sprintf("3EB0%016X", uint64(i)*0x9E3779B97F4A7C15)
	m := storetest.Inbound(acc, i%50, id, benchBase.Add(time.Duration(i)*time.Second),
		fmt.Sprintf("message number %d with a body of ordinary length, as chats have", i))
	m.Source = "history_sync"
	return m
}

func genBatch(acc string, start, n int, buf []store.Message) []store.Message {
	buf = buf[:0]
	for i := start; i < start+n; i++ {
		buf = append(buf, genMessage(acc, i))
	}
	return buf
}

func benchStore(b *testing.B, strong bool) *Store {
	b.Helper()
	s, err := Open(b.Context(), Options{Dir: filepath.Join(b.TempDir(), "data"), StrongDedupe: strong})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// reportRate reports wall-clock messages per second and, since the shared
// 2-core machine is often loaded by other work, messages per CPU-second of
// this process (user+sys) since cpuStart.
func reportRate(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	if used := cpuTime() - cpuStart; used > 0 {
		b.ReportMetric(float64(b.N)/used.Seconds(), "msg/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecordHistory: new messages through RecordHistory, with the
// mapping, thread summaries and counters (the dedupe path).
func BenchmarkRecordHistory(b *testing.B) {
	for _, strong := range []bool{false, true} {
		b.Run(fmt.Sprintf("strong=%v", strong), func(b *testing.B) {
			s := benchStore(b, strong)
			acc := dedupe.AccountIDFromCanonical("", "+40700000001")
			all := genBatch(acc, 0, b.N, nil)
			b.ResetTimer()
			cpu0 := cpuTime()
			for start := 0; start < b.N; start += batchSize {
				if _, err := s.RecordHistory(b.Context(), acc, all[start:min(start+batchSize, b.N)]); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, cpu0)
		})
	}
}

// BenchmarkRecordHistoryRedelivered: the same messages a second time (a
// repeated history sync): every one is looked up and skipped.
func BenchmarkRecordHistoryRedelivered(b *testing.B) {
	s := benchStore(b, false)
	acc := dedupe.AccountIDFromCanonical("", "+40700000001")
	all := genBatch(acc, 0, b.N, nil)
	for start := 0; start < b.N; start += batchSize {
		if _, err := s.RecordHistory(b.Context(), acc, all[start:min(start+batchSize, b.N)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for start := 0; start < b.N; start += batchSize {
		r, err := s.RecordHistory(b.Context(), acc, all[start:min(start+batchSize, b.N)])
		if err != nil || r.Saved != 0 {
			b.Fatal(r, err)
		}
	}
	reportRate(b, cpu0)
}

// BenchmarkRecordMessageParallel: live messages, one call each, from
// concurrent goroutines (group commit shares the fsyncs).
func BenchmarkRecordMessageParallel(b *testing.B) {
	s := benchStore(b, false)
	acc := dedupe.AccountIDFromCanonical("", "+40700000001")
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := genMessage(acc, int(next.Add(1)))
			m.Source = "realtime"
			if _, err := s.RecordMessage(b.Context(), m); err != nil {
				b.Fatal(err)
			}
		}
	})
	reportRate(b, cpu0)
}

// BenchmarkRawInsert is the baseline: the same rows, batched the same way,
// inserted with one prepared statement into a table of the same columns
// without any index, identity check, thread summary or counter; same file
// settings (WAL, synchronous FULL).
func BenchmarkRawInsert(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchRaw(b, false) })
	b.Run("schema", func(b *testing.B) { benchRaw(b, true) })
}

// benchRaw with schema inserts into the store's own messages table (its
// UNIQUE (doc_id) and read indexes), without the mapping,
// thread summaries and counters; without schema into a bare table.
func benchRaw(b *testing.B, schema bool) {
	path := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-32000)&_pragma=wal_autocheckpoint(8000)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	create := `CREATE TABLE messages (
	thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, normalized_phone,
	peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw,
	provider_message_id, client_message_id, status, message_type, media_type, ts_client_ms, source,
	stable_key_hash, fingerprint_hash, created_at_ms, ingested_at_ms, updated_at_ms)`
	cols, vals := "", ""
	if schema {
		if err := migrate(b.Context(), db, slog.Default()); err != nil {
			b.Fatal(err)
		}
		create = ""
		vals = "?,"
		cols = `(tkey, thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, normalized_phone,
	peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw,
	provider_message_id, client_message_id, status, message_type, media_type, ts_client_ms, source,
	stable_key_hash, fingerprint_hash, created_at_ms, ingested_at_ms, updated_at_ms)`
	}
	if create != "" {
		if _, err := db.Exec(create); err != nil {
			b.Fatal(err)
		}
	}
	acc := dedupe.AccountIDFromCanonical("", "+40700000001")
	all := genBatch(acc, 0, b.N, nil)
	// The store's table keys messages by thread key: give the raw insert
	// the same keys (threads created up front, not timed).
	tkeys := map[string]int64{}
	if schema {
		for _, m := range all[:min(50, b.N)] {
			var k int64
			if err := db.QueryRow(`INSERT INTO threads (id, account_id) VALUES (?, ?) RETURNING tkey`, m.ThreadID, acc).Scan(&k); err != nil {
				b.Fatal(err)
			}
			tkeys[m.ThreadID] = k
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for start := 0; start < b.N; start += batchSize {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare(`INSERT INTO messages ` + cols + ` VALUES (` + vals + `?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now().UnixMilli()
		for _, m := range all[start:min(start+batchSize, b.N)] {
			args := []any{m.ThreadID, m.DocID}
			if schema {
				args = []any{tkeys[m.ThreadID], m.ThreadID, m.DocID}
			}
			if _, err := st.Exec(append(args, m.AccountID, m.AccountID, m.ClientJID, m.ClientJIDRaw, m.RawJID, m.ResolvedJID, m.NormalizedPhone,
				m.PeerType, b2i(m.IsGroup), m.SenderJID, m.SenderName, m.Direction, m.Body, m.WAMessageID, m.WAMessageIDRaw,
				m.ProviderMessageID, m.ClientMessageID, m.Status, m.MessageType, m.MediaType, ms(m.TsClient), m.Source,
				m.StableKeyHash, m.FingerprintHash, now, now, now)...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu0)
}

// historySyncPeakHeap records n messages generated batch by batch, as a
// history sync delivers them, and returns the peak Go heap seen after each
// batch (HeapAlloc, after the batch's garbage is collectable) and the
// process's memory obtained from the OS.
func historySyncPeakHeap(tb testing.TB, s *Store, n int) (peakHeap, peakSys uint64) {
	acc := dedupe.AccountIDFromCanonical("", "+40700000002")
	var buf []store.Message
	var st runtime.MemStats
	for start := 0; start < n; start += 500 {
		buf = genBatch(acc, start, min(500, n-start), buf)
		if _, err := s.RecordHistory(tb.Context(), acc, buf); err != nil {
			tb.Fatal(err)
		}
		if start%5000 == 0 {
			runtime.ReadMemStats(&st)
			peakHeap = max(peakHeap, st.HeapAlloc)
			peakSys = max(peakSys, st.Sys)
		}
	}
	runtime.ReadMemStats(&st)
	return max(peakHeap, st.HeapAlloc), max(peakSys, st.Sys)
}

// BenchmarkHistorySync100k reports the memory of a 100,000-message sync.
func BenchmarkHistorySync100k(b *testing.B) {
	for range b.N {
		s := benchStore(b, false)
		heap, sys := historySyncPeakHeap(b, s, 100_000)
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(sys)/(1<<20), "sys-MB")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-rss-MB")
		b.ReportMetric(100_000/b.Elapsed().Seconds()*float64(b.N), "msg/s")
	}
}

// peakRSS is the process's peak resident set (VmHWM), which also counts
// SQLite's own allocations (outside the Go heap with modernc's libc).
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestHistorySyncMemoryBounded: a 100,000-message sync keeps the Go heap
// under 100 MB (memory is bounded by the batch, not the sync's size).
func TestHistorySyncMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 messages; skipped with -short")
	}
	s, err := Open(t.Context(), Options{Dir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	heap, sys := historySyncPeakHeap(t, s, 100_000)
	t.Logf("100,000-message history sync: peak Go heap %.1f MB, Go sys %.1f MB, process peak RSS %.1f MB",
		float64(heap)/(1<<20), float64(sys)/(1<<20), float64(peakRSS())/(1<<20))
	if heap >= 100<<20 {
		t.Fatalf("peak heap %.1f MB, want < 100 MB", float64(heap)/(1<<20))
	}
	c, err := s.Counters(t.Context(), dedupe.AccountIDFromCanonical("", "+40700000002"))
	if err != nil || c.HistoryWrote != 100_000 || c.DedupeWrote != 100_000 {
		t.Fatalf("counters %+v, %v; want 100,000 written", c, err)
	}
}

// BenchmarkIdempotencyReads is the two reads send-message makes before it
// sends, for a new request id (both miss), on a store holding 10,000
// messages: the message mapping of the derived WhatsApp id and the outbox
// item of the key.
func BenchmarkIdempotencyReads(b *testing.B) {
	s := benchStore(b, false)
	ctx := context.Background()
	acc := dedupe.AccountIDFromCanonical("", "+40700000001")
	all := genBatch(acc, 0, 10000, nil)
	for start := 0; start < len(all); start += batchSize {
		if _, err := s.RecordHistory(ctx, acc, all[start:min(start+batchSize, len(all))]); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("FindMessage", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.FindMessage(ctx, acc, fmt.Sprintf("NEW%d", i)); !errors.Is(err, store.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetOutbox", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.GetOutbox(ctx, fmt.Sprintf("key-%d", i)); !errors.Is(err, store.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
}
