package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootDoesNotCreateInAnotherUsersDir: root opening a missing sessions
// root inside a data dir owned by the service user refuses, creates
// nothing and names the command that works (issue 17: the service then
// failed to start on root-owned files).
func TestRootDoesNotCreateInAnotherUsersDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(data, "sessions"), Options{})
	var re *RootError
	if !errors.As(err, &re) || re.Owner != userName(65534) || !strings.Contains(err.Error(), "sudo -u "+userName(65534)+" wactl") {
		t.Fatalf("Open = %v; want a refusal naming sudo -u %s", err, userName(65534))
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Fatalf("created %v", entries)
	}
}

// TestOpenExistingCreatesNothing: the read-only open of a missing root
// says so and leaves no directory; an existing root is listed without a
// write probe.
func TestOpenExistingCreatesNothing(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "wactl-data", "sessions")
	_, err := OpenExisting(root, Options{})
	var me *MissingError
	if !errors.As(err, &me) || me.Root != root {
		t.Fatalf("OpenExisting(missing) = %v", err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Fatalf("created %v", entries)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := OpenExisting(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v", list, err)
	}
}
