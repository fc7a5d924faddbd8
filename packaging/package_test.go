// Package packaging holds the Debian package's files; this test builds the
// package with tools/package.sh and checks what an operator gets.
package packaging

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// need returns the path of tool, failing under CI (which installs it) and
// skipping loudly elsewhere.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: .ci/run installs it", tool)
		}
		t.Skipf("SKIP: %s is not installed (apt-get install %s); CI fails here instead", tool, tool)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var built struct {
	sync.Mutex
	dist string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dist != "" {
		os.RemoveAll(built.dist)
	}
	os.Exit(code)
}

// build runs tools/package.sh once per test binary: it compiles wactl and
// its docs, which takes a minute on a busy machine.
func build(t *testing.T) (deb, tarball string) {
	t.Helper()
	need(t, "dpkg-deb")
	built.Lock()
	defer built.Unlock()
	if built.dist == "" {
		dist, err := os.MkdirTemp("", "wactl-package-")
		if err != nil {
			t.Fatal(err)
		}
		run(t, "..", []string{"DIST=" + dist, "WACTL_PKG_VERSION=0.0.0+test"}, "bash", "tools/package.sh")
		built.dist = dist
	}
	deb = filepath.Join(built.dist, "wactl_0.0.0+test-1_amd64.deb")
	tarball = filepath.Join(built.dist, "wactl-0.0.0+test-linux-amd64.tar.gz")
	for _, f := range []string{deb, tarball} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("package.sh did not write %s: %v", f, err)
		}
	}
	return deb, tarball
}

func TestDebianPackage(t *testing.T) {
	deb, tarball := build(t)

	listing := run(t, "", nil, "dpkg-deb", "-c", deb)
	modes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := strings.TrimPrefix(f[len(f)-1], ".")
		modes[path] = f[0]
		if strings.HasPrefix(f[0], "d") && f[0] != "drwxr-xr-x" {
			t.Errorf("directory %s has mode %s", path, f[0])
		}
		if f[1] != "root/root" && f[1] != "0/0" {
			t.Errorf("%s owned by %s, want root", path, f[1])
		}
	}
	want := map[string]string{
		"/usr/bin/wactl":                                  "-rwxr-xr-x",
		"/lib/systemd/system/wactl.service":               "-rw-r--r--",
		"/etc/wactl/config.yaml":                          "-rw-r--r--",
		"/usr/share/man/man1/wactl.1.gz":                  "-rw-r--r--",
		"/usr/share/man/man1/wactl-pair.1.gz":             "-rw-r--r--",
		"/usr/share/bash-completion/completions/wactl":    "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_wactl":        "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/wactl.fish": "-rw-r--r--",
		"/usr/share/doc/wactl/copyright":                  "-rw-r--r--",
		"/usr/share/doc/wactl/changelog.Debian.gz":        "-rw-r--r--",
		"/usr/share/doc/wactl/THIRD_PARTY_NOTICES.md.gz":  "-rw-r--r--",
		"/usr/share/doc/wactl/wactl.example.yaml":         "-rw-r--r--",
	}
	for p, m := range want {
		if got, ok := modes[p]; !ok {
			t.Errorf("package lacks %s", p)
		} else if got != m {
			t.Errorf("%s: mode %s, want %s", p, got, m)
		}
	}

	info := run(t, "", nil, "dpkg-deb", "-I", deb)
	for _, s := range []string{"Package: wactl", "Version: 0.0.0+test-1", "Depends: adduser", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, s) {
			t.Errorf("control lacks %q:\n%s", s, info)
		}
	}
	if conffiles := run(t, "", nil, "dpkg-deb", "-f", deb, "Package"); !strings.Contains(conffiles, "wactl") {
		t.Errorf("control field Package: %q", conffiles)
	}
	ctl := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-e", deb, ctl)
	if b, err := os.ReadFile(filepath.Join(ctl, "conffiles")); err != nil || strings.TrimSpace(string(b)) != "/etc/wactl/config.yaml" {
		t.Errorf("conffiles = %q, %v; want /etc/wactl/config.yaml", b, err)
	}

	root := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", deb, root)
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/wactl.service"))
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/wactl serve") || strings.Contains(string(unit), "/usr/local/bin") {
		t.Errorf("packaged unit does not run /usr/bin/wactl:\n%s", unit)
	}
	cfg := filepath.Join(root, "etc/wactl/config.yaml")
	if b, _ := os.ReadFile(cfg); !strings.Contains(string(b), "\ndata_dir: /var/lib/wactl\n") {
		t.Errorf("packaged config does not name the service's data dir:\n%s", b)
	}
	// The packaged config must be one the packaged binary accepts.
	bin := filepath.Join(root, "usr/bin/wactl")
	out := run(t, "", nil, bin, "config", "show", "--config", cfg, "--json")
	if !strings.Contains(out, `"/var/lib/wactl"`) {
		t.Errorf("config show with the packaged config: %s", out)
	}
	if v := run(t, "", nil, bin, "--version"); !strings.Contains(v, "0.0.0+test") {
		t.Errorf("--version = %q", v)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify resolves ExecStart on this host: point it at the extracted binary.
		u := filepath.Join(t.TempDir(), "wactl.service")
		os.WriteFile(u, []byte(strings.ReplaceAll(string(unit), "/usr/bin/wactl", bin)), 0o644)
		cmd := exec.Command(sa, "verify", u)
		if b, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(b), "wactl.service:") {
			t.Errorf("systemd-analyze verify: %v\n%s", err, b)
		}
	}

	// lintian, with the package's own overrides, reports nothing.
	lintian := need(t, "lintian")
	cmd := exec.Command(lintian, "--tag-display-limit", "0", deb)
	b, err := cmd.CombinedOutput()
	var tags []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.Contains(l, "root privileges") {
			tags = append(tags, l)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Errorf("lintian: %v\n%s", err, strings.Join(tags, "\n"))
	}

	checkTarball(t, tarball)
}

