package sqlite

import (
	"database/sql"
	"fmt"
)

// Statements of the hot write path, prepared once on the writer connection.
const (
	// sqlGetMapping finds the document of a WhatsApp id: an alias in
	// message_ids first (an id whose document has another id), else the
	// document with the id's derived document id (see migration 3).
	sqlGetMapping = `SELECT coalesce(
	(SELECT seq FROM message_ids WHERE account_id = ?1 AND wa_message_id = ?2),
	(SELECT seq FROM messages WHERE doc_id = ?3))`
	sqlInsertMapping = `INSERT INTO message_ids (account_id, wa_message_id, seq) VALUES (?, ?, ?)`
	// ensureThread creates the thread row on the first message and returns
	// its key; the summary is written by sqlUpsertThread at the end.
	sqlEnsureThread = `INSERT INTO threads (id, account_id) VALUES (?, ?)
ON CONFLICT (id) DO UPDATE SET id = excluded.id RETURNING tkey`
	sqlThreadKey = `SELECT tkey FROM threads WHERE id = ?`
	sqlDocSeq    = `SELECT seq FROM messages WHERE doc_id = ?`

	sqlInsertMessage = `INSERT INTO messages (
	tkey, thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, normalized_phone,
	peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw,
	provider_message_id, client_message_id, status, message_type, media_type, ts_client_ms, source,
	stable_key_hash, fingerprint_hash, created_at_ms, ingested_at_ms, updated_at_ms)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (doc_id) DO NOTHING RETURNING seq`

	// statusRank orders outbound statuses: queued < sent < failed <
	// delivered < read. failed (a send given up for good) is terminal for
	// the sender but a later delivered/read receipt still wins: WhatsApp
	// proved the message arrived. Unknown statuses rank lowest.
	statusRankOld = `(CASE status WHEN 'queued' THEN 1 WHEN 'sent' THEN 2 WHEN 'failed' THEN 3 WHEN 'delivered' THEN 4 WHEN 'read' THEN 5 ELSE 0 END)`
	statusRankNew = `(CASE ?5 WHEN 'queued' THEN 1 WHEN 'sent' THEN 2 WHEN 'failed' THEN 3 WHEN 'delivered' THEN 4 WHEN 'read' THEN 5 ELSE 0 END)`

	// sqlMergeMessage folds a repeat delivery into the existing document:
	// ids the document lacks are filled in, the status only moves forward,
	// nothing else changes. It matches no row when there is nothing new.
	sqlMergeMessage = `UPDATE messages SET
	wa_message_id       = CASE WHEN wa_message_id = '' THEN ?1 ELSE wa_message_id END,
	wa_message_id_raw   = CASE WHEN wa_message_id_raw = '' THEN ?2 ELSE wa_message_id_raw END,
	provider_message_id = CASE WHEN provider_message_id = '' THEN ?3 ELSE provider_message_id END,
	client_message_id   = CASE WHEN client_message_id = '' THEN ?4 ELSE client_message_id END,
	status              = CASE WHEN ` + statusRankNew + ` > ` + statusRankOld + ` THEN ?5 ELSE status END,
	stable_key_hash     = CASE WHEN stable_key_hash = '' THEN ?6 ELSE stable_key_hash END,
	updated_at_ms       = ?7
WHERE seq = ?8 AND (
	(wa_message_id = '' AND ?1 <> '') OR (wa_message_id_raw = '' AND ?2 <> '') OR
	(provider_message_id = '' AND ?3 <> '') OR (client_message_id = '' AND ?4 <> '') OR
	` + statusRankNew + ` > ` + statusRankOld + ` OR (stable_key_hash = '' AND ?6 <> ''))`

	// Strong dedupe: the fingerprint hash is only 32 bits, so the
	// fingerprint's own inputs that are stored (time, direction, type)
	// must match too; a true fingerprint match always satisfies them.
	sqlStrongMatch = `SELECT seq FROM messages
WHERE tkey = (SELECT tkey FROM threads WHERE id = ?) AND ts_client_ms = ? AND fingerprint_hash = ?
	AND direction = ? AND message_type = ? AND doc_id <> ?
LIMIT 1`

	sqlUpsertThread = `INSERT INTO threads (
	id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, peer_type, is_group,
	last_message_at_ms, last_message_text, last_message_preview, last_sender_name, last_direction,
	display_name, group_subject, normalized_phone, updated_at_ms)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET
	client_jid           = CASE WHEN threads.client_jid = '' THEN excluded.client_jid ELSE threads.client_jid END,
	client_jid_raw       = CASE WHEN threads.client_jid_raw = '' THEN excluded.client_jid_raw ELSE threads.client_jid_raw END,
	raw_jid              = CASE WHEN threads.raw_jid = '' THEN excluded.raw_jid ELSE threads.raw_jid END,
	resolved_jid         = CASE WHEN threads.resolved_jid = '' THEN excluded.resolved_jid ELSE threads.resolved_jid END,
	peer_type            = CASE WHEN threads.peer_type = '' THEN excluded.peer_type ELSE threads.peer_type END,
	is_group             = MAX(threads.is_group, excluded.is_group),
	last_message_text    = CASE WHEN excluded.last_message_at_ms > threads.last_message_at_ms THEN excluded.last_message_text ELSE threads.last_message_text END,
	last_message_preview = CASE WHEN excluded.last_message_at_ms > threads.last_message_at_ms THEN excluded.last_message_preview ELSE threads.last_message_preview END,
	last_sender_name     = CASE WHEN excluded.last_message_at_ms > threads.last_message_at_ms THEN excluded.last_sender_name ELSE threads.last_sender_name END,
	last_direction       = CASE WHEN excluded.last_message_at_ms > threads.last_message_at_ms THEN excluded.last_direction ELSE threads.last_direction END,
	last_message_at_ms   = MAX(threads.last_message_at_ms, excluded.last_message_at_ms),
	display_name         = CASE WHEN excluded.display_name <> '' THEN excluded.display_name ELSE threads.display_name END,
	group_subject        = CASE WHEN excluded.group_subject <> '' THEN excluded.group_subject ELSE threads.group_subject END,
	normalized_phone     = CASE WHEN excluded.normalized_phone <> '' THEN excluded.normalized_phone ELSE threads.normalized_phone END,
	updated_at_ms        = excluded.updated_at_ms`

	sqlAddCounters = `INSERT INTO counters (account_id, dedupe_wrote, dedupe_skipped, dedupe_strong_skipped,
	history_wrote, history_skipped, history_last_run_ms, history_last_batch)
VALUES (?,?,?,?,?,?,?,?)
ON CONFLICT (account_id) DO UPDATE SET
	dedupe_wrote          = dedupe_wrote + excluded.dedupe_wrote,
	dedupe_skipped        = dedupe_skipped + excluded.dedupe_skipped,
	dedupe_strong_skipped = dedupe_strong_skipped + excluded.dedupe_strong_skipped,
	history_wrote         = history_wrote + excluded.history_wrote,
	history_skipped       = history_skipped + excluded.history_skipped,
	history_last_run_ms   = CASE WHEN excluded.history_last_run_ms > 0 THEN excluded.history_last_run_ms ELSE history_last_run_ms END,
	history_last_batch    = CASE WHEN excluded.history_last_run_ms > 0 THEN excluded.history_last_batch ELSE history_last_batch END`
)

