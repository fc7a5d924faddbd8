package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

func openRoot(t testing.TB, root string) *sessions.Store {
	t.Helper()
	s, err := sessions.Open(root, sessions.Options{InstanceID: "backup-test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(t testing.TB) (*age.X25519Identity, []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, []age.Identity{id}
}

// conn is a whatsmeow client connected from a store's device, recording
// what it receives.
type conn struct {
	srv  *wafake.Server
	cli  *whatsmeow.Client
	dev  *sessions.Device
	mu   sync.Mutex
	msgs []*events.Message
	bad  []*events.UndecryptableMessage
	qr   bool
}

// connect opens the account's device and connects it; it fails the test
// when the session is not paired (a QR would be needed) or does not log in.
func connect(t testing.TB, srv *wafake.Server, s *sessions.Store, id string) *conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dev, err := s.OpenDevice(ctx, id, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !dev.Paired() {
		dev.Close()
		t.Fatalf("%s: the session is not paired: connecting would need a QR scan", id)
	}
	c := &conn{srv: srv, dev: dev, cli: srv.NewClient(dev.Store, nil)}
	connected := make(chan struct{}, 1)
	c.cli.AddEventHandler(func(evt any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch e := evt.(type) {
		case *events.Connected:
			select {
			case connected <- struct{}{}:
			default:
			}
		case *events.Message:
			c.msgs = append(c.msgs, e)
		case *events.UndecryptableMessage:
			c.bad = append(c.bad, e)
		case *events.QR:
			c.qr = true
		}
	})
	if err := c.cli.Connect(); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		c.close()
		t.Fatalf("%s: no Connected", id)
	}
	if c.qr {
		t.Fatalf("%s: whatsmeow asked for a QR", id)
	}
	return c
}

func (c *conn) close() {
	wasock.Close(c.cli)
	c.dev.Close()
}

func (c *conn) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if s := m.Message.GetConversation(); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *conn) undecryptable() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bad)
}

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

func phone(p string) types.JID { return types.NewJID(p, types.DefaultUserServer) }

