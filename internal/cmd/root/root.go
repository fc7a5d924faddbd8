// Package root assembles wactl's command tree.
package root

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/buildinfo"
	"github.com/wactl/wactl/internal/cmd/accounts"
	auditcmd "github.com/wactl/wactl/internal/cmd/audit"
	cleanupcmd "github.com/wactl/wactl/internal/cmd/cleanup"
	"github.com/wactl/wactl/internal/cmd/configcmd"
	doctorcmd "github.com/wactl/wactl/internal/cmd/doctor"
	journalcmd "github.com/wactl/wactl/internal/cmd/journal"
	leasecmd "github.com/wactl/wactl/internal/cmd/lease"
	paircmd "github.com/wactl/wactl/internal/cmd/pair"
	"github.com/wactl/wactl/internal/cmd/serve"
	sessionscmd "github.com/wactl/wactl/internal/cmd/sessions"
	"github.com/wactl/wactl/internal/cmd/version"
	"github.com/wactl/wactl/internal/cmdutil"
)

// New returns the root command.
func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wactl",
		Short: "Run and operate WhatsApp accounts for a business backend",
		Long: `wactl keeps WhatsApp accounts connected, records every message once,
and gives operators the tools to pair, audit and repair them.

Configuration comes from defaults, then a YAML file (--config, else
/etc/wactl/config.yaml, else ./wactl.yaml), then WACTL_* environment
variables, then flags. See 'wactl config show'.`,
		SilenceUsage:  true, // usage only for flag errors, printed by HandleError
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	pf := cmd.PersistentFlags()
	pf.String("config", "", "configuration file (default /etc/wactl/config.yaml or ./wactl.yaml; env WACTL_CONFIG)")
	pf.String("data-dir", "", "directory for local state (default $STATE_DIRECTORY, else the running service's from /run/wactl/data_dir, else ./wactl-data)")
	pf.String("instance-id", "", "stable name of this instance (default: host name)")
	pf.String("log-level", "", "log level: debug, info, warn, error (default info)")
	pf.String("log-format", "", "log format: auto, text, json (default auto)")

	cmd.AddCommand(version.New(f))
	cmd.AddCommand(configcmd.New(f))
	cmd.AddCommand(serve.New(f))
	cmd.AddCommand(paircmd.New(f))
	cmd.AddCommand(accounts.New(f))
	cmd.AddCommand(auditcmd.New(f), cleanupcmd.New(f))
	cmd.AddCommand(doctorcmd.New(f))
	cmd.AddCommand(journalcmd.New(f))
	cmd.AddCommand(leasecmd.New(f))
	cmd.AddCommand(sessionscmd.New(f))
	info := buildinfo.Get()
	cmd.Version = info.Version
	cmd.SetVersionTemplate(fmt.Sprintf("wactl %s (commit %s)\n", info.Version, info.Commit))
	addExitCodes(cmd)
	refuseUnknownSubcommands(cmd)
	return cmd
}

// addExitCodes gives every command exactly one exit-code table: its own
// where its help already has one (a command whose codes differ, such as
// serve or audit), else the common table.
func addExitCodes(c *cobra.Command) {
	if c.Long == "" {
		c.Long = c.Short
	}
	if !strings.Contains(c.Long, "Exit codes:") {
		c.Long += "\n\n" + cmdutil.ExitCodesHelp
	}
	for _, sub := range c.Commands() {
		addExitCodes(sub)
	}
}

// refuseUnknownSubcommands makes a command group (audit, accounts, ...)
// treat an argument as a mistyped subcommand: cobra would print the group's
// help and exit 0, which hides the typo from a script or cron.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c == c.Root() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // what cobra uses at the root
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return &cmdutil.FlagError{Err: errors.New(msg)}
	}
}
