package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// migrations are applied in order, each in its own transaction; the index
// + 1 is the schema version recorded in PRAGMA user_version. Never edit a
// released migration: append a new one.
var migrations = []string{
	// 1: the whole store.
	`
CREATE TABLE accounts (
	id            TEXT PRIMARY KEY,
	epoch         INTEGER NOT NULL DEFAULT 0,
	data          TEXT NOT NULL
);

-- tkey is the compact key messages are indexed by: the thread id is ~75
-- bytes, and repeating it in every index entry made the identity indexes
-- the main cost of recording (see the benchmarks).
CREATE TABLE threads (
	tkey                 INTEGER PRIMARY KEY,
	id                   TEXT NOT NULL UNIQUE,
	account_id           TEXT NOT NULL,
	client_jid           TEXT NOT NULL DEFAULT '',
	client_jid_raw       TEXT NOT NULL DEFAULT '',
	raw_jid              TEXT NOT NULL DEFAULT '',
	resolved_jid         TEXT NOT NULL DEFAULT '',
	peer_type            TEXT NOT NULL DEFAULT '',
	is_group             INTEGER NOT NULL DEFAULT 0,
	last_message_at_ms   INTEGER NOT NULL DEFAULT 0,
	last_message_text    TEXT NOT NULL DEFAULT '',
	last_message_preview TEXT NOT NULL DEFAULT '',
	last_sender_name     TEXT NOT NULL DEFAULT '',
	last_direction       TEXT NOT NULL DEFAULT '',
	display_name         TEXT NOT NULL DEFAULT '',
	group_subject        TEXT NOT NULL DEFAULT '',
	normalized_phone     TEXT NOT NULL DEFAULT '',
	updated_at_ms        INTEGER NOT NULL DEFAULT 0,
	hidden               INTEGER NOT NULL DEFAULT 0,
	archived             INTEGER NOT NULL DEFAULT 0,
	redirect_to          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX threads_by_account ON threads (account_id, last_message_at_ms DESC);

CREATE TABLE messages (
	seq                 INTEGER PRIMARY KEY,
	tkey                INTEGER NOT NULL REFERENCES threads (tkey),
	thread_id           TEXT NOT NULL,
	doc_id              TEXT NOT NULL,
	account_id          TEXT NOT NULL,
	client_jid          TEXT NOT NULL,
	client_jid_raw      TEXT NOT NULL,
	raw_jid             TEXT NOT NULL,
	resolved_jid        TEXT NOT NULL,
	normalized_phone    TEXT NOT NULL,
	peer_type           TEXT NOT NULL,
	is_group            INTEGER NOT NULL,
	sender_jid          TEXT NOT NULL,
	sender_name         TEXT NOT NULL,
	direction           TEXT NOT NULL,
	body                TEXT NOT NULL,
	wa_message_id       TEXT NOT NULL,
	wa_message_id_raw   TEXT NOT NULL,
	provider_message_id TEXT NOT NULL,
	client_message_id   TEXT NOT NULL,
	status              TEXT NOT NULL,
	message_type        TEXT NOT NULL,
	media_type          TEXT NOT NULL,
	ts_client_ms        INTEGER NOT NULL,
	source              TEXT NOT NULL,
	stable_key_hash     TEXT NOT NULL,
	fingerprint_hash    TEXT NOT NULL,
	created_at_ms       INTEGER NOT NULL,
	ingested_at_ms      INTEGER NOT NULL,
	updated_at_ms       INTEGER NOT NULL,
	delivered_at_ms     INTEGER NOT NULL DEFAULT 0,
	read_at_ms          INTEGER NOT NULL DEFAULT 0,
	edited              INTEGER NOT NULL DEFAULT 0,
	revoked             INTEGER NOT NULL DEFAULT 0,
	is_duplicate        INTEGER NOT NULL DEFAULT 0,
	duplicate_of        TEXT NOT NULL DEFAULT '',
	-- One document per (thread, document id); tkey stands for the thread id 1:1.
	UNIQUE (tkey, doc_id)
);
-- Thread reads and strong dedupe (fingerprint within a thread).
CREATE INDEX messages_by_thread ON messages (tkey, ts_client_ms DESC);
-- The inbox: newest messages of an account across threads in one range scan.
CREATE INDEX messages_by_account ON messages (account_id, ts_client_ms DESC);

-- message_ids/<accountId>__<waMessageId>: the identity of a WhatsApp
-- message, pointing at its one document (thread and doc id via seq).
CREATE TABLE message_ids (
	account_id    TEXT NOT NULL,
	wa_message_id TEXT NOT NULL,
	seq           INTEGER NOT NULL REFERENCES messages (seq),
	PRIMARY KEY (account_id, wa_message_id)
) WITHOUT ROWID;

CREATE TABLE counters (
	account_id            TEXT PRIMARY KEY,
	dedupe_wrote          INTEGER NOT NULL DEFAULT 0,
	dedupe_skipped        INTEGER NOT NULL DEFAULT 0,
	dedupe_strong_skipped INTEGER NOT NULL DEFAULT 0,
	history_wrote         INTEGER NOT NULL DEFAULT 0,
	history_skipped       INTEGER NOT NULL DEFAULT 0,
	history_last_run_ms   INTEGER NOT NULL DEFAULT 0,
	history_last_batch    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outbox (
	request_id          TEXT PRIMARY KEY,
	account_id          TEXT NOT NULL,
	to_jid              TEXT NOT NULL,
	thread_id           TEXT NOT NULL,
	client_message_id   TEXT NOT NULL,
	body                TEXT NOT NULL,
	status              TEXT NOT NULL,
	attempt_count       INTEGER NOT NULL DEFAULT 0,
	next_attempt_ms     INTEGER NOT NULL DEFAULT 0,
	created_ms          INTEGER NOT NULL,
	updated_ms          INTEGER NOT NULL,
	created_by_uid      TEXT NOT NULL,
	claimed_by          TEXT NOT NULL DEFAULT '',
	lease_until_ms      INTEGER NOT NULL DEFAULT 0,
	claim_epoch         INTEGER NOT NULL DEFAULT 0,
	provider_message_id TEXT NOT NULL DEFAULT '',
	sent_ms             INTEGER NOT NULL DEFAULT 0,
	last_error          TEXT NOT NULL DEFAULT '',
	failed_ms           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
CREATE INDEX outbox_leases ON outbox (status, lease_until_ms);
`,
	// 2: cross-account scans by message time (wactl audit over every
	// account) walk this index instead of sorting the whole table.
	`
CREATE INDEX messages_by_ts ON messages (ts_client_ms DESC);
`,
	// 3: a message document is found by its document id alone, and the
	// message_ids table keeps only aliases. A document id is unique without
	// its thread: dedupe.MessageDocID hashes the account and the WhatsApp
	// id, and an app-queued send's id is its requestId (the outbox key).
	// So the WhatsApp id of a recorded message is found through its derived
	// document id, and only a WhatsApp id whose document has another id (an
	// app send's echo, a strong-dedupe twin) needs a message_ids row. That
	// leaves one randomly ordered index per message instead of two — on a
	// large history sync the random index pages were most of what every
	// commit wrote. Rows written by earlier versions stay valid aliases.
	// SQLite cannot drop a table constraint, so the table is rebuilt (the
	// documented procedure: foreign keys off, copy, drop, rename, check).
	`
CREATE TABLE messages_v3 (
	seq                 INTEGER PRIMARY KEY,
	tkey                INTEGER NOT NULL REFERENCES threads (tkey),
	thread_id           TEXT NOT NULL,
	doc_id              TEXT NOT NULL UNIQUE,
	account_id          TEXT NOT NULL,
	client_jid          TEXT NOT NULL,
	client_jid_raw      TEXT NOT NULL,
	raw_jid             TEXT NOT NULL,
	resolved_jid        TEXT NOT NULL,
	normalized_phone    TEXT NOT NULL,
	peer_type           TEXT NOT NULL,
	is_group            INTEGER NOT NULL,
	sender_jid          TEXT NOT NULL,
	sender_name         TEXT NOT NULL,
	direction           TEXT NOT NULL,
	body                TEXT NOT NULL,
	wa_message_id       TEXT NOT NULL,
	wa_message_id_raw   TEXT NOT NULL,
	provider_message_id TEXT NOT NULL,
	client_message_id   TEXT NOT NULL,
	status              TEXT NOT NULL,
	message_type        TEXT NOT NULL,
	media_type          TEXT NOT NULL,
	ts_client_ms        INTEGER NOT NULL,
	source              TEXT NOT NULL,
	stable_key_hash     TEXT NOT NULL,
	fingerprint_hash    TEXT NOT NULL,
	created_at_ms       INTEGER NOT NULL,
	ingested_at_ms      INTEGER NOT NULL,
	updated_at_ms       INTEGER NOT NULL,
	delivered_at_ms     INTEGER NOT NULL DEFAULT 0,
	read_at_ms          INTEGER NOT NULL DEFAULT 0,
	edited              INTEGER NOT NULL DEFAULT 0,
	revoked             INTEGER NOT NULL DEFAULT 0,
	is_duplicate        INTEGER NOT NULL DEFAULT 0,
	duplicate_of        TEXT NOT NULL DEFAULT ''
);
INSERT INTO messages_v3 SELECT ` + messageColumnsV1 + ` FROM messages ORDER BY seq;
DROP TABLE messages;
ALTER TABLE messages_v3 RENAME TO messages;
CREATE INDEX messages_by_thread ON messages (tkey, ts_client_ms DESC);
CREATE INDEX messages_by_account ON messages (account_id, ts_client_ms DESC);
CREATE INDEX messages_by_ts ON messages (ts_client_ms DESC);
`,
}

