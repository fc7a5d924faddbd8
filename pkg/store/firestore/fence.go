package firestore

import (
	"fmt"

	"github.com/wactl/wactl/pkg/store"
)

// Fencing. serve opens the store with Options.Fence = the lease's Fence:
// then every write that decides something on behalf of the lease holder —
// account documents (status, worker), outbox claims and their results,
// counters — is made only while this process holds an epoch, carries that
// epoch, and is refused (store.ErrFenced) when the document already carries
// a newer one. Message, thread and receipt writes are not fenced: they are
// idempotent facts about what WhatsApp delivered, keyed by WhatsApp's ids,
// and refusing them would lose messages (docs/lease.md).
//
// Without Fence (operator tools: pair, audit, cleanup, tests) the caller's
// own Account.Epoch / claim epoch is used as before; zero disables fencing.

// heldEpoch is the epoch a fenced write may carry: the lease's held epoch,
// or ErrFenced when there is none. callerEpoch (the epoch the caller built
// its write under, 0 when unknown) must be that same epoch: a document
// built in an earlier tenure is stale even if this process holds the lease
// again.
func (s *Store) heldEpoch(what string, callerEpoch int64) (int64, bool, error) {
	if s.fence == nil {
		return callerEpoch, false, nil
	}
	held, ok := s.fence()
	if !ok || held <= 0 {
		return 0, true, fmt.Errorf("%s: this process holds no lease epoch (PASSIVE): %w", what, store.ErrFenced)
	}
	if callerEpoch != 0 && callerEpoch != held {
		return 0, true, fmt.Errorf("%s: written under epoch %d, the lease is now held under %d: %w", what, callerEpoch, held, store.ErrFenced)
	}
	return held, true, nil
}

// olderThanDoc is the store-side check: a write carrying epoch may not
// replace a document written under a newer one.
func olderThanDoc(what string, epoch, docEpoch int64) error {
	if epoch != 0 && docEpoch > epoch {
		return fmt.Errorf("%s: write under lease epoch %d, the document carries %d: %w", what, epoch, docEpoch, store.ErrFenced)
	}
	return nil
}
