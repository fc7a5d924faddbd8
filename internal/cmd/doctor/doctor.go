// Package doctor is the `wactl doctor` command: the runtime audit of
// pkg/doctor with the CLI's configuration, output formats and --fix.
package doctor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	gfs "cloud.google.com/go/firestore"
	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/doctor"
	"github.com/wactl/wactl/pkg/fsclient"
)

// Options of `wactl doctor`.
type Options struct {
	IO       *iostreams.IOStreams
	JSON     bool
	Markdown bool
	Offline  bool
	Deep     bool
	Fix      bool
	Yes      bool
	Strict   bool // warnings count as problems
	// Quiet (cron): print nothing when doctor finds no problem, the whole
	// report when it does.
	Quiet bool
	// Verbose shows the evidence of passing checks too.
	Verbose     bool
	RestartTest bool
	Only        []string
	Unit        string
	UnitFile    string
	// Env is the doctor environment (configuration filled in by New);
	// tests inject theirs.
	Env *doctor.Env
	// Checks overrides the check list (tests).
	Checks []doctor.Check
}

// New returns the doctor command.
func New(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Audit this host's wactl: service, sessions, lease, store, daemon",
		Long: `doctor runs the runtime audit in seconds: configuration, the systemd unit,
the sessions directory (persistent, owned, writable), the lease, the store,
the daemon's health (with a 30-request burst) and the accounts. It prints a
checklist with evidence, a verdict and the exact commands that fix each
problem. --fix applies the safe fixes (create/chown/chmod the sessions dir,
write a systemd drop-in) after asking; it never deletes anything.

Run as root to see everything; as another user doctor skips what it cannot
see and says so. --offline skips the daemon and the network.

A passing check takes one line; -v shows its evidence too. Failed and
warned checks always show theirs. --json is always complete.

--quiet (-q) is for cron: nothing at all when there is no problem (with
--strict: no warning either), the full report when there is, and the exit
code either way. A crontab line (/etc/cron.d/wactl):

  23 * * * * root wactl doctor --quiet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.JSON && opts.Markdown {
				return cmdutil.FlagErrorf("--json and --markdown cannot be combined")
			}
			env := &doctor.Env{Unit: opts.Unit, UnitFile: opts.UnitFile}
			loaded, err := f.Config(cmd)
			env.ConfigErr = err
			if loaded != nil {
				env.Config, env.ConfigFile, env.Origins = &loaded.Config, loaded.File, loaded.Origins
				cfg := env.Config
				env.Firestore = func(ctx context.Context) (*gfs.Client, error) {
					return fsclient.New(ctx, wiring.FirestoreOptions(cfg))
				}
			}
			opts.Env = env
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.JSON, "json", false, "print the report as JSON (stable fields)")
	fl.BoolVar(&opts.Markdown, "markdown", false, "print the report as Markdown, to paste into a ticket")
	fl.BoolVar(&opts.Offline, "offline", false, "skip the daemon and network checks (fast)")
	fl.BoolVar(&opts.Deep, "deep", false, "also read whole files: PRAGMA quick_check of the embedded store (about 1 s per million messages)")
	fl.BoolVar(&opts.Fix, "fix", false, "apply the safe fixes after showing them")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "with --fix: do not ask")
	fl.BoolVar(&opts.Strict, "strict", false, "exit 3 on warnings too")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing when there is no problem, the report when there is (cron)")
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "show the evidence of passing checks too")
	fl.BoolVar(&opts.RestartTest, "restart-test", false, "restart the service and check the accounts reconnect without QR (root, systemd)")
	fl.StringSliceVar(&opts.Only, "only", nil, "run only these checks (name or prefix, e.g. sessions,daemon.burst)")
	fl.StringVar(&opts.Unit, "unit", "wactl", "systemd unit name")
	fl.StringVar(&opts.UnitFile, "unit-file", "", "unit file to check (default: systemd's, else /etc/systemd/system/<unit>.service)")
	return cmd
}

// Run runs the audit, prints it and applies fixes when asked. It returns
// an ExitError with ExitProblems when problems remain.
func Run(ctx context.Context, opts *Options) error {
	env := opts.Env
	if env == nil {
		env = &doctor.Env{}
	}
	env.Offline = opts.Offline
	env.Deep = opts.Deep
	if opts.Unit != "" {
		env.Unit = opts.Unit
	}
	if opts.UnitFile != "" {
		env.UnitFile = opts.UnitFile
	}
	defer env.Close()
	checks := opts.Checks
	if checks == nil {
		checks = doctor.Checks()
		if opts.RestartTest {
			checks = append(checks, doctor.RestartCheck(90*time.Second))
		}
	}
	checks = doctor.Select(checks, opts.Only)
	if len(checks) == 0 {
		return cmdutil.FlagErrorf("--only %s matches no check; checks: %s", strings.Join(opts.Only, ","), strings.Join(doctor.Names(doctor.Checks()), ", "))
	}
	rep := doctor.Run(ctx, env, checks)
	problems := func(rep *doctor.Report) bool { return rep.Problems() || (opts.Strict && rep.Counts.Warn > 0) }
	if opts.Quiet && !problems(rep) && !opts.Fix {
		return nil
	}
	if err := render(opts, rep); err != nil {
		return err
	}
	if opts.Fix {
		fixed, err := applyFixes(ctx, opts, rep)
		if err != nil {
			return err
		}
		if fixed {
			// A fresh environment: the fixes changed what it cached.
			again := env.Fresh()
			defer again.Close()
			fmt.Fprintln(opts.IO.ErrOut, "\nRe-checking after the fixes:")
			rep = doctor.Run(ctx, again, checks)
			if err := render(opts, rep); err != nil {
				return err
			}
		}
	}
	if problems(rep) {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Silent: true}
	}
	return nil
}

func render(opts *Options, rep *doctor.Report) error {
	switch {
	case opts.JSON:
		return doctor.WriteJSON(opts.IO.Out, rep)
	case opts.Markdown:
		return doctor.WriteMarkdown(opts.IO.Out, rep)
	}
	st := opts.IO.StyleOut()
	return doctor.WriteText(opts.IO.Out, rep, doctor.Marks{OK: st.OK(), Warn: st.Warn(), Fail: st.Fail(), Skip: st.Dim("-"), Bold: st.Bold},
		doctor.TextOptions{Verbose: opts.Verbose, Width: textWidth(opts.IO)})
}

// textWidth is the terminal's width when stdout is one; 0 (no wrapping)
// in a pipe or a file.
func textWidth(io *iostreams.IOStreams) int {
	if !io.IsStdoutTTY() {
		return 0
	}
	return io.TerminalWidth()
}

// applyFixes shows the safe fixes, asks (or takes --yes) and applies them.
func applyFixes(ctx context.Context, opts *Options, rep *doctor.Report) (bool, error) {
	fixes := rep.AutoFixes()
	w := opts.IO.ErrOut
	if len(fixes) == 0 {
		fmt.Fprintln(w, "\n--fix: nothing doctor can fix safely; see the fix steps above.")
		return false, nil
	}
	fmt.Fprintln(w, "\n--fix will apply:")
	for i, f := range fixes {
		fmt.Fprintf(w, "%d) %s: %s\n", i+1, f.Check, f.Fix.Summary)
		for _, c := range f.Fix.Commands {
			fmt.Fprintf(w, "   %s\n", strings.ReplaceAll(c, "\n", "\n   "))
		}
	}
	if !opts.Yes {
		if !opts.IO.CanPrompt() {
			return false, cmdutil.FlagErrorf("--fix needs a terminal to confirm, or --yes")
		}
		if !confirm(opts.IO.In, w, "Apply these fixes? [y/N] ") {
			fmt.Fprintln(w, "Nothing changed.")
			return false, nil
		}
	}
	failed := 0
	for _, f := range doctor.Apply(ctx, fixes) {
		if f.Err != nil {
			failed++
			fmt.Fprintf(w, "✗ %s\n", f.Err)
		} else {
			fmt.Fprintf(w, "✓ %s\n", f.Fix.Summary)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "%d fix(es) failed; see above.\n", failed)
	}
	return true, nil
}

func confirm(in io.Reader, w io.Writer, prompt string) bool {
	fmt.Fprint(w, prompt)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
