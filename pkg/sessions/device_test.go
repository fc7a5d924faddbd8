package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
)

func TestOpenDeviceModesLockAndPairedState(t *testing.T) {
	t.Parallel()
	ctx := contextBackground()
	s, _ := newStore(t)
	mustCreate(t, s, testID)

	d, err := s.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Paired() || d.Account.Name != "Shop" {
		t.Fatalf("new device: paired=%v account=%+v", d.Paired(), d.Account)
	}
	// Force WAL content so that -wal and -shm exist while the store is open.
	jid := types.JID{User: "40712345678", Device: 7, Server: types.DefaultUserServer}
	d.Store.ID = &jid
	d.Store.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := d.Container.PutDevice(ctx, d.Store); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(s.Dir(testID), dbFile)
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		assertMode(t, p, 0o600)
	}
	// Inventory reads a live WAL database through the normal read-only path.
	inv, err := s.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Accounts[0]; a.Store != StorePaired || !a.InUse || a.Holder == nil || a.Holder.PID != os.Getpid() {
		t.Fatalf("inventory of an open store: %+v", a)
	}
	if _, err := s.OpenDevice(ctx, testID, DeviceOptions{}); !errors.As(err, new(*InUseError)) {
		t.Fatalf("second OpenDevice = %v, want *InUseError", err)
	}
	// Another process is refused while this one has the device open.
	_, line := startChild(t, "device", s.Root(), testID)
	if !strings.Contains(line, "is in use by PID") {
		t.Fatalf("child OpenDevice while open here: %q", line)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d, err = s.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Paired() || d.Store.ID.String() != "40712345678:7@s.whatsapp.net" {
		t.Fatalf("reopened device: %v", d.Store.ID)
	}
	d.Close()

	inv, err = s.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Accounts[0]; a.Store != StorePaired || a.DeviceJID != "40712345678:7@s.whatsapp.net" || a.InUse {
		t.Fatalf("inventory: %+v", a)
	}
	if len(inv.Problems) != 0 {
		t.Fatalf("problems on a clean store: %+v", inv.Problems)
	}
}

func TestOpenDeviceTightensLooseModes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	mustCreate(t, s, testID)
	d, err := s.OpenDevice(contextBackground(), testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	db := filepath.Join(s.Dir(testID), dbFile)
	os.Chmod(db, 0o644)
	d, err = s.OpenDevice(contextBackground(), testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	assertMode(t, db, 0o600)
}

func TestOpenDeviceWithoutMetadataAndCorrupt(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	if _, err := s.OpenDevice(contextBackground(), testID, DeviceOptions{}); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("OpenDevice of missing account = %v", err)
	}
	os.Mkdir(s.Dir(testID), 0o700)
	d, err := s.OpenDevice(contextBackground(), testID, DeviceOptions{})
	if err != nil {
		t.Fatalf("OpenDevice without metadata: %v", err)
	}
	if d.Account.ID != testID {
		t.Fatalf("account = %+v", d.Account)
	}
	d.Close()

	mustCreate(t, s, testID2)
	os.WriteFile(filepath.Join(s.Dir(testID2), dbFile), []byte(strings.Repeat("garbage!", 1000)), 0o600)
	if _, err := s.OpenDevice(contextBackground(), testID2, DeviceOptions{}); err == nil {
		t.Fatal("OpenDevice of a garbage store succeeded")
	}
	// The failed open released the lock and left the file alone.
	l, err := s.Lock(testID2)
	if err != nil {
		t.Fatalf("lock after failed open: %v", err)
	}
	l.Release()
	if b, _ := os.ReadFile(filepath.Join(s.Dir(testID2), dbFile)); !strings.HasPrefix(string(b), "garbage!") {
		t.Fatal("garbage store was rewritten")
	}
}

func TestDSNEscapesPath(t *testing.T) {
	t.Parallel()
	got := DSN("/a b/we?ird#%/whatsmeow.db")
	if !strings.HasPrefix(got, "file:/a b/we%3fird%23%25/whatsmeow.db?_pragma=foreign_keys(1)&") {
		t.Fatalf("DSN = %s", got)
	}
	// And such a root really works.
	root := filepath.Join(t.TempDir(), "we?ird #%20")
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, testID)
	d, err := s.OpenDevice(contextBackground(), testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := os.Stat(filepath.Join(s.Dir(testID), dbFile)); err != nil {
		t.Fatal(err)
	}
}