func writeBackup(t testing.TB, s *sessions.Store, path string, key *age.X25519Identity, accounts ...string) *sessions.Snapshot {
	t.Helper()
	snap, failures, err := sessions.TakeSnapshot(context.Background(), s, sessions.BackupOptions{Accounts: accounts})
	if err != nil || len(failures) > 0 {
		t.Fatalf("snapshot: %v %v", err, failures)
	}
	if _, err := sessions.WriteBackup(path, snap, sessions.Encryption{Recipients: []age.Recipient{key.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	return snap
}

func restore(t testing.TB, s *sessions.Store, path string, ids []age.Identity, opts sessions.RestoreOptions) []sessions.RestoredAccount {
	t.Helper()
	snap, err := sessions.ReadBackup(path, ids, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sessions.Restore(context.Background(), s, snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestBackupRestoreOntoEmptyDataDirConnectsWithoutQR: paired accounts (and
// an unpaired one) go through an encrypted file onto an empty sessions
// root; the restored stores are row for row the originals, and a new client
// logs in from each without a QR and receives messages.
func TestBackupRestoreOntoEmptyDataDirConnectsWithoutQR(t *testing.T) {
	srv := wafake.Start(t)
	src := openRoot(t, filepath.Join(t.TempDir(), "sessions"))
	a := watest.Pair(t, srv, src, "40755100001")
	b := watest.Pair(t, srv, src, "40755100002")
	const unpaired = "account_prod_0123456789abcdef0123456789abcdef"
	if _, err := src.Create(sessions.NewAccount{ID: unpaired, Name: "New", Phone: "+40755100003"}); err != nil {
		t.Fatal(err)
	}
	// A message before the backup, so the Signal session with the peer is
	// part of it.
	ca := connect(t, srv, src, a.ID)
	if _, err := srv.SendFromPeer(context.Background(), phone("40700000001"), a.Device.ToNonAD(), text("before backup")); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "message before backup", func() bool { return len(ca.texts()) == 1 })
	ca.close()

	key, ids := newKey(t)
	file := filepath.Join(t.TempDir(), "backup.age")
	snap := writeBackup(t, src, file, key)
	if len(snap.Accounts) != 3 {
		t.Fatalf("backup holds %d accounts, want 3", len(snap.Accounts))
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v", st.Mode(), err)
	}

	dst := openRoot(t, filepath.Join(t.TempDir(), "empty", "sessions"))
	res := restore(t, dst, file, ids, sessions.RestoreOptions{})
	for _, r := range res {
		if r.Outcome != sessions.OutcomeRestored {
			t.Fatalf("%s: %s %s", r.AccountID, r.Outcome, r.Detail)
		}
	}
	for _, id := range []string{a.ID, b.ID, unpaired} {
		orig, err := src.ExportAccount(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.ExportAccount(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if orig.Digest != got.Digest || orig.DeviceJID != got.DeviceJID || orig.RowCount() != got.RowCount() {
			t.Fatalf("%s: restored %d rows (%s), original %d rows (%s)", id, got.RowCount(), got.Digest, orig.RowCount(), orig.Digest)
		}
		m, err := dst.Get(id)
		if err != nil || m.Phone == "" {
			t.Fatalf("%s metadata: %+v %v", id, m, err)
		}
	}
	// Restoring the same file again changes nothing.
	for _, r := range restore(t, dst, file, ids, sessions.RestoreOptions{}) {
		if r.Outcome != sessions.OutcomeUnchanged {
			t.Fatalf("second restore of %s: %s %s", r.AccountID, r.Outcome, r.Detail)
		}
	}

	for _, acct := range []watest.Account{a, b} {
		c := connect(t, srv, dst, acct.ID)
		body := "after restore to " + acct.Phone
		if _, err := srv.SendFromPeer(context.Background(), phone("40700000001"), acct.Device.ToNonAD(), text(body)); err != nil {
			t.Fatal(err)
		}
		watest.Eventually(t, 10*time.Second, "message after restore", func() bool {
			for _, s := range c.texts() {
				if s == body {
					return true
				}
			}
			return false
		})
		if n := c.undecryptable(); n != 0 {
			t.Fatalf("%s: %d undecryptable messages after restore", acct.ID, n)
		}
		c.close()
	}
}

// TestRestoreRefusals: a live account, a newer account, a wrong key, a
// truncated or altered file and an unencrypted file without the flag are
// refused, and the local session is left exactly as it was.
func TestRestoreRefusals(t *testing.T) {
	srv := wafake.Start(t)
	s := openRoot(t, filepath.Join(t.TempDir(), "sessions"))
	a := watest.Pair(t, srv, s, "40755200001")
	key, ids := newKey(t)
	file := filepath.Join(t.TempDir(), "backup.age")
	writeBackup(t, s, file, key)
	before, err := s.ExportAccount(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		now, err := s.ExportAccount(context.Background(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if now.Digest != before.Digest {
			t.Fatalf("%s changed the local session", what)
		}
	}

	// Wrong key.
	_, other := newKey(t)
	if _, err := sessions.ReadBackup(file, other, false); !errors.Is(err, sessions.ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	// No key.
	if _, err := sessions.ReadBackup(file, nil, false); !errors.Is(err, sessions.ErrNeedKey) {
		t.Fatalf("no key: %v", err)
	}
	// Truncated, and one flipped byte in the payload.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)-40],
		"half":      data[:len(data)/2],
		"flipped":   append(append([]byte{}, data[:len(data)-10]...), append([]byte{data[len(data)-10] ^ 1}, data[len(data)-9:]...)...),
	} {
		p := filepath.Join(t.TempDir(), name+".age")
		os.WriteFile(p, bad, 0o600)
		if _, err := sessions.ReadBackup(p, ids, false); !errors.Is(err, sessions.ErrBadSnapshot) {
			t.Fatalf("%s file: %v", name, err)
		}
	}
	// Plaintext: refused without the flag, and a damaged plaintext file is
	// caught by the digests / gzip checksum.
	snap, _, err := sessions.TakeSnapshot(context.Background(), s, sessions.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "plain.snap")
	if _, err := sessions.WriteBackup(plain, snap, sessions.Encryption{Plaintext: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.ReadBackup(plain, ids, false); !errors.Is(err, sessions.ErrPlaintext) {
		t.Fatalf("plaintext without the flag: %v", err)
	}
	if _, err := sessions.ReadBackup(plain, nil, true); err != nil {
		t.Fatalf("plaintext with the flag: %v", err)
	}
	pd, _ := os.ReadFile(plain)
	os.WriteFile(plain, pd[:len(pd)-5], 0o600)
	if _, err := sessions.ReadBackup(plain, nil, true); !errors.Is(err, sessions.ErrBadSnapshot) {
		t.Fatalf("truncated plaintext: %v", err)
	}
	unchanged("refused files")

	// Live: a process holds the account (here: this one, connected).
	c := connect(t, srv, s, a.ID)
	if _, err := srv.SendFromPeer(context.Background(), phone("40700000002"), a.Device.ToNonAD(), text("newer")); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "message", func() bool { return len(c.texts()) == 1 })
	before, _ = s.ExportAccount(context.Background(), a.ID) // the connection changed it
	for _, force := range []bool{false, true} {
		res := restore(t, s, file, ids, sessions.RestoreOptions{Force: force})
		if res[0].Outcome != sessions.OutcomeRefusedLive {
			t.Fatalf("live account, force=%v: %+v", force, res[0])
		}
	}
	c.close()
	unchanged("restore over a live account")

	// Newer: the account changed after the backup (the message above).
	res := restore(t, s, file, ids, sessions.RestoreOptions{})
	if res[0].Outcome != sessions.OutcomeRefusedNewer {
		t.Fatalf("newer account: %+v", res[0])
	}
	unchanged("restore over a newer account")

	// --force replaces it and keeps the old copy.
	res = restore(t, s, file, ids, sessions.RestoreOptions{Force: true})
	if res[0].Outcome != sessions.OutcomeReplaced || res[0].MovedTo == "" {
		t.Fatalf("forced restore: %+v", res[0])
	}
	if _, err := os.Stat(filepath.Join(res[0].MovedTo, "whatsmeow.db")); err != nil {
		t.Fatalf("old copy: %v", err)
	}
	entries, _ := os.ReadDir(s.Root())
	for _, e := range entries {
		if e.Name() != a.ID && e.Name() != "removed" {
			t.Fatalf("left in the sessions root: %s", e.Name())
		}
	}
}

// TestBackupWhileConnectedAndReceiving: a backup taken while a connected
// client holds the account and messages keep arriving is consistent and
// restores to a session that logs in.
func TestBackupWhileConnectedAndReceiving(t *testing.T) {
	srv := wafake.Start(t)
	s := openRoot(t, filepath.Join(t.TempDir(), "sessions"))
	a := watest.Pair(t, srv, s, "40755300001")
	c := connect(t, srv, s, a.ID)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			peer := phone("4070000010" + string(rune('0'+n%5)))
			if _, err := srv.SendFromPeer(context.Background(), peer, a.Device.ToNonAD(), text("busy")); err == nil {
				n++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	key, ids := newKey(t)
	file := filepath.Join(t.TempDir(), "live.age")
	for i := 0; i < 5; i++ {
		writeBackup(t, s, file, key)
	}
	close(stop)
	sent := <-done
	c.close()
	if sent == 0 {
		t.Fatal("no traffic during the backups")
	}
	dst := openRoot(t, filepath.Join(t.TempDir(), "other", "sessions"))
	if res := restore(t, dst, file, ids, sessions.RestoreOptions{}); res[0].Outcome != sessions.OutcomeRestored {
		t.Fatalf("%+v", res[0])
	}
	srv.Redeliver(a.Device) // nothing should depend on it; keeps the fake's queue small
	connect(t, srv, dst, a.ID).close()
}

// BenchmarkBackup50 is the figure: a full backup (snapshot of every
// account, each in its own read transaction, gzip, age to one X25519
// recipient, fsync, rename) of 50 paired accounts (WACTL_BENCH_ACCOUNTS).
// Each account has received messages from 3 peers, so it holds Signal
// sessions as well as its keys. The restore of the same file onto an empty
// root is measured in the same run.
func BenchmarkBackup50(b *testing.B) {
	n := 50
	if v := os.Getenv("WACTL_BENCH_ACCOUNTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	srv := wafake.Start(b)
	s := openRoot(b, filepath.Join(b.TempDir(), "sessions"))
	for i := range n {
		a := watest.Pair(b, srv, s, fmt.Sprintf("407558%05d", i))
		c := connect(b, srv, s, a.ID)
		for j := range 3 {
			if _, err := srv.SendFromPeer(context.Background(), phone(fmt.Sprintf("4070009%05d", j)), a.Device.ToNonAD(), text("hello")); err != nil {
				b.Fatal(err)
			}
		}
		watest.Eventually(b, 10*time.Second, "3 messages", func() bool { return len(c.texts()) == 3 })
		c.close()
	}
	key, ids := newKey(b)
	file := filepath.Join(b.TempDir(), "bench.age")
	var size int64
	var rows int
	b.Run("backup", func(b *testing.B) {
		for b.Loop() {
			snap, failures, err := sessions.TakeSnapshot(context.Background(), s, sessions.BackupOptions{})
			if err != nil || len(failures) > 0 || len(snap.Accounts) != n {
				b.Fatalf("%v %v %d", err, failures, len(snap.Accounts))
			}
			if size, err = sessions.WriteBackup(file, snap, sessions.Encryption{Recipients: []age.Recipient{key.Recipient()}}); err != nil {
				b.Fatal(err)
			}
			rows = 0
			for _, a := range snap.Accounts {
				rows += a.RowCount()
			}
		}
		b.ReportMetric(float64(size), "file-bytes")
		b.ReportMetric(float64(rows), "rows")
	})
	b.Run("restore-empty-root", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dst := openRoot(b, filepath.Join(b.TempDir(), "sessions"))
			b.StartTimer()
			snap, err := sessions.ReadBackup(file, ids, false)
			if err != nil {
				b.Fatal(err)
			}
			res, err := sessions.Restore(context.Background(), dst, snap, sessions.RestoreOptions{})
			if err != nil || len(res) != n || res[0].Outcome != sessions.OutcomeRestored {
				b.Fatalf("%v %+v", err, res)
			}
		}
	})
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", load)
	}
}
