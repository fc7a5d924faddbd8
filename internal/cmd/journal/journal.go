// Package journal implements `wactl journal dead-letters` and
// `wactl journal retry`: the operator's view of the Firestore journal's
// dead letters (entries Firestore refused for good).
package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/store/journal"
)

// New returns `wactl journal`.
func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "Dead letters of the Firestore journal: list and retry"}
	cmd.AddCommand(newDeadLetters(f), newRetry(f))
	return cmd
}

// Options of both subcommands.
type Options struct {
	IO   *iostreams.IOStreams
	Load func() (*config.Loaded, error)
	JSON bool
	// Retry: the entries to queue again, or All.
	Seqs []int64
	All  bool
}

func newDeadLetters(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List the journal entries Firestore refused for good",
		Long: `List the dead letters of the local journal (<data_dir>/journal.db, Firestore
mode): messages, receipts, edits and revokes that Firestore refused
(InvalidArgument, OutOfRange) several times, or that failed the store's own
validation. They are kept in the journal with their payload and error, and
counted on /health (store.journalDeadLetters), /metrics
(wactl_journal_dead_letters) and by 'wactl doctor'. Every other entry kept
shipping. Safe while 'wactl serve' runs.

Retry them with 'wactl journal retry ID' or 'wactl journal retry --all'
(after fixing the cause, e.g. upgrading wactl).

Exit codes: 0 none, 1 failure, 2 bad flags, 3 dead letters listed.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunDeadLetters(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	return cmd
}

func newRetry(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "retry (ID... | --all)",
		Short: "Queue dead letters for shipping again",
		Long: `Put dead letters (the IDs 'wactl journal dead-letters' lists, or --all) back
in the journal's queue. The running daemon ships them within seconds (or
the next 'wactl serve' does); refused again as often as before, an entry
returns to the dead letters with its new error. Nothing is deleted.

Exit codes: 0 queued, 1 failure (an ID that is not a dead letter: nothing
queued), 2 bad flags.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.All == (len(args) > 0) {
				return cmdutil.FlagErrorf("name the dead letters to retry (IDs from 'wactl journal dead-letters') or pass --all")
			}
			for _, a := range args {
				n, err := strconv.ParseInt(a, 10, 64)
				if err != nil || n <= 0 {
					return cmdutil.FlagErrorf("%q is not a dead-letter ID: use the numbers in the ID column of 'wactl journal dead-letters'", a)
				}
				o.Seqs = append(o.Seqs, n)
			}
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunRetry(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.All, "all", false, "retry every dead letter")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	return cmd
}

func openAdmin(o *Options) (*journal.Admin, error) {
	l, err := o.Load()
	if err != nil {
		return nil, err
	}
	if l.Config.Store.Backend != "firestore" {
		return nil, fmt.Errorf("store.backend is %q: only the Firestore store has a journal (the embedded store writes directly)", l.Config.Store.Backend)
	}
	return journal.OpenAdmin(filepath.Join(l.Config.DataDir, wiring.JournalFile))
}

// RunDeadLetters lists the dead letters; exit 3 when there are some.
func RunDeadLetters(ctx context.Context, o *Options) error {
	a, err := openAdmin(o)
	if err != nil {
		return err
	}
	defer a.Close()
	dl, err := a.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if dl == nil {
		dl = []journal.DeadLetter{}
	}
	if o.JSON || !o.IO.IsStdoutTTY() {
		if err := cmdutil.WriteJSON(o.IO.Out, map[string]any{"deadLetters": dl, "count": len(dl)}); err != nil {
			return err
		}
	} else if len(dl) == 0 {
		fmt.Fprintf(o.IO.Out, "%s no dead letters: every journal entry was shipped or is queued\n", o.IO.StyleOut().OK())
	} else {
		st := o.IO.StyleOut()
		var rows [][]string
		for _, d := range dl {
			rows = append(rows, []string{strconv.FormatInt(d.Seq, 10), d.Kind, d.Account, short(d.Ref, 24), d.Code,
				strconv.Itoa(d.Attempts), d.DeadAt.Format("2006-01-02 15:04:05Z"), short(d.Error, 80)})
		}
		if err := st.Table(o.IO.Out, []string{"ID", "KIND", "ACCOUNT", "MESSAGE", "CODE", "TRIES", "DEAD SINCE", "ERROR"}, rows); err != nil {
			return err
		}
		fmt.Fprintf(o.IO.Out, "%s %d dead letter(s); retry with: wactl journal retry ID… | wactl journal retry --all\n", st.Warn(), len(dl))
	}
	if len(dl) > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Silent: true}
	}
	return nil
}

// RunRetry queues dead letters again.
func RunRetry(ctx context.Context, o *Options) error {
	a, err := openAdmin(o)
	if err != nil {
		return err
	}
	defer a.Close()
	var seqs []int64
	if !o.All {
		seqs = o.Seqs
	}
	n, err := a.Retry(ctx, seqs)
	if err != nil {
		return err
	}
	if o.JSON || !o.IO.IsStdoutTTY() {
		return cmdutil.WriteJSON(o.IO.Out, map[string]any{"queued": n})
	}
	fmt.Fprintf(o.IO.Out, "%s %d dead letter(s) queued again; the daemon ships them within seconds (check: wactl journal dead-letters)\n",
		o.IO.StyleOut().OK(), n)
	return nil
}

func short(s string, n int) string {
	r := []rune(strings.ReplaceAll(s, "\n", " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
