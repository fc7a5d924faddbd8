package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

const messageCols = `thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, normalized_phone,
	peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw,
	provider_message_id, client_message_id, status, message_type, media_type, ts_client_ms, source,
	stable_key_hash, fingerprint_hash, created_at_ms, ingested_at_ms, delivered_at_ms, read_at_ms,
	edited, revoked, is_duplicate, duplicate_of`

type scanner interface{ Scan(dest ...any) error }

func scanMessage(r scanner) (store.Message, error) {
	var m store.Message
	var ts, created, ingested, delivered, read int64
	err := r.Scan(&m.ThreadID, &m.DocID, &m.AccountID, &m.ClientJID, &m.ClientJIDRaw, &m.RawJID, &m.ResolvedJID, &m.NormalizedPhone,
		&m.PeerType, &m.IsGroup, &m.SenderJID, &m.SenderName, &m.Direction, &m.Body, &m.WAMessageID, &m.WAMessageIDRaw,
		&m.ProviderMessageID, &m.ClientMessageID, &m.Status, &m.MessageType, &m.MediaType, &ts, &m.Source,
		&m.StableKeyHash, &m.FingerprintHash, &created, &ingested, &delivered, &read,
		&m.Edited, &m.Revoked, &m.IsDuplicate, &m.DuplicateOf)
	m.TsClient, m.CreatedAt, m.IngestedAt, m.DeliveredAt, m.ReadAt = fromMs(ts), fromMs(created), fromMs(ingested), fromMs(delivered), fromMs(read)
	return m, err
}

// queryMessages runs a listing whose first selected column is seq, then
// messageCols, and gives each message its cursor (ts_client_ms, seq).
func (s *Store) queryMessages(ctx context.Context, q string, args ...any) ([]store.Message, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []store.Message
	for rows.Next() {
		var seq int64
		var ts int64
		m, err := scanMessage(prefixScanner{rows, &seq, &ts})
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		m.Cursor = store.EncodeCursor(ts, strconv.FormatInt(seq, 10))
		out = append(out, m)
	}
	return out, rows.Err()
}

// prefixScanner scans two leading columns (the row key and its raw sort
// value) before handing the rest to the shared scan function.
type prefixScanner struct {
	r        scanner
	key, pos *int64
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.r.Scan(append([]any{p.key, p.pos}, dest...)...)
}

func limitOr(limit, def int) int {
	if limit <= 0 {
		return def
	}
	return limit
}

// keyset is the WHERE fragment and arguments that continue a newest-first
// listing ordered by (col DESC, rowid ASC) strictly after cursor. The first
// term bounds the index range scan; rows at the cursor's own time are then
// filtered by row key. rowid sits ascending in every index entry after the
// indexed columns, so this order is the index's own: no sort step, even
// among equal times (checked with EXPLAIN QUERY PLAN).
func keyset(col, rowid, cursor string) (string, []any, error) {
	if cursor == "" {
		return "", nil, nil
	}
	pos, key, err := store.DecodeCursor(cursor)
	if err != nil {
		return "", nil, err
	}
	k, err := strconv.ParseInt(key, 10, 64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: not a row cursor of the embedded store", store.ErrBadCursor)
	}
	return ` AND ` + col + ` <= ? AND (` + col + ` < ? OR ` + rowid + ` > ?)`, []any{pos, pos, k}, nil
}

// ListMessages returns a page of a thread's messages, newest first.
func (s *Store) ListMessages(ctx context.Context, threadID string, p store.Page) ([]store.Message, error) {
	where, args, err := keyset("ts_client_ms", "seq", p.After)
	if err != nil {
		return nil, err
	}
	args = append(append([]any{threadID}, args...), limitOr(p.Limit, 50))
	return s.queryMessages(ctx, `SELECT seq, ts_client_ms, `+messageCols+` FROM messages INDEXED BY messages_by_thread
WHERE tkey = (SELECT tkey FROM threads WHERE id = ?)`+where+` ORDER BY ts_client_ms DESC, seq LIMIT ?`, args...)
}

