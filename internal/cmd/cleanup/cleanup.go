// Package cleanup implements `wactl cleanup`.
package cleanup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	auditcmd "github.com/wactl/wactl/internal/cmd/audit"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/cleanup"
)

// Options of `wactl cleanup`.
type Options struct {
	IO     *iostreams.IOStreams
	Open   func(context.Context) (audit.Backend, error)
	Sel    auditcmd.SelectionFlags
	DryRun bool
	Apply  bool
	Undo   string
	Yes    bool
	JSON   bool
	Now    func() time.Time
}

// New returns `wactl cleanup`.
func New(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "cleanup (--dry-run | --apply | --undo RUN_ID)",
		Short: "Mark duplicate messages (never deletes); undo a run",
		Long: `Group messages exactly as 'wactl audit duplicates' does and, per group, keep
one canonical document (not already marked, then earliest ingestedAt, then
most complete, then document id) and mark the others isDuplicate:true,
duplicateOf, duplicateMarkedAt, cleanupRunId. Nothing is deleted.

--dry-run reports what --apply would do. --apply writes the marks in batches
(each with its undo journal), then recomputes each touched thread's
lastMessageAt/lastMessageAtMs/lastMessageText from non-duplicates, never
moving a thread back past a message it did not plan for. It asks for
confirmation on a terminal; without a terminal it needs --yes. An
interrupted run leaves whole batches marked: run it again to finish (the
second run reports the rest as already marked; a complete run marks 0).
--undo RUN_ID restores exactly what that run marked, and thread summaries
it changed unless newer messages moved them on. A run killed midway keeps
its marks as its own: the rerun names it ("interrupted run …"), 'wactl
cleanup runs' lists it, and --undo works on it as on any run (undo both to
restore everything).

Safe while the daemon records: new messages are not in the plan, marks
touch only the mark fields, a mark is written only if the document is
still as planned (a document the daemon marked or changed meanwhile is
planned again), and thread summaries are written conditionally, never
holding a lock the daemon waits on.

Exit codes: 0 done, 1 failed (rerun to finish), 2 bad flags or no
confirmation possible (use --yes), 130 interrupted (rerun to finish).`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Open = auditcmd.OpenFromConfig(f, cmd)
			return Run(cmd.Context(), o)
		},
	}
	cmd.AddCommand(newRuns(f))
	o.Sel.Add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.DryRun, "dry-run", false, "report what would be marked; write nothing")
	fl.BoolVar(&o.Apply, "apply", false, "mark the duplicates")
	fl.StringVar(&o.Undo, "undo", "", "unmark what run RUN_ID marked")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation (required without a terminal)")
	fl.BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	return cmd
}

