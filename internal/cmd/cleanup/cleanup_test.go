package cleanup

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditcmd "github.com/wactl/wactl/internal/cmd/audit"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

var now = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

func opener(path string) func(context.Context) (audit.Backend, error) {
	return func(ctx context.Context) (audit.Backend, error) { return audit.OpenEmbedded(ctx, path) }
}

func sel() auditcmd.SelectionFlags {
	return auditcmd.SelectionFlags{Window: 48 * time.Hour, Limit: 500, Key: "auto"}
}

func exitCode(err error) int {
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) {
		return cmdutil.ExitUsage
	}
	if err != nil {
		return cmdutil.ExitFailure
	}
	return 0
}

func TestAuditAndCleanupCommands(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(ctx, path, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }

	// Piped: JSON, exit 3 for cron.
	ios, _, out, _ := iostreams.Test()
	err := auditcmd.Run(ctx, &auditcmd.Options{IO: ios, Open: opener(path), Sel: sel(), Now: clock})
	if exitCode(err) != cmdutil.ExitProblems {
		t.Fatalf("audit exit %d (%v), want 3", exitCode(err), err)
	}
	var rep audit.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.DuplicatesCount != 112 || rep.TotalDocs != 500 {
		t.Fatalf("audit JSON %s: %v", out, err)
	}

	// No terminal, no --yes: refuses and writes nothing.
	ios, _, _, _ = iostreams.Test()
	err = Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Apply: true, Now: clock})
	if exitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("apply without --yes: %v", err)
	}
	if err := Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Now: clock}); exitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("no mode: %v", err)
	}

	// On a terminal, declining writes nothing.
	ios, in, _, errOut := iostreams.Test()
	ios.SetTTY(true, true, true)
	in.WriteString("n\n")
	err = Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Apply: true, Now: clock})
	if err == nil || !strings.Contains(errOut.String(), "Mark 112 documents in 96 groups") {
		t.Fatalf("declined apply: %v; stderr %q", err, errOut)
	}

	// Confirmed on a terminal: table output, progress on stderr.
	ios, in, out, errOut = iostreams.Test()
	ios.SetTTY(true, true, true)
	in.WriteString("y\n")
	if err := Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Apply: true, Now: clock}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "112 documents marked") || !strings.Contains(errOut.String(), "marking 112/112") {
		t.Fatalf("apply output %q, stderr %q", out, errOut)
	}
	runID := strings.Fields(out.String()[strings.Index(out.String(), "--undo ")+len("--undo "):])[0]

	ios, _, out, _ = iostreams.Test()
	err = auditcmd.Run(ctx, &auditcmd.Options{IO: ios, Open: opener(path), Sel: sel(), ExcludeMarked: true, Now: clock})
	if err != nil {
		t.Fatalf("audit --exclude-marked after apply: %v %s", err, out)
	}

	// Piped with --yes: JSON; a second apply marks nothing.
	ios, _, out, _ = iostreams.Test()
	if err := Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Apply: true, Yes: true, Now: clock}); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Marked                  int `json:"marked"`
		DuplicatesAlreadyMarked int `json:"duplicatesAlreadyMarked"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Marked != 0 || res.DuplicatesAlreadyMarked != 112 {
		t.Fatalf("second apply %s: %v", out, err)
	}

	ios, _, out, _ = iostreams.Test()
	if err := Run(ctx, &Options{IO: ios, Open: opener(path), Sel: sel(), Undo: runID, Yes: true, Now: clock}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"unmarked": 112`) {
		t.Fatalf("undo: %s", out)
	}
}
