// Package accounts implements `wactl accounts list` and `wactl accounts remove`.
package accounts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "accounts", Short: "List or remove the accounts in the sessions directory"}
	cmd.AddCommand(newList(f), newRemove(f))
	return cmd
}

// ListOptions of `wactl accounts list`.
type ListOptions struct {
	IO   *iostreams.IOStreams
	Load func() (*config.Loaded, error)
	JSON bool
}

func newList(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts: pairing state, and connection state when a daemon runs",
		Long: `List the accounts of the sessions directory with their pairing state
(paired, unpaired, corrupt…) and, when a wactl daemon runs on this data
dir, their connection state. A table on a terminal, JSON otherwise.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunList(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	return cmd
}

// Row is one account in the listing.
type Row struct {
	ID        string `json:"accountId"`
	Name      string `json:"name"`
	Phone     string `json:"phone"`
	Session   string `json:"session"` // paired | unpaired | missing | corrupt | unreadable
	DeviceJID string `json:"deviceJid,omitempty"`
	InUseBy   string `json:"inUseBy,omitempty"`
	State     string `json:"state,omitempty"` // from the running daemon
	Legacy    bool   `json:"legacyBaileys,omitempty"`
}

// RunList prints the accounts.
func RunList(ctx context.Context, o *ListOptions) error {
	l, err := o.Load()
	if err != nil {
		return err
	}
	rows, err := listRows(ctx, o, l)
	if err != nil {
		return err
	}
	if o.JSON || !o.IO.IsStdoutTTY() {
		return cmdutil.WriteJSON(o.IO.Out, map[string]any{"accounts": rows, "count": len(rows)})
	}
	if len(rows) == 0 {
		fmt.Fprintln(o.IO.ErrOut, "no accounts yet: pair one with 'wactl pair --phone +NUMBER'")
		return nil
	}
	st := o.IO.StyleOut()
	var table [][]string
	for _, r := range rows {
		session := r.Session
		switch r.Session {
		case "paired":
			session = st.Green(session)
		case "corrupt", "unreadable":
			session = st.Red(session)
		}
		table = append(table, []string{r.ID, dash(r.Name), dash(daemon.MaskPhone(r.Phone)), session, dash(r.State), dash(r.InUseBy)})
	}
	// The id is copied whole (pair --account, accounts remove); on a narrow
	// terminal the holder goes first, then the phone, then the name.
	cols := []iostreams.Column{{Header: "ACCOUNT"}, {Header: "NAME", Drop: 2, Wrap: true}, {Header: "PHONE", Drop: 3},
		{Header: "SESSION"}, {Header: "STATE"}, {Header: "IN USE BY", Drop: 4, Wrap: true}}
	width := o.IO.TerminalWidth()
	dropped, err := st.FitTable(o.IO.Out, width, cols, table)
	if err == nil && len(dropped) > 0 {
		_, err = fmt.Fprintln(o.IO.Out, st.Dim(iostreams.Wrap(fmt.Sprintf("(%s left out to fit %d columns; --json has every field)",
			strings.Join(dropped, ", "), width), width, 1)))
	}
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// RemoveOptions of `wactl accounts remove`.
type RemoveOptions struct {
	IO    *iostreams.IOStreams
	Load  func() (*config.Loaded, error)
	ID    string
	Purge bool
	Yes   bool
	JSON  bool
}

func newRemove(f *cmdutil.Factory) *cobra.Command {
	o := &RemoveOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "remove ACCOUNT_ID",
		Short: "Take an account out of service (its session is kept under removed/)",
		Long: `Take an account out of service. Its directory moves, whole, to
<sessions>/removed/<time>-<id>/ so it can be put back by moving it again;
with --purge it is deleted for good. A running daemon that holds the
account must let it go first (the command refuses and names the process).

With sessions.replica: firestore, the account's session copy in Firestore
is deleted too (a tombstone stays, so no host restores it). When Firestore
cannot be reached, --purge leaves <sessions>/removed/<time>-<id>.purged and
the next start of wactl serve deletes the copy instead of restoring it.

Asks for confirmation on a terminal; give --yes in scripts.`,
		Args: cmdutil.ExactArgs(1, "the account id (see 'wactl accounts list')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunRemove(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.Purge, "purge", false, "delete the session for good instead of keeping it under removed/")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

// RunRemove removes one account.
func RunRemove(ctx context.Context, o *RemoveOptions) error {
	if err := sessions.ValidAccountID(o.ID); err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	l, err := o.Load()
	if err != nil {
		return err
	}
	sess, err := wiring.Sessions(&l.Config, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if _, err := sess.Get(o.ID); errors.Is(err, sessions.ErrNoAccount) {
		return fmt.Errorf("no account %s in %s ('wactl accounts list' shows them)", o.ID, sess.Root())
	}
	if !o.Yes {
		if !o.IO.CanPrompt() {
			return cmdutil.FlagErrorf("removing an account needs confirmation: add --yes when not on a terminal")
		}
		what := "move its session to removed/"
		if o.Purge {
			what = "DELETE its session for good"
		}
		fmt.Fprintf(o.IO.ErrOut, "Take %s out of service and %s? [y/N] ", o.ID, what)
		line, err := bufio.NewReader(o.IO.In).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New("not confirmed; nothing changed")}
		}
	}
	gen, _ := replica.LocalGeneration(sess.Dir(o.ID))
	dest, err := sess.Remove(o.ID, sessions.RemoveOptions{Purge: o.Purge})
	if err != nil {
		return err
	}
	replicaNote, err := forgetReplica(ctx, &l.Config, sess, o.ID, gen, o.Purge) // remove_replica.go
	if err != nil {
		return err
	}
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, map[string]any{"accountId": o.ID, "purged": o.Purge, "movedTo": dest, "replica": replicaNote})
	}
	if replicaNote != "" {
		defer fmt.Fprintf(o.IO.ErrOut, "%s: %s\n", o.ID, replicaNote)
	}
	if o.Purge {
		fmt.Fprintf(o.IO.Out, "%s removed %s (session deleted)\n", o.IO.StyleOut().OK(), o.ID)
	} else {
		fmt.Fprintf(o.IO.Out, "%s removed %s; session kept in %s\n", o.IO.StyleOut().OK(), o.ID, dest)
	}
	return nil
}
