// Package fsemu runs the official Cloud Firestore emulator for tests.
//
// Firestore code in wactl is tested only against the real emulator, never a
// mock. One emulator is shared by every test of a test binary (or by the whole
// `make test` run when FIRESTORE_EMULATOR_HOST is already set); each test gets
// its own project id, which the emulator keeps fully separate, so tests can run
// in parallel without cleaning up after each other.
//
// Tests that freeze or kill the emulator must not disturb the shared one:
// they start a private instance with Start.
//
// When the emulator is not installed, tests fail under CI=true and skip with a
// loud reason elsewhere.
package fsemu

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/fsclient"
)

// DefaultBinary is where the emulator is installed on this project's machines.
const DefaultBinary = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"

// Binary returns the emulator launcher: $WACTL_FIRESTORE_EMULATOR_BIN when set,
// else DefaultBinary.
func Binary() string {
	if b := os.Getenv("WACTL_FIRESTORE_EMULATOR_BIN"); b != "" {
		return b
	}
	return DefaultBinary
}

// Emulator is one running emulator process started by this package.
type Emulator struct {
	Host string // host:port on loopback
	cmd  *exec.Cmd
	done chan struct{}
	log  *tailBuffer
}

var (
	sharedOnce sync.Once
	shared     *Emulator
	sharedHost string
	sharedErr  error
)

// Main wraps testing.M.Run so that a shared emulator started by this test
// binary is stopped when the tests end. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Host returns the address of the shared emulator, starting it on first use.
// It fails the test under CI and skips it elsewhere when no emulator exists.
func Host(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
			sharedHost = h
			sharedErr = waitReady(context.Background(), h, 30*time.Second)
			return
		}
		shared, sharedErr = startRetrying(context.Background())
		if sharedErr == nil {
			sharedHost = shared.Host
			// The Go client reads this variable; every client made by
			// the tests of this binary must reach the shared emulator.
			os.Setenv("FIRESTORE_EMULATOR_HOST", sharedHost)
		}
	})
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return sharedHost
}

// Start runs a private emulator for one test (for tests that pause or kill
// it); it is stopped at the end of the test.
func Start(t testing.TB) *Emulator {
	t.Helper()
	e, err := startRetrying(context.Background()) // port.go
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(e.Stop)
	return e
}

// ProjectID returns a fresh project id; data of different project ids never
// mixes in the emulator.
func ProjectID(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, name)
	if len(name) > 20 {
		name = name[:20]
	}
	return "t-" + strings.Trim(name, "-") + "-" + hex.EncodeToString(b[:])
}

// NewClient returns a client of the shared emulator on a project of its own,
// closed at the end of the test.
func NewClient(t testing.TB) (*firestore.Client, string) {
	t.Helper()
	host := Host(t)
	project := ProjectID(t)
	return clientFor(t, host, project), project
}

// NewClient returns a client of this (private) emulator on a project of its own.
func (e *Emulator) NewClient(t testing.TB) (*firestore.Client, string) {
	t.Helper()
	project := ProjectID(t)
	return clientFor(t, e.Host, project), project
}

