package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/audit"
)

// SelectionFlags are the selection flags audit and cleanup share.
type SelectionFlags struct {
	Window  time.Duration
	Limit   int
	Account string
	Thread  string
	Key     string
	// EchoWindow is --echo-window; 0 turns the echo pairing off.
	EchoWindow time.Duration
}

// Add declares the flags on cmd.
func (s *SelectionFlags) Add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.DurationVar(&s.Window, "window", 48*time.Hour, "only messages whose tsClient is within this long before now (0: no bound)")
	fl.IntVar(&s.Limit, "limit", 500, "the newest this many messages by tsClient (0: no limit)")
	fl.StringVar(&s.Account, "account", "", "only this account id")
	fl.StringVar(&s.Thread, "thread", "", "only this thread id")
	fl.StringVar(&s.Key, "key", "auto", "grouping key: auto, stable, fingerprint or legacy")
	fl.DurationVar(&s.EchoWindow, "echo-window", audit.DefaultEchoWindow,
		"with --key auto, pair an app's queued document with the echo of its send written within this long after it (0: off)")
}

// Selection validates the flags.
func (s *SelectionFlags) Selection(now time.Time) (audit.Selection, error) {
	k, err := audit.ParseKeyStrategy(s.Key)
	if err != nil {
		return audit.Selection{}, cmdutil.FlagErrorf("--key: %v", err)
	}
	if s.Window < 0 || s.Limit < 0 || s.EchoWindow < 0 {
		return audit.Selection{}, cmdutil.FlagErrorf("--window, --limit and --echo-window must not be negative")
	}
	echo := s.EchoWindow
	if echo == 0 {
		echo = -1 // off; the zero Selection means the default
	}
	return audit.Selection{Window: s.Window, Limit: s.Limit, AccountID: s.Account, ThreadID: s.Thread, Key: k, Now: now, EchoWindow: echo}, nil
}

// Options of `audit duplicates`.
type Options struct {
	IO            *iostreams.IOStreams
	Open          func(context.Context) (audit.Backend, error)
	Sel           SelectionFlags
	ExcludeMarked bool
	Top           int
	JSON          bool
	// Quiet (cron): print nothing when there are no duplicates, the text
	// report (or JSON with --json) when there are.
	Quiet bool
	Now   func() time.Time
}

// New returns `wactl audit`.
func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read-only checks of the message store"}
	cmd.AddCommand(newDuplicates(f))
	return cmd
}

