package lock

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
)

// The epoch high-water mark: a second document beside the lease
// (<lease path>_epoch) holding the largest epoch any wactl acquisition
// committed. The lease document alone cannot keep epochs unique: when it
// is deleted (the Node service deletes it on release; an operator may) the
// next create takes Firestore's read time, and two reads of an absent
// document can carry the same read time. Nothing deletes this document, and
// every create or takeover commits it in the same batch as the lease with a
// precondition on the version read, so two acquisitions that read the same
// high-water mark cannot both commit.

const (
	epochDocSuffix = "_epoch"
	fHighWater     = "epoch"
	fHighWaterAt   = "updatedAt"
)

// highWater is the high-water document as read.
type highWater struct {
	Exists     bool
	Epoch      int64 // 0 when absent or unreadable
	UpdateTime time.Time
}

func parseHighWater(snap *firestore.DocumentSnapshot) highWater {
	if snap == nil || !snap.Exists() {
		return highWater{}
	}
	hw := highWater{Exists: true, UpdateTime: snap.UpdateTime}
	// Unreadable (edited by hand): the decided epoch, at least the read
	// time, is still larger than any epoch wactl wrote.
	if e, err := number(snap.Data()[fHighWater]); err == nil && e > 0 {
		hw.Epoch = e
	}
	return hw
}

// epochAbove is the epoch an acquisition writes: the one decide chose,
// raised past every epoch committed before.
func epochAbove(decided int64, hw highWater) int64 {
	return max(decided, hw.Epoch+1)
}

// readLeaseAndHighWater reads both documents at one read time.
func (f *Firestore) readLeaseAndHighWater(ctx context.Context) (*firestore.DocumentSnapshot, bool, highWater, error) {
	snaps, err := f.opt.Client.GetAll(ctx, []*firestore.DocumentRef{f.doc, f.epochDoc})
	if err != nil {
		return nil, false, highWater{}, err
	}
	lease := snaps[0]
	f.hookReadTime(lease)
	return lease, lease.Exists(), parseHighWater(snaps[1]), nil
}

// writeHighWater adds the high-water write to an acquisition's batch,
// conditional on the version read.
func (f *Firestore) writeHighWater(b *firestore.WriteBatch, epoch int64, hw highWater) {
	if !hw.Exists {
		b.Create(f.epochDoc, map[string]any{fHighWater: epoch, fHighWaterAt: firestore.ServerTimestamp})
		return
	}
	b.Update(f.epochDoc, []firestore.Update{
		{Path: fHighWater, Value: epoch},
		{Path: fHighWaterAt, Value: firestore.ServerTimestamp},
	}, firestore.LastUpdateTime(hw.UpdateTime))
}
