package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/iostreams/tablecheck"
	"github.com/wactl/wactl/pkg/audit"
)

// On an 80-column colour terminal the report fits and its table lines up
// (tabwriter counted the colour escapes of the header as width, and the
// sample ids made it ~240 columns).
func TestDuplicatesFit80ColumnsInColour(t *testing.T) {
	t.Parallel()
	ios, _, out, _ := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetTerminalSize(80, 24)
	if !ios.ColorOut() {
		t.Fatal("colour is off")
	}
	o := &Options{IO: ios, Open: opener(seeded(t)), Now: func() time.Time { return now },
		Sel: SelectionFlags{Window: 48 * time.Hour, Limit: 500, Key: "auto", EchoWindow: audit.DefaultEchoWindow}, Top: 10}
	err := Run(context.Background(), o)
	if code := cmdutil.HandleError(ios, context.Background(), err, "wactl audit duplicates"); code != 3 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("no colour: %q", out.String())
	}
	t.Logf("\n%s", out.String())
	for _, p := range tablecheck.Problems(out.String(), 80, "SIZE", "thread ", "    ") {
		t.Error(p)
	}
}
