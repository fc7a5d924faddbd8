package histq

import (
	"context"
	"fmt"
)

// Skip reasons: why a history message was not recorded. Every skip is
// counted under one of them (persisted, per account).
const (
	SkipBadChat  = "bad_chat_jid"     // the conversation id is not a JID
	SkipParse    = "parse_failed"     // whatsmeow could not parse the web message
	SkipBuild    = "build_failed"     // it could not be turned into a document
	SkipProtocol = "protocol_message" // a protocol message: nothing to record
)

// AddSkips adds counts by reason for one account.
func (q *Queue) AddSkips(ctx context.Context, account string, by map[string]int) error {
	if len(by) == 0 {
		return nil
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history queue: skips: %w", err)
	}
	defer tx.Rollback()
	for r, n := range by {
		if _, err := tx.ExecContext(ctx, `INSERT INTO skips(account, reason, n) VALUES (?, ?, ?)
			ON CONFLICT(account, reason) DO UPDATE SET n = n + excluded.n`, account, r, n); err != nil {
			return fmt.Errorf("history queue: skips: %w", err)
		}
	}
	return tx.Commit()
}

// Skips returns the counts: account → reason → messages.
func (q *Queue) Skips(ctx context.Context) (map[string]map[string]int64, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT account, reason, n FROM skips`)
	if err != nil {
		return nil, fmt.Errorf("history queue: skips: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var a, r string
		var n int64
		if err := rows.Scan(&a, &r, &n); err != nil {
			return nil, err
		}
		if out[a] == nil {
			out[a] = map[string]int64{}
		}
		out[a][r] = n
	}
	return out, rows.Err()
}
