package sqlite

import (
	"fmt"

	"github.com/wactl/wactl/pkg/store"
)

// heldEpoch: with Options.Fence (serve), account writes and outbox claims
// and results are made only while this process holds a lease epoch, and
// carry it (the stored epoch then refuses older writers); a caller epoch
// from another tenure is stale. Without Fence (tools, tests) the caller's
// epoch is used as before, zero meaning unfenced. Messages are never fenced
// (docs/lease.md).
func (s *Store) heldEpoch(what string, callerEpoch int64) (int64, error) {
	if s.opts.Fence == nil {
		return callerEpoch, nil
	}
	held, ok := s.opts.Fence()
	if !ok || held <= 0 {
		return 0, fmt.Errorf("sqlite store: %s: this process holds no lease epoch (PASSIVE): %w", what, store.ErrFenced)
	}
	if callerEpoch != 0 && callerEpoch != held {
		return 0, fmt.Errorf("sqlite store: %s: written under epoch %d, the lease is now held under %d: %w", what, callerEpoch, held, store.ErrFenced)
	}
	return held, nil
}
