package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenCreatesPrivateRootAndLeavesNothing(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "data", "sessions")
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, root, 0o700)
	assertMode(t, filepath.Dir(root), 0o700)
	if err := s.Probe(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Fatalf("probe left %v behind", entries)
	}
	if s.InstanceID() == "" {
		t.Error("default instance id is empty")
	}
}

func TestOpenUnderRestrictiveUmask(t *testing.T) {
	// Not parallel: the umask is process-wide. 0277 would strip the owner's
	// write bit from anything created without an explicit chmod.
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	s, err := Open(filepath.Join(t.TempDir(), "sessions"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, testID)
	assertMode(t, s.Root(), 0o700)
	assertMode(t, s.Dir(testID), 0o700)
	assertMode(t, filepath.Join(s.Dir(testID), metadataFile), 0o600)
	if _, err := s.MarkPaired(testID, "40712345678:1@s.whatsapp.net"); err != nil {
		t.Fatal(err)
	}
	assertMode(t, filepath.Join(s.Dir(testID), metadataFile), 0o600)
}

func TestOpenRefusesWritableByOthers(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o777, 0o1777, 0o770, 0o702} {
		root := filepath.Join(t.TempDir(), "my sessions")
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(root, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(root, Options{})
		var re *RootError
		if !errors.As(err, &re) {
			t.Fatalf("mode %04o: Open error = %v, want *RootError", mode, err)
		}
		if want := "chmod 700 '" + root + "'"; !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: error %q lacks the fix %q", mode, err, want)
		}
		entries, _ := os.ReadDir(root)
		if len(entries) != 0 {
			t.Errorf("refused root was written to: %v", entries)
		}
	}
}

func TestOpenRefusesOtherOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a directory to another user")
	}
	root := filepath.Join(t.TempDir(), "sessions")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := Open(root, Options{})
	var re *RootError
	if !errors.As(err, &re) {
		t.Fatalf("Open error = %v, want *RootError", err)
	}
	// Never a chown that takes the sessions from their owner (a service
	// user): run wactl as the owner instead (issue 17).
	want := "sudo -u '#4242' wactl"
	if strings.Contains(err.Error(), "chown") || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "uid 4242") {
		t.Errorf("error %q lacks %q or the owner", err, want)
	}
}

func TestOpenRefusesNonDirectory(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "file")
	os.WriteFile(root, nil, 0o600)
	if _, err := Open(root, Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Open(file) = %v", err)
	}
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestProbeFailsOnReadOnlyRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root writes through 0500 directories")
	}
	s, _ := newStore(t)
	os.Chmod(s.Root(), 0o500)
	defer os.Chmod(s.Root(), 0o700)
	if err := s.Probe(); err == nil {
		t.Fatal("probe passed on a read-only root")
	}
}
