package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/cmd/doctor"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/config"
	pdoctor "github.com/wactl/wactl/pkg/doctor"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestMain makes the test binary `wactl` in a child process when
// WACTL_TEST_MAIN=1 (as serve_test does), for the real daemon.
func TestMain(m *testing.M) {
	child.Run()
	os.Exit(fsemu.Main(m)) // stops the shared emulator the fix tests start
}

func loadEnv(t *testing.T, vars map[string]string) *pdoctor.Env { return loadEnvTB(t, vars) }

func loadEnvTB(t testing.TB, vars map[string]string) *pdoctor.Env {
	t.Helper()
	l, err := config.Load(config.LoadOptions{SearchPaths: []string{},
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Hostname:  func() (string, error) { return "host-a", nil }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), 0o600)
	return &pdoctor.Env{Config: &l.Config, Origins: l.Origins, Hostname: "host-a", MountInfo: mi,
		SystemdDir: filepath.Join(dir, "systemd"),
		LookPath:   func(string) (string, error) { return "", errors.New("no systemd in tests") }}
}

func exitCode(err error) int {
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

// TestFixThenPass: a temp root with no sessions dir and a unit without
// INSTANCE_ID; --fix --yes creates the dir and writes the drop-in, and a
// second doctor run passes.
func TestFixThenPass(t *testing.T) {
	root := t.TempDir()
	env := loadEnv(t, map[string]string{"STATE_DIRECTORY": root, "INSTANCE_ID": "host-a"})
	unit, _ := os.ReadFile("../../../configs/wactl.service")
	text := strings.NewReplacer("Environment=INSTANCE_ID=wactl-%H\n", "", "User=wactl\n", "", "Group=wactl\n", "").Replace(string(unit))
	os.MkdirAll(env.SystemdDir, 0o755)
	os.WriteFile(filepath.Join(env.SystemdDir, "wactl.service"), []byte(text), 0o644)
	only := []string{"sessions.dir", "systemd.unit", "config"}

	ios, _, out, errOut := iostreams.Test()
	err := doctor.Run(context.Background(), &doctor.Options{IO: ios, Offline: true, Only: only, Env: env})
	if exitCode(err) != cmdutil.ExitProblems || !strings.Contains(out.String(), "✗ sessions.dir") {
		t.Fatalf("first run: %v\n%s", err, out)
	}

	ios, _, out, errOut = iostreams.Test()
	err = doctor.Run(context.Background(), &doctor.Options{IO: ios, Offline: true, Fix: true, Yes: true, Only: only, Env: env.Fresh()})
	if err != nil {
		t.Fatalf("--fix run: %v\n%s\n%s", err, out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(root, "sessions")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("sessions dir after --fix: %v %v", fi, err)
	}
	dropIn, err := os.ReadFile(filepath.Join(env.SystemdDir, "wactl.service.d", "50-wactl-doctor.conf"))
	if err != nil || !strings.Contains(string(dropIn), "Environment=INSTANCE_ID=wactl-%H") {
		t.Fatalf("drop-in: %q %v", dropIn, err)
	}

	ios, _, out, _ = iostreams.Test()
	if err := doctor.Run(context.Background(), &doctor.Options{IO: ios, Offline: true, JSON: true, Only: only, Env: env.Fresh()}); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	var rep struct {
		Verdict string
		Counts  struct{ Fail, Warn int }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Verdict != "OK" || rep.Counts.Warn != 0 {
		t.Fatalf("%+v %v\n%s", rep, err, out)
	}
}

func TestFixNeedsConfirmation(t *testing.T) {
	env := loadEnv(t, map[string]string{"STATE_DIRECTORY": t.TempDir(), "INSTANCE_ID": "host-a"})
	ios, in, _, _ := iostreams.Test()
	ios.SetTTY(true, false, true)
	in.WriteString("n\n")
	err := doctor.Run(context.Background(), &doctor.Options{IO: ios, Offline: true, Fix: true, Only: []string{"sessions.dir"}, Env: env})
	if exitCode(err) != cmdutil.ExitProblems {
		t.Fatal(err)
	}
	if _, err := os.Stat(env.Config.Sessions.Path); err == nil {
		t.Fatal("created the sessions dir without a yes")
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const healthyToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestHealthyDaemon runs a real `wactl serve` child with two paired fake
// accounts and the whole doctor (burst included) against it.
func TestHealthyDaemon(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"40722000001", "40722000002"} {
		watest.Pair(t, srv, sess, p)
	}
	port := freePort(t)
	c := exec.Command(os.Args[0], "serve")
	c.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"STATE_DIRECTORY=" + dataDir, fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=host-a", "WACTL_API_SERVICE_TOKEN=" + healthyToken}, srv.Env()...)
	c.Dir = dataDir
	var log bytes.Buffer
	c.Stderr = &log
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }()
	t.Cleanup(func() {
		c.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("serve log:\n%s", log.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	watest.Eventually(t, 20*time.Second, "2 accounts connected", func() bool {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m["connected"] == 2.0
	})

	// A healthy host has API authentication configured (api.auth).
	vars := map[string]string{"STATE_DIRECTORY": dataDir, "INSTANCE_ID": "host-a", "PORT": fmt.Sprint(port), "WACTL_API_SERVICE_TOKEN": healthyToken}
	ios, _, out, _ := iostreams.Test()
	env := loadEnv(t, vars)
	start := time.Now()
	// -v: the evidence of passing checks (paired=2) is shown only then.
	err = doctor.Run(context.Background(), &doctor.Options{IO: ios, Env: env, Verbose: true})
	full := time.Since(start)
	if err != nil {
		t.Fatalf("doctor on a healthy host: %v\n%s", err, out)
	}
	text := out.String()
	for _, want := range []string{"✓ daemon.http", "✓ daemon.burst", "30/30", "✓ daemon.accounts", "2/2 accounts connected",
		"✓ lease", "held by this instance", "paired=2", "✓ store.local", "Verdict: OK"} {
		if !strings.Contains(text, want) {
			t.Fatalf("missing %q in:\n%s", want, text)
		}
	}

	ios, _, out, _ = iostreams.Test()
	start = time.Now()
	err = doctor.Run(context.Background(), &doctor.Options{IO: ios, Offline: true, Env: loadEnv(t, vars)})
	offline := time.Since(start)
	if err != nil {
		t.Fatalf("offline: %v\n%s", err, out)
	}
	t.Logf("doctor full run (burst included) %s, --offline %s", full.Round(time.Millisecond), offline.Round(time.Millisecond))

	// Daemon down: the same doctor reports it and exits 3.
	c.Process.Kill()
	<-exited
	ios, _, out, _ = iostreams.Test()
	err = doctor.Run(context.Background(), &doctor.Options{IO: ios, Only: []string{"daemon"}, Env: loadEnv(t, vars)})
	if exitCode(err) != cmdutil.ExitProblems || !strings.Contains(out.String(), "✗ daemon.http") || !strings.Contains(out.String(), "daemon not listening") {
		t.Fatalf("daemon down: %v\n%s", err, out)
	}
}
