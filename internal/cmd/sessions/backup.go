package sessions

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/buildinfo"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/sessions"
)

// BackupOptions of `wactl sessions backup`.
type BackupOptions struct {
	IO   *iostreams.IOStreams
	Load func() (*config.Loaded, error)
	Now  func() time.Time

	Out               string
	Accounts          []string
	Recipients        []string
	RecipientsFiles   []string
	PassphraseFile    string
	InsecurePlaintext bool
	JSON              bool
	Quiet             bool
}

const backupExitCodes = `Exit codes:
  0    the backup is written with every account
  1    failure: no backup written (an existing --out file is left as it was)
  2    bad flags or arguments
  3    the backup is written, but some accounts could not be read (listed)
  78   invalid configuration
  130  interrupted (SIGINT/SIGTERM)`

func newBackup(f *cmdutil.Factory) *cobra.Command {
	o := &BackupOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "backup --out FILE (--recipient AGE_KEY | --recipients-file FILE | --passphrase-file FILE)",
		Short: "Write an encrypted snapshot of every account's session",
		Long: `Write a consistent snapshot of every account (or --account ID) to FILE:
each account's metadata and every row of its whatsmeow device store, read
in one read transaction per account. The daemon keeps running: a backup
never stops or blocks it.

The file is encrypted with age (https://age-encryption.org) to the
--recipient public keys (age1…, from age-keygen) and/or those of
--recipients-file, or to the passphrase in the first line of
--passphrase-file (scrypt). It is never written unencrypted unless
--insecure-plaintext says so. It is written atomically with mode 0600.

For cron: nothing is printed on success unless stdout is a terminal;
--json prints a summary; problems go to stderr with the exit code below.
Restore with 'wactl sessions restore FILE'. The limits (a restored session
is as old as its backup) are in docs/sessions.md.

` + backupExitCodes,
		Example: `  wactl sessions backup --out /var/backups/wactl-$(date +%F).age --recipients-file /etc/wactl/backup.pub
  wactl sessions backup --out acct.age --account account_prod_0123… --passphrase-file /etc/wactl/backup.pass`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunBackup(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Out, "out", "o", "", "file to write (replaced atomically; mode 0600)")
	fl.StringSliceVar(&o.Accounts, "account", nil, "back up only this account (repeatable)")
	fl.StringArrayVarP(&o.Recipients, "recipient", "r", nil, "encrypt to this age public key (age1…; repeatable)")
	fl.StringArrayVarP(&o.RecipientsFiles, "recipients-file", "R", nil, "encrypt to the age public keys in this file (repeatable)")
	fl.StringVar(&o.PassphraseFile, "passphrase-file", "", "encrypt to the passphrase in this file's first line (scrypt)")
	fl.BoolVar(&o.InsecurePlaintext, "insecure-plaintext", false, "write the snapshot UNENCRYPTED (anyone who reads the file can act as every phone)")
	fl.BoolVar(&o.JSON, "json", false, "print a JSON summary")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing on success, even on a terminal (problems still go to stderr)")
	return cmd
}

// BackupReport is the --json summary.
type BackupReport struct {
	File       string                    `json:"file"`
	Bytes      int64                     `json:"bytes"`
	Encrypted  bool                      `json:"encrypted"`
	Encryption string                    `json:"encryption"` // recipients | passphrase | none
	CreatedAt  time.Time                 `json:"createdAt"`
	Store      string                    `json:"store"`
	Accounts   []BackupAccount           `json:"accounts"`
	Failures   []sessions.AccountFailure `json:"failures"`
	DurationMS int64                     `json:"durationMs"`
}

// BackupAccount is one account of the summary.
type BackupAccount struct {
	ID         string    `json:"accountId"`
	DeviceJID  string    `json:"deviceJid,omitempty"`
	Paired     bool      `json:"paired"`
	Rows       int       `json:"rows"`
	SnapshotAt time.Time `json:"snapshotAt"`
}