// messageColumnsV1 lists the messages table's columns in their order; the
// rebuild in migration 3 copies them by name.
const messageColumnsV1 = `seq, tkey, thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid,
	normalized_phone, peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw,
	provider_message_id, client_message_id, status, message_type, media_type, ts_client_ms, source, stable_key_hash,
	fingerprint_hash, created_at_ms, ingested_at_ms, updated_at_ms, delivered_at_ms, read_at_ms, edited, revoked,
	is_duplicate, duplicate_of`

// SchemaVersion is the version a freshly migrated database has.
var SchemaVersion = len(migrations)

func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	// One connection for the whole run: PRAGMA foreign_keys is per
	// connection, cannot change inside a transaction, and must be off while
	// a table is rebuilt (dropping the old table would otherwise check
	// every reference to it).
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var v int
	if err := c.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this wactl knows (%d): upgrade wactl or restore a matching backup", v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	if _, err := c.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`) //nolint:errcheck // the connection is reused
	// A fresh file migrates in milliseconds; an existing one may rebuild
	// the messages table (migration 3: ~20 s per million messages here),
	// which an operator watching a slow start should see.
	var rows int64
	if v > 0 {
		if err := c.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM messages`).Scan(&rows); err != nil {
			return fmt.Errorf("size the messages table: %w", err)
		}
	}
	for ; v < len(migrations); v++ {
		start := time.Now()
		if rows > 0 {
			log.Info("upgrading the embedded store's schema", "from_version", v, "to_version", v+1, "messages", rows)
		}
		if err := migrateOne(ctx, c, v); err != nil {
			return err
		}
		if rows > 0 {
			log.Info("schema upgraded", "version", v+1, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// migrateOne applies migration v (0-based) in one transaction that also
// checks the foreign keys it could have broken and records the version.
func migrateOne(ctx context.Context, c *sql.Conn, v int) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: messages_v3.doc_id") {
			return fmt.Errorf("schema migration %d: two messages share a document id in different threads; "+
				"the database was not changed — keep running the previous wactl version and report this: %w", v+1, err)
		}
		return fmt.Errorf("schema migration %d: %w", v+1, err)
	}
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("schema migration %d: %w", v+1, err)
	}
	broken := rows.Next()
	rows.Close()
	if broken {
		return fmt.Errorf("schema migration %d: foreign key check failed; the database was not changed", v+1)
	}
	// PRAGMA does not take parameters; v+1 is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
		return fmt.Errorf("schema migration %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schema migration %d: %w", v+1, err)
	}
	return nil
}