// Run runs `wactl cleanup`.
func Run(ctx context.Context, o *Options) error {
	modes := 0
	for _, on := range []bool{o.DryRun, o.Apply, o.Undo != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return cmdutil.FlagErrorf("choose exactly one of --dry-run, --apply and --undo RUN_ID")
	}
	writes := o.Apply || o.Undo != ""
	if writes && !o.Yes && !o.IO.CanPrompt() {
		return cmdutil.FlagErrorf("refusing to write without confirmation: no terminal to ask on; pass --yes (after a --dry-run) to run unattended")
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	sel, err := o.Sel.Selection(now().UTC())
	if err != nil {
		return err
	}
	b, err := o.Open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	jsonOut := o.JSON || !o.IO.IsStdoutTTY()

	if o.Undo != "" {
		if !o.Yes {
			ok, err := confirm(o.IO, fmt.Sprintf("Undo cleanup run %s in the %s store?", o.Undo, b.Name()))
			if err != nil || !ok {
				return declined(err)
			}
		}
		u, err := cleanup.Undo(ctx, b, o.Undo)
		if err != nil {
			return err
		}
		if jsonOut {
			return cmdutil.WriteJSON(o.IO.Out, map[string]any{"runId": o.Undo, "unmarked": u.Unmarked, "skipped": u.Skipped,
				"threadsRestored": u.ThreadsRestored, "threadsKept": u.ThreadsKept})
		}
		fmt.Fprintf(o.IO.Out, "%s run %s undone: %d unmarked, %d left (changed since), %d threads restored, %d kept\n",
			o.IO.StyleOut().OK(), o.Undo, u.Unmarked, u.Skipped, u.ThreadsRestored, u.ThreadsKept)
		return nil
	}

	opts := cleanup.Options{Selection: sel, Apply: o.Apply, Now: now}
	if o.Apply && !o.Yes {
		opts.Confirm = func(r *cleanup.Result) (bool, error) {
			if r.DuplicatesToMark == 0 {
				return true, nil
			}
			return confirm(o.IO, fmt.Sprintf("Mark %d documents in %d groups as duplicates in the %s store?",
				r.DuplicatesToMark, r.GroupsWithDuplicates, b.Name()))
		}
	}
	if o.Apply && o.IO.IsStderrTTY() {
		opts.Progress = func(done, total int) {
			fmt.Fprintf(o.IO.ErrOut, "\rmarking %d/%d", done, total)
			if done >= total {
				fmt.Fprintln(o.IO.ErrOut)
			}
		}
	}
	r, err := cleanup.Run(ctx, b, opts)
	if errors.Is(err, cleanup.ErrDeclined) {
		return declined(nil)
	}
	if err != nil {
		return err
	}
	if jsonOut {
		return cmdutil.WriteJSON(o.IO.Out, r)
	}
	printResult(o.IO, r)
	return nil
}

func declined(err error) error {
	if err != nil {
		return err
	}
	return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New("not confirmed; nothing was written")}
}

// confirm asks on stderr and reads the answer from stdin.
func confirm(io *iostreams.IOStreams, q string) (bool, error) {
	fmt.Fprintf(io.ErrOut, "%s [y/N] ", q)
	line, err := bufio.NewReader(io.In).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func printResult(io *iostreams.IOStreams, r *cleanup.Result) {
	st := io.StyleOut()
	if r.DryRun {
		fmt.Fprintf(io.Out, "%s dry run: %d documents would be marked in %d groups (%d already marked), %d threads to recompute; %d messages scanned\n",
			st.Warn(), r.DuplicatesToMark, r.GroupsWithDuplicates, r.DuplicatesAlreadyMarked, r.ThreadsToRecompute, r.ScannedMessages)
	} else {
		fmt.Fprintf(io.Out, "%s run %s: %d documents marked in %d groups (%d already marked), %d threads updated; %d messages scanned\n",
			st.OK(), r.RunID, r.Marked, r.GroupsWithDuplicates, r.DuplicatesAlreadyMarked, r.ThreadsUpdated, r.ScannedMessages)
		for _, k := range r.ThreadsKept {
			fmt.Fprintf(io.Out, "  %s thread left as is: %s\n", st.Warn(), k)
		}
		if r.RunID != "" {
			fmt.Fprintf(io.Out, "  undo with: wactl cleanup --undo %s\n", r.RunID)
		}
		if r.Replanned > 0 {
			fmt.Fprintf(io.Out, "  %d documents changed while the run was marking (the daemon wrote them): planned again\n", r.Replanned)
		}
		for _, id := range r.InterruptedRuns {
			fmt.Fprintf(io.Out, "  %s interrupted run %s keeps its own marks: undo it with: wactl cleanup --undo %s\n", st.Warn(), id, id)
		}
	}
	for _, g := range r.SampleGroups {
		fmt.Fprintf(io.Out, "  %s keep %s, mark %s", g.ThreadID, g.Canonical, strings.Join(g.ToMark, ","))
		if len(g.AlreadyMarked) > 0 {
			fmt.Fprintf(io.Out, " (already marked %s)", strings.Join(g.AlreadyMarked, ","))
		}
		fmt.Fprintln(io.Out)
	}
}