type stmts struct {
	getMapping, insertMapping, ensureThread, threadKey, docSeq, insertMessage, mergeMessage, strongMatch *sql.Stmt
	upsertThread, addCounters, multiGetMapping, multiDocSeq, multiMessage, insertMessageOnly             *sql.Stmt
	enqueueOutbox                                                                                        *sql.Stmt
}

func prepare(db *sql.DB) (*stmts, error) {
	var st stmts
	return &st, prepareAll(db, []stmtDef{
		{&st.getMapping, sqlGetMapping}, {&st.insertMapping, sqlInsertMapping}, {&st.ensureThread, sqlEnsureThread},
		{&st.threadKey, sqlThreadKey}, {&st.docSeq, sqlDocSeq},
		{&st.insertMessage, sqlInsertMessage}, {&st.mergeMessage, sqlMergeMessage}, {&st.strongMatch, sqlStrongMatch},
		{&st.upsertThread, sqlUpsertThread}, {&st.addCounters, sqlAddCounters},
		{&st.multiGetMapping, sqlMultiGetMapping}, {&st.multiDocSeq, sqlMultiDocSeq},
		{&st.insertMessageOnly, sqlInsertMessageOnly}, {&st.multiMessage, sqlMultiMessage},
		{&st.enqueueOutbox, sqlEnqueueOutbox},
	})
}

// readStmts are the reads of every send-message (its idempotency check),
// prepared once on the reader pool: modernc's parser made preparing them
// cost more than running them (a CPU profile of the outbound benchmark at
// 100 sends/s had 0.54 s of 8.8 s in re-preparing these two statements).
// database/sql prepares each on a reader connection the first time that
// connection runs it, and keeps it there.
type readStmts struct {
	findMessage, getOutbox *sql.Stmt
}

func prepareReads(db *sql.DB) (*readStmts, error) {
	var st readStmts
	return &st, prepareAll(db, []stmtDef{
		{&st.findMessage, sqlFindMessage}, {&st.getOutbox, sqlGetOutbox},
	})
}

type stmtDef struct {
	dst **sql.Stmt
	q   string
}

func prepareAll(db *sql.DB, defs []stmtDef) error {
	for _, d := range defs {
		s, err := db.Prepare(d.q)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", d.q, err)
		}
		*d.dst = s
	}
	return nil
}

// txStmts binds the prepared statements to a transaction on first use.
type txStmts struct {
	tx *sql.Tx
	st *stmts
	m  map[*sql.Stmt]*sql.Stmt
}

func (t *txStmts) get(s *sql.Stmt) *sql.Stmt {
	if b, ok := t.m[s]; ok {
		return b
	}
	if t.m == nil {
		t.m = make(map[*sql.Stmt]*sql.Stmt, 8)
	}
	b := t.tx.Stmt(s)
	t.m[s] = b
	return b
}
