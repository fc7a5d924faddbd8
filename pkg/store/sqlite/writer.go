package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("sqlite store: closed")

// op is one write. fn runs inside a transaction shared with other
// concurrent writes (group commit: one fsync for many callers), isolated by
// a savepoint so one failing write does not undo the others. done receives
// the result after the commit.
type op struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// write runs fn in the writer and waits until it is committed.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	// The read lock orders every enqueue before Close's shutdown, so the
	// writer's final drain sees every queued write: none is left waiting.
	s.closing.RLock()
	if s.isClosed {
		s.closing.RUnlock()
		return ErrClosed
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		s.closing.RUnlock()
		return ctx.Err()
	}
	s.closing.RUnlock()
	// Once queued the write completes or fails on its own: waiting for it
	// even if ctx ends keeps "nil error means durable" honest both ways.
	return <-o.done
}

func (s *Store) writer() {
	defer close(s.done)
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.stop:
			s.drain()
			return
		}
		group := []*op{first}
	more:
		for len(group) < s.opts.MaxGroup {
			select {
			case o := <-s.ops:
				group = append(group, o)
			default:
				break more
			}
		}
		s.runGroup(group)
	}
}

// drain finishes the writes queued before Close.
func (s *Store) drain() {
	for {
		select {
		case o := <-s.ops:
			s.runGroup([]*op{o})
		default:
			return
		}
	}
}

func (s *Store) runGroup(group []*op) {
	results := make([]error, len(group))
	err := func() error {
		tx, err := s.wdb.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		single := len(group) == 1
		for i, o := range group {
			if err := o.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			if single {
				results[i] = o.fn(tx)
				if results[i] != nil {
					_ = tx.Rollback()
					return nil
				}
				continue
			}
			if _, err := tx.Exec(`SAVEPOINT w`); err != nil {
				_ = tx.Rollback()
				return err
			}
			if results[i] = o.fn(tx); results[i] != nil {
				if _, err := tx.Exec(`ROLLBACK TO w`); err != nil {
					_ = tx.Rollback()
					return err
				}
			}
			if _, err := tx.Exec(`RELEASE w`); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		err = fmt.Errorf("sqlite store: commit: %w", err)
		s.noteErr(err)
		s.log.Error("sqlite store write failed", "err", err, "writes", len(group))
	}
	for i, o := range group {
		if err != nil {
			o.done <- err
		} else {
			o.done <- results[i]
		}
	}
}
