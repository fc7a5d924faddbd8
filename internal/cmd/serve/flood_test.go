package serve_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// TestSlowBodyFloodKeepsHealthAndWatchdog is issue 16 item 1: 300
// connections that each declare a 1000-byte body and send one byte, against
// a daemon with 256 file descriptors. /health must keep answering, the
// systemd watchdog must keep being pinged, and the server's own errors
// (accept failures) must go through slog, not the standard logger. It runs
// under -race too: the listener keeps the probes' slots whatever the
// child's speed (it used to lose them to the flood about one run in three).
func TestSlowBodyFloodKeepsHealthAndWatchdog(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the child's fd limit")
	}
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var pings []time.Time
	ready := make(chan struct{})
	var readyOnce sync.Once
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				switch l {
				case "WATCHDOG=1":
					mu.Lock()
					pings = append(pings, time.Now())
					mu.Unlock()
				case "READY=1":
					readyOnce.Do(func() { close(ready) })
				}
			}
		}
	}()

	port := freePort(t)
	// The shell lowers the fd limit and execs the test binary as wactl, so
	// the limit is the daemon's own (Go keeps a hard limit it cannot raise).
	c := exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" serve`, os.Args[0])
	c.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"STATE_DIRECTORY=" + dataDir, fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=host-a",
		"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=3000000", "WACTL_LOG_FORMAT=json"}, srv.Env()...)
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
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("no READY=1")
	}
	watest.Eventually(t, 10*time.Second, "/health", func() bool { return p.health() != nil })

	// The flood: every connection stays open, its body never complete.
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var flood []net.Conn
	defer func() {
		for _, fc := range flood {
			fc.Close()
		}
	}()
	for range 300 {
		fc, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(flood), err)
		}
		flood = append(flood, fc)
		fmt.Fprintf(fc, "POST /api/whatsapp/send-message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	}
	floodStart := time.Now()

	// /health answers within 2 s (the watchdog probe's timeout) all along.
	client := &http.Client{Timeout: 2 * time.Second}
	var failures []string
	for time.Since(floodStart) < 8*time.Second {
		start := time.Now()
		resp, err := client.Get(p.url + "/health")
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("%.1fs: %v", time.Since(floodStart).Seconds(), err))
		default:
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures = append(failures, fmt.Sprintf("%.1fs: status %d", time.Since(floodStart).Seconds(), resp.StatusCode))
			}
		}
		time.Sleep(max(0, 250*time.Millisecond-time.Since(start)))
	}
	if len(failures) > 0 {
		t.Errorf("/health failed %d time(s) under the flood: %v", len(failures), failures)
	}
	mu.Lock()
	var during int
	for _, at := range pings {
		if at.After(floodStart.Add(time.Second)) {
			during++
		}
	}
	mu.Unlock()
	if during < 2 {
		t.Errorf("%d watchdog pings during 8 s of flood (WatchdogSec=3s); systemd would restart the daemon", during)
	}
	for _, l := range strings.Split(p.log(), "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			t.Errorf("a log line outside slog's JSON: %q", l)
		}
		if strings.Contains(l, "too many open files") {
			t.Errorf("the daemon ran out of file descriptors: %s", l)
		}
	}
}
