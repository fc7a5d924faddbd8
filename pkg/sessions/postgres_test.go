package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/internal/pgtest"
)

// newPGStore opens a PostgreSQL store on dsn with an empty local root of
// its own, as a host with an empty disk would.
func newPGStore(t testing.TB, dsn, instance string) *Store {
	t.Helper()
	return newPGStoreWait(t, dsn, instance, 3*time.Second)
}

func newPGStoreWait(t testing.TB, dsn, instance string, outageWait time.Duration) *Store {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "sessions"), Options{InstanceID: instance, Now: clock.now,
		Postgres: &PostgresOptions{DSN: dsn, MaxConns: 4, Timeout: 5 * time.Second, OutageWait: outageWait}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pairFake saves a device with identity as if pairing had succeeded.
func pairFake(t testing.TB, s *Store, d *Device, user string) types.JID {
	t.Helper()
	jid := types.JID{User: user, Device: 3, Server: types.DefaultUserServer}
	d.Store.ID = &jid
	d.Store.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := d.Container.PutDevice(contextBackground(), d.Store); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkPaired(d.Account.ID, jid.String()); err != nil {
		t.Fatal(err)
	}
	return jid
}

// A host with an empty disk restores an account paired on another host,
// with the same keys; the advisory lock keeps the two hosts off one
// account at a time; metadata travels with the device.
func TestPostgresStoreRestoresOnAnotherHostAndLocks(t *testing.T) {
	ctx := contextBackground()
	dsn := pgtest.DSN(t)
	a := newPGStore(t, dsn, "host-a")
	b := newPGStore(t, dsn, "host-b")
	if a.Kind() != StoreKindPostgres {
		t.Fatalf("Kind = %s", a.Kind())
	}
	mustCreate(t, a, testID)
	mustCreate(t, a, testID2)
	if _, err := b.Create(NewAccount{ID: testID}); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("create on B of an account A made: %v", err)
	}

	d, err := a.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Paired() {
		t.Fatal("new account is paired")
	}
	jid := pairFake(t, a, d, "40712345678")
	identity := d.Store.IdentityKey.Pub

	var inUse *InUseError
	if _, err := b.OpenDevice(ctx, testID, DeviceOptions{}); !errors.As(err, &inUse) || inUse.Holder == nil || inUse.Holder.Instance != "host-a" {
		t.Fatalf("B opening A's open account = %v, want *InUseError naming host-a", err)
	}
	if _, err := a.OpenDevice(ctx, testID, DeviceOptions{}); !errors.As(err, &inUse) {
		t.Fatalf("second open in one process = %v, want *InUseError", err)
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != testID || list[0].Store != StorePaired || !list[0].InUse || list[0].Holder == nil ||
		list[0].Holder.PID != os.Getpid() || list[1].Store != StoreUnpaired || list[1].InUse {
		t.Fatalf("list on B: %+v", list)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Host B has never seen this account on its disk.
	d2, err := b.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if !d2.Paired() || *d2.Store.ID != jid || *d2.Store.IdentityKey.Pub != *identity || d2.Account.Name != "Shop" || d2.Account.PairedJID != jid.String() {
		t.Fatalf("restored on B: paired=%v id=%v name=%q", d2.Paired(), d2.Store.ID, d2.Account.Name)
	}
	if entries, _ := os.ReadDir(b.Root()); len(entries) != 0 {
		t.Fatalf("postgres store wrote to the local root: %v", entries)
	}
}

// Killing the process that holds an account frees it for another host
// (PostgreSQL ends the session, and its advisory locks with it).
func TestPostgresLockFreedWhenConnectionEnds(t *testing.T) {
	ctx := contextBackground()
	dsn := pgtest.DSN(t)
	a := newPGStore(t, dsn, "host-a")
	b := newPGStore(t, dsn, "host-b")
	mustCreate(t, a, testID)
	if _, err := a.OpenDevice(ctx, testID, DeviceOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(testID); !errors.As(err, new(*InUseError)) {
		t.Fatalf("lock held by A: %v", err)
	}
	a.Close() // as if A's process died: its connections end
	// The server frees the advisory lock when A's backend process exits,
	// which it does after it reads the end of the connection: a moment
	// after Close returns, not at once (CI saw the lock still held 0 ms
	// after). A takeover retries the same way (the lease's retry).
	var l *Lock
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, err = b.Lock(testID); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("lock 5 s after A's connection ended: %v", err)
	}
	l.Release()
}

func TestPostgresRemoveKeepsDeviceAndPurgeDeletesIt(t *testing.T) {
	ctx := contextBackground()
	s := newPGStore(t, pgtest.DSN(t), "host-a")
	mustCreate(t, s, testID)
	mustCreate(t, s, testID2)
	for _, id := range []string{testID, testID2} {
		d, err := s.OpenDevice(ctx, id, DeviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		user := "40712345678"
		if id == testID2 {
			user = "40712345679"
		}
		pairFake(t, s, d, user)
		d.Close()
	}
	if _, err := s.Remove(testID, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(testID2, RemoveOptions{Purge: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(testID); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("removed account: %v", err)
	}
	inv, err := s.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The kept device belongs to a removed account: not an orphan.
	if len(inv.Accounts) != 0 || inv.Counts.Removed != 2 || len(inv.Problems) != 0 {
		t.Fatalf("inventory after remove: %+v", inv)
	}
}

func TestPostgresBadDSNIsClearAndSecretFree(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "s"), Options{Postgres: &PostgresOptions{DSN: "postgres://wactl:hunter2@127.0.0.1:1/db?connect_timeout=1", Timeout: time.Second}})
	if err == nil {
		t.Fatal("opened an unreachable database")
	}
	if s := err.Error(); strings.Contains(s, "hunter2") {
		t.Fatalf("error shows the password: %s", s)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "s"), Options{Postgres: &PostgresOptions{}}); err == nil || !strings.Contains(err.Error(), "postgres_dsn") {
		t.Fatalf("empty DSN: %v", err)
	}
}
