package lock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wactl/wactl/internal/fsemu"
)

// fast is the profile most tests use: every rule of the default profile at
// a tenth of its durations.
var fast = Timing{TTL: 2 * time.Second, Renew: 500 * time.Millisecond, SafetyMargin: 500 * time.Millisecond,
	Retry: 200 * time.Millisecond, CallTimeout: time.Second}.WithDefaults()

// sysMono is CLOCK_MONOTONIC, which every process of the machine shares:
// intervals recorded by separate processes can be compared.
func sysMono() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// testClock skews the wall clock and can make the monotonic clock jump
// forward, as a paused process would see it.
type testClock struct {
	skew time.Duration
	jump atomic.Int64
}

func (c *testClock) Now() time.Time { return time.Now().Add(c.skew) }
func (c *testClock) Mono() time.Duration {
	return SystemClock{}.Mono() + time.Duration(c.jump.Load())
}
func (c *testClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// tenure is one ACTIVE period of one contender.
type tenure struct {
	Who        string
	Epoch      int64
	Start, End int64 // sysMono ns; End 0 while active
}

// tenures records ACTIVE periods and fails on overlap.
type tenures struct {
	mu   sync.Mutex
	list []tenure
	open map[string]int
}

func newTenures() *tenures { return &tenures{open: map[string]int{}} }

func (r *tenures) start(who string, epoch int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[who] = len(r.list)
	r.list = append(r.list, tenure{Who: who, Epoch: epoch, Start: sysMono()})
}

func (r *tenures) end(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.open[who]; ok {
		r.list[i].End = sysMono()
		delete(r.open, who)
	}
}

func (r *tenures) add(t tenure) {
	r.mu.Lock()
	r.list = append(r.list, t)
	r.mu.Unlock()
}

func (r *tenures) activeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.open)
}

// check fails the test when two tenures overlap or epochs do not grow with
// every change of holder; it returns the largest gap between tenures.
func (r *tenures) check(t *testing.T) (maxGap time.Duration) {
	t.Helper()
	r.mu.Lock()
	list := append([]tenure(nil), r.list...)
	r.mu.Unlock()
	now := sysMono()
	sort.Slice(list, func(i, j int) bool { return list[i].Start < list[j].Start })
	for i := range list {
		if list[i].End == 0 {
			list[i].End = now
		}
		if i == 0 {
			continue
		}
		p, c := list[i-1], list[i]
		if c.Start < p.End {
			t.Errorf("TWO HOLDERS: %s (epoch %d) active from %s while %s (epoch %d) active until %s",
				c.Who, c.Epoch, time.Duration(c.Start-list[0].Start), p.Who, p.Epoch, time.Duration(p.End-list[0].Start))
		}
		if c.Epoch < p.Epoch || (c.Epoch == p.Epoch && c.Who != p.Who) {
			t.Errorf("epoch did not grow: %s had %d, then %s got %d", p.Who, p.Epoch, c.Who, c.Epoch)
		}
		maxGap = max(maxGap, time.Duration(c.Start-p.End))
	}
	return maxGap
}

// watcher turns callbacks into channels and tenures.
type watcher struct {
	name    string
	rec     *tenures
	actives chan int64
	passive chan string
}

func newWatcher(name string, rec *tenures) *watcher {
	return &watcher{name: name, rec: rec, actives: make(chan int64, 100), passive: make(chan string, 100)}
}

func (w *watcher) callbacks() Callbacks {
	return Callbacks{
		OnActive: func(e int64) {
			if w.rec != nil {
				w.rec.start(w.name, e)
			}
			w.actives <- e
		},
		OnPassive: func(r string) {
			if w.rec != nil {
				w.rec.end(w.name)
			}
			w.passive <- r
		},
	}
}

func (w *watcher) waitActive(t *testing.T, within time.Duration) int64 {
	t.Helper()
	select {
	case e := <-w.actives:
		return e
	case <-time.After(within):
		t.Fatalf("%s not ACTIVE within %s", w.name, within)
		return 0
	}
}

func (w *watcher) waitPassive(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case r := <-w.passive:
		return r
	case <-time.After(within):
		t.Fatalf("%s did not step down within %s", w.name, within)
		return ""
	}
}

func (w *watcher) assertNoActive(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-w.actives:
		t.Fatalf("%s became ACTIVE (epoch %d) but must stay PASSIVE", w.name, e)
	case <-time.After(d):
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runLock runs l.Run until the test ends (or stop is called) and reports
// Run's error.
func runLock(t *testing.T, l Lock) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// ---- child processes: the test binary re-executed ----

const childEnv = "WACTL_LOCK_TEST_CHILD"

type childCfg struct {
	Mode     string // "firestore" | "embedded" | "contend"
	EmuHost  string
	Project  string
	DocPath  string
	Instance string
	Host     string
	DataDir  string
	Timing   Timing
	// contend mode
	Name        string
	Target      int
	CounterDoc  string
	TenuresFile string
}

// child is a running child process and the lines it prints.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *bytes.Buffer
	done   chan struct{}
}

func startChild(t *testing.T, cfg childCfg) *child {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1000), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &lockedBuffer{b: c.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child %s stderr:\n%s", cfg.Instance+cfg.Name, c.stderr.String())
		}
	})
	return c
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// expect waits for a line starting with prefix and returns its fields.
func (c *child) expect(t *testing.T, prefix string, within time.Duration) []string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q; stderr:\n%s", prefix, c.stderr.String())
			}
			if strings.HasPrefix(l, prefix) {
				return strings.Fields(l)
			}
		case <-deadline:
			t.Fatalf("child did not print %q within %s; stderr:\n%s", prefix, within, c.stderr.String())
		}
	}
}

func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// stop closes stdin: the child shuts down gracefully (steps down, releases).
func (c *child) stop(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("child did not exit after stdin closed")
	}
}

func atoi64(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return n
}

func fmtTenure(tn tenure) string {
	return fmt.Sprintf("%s %d %d %d\n", tn.Who, tn.Epoch, tn.Start, tn.End)
}

// emuClient is fsemu.NewClient after one unhurried read: the emulator's
// first requests after start take seconds (JVM warm-up), longer than the
// fast profile's call timeout.
func emuClient(t *testing.T) (*firestore.Client, string) {
	t.Helper()
	c, project := fsemu.NewClient(t)
	warm(t, c)
	return c, project
}

func warm(t testing.TB, c *firestore.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Doc("warmup/x").Get(ctx); err != nil && status.Code(err) != codes.NotFound {
		t.Fatalf("emulator warm-up read: %v", err)
	}
}
