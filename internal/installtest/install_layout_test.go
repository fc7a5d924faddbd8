// Package installtest walks the layout the Debian package installs (issue
// 17): /etc/wactl/config.yaml naming the data dir, the data dir owned by
// the service user (0700), the unit's runtime directory with the admin
// socket, and runs wactl's commands in it as the service user, as root and
// as operators, in real child processes with real credentials.
package installtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/dedupe"
)

func TestMain(m *testing.M) {
	child.Run()
	os.Exit(m.Run())
}

// Who runs a command. The service user is nobody:nogroup (the package's
// wactl:wactl); the operator is www-data, once in the service's group and
// once not; root is root.
type who struct {
	name string
	cred *syscall.Credential // nil: root, this process
}

var (
	service       = who{"service user", &syscall.Credential{Uid: 65534, Gid: 65534}}
	operatorGroup = who{"operator in the service's group", &syscall.Credential{Uid: 33, Gid: 33, Groups: []uint32{65534}}}
	operator      = who{"operator", &syscall.Credential{Uid: 33, Gid: 33}}
	root          = who{"root", nil}
)

type host struct {
	t       *testing.T
	srv     *wafake.Server
	base    string
	bin     string
	config  string // /etc/wactl/config.yaml
	data    string // /var/lib/wactl
	run     string // /run/wactl
	home    string // the operators' working directory
	port    int
	serving *proc
}

func newHost(t *testing.T) *host {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs commands as other users")
	}
	base, err := os.MkdirTemp("", "wactl-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	h := &host{t: t, srv: wafake.Start(t, wafake.Options{PairTimeout: 5 * time.Second}), base: base,
		bin: filepath.Join(base, "usr/bin/wactl"), config: filepath.Join(base, "etc/wactl/config.yaml"),
		data: filepath.Join(base, "var/lib/wactl"), run: filepath.Join(base, "run/wactl"), home: filepath.Join(base, "home/op")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(base, 0o755))
	for _, d := range []string{"usr/bin", "etc/wactl", "var/lib", "run"} {
		must(os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	h.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	self, err := os.ReadFile(os.Args[0])
	must(err)
	must(os.WriteFile(h.bin, self, 0o755))
	// The port is set where an admin sets it, so that doctor finds the daemon.
	must(os.WriteFile(h.config, []byte(fmt.Sprintf("# as packaging/config.yaml\ndata_dir: %s\nhttp:\n  port: %d\n", h.data, h.port)), 0o644))
	// StateDirectory=wactl (0700) and RuntimeDirectory=wactl (0750), as
	// systemd makes them for User=/Group= of the unit.
	must(os.Mkdir(h.data, 0o700))
	must(os.Chown(h.data, 65534, 65534))
	must(os.Mkdir(h.run, 0o750))
	must(os.Chown(h.run, 65534, 65534))
	must(os.MkdirAll(h.home, 0o755))
	must(os.Chown(h.home, 33, 33))
	return h
}

// env is a login shell's environment on the host: the config file where
// the package puts it (WACTL_CONFIG stands in for /etc/wactl/config.yaml),
// the runtime directory (RUNTIME_DIRECTORY stands in for /run/wactl) and
// the fake WhatsApp server.
func (h *host) env(withConfig bool) []string {
	env := append([]string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + h.home, "RUNTIME_DIRECTORY=" + h.run,
		"INSTANCE_ID=wactl-test"}, h.srv.Env()...)
	if withConfig {
		env = append(env, "WACTL_CONFIG="+h.config)
	}
	return env
}

func (h *host) command(w who, withConfig bool, args ...string) *exec.Cmd {
	c := exec.Command(h.bin, args...)
	c.Env = h.env(withConfig)
	c.Dir = h.home
	if w.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: w.cred}
	}
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

