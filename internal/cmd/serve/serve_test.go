package serve_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestMain turns the test binary into `wactl` when WACTL_TEST_MAIN=1: the
// real command tree in a real child process, with the one test hook that
// points whatsmeow at the fake WhatsApp server named in the environment.
func TestMain(m *testing.M) {
	child.Run()
	os.Exit(fsemu.Main(m))
}

type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr strings.Builder
	exited chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve starts `wactl serve` as a child process on dataDir.
func serve(t testing.TB, srv *wafake.Server, dataDir string, env ...string) *proc {
	t.Helper()
	port := freePort(t)
	c := exec.Command(os.Args[0], "serve")
	c.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"STATE_DIRECTORY=" + dataDir, fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=host-a"}, srv.Env()...)
	c.Env = append(c.Env, env...)
	c.Dir = dataDir
	p := &proc{t: t, cmd: c, url: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan struct{})}
	c.Stderr = p
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		c.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("wactl serve log:\n%s", p.log())
		}
	})
	return p
}

func (p *proc) health() map[string]any {
	resp, err := http.Get(p.url + "/health")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func (p *proc) waitConnected(n int, within time.Duration) map[string]any {
	p.t.Helper()
	var m map[string]any
	watest.Eventually(p.t, within, fmt.Sprintf("%d accounts connected", n), func() bool {
		m = p.health()
		return m != nil && m["connected"] == float64(n)
	})
	return m
}

func (p *proc) signal(sig syscall.Signal) (exitCode int, took time.Duration) {
	p.t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("no exit 20s after %s", sig)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

func pairThree(t *testing.T, srv *wafake.Server, dataDir string) []watest.Account {
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []watest.Account
	for _, p := range []string{"40722000001", "40722000002", "40722000003"} {
		out = append(out, watest.Pair(t, srv, sess, p))
	}
	return out
}

// TestRestartWithoutQR is the seed audit's restart test, done right: three
// paired accounts come back connected after SIGINT and after kill -9, with
// no QR, and the dashboard shows their sessions on disk.
func TestRestartWithoutQR(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	accts := pairThree(t, srv, dataDir)

	p := serve(t, srv, dataDir)
	p.waitConnected(3, 20*time.Second)
	code, took := p.signal(syscall.SIGINT)
	if code != 0 || took > 10*time.Second {
		t.Fatalf("SIGINT: exit %d after %s, want 0 within 10s\n%s", code, took, p.log())
	}
	for _, a := range accts {
		if srv.IsLive(a.Device) {
			t.Fatalf("%s still connected after exit", a.ID)
		}
	}

	p = serve(t, srv, dataDir)
	m := p.waitConnected(3, 10*time.Second)
	if m["accounts_total"] != 3.0 || m["needs_qr"] != 0.0 || m["waMode"] != "active" {
		t.Fatalf("after restart: %v", m)
	}
	resp, err := http.Get(p.url + "/api/status/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Accounts []map[string]any `json:"accounts"`
	}
	json.NewDecoder(resp.Body).Decode(&dash)
	resp.Body.Close()
	if len(dash.Accounts) != 3 {
		t.Fatalf("dashboard: %+v", dash)
	}
	for _, a := range dash.Accounts {
		if a["hasDiskSession"] != true {
			t.Fatalf("dashboard account without disk session: %v", a)
		}
	}

	// kill -9: the kernel drops the lock; the same instance reclaims at once.
	p.cmd.Process.Kill()
	<-p.exited
	start := time.Now()
	p = serve(t, srv, dataDir)
	p.waitConnected(3, 10*time.Second)
	t.Logf("connected again %s after kill -9", time.Since(start))
	for _, c := range srv.Connections() {
		if c.Pairing && c.Opened.After(start) {
			t.Fatalf("a QR was requested after restart: %+v", c)
		}
	}
	for _, a := range accts {
		if got := srv.MaxConcurrent(a.Device); got != 1 {
			t.Fatalf("%s: %d live connections at once", a.ID, got)
		}
	}
}

// BenchmarkRestore measures what an operator waits for after a restart:
// `wactl serve` (a real child process) restoring N paired accounts from
// disk until /health says all are connected (default 50, set
// WACTL_BENCH_ACCOUNTS), and the daemon's RSS with all of them connected.
// Pairing the accounts is setup, not timed.
func BenchmarkRestore(b *testing.B) {
	n := 50
	if v := os.Getenv("WACTL_BENCH_ACCOUNTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	srv, err := wafake.New(wafake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	dataDir := b.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		watest.Pair(b, srv, sess, fmt.Sprintf("4076600%04d", i))
	}
	b.ResetTimer()
	var rss int64
	for i := 0; i < b.N; i++ {
		start := time.Now()
		p := serve(b, srv, dataDir)
		watest.Eventually(b, 60*time.Second, "all connected", func() bool {
			m := p.health()
			return m != nil && m["connected"] == float64(n)
		})
		b.ReportMetric(time.Since(start).Seconds(), "s-to-all-connected")
		rss = rssKB(p.cmd.Process.Pid)
		stop := time.Now()
		p.cmd.Process.Signal(syscall.SIGINT)
		<-p.exited
		b.ReportMetric(time.Since(stop).Seconds(), "s-to-exit-after-SIGINT")
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			b.Fatalf("exit %d after SIGINT", code)
		}
	}
	b.ReportMetric(float64(rss)/1024, "MB-RSS-connected")
	b.ReportMetric(float64(n), "accounts")
}

func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "VmRSS:"), "kB")), &kb)
			return kb
		}
	}
	return 0
}

