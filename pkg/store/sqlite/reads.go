package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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

func (s *Store) queryMessages(ctx context.Context, q string, args ...any) ([]store.Message, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func limitOr(limit, def int) int {
	if limit <= 0 {
		return def
	}
	return limit
}

// ListMessages returns the newest messages of a thread, newest first.
func (s *Store) ListMessages(ctx context.Context, threadID string, limit int) ([]store.Message, error) {
	return s.queryMessages(ctx, `SELECT `+messageCols+` FROM messages
WHERE tkey = (SELECT tkey FROM threads WHERE id = ?) ORDER BY ts_client_ms DESC, seq DESC LIMIT ?`,
		threadID, limitOr(limit, 50))
}

// Inbox returns the newest messages of an account, newest first, from one
// index range scan.
func (s *Store) Inbox(ctx context.Context, accountID string, limit int) ([]store.Message, error) {
	return s.queryMessages(ctx, `SELECT `+messageCols+` FROM messages INDEXED BY messages_by_account
WHERE account_id = ? ORDER BY ts_client_ms DESC LIMIT ?`, accountID, limitOr(limit, 50))
}

// FindMessage resolves a WhatsApp id through message_ids.
func (s *Store) FindMessage(ctx context.Context, accountID, waMessageID string) (store.Message, error) {
	m, err := scanMessage(s.rdb.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages
WHERE seq = (SELECT seq FROM message_ids WHERE account_id = ? AND wa_message_id = ?)`, accountID, waMessageID))
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

// ListThreads returns an account's threads, most recent first.
func (s *Store) ListThreads(ctx context.Context, accountID string, limit int) ([]store.Thread, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+threadCols+` FROM threads WHERE account_id = ?
ORDER BY last_message_at_ms DESC, id LIMIT ?`, accountID, limitOr(limit, 50))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []store.Thread
	for rows.Next() {
		t, err := scanThread(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
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