func (o *BackupOptions) encryption() (sessions.Encryption, string, error) {
	var recs []age.Recipient
	r, err := sessions.ParseRecipients(o.Recipients)
	if err != nil {
		return sessions.Encryption{}, "", cmdutil.FlagErrorf("%v", err)
	}
	recs = append(recs, r...)
	for _, path := range o.RecipientsFiles {
		r, err := sessions.RecipientsFromFile(path)
		if err != nil {
			return sessions.Encryption{}, "", cmdutil.FlagErrorf("%v", err)
		}
		recs = append(recs, r...)
	}
	n := 0
	for _, set := range []bool{len(recs) > 0, o.PassphraseFile != "", o.InsecurePlaintext} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return sessions.Encryption{}, "", cmdutil.FlagErrorf("say how to encrypt the backup: --recipient age1… or --recipients-file FILE (make a key with age-keygen), or --passphrase-file FILE")
	case n > 1:
		return sessions.Encryption{}, "", cmdutil.FlagErrorf("use one of --recipient/--recipients-file, --passphrase-file or --insecure-plaintext")
	case o.InsecurePlaintext:
		return sessions.Encryption{Plaintext: true}, "none", nil
	case o.PassphraseFile != "":
		pass, err := sessions.PassphraseFromFile(o.PassphraseFile)
		if err != nil {
			return sessions.Encryption{}, "", cmdutil.FlagErrorf("%v", err)
		}
		r, err := sessions.PassphraseRecipient(pass)
		if err != nil {
			return sessions.Encryption{}, "", cmdutil.FlagErrorf("--passphrase-file: %v", err)
		}
		return sessions.Encryption{Recipients: []age.Recipient{r}}, "passphrase", nil
	}
	return sessions.Encryption{Recipients: recs}, "recipients", nil
}

// RunBackup writes the backup file.
func RunBackup(ctx context.Context, o *BackupOptions) error {
	if o.Out == "" {
		return cmdutil.FlagErrorf("--out FILE is required")
	}
	for _, id := range o.Accounts {
		if err := sessions.ValidAccountID(id); err != nil {
			return cmdutil.FlagErrorf("--account: %v", err)
		}
	}
	enc, encName, err := o.encryption()
	if err != nil {
		return err
	}
	now := o.Now
	if now == nil {
		now = time.Now
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
	start := now()
	snap, failures, err := sessions.TakeSnapshot(ctx, st, sessions.BackupOptions{
		Accounts: o.Accounts, Instance: l.Config.InstanceID, WactlVersion: buildinfo.Get().Version, Now: now,
	})
	if errors.Is(err, sessions.ErrNoAccount) {
		return fmt.Errorf("%w ('wactl accounts list' shows the accounts)", err)
	}
	if err != nil {
		return err
	}
	size, err := sessions.WriteBackup(o.Out, snap, enc)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(o.Out)
	rep := BackupReport{File: abs, Bytes: size, Encrypted: !enc.Plaintext, Encryption: encName, CreatedAt: snap.CreatedAt,
		Store: st.StoreKind(), Accounts: []BackupAccount{}, Failures: failures, DurationMS: now().Sub(start).Milliseconds()}
	if rep.Failures == nil {
		rep.Failures = []sessions.AccountFailure{}
	}
	for _, a := range snap.Accounts {
		rep.Accounts = append(rep.Accounts, BackupAccount{ID: a.AccountID, DeviceJID: a.DeviceJID, Paired: a.Paired(), Rows: a.RowCount(), SnapshotAt: a.SnapshotAt})
	}
	for _, f := range failures {
		fmt.Fprintf(o.IO.ErrOut, "%s %s not backed up: %s\n", o.IO.StyleErr().Red("error:"), f.AccountID, f.Error)
	}
	if enc.Plaintext {
		fmt.Fprintf(o.IO.ErrOut, "%s %s is NOT encrypted: anyone who reads it can act as every phone in it\n", o.IO.StyleErr().Yellow("warning:"), abs)
	}
	switch {
	case o.JSON:
		if err := cmdutil.WriteJSON(o.IO.Out, rep); err != nil {
			return err
		}
	case o.IO.IsStdoutTTY() && !o.Quiet:
		paired := 0
		for _, a := range rep.Accounts {
			if a.Paired {
				paired++
			}
		}
		fmt.Fprintf(o.IO.Out, "%s %d accounts (%d paired) backed up to %s (%d bytes, encryption: %s)\n",
			o.IO.StyleOut().OK(), len(rep.Accounts), paired, abs, size, encName)
	}
	if len(failures) > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Err: fmt.Errorf("%d of %d accounts could not be read; the backup holds the others", len(failures), len(failures)+len(rep.Accounts))}
	}
	return nil
}
