// Package sessions implements `wactl sessions backup` and `wactl sessions
// restore`: encrypted, store-agnostic snapshots of the accounts' sessions
// (pkg/sessions/backup*.go, snapshot*.go).
package sessions

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/sessions"
)

func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "Back up and restore the accounts' sessions (encrypted with age), or move them between device stores"}
	cmd.AddCommand(newBackup(f), newRestore(f), newMigrate(f))
	return cmd
}

// openStore is the device store of the configuration (per-account SQLite
// files, or PostgreSQL); both implement sessions.Snapshotter. The caller
// closes it.
func openStore(cfg *config.Config) (*sessions.Store, error) {
	return wiring.Sessions(cfg, slog.New(slog.DiscardHandler))
}
