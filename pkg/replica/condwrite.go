package replica

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The pointer document is written with a plain read and a conditional
// write, never a transaction: a transaction's read holds a lock until it
// ends, and one whose process died (kill -9) between its read and its
// commit left the pointer locked for the minute and more Firestore (and
// its emulator) takes to expire it. The next lease holder's copy of that
// account was then aborted and retried until it gave up — at failover,
// exactly when it must write its first copy
// (TestPointerWriteOfAKilledHostLocksNothing). The precondition gives what
// the transaction's re-read gave: the write lands only on the version that
// was read, so every check made on that version (epoch, generation,
// tombstone) still holds when it lands.

// pointerWriteHook, when set (tests only), runs between a pointer write's
// read and its write: a process killed there leaves whatever the read took.
var pointerWriteHook func(r *Replica, id string)

// chunkWriteHook, when set (tests only), runs after each chunk a copy
// writes: a host stalled there goes on writing after the next holder's
// copy.
var chunkWriteHook func(r *Replica, id string, n int)

// cleanupHook, when set (tests only), runs after a copy's flip or a
// delete's tombstone, before chunks are deleted: a host stalled there
// wakes up after the next holder's copies.
var cleanupHook func(r *Replica, id string)

// replace writes data as the whole document ref (Set's result) only if
// the document is still the version snap read: the same update time, or
// still absent when snap is nil. Fields of that version that data lacks
// are deleted. A lost race fails with an error lostRace recognises.
func replace(ctx context.Context, ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot, data map[string]any) error {
	if snap == nil || !snap.Exists() {
		_, err := ref.Create(ctx, data)
		return err
	}
	ups := make([]firestore.Update, 0, len(data)+2)
	for k, v := range data {
		ups = append(ups, firestore.Update{FieldPath: firestore.FieldPath{k}, Value: v})
	}
	// The precondition makes this the exact field set of the version the
	// update replaces.
	for k := range snap.Data() {
		if _, ok := data[k]; !ok {
			ups = append(ups, firestore.Update{FieldPath: firestore.FieldPath{k}, Value: firestore.Delete})
		}
	}
	_, err := ref.Update(ctx, ups, firestore.LastUpdateTime(snap.UpdateTime))
	return err
}

// lostRace says a conditional write found the document changed since it
// was read: created meanwhile, updated, or deleted.
func lostRace(err error) bool {
	switch status.Code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition, codes.NotFound:
		return true
	}
	return false
}

// pointerFields is in as the pointer document holds it: the fields of
// Info's firestore tags (deleted and deletedAt only on a tombstone).
func pointerFields(in *Info) map[string]any {
	m := map[string]any{
		"accountId": in.AccountID, "generation": in.Generation, "epoch": in.Epoch,
		"snapshotAt": in.SnapshotAt, "writtenAt": in.WrittenAt, "format": in.Format,
		"snapshotFormatVersion": int64(in.FormatVer), "storeVersion": int64(in.StoreVersion),
		"sourceStore": in.SourceStore, "recipientFingerprint": in.Recipient, "chunks": int64(in.Chunks),
		"bytes": in.Bytes, "sha256": in.SHA256, "instance": in.Instance,
	}
	if in.Deleted {
		m["deleted"] = true
	}
	if !in.DeletedAt.IsZero() {
		m["deletedAt"] = in.DeletedAt
	}
	return m
}

// pause waits before another attempt after a lost race.
func pause(ctx context.Context, attempt int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(5<<attempt) * time.Millisecond):
		return nil
	}
}
