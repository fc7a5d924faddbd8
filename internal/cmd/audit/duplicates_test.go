package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
	"github.com/wactl/wactl/pkg/config"
)

var now = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

// seeded returns the path of an embedded store holding the seed audit's
// data: 500 messages in the 48h window, 112 of them duplicates.
func seeded(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(context.Background(), path, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	return path
}

func opener(path string) func(context.Context) (audit.Backend, error) {
	return func(ctx context.Context) (audit.Backend, error) { return audit.OpenEmbedded(ctx, path) }
}

// exit runs the command's Run and returns the process exit code and what
// the user saw.
func exit(t *testing.T, o *Options) (code int, out, errOut string) {
	t.Helper()
	ios, _, stdout, stderr := iostreams.Test()
	if o.IO == nil {
		o.IO = ios
	}
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	err := Run(context.Background(), o)
	code = cmdutil.HandleError(ios, context.Background(), err, "wactl audit duplicates")
	return code, stdout.String(), stderr.String()
}

func TestSelectionFlagsValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags SelectionFlags
		want  string
	}{
		{"unknown key", SelectionFlags{Window: time.Hour, Limit: 10, Key: "sha256"}, "--key"},
		{"negative window", SelectionFlags{Window: -time.Hour, Limit: 10, Key: "auto"}, "must not be negative"},
		{"negative limit", SelectionFlags{Window: time.Hour, Limit: -1, Key: "auto"}, "must not be negative"},
		{"negative echo window", SelectionFlags{Window: time.Hour, Limit: 1, Key: "auto", EchoWindow: -time.Minute}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened := false
			code, out, errOut := exit(t, &Options{Sel: tc.flags, Open: func(context.Context) (audit.Backend, error) {
				opened = true
				return nil, context.Canceled
			}})
			if code != cmdutil.ExitUsage || !strings.Contains(errOut, tc.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 naming %q", code, out, errOut, tc.want)
			}
			if opened {
				t.Fatal("the store was opened despite bad flags")
			}
		})
	}
	s, err := (&SelectionFlags{Window: 2 * time.Hour, Limit: 7, Account: "acc", Thread: "th", Key: ""}).Selection(now)
	if err != nil || s.Window != 2*time.Hour || s.Limit != 7 || s.AccountID != "acc" || s.ThreadID != "th" || s.Key != audit.KeyAuto || !s.Now.Equal(now) {
		t.Fatalf("selection %+v, %v", s, err)
	}
}

func TestDuplicatesExitCodes(t *testing.T) {
	t.Parallel()
	path := seeded(t)
	sel := SelectionFlags{Window: 48 * time.Hour, Limit: 500, Key: "auto"}

	// Piped: JSON, exit 3, and nothing on stderr for cron to mail.
	code, out, errOut := exit(t, &Options{Open: opener(path), Sel: sel})
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if code != cmdutil.ExitProblems || errOut != "" || rep.TotalDocs != 500 || rep.UniqueFingerprints != 388 || rep.DuplicatesCount != 112 {
		t.Fatalf("exit %d, stderr %q, report %+v; want exit 3 with 500/388/112", code, errOut, rep)
	}

	// No duplicates: exit 0 (the newest message alone).
	none := sel
	none.Limit = 1
	code, out, _ = exit(t, &Options{Open: opener(path), Sel: none, JSON: true})
	rep = audit.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.DuplicatesCount != 0 || rep.TotalDocs != 1 {
		t.Fatalf("exit %d, report %s (%v); want exit 0 and no duplicates", code, out, err)
	}

	// A terminal gets the table, with the same exit code.
	ios, _, stdout, _ := iostreams.Test()
	ios.SetTTY(false, true, false)
	ios.SetTerminalSize(240, 24) // wide enough for every column
	code, _, _ = exit(t, &Options{IO: ios, Open: opener(path), Sel: sel, Top: 3})
	tbl := stdout.String()
	if code != cmdutil.ExitProblems || !strings.Contains(tbl, "112 duplicates in 500 documents (388 unique)") ||
		!strings.Contains(tbl, "SAMPLE DOCS") || strings.Count(tbl, "\n3 ") != 3 || !strings.Contains(tbl, "thread "+audittest.Account+"__") {
		t.Fatalf("exit %d, table:\n%s", code, tbl)
	}

	// A store that does not exist is a failure, not "no duplicates".
	missing := filepath.Join(t.TempDir(), "nope.db")
	code, out, errOut = exit(t, &Options{Open: opener(missing), Sel: sel})
	if code != cmdutil.ExitFailure || out != "" || !strings.Contains(errOut, missing) {
		t.Fatalf("missing store: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// The cobra command wires flags and configuration to Run.
func TestDuplicatesCommand(t *testing.T) {
	t.Parallel()
	path := seeded(t)
	env := map[string]string{"WACTL_STORE_BACKEND": "embedded", "WACTL_STORE_PATH": path, "WACTL_DATA_DIR": t.TempDir()}
	for _, tc := range []struct {
		args []string
		code int
	}{
		// The seed ends at 2026-01-21: an unbounded window and limit see it all.
		{[]string{"duplicates", "--window", "0", "--limit", "0", "--json"}, cmdutil.ExitProblems},
		{[]string{"duplicates", "--window", "0", "--limit", "1", "--json"}, 0},
		{[]string{"duplicates", "--key", "nope"}, cmdutil.ExitUsage},
		{[]string{"duplicates", "--limit", "-5"}, cmdutil.ExitUsage},
	} {
		ios, _, stdout, stderr := iostreams.Test()
		f := &cmdutil.Factory{IO: ios, ConfigOptions: config.LoadOptions{
			SearchPaths: []string{},
			LookupEnv:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		}}
		cmd := New(f)
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.ExecuteContext(context.Background())
		if code := cmdutil.HandleError(ios, context.Background(), err, "wactl audit duplicates"); code != tc.code {
			t.Fatalf("%v: exit %d, want %d (%v)\nstdout %s\nstderr %s", tc.args, code, tc.code, err, stdout, stderr)
		}
	}
}
