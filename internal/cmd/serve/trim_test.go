package serve_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	wactlserve "github.com/wactl/wactl/internal/cmd/serve"
	"github.com/wactl/wactl/internal/watest"
)

// rssFile is the file-backed resident size of process pid in kB.
func rssFile(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "RssFile:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Skip("no RssFile in /proc/PID/status (not Linux, or a kernel before 4.5)")
	return 0
}

// serveIdle starts `wactl serve` with 0 accounts on the embedded default,
// logging at debug level, and returns it once it answers /health together
// with its RssFile (kB) at that moment.
func serveIdle(t *testing.T, env ...string) (*proc, int) {
	t.Helper()
	if _, err := os.Stat("/proc/self/smaps"); err != nil {
		t.Skip("no /proc/self/smaps: not Linux")
	}
	dataDir := t.TempDir()
	port := freePort(t)
	c := exec.Command(os.Args[0], "serve", "--log-level", "debug")
	c.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"STATE_DIRECTORY=" + dataDir, fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=host-a"}, env...)
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
	watest.Eventually(t, 20*time.Second, "wactl serve listening", func() bool {
		resp, err := http.Get(p.url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return p, rssFile(t, c.Process.Pid)
}

// TestServeReleasesStartupPages: an idle `wactl serve` (0 accounts, embedded
// default) gives back the executable pages start-up touched a few seconds
// after it listens — seen from outside, as an operator's ps or systemd does.
func TestServeReleasesStartupPages(t *testing.T) {
	t.Parallel()
	p, start := serveIdle(t)
	watest.Eventually(t, 30*time.Second, "the start-up memory log line", func() bool {
		return strings.Contains(p.log(), "start-up memory")
	})
	if strings.Contains(p.log(), "start-up memory not released") {
		t.Skipf("kernel without MADV_PAGEOUT:\n%s", p.log())
	}
	if !strings.Contains(p.log(), "start-up memory released") {
		t.Fatalf("trim failed:\n%s", p.log())
	}
	// Measured from outside and compared with a wide margin: a start-up
	// leaves ~20 MB of executable pages resident and the trim keeps a few.
	after := rssFile(t, p.cmd.Process.Pid)
	t.Logf("RssFile %d kB when listening, %d kB after the trim", start, after)
	if after*4 > start*3 {
		t.Fatalf("RssFile %d kB when listening, %d kB after the trim: want at least a quarter less", start, after)
	}
	resp, err := http.Get(p.url + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics after the trim: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestServeTrimCanBeTurnedOff: daemon.trim_startup_memory=false leaves the
// start-up pages alone (the operator's way to measure without the trim).
func TestServeTrimCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	p, start := serveIdle(t, "WACTL_DAEMON_TRIM_STARTUP_MEMORY=false")
	// The trim would have run by now; the log line is what proves it did not.
	time.Sleep(wactlserve.TrimDelay + 2*time.Second)
	if strings.Contains(p.log(), "start-up memory") {
		t.Fatalf("trimmed although turned off:\n%s", p.log())
	}
	after := rssFile(t, p.cmd.Process.Pid)
	t.Logf("RssFile %d kB when listening, %d kB %s later", start, after, wactlserve.TrimDelay+2*time.Second)
	if after*4 <= start*3 {
		t.Fatalf("RssFile fell from %d to %d kB with the trim turned off", start, after)
	}
}
