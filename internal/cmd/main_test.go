package cmd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmd/root"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
)

// TestMain lets tests run the real wactl entry point in a child process:
// the test binary re-executes itself with WACTL_TEST_MAIN=1.
func TestMain(m *testing.M) {
	switch os.Getenv("WACTL_TEST_MAIN") {
	case "1":
		os.Exit(Main())
	case "block":
		os.Exit(mainWith(blockingRoot, nil))
	}
	os.Exit(m.Run())
}

// wactl runs the binary as a child process with exactly env.
func wactl(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.Dir = t.TempDir()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestConfigShowLegacyEnvInChildProcess(t *testing.T) {
	out, _, code := wactl(t, []string{"SESSIONS_PATH=/x", "PORT=9000"}, "config", "show", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		Entries []config.Entry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	seen := 0
	for _, e := range got.Entries {
		switch e.Key {
		case "sessions.path":
			seen++
			if e.Value != "/x" || e.Source != "env" || e.Detail != "SESSIONS_PATH" {
				t.Errorf("%+v", e)
			}
		case "http.port":
			seen++
			if e.Value != float64(9000) || e.Source != "env" || e.Detail != "PORT" {
				t.Errorf("%+v", e)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("entries missing: %s", out)
	}
	// The human table says the same.
	out, _, _ = wactl(t, []string{"SESSIONS_PATH=/x", "PORT=9000"}, "config", "show")
	for _, want := range []string{"sessions.path", "/x", "env (SESSIONS_PATH)", "env (PORT)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour in piped output")
	}
}

func TestConfigValidateUnknownKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("http:\n  port: 8080\n  hots: 0.0.0.0\n"), 0o600)
	_, stderr, code := wactl(t, nil, "config", "validate", "--config", file)
	if code != cmdutil.ExitConfig {
		t.Fatalf("exit %d, want %d; %s", code, cmdutil.ExitConfig, stderr)
	}
	if !strings.Contains(stderr, "http.hots") || !strings.Contains(stderr, `did you mean "http.host"`) {
		t.Fatalf("stderr does not name the key: %s", stderr)
	}
	out, _, code := wactl(t, []string{"WACTL_CONFIG=" + file}, "config", "validate", "--json")
	if code != cmdutil.ExitConfig || !strings.Contains(out, `"valid": false`) {
		t.Fatalf("json: %d %s", code, out)
	}
	os.WriteFile(file, []byte("http:\n  port: 8080\n"), 0o600)
	out, _, code = wactl(t, nil, "config", "validate", "--config", file)
	if code != 0 || !strings.Contains(out, "configuration is valid") {
		t.Fatalf("valid config: %d %s", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		code int
	}{
		{[]string{"version"}, nil, 0},
		{[]string{"version", "--bogus"}, nil, cmdutil.ExitUsage},
		{[]string{"version", "extra"}, nil, cmdutil.ExitUsage},
		{[]string{"nosuchcommand"}, nil, cmdutil.ExitUsage},
		{[]string{"audit", "duplicate"}, nil, cmdutil.ExitUsage},
		{[]string{"accounts", "lst"}, nil, cmdutil.ExitUsage},
		{[]string{"audit"}, nil, 0},
		{[]string{"--version"}, nil, 0},
		{[]string{"config", "show"}, []string{"PORT=99999"}, cmdutil.ExitConfig},
		{[]string{"config", "show", "--config", "/nonexistent.yaml"}, nil, cmdutil.ExitConfig},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			_, stderr, code := wactl(t, tc.env, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if tc.code == cmdutil.ExitUsage && !strings.Contains(stderr, "--help") {
				t.Fatalf("usage error without a hint: %s", stderr)
			}
		})
	}
}

func TestHandleErrorMapping(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	ctx := context.Background()
	if c := cmdutil.HandleError(ios, ctx, &cmdutil.ExitError{Code: cmdutil.ExitProblems, Silent: true}, "wactl"); c != 3 {
		t.Fatalf("problems: %d", c)
	}
	if errOut.Len() != 0 {
		t.Fatalf("silent error printed %q", errOut.String())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if c := cmdutil.HandleError(ios, cctx, context.Canceled, "wactl"); c != cmdutil.ExitInterrupted {
		t.Fatalf("interrupted: %d", c)
	}
}

// TestSignalCancelsRootContext sends SIGINT and SIGTERM to a real process
// blocked in a command and expects exit 130: the signal cancels the root
// context and HandleError maps it. The child adds a command that waits on
// its context, since no shipped command blocks without WhatsApp.
func TestSignalCancelsRootContext(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "block")
			cmd.Env = []string{"WACTL_TEST_MAIN=block"}
			stdout, _ := cmd.StdoutPipe()
			var errb strings.Builder
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 8)
			if _, err := stdout.Read(buf); err != nil { // "blocking"
				t.Fatal(err)
			}
			_ = cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != cmdutil.ExitInterrupted {
					t.Fatalf("want exit 130, got %v; %s", err, errb.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("process did not stop on signal")
			}
		})
	}
}

func blockingRoot(f *cmdutil.Factory) *cobra.Command {
	c := root.New(f)
	c.AddCommand(&cobra.Command{Use: "block", RunE: func(cmd *cobra.Command, _ []string) error {
		f.IO.Out.Write([]byte("blocking"))
		<-cmd.Context().Done()
		return cmd.Context().Err()
	}})
	return c
}

func TestRunInProcessWithFakeStreams(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{IO: ios, ConfigOptions: config.LoadOptions{
		LookupEnv: func(k string) (string, bool) {
			if k == "INSTANCE_ID" {
				return "web-9", true
			}
			return "", false
		},
		SearchPaths: []string{},
	}}
	if code := Run(context.Background(), f, []string{"config", "show", "--instance-id", "web-10", "--json"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), `"value": "web-10"`) || !strings.Contains(out.String(), `"detail": "--instance-id"`) {
		t.Fatalf("flag must override INSTANCE_ID: %s", out.String())
	}
}

// A typo under a command group is a usage error with a suggestion, not the
// group's help and exit 0 (which a cron job would take for success).
func TestSubcommandTypoSuggests(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	f := &cmdutil.Factory{IO: ios, ConfigOptions: config.LoadOptions{SearchPaths: []string{}}}
	if code := Run(context.Background(), f, []string{"accounts", "lst"}); code != cmdutil.ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut.String(), "Did you mean this?") || !strings.Contains(errOut.String(), "list") {
		t.Fatalf("no suggestion: %s", errOut.String())
	}
}

// Every command's help has exactly one exit-code table.
func TestOneExitCodeTablePerCommand(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if n := strings.Count(c.Long, "Exit codes"); n != 1 {
			t.Errorf("%s: %d exit-code tables in its help", c.CommandPath(), n)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root.New(&cmdutil.Factory{IO: ios}))
}
