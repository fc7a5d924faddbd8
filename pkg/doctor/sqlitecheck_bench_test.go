package doctor

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// BenchmarkStoreCheck compares the default (bounded) embedded-store check
// with --deep on a file the size of a store with 1M messages:
//
//	go test ./pkg/doctor -run '^$' -bench StoreCheck -benchtime 5x
func BenchmarkStoreCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	// One million rows of ~300 bytes with two indexes, like the messages
	// table's size on disk.
	for _, q := range []string{
		`PRAGMA journal_mode=WAL`,
		`CREATE TABLE messages(id INTEGER PRIMARY KEY, doc_id TEXT UNIQUE, thread TEXT, ts INTEGER, body BLOB)`,
		`CREATE INDEX messages_thread_ts ON messages(thread, ts)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000000)
		 INSERT INTO messages(doc_id, thread, ts, body) SELECT hex(randomblob(12)), 'thread-' || (i % 500), i, randomblob(240) FROM n`,
		`PRAGMA wal_checkpoint(TRUNCATE)`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	ctx := context.Background()
	b.Run("bounded", func(b *testing.B) {
		for range b.N {
			if _, err := sqliteSanity(ctx, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("deep-quick_check", func(b *testing.B) {
		for range b.N {
			if res, err := quickCheck(ctx, path); err != nil || res != "ok" {
				b.Fatal(res, err)
			}
		}
	})
}
