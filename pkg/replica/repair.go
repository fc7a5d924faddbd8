package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/wactl/wactl/pkg/sessions"
)

// RepairPointer replaces a damaged pointer document, for the operator
// (`wactl doctor --fix`; the lease holder's next Put does the same on its
// own). It rebuilds the pointer from the newest generation whose chunks
// are complete and open with this host's key as this account; when none
// does, it leaves a tombstone above every generation, so the holder's next
// copy is written cleanly. Either way the write is conditional on the
// damaged document's update time and keeps the epoch it shows. A pointer
// that is not damaged is returned unchanged.
func (r *Replica) RepairPointer(ctx context.Context, id string) (*Info, error) {
	snap, in, err := r.read(ctx, id)
	if err == nil {
		return in, nil
	}
	if !errors.Is(err, ErrDamagedPointer) {
		return nil, err
	}
	epoch := intField(snap, "epoch")
	docs, err := r.doc(id).Collection(chunksSub).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("read the chunks of %s/%s: %w", Collection, id, err)
	}
	byGen := map[int64]map[int64][]byte{}
	for _, d := range docs {
		g, n := intField(d, "generation"), intField(d, "n")
		v, _ := d.DataAt("data")
		b, ok := v.([]byte)
		if g < 1 || !ok {
			continue
		}
		if byGen[g] == nil {
			byGen[g] = map[int64][]byte{}
		}
		byGen[g][n] = b
	}
	gens := make([]int64, 0, len(byGen))
	for g := range byGen {
		gens = append(gens, g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] > gens[j] })
	top := max(intField(snap, "generation"), 0)
	if len(gens) > 0 {
		top = max(top, gens[0])
	}
	for _, g := range gens {
		parts := byGen[g]
		var ct []byte
		n := int64(0)
		for ; parts[n] != nil; n++ {
			ct = append(ct, parts[n]...)
		}
		if int(n) != len(parts) {
			continue // a gap: an unfinished or damaged generation
		}
		a, err := r.Decrypt(ct)
		if err != nil || a.AccountID != id {
			continue
		}
		sum := sha256.Sum256(ct)
		fixed := &Info{
			AccountID: id, Generation: g, Epoch: epoch, SnapshotAt: a.SnapshotAt.UTC(), WrittenAt: r.o.Now().UTC(),
			Format: Format, FormatVer: sessions.SnapshotFormatVersion, StoreVersion: a.WhatsmeowSchema, SourceStore: a.SourceStore,
			Recipient: r.o.Key.Fingerprint(), Chunks: int(n), Bytes: int64(len(ct)), SHA256: hex.EncodeToString(sum[:]),
			Instance: r.o.Instance,
		}
		if err := r.flip(ctx, snap, fixed); err != nil {
			return nil, fmt.Errorf("repair %s/%s: %w", Collection, id, err)
		}
		return fixed, nil
	}
	now := r.o.Now().UTC()
	if pointerWriteHook != nil {
		pointerWriteHook(r, id)
	}
	err = replace(ctx, r.doc(id), snap, map[string]any{"accountId": id, "deleted": true, "deletedAt": now, "writtenAt": now,
		"generation": top, "epoch": epoch, "instance": r.o.Instance, "repaired": true})
	if lostRace(err) {
		err = fmt.Errorf("%w: the pointer changed meanwhile", ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("repair %s/%s: %w", Collection, id, err)
	}
	return nil, fmt.Errorf("%w: account %s: no complete generation of its chunks opens with this host's key; the pointer is now a tombstone at generation %d, and the ACTIVE host writes a new copy at the account's next change", ErrNoReplica, id, top)
}