func newDuplicates(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "duplicates",
		Short: "Count duplicate messages (for cron: exit 3 when there are any)",
		Long: `Take the newest --limit messages by tsClient within --window, across all
threads or one account or thread, group them by --key and report the groups.
It only reads.

Keys: auto takes stableKeyHash, else fingerprintHash, else
sha1(accountId|providerMessageId), else the legacy fingerprint; legacy is the
first operator script's sha1(direction|tsClientMs|sha1(body)[:8]|messageType)
exactly, so numbers compare with old reports. Groups never span threads.
Receipt stubs of the old system (no body, direction or type) are each their
own group under auto. In Firestore, documents wactl wrote before its
fingerprintHash matched the old service's (schemaVersion 2, the unhashed form)
are recognised and grouped by the current form; the embedded store keeps the
value each row was written with.

Under auto, in Firestore, an app send the old service stored twice is one group: the
document the app's proxy queued under its requestId (64 hex, status sent or
later) and the document the WhatsApp echo of that send got under the hashed
id — same thread, outbound, same normalised body, the echo written within
--echo-window after the queued document (and the same WhatsApp id when the
queued document records one). keyStrategyCounts.requestEcho counts the pairs;
cleanup keeps the queued document, whose id the app holds.

Documents are placed in time by tsClient (parsed when a string), else
tsClientMs, else tsServer, ingestedAt, createdAt, as the old audit did
(tsClientShapes says which). Every document read is grouped or counted in
skipped by reason: noTime (no usable time; also parseFailures),
outsideWindow, overLimit, excludedMarked; scanned = totalDocs + skipped.

--exclude-marked leaves out documents already marked isDuplicate:true by
'wactl cleanup', which is why a plain audit keeps counting them.

Output is a table on a terminal and JSON with --json or when piped.
--quiet (-q) is for cron: nothing at all when there are no duplicates (so
cron sends no mail), the text report when there are (JSON with --json), and
the exit code either way. A crontab line (/etc/cron.d/wactl):

  17 * * * * wactl wactl audit duplicates --quiet

Run it as the service user (the crontab line above does): the embedded
store is in the service's data dir, which only that user may read. Anyone
else, members of the service's group included, is refused with exit 1 and
the exact sudo -u command and crontab line that work.

Exit codes: 0 no duplicates, 3 duplicates found, 1 the audit failed (store
unreachable or not readable by this user, missing Firestore index: the
error names the index and the command creating it), 2 bad flags.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Open = explainDenied(f, cmd, OpenFromConfig(f, cmd))
			return Run(cmd.Context(), o)
		},
	}
	o.Sel.Add(cmd)
	cmd.Flags().BoolVar(&o.ExcludeMarked, "exclude-marked", false, "leave out documents marked isDuplicate:true")
	cmd.Flags().IntVar(&o.Top, "top", 10, "groups to list")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing when there are no duplicates, the text report when there are (cron)")
	return cmd
}

// Run runs `audit duplicates`.
func Run(ctx context.Context, o *Options) error {
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
	r, err := audit.Run(ctx, b, audit.Options{Selection: sel, ExcludeMarked: o.ExcludeMarked, TopGroups: o.Top, Clock: now})
	if err != nil {
		return err
	}
	if o.Quiet && r.DuplicatesCount == 0 {
		return nil
	}
	if o.JSON || (!o.IO.IsStdoutTTY() && !o.Quiet) {
		if err := cmdutil.WriteJSON(o.IO.Out, r); err != nil {
			return err
		}
	} else if err := printReport(o.IO, b.Name(), r); err != nil {
		return err
	}
	if r.DuplicatesCount > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Silent: true}
	}
	return nil
}

func printReport(io *iostreams.IOStreams, backend string, r *audit.Report) error {
	st := io.StyleOut()
	width := 0 // a pipe or a file (--quiet from cron) takes whole lines
	if io.IsStdoutTTY() {
		width = io.TerminalWidth()
	}
	mark := st.OK()
	if r.DuplicatesCount > 0 {
		mark = st.Warn()
	}
	window := r.Window
	if window == "" {
		window = "none"
	}
	var b strings.Builder
	para := func(format string, a ...any) {
		b.WriteString(iostreams.Wrap(fmt.Sprintf(format, a...), width, 4))
		b.WriteByte('\n')
	}
	para("%s %d duplicates in %d documents (%d unique), %s store, window %s, limit %d, key %s",
		mark, r.DuplicatesCount, r.TotalDocs, r.UniqueFingerprints, backend, window, r.Limit, r.Key)
	para("  marked %d, active %d, scanned %d, parse failures %d, took %d ms",
		r.MarkedDocs, r.ActiveDocs, r.Scanned, r.ParseFailures, r.TookMs)
	para("  keys: %s; tsClient: %s", counts(r.KeyStrategyCounts), counts(r.TsClientShapes))
	para("  read %d: grouped %d, skipped %s", r.Scanned, r.TotalDocs, counts(r.Skipped))
	if r.MarkedDocs > 0 && !r.ExcludeMarked {
		para("%s", st.Dim("  marked documents are counted; --exclude-marked leaves them out"))
	}
	if _, err := fmt.Fprint(io.Out, b.String()); err != nil || len(r.Groups) == 0 {
		return err
	}
	// The groups under a heading per thread: a thread id is copied whole
	// (for --thread) and is most of 80 columns by itself. The sample ids
	// wrap, and go first when even that does not fit.
	cols := []iostreams.Column{{Header: "SIZE"}, {Header: "MARKED", Drop: 1}, {Header: "TSCLIENT", Drop: 2},
		{Header: "SAMPLE DOCS", Drop: 3, Wrap: true}}
	var threads []string
	byThread := map[string][]audit.GroupReport{}
	for _, g := range r.Groups {
		if _, ok := byThread[g.ThreadID]; !ok {
			threads = append(threads, g.ThreadID)
		}
		byThread[g.ThreadID] = append(byThread[g.ThreadID], g)
	}
	var rows [][]string
	for _, th := range threads {
		rows = append(rows, []string{st.Bold("thread " + th)})
		for _, g := range byThread[th] {
			rows = append(rows, []string{fmt.Sprint(g.Size), fmt.Sprint(g.Marked), g.TsClientRange[0], strings.Join(g.SampleDocIDs, ", ")})
		}
	}
	dropped, err := st.FitTable(io.Out, width, cols, rows)
	if err == nil && len(dropped) > 0 {
		note := iostreams.Wrap(fmt.Sprintf("(%s left out to fit %d columns; --json has every field)", strings.Join(dropped, ", "), width), width, 1)
		for _, l := range strings.Split(note, "\n") {
			if _, err = fmt.Fprintln(io.Out, st.Dim(l)); err != nil {
				break
			}
		}
	}
	return err
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}
