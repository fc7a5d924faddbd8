package faulttest

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

	"github.com/wactl/wactl/internal/wafake"
)

// host is one "machine": its own data dir (with its own copy of the
// sessions) and instance id, running `wactl serve` as a real child process
// that the test stops, kills and restarts.
type host struct {
	t       testing.TB
	name    string
	dataDir string
	env     []string
	url     string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	paused  bool
	running bool
}

var quick = &http.Client{Timeout: 400 * time.Millisecond}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newHost(t testing.TB, name, dataDir string, srv *wafake.Server, env []string) *host {
	port := freePort(t)
	h := &host{t: t, name: name, dataDir: dataDir, url: fmt.Sprintf("http://127.0.0.1:%d", port),
		logPath: filepath.Join(dataDir, "serve.log")}
	h.env = append([]string{"WACTL_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"STATE_DIRECTORY=" + dataDir, fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=" + name,
		wafake.EnvClientTag + "=" + name}, srv.Env()...)
	h.env = append(h.env, env...)
	t.Cleanup(h.kill)
	return h
}

// start runs `wactl serve` (a no-op when it runs).
func (h *host) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		return
	}
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	c := exec.Command(os.Args[0], "serve")
	c.Env, c.Dir, c.Stderr, c.Stdout = h.env, h.dataDir, logf, logf
	if err := c.Start(); err != nil {
		h.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = c.Wait(); logf.Close(); close(exited) }()
	h.cmd, h.exited, h.running, h.paused = c, exited, true, false
}

// kill9 is kill -9; it returns when the process is gone.
func (h *host) kill() {
	h.mu.Lock()
	c, exited, running := h.cmd, h.exited, h.running
	h.running, h.paused = false, false
	h.mu.Unlock()
	if !running {
		return
	}
	_ = c.Process.Kill()
	<-exited
}

// term is a clean stop (SIGTERM), resuming a paused process first.
func (h *host) term() {
	h.mu.Lock()
	c, exited, running, paused := h.cmd, h.exited, h.running, h.paused
	h.running, h.paused = false, false
	h.mu.Unlock()
	if !running {
		return
	}
	if paused {
		_ = c.Process.Signal(syscall.SIGCONT)
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = c.Process.Kill()
		<-exited
	}
}

func (h *host) pause() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running || h.paused {
		return false
	}
	h.paused = syscall.Kill(h.cmd.Process.Pid, syscall.SIGSTOP) == nil
	return h.paused
}

func (h *host) resume() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running && h.paused {
		_ = syscall.Kill(h.cmd.Process.Pid, syscall.SIGCONT)
		h.paused = false
	}
}

// live reports whether the process runs and is not stopped.
func (h *host) live() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running && !h.paused
}

// health is /health, or nil when the host does not answer at once.
func (h *host) health() map[string]any {
	if !h.live() {
		return nil
	}
	resp, err := quick.Get(h.url + "/health")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m
}

// activeWith reports whether the host says ACTIVE with n accounts connected.
func (h *host) activeWith(n int) bool {
	m := h.health()
	return m != nil && m["waMode"] == "active" && m["connected"] == float64(n)
}

// journalEmpty reports whether the host answers and has shipped its
// journal to Firestore.
func (h *host) journalEmpty() bool {
	m := h.health()
	if m == nil {
		return false
	}
	st, _ := m["store"].(map[string]any)
	return st != nil && st["journalBacklog"] == 0.0
}

func (h *host) logTail() string {
	b, _ := os.ReadFile(h.logPath)
	s := string(b)
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return strings.TrimSpace(s)
}
