// Package configs_test checks the shipped configuration files.
package configs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on configs/wactl.service.
// verify exits 0 even for unknown keys or unparsable values (it only warns),
// so any output at all fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing: install the systemd package")
		}
		t.Skip("SKIPPED LOUDLY: systemd-analyze not installed")
	}
	unit, err := os.ReadFile("wactl.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, must := range []string{
		"Type=notify", "StateDirectory=wactl", "StateDirectoryMode=0700", "Environment=INSTANCE_ID=wactl-%H",
		"KillSignal=SIGINT", "TimeoutStopSec=30", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "RestartPreventExitStatus=78",
	} {
		if !strings.Contains(text, "\n"+must+"\n") {
			t.Errorf("unit lacks %s", must)
		}
	}
	// verify checks that ExecStart exists: point it at a real executable.
	self, _ := os.Executable()
	text = strings.Replace(text, "ExecStart=/usr/local/bin/wactl", "ExecStart="+self, 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "wactl.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestVerifyCatchesMistakes proves the check above can fail.
func TestVerifyCatchesMistakes(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: systemd-analyze not installed")
	}
	self, _ := os.Executable()
	path := filepath.Join(t.TempDir(), "bad.service")
	os.WriteFile(path, []byte("[Service]\nExecStart="+self+"\nTimeoutStopSec=soon\n"), 0o644)
	out, _ := exec.Command(tool, "verify", path).CombinedOutput()
	if !strings.Contains(string(out), "TimeoutStopSec") && !strings.Contains(string(out), "soon") {
		t.Fatalf("verify did not report a bad value: %q", out)
	}
}

// TestSyscallFilterAllowsTheTrim: the unit kills the service on a syscall
// outside its filter (no SystemCallErrorNumber), and the start-up trim
// (internal/memtrim) calls madvise and fadvise64 five seconds after start.
// The filter's groups are resolved by systemd-analyze itself.
func TestSyscallFilterAllowsTheTrim(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing: install the systemd package")
		}
		t.Skip("SKIPPED LOUDLY: systemd-analyze not installed")
	}
	unit, err := os.ReadFile("wactl.service")
	if err != nil {
		t.Fatal(err)
	}
	allowed, denied := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(unit), "\n") {
		v, ok := strings.CutPrefix(line, "SystemCallFilter=")
		if !ok {
			continue
		}
		into := allowed
		if v, ok = strings.CutPrefix(v, "~"); ok {
			into = denied
		}
		for _, item := range strings.Fields(v) {
			resolveSyscalls(t, tool, item, into)
		}
	}
	if len(allowed) < 50 {
		t.Fatalf("resolved only %d allowed syscalls: the filter was not read", len(allowed))
	}
	for _, sc := range []string{"madvise", "fadvise64", "mmap", "futex"} {
		if !allowed[sc] || denied[sc] {
			t.Errorf("the unit's SystemCallFilter blocks %s (allowed %v, denied %v)", sc, allowed[sc], denied[sc])
		}
	}
}

// resolveSyscalls adds the syscalls item stands for: itself, or a group's
// members, nested groups included.
func resolveSyscalls(t *testing.T, tool, item string, into map[string]bool) {
	if into[item] {
		return
	}
	into[item] = true // a group is marked too, so it is read once
	if !strings.HasPrefix(item, "@") {
		return
	}
	out, err := exec.Command(tool, "syscall-filter", item).Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter %s: %v", item, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		// Members are indented; the group's own header line is not.
		if f := strings.TrimSpace(l); f != "" && l != f && !strings.HasPrefix(f, "#") && f != item {
			resolveSyscalls(t, tool, f, into)
		}
	}
}
