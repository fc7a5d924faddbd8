package replica

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/api/iterator"

	"github.com/wactl/wactl/pkg/sessions"
)

// List returns the ids of the accounts that have a copy, sorted.
func (r *Replica) List(ctx context.Context) ([]string, error) {
	refs, err := r.o.Client.Collection(Collection).DocumentRefs(ctx).GetAll()
	if err != nil && !errors.Is(err, iterator.Done) {
		return nil, fmt.Errorf("list %s: %w", Collection, err)
	}
	ids := make([]string, 0, len(refs))
	for _, ref := range refs {
		if sessions.ValidAccountID(ref.ID) == nil {
			ids = append(ids, ref.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Restore outcomes.
const (
	Restored  = "restored"   // there was no local session
	Replaced  = "replaced"   // an older local session was replaced (kept under removed/)
	Unchanged = "unchanged"  // the local session equals the copy
	KeptLocal = "kept-local" // the local session is at the copy's generation or later: it stays, and is copied next
	// UnpairedHere: the local account was logged out or reset at or after
	// the copy's generation; the copy would bring the session back, so it
	// is not restored (the daemon deletes it).
	UnpairedHere = "unpaired-here"
	NotPaired    = "not-paired" // the copy holds no device: nothing to restore
	NoReplica    = "no-replica" // nothing in Firestore
	Refused      = "refused"    // a damaged or foreign-key copy; the local session is untouched
	InUse        = "in-use"     // a process holds the local account
	Failed       = "failed"     // the import failed; the local session is untouched
)

// RestoreResult is what RestoreAccount did.
type RestoreResult struct {
	AccountID  string
	Outcome    string
	Generation int64
	// Digest is the snapshot digest of the copy (empty when none was read):
	// the daemon starts its change detection from it, so a restored account
	// is not written back at once.
	Digest string
	Err    error
}

// RestoreAccount puts the copy of id into st before the account connects,
// when the local session is missing, or unpaired without having been in
// step with this copy, or in step with an older generation (LocalFile). A
// local session without LocalFile (from before generations were kept) is
// judged by file time: replaced when it last changed before the copy was
// taken. It never replaces a local session with a copy it cannot read: a
// damaged or foreign-key copy is refused with its error. After a restore,
// or when the local session equals the copy, LocalFile records the copy's
// generation.
func (r *Replica) RestoreAccount(ctx context.Context, st sessions.Snapshotter, id string) RestoreResult {
	res := RestoreResult{AccountID: id}
	a, in, err := r.Get(ctx, id)
	if in != nil {
		res.Generation = in.Generation
	}
	switch {
	case errors.Is(err, ErrNoReplica):
		res.Outcome = NoReplica
		return res
	case err != nil:
		res.Outcome, res.Err = Refused, err
		return res
	}
	res.Digest = a.Digest
	if !a.Paired() {
		res.Outcome = NotPaired
		return res
	}
	dir := ""
	if d, ok := st.(interface{ Dir(string) string }); ok {
		dir = d.Dir(id)
	}
	kept, unpairedHere := false, false
	ir, err := st.ImportAccount(ctx, a, func(local *sessions.LocalAccount) (sessions.ImportDecision, error) {
		if local == nil || local.Snapshot == nil {
			return sessions.ImportWrite, nil
		}
		localGen, hasGen := LocalGeneration(dir) // under the account's lock
		ls := local.Snapshot
		switch {
		case !ls.Paired() || ls.Metadata != nil && ls.Metadata.PairedJID == "":
			// Logged out or reset here after being in step with this
			// copy: the copy is what was logged out.
			if hasGen && localGen >= in.Generation {
				unpairedHere = true
				return sessions.ImportSkip, nil
			}
			return sessions.ImportWrite, nil
		case ls.Digest == a.Digest:
			return sessions.ImportSkip, nil
		case hasGen:
			if in.Generation > localGen {
				return sessions.ImportWrite, nil
			}
		case !local.ModifiedAt.IsZero() && local.ModifiedAt.Before(a.SnapshotAt):
			return sessions.ImportWrite, nil
		}
		kept = true
		return sessions.ImportSkip, nil
	})
	var inUse *sessions.InUseError
	switch {
	case errors.As(err, &inUse):
		res.Outcome, res.Err = InUse, err
	case err != nil:
		res.Outcome, res.Err = Failed, err
	case kept:
		res.Outcome, res.Digest = KeptLocal, ""
	case unpairedHere:
		res.Outcome, res.Digest = UnpairedHere, ""
	case ir.Skipped:
		res.Outcome = Unchanged
	case ir.Replaced:
		res.Outcome = Replaced
	default:
		res.Outcome = Restored
	}
	switch res.Outcome {
	case Restored, Replaced, Unchanged:
		if dir != "" {
			if err := WriteLocalGeneration(dir, id, in.Generation, r.o.Now()); err != nil {
				// The session is right; without the file the next restore
				// falls back to digests and file times.
				res.Err = fmt.Errorf("restored %s, but could not record its generation: %w", id, err)
			}
		}
	}
	return res
}
