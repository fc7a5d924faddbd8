package sessions

import (
	"context"
	"errors"
	"fmt"
)

// MigrateOptions configures Migrate.
type MigrateOptions struct {
	// Accounts limits the migration to these ids; empty: every account.
	Accounts []string
	// RemoveSource takes each account out of the source store once its copy
	// is verified (kept like `accounts remove` keeps it: removed/ or
	// wactl_removed_accounts, never purged).
	RemoveSource bool
}

// Migration outcomes.
const (
	MigrateCopied    = "copied"    // written to the destination and verified
	MigrateIdentical = "identical" // the destination already had the same account
	MigrateInUse     = "refused-in-use"
	MigrateConflict  = "refused-conflict" // the destination has a different account of that id
	MigrateFailed    = "failed"
)

// MigratedAccount is one account's result.
type MigratedAccount struct {
	AccountID     string `json:"accountId"`
	DeviceJID     string `json:"deviceJid,omitempty"`
	Rows          int    `json:"rows"`
	Outcome       string `json:"outcome"`
	SourceRemoved string `json:"sourceRemovedTo,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

// Refused reports whether the account was not moved.
func (m MigratedAccount) Refused() bool {
	return m.Outcome != MigrateCopied && m.Outcome != MigrateIdentical
}

// ErrMigrateConflict: the destination has a different account of that id.
var ErrMigrateConflict = errors.New("the destination store already has a different account with this id")

// Migrate copies accounts from src to dst (per-account SQLite files to
// PostgreSQL or back). Each account is copied under its source lock, so no
// process can drive it meanwhile (one that holds it refuses the account):
// exported in one read transaction, imported all or nothing (the
// destination reads it back before committing), then exported from the
// destination again and compared. The source stays unless RemoveSource.
// An account the destination already has is left alone when identical and
// refused when different: Migrate never overwrites.
func Migrate(ctx context.Context, src, dst *Store, opts MigrateOptions) ([]MigratedAccount, error) {
	if src.Kind() == dst.Kind() {
		return nil, fmt.Errorf("source and destination are both %s", src.Kind())
	}
	ids := opts.Accounts
	if len(ids) == 0 {
		var err error
		if ids, err = src.SnapshotAccountIDs(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]MigratedAccount, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, migrateOne(ctx, src, dst, id, opts.RemoveSource))
	}
	return out, nil
}

func migrateOne(ctx context.Context, src, dst *Store, id string, removeSource bool) MigratedAccount {
	r := MigratedAccount{AccountID: id}
	fail := func(outcome string, err error) MigratedAccount {
		r.Outcome, r.Detail = outcome, err.Error()
		return r
	}
	lock, err := src.Lock(id)
	if err != nil {
		if errors.As(err, new(*InUseError)) {
			return fail(MigrateInUse, err)
		}
		return fail(MigrateFailed, err)
	}
	snap, err := src.ExportAccount(ctx, id)
	if err != nil {
		lock.Release()
		return fail(MigrateFailed, fmt.Errorf("read from %s: %w", src.Kind(), err))
	}
	r.DeviceJID, r.Rows = snap.DeviceJID, snap.RowCount()
	if len(snap.Tables) == 0 && dst.Kind() == StoreKindSQLite {
		// An account never paired has no rows in PostgreSQL, while its
		// SQLite file, once created, has every table, empty: give the
		// snapshot those empty tables, or the SQLite store's read-back
		// comparison sees a difference.
		for _, spec := range whatsmeowTables {
			snap.Tables = append(snap.Tables, Table{Name: spec.name, Columns: spec.columns, Rows: [][]any{}})
		}
		snap.seal()
	}
	identical := false
	_, err = dst.ImportAccount(ctx, snap, func(local *LocalAccount) (ImportDecision, error) {
		if local == nil {
			return ImportWrite, nil
		}
		if accountMatches(local.Snapshot, snap) == nil {
			identical = true
			return ImportSkip, nil
		}
		return ImportSkip, ErrMigrateConflict
	})
	if err == nil {
		err = verifyMigrated(ctx, dst, snap)
	}
	lock.Release()
	switch {
	case errors.Is(err, ErrMigrateConflict):
		return fail(MigrateConflict, fmt.Errorf("%w (%s); compare them (wactl sessions backup --account %s from each store) and remove the one to drop", err, dst.Kind(), id))
	case errors.As(err, new(*InUseError)):
		return fail(MigrateInUse, err)
	case err != nil:
		return fail(MigrateFailed, fmt.Errorf("write to %s: %w; the source is untouched", dst.Kind(), err))
	}
	r.Outcome = MigrateCopied
	if identical {
		r.Outcome = MigrateIdentical
	}
	if removeSource {
		moved, err := src.Remove(id, RemoveOptions{})
		if err != nil {
			r.Detail = "copied and verified, but the source was not removed: " + err.Error()
			return r
		}
		r.SourceRemoved = moved
	}
	return r
}

// verifyMigrated reads the account back from dst and compares it with
// what was read from the source.
func verifyMigrated(ctx context.Context, dst *Store, snap *AccountSnapshot) error {
	back, err := dst.ExportAccount(ctx, snap.AccountID)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if err := accountMatches(back, snap); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
