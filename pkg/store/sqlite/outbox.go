package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

const outboxCols = `request_id, account_id, to_jid, thread_id, client_message_id, body, status, attempt_count,
	next_attempt_ms, created_ms, updated_ms, created_by_uid, claimed_by, lease_until_ms, claim_epoch,
	provider_message_id, sent_ms, last_error, failed_ms`

func scanOutbox(r scanner) (store.OutboxItem, error) {
	var it store.OutboxItem
	var next, created, updated, lease, sent, failed int64
	err := r.Scan(&it.RequestID, &it.AccountID, &it.ToJID, &it.ThreadID, &it.ClientMessageID, &it.Body, &it.Status, &it.AttemptCount,
		&next, &created, &updated, &it.CreatedByUID, &it.ClaimedBy, &lease, &it.ClaimEpoch,
		&it.ProviderMessageID, &sent, &it.LastError, &failed)
	it.NextAttemptAt, it.CreatedAt, it.UpdatedAt, it.LeaseUntil, it.SentAt, it.FailedAt =
		fromMs(next), fromMs(created), fromMs(updated), fromMs(lease), fromMs(sent), fromMs(failed)
	return it, err
}

// sqlEnqueueOutbox is prepared once (stmts): every send with a request id
// runs it, as its key's claim.
const sqlEnqueueOutbox = `INSERT INTO outbox (request_id, account_id, to_jid, thread_id, client_message_id, body, status,
	attempt_count, next_attempt_ms, created_ms, updated_ms, created_by_uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (request_id) DO NOTHING`

// EnqueueOutbox creates outbox/{requestId} unless it exists.
func (s *Store) EnqueueOutbox(ctx context.Context, it store.OutboxItem) (bool, error) {
	if it.RequestID == "" || it.AccountID == "" {
		return false, errors.New("sqlite store: outbox item needs a request id and an account id")
	}
	now := s.now()
	if it.CreatedAt.IsZero() {
		it.CreatedAt = now
	}
	if it.UpdatedAt.IsZero() {
		it.UpdatedAt = now
	}
	if it.Status == "" {
		it.Status = "queued"
	}
	var created bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		created, err = affected(tx.Stmt(s.stmts.enqueueOutbox).Exec(it.RequestID, it.AccountID, it.ToJID, it.ThreadID, it.ClientMessageID, it.Body, it.Status,
			it.AttemptCount, ms(it.NextAttemptAt), ms(it.CreatedAt), ms(it.UpdatedAt), it.CreatedByUID))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite store: enqueue outbox: %w", err)
	}
	return created, nil
}

// ClaimOutbox claims due items. The single writer makes select-then-update
// atomic, so no item ever has two claimers.
func (s *Store) ClaimOutbox(ctx context.Context, claimer string, epoch int64, lease time.Duration, limit int) ([]store.OutboxItem, error) {
	if claimer == "" || lease <= 0 {
		return nil, errors.New("sqlite store: claim needs a claimer and a positive lease")
	}
	epoch, ferr := s.heldEpoch("outbox claim", epoch)
	if ferr != nil {
		return nil, ferr
	}
	var out []store.OutboxItem
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		now := s.now().UnixMilli()
		rows, err := tx.Query(`SELECT request_id FROM (
	SELECT request_id, next_attempt_ms AS due, created_ms FROM outbox WHERE status = 'queued' AND next_attempt_ms <= ?1
	UNION ALL
	SELECT request_id, lease_until_ms AS due, created_ms FROM outbox WHERE status = 'processing' AND lease_until_ms < ?1
) ORDER BY due, created_ms, request_id LIMIT ?2`, now, limitOr(limit, 10))
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			it, err := scanOutbox(tx.QueryRow(`UPDATE outbox SET status = 'processing', claimed_by = ?, lease_until_ms = ?,
	claim_epoch = ?, attempt_count = attempt_count + 1, updated_ms = ? WHERE request_id = ? RETURNING `+outboxCols,
				claimer, now+lease.Milliseconds(), epoch, now, id))
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: claim outbox: %w", err)
	}
	return out, nil
}

// CompleteOutbox marks an item sent; only its current claimer may.
func (s *Store) CompleteOutbox(ctx context.Context, requestID, claimer, providerMessageID string) error {
	return s.finishOutbox(ctx, requestID, claimer, func(tx *sql.Tx, now int64) error {
		_, err := tx.Exec(`UPDATE outbox SET status = 'sent', provider_message_id = ?, sent_ms = ?, updated_ms = ?, lease_until_ms = 0
WHERE request_id = ?`, providerMessageID, now, now, requestID)
		return err
	})
}

// FailOutbox records a failed attempt: failed for good with retryAt zero,
// else queued again until retryAt.
func (s *Store) FailOutbox(ctx context.Context, requestID, claimer, errText string, retryAt time.Time) error {
	return s.finishOutbox(ctx, requestID, claimer, func(tx *sql.Tx, now int64) error {
		if retryAt.IsZero() {
			_, err := tx.Exec(`UPDATE outbox SET status = 'failed', last_error = ?, failed_ms = ?, updated_ms = ?, lease_until_ms = 0
WHERE request_id = ?`, errText, now, now, requestID)
			return err
		}
		_, err := tx.Exec(`UPDATE outbox SET status = 'queued', last_error = ?, next_attempt_ms = ?, updated_ms = ?,
	claimed_by = '', lease_until_ms = 0 WHERE request_id = ?`, errText, ms(retryAt), now, requestID)
		return err
	})
}

func (s *Store) finishOutbox(ctx context.Context, requestID, claimer string, fn func(tx *sql.Tx, now int64) error) error {
	held, err := s.heldEpoch("outbox "+requestID, 0)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var status, holder string
		var claimEpoch int64
		err := tx.QueryRow(`SELECT status, claimed_by, claim_epoch FROM outbox WHERE request_id = ?`, requestID).Scan(&status, &holder, &claimEpoch)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("outbox %s: %w", requestID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if held != 0 && claimEpoch > held {
			return fmt.Errorf("outbox %s was claimed under lease epoch %d, this writer holds %d: %w", requestID, claimEpoch, held, store.ErrFenced)
		}
		if status != "processing" || holder != claimer {
			return fmt.Errorf("outbox %s is %s, claimed by %q, not by %q: %w", requestID, status, holder, claimer, store.ErrFenced)
		}
		return fn(tx, s.now().UnixMilli())
	})
	if err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	return nil
}

const sqlGetOutbox = `SELECT ` + outboxCols + ` FROM outbox WHERE request_id = ?`

// GetOutbox returns one outbox item.
func (s *Store) GetOutbox(ctx context.Context, requestID string) (store.OutboxItem, error) {
	it, err := scanOutbox(s.reads.getOutbox.QueryRowContext(ctx, requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.OutboxItem{}, fmt.Errorf("sqlite store: outbox %s: %w", requestID, store.ErrNotFound)
	}
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("sqlite store: %w", err)
	}
	return it, nil
}
