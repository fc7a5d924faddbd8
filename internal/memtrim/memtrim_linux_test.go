package memtrim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode"
)

// childEnv makes the test binary print ReleaseStartupPages' result instead
// of running the tests (the non-owner test runs it as another user).
const childEnv = "MEMTRIM_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		touchExecutable()
		r, err := ReleaseStartupPages()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			if errors.Is(err, ErrNotSupported) {
				os.Exit(3)
			}
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// touchExecutable reads tables and code spread over the binary's rodata
// and text, like package initialisation does in wactl.
func touchExecutable() {
	n := 0
	for r := rune(0); r <= unicode.MaxRune; r += 7 {
		if unicode.IsPrint(r) || unicode.IsLetter(unicode.ToUpper(r)) {
			n++
		}
	}
	fmt.Fprint(io.Discard, n, unicode.Categories, unicode.Scripts)
}

// exeResident is the resident size of the executable's selected mappings,
// read independently of the code under test's bookkeeping.
func exeResident(t *testing.T) uint64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := executableMappings(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("found %d read-only mappings of %s, want text and rodata", len(ms), exe)
	}
	var rss uint64
	for _, m := range ms {
		rss += m.Rss
	}
	return rss
}

func skipUnsupported(t *testing.T, err error) {
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("kernel without MADV_PAGEOUT (Linux < 5.4): %v", err)
	}
}

// Not parallel: these tests measure the whole process's mappings.

func TestReleaseStartupPagesLowersTheExecutablesRSS(t *testing.T) {
	touchExecutable()
	before := exeResident(t)
	r, err := ReleaseStartupPages()
	skipUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	after := exeResident(t)
	t.Logf("executable resident %d KB → %d KB; result %+v", before/1024, after/1024, r)
	if r.Mappings < 2 || r.Released == 0 || r.Before <= r.After {
		t.Fatalf("result %+v: want both mappings advised and a positive release", r)
	}
	// Measured again here: the release must be real and not undone at once
	// (a fault-around refills 64 KB per touched page, so allow a quarter).
	if after*4 > before*3 {
		t.Fatalf("executable resident %d KB before, %d KB after: not released", before/1024, after/1024)
	}
	// Paged-out mappings come back one page at a time, not 128 KB.
	exe, _ := os.Readlink("/proc/self/exe")
	ms, err := executableMappings(exe)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if !slices.Contains(strings.Fields(m.VmFlags), "rr") {
			t.Errorf("mapping %x-%x %s has VmFlags %q, want rr (MADV_RANDOM)", m.Start, m.End, m.Perms, m.VmFlags)
		}
	}
	// The trimmed code and data still work.
	touchExecutable()
	if !unicode.IsLetter('ș') {
		t.Fatal("rodata read back wrong after the trim")
	}
}

// TestUnmapFallbackLowersTheExecutablesRSS exercises the MADV_DONTNEED path
// that serves a daemon whose executable it does not own.
func TestUnmapFallbackLowersTheExecutablesRSS(t *testing.T) {
	touchExecutable()
	exe, _ := os.Readlink("/proc/self/exe")
	r, err := release(exe, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result %+v", r)
	// Only the result is asserted: the pages stay in the page cache, so
	// every fault of the measuring code maps 64 KB around it again, and an
	// independent measurement of a small test binary is mostly noise.
	if r.Unmapped < 2 || r.Released == 0 || r.After >= r.Before {
		t.Fatalf("result %+v: want both mappings unmapped and a positive release", r)
	}
	touchExecutable()
}

// TestReleaseAsAUserWhoDoesNotOwnTheExecutable is the shipped unit's case:
// User=wactl running a root-owned /usr/local/bin/wactl, where the kernel
// silently ignores MADV_PAGEOUT for the executable's pages.
func TestReleaseAsAUserWhoDoesNotOwnTheExecutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "memtrim.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	// Written back before the child starts, as an installed binary is:
	// dirty page-cache pages cannot be evicted yet.
	f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{childEnv + "=1"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code == 3 {
		t.Skipf("kernel without MADV_PAGEOUT: %s", stderr.String())
	}
	if err != nil {
		t.Fatalf("child as uid 65534: %v\n%s", err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	t.Logf("as a non-owner: %+v", r)
	if r.Released == 0 || r.Unmapped == 0 || r.After >= r.Before {
		t.Fatalf("as a non-owner: %+v; want the pages the kernel kept unmapped instead", r)
	}
}
