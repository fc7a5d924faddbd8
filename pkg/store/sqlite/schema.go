package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
}

// SchemaVersion is the version a freshly migrated database has.
var SchemaVersion = len(migrations)

func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this wactl knows (%d): upgrade wactl or restore a matching backup", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
		// PRAGMA does not take parameters; v+1 is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
	}
	return nil
}