func clientFor(t testing.TB, host, project string) *firestore.Client {
	t.Helper()
	c, err := fsclient.New(context.Background(), fsclient.Options{ProjectID: project, EmulatorHost: host})
	if err != nil {
		t.Fatalf("fsemu: firestore client for %s: %v", host, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Reset deletes every document of a project.
func Reset(host, project string) error {
	req, _ := http.NewRequest(http.MethodDelete,
		"http://"+host+"/emulator/v1/projects/"+project+"/databases/(default)/documents", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("fsemu: reset %s: %s: %s", project, resp.Status, b)
	}
	return nil
}

// IndexUsage returns the emulator's report of the composite indexes that the
// queries run so far on project would need in production (raw JSON).
func IndexUsage(host, project string) ([]byte, error) {
	resp, err := http.Get("http://" + host + "/emulator/v1/projects/" + project +
		":indexUsage?database=projects/" + project + "/databases/(default)")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("fsemu: the Firestore emulator is not available (%v). "+
		"Install google-cloud-cli-firestore-emulator and Java 17, or set "+
		"FIRESTORE_EMULATOR_HOST / WACTL_FIRESTORE_EMULATOR_BIN", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED LOUDLY: " + msg)
}

func start(ctx context.Context) (*Emulator, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("emulator launcher %s: %w", bin, err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("java not found on PATH")
	}
	port, err := pickPort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := javaCmd(bin, port)
	logs := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	e := &Emulator{Host: host, cmd: cmd, done: make(chan struct{}), log: logs}
	go func() { _ = cmd.Wait(); close(e.done) }()
	if err := e.waitReady(ctx, 60*time.Second); err != nil {
		e.Stop()
		return nil, fmt.Errorf("%w; emulator output:\n%s", err, logs.String())
	}
	return e, nil
}

func (e *Emulator) waitReady(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		// Ours only once our JVM says so: another emulator that took the
		// port first answers "Ok" too while ours dies on the bind, and
		// adopting it made Freeze stop nothing (TestStartNeverAdoptsAnotherEmulator).
		if e.log.contains(runningLine) && ok(e.Host) {
			return nil
		}
		select {
		case <-e.done:
			if strings.Contains(e.log.String(), "BindException") {
				return errors.New("emulator exited before it was ready: java.net.BindException: Address already in use")
			}
			return errors.New("emulator exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("emulator on %s not ready after %s", e.Host, d)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitReady(ctx context.Context, host string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !ok(host) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("FIRESTORE_EMULATOR_HOST=%s does not answer", host)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func ok(host string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + host + "/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(strings.TrimSpace(string(b)), "Ok")
}

// Freeze stops the emulator's processes (SIGSTOP): clients see a partition.
func (e *Emulator) Freeze() error { return e.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen emulator (SIGCONT).
func (e *Emulator) Thaw() error { return e.signal(syscall.SIGCONT) }

func (e *Emulator) signal(sig syscall.Signal) error {
	return syscall.Kill(-e.cmd.Process.Pid, sig)
}

// Stop kills the emulator and waits for it to exit.
func (e *Emulator) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
	}
}

// Restart kills the emulator and starts a new one on the same port: all data
// is lost, as after a real crash of the emulator.
func (e *Emulator) Restart(t testing.TB) {
	t.Helper()
	e.Stop()
	port := e.Host[strings.LastIndex(e.Host, ":")+1:]
	p, _ := strconv.Atoi(port)
	cmd := javaCmd(Binary(), p)
	e.log = &tailBuffer{max: 16 << 10} // waitReady looks for this JVM's own "running" line
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("fsemu: restart: %v", err)
	}
	e.cmd, e.done = cmd, make(chan struct{})
	done := e.done
	go func() { _ = cmd.Wait(); close(done) }()
	if err := e.waitReady(context.Background(), 60*time.Second); err != nil {
		t.Fatalf("fsemu: restart: %v\n%s", err, e.log.String())
	}
}

// javaCmd runs the emulator's JVM directly rather than through its bash
// launcher, so that Pdeathsig reaches java itself: a test binary killed with
// SIGKILL must not leave an emulator behind.
func javaCmd(launcher string, port int) *exec.Cmd {
	jar := filepath.Join(filepath.Dir(launcher), "cloud-firestore-emulator.jar")
	java := os.Getenv("JAVA")
	if java == "" {
		java = "java"
	}
	cmd := exec.Command(java, "-Duser.language=en", "-cp", jar,
		"com.google.cloud.datastore.emulator.firestore.CloudFirestore",
		"start", "--host=127.0.0.1", fmt.Sprintf("--port=%d", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Dir = os.TempDir()
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runningLine is what the emulator prints once it listens on its port.
const runningLine = "Dev App Server is now running"

// tailBuffer keeps the last max bytes of the emulator's output for error
// messages without growing without bound.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) contains(sub string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(string(b.buf), sub)
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(b.buf)))
	for sc.Scan() {
		out.WriteString("  | " + sc.Text() + "\n")
	}
	return out.String()
}
