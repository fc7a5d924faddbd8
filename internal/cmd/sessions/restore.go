package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/sessions"
)

// RestoreOptions of `wactl sessions restore`.
type RestoreOptions struct {
	IO   *iostreams.IOStreams
	Load func() (*config.Loaded, error)

	File              string
	Identities        []string
	PassphraseFile    string
	Accounts          []string
	Force             bool
	InsecurePlaintext bool
	JSON              bool
	Quiet             bool
}

const restoreExitCodes = `Exit codes:
  0    every selected account is restored (or already identical)
  1    failure: the file cannot be opened (wrong key, damaged, truncated); nothing was written
  2    bad flags or arguments
  3    some accounts were refused (in use, or changed after the backup) or failed; the others are restored
  78   invalid configuration
  130  interrupted (SIGINT/SIGTERM)`

func newRestore(f *cmdutil.Factory) *cobra.Command {
	o := &RestoreOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "restore FILE (--identity FILE | --passphrase-file FILE) [--account ID] [--force]",
		Short: "Put the accounts of a backup into the sessions store",
		Long: `Put the accounts of a backup made by 'wactl sessions backup' into the
sessions store; works on a host with an empty data dir.

The whole file is decrypted and checked first: a wrong key, a damaged or
truncated file is refused before anything is written. Then each account
is written to a temporary place, read back and compared with the backup,
and only then moved into place, so an account is never half restored.

An account that does not exist here is restored. One identical to the
backup is left alone. One that changed after the backup was taken is
refused unless --force; with --force (or when the local copy is older than
the backup) the local copy is replaced and kept under <sessions>/removed/
(<time>-<id>.before-restore/ with sessions.store sqlite; a 0600 plaintext
snapshot file <time>-<id>.before-restore.snapshot with postgres, which
cannot tell when an account changed and so always needs --force to
replace one that differs). An account that a running
process holds (wactl serve has it connected) is always refused: stop the
service, or remove the account from it, first; --force does not override
this, because that process would keep writing to the copy it has open.

A restored session is as old as its backup: see docs/sessions.md for
what happens to messages exchanged after it.

` + restoreExitCodes,
		Example: `  wactl sessions restore /var/backups/wactl-2026-12-04.age --identity /root/wactl-backup.key
  wactl sessions restore acct.age --passphrase-file /etc/wactl/backup.pass --account account_prod_0123… --force`,
		Args: cmdutil.ExactArgs(1, "the backup file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunRestore(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.Identities, "identity", "i", nil, "age identity file (AGE-SECRET-KEY-1…) that opens the backup (repeatable)")
	fl.StringVar(&o.PassphraseFile, "passphrase-file", "", "the backup's passphrase, in this file's first line")
	fl.StringSliceVar(&o.Accounts, "account", nil, "restore only this account (repeatable)")
	fl.BoolVar(&o.Force, "force", false, "replace local accounts that changed after the backup (the old copy is kept under removed/)")
	fl.BoolVar(&o.InsecurePlaintext, "insecure-plaintext", false, "accept a backup written with --insecure-plaintext")
	fl.BoolVar(&o.JSON, "json", false, "print a JSON summary")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing on success, even on a terminal (problems still go to stderr)")
	return cmd
}

// RestoreReport is the --json summary.
type RestoreReport struct {
	File      string                     `json:"file"`
	CreatedAt time.Time                  `json:"backupCreatedAt"`
	Store     string                     `json:"store"`
	Accounts  []sessions.RestoredAccount `json:"accounts"`
}

func (o *RestoreOptions) identities() ([]age.Identity, error) {
	var ids []age.Identity
	for _, path := range o.Identities {
		list, err := sessions.IdentitiesFromFile(path)
		if err != nil {
			return nil, cmdutil.FlagErrorf("%v", err)
		}
		ids = append(ids, list...)
	}
	if o.PassphraseFile != "" {
		pass, err := sessions.PassphraseFromFile(o.PassphraseFile)
		if err != nil {
			return nil, cmdutil.FlagErrorf("%v", err)
		}
		id, err := sessions.PassphraseIdentity(pass)
		if err != nil {
			return nil, cmdutil.FlagErrorf("--passphrase-file: %v", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// RunRestore restores the backup.
func RunRestore(ctx context.Context, o *RestoreOptions) error {
	for _, id := range o.Accounts {
		if err := sessions.ValidAccountID(id); err != nil {
			return cmdutil.FlagErrorf("--account: %v", err)
		}
	}
	ids, err := o.identities()
	if err != nil {
		return err
	}
	// The file is opened and verified before the store is touched.
	snap, err := sessions.ReadBackup(o.File, ids, o.InsecurePlaintext)
	switch {
	case errors.Is(err, sessions.ErrNeedKey), errors.Is(err, sessions.ErrPlaintext):
		return cmdutil.FlagErrorf("%v; nothing was restored", err)
	case err != nil:
		return fmt.Errorf("%w; nothing was restored", err)
	}
	l, err := o.Load()
	if err != nil {
		return err
	}
	st, err := openStore(&l.Config)
	if err != nil {
		return err
	}
	defer st.Close()
	results, err := sessions.Restore(ctx, st, snap, sessions.RestoreOptions{Accounts: o.Accounts, Force: o.Force})
	if err != nil {
		return fmt.Errorf("%w; nothing was restored", err)
	}
	refused := 0
	for _, r := range results {
		if r.Refused() {
			refused++
			fmt.Fprintf(o.IO.ErrOut, "%s %s %s: %s\n", o.IO.StyleErr().Red("error:"), r.AccountID, r.Outcome, r.Detail)
		}
	}
	switch {
	case o.JSON:
		if err := cmdutil.WriteJSON(o.IO.Out, RestoreReport{File: o.File, CreatedAt: snap.CreatedAt, Store: st.StoreKind(), Accounts: results}); err != nil {
			return err
		}
	case o.IO.IsStdoutTTY() && !o.Quiet:
		for _, r := range results {
			if r.Refused() {
				continue
			}
			line := fmt.Sprintf("%s %s %s (backup of %s)", o.IO.StyleOut().OK(), r.AccountID, r.Outcome, r.SnapshotAt.UTC().Format(time.RFC3339))
			if r.MovedTo != "" {
				line += "; the replaced copy is in " + r.MovedTo
			}
			fmt.Fprintln(o.IO.Out, line)
		}
	}
	if refused > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Err: fmt.Errorf("%d of %d accounts not restored", refused, len(results))}
	}
	return nil
}
