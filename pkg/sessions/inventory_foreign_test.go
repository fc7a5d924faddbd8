package sessions

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
)

// owners lists every path under root with its owner, for a before/after
// comparison.
func owners(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := fi.Sys().(*syscall.Stat_t)
		out = append(out, fmt.Sprintf("%s %d:%d %04o", strings.TrimPrefix(p, root), sys.Uid, sys.Gid, fi.Mode().Perm()))
		return nil
	})
	sort.Strings(out)
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestInventoryOfAnotherUsersSessionsCreatesNothing: root (doctor,
// accounts list) surveys the service user's sessions while the service
// writes them (an account paired a moment ago is only in the -wal, read
// through the service's -shm), after a crash left a -wal and its -shm, and
// after a crash or a copy left a -wal without its -shm. It counts what it
// can read, says what it could not, and no file appears or changes owner:
// reading that last -wal would create a -shm (issue 17).
func TestInventoryOfAnotherUsersSessionsCreatesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the sessions belong to another user")
	}
	ctx := contextBackground()
	s, _ := newStore(t)
	idle, live, crashed, walOnly := hexID('a'), hexID('b'), hexID('c'), hexID('d')
	makePaired(t, s, idle, "40700000001")
	// The service is running and has just paired live: its device is in
	// the -wal only.
	if _, err := s.Create(NewAccount{ID: live, Phone: "+40700000002"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.OpenDevice(ctx, live, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	jid := types.JID{User: "40700000002", Device: 2, Server: types.DefaultUserServer}
	d.Store.ID = &jid
	d.Store.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := d.Container.PutDevice(ctx, d.Store); err != nil {
		t.Fatal(err)
	}
	liveDB := filepath.Join(s.Dir(live), dbFile)
	if !fileExists(liveDB+"-wal") || !fileExists(liveDB+"-shm") {
		t.Fatal("the open device has no -wal and -shm: the test does not cover a live writer")
	}
	// Crashes: crashed kept its -wal and -shm, walOnly only its -wal.
	for id, suffixes := range map[string][]string{crashed: {"", "-wal", "-shm"}, walOnly: {"", "-wal"}} {
		if _, err := s.Create(NewAccount{ID: id, Phone: "+40700000009"}); err != nil {
			t.Fatal(err)
		}
		for _, suf := range suffixes {
			copyFile(t, liveDB+suf, filepath.Join(s.Dir(id), dbFile+suf))
		}
	}

	// Everything belongs to the service user (nobody), as under systemd.
	if err := filepath.WalkDir(filepath.Dir(s.Root()), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	}); err != nil {
		t.Fatal(err)
	}
	before := owners(t, s.Root())

	ro, err := OpenExisting(s.Root(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ro.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := inv.Counts; c.AccountDirs != 4 || c.Paired != 3 || c.Unpaired != 1 || c.Corrupt+c.Unreadable != 0 {
		t.Errorf("counts %+v, want 4 account dirs: 3 paired, 1 unpaired (its -wal not read); problems %+v", c, inv.Problems)
	}
	var walNotRead []string
	for _, p := range inv.Problems {
		if p.Kind == ProblemWALNotRead {
			walNotRead = append(walNotRead, p.Account)
			if !strings.Contains(p.Detail, "sudo -u nobody wactl") {
				t.Errorf("no command that reads it: %s", p.Detail)
			}
		}
	}
	if len(walNotRead) != 1 || walNotRead[0] != walOnly {
		t.Errorf("-wal not read reported for %v, want only %s; problems %+v", walNotRead, walOnly, inv.Problems)
	}
	if after := owners(t, s.Root()); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the inventory changed the sessions dir:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
}
