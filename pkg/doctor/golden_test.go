package doctor

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenReport is a fixed report through the real Run (checks returning
// canned results), so the renderings are compared byte for byte.
func goldenReport() *Report {
	fixed := func(r Result) func(context.Context, *Env) Result {
		return func(context.Context, *Env) Result { return r }
	}
	at := time.Date(2026, 1, 21, 9, 30, 0, 0, time.UTC)
	env := &Env{Hostname: "web-1", Now: func() time.Time { return at }}
	rep := Run(context.Background(), env, []Check{
		{Name: "systemd.service", Run: fixed(Result{Status: OK, Summary: "wactl.service active, pid 15603",
			Evidence: []KV{{"ActiveState", "active/running"}, {"MainPID", "15603"}, {"memory", "165MB"}}})},
		{Name: "sessions.dir", Run: fixed(Result{Status: Fail, Summary: "sessions dir /var/lib/wactl/sessions does not exist",
			Evidence: []KV{{"SESSIONS_PATH", "/var/lib/wactl/sessions"}, {"exists", "NO"}},
			Fixes: []Fix{{Summary: "create the sessions dir for wactl", Auto: true,
				Commands: []string{"sudo install -d -o wactl -g wactl -m 700 /var/lib/wactl/sessions"}}}})},
		{Name: "systemd.unit", Run: fixed(Result{Status: Warn, Summary: "INSTANCE_ID is not set in the unit",
			Evidence: []KV{{"INSTANCE_ID", "-"}}, Notes: []string{"hardening: PrivateTmp=yes (have -)"},
			Fixes: []Fix{{Summary: "systemd override /etc/systemd/system/wactl.service.d/50-wactl-doctor.conf", Auto: true,
				Commands: []string{"sudo tee /etc/systemd/system/wactl.service.d/50-wactl-doctor.conf >/dev/null <<'OVR'\n[Service]\nEnvironment=INSTANCE_ID=%H\nOVR",
					"sudo systemctl daemon-reload && sudo systemctl restart wactl"}}}})},
		{Name: "daemon.burst", Run: fixed(Result{Status: Skip, Summary: "skipped: --offline"})},
	})
	rep.Checks[0].Duration, rep.Duration = 0, 0
	for i := range rep.Checks {
		rep.Checks[i].Duration = 0
	}
	rep.InstanceID = "web-1"
	return rep
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it):\n%s", name, got)
	}
}

func TestGoldenText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	WriteText(&b, goldenReport(), PlainMarks)
	golden(t, "report.txt", b.Bytes())
}

func TestGoldenJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	WriteJSON(&b, goldenReport())
	golden(t, "report.json", b.Bytes())
}

func TestGoldenMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	WriteMarkdown(&b, goldenReport())
	golden(t, "report.md", b.Bytes())
}
