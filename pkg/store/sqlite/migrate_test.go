package sqlite

import (
	"bytes"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/storetest"
)

// v2DB creates a database as wactl wrote it at schema version 2: every
// WhatsApp id mapped in message_ids, documents unique per thread.
func v2DB(t *testing.T) (path string, db *sql.DB) {
	t.Helper()
	path = filepath.Join(t.TempDir(), FileName)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, q := range append(migrations[:2:2], `PRAGMA user_version = 2`) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path, db
}

// v2Insert records m the way version 2 did, with its message_ids row.
func v2Insert(t *testing.T, db *sql.DB, m store.Message) int64 {
	t.Helper()
	var tkey, seq int64
	if err := db.QueryRow(sqlEnsureThread, m.ThreadID, m.AccountID).Scan(&tkey); err != nil {
		t.Fatal(err)
	}
	q := strings.Replace(sqlInsertMessage, "ON CONFLICT (doc_id)", "ON CONFLICT (tkey, doc_id)", 1)
	if err := db.QueryRow(q, (&recorder{nowMs: 1, nowArg: int64(1)}).messageArgs(tkey, &m)...).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if m.WAMessageID != "" {
		if _, err := db.Exec(sqlInsertMapping, m.AccountID, m.WAMessageID, seq); err != nil {
			t.Fatal(err)
		}
	}
	return seq
}

// TestMigrationFromV2 opens a version-2 database: the rebuild keeps every
// message and row id, and the old mapping rows keep deduplicating.
func TestMigrationFromV2(t *testing.T) {
	path, db := v2DB(t)
	acc := "account_prod_migrate"
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	in := storetest.Inbound(acc, 1, "3EB0AAAA", at, "hello")
	v2Insert(t, db, in)
	// An app send queued under its requestId and then sent as 3EB0BBBB:
	// only the mapping row leads from the WhatsApp id to the document.
	sent := storetest.Inbound(acc, 2, "3EB0BBBB", at.Add(time.Second), "from the app")
	sent.DocID, sent.Direction, sent.Status = "req-123", "outbound", "sent"
	sentSeq := v2Insert(t, db, sent)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var logged bytes.Buffer
	s, err := Open(t.Context(), Options{Path: path, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatalf("open a version-2 database: %v", err)
	}
	defer s.Close()
	if !strings.Contains(logged.String(), `msg="upgrading the embedded store's schema" from_version=2 to_version=3 messages=2`) ||
		!strings.Contains(logged.String(), `msg="schema upgraded" version=3`) {
		t.Errorf("the upgrade was not logged:\n%s", logged.String())
	}
	var v int
	var check string
	if err := s.rdb.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
	}
	if err := s.rdb.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
	for id, doc := range map[string]string{"3EB0AAAA": in.DocID, "3EB0BBBB": "req-123"} {
		m, err := s.FindMessage(t.Context(), acc, id)
		if err != nil || m.DocID != doc {
			t.Fatalf("FindMessage(%s) = %s, %v; want %s", id, m.DocID, err, doc)
		}
	}
	// Redeliveries after the upgrade find the old documents.
	if o, err := s.RecordMessage(t.Context(), in); err != nil || o == store.Wrote {
		t.Fatalf("redelivery after migration: %v, %v", o, err)
	}
	echo := storetest.Inbound(acc, 2, "3EB0BBBB", at.Add(time.Second), "from the app")
	echo.Direction, echo.Status = "outbound", "read"
	if o, err := s.RecordMessage(t.Context(), echo); err != nil || o != store.Updated {
		t.Fatalf("echo after migration: %v, %v; want updated", o, err)
	}
	m, err := s.FindMessage(t.Context(), acc, "3EB0BBBB")
	if err != nil || m.Status != "read" {
		t.Fatalf("echo merged into %+v, %v", m, err)
	}
	var n, seq int64
	if err := s.rdb.QueryRow(`SELECT count(*), (SELECT seq FROM messages WHERE doc_id = 'req-123') FROM messages`).Scan(&n, &seq); err != nil || n != 2 || seq != sentSeq {
		t.Fatalf("%d messages, app document at seq %d (%v); want 2 and seq %d kept", n, seq, err, sentSeq)
	}
	// New messages are found without a mapping row of their own.
	fresh := storetest.Inbound(acc, 1, "3EB0CCCC", at.Add(time.Minute), "new")
	if o, err := s.RecordMessage(t.Context(), fresh); err != nil || o != store.Wrote {
		t.Fatalf("new message: %v, %v", o, err)
	}
	if err := s.rdb.QueryRow(`SELECT count(*) FROM message_ids WHERE wa_message_id = '3EB0CCCC'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d mapping rows for a derived document, want 0 (%v)", n, err)
	}
	if m, err := s.FindMessage(t.Context(), acc, "3EB0CCCC"); err != nil || m.DocID != fresh.DocID {
		t.Fatalf("FindMessage(new) = %s, %v", m.DocID, err)
	}
}

// TestMigrationRefusesSharedDocID: a document id in two threads cannot be
// made unique without choosing a message to lose, so the upgrade stops
// with the database untouched.
func TestMigrationRefusesSharedDocID(t *testing.T) {
	path, db := v2DB(t)
	acc := "account_prod_migrate"
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	a := storetest.Inbound(acc, 1, "3EB0AAAA", at, "one")
	b := storetest.Inbound(acc, 2, "3EB0BBBB", at, "two")
	b.DocID = a.DocID
	v2Insert(t, db, a)
	v2Insert(t, db, b)
	db.Close()

	_, err := Open(t.Context(), Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "share a document id") {
		t.Fatalf("Open = %v; want the shared document id named", err)
	}
	db, err = sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v, n int
	if err := db.QueryRow(`SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM messages)`).Scan(&v, &n); err != nil || v != 2 || n != 2 {
		t.Fatalf("after the refused upgrade: version %d, %d messages, %v; want 2 and 2", v, n, err)
	}
}
