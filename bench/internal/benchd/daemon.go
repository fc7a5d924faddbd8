// Package benchd runs `wactl serve` as a child process for the benchmarks
// under bench/ (the test binary re-executed as wactl, as internal/watest
// does for the tests) and reads what they measure off it: /health,
// /metrics, /proc.
package benchd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

const Token = "bench-service-token-0123456789abcdef"

// daemon is a `wactl serve` child process (the test binary as wactl).
type Daemon struct {
	Cmd    *exec.Cmd
	URL    string
	Data   string
	Exited chan struct{}
	mu     sync.Mutex
	log    bytes.Buffer
}

func (d *Daemon) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.log.Len() < 1<<20 {
		d.log.Write(b)
	}
	return len(b), nil
}

func FreePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pairAccounts pairs n accounts into dataDir/sessions through the fake.
func PairAccounts(tb testing.TB, srv *wafake.Server, dataDir string, n int, prefix string) []watest.Account {
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]watest.Account, n)
	for i := range n {
		out[i] = watest.Pair(tb, srv, sess, fmt.Sprintf("%s%04d", prefix, i))
	}
	return out
}

// startDaemon runs `wactl serve` on dataDir; the API rate limit is off
// (the default, 120 mutations a minute per principal, would cap the
// service token at 2 sends a second).
func Start(tb testing.TB, srv *wafake.Server, dataDir string, env ...string) *Daemon {
	tb.Helper()
	port := FreePort(tb)
	c := exec.Command(os.Args[0], "serve", "--log-level", "warn")
	c.Env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"STATE_DIRECTORY=" + dataDir, fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=bench",
		"WACTL_API_SERVICE_TOKEN=" + Token, "WACTL_API_RATE_PER_MINUTE=-1"}, srv.Env()...)
	c.Env = append(c.Env, env...)
	c.Dir = dataDir
	d := &Daemon{Cmd: c, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Data: dataDir, Exited: make(chan struct{})}
	c.Stderr = d
	if err := c.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { c.Wait(); close(d.Exited) }()
	tb.Cleanup(func() { d.Stop(tb) })
	return d
}

func (d *Daemon) Stop(tb testing.TB) {
	select {
	case <-d.Exited:
		return
	default:
	}
	d.Cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.Exited:
	case <-time.After(20 * time.Second):
		d.Cmd.Process.Kill()
		<-d.Exited
	}
	if tb.Failed() {
		d.mu.Lock()
		tb.Logf("wactl serve log:\n%s", d.log.String())
		d.mu.Unlock()
	}
}

func (d *Daemon) Health() map[string]any {
	resp, err := http.Get(d.URL + "/health")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func (d *Daemon) WaitConnected(tb testing.TB, n int, within time.Duration) {
	tb.Helper()
	watest.Eventually(tb, within, fmt.Sprintf("%d accounts connected", n), func() bool {
		m := d.Health()
		return m != nil && m["connected"] == float64(n)
	})
}

// metrics scrapes /metrics into name{labels} → value.
func (d *Daemon) Metrics() map[string]float64 {
	req, _ := http.NewRequest("GET", d.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// sampler polls /metrics while a phase runs and keeps the largest journal
// backlog it saw.
type Sampler struct {
	stop       chan struct{}
	done       chan struct{}
	MaxBacklog float64
}

func (d *Daemon) Sample() *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if m := d.Metrics(); m != nil {
					s.MaxBacklog = max(s.MaxBacklog, m["wactl_journal_backlog_messages"])
				}
			}
		}
	}()
	return s
}

func (s *Sampler) End() float64 {
	close(s.stop)
	<-s.done
	return s.MaxBacklog
}

func Loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