// TestKillActiveThePassiveTakesOver: two `wactl serve` processes on one
// data dir; the second waits PASSIVE. kill -9 of the ACTIVE one: the
// PASSIVE one connects every account, and no device ever has two live
// connections (the fake records every connection).
func TestKillActiveThePassiveTakesOver(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	accts := pairThree(t, srv, dataDir)
	active := serve(t, srv, dataDir)
	active.waitConnected(3, 20*time.Second)
	passive := serve(t, srv, dataDir, "INSTANCE_ID=host-b")
	watest.Eventually(t, 10*time.Second, "second instance PASSIVE", func() bool {
		m := passive.health()
		return m != nil && m["waMode"] == "passive" && m["connected"] == 0.0 && m["lockHolder"] == "host-a"
	})
	active.cmd.Process.Kill()
	<-active.exited
	start := time.Now()
	passive.waitConnected(3, 20*time.Second)
	t.Logf("PASSIVE instance connected all accounts %s after kill -9 of the ACTIVE one", time.Since(start))
	for _, a := range accts {
		if got := srv.MaxConcurrent(a.Device); got != 1 {
			t.Fatalf("%s: %d live connections at once", a.ID, got)
		}
	}
}

// TestSystemdNotify: under systemd (NOTIFY_SOCKET set) `wactl serve` says
// READY=1 once it serves, a STATUS= line, and STOPPING=1 on SIGTERM, on a
// real notify socket.
func TestSystemdNotify(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, strings.Split(strings.TrimSpace(string(buf[:n])), "\n")...)
			mu.Unlock()
		}
	}()
	seen := func(prefix string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range got {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
		return false
	}
	p := serve(t, srv, dataDir, "NOTIFY_SOCKET="+sock)
	watest.Eventually(t, 20*time.Second, "READY=1", func() bool { return seen("READY=1") })
	if m := p.health(); m == nil {
		t.Fatal("READY=1 before the HTTP listener answered")
	}
	watest.Eventually(t, 20*time.Second, "STATUS= line", func() bool { return seen("STATUS=0/0 connected, lease held") })
	if code, _ := p.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if !seen("STOPPING=1") {
		t.Fatalf("no STOPPING=1 in %v", got)
	}
}
