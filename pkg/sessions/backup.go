package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// BackupOptions configures TakeSnapshot.
type BackupOptions struct {
	// Accounts to take; empty: every account of the store.
	Accounts []string
	// Instance and WactlVersion are recorded in the snapshot.
	Instance     string
	WactlVersion string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// AccountFailure is an account a backup could not read, or a restore
// refused or failed.
type AccountFailure struct {
	AccountID string `json:"accountId"`
	Error     string `json:"error"`
}

// TakeSnapshot exports the accounts one by one, each in its own read
// transaction, while the daemon may keep running. An account that cannot be
// read (a corrupt database) is reported in failures and left out, so one
// bad account does not stop the backups of the others; an account named in
// opts.Accounts that does not exist is an error.
func TakeSnapshot(ctx context.Context, st Snapshotter, opts BackupOptions) (*Snapshot, []AccountFailure, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ids := opts.Accounts
	if len(ids) == 0 {
		var err error
		if ids, err = st.SnapshotAccountIDs(ctx); err != nil {
			return nil, nil, err
		}
	}
	snap := &Snapshot{
		Format: SnapshotFormat, FormatVersion: SnapshotFormatVersion, CreatedAt: now().UTC(),
		Instance: opts.Instance, WactlVersion: opts.WactlVersion, Accounts: make([]AccountSnapshot, 0, len(ids)),
	}
	var failures []AccountFailure
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		a, err := st.ExportAccount(ctx, id)
		if err != nil {
			if len(opts.Accounts) > 0 {
				return nil, nil, fmt.Errorf("back up %s: %w", id, err)
			}
			failures = append(failures, AccountFailure{AccountID: id, Error: err.Error()})
			continue
		}
		snap.Accounts = append(snap.Accounts, *a)
	}
	return snap, failures, nil
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Accounts to restore; empty: every account of the snapshot.
	Accounts []string
	// Force replaces a local account that changed after the snapshot was
	// taken (or whose change time the store cannot tell). It never
	// replaces an account a running process holds: that process would keep
	// writing to the copy it has open.
	Force bool
}

// Restore outcomes.
const (
	OutcomeRestored     = "restored"      // there was no such account
	OutcomeReplaced     = "replaced"      // an older local copy was replaced (and kept)
	OutcomeUnchanged    = "unchanged"     // the local account already equals the snapshot
	OutcomeRefusedLive  = "refused-live"  // a running process holds the account
	OutcomeRefusedNewer = "refused-newer" // the local account changed after the snapshot
	OutcomeFailed       = "failed"
)

// RestoredAccount is what Restore did with one account.
type RestoredAccount struct {
	AccountID  string    `json:"accountId"`
	Outcome    string    `json:"outcome"`
	DeviceJID  string    `json:"deviceJid,omitempty"`
	SnapshotAt time.Time `json:"snapshotAt"`
	MovedTo    string    `json:"oldCopy,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Refused reports whether the account was not restored.
func (r RestoredAccount) Refused() bool {
	switch r.Outcome {
	case OutcomeRestored, OutcomeReplaced, OutcomeUnchanged:
		return false
	}
	return true
}

// ErrLocalNewer refuses to replace an account that changed after the snapshot.
var ErrLocalNewer = errors.New("the local account changed after the backup was taken")

// Restore writes the snapshot's accounts into st, each all or nothing and
// verified. It goes on after a refused account and reports each; the error
// is only for a request that cannot be met at all (an account id that is
// not in the snapshot).
func Restore(ctx context.Context, st Snapshotter, snap *Snapshot, opts RestoreOptions) ([]RestoredAccount, error) {
	todo := snap.Accounts
	if len(opts.Accounts) > 0 {
		todo = nil
		for _, id := range opts.Accounts {
			i := slices.IndexFunc(snap.Accounts, func(a AccountSnapshot) bool { return a.AccountID == id })
			if i < 0 {
				return nil, fmt.Errorf("account %s is not in this backup", id)
			}
			todo = append(todo, snap.Accounts[i])
		}
	}
	out := make([]RestoredAccount, 0, len(todo))
	for i := range todo {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		a := &todo[i]
		r := RestoredAccount{AccountID: a.AccountID, DeviceJID: a.DeviceJID, SnapshotAt: a.SnapshotAt}
		res, err := st.ImportAccount(ctx, a, restoreCheck(a, opts.Force))
		var inUse *InUseError
		switch {
		case errors.As(err, &inUse):
			r.Outcome = OutcomeRefusedLive
			r.Detail = err.Error() + "; a restore never replaces an account a process holds, even with --force"
		case errors.Is(err, ErrLocalNewer):
			r.Outcome = OutcomeRefusedNewer
			r.Detail = err.Error()
		case err != nil:
			r.Outcome = OutcomeFailed
			r.Detail = err.Error()
		case res.Skipped:
			r.Outcome = OutcomeUnchanged
		case res.Replaced:
			r.Outcome, r.MovedTo = OutcomeReplaced, res.MovedTo
		default:
			r.Outcome = OutcomeRestored
		}
		out = append(out, r)
	}
	return out, nil
}

// restoreCheck is the policy: restore where there is nothing; leave an
// identical account alone; replace an account last changed before the
// snapshot; refuse one changed after it unless forced.
func restoreCheck(snap *AccountSnapshot, force bool) ImportCheck {
	return func(local *LocalAccount) (ImportDecision, error) {
		if local == nil {
			return ImportWrite, nil
		}
		if accountMatches(local.Snapshot, snap) == nil {
			return ImportSkip, nil
		}
		if force {
			return ImportWrite, nil
		}
		if local.ModifiedAt.IsZero() {
			return 0, fmt.Errorf("%w (the store cannot tell when it last changed); --force replaces it, keeping the old copy", ErrLocalNewer)
		}
		if local.ModifiedAt.After(snap.SnapshotAt) {
			return 0, fmt.Errorf("%w: local change %s, backup %s; --force replaces it, keeping the old copy",
				ErrLocalNewer, local.ModifiedAt.UTC().Format(time.RFC3339), snap.SnapshotAt.UTC().Format(time.RFC3339))
		}
		return ImportWrite, nil
	}
}
