package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// UpdateReceipt moves the documents of the given ids to delivered or read,
// never backwards; ids without a document are ignored (no stubs).
func (s *Store) UpdateReceipt(ctx context.Context, r store.Receipt) error {
	// A read receipt implies delivery: deliveredAt is filled if it was
	// missed. Each time is set once.
	sets := `delivered_at_ms = CASE WHEN delivered_at_ms = 0 THEN ?1 ELSE delivered_at_ms END`
	switch r.Status {
	case "delivered":
	case "read":
		sets += `, read_at_ms = CASE WHEN read_at_ms = 0 THEN ?1 ELSE read_at_ms END`
	default:
		return fmt.Errorf("sqlite store: receipt status %q: want delivered or read", r.Status)
	}
	if r.AccountID == "" {
		return errors.New("sqlite store: receipt without an account id")
	}
	at := ms(r.At)
	if at == 0 {
		at = s.now().UnixMilli()
	}
	q := `UPDATE messages SET
	status = CASE WHEN ` + statusRankNew + ` > ` + statusRankOld + ` THEN ?5 ELSE status END,
	` + sets + `,
	updated_at_ms = ?2
WHERE seq = coalesce(
	(SELECT seq FROM message_ids WHERE account_id = ?3 AND wa_message_id = ?4),
	(SELECT seq FROM messages WHERE doc_id = ?6))`
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.Prepare(q)
		if err != nil {
			return err
		}
		now := s.now().UnixMilli()
		for _, id := range r.WAMessageIDs {
			if _, err := st.Exec(at, now, r.AccountID, id, r.Status, dedupe.MessageDocID(r.AccountID, id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite store: receipt: %w", err)
	}
	return nil
}

// editTimes keeps the edit time of each edited message, so that an older
// edit arriving after a newer one (WhatsApp does not order them; history
// syncs bring old ones late) changes nothing. It lives beside the schema's
// tables, created on first use, because only edits need it.
const editTimes = `CREATE TABLE IF NOT EXISTS message_edits (
	seq          INTEGER PRIMARY KEY,
	edited_at_ms INTEGER NOT NULL
)`

// ApplyEdit replaces the body of the target document (and the thread's
// last text when the target is the thread's latest message), unless a
// newer edit of it is already applied.
func (s *Store) ApplyEdit(ctx context.Context, e store.Edit) error {
	at := ms(e.At)
	if at == 0 {
		at = s.now().UnixMilli()
	}
	return s.updateTarget(ctx, e.AccountID, e.TargetWAID, func(tx *sql.Tx, thread string, seq, now int64) error {
		if _, err := tx.Exec(editTimes); err != nil {
			return err
		}
		var prev int64
		err := tx.QueryRow(`SELECT edited_at_ms FROM message_edits WHERE seq = ?`, seq).Scan(&prev)
		if err == nil && prev >= at {
			return nil // this edit is not newer than the one applied
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO message_edits(seq, edited_at_ms) VALUES (?, ?)
			ON CONFLICT(seq) DO UPDATE SET edited_at_ms = excluded.edited_at_ms`, seq, at); err != nil {
			return err
		}
		var ts int64
		if err := tx.QueryRow(`UPDATE messages SET body = ?, edited = 1, updated_at_ms = ? WHERE seq = ? RETURNING ts_client_ms`,
			e.NewBody, now, seq).Scan(&ts); err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE threads SET last_message_text = ?, last_message_preview = ?, updated_at_ms = ? WHERE id = ? AND last_message_at_ms = ?`,
			e.NewBody, preview(e.NewBody), now, thread, ts)
		return err
	})
}

// ApplyRevoke marks the target document revoked. The body is kept: wactl
// never destroys a recorded message; the app hides revoked ones.
func (s *Store) ApplyRevoke(ctx context.Context, r store.Revoke) error {
	return s.updateTarget(ctx, r.AccountID, r.TargetWAID, func(tx *sql.Tx, _ string, seq, now int64) error {
		_, err := tx.Exec(`UPDATE messages SET revoked = 1, updated_at_ms = ? WHERE seq = ?`, now, seq)
		return err
	})
}

func (s *Store) updateTarget(ctx context.Context, accountID, waID string, fn func(tx *sql.Tx, thread string, seq, now int64) error) error {
	if accountID == "" || waID == "" {
		return errors.New("sqlite store: edit/revoke needs an account id and a target id")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var thread string
		var seq int64
		err := tx.QueryRow(`SELECT thread_id, seq FROM messages WHERE seq = (`+sqlGetMapping+`)`,
			accountID, waID, dedupe.MessageDocID(accountID, waID)).Scan(&thread, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return fn(tx, thread, seq, s.now().UnixMilli())
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("sqlite store: update %s: %w", waID, err)
	}
	if err != nil {
		return fmt.Errorf("sqlite store: message %s of %s: %w", waID, accountID, err)
	}
	return nil
}
