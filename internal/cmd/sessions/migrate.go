package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/sessions"
)

// MigrateOptions of `wactl sessions migrate`.
type MigrateOptions struct {
	IO   *iostreams.IOStreams
	Load func() (*config.Loaded, error)
	// DialAdmin finds a daemon on the data dir; default daemon.DialAdmin.
	DialAdmin func(dataDir string) (*daemon.AdminClient, error)

	To           string
	Accounts     []string
	RemoveSource bool
	JSON         bool
}

const migrateExitCodes = `Exit codes:
  0    every account is in the destination store and verified
  1    failure: nothing was migrated (a daemon runs, a store is unreachable)
  2    bad flags or arguments
  3    some accounts were refused (held by a process, or a different account of
       that id in the destination) or failed; the others are migrated
  78   invalid configuration
  130  interrupted (SIGINT/SIGTERM)`

func newMigrate(f *cmdutil.Factory) *cobra.Command {
	o := &MigrateOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "migrate --to postgres|sqlite [--account ID] [--remove-source]",
		Short: "Move every account's session between the SQLite and the PostgreSQL device store",
		Long: `Copy every account (or --account ID) from one device store to the other:
from the per-account SQLite files under sessions.path to the PostgreSQL
database of sessions.postgres_dsn (--to postgres), or back (--to sqlite).
Both must be configured; sessions.store does not have to be changed first.

The service must be stopped: migrate refuses while a daemon answers on this
data dir's admin socket, and refuses each account that a process holds
(wactl serve on another host, with PostgreSQL). Each account is copied
under its lock in one transaction, read back from the destination and
compared with the source. An account the destination already has is left
alone when identical and refused when different: nothing is overwritten.

The source stays until --remove-source, which takes each verified account
out of the source the way 'wactl accounts remove' does (kept under
removed/ or in wactl_removed_accounts, never deleted). Then set
sessions.store to the destination and start the service.

` + migrateExitCodes,
		Example: `  wactl sessions migrate --to postgres
  wactl sessions migrate --to postgres --remove-source
  wactl sessions migrate --to sqlite --account account_prod_0123…`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunMigrate(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.To, "to", "", "destination store: postgres or sqlite")
	fl.StringSliceVar(&o.Accounts, "account", nil, "migrate only this account (repeatable)")
	fl.BoolVar(&o.RemoveSource, "remove-source", false, "after each account is verified, take it out of the source store (kept, not deleted)")
	fl.BoolVar(&o.JSON, "json", false, "print a JSON summary")
	return cmd
}

// MigrateReport is the --json summary.
type MigrateReport struct {
	From     string                     `json:"from"`
	To       string                     `json:"to"`
	Accounts []sessions.MigratedAccount `json:"accounts"`
}

// RunMigrate migrates the accounts.
func RunMigrate(ctx context.Context, o *MigrateOptions) error {
	if o.To != sessions.StoreKindPostgres && o.To != sessions.StoreKindSQLite {
		return cmdutil.FlagErrorf("--to must be postgres or sqlite")
	}
	for _, id := range o.Accounts {
		if err := sessions.ValidAccountID(id); err != nil {
			return cmdutil.FlagErrorf("--account: %v", err)
		}
	}
	l, err := o.Load()
	if err != nil {
		return err
	}
	cfg := &l.Config
	if cfg.Sessions.PostgresDSN == "" {
		return cmdutil.FlagErrorf("sessions.postgres_dsn is not set: give the PostgreSQL store as WACTL_SESSIONS_POSTGRES_DSN_FILE (or in the config file) for both directions")
	}
	dial := o.DialAdmin
	if dial == nil {
		dial = daemon.DialAdmin
	}
	switch _, derr := dial(cfg.DataDir); {
	case derr == nil:
		return errors.New("a wactl daemon is running on this data dir: stop it (systemctl stop wactl) before migrating; nothing was migrated")
	case !errors.Is(derr, daemon.ErrNoDaemon):
		return fmt.Errorf("%w; nothing was migrated", derr)
	}

	log := slog.New(slog.DiscardHandler)
	lite, err := sessions.Open(cfg.Sessions.Path, sessions.Options{InstanceID: cfg.InstanceID, Logger: log})
	if err != nil {
		return err
	}
	defer lite.Close()
	pg, err := sessions.Open(cfg.Sessions.Path, sessions.Options{InstanceID: cfg.InstanceID, Logger: log,
		Postgres: &sessions.PostgresOptions{DSN: cfg.Sessions.PostgresDSN, MaxConns: cfg.Sessions.PostgresMaxConns, Timeout: cfg.Sessions.PostgresTimeout}})
	if err != nil {
		return fmt.Errorf("%w; nothing was migrated", err)
	}
	defer pg.Close()
	src, dst := lite, pg
	if o.To == sessions.StoreKindSQLite {
		src, dst = pg, lite
	}
	results, err := sessions.Migrate(ctx, src, dst, sessions.MigrateOptions{Accounts: o.Accounts, RemoveSource: o.RemoveSource})
	if err != nil {
		return err
	}
	refused := 0
	for _, r := range results {
		if r.Refused() {
			refused++
			fmt.Fprintf(o.IO.ErrOut, "%s %s %s: %s\n", o.IO.StyleErr().Red("error:"), r.AccountID, r.Outcome, r.Detail)
		} else if r.Detail != "" {
			fmt.Fprintf(o.IO.ErrOut, "warning: %s: %s\n", r.AccountID, r.Detail)
		}
	}
	if o.JSON {
		if err := cmdutil.WriteJSON(o.IO.Out, MigrateReport{From: src.Kind(), To: dst.Kind(), Accounts: results}); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Refused() {
				continue
			}
			line := fmt.Sprintf("%s %s %s to %s (%d rows)", o.IO.StyleOut().OK(), r.AccountID, r.Outcome, dst.Kind(), r.Rows)
			if r.SourceRemoved != "" {
				line += "; source kept at " + r.SourceRemoved
			}
			fmt.Fprintln(o.IO.Out, line)
		}
		if refused == 0 {
			fmt.Fprintf(o.IO.Out, "%d accounts in %s; set sessions.store: %s before starting the service\n", len(results), dst.Kind(), dst.Kind())
		}
	}
	if refused > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Err: fmt.Errorf("%d of %d accounts not migrated", refused, len(results))}
	}
	return nil
}