func (h *host) wactl(w who, withConfig bool, args ...string) result {
	h.t.Helper()
	c := h.command(w, withConfig, args...)
	var out, errOut strings.Builder
	c.Stdout, c.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			c.Process.Kill()
		case <-done:
		}
	}()
	err := c.Run()
	close(done)
	r := result{stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else {
			h.t.Fatalf("wactl %v as %s: %v", args, w.name, err)
		}
	}
	h.t.Logf("wactl %s as %s: exit %d\n%s%s", strings.Join(args, " "), w.name, r.code, r.stdout, r.stderr)
	return r
}

// pair runs `wactl pair --format json` and lets the fake phone scan the
// first code it prints.
func (h *host) pair(w who, phone string) result {
	h.t.Helper()
	c := h.command(w, true, "pair", "--phone", "+"+phone, "--format", "json")
	stdout, err := c.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	var errOut strings.Builder
	c.Stderr = &errOut
	if err := c.Start(); err != nil {
		h.t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		var e struct {
			Kind string `json:"event"`
			Code string `json:"code"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind == "qr" {
			go h.srv.Scan(context.Background(), e.Code, phone)
		}
	}
	err = c.Wait()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	h.t.Logf("wactl pair +%s as %s: exit %d\n%s%s", phone, w.name, r.code, r.stdout, r.stderr)
	return r
}

type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    strings.Builder
	exited chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// serve starts `wactl serve` as the unit does: User=, StateDirectory=,
// RuntimeDirectory=, the config file.
func (h *host) serve(w who) *proc {
	h.t.Helper()
	c := h.command(w, true, "serve")
	c.Env = append(c.Env, "STATE_DIRECTORY="+h.data, fmt.Sprintf("PORT=%d", h.port))
	c.Dir = "/"
	p := &proc{cmd: c, exited: make(chan struct{})}
	c.Stdout, c.Stderr = p, p
	if err := c.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { c.Wait(); close(p.exited) }()
	h.t.Cleanup(func() {
		c.Process.Kill()
		<-p.exited
		if h.t.Failed() {
			p.mu.Lock()
			h.t.Logf("wactl serve as %s:\n%s", w.name, p.log.String())
			p.mu.Unlock()
		}
	})
	return p
}

func (h *host) health() map[string]any {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", h.port))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func (p *proc) stop(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of SIGINT")
	}
}

// accountIDs parses `accounts list --json`.
func accountIDs(t *testing.T, r result) []string {
	t.Helper()
	var got struct {
		Accounts []struct {
			ID      string `json:"accountId"`
			Session string `json:"session"`
		} `json:"accounts"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
		t.Fatalf("accounts list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var ids []string
	for _, a := range got.Accounts {
		if a.Session != "paired" {
			t.Errorf("%s: session %q", a.ID, a.Session)
		}
		ids = append(ids, a.ID)
	}
	sort.Strings(ids)
	return ids
}

// notOwnedByService lists what in the data dir the service user does not own.
func (h *host) notOwnedByService() []string {
	var bad []string
	filepath.WalkDir(h.data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if st, err := os.Lstat(p); err == nil {
			if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 {
				bad = append(bad, fmt.Sprintf("%s (uid %d)", p, sys.Uid))
			}
		}
		return nil
	})
	return bad
}

func id(phone string) string {
	s, _ := dedupe.AccountID("prod", phone, "40")
	return s
}

// TestInstalledLayout: pairing, listing, doctor, the cron audit and serve,
// run as the service user, as root and as operators on the packaged
// layout, all see the same accounts, in the service's data dir; whoever
// may not reach it is told the command that works; nothing in the data
// dir ever belongs to anyone but the service user.
func TestInstalledLayout(t *testing.T) {
	h := newHost(t)
	srv := h.serve(service)
	watest.Eventually(t, 15*time.Second, "serve ACTIVE with its runtime socket", func() bool {
		m := h.health()
		_, err := os.Stat(filepath.Join(h.run, "wactl.sock"))
		return m != nil && m["waMode"] == "active" && err == nil
	})

	// Pairing: through the runtime socket (operator in the group), the
	// data dir's socket (root) and as the service user.
	phones := map[who]string{operatorGroup: "40766000001", root: "40766000002", service: "40766000003"}
	var want []string
	for _, w := range []who{operatorGroup, root, service} {
		if r := h.pair(w, phones[w]); r.code != 0 || !strings.Contains(r.stdout, `"outcome":"paired"`) {
			t.Fatalf("pair as %s: exit %d\n%s%s", w.name, r.code, r.stdout, r.stderr)
		}
		want = append(want, id(phones[w]))
	}
	sort.Strings(want)
	watest.Eventually(t, 10*time.Second, "3 connected", func() bool { m := h.health(); return m != nil && m["connected"] == 3.0 })

	// An operator outside the group is told how, and nothing is paired.
	r := h.pair(operator, "40766000004")
	if r.code == 0 || !strings.Contains(r.stderr, "sudo -u nobody wactl pair --phone +40766000004") || strings.Contains(r.stderr, "chown") {
		t.Fatalf("operator outside the group: exit %d\n%s", r.code, r.stderr)
	}

	// accounts list: from the files (service user, root), through the
	// daemon (operator in the group), with and without the config file.
	for _, w := range []who{service, root, operatorGroup} {
		for _, withConfig := range []bool{true, false} {
			if got := accountIDs(t, h.wactl(w, withConfig, "accounts", "list", "--json")); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("accounts list as %s (config %v): %v, want %v", w.name, withConfig, got, want)
			}
		}
	}
	if r := h.wactl(operator, true, "accounts", "list", "--json"); r.code == 0 || !strings.Contains(r.stderr, "sudo -u nobody wactl") {
		t.Errorf("accounts list as an operator outside the group: exit %d\n%s", r.code, r.stderr)
	}

	// doctor looks at the service's data dir whoever runs it and counts the
	// same accounts: the service user and root from the files (read-only:
	// nothing appears in the data dir and nothing changes owner), the
	// operator in the service's group through the daemon's socket (not
	// with --offline, which says how). The operator outside the group is
	// told the command that counts them.
	before := h.listing()
	for _, w := range []who{service, root, operatorGroup, operator} {
		args := []string{"doctor", "--json", "--offline"}
		if w == operatorGroup {
			args = []string{"doctor", "--json", "--only", "sessions"}
		}
		r := h.wactl(w, true, args...)
		inv := doctorCheck(t, r, "sessions.inventory")
		if !strings.Contains(r.stdout, h.data) {
			t.Errorf("doctor as %s does not look at the service's data dir %s", w.name, h.data)
		}
		paired := doctorEvidence(t, r, "sessions.inventory", "paired")
		switch w {
		case operator:
			if !strings.HasPrefix(inv, "skip:") || !strings.Contains(r.stdout, "sudo -u nobody wactl doctor --only sessions.inventory") {
				t.Errorf("doctor as %s: sessions.inventory %s, want a skip naming the command that counts", w.name, inv)
			}
		default:
			if paired != "3" || !strings.HasPrefix(inv, "ok: ") || !strings.Contains(inv, "3 paired") {
				t.Errorf("doctor as %s: sessions.inventory %s, paired=%q; want ok with 3 paired as the service user counts", w.name, inv, paired)
			}
		}
		if w == root && strings.Contains(r.stdout, "sudo -u root") {
			t.Errorf("doctor as root suggests sudo -u root:\n%s", r.stdout)
		}
		if w == root && strings.Contains(r.stdout, "chown") {
			t.Errorf("doctor as root suggests a chown of the service's data:\n%s", r.stdout)
		}
	}
	r = h.wactl(operator, true, "doctor", "--json", "--only", "sessions.inventory")
	if inv := doctorCheck(t, r, "sessions.inventory"); !strings.HasPrefix(inv, "skip:") || !strings.Contains(inv, "the daemon's socket is not open to www-data") ||
		!strings.Contains(r.stdout, "sudo usermod -aG nogroup $USER") || !strings.Contains(r.stdout, "sudo -u nobody wactl doctor --only sessions.inventory") {
		t.Errorf("doctor as the operator outside the group: %s", inv)
	}
	r = h.wactl(operatorGroup, true, "doctor", "--json", "--offline", "--only", "sessions.inventory")
	if inv := doctorCheck(t, r, "sessions.inventory"); !strings.HasPrefix(inv, "skip:") || !strings.Contains(r.stdout, "--offline does not ask the daemon") ||
		!strings.Contains(r.stdout, "sudo -u nobody wactl doctor --only sessions.inventory") {
		t.Errorf("doctor --offline as the operator in the group: %s", inv)
	}
	if after := h.listing(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("doctor changed the data dir:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}

	// The cron audit (the documented crontab line runs it as the service
	// user, with --quiet) reads the service's store: quiet, exit 0; root's
	// reads the same store. An operator cannot read the store and is told
	// the command that can.
	for _, w := range []who{service, root} {
		if r := h.wactl(w, true, "audit", "duplicates", "--quiet"); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("cron audit as %s: exit %d\n%s%s", w.name, r.code, r.stdout, r.stderr)
		}
	}
	for _, w := range []who{operatorGroup, operator} {
		r := h.wactl(w, true, "audit", "duplicates", "--quiet")
		for _, want := range []string{
			"cannot read the wactl store " + filepath.Join(h.data, "wactl.db") + " as www-data: permission denied",
			"joining the service's group opens the daemon's socket (pair, accounts list, doctor), not the store",
			"\n  sudo -u nobody wactl audit duplicates --quiet --data-dir " + h.data + "\n",
			"\n  17 * * * * nobody " + h.bin + " audit duplicates --quiet --data-dir " + h.data + "\n",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("cron audit as %s: exit %d, want %q in\n%s", w.name, r.code, want, r.stderr)
			}
		}
		if r.code != 1 || r.stdout != "" || strings.Contains(r.stderr, "usermod") {
			t.Errorf("cron audit as %s: exit %d (want 1, as its help says), stdout %q\n%s", w.name, r.code, r.stdout, r.stderr)
		}
	}

	// Pointed elsewhere (an old crontab's --data-dir, a shell in another
	// directory), the read-only commands create nothing and say where the
	// service's data is and how to read it.
	elsewhere := filepath.Join(h.home, "wactl-data")
	for _, c := range [][]string{{"accounts", "list"}, {"audit", "duplicates"}} {
		r := h.wactl(operatorGroup, false, append(c, "--data-dir", elsewhere)...)
		hint := fmt.Sprintf("the wactl service's data is in %s (from the running service, %s): run as `sudo -u nobody wactl %s --data-dir %s`",
			h.data, filepath.Join(h.run, "data_dir"), strings.Join(c, " "), h.data)
		if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(hint)) || !strings.Contains(r.stderr, elsewhere) {
			t.Errorf("wactl %s --data-dir %s: exit %d, want where it looked and %q\n%s", strings.Join(c, " "), elsewhere, r.code, hint, r.stderr)
		}
	}

	// serve: stopped, the runtime socket and pointer go away; root's serve
	// and root's pairing refuse with the command that works and leave no
	// root-owned file; the service user's serve restores all three
	// accounts without a QR.
	srv.stop(t)
	for _, f := range []string{"wactl.sock", "data_dir"} {
		if _, err := os.Stat(filepath.Join(h.run, f)); err == nil {
			t.Errorf("%s left in the runtime dir after serve stopped", f)
		}
	}
	// With the service stopped (its databases closed, no -wal or -shm),
	// root's doctor still counts the accounts and creates nothing.
	before = h.listing()
	r = h.wactl(root, true, "doctor", "--json", "--offline")
	if paired := doctorEvidence(t, r, "sessions.inventory", "paired"); paired != "3" {
		t.Errorf("doctor as root with the service stopped: sessions.inventory %s", doctorCheck(t, r, "sessions.inventory"))
	}
	if after := h.listing(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("root's doctor changed the stopped service's data dir:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}

	// No config, no running service: doctor --fix run from a home directory
	// creates no ./wactl-data there (nobody asked for one) and says so.
	for _, w := range []who{operator, root} {
		r := h.wactl(w, false, "doctor", "--fix", "--yes", "--offline")
		if entries, _ := os.ReadDir(h.home); len(entries) != 0 || !strings.Contains(r.stdout, "no data dir is configured") {
			t.Errorf("doctor --fix as %s with no config and no service: created %v\n%s%s", w.name, entries, r.stdout, r.stderr)
		}
		for _, e := range mustReadDir(t, h.home) {
			os.RemoveAll(filepath.Join(h.home, e.Name()))
		}
	}
	if r := h.pair(root, "40766000005"); r.code == 0 || !strings.Contains(r.stderr, "sudo -u nobody wactl pair --phone +40766000005") {
		t.Errorf("root pairing with the service stopped: exit %d\n%s", r.code, r.stderr)
	}
	for _, w := range []who{root, operatorGroup} {
		if r := h.wactl(w, true, "serve"); r.code == 0 || !strings.Contains(r.stderr, "sudo -u nobody wactl") {
			t.Errorf("serve as %s on the service's data dir: exit %d\n%s", w.name, r.code, r.stderr)
		}
	}
	if bad := h.notOwnedByService(); len(bad) > 0 {
		t.Errorf("files in the data dir the service user does not own: %v", bad)
	}
	h.serve(service)
	watest.Eventually(t, 15*time.Second, "3 restored without a QR", func() bool { m := h.health(); return m != nil && m["connected"] == 3.0 })
	if got := accountIDs(t, h.wactl(operatorGroup, false, "accounts", "list", "--json")); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after the restart: %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(h.home); len(entries) != 0 {
		t.Errorf("created in the operators' working directory: %v", entries)
	}
}

// doctorCheck is "status: summary" of one check in `doctor --json`.
func doctorCheck(t *testing.T, r result, name string) string {
	t.Helper()
	var rep struct {
		Checks   []struct{ Name, Status, Summary string } `json:"checks"`
		Sections []struct {
			Checks []struct{ Name, Status, Summary string } `json:"checks"`
		} `json:"sections"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	all := rep.Checks
	for _, s := range rep.Sections {
		all = append(all, s.Checks...)
	}
	for _, c := range all {
		if c.Name == name {
			return c.Status + ": " + c.Summary
		}
	}
	return "(no " + name + ")"
}

// doctorEvidence is the value of one evidence key of one check in
// `doctor --json`; "" when it is not there.
func doctorEvidence(t *testing.T, r result, check, key string) string {
	t.Helper()
	type ev struct{ Key, Value string }
	type chk struct {
		Name     string
		Evidence []ev
	}
	var rep struct {
		Checks   []chk `json:"checks"`
		Sections []struct {
			Checks []chk `json:"checks"`
		} `json:"sections"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	all := rep.Checks
	for _, s := range rep.Sections {
		all = append(all, s.Checks...)
	}
	for _, c := range all {
		if c.Name == check {
			for _, e := range c.Evidence {
				if e.Key == key {
					return e.Value
				}
			}
		}
	}
	return ""
}

// listing is every path in the data dir with its owner and mode, to show
// that a command changed nothing there.
func (h *host) listing() []string {
	var out []string
	filepath.WalkDir(h.data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if st, err := os.Lstat(p); err == nil {
			sys := st.Sys().(*syscall.Stat_t)
			out = append(out, fmt.Sprintf("%s %d:%d %04o", strings.TrimPrefix(p, h.data), sys.Uid, sys.Gid, st.Mode().Perm()))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
