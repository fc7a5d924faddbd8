package configcmd

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
	"testing"

	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/iostreams/tablecheck"
)

// `config show` on an 80-column colour terminal: no line wraps at the
// edge (every one of its lines did), and the columns line up.
func TestShowFits80ColumnsInColour(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetTerminalSize(80, 24)
	env := map[string]string{"STATE_DIRECTORY": "/var/lib/wactl", "INSTANCE_ID": "wactl-web-1",
		"WACTL_API_ALLOWED_EMAILS": "ops@example.com,owner@example.com,second.owner@example.com"}
	if err := RunShow(&Options{IO: ios, Load: loadWith(env, nil)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("no colour: %q", out)
	}
	for _, p := range tablecheck.Problems(out.String(), 80, "KEY") {
		t.Error(p)
	}
	if t.Failed() {
		t.Logf("\n%s", out)
	}
	// Wrapping adds only line breaks and indentation: the VALUE column's
	// text without white space holds every value whole.
	lines := strings.Split(ansi.Strip(out.String()), "\n")
	v, src := strings.Index(lines[0], "VALUE"), strings.Index(lines[0], "SOURCE")
	var values strings.Builder
	for _, l := range lines[1:] {
		r := []rune(l)
		if len(r) > v {
			values.WriteString(strings.Join(strings.Fields(string(r[v:min(src, len(r))])), ""))
		}
	}
	if !strings.Contains(values.String(), "[ops@example.comowner@example.comsecond.owner@example.com]") ||
		!strings.Contains(values.String(), "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com") {
		t.Fatalf("a value was cut:\n%s", out)
	}
}
