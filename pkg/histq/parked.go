package histq

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// An edit or revoke can arrive before the message it changes (WhatsApp
// does not order them, and history syncs deliver old messages late). It is
// parked here, durably, and applied when its target is recorded. The
// number parked is bounded: past MaxParked the oldest is dropped and
// counted (ParkedDropped), never silently.

// Parked is one edit or revoke waiting for its target.
type Parked struct {
	ID        int64
	AccountID string
	TargetID  string // WhatsApp id of the target message
	Kind      string // "edit" | "revoke"
	Payload   []byte // the caller's encoding of the edit or revoke
}

// parkedIndex keeps the parked targets in memory, so that recording a
// message asks the file only when something waits for it.
type parkedIndex struct {
	mu      sync.Mutex
	targets map[string]int // account + "\x00" + target → entries
	dropped atomic.Int64
}

func pkey(account, target string) string { return account + "\x00" + target }

func (p *parkedIndex) droppedCount() int64 { return p.dropped.Load() }

func (q *Queue) loadParked() error {
	q.pk.targets = map[string]int{}
	rows, err := q.db.Query(`SELECT account, target FROM parked`)
	if err != nil {
		return fmt.Errorf("history queue: parked: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, t string
		if err := rows.Scan(&a, &t); err != nil {
			return err
		}
		q.pk.targets[pkey(a, t)]++
	}
	return rows.Err()
}

// Park keeps an edit or revoke until its target is recorded. dropped says
// whether the bound made it drop the oldest parked entry.
func (q *Queue) Park(ctx context.Context, p Parked) (dropped bool, err error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("history queue: park: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO parked(account, target, kind, payload, at_ms) VALUES (?, ?, ?, ?, ?)`,
		p.AccountID, p.TargetID, p.Kind, p.Payload, q.now().UnixMilli()); err != nil {
		return false, fmt.Errorf("history queue: park: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM parked`).Scan(&n); err != nil {
		return false, err
	}
	var oldA, oldT string
	if n > q.maxP {
		if err := tx.QueryRowContext(ctx, `DELETE FROM parked WHERE id = (SELECT min(id) FROM parked) RETURNING account, target`).
			Scan(&oldA, &oldT); err != nil {
			return false, fmt.Errorf("history queue: park bound: %w", err)
		}
		dropped = true
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("history queue: park: %w", err)
	}
	q.pk.mu.Lock()
	q.pk.targets[pkey(p.AccountID, p.TargetID)]++
	if dropped {
		k := pkey(oldA, oldT)
		if q.pk.targets[k]--; q.pk.targets[k] <= 0 {
			delete(q.pk.targets, k)
		}
	}
	q.pk.mu.Unlock()
	if dropped {
		q.pk.dropped.Add(1)
	}
	return dropped, nil
}

// Waiting says whether anything is parked for the target (no I/O).
func (q *Queue) Waiting(accountID, targetID string) bool {
	q.pk.mu.Lock()
	defer q.pk.mu.Unlock()
	return q.pk.targets[pkey(accountID, targetID)] > 0
}

// Parked returns what waits for a target, oldest first.
func (q *Queue) Parked(ctx context.Context, accountID, targetID string) ([]Parked, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT id, account, target, kind, payload FROM parked WHERE account = ? AND target = ? ORDER BY id`,
		accountID, targetID)
	if err != nil {
		return nil, fmt.Errorf("history queue: parked for %s: %w", targetID, err)
	}
	defer rows.Close()
	var out []Parked
	for rows.Next() {
		var p Parked
		if err := rows.Scan(&p.ID, &p.AccountID, &p.TargetID, &p.Kind, &p.Payload); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Unpark deletes a parked entry once it has been applied.
func (q *Queue) Unpark(ctx context.Context, p Parked) error {
	res, err := q.db.ExecContext(ctx, `DELETE FROM parked WHERE id = ?`, p.ID)
	if err != nil {
		return fmt.Errorf("history queue: unpark %d: %w", p.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		q.pk.mu.Lock()
		k := pkey(p.AccountID, p.TargetID)
		if q.pk.targets[k]--; q.pk.targets[k] <= 0 {
			delete(q.pk.targets, k)
		}
		q.pk.mu.Unlock()
	}
	return nil
}
