package histq

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Loss reasons.
const (
	// ReasonMediaGone: the history blob could not be downloaded (the media
	// server answered 403/404/410, or every attempt failed) within the
	// retry budget.
	ReasonMediaGone = "history_media_unavailable"
	// ReasonUndecodable: the blob was downloaded but is not a history sync
	// (bad decryption, compression or protobuf); retrying cannot help.
	ReasonUndecodable = "history_undecodable"
)

// Loss is one notification whose history could not be recorded.
type Loss struct {
	ID          int64
	AccountID   string
	MessageID   string
	Reason      string
	Detail      string
	Attempts    int
	Recorded    int // messages of it recorded before it was given up
	At          time.Time
	Rerequested bool // wactl asked the phone for that history again
}

// Lose moves an entry to the losses table in one transaction: it is never
// both pending and lost, nor neither.
func (q *Queue) Lose(ctx context.Context, e Entry, reason, detail string) (int64, error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("history queue: lose %d: %w", e.ID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO losses(account, msg_id, reason, detail, attempts, recorded, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.AccountID, e.MessageID, reason, detail, e.Attempts, e.Recorded, q.now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("history queue: lose %d: %w", e.ID, err)
	}
	id, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE id = ?`, e.ID); err != nil {
		return 0, fmt.Errorf("history queue: lose %d: %w", e.ID, err)
	}
	return id, tx.Commit()
}

// MarkRerequested records that the phone was asked for a lost history again.
func (q *Queue) MarkRerequested(ctx context.Context, lossID int64) error {
	_, err := q.db.ExecContext(ctx, `UPDATE losses SET rerequested = 1 WHERE id = ?`, lossID)
	return err
}

// Losses lists every recorded loss, oldest first.
func (q *Queue) Losses(ctx context.Context) ([]Loss, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT id, account, msg_id, reason, detail, attempts, recorded, at_ms, rerequested FROM losses ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("history queue: losses: %w", err)
	}
	defer rows.Close()
	var out []Loss
	for rows.Next() {
		var l Loss
		var at int64
		if err := rows.Scan(&l.ID, &l.AccountID, &l.MessageID, &l.Reason, &l.Detail, &l.Attempts, &l.Recorded, &at, &l.Rerequested); err != nil {
			return nil, err
		}
		l.At = time.UnixMilli(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// LossCounts is how many notifications were lost, per account.
func (q *Queue) LossCounts(ctx context.Context) (map[string]int, error) {
	return q.countBy(ctx, `SELECT account, count(*) FROM losses GROUP BY account`)
}

// Stats are the queue's totals for /health, /metrics and doctor.
type Stats struct {
	Pending       int // notifications waiting to be recorded
	Lost          int // notifications given up (see Losses)
	Parked        int // edits/revokes waiting for their target
	ParkedDropped int // parked edits/revokes dropped at the bound, since start
}

// Stats reads the totals.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := q.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM losses), (SELECT count(*) FROM parked)`).
		Scan(&s.Pending, &s.Lost, &s.Parked)
	if err != nil && err != sql.ErrNoRows {
		return s, fmt.Errorf("history queue: stats: %w", err)
	}
	s.ParkedDropped = int(q.pk.droppedCount())
	return s, nil
}
