// Package pgtest runs a private PostgreSQL cluster for tests, the way
// internal/fsemu runs the Firestore emulator.
//
// One cluster is shared by every test of a test binary; each test gets its
// own database (DSN), so tests never see each other's rows. Tests that stop
// or restart PostgreSQL start a private cluster with Start.
//
// The cluster is made with the Debian postgresql-15 server binaries
// (initdb, pg_ctl) in a temporary directory, listens on a unix socket in
// that directory only (no TCP), runs with fsync off (it is thrown away),
// and is stopped when the tests end. PostgreSQL refuses to run as root, so
// under root the cluster belongs to an unprivileged user (nobody).
//
// When the binaries are missing, tests fail under CI=true and skip with a
// loud reason elsewhere.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultBinDir is where Debian's postgresql-15 package puts the server
// binaries.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// BinDir returns $WACTL_PG_BIN when set, else DefaultBinDir.
func BinDir() string {
	if b := os.Getenv("WACTL_PG_BIN"); b != "" {
		return b
	}
	return DefaultBinDir
}

// Cluster is one PostgreSQL cluster started by this package.
type Cluster struct {
	Dir     string // temporary directory holding data/, the socket and the log
	SockDir string
	data    string
	logFile string
	cred    *syscall.Credential
	env     []string
	mu      sync.Mutex
	running bool
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// Main wraps testing.M.Run so that the shared cluster is stopped and
// removed as soon as the tests end (without it, a reaper process does it
// when the test binary exits):
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Remove()
	}
	return code
}

// DSN returns the DSN of a fresh, empty database on the shared cluster,
// starting the cluster on first use.
func DSN(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = newCluster()
		if sharedErr == nil {
			shared.reapAfter(os.Getpid())
		}
	})
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared.NewDatabase(t)
}

// Start runs a private cluster for one test (one that stops or restarts
// PostgreSQL); it is stopped and removed at the end of the test.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := newCluster()
	if err != nil {
		unavailable(t, err)
	}
	c.reapAfter(os.Getpid()) // in case the binary dies before the cleanup
	t.Cleanup(c.Remove)
	return c
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("pgtest: PostgreSQL is not available (%v). Install postgresql-15 (apt-get install postgresql-15) or set WACTL_PG_BIN to its bin directory", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED LOUDLY: " + msg)
}

func newCluster() (*Cluster, error) {
	bin := BinDir()
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(bin, b), err)
		}
	}
	// A short path: a unix socket path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("/tmp", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, SockDir: dir, data: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "postgres.log")}
	c.env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "TZ=UTC"}
	if os.Geteuid() == 0 {
		uid, gid, err := unprivileged()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// unprivileged finds the user that owns the cluster when the tests run as
// root: $WACTL_PG_USER, else nobody.
func unprivileged() (int, int, error) {
	name := os.Getenv("WACTL_PG_USER")
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("PostgreSQL refuses to run as root and user %s is missing: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(BinDir(), name), args...)
	cmd.Env = c.env
	cmd.Dir = c.Dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Start starts (or restarts after Stop) the cluster and waits until it
// accepts connections.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	opts := strings.Join([]string{
		"-k", c.SockDir, "-c", "listen_addresses=", "-c", "fsync=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=16MB",
	}, " ")
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", c.logFile, "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s%s", err, out, c.tail())
	}
	c.running = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("PostgreSQL did not accept connections: %w%s", err, c.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reapAfter starts a detached shell that stops the cluster (SIGQUIT to the
// postmaster: immediate shutdown) and removes its directory once process
// pid is gone, so a test binary without Main, or one that panicked or was
// killed, leaves no PostgreSQL running.
func (c *Cluster) reapAfter(pid int) {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
pm=$(head -n1 "$2/postmaster.pid" 2>/dev/null) && kill -QUIT "$pm" 2>/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e "$2/postmaster.pid" ] || break; sleep 0.5; done
rm -rf "$3"`
	cmd := exec.Command("/bin/sh", "-c", script, "pgtest-reaper", strconv.Itoa(pid), c.data, c.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		go cmd.Wait()
	}
}

// Stop stops the cluster at once (connections are cut, like a crash);
// commits stay synchronous, so a committed row survives it even with fsync
// off (the operating system still has it).
// Start brings it back with its data.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	c.running = false
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Remove stops the cluster and deletes its directory.
func (c *Cluster) Remove() {
	_ = c.Stop()
	_ = os.RemoveAll(c.Dir)
}

func (c *Cluster) tail() string {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\npostgres log:\n" + string(b)
}

func (c *Cluster) dsn(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", c.SockDir, db)
}

// NewDatabase creates a fresh database on the cluster and returns its DSN.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return c.dsn(name)
}
