package sessions_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sessionscmd "github.com/wactl/wactl/internal/cmd/sessions"
	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/sessions"
)

// wactlEnv is wactl with extra environment.
func wactlEnv(t testing.TB, srv *wafake.Server, dataDir string, env []string, args ...string) result {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = append(append([]string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir, "INSTANCE_ID=cli"}, srv.Env()...), env...)
	c.Dir = dataDir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// serveEnv is serve with extra environment.
func serveEnv(t testing.TB, srv *wafake.Server, dataDir, instance string, env []string) *daemon {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := exec.Command(os.Args[0], "serve")
	c.Env = append(append([]string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir,
		fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=" + instance}, srv.Env()...), env...)
	c.Dir = dataDir
	d := &daemon{cmd: c, url: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan struct{})}
	c.Stderr = d
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		c.Process.Kill()
		<-d.exited
		if t.Failed() {
			d.mu.Lock()
			t.Logf("wactl serve (%s) log:\n%s", instance, d.log.String())
			d.mu.Unlock()
		}
	})
	return d
}

// Accounts paired on SQLite move to PostgreSQL with `wactl sessions
// migrate` (refused while the daemon runs), and a host with an empty data
// dir then serves them from PostgreSQL without a QR.
func TestMigrateToPostgresThenServeFromEmptyHost(t *testing.T) {
	srv := wafake.Start(t)
	dsnEnv := "WACTL_SESSIONS_POSTGRES_DSN=" + pgtest.DSN(t)
	dataA := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataA, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	watest.Pair(t, srv, sess, "40766100001")
	watest.Pair(t, srv, sess, "40766100002")
	a := serveEnv(t, srv, dataA, "host-a", nil)
	watest.Eventually(t, 20*time.Second, "host A connects 2 accounts", func() bool { return a.connected() == 2 })

	r := wactlEnv(t, srv, dataA, []string{dsnEnv}, "sessions", "migrate", "--to", "postgres")
	if r.code != 1 || !strings.Contains(r.stderr, "daemon is running") {
		t.Fatalf("migrate while serving: exit %d, stderr %q", r.code, r.stderr)
	}
	a.stop(t)

	r = wactlEnv(t, srv, dataA, nil, "sessions", "migrate", "--to", "postgres")
	if r.code != 2 || !strings.Contains(r.stderr, "postgres_dsn") {
		t.Fatalf("migrate without a DSN: exit %d, stderr %q", r.code, r.stderr)
	}
	r = wactlEnv(t, srv, dataA, []string{dsnEnv}, "sessions", "migrate", "--to", "postgres", "--json")
	var rep sessionscmd.MigrateReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || len(rep.Accounts) != 2 {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, acct := range rep.Accounts {
		if acct.Outcome != sessions.MigrateCopied || acct.Rows == 0 {
			t.Fatalf("migrated account: %+v", acct)
		}
	}
	if _, err := os.Stat(filepath.Join(dataA, "sessions", rep.Accounts[0].AccountID)); err != nil {
		t.Fatalf("source removed without --remove-source: %v", err)
	}

	dataB := t.TempDir()
	b := serveEnv(t, srv, dataB, "host-b", []string{dsnEnv, "WACTL_SESSIONS_STORE=postgres"})
	watest.Eventually(t, 20*time.Second, "host B connects both accounts from PostgreSQL", func() bool { return b.connected() == 2 })
	if entries, _ := os.ReadDir(filepath.Join(dataB, "sessions")); len(entries) != 0 {
		t.Fatalf("host B wrote sessions to its disk: %v", entries)
	}
}
