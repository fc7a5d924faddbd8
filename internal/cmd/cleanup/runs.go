package cleanup

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	auditcmd "github.com/wactl/wactl/internal/cmd/audit"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/cleanup"
)

// RunsOptions of `wactl cleanup runs`.
type RunsOptions struct {
	IO   *iostreams.IOStreams
	Open func(context.Context) (audit.Backend, error)
	JSON bool
}

func newRuns(f *cmdutil.Factory) *cobra.Command {
	o := &RunsOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List cleanup runs, interrupted ones included, with what each marked",
		Long: `List the cleanup runs recorded in the store, newest first: id, status
(running, interrupted, done, undone), when it started, and how many
documents its journal says it marked. A run whose process is gone before it
finished (killed, crashed) is interrupted: its marks are its own, so undo
it with 'wactl cleanup --undo ID' (a rerun finishes the job but undoing the
rerun leaves the interrupted run's marks).`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Open = auditcmd.OpenFromConfig(f, cmd)
			return RunRuns(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	return cmd
}

// RunRuns prints the runs.
func RunRuns(ctx context.Context, o *RunsOptions) error {
	b, err := o.Open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	runs, err := cleanup.Runs(ctx, b)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []audit.RunRecord{}
	}
	if o.JSON || !o.IO.IsStdoutTTY() {
		return cmdutil.WriteJSON(o.IO.Out, map[string]any{"runs": runs, "count": len(runs)})
	}
	st := o.IO.StyleOut()
	if len(runs) == 0 {
		fmt.Fprintln(o.IO.Out, "no cleanup runs")
		return nil
	}
	var rows [][]string
	var interrupted []string
	for _, r := range runs {
		status := r.Status
		if status == "interrupted" {
			status = st.Yellow(status)
			interrupted = append(interrupted, r.ID)
		}
		rows = append(rows, []string{r.ID, status, r.StartedAt.Format(time.RFC3339), strconv.Itoa(r.Marks)})
	}
	if err := st.Table(o.IO.Out, []string{"RUN", "STATUS", "STARTED", "MARKS"}, rows); err != nil {
		return err
	}
	for _, id := range interrupted {
		fmt.Fprintf(o.IO.Out, "%s undo the interrupted run with: wactl cleanup --undo %s\n", st.Warn(), id)
	}
	return nil
}