// Inbox returns a page of an account's messages, newest first, from one
// index range scan.
func (s *Store) Inbox(ctx context.Context, accountID string, p store.Page) ([]store.Message, error) {
	where, args, err := keyset("ts_client_ms", "seq", p.After)
	if err != nil {
		return nil, err
	}
	args = append(append([]any{accountID}, args...), limitOr(p.Limit, 50))
	return s.queryMessages(ctx, `SELECT seq, ts_client_ms, `+messageCols+` FROM messages INDEXED BY messages_by_account
WHERE account_id = ?`+where+` ORDER BY ts_client_ms DESC, seq LIMIT ?`, args...)
}

const sqlFindMessage = `SELECT ` + messageCols + ` FROM messages WHERE seq = (` + sqlGetMapping + `)`

// FindMessage resolves a WhatsApp id to its document (see sqlGetMapping).
func (s *Store) FindMessage(ctx context.Context, accountID, waMessageID string) (store.Message, error) {
	m, err := scanMessage(s.reads.findMessage.QueryRowContext(ctx, accountID, waMessageID, dedupe.MessageDocID(accountID, waMessageID)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, fmt.Errorf("sqlite store: message %s of %s: %w", waMessageID, accountID, store.ErrNotFound)
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("sqlite store: %w", err)
	}
	return m, nil
}

const threadCols = `id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid, peer_type, is_group,
	last_message_at_ms, last_message_text, last_message_preview, last_sender_name, last_direction,
	display_name, group_subject, normalized_phone, updated_at_ms, hidden, archived, redirect_to`

func scanThread(r scanner) (store.Thread, error) {
	var t store.Thread
	var last, upd int64
	err := r.Scan(&t.ID, &t.AccountID, &t.ClientJID, &t.ClientJIDRaw, &t.RawJID, &t.ResolvedJID, &t.PeerType, &t.IsGroup,
		&last, &t.LastMessageText, &t.LastMessagePreview, &t.LastMessageSenderName, &t.LastMessageDirection,
		&t.DisplayName, &t.GroupSubject, &t.NormalizedPhone, &upd, &t.Hidden, &t.Archived, &t.RedirectTo)
	t.LastMessageAt, t.UpdatedAt = fromMs(last), fromMs(upd)
	t.CanonicalThreadID = t.ID
	return t, err
}

// GetThread returns one thread summary.
func (s *Store) GetThread(ctx context.Context, threadID string) (store.Thread, error) {
	t, err := scanThread(s.rdb.QueryRowContext(ctx, `SELECT `+threadCols+` FROM threads WHERE id = ?`, threadID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Thread{}, fmt.Errorf("sqlite store: thread %s: %w", threadID, store.ErrNotFound)
	}
	if err != nil {
		return store.Thread{}, fmt.Errorf("sqlite store: %w", err)
	}
	return t, nil
}

// ListThreads returns a page of an account's threads, most recent first.
func (s *Store) ListThreads(ctx context.Context, accountID string, p store.Page) ([]store.Thread, error) {
	where, args, err := keyset("last_message_at_ms", "tkey", p.After)
	if err != nil {
		return nil, err
	}
	args = append(append([]any{accountID}, args...), limitOr(p.Limit, 50))
	rows, err := s.rdb.QueryContext(ctx, `SELECT tkey, last_message_at_ms, `+threadCols+` FROM threads INDEXED BY threads_by_account
WHERE account_id = ?`+where+` ORDER BY last_message_at_ms DESC, tkey LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []store.Thread
	for rows.Next() {
		var tkey, last int64
		t, err := scanThread(prefixScanner{rows, &tkey, &last})
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		t.Cursor = store.EncodeCursor(last, strconv.FormatInt(tkey, 10))
		out = append(out, t)
	}
	return out, rows.Err()
}

// Counters returns the persisted counters (zero for an unknown account).
func (s *Store) Counters(ctx context.Context, accountID string) (store.Counters, error) {
	var c store.Counters
	var last int64
	err := s.rdb.QueryRowContext(ctx, `SELECT dedupe_wrote, dedupe_skipped, dedupe_strong_skipped, history_wrote, history_skipped,
	history_last_run_ms, history_last_batch FROM counters WHERE account_id = ?`, accountID).Scan(
		&c.DedupeWrote, &c.DedupeSkipped, &c.DedupeStrongSkipped, &c.HistoryWrote, &c.HistorySkipped, &last, &c.HistoryLastBatch)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Counters{}, nil
	}
	if err != nil {
		return store.Counters{}, fmt.Errorf("sqlite store: %w", err)
	}
	c.HistoryLastRunAt = fromMs(last)
	return c, nil
}
