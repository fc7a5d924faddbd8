package sessions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockAcrossProcesses(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	mustCreate(t, s, testID)

	first, line := startChild(t, "lock", s.Root(), testID)
	if line != "locked" {
		t.Fatalf("first child: %q", line)
	}
	firstPID := first.cmd.Process.Pid

	// Another process is refused and told who holds the account.
	_, line = startChild(t, "lock", s.Root(), testID)
	want := fmt.Sprintf("account %s is in use by PID %d (instance child-lock)", testID, firstPID)
	if !strings.Contains(line, want) {
		t.Fatalf("second child said %q, want it to contain %q", line, want)
	}
	// So is this process.
	_, err := s.Lock(testID)
	var inUse *InUseError
	if !errors.As(err, &inUse) || inUse.Holder == nil || inUse.Holder.PID != firstPID {
		t.Fatalf("Lock while held = %v", err)
	}
	if _, err := s.Remove(testID, RemoveOptions{}); !errors.As(err, &inUse) {
		t.Fatalf("Remove while held = %v", err)
	}
	inv, err := s.Inventory(contextBackground())
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Accounts[0]; !a.InUse || a.Holder == nil || a.Holder.PID != firstPID || inv.Counts.InUse != 1 {
		t.Fatalf("inventory while held: %+v", a)
	}

	// kill -9: the kernel drops the lock although the file names the dead PID.
	first.kill9(t)
	l, err := s.Lock(testID)
	if err != nil {
		t.Fatalf("Lock after kill -9 of holder: %v", err)
	}
	if h := readHolder(filepath.Join(s.Dir(testID), lockFile)); h == nil || h.PID != os.Getpid() || h.Instance != "test" {
		t.Fatalf("holder after takeover = %+v", h)
	}

	// Now a child is refused by this process, then gets in after Release.
	_, line = startChild(t, "lock", s.Root(), testID)
	if !strings.Contains(line, fmt.Sprintf("in use by PID %d (instance test)", os.Getpid())) {
		t.Fatalf("child while parent holds: %q", line)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal("second Release:", err)
	}
	c, line := startChild(t, "lock", s.Root(), testID)
	if line != "locked" {
		t.Fatalf("child after release: %q", line)
	}
	if err := c.wait(); err != nil {
		t.Fatalf("child exit: %v", err)
	}
	assertMode(t, filepath.Join(s.Dir(testID), lockFile), 0o600)
	if h := readHolder(filepath.Join(s.Dir(testID), lockFile)); h != nil {
		t.Fatalf("released lock still names %+v", h)
	}
}

func TestLockInProcessAndMissingAccount(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	if _, err := s.Lock(testID); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("Lock of missing account = %v", err)
	}
	if _, err := s.Lock("../x"); !errors.Is(err, ErrInvalidAccountID) {
		t.Fatalf("Lock of bad id = %v", err)
	}
	mustCreate(t, s, testID)
	mustCreate(t, s, testID2)
	l1, err := s.Lock(testID)
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Release()
	// Locks are per account.
	l2, err := s.Lock(testID2)
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	// A second open in the same process is refused too (flock is per open file).
	if _, err := s.Lock(testID); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by PID %d", os.Getpid())) {
		t.Fatalf("second in-process Lock = %v", err)
	}
}
