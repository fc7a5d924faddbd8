package sessions_test

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
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	sessionscmd "github.com/wactl/wactl/internal/cmd/sessions"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestMain turns the test binary into `wactl` when WACTL_TEST_MAIN=1, so
// these tests run the real commands in real child processes.
func TestMain(m *testing.M) {
	child.Run()
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

// wactl runs the command tree in a child process on dataDir.
func wactl(t testing.TB, srv *wafake.Server, dataDir string, args ...string) result {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = append([]string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir, "INSTANCE_ID=cli"}, srv.Env()...)
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

type daemon struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
}

func (d *daemon) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(b)
}

func serve(t testing.TB, srv *wafake.Server, dataDir, instance string) *daemon {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := exec.Command(os.Args[0], "serve")
	c.Env = append([]string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir,
		fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=" + instance}, srv.Env()...)
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

func (d *daemon) connected() float64 {
	resp, err := http.Get(d.url + "/health")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	n, _ := m["connected"].(float64)
	return n
}

func (d *daemon) stop(t testing.TB) {
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("wactl serve did not exit after SIGINT")
	}
}

func keyFiles(t testing.TB) (identity, recipients string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	identity, recipients = filepath.Join(dir, "key.txt"), filepath.Join(dir, "key.pub")
	os.WriteFile(identity, []byte("# test key\n"+id.String()+"\n"), 0o600)
	os.WriteFile(recipients, []byte(id.Recipient().String()+"\n"), 0o600)
	return identity, recipients
}

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// TestBackupWhileServingRestoreOnEmptyHost: `wactl sessions backup` runs
// against a data dir whose daemon is serving two accounts and receiving
// messages; it is quiet and exits 0. Restoring the file onto that live
// host is refused (exit 3) and changes nothing; restoring it onto an empty
// data dir works, and a second `wactl serve` there connects both accounts
// without a QR.
func TestBackupWhileServingRestoreOnEmptyHost(t *testing.T) {
	srv := wafake.Start(t)
	dataA := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataA, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts := []watest.Account{watest.Pair(t, srv, sess, "40766000001"), watest.Pair(t, srv, sess, "40766000002")}
	a := serve(t, srv, dataA, "host-a")
	watest.Eventually(t, 20*time.Second, "host A connects 2 accounts", func() bool { return a.connected() == 2 })
	for _, acct := range accts {
		if _, err := srv.SendFromPeer(t.Context(), types.NewJID("40700000009", types.DefaultUserServer), acct.Device.ToNonAD(), text("while serving")); err != nil {
			t.Fatal(err)
		}
	}

	identity, recipients := keyFiles(t)
	out := filepath.Join(t.TempDir(), "wactl.age")
	r := wactl(t, srv, dataA, "sessions", "backup", "--out", out, "--recipients-file", recipients)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("backup while serving: exit %d, stdout %q, stderr %q (want 0 and silence)", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", st, err)
	}
	r = wactl(t, srv, dataA, "sessions", "backup", "--out", out+".2", "-R", recipients, "--json")
	var rep sessionscmd.BackupReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("--json: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(rep.Accounts) != 2 || !rep.Accounts[0].Paired || !rep.Encrypted || rep.Store != "sqlite" {
		t.Fatalf("report: %+v", rep)
	}

	// Restoring onto the serving host: both accounts are live.
	r = wactl(t, srv, dataA, "sessions", "restore", out, "--identity", identity, "--force")
	if r.code != 3 || strings.Count(r.stderr, "refused-live") != 2 {
		t.Fatalf("restore onto a live host: exit %d\n%s", r.code, r.stderr)
	}

	a.stop(t)
	dataB := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(dataB, 0o700)
	r = wactl(t, srv, dataB, "sessions", "restore", out, "--identity", identity)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("restore on an empty host: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b := serve(t, srv, dataB, "host-b")
	watest.Eventually(t, 20*time.Second, "host B connects the restored accounts", func() bool { return b.connected() == 2 })
	for _, acct := range accts {
		if err := srv.WaitLoggedIn(t.Context(), acct.Device); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommandRefusals: the exit codes and messages of the refusals.
func TestCommandRefusals(t *testing.T) {
	srv := wafake.Start(t)
	data := t.TempDir()
	sess, err := sessions.Open(filepath.Join(data, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	watest.Pair(t, srv, sess, "40766100001")
	identity, recipients := keyFiles(t)
	other, _ := keyFiles(t)
	file := filepath.Join(t.TempDir(), "b.age")

	check := func(r result, code int, want string) {
		t.Helper()
		if r.code != code || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to say %q", r.code, code, r.stderr, want)
		}
	}
	check(wactl(t, srv, data, "sessions", "backup", "--out", file), 2, "say how to encrypt")
	check(wactl(t, srv, data, "sessions", "backup", "--out", file, "-R", recipients, "--insecure-plaintext"), 2, "use one of")
	check(wactl(t, srv, data, "sessions", "backup", "--out", file, "-r", "age1notakey"), 2, "--recipient")
	check(wactl(t, srv, data, "sessions", "backup", "--out", file, "-R", recipients, "--account", "account_prod_ffffffffffffffffffffffffffffffff"), 1, "no such account")
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a failed backup left a file")
	}
	check(wactl(t, srv, data, "sessions", "backup", "--out", file, "-R", recipients), 0, "")

	check(wactl(t, srv, data, "sessions", "restore", file), 2, "the backup is encrypted")
	check(wactl(t, srv, data, "sessions", "restore", file, "-i", other), 1, "none of the given keys opens the backup")
	data2, _ := os.ReadFile(file)
	trunc := file + ".trunc"
	os.WriteFile(trunc, data2[:len(data2)-20], 0o600)
	check(wactl(t, srv, data, "sessions", "restore", trunc, "-i", identity), 1, "not a valid wactl sessions snapshot")
	os.Chmod(identity, 0o644)
	check(wactl(t, srv, data, "sessions", "restore", file, "-i", identity), 2, "readable by other users")
	os.Chmod(identity, 0o600)

	plain := filepath.Join(t.TempDir(), "plain")
	r := wactl(t, srv, data, "sessions", "backup", "--out", plain, "--insecure-plaintext")
	check(r, 0, "NOT encrypted")
	check(wactl(t, srv, data, "sessions", "restore", plain, "-i", identity), 2, "--insecure-plaintext")
	// Identical accounts: restore says so and succeeds.
	check(wactl(t, srv, data, "sessions", "restore", plain, "--insecure-plaintext"), 0, "")

	// Passphrase (a cheap work factor in this process only would not reach
	// the child; the default costs about a second each way).
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("incorrect horse\n"), 0o600)
	pfile := filepath.Join(t.TempDir(), "p.age")
	check(wactl(t, srv, data, "sessions", "backup", "--out", pfile, "--passphrase-file", pass), 0, "")
	check(wactl(t, srv, data, "sessions", "restore", pfile, "--passphrase-file", wrong), 1, "a passphrase")
	check(wactl(t, srv, data, "sessions", "restore", pfile, "--passphrase-file", pass, "--json"), 0, "")
}

func loader(dataDir string) func() (*config.Loaded, error) {
	return func() (*config.Loaded, error) {
		return config.Load(config.LoadOptions{SearchPaths: []string{}, LookupEnv: func(k string) (string, bool) {
			if k == "STATE_DIRECTORY" {
				return dataDir, true
			}
			return "", false
		}})
	}
}

// TestTerminalOutputAndQuiet: a line per result on a terminal, nothing
// with --quiet.
func TestTerminalOutputAndQuiet(t *testing.T) {
	srv := wafake.Start(t)
	data := t.TempDir()
	sess, err := sessions.Open(filepath.Join(data, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct := watest.Pair(t, srv, sess, "40766200001")
	identity, recipients := keyFiles(t)
	file := filepath.Join(t.TempDir(), "b.age")
	for _, quiet := range []bool{false, true} {
		ios, _, out, errOut := iostreams.Test()
		ios.SetTTY(false, true, true)
		err := sessionscmd.RunBackup(context.Background(), &sessionscmd.BackupOptions{IO: ios, Load: loader(data), Out: file, RecipientsFiles: []string{recipients}, Quiet: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if quiet != (out.Len() == 0) || errOut.Len() != 0 || (!quiet && !strings.Contains(out.String(), "1 accounts (1 paired) backed up")) {
			t.Fatalf("backup quiet=%v: stdout %q stderr %q", quiet, out, errOut)
		}
		ios, _, out, errOut = iostreams.Test()
		ios.SetTTY(false, true, true)
		err = sessionscmd.RunRestore(context.Background(), &sessionscmd.RestoreOptions{IO: ios, Load: loader(data), File: file, Identities: []string{identity}, Quiet: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if quiet != (out.Len() == 0) || errOut.Len() != 0 || (!quiet && !strings.Contains(out.String(), acct.ID+" unchanged")) {
			t.Fatalf("restore quiet=%v: stdout %q stderr %q", quiet, out, errOut)
		}
	}
}