func checkTarball(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d", h.Name, h.Uid, h.Gid)
		}
	}
	dir := "wactl-0.0.0+test-linux-amd64/"
	for _, n := range []string{"wactl", "wactl.service", "wactl.example.yaml", "LICENSE", "THIRD_PARTY_NOTICES.md", "README.md", "man/man1/wactl.1", "completions/wactl.bash"} {
		if _, ok := got[dir+n]; !ok {
			t.Errorf("tarball lacks %s", dir+n)
		}
	}
	if m := got[dir+"wactl"]; m&0o111 == 0 {
		t.Errorf("tarball binary not executable: %o", m)
	}
}

// TestDebianPackageInstall installs the package on this machine, as an
// operator would, then purges it. It changes the host (a system user, files
// under /usr and /etc), so it runs only where that is wanted: in CI, whose
// machine is thrown away, or with WACTL_TEST_PACKAGE_INSTALL=1 as root.
func TestDebianPackageInstall(t *testing.T) {
	if os.Getenv("CI") == "" && os.Getenv("WACTL_TEST_PACKAGE_INSTALL") == "" {
		t.Skip("SKIP: installs onto this host; set WACTL_TEST_PACKAGE_INSTALL=1 (as root) to run it")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: dpkg -i needs root")
	}
	need(t, "dpkg")
	if err := exec.Command("dpkg", "-s", "wactl").Run(); err == nil {
		t.Skip("SKIP: a wactl package is already installed on this host; not touching it")
	}
	if _, err := os.Stat("/var/lib/wactl"); err == nil {
		t.Skip("SKIP: /var/lib/wactl exists on this host; not touching it")
	}
	deb, _ := build(t)
	t.Cleanup(func() {
		exec.Command("dpkg", "--purge", "wactl").Run()
		os.RemoveAll("/var/lib/wactl")
		exec.Command("deluser", "--system", "wactl").Run()
	})
	out := run(t, "", nil, "dpkg", "-i", deb)
	if !strings.Contains(out, "systemctl enable --now wactl") {
		t.Errorf("postinst did not say how to start the service:\n%s", out)
	}
	if b, err := exec.Command("getent", "passwd", "wactl").Output(); err != nil || !strings.Contains(string(b), "/var/lib/wactl") || !strings.Contains(string(b), "nologin") {
		t.Fatalf("system user wactl: %q %v", b, err)
	}
	st, err := os.Stat("/var/lib/wactl")
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("/var/lib/wactl: %v %v", st, err)
	}
	// The operator's commands, run as the service user, find the service's
	// data dir through the installed config.
	show := run(t, "/", nil, "runuser", "-u", "wactl", "--", "/usr/bin/wactl", "config", "show", "--json")
	if !strings.Contains(show, `"/var/lib/wactl"`) || !strings.Contains(show, "/etc/wactl/config.yaml") {
		t.Errorf("config show as wactl does not use the installed config:\n%s", show)
	}
	if b, err := exec.Command("man", "-w", "wactl-pair").CombinedOutput(); err == nil && !strings.Contains(string(b), "/usr/share/man/man1/wactl-pair.1.gz") {
		t.Errorf("man -w wactl-pair = %s", b)
	}
	// Reinstalling (an upgrade to the same version) keeps an edited conffile.
	os.WriteFile("/etc/wactl/config.yaml", []byte("data_dir: /var/lib/wactl\nlog:\n  level: debug\n"), 0o644)
	run(t, "", []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", "-i", "--force-confold", deb)
	if b, _ := os.ReadFile("/etc/wactl/config.yaml"); !strings.Contains(string(b), "level: debug") {
		t.Errorf("upgrade replaced the operator's config:\n%s", b)
	}
	// Sessions are never removed with the package, not even by purge.
	os.WriteFile("/var/lib/wactl/keep", []byte("session"), 0o600)
	purge := run(t, "", nil, "dpkg", "--purge", "wactl")
	if _, err := os.Stat("/var/lib/wactl/keep"); err != nil {
		t.Fatalf("purge removed the data dir: %v", err)
	}
	if !strings.Contains(purge, "is kept") {
		t.Errorf("purge did not say the data dir is kept:\n%s", purge)
	}
	if _, err := os.Stat("/usr/bin/wactl"); err == nil {
		t.Error("purge left /usr/bin/wactl")
	}
}
