package replica_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/firestore"
	"filippo.io/age"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

func writeKey(t testing.TB, dir string) (*replica.Key, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "replica.key")
	if err := os.WriteFile(path, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := replica.LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

type fence struct{ epoch atomic.Int64 }

func (f *fence) get() (int64, bool) { e := f.epoch.Load(); return e, e > 0 }

func newReplica(c *firestore.Client, k *replica.Key, f *fence) *replica.Replica {
	return replica.New(replica.Options{Client: c, Key: k, Fence: f.get, Instance: "test"})
}

func openStore(t testing.TB) *sessions.Store {
	t.Helper()
	s, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{InstanceID: "replica-test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func export(t testing.TB, s *sessions.Store, id string) *sessions.AccountSnapshot {
	t.Helper()
	a, err := s.ExportAccount(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func chunkCount(t testing.TB, c *firestore.Client, id string) int {
	t.Helper()
	docs, err := c.Collection(replica.Collection).Doc(id).Collection("chunks").Documents(context.Background()).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

// TestPutThenRestoreOntoEmptyStore: a paired session goes to Firestore
// encrypted, chunked, under a generation; a host with an empty sessions
// directory restores exactly the same rows and needs no QR; a second
// write is a new generation and the old chunks go.
func TestPutThenRestoreOntoEmptyStore(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200001")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(3)
	r := newReplica(c, k, f)

	old := replica.ChunkSize
	replica.ChunkSize = 4 << 10 // several chunks even for a small session
	defer func() { replica.ChunkSize = old }()

	snap := export(t, src, acct.ID)
	res, err := r.Put(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 1 || res.Chunks < 2 || res.Epoch != 3 {
		t.Fatalf("first put: %+v", res)
	}
	in, err := r.Stat(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.Recipient != k.Fingerprint() || in.StoreVersion != sessions.WhatsmeowSchemaVersion() || in.Epoch != 3 || in.SnapshotAt.IsZero() {
		t.Fatalf("pointer: %+v", in)
	}
	// Nothing in Firestore is the plaintext: the device's identity key
	// bytes do not appear in any chunk.
	raw, _ := c.Collection(replica.Collection).Doc(acct.ID).Collection("chunks").Documents(ctx).GetAll()
	for _, d := range raw {
		b, _ := d.DataAt("data")
		if strings.Contains(string(b.([]byte)), acct.Phone) {
			t.Fatalf("chunk %s holds the phone number in clear", d.Ref.ID)
		}
	}

	dst := openStore(t)
	rr := r.RestoreAccount(ctx, dst, acct.ID)
	if rr.Outcome != replica.Restored || rr.Err != nil {
		t.Fatalf("restore: %+v", rr)
	}
	got := export(t, dst, acct.ID)
	if got.Digest != snap.Digest || got.DeviceJID != snap.DeviceJID {
		t.Fatalf("restored digest %s jid %s, want %s %s", got.Digest, got.DeviceJID, snap.Digest, snap.DeviceJID)
	}
	if again := r.RestoreAccount(ctx, dst, acct.ID); again.Outcome != replica.Unchanged {
		t.Fatalf("second restore: %+v", again)
	}
	dev, err := dst.OpenDevice(ctx, acct.ID, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	paired := dev.Paired()
	dev.Close()
	if !paired {
		t.Fatal("the restored session is not paired")
	}

	res2, err := r.Put(ctx, export(t, src, acct.ID))
	if err != nil || res2.Generation != 2 {
		t.Fatalf("second put: %+v %v", res2, err)
	}
	if n := chunkCount(t, c, acct.ID); n != res2.Chunks {
		t.Fatalf("%d chunk documents after the second generation, want only its %d", n, res2.Chunks)
	}
	ids, err := r.List(ctx)
	if err != nil || len(ids) != 1 || ids[0] != acct.ID {
		t.Fatalf("list: %v %v", ids, err)
	}

	// Logout: the copy goes.
	if err := r.Delete(ctx, acct.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat(ctx, acct.ID); !errors.Is(err, replica.ErrNoReplica) {
		t.Fatalf("after delete: %v", err)
	}
	if n := chunkCount(t, c, acct.ID); n != 0 {
		t.Fatalf("%d chunks left after delete", n)
	}
}

// TestFencedAndPartialWrites: no epoch, or an epoch older than the
// pointer's, writes nothing; chunks of an upload that never flipped the
// pointer are ignored by readers and cleaned by the next write.
func TestFencedAndPartialWrites(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200002")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	r := newReplica(c, k, f)
	snap := export(t, src, acct.ID)

	if _, err := r.Put(ctx, snap); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("put while PASSIVE: %v, want ErrFenced", err)
	}
	if _, err := r.Stat(ctx, acct.ID); !errors.Is(err, replica.ErrNoReplica) {
		t.Fatalf("a fenced put wrote something: %v", err)
	}
	f.epoch.Store(7)
	if _, err := r.Put(ctx, snap); err != nil {
		t.Fatal(err)
	}
	// A deposed holder (epoch 6) cannot write or delete.
	deposed := &fence{}
	deposed.epoch.Store(6)
	old := newReplica(c, k, deposed)
	if _, err := old.Put(ctx, snap); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("put under an older epoch: %v, want ErrFenced", err)
	}
	if err := old.Delete(ctx, acct.ID); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("delete under an older epoch: %v, want ErrFenced", err)
	}
	if in, err := r.Stat(ctx, acct.ID); err != nil || in.Generation != 1 || in.Epoch != 7 {
		t.Fatalf("pointer after refused writes: %+v %v", in, err)
	}

	// A crash after some chunks of generation 2: they exist, the pointer
	// does not name them.
	orphan := c.Collection(replica.Collection).Doc(acct.ID).Collection("chunks").Doc("00000000000000000002-0000")
	if _, err := orphan.Set(ctx, map[string]any{"generation": int64(2), "n": 0, "data": []byte("half")}); err != nil {
		t.Fatal(err)
	}
	got, in, err := r.Get(ctx, acct.ID)
	if err != nil || in.Generation != 1 || got.Digest != snap.Digest {
		t.Fatalf("read with a partial generation present: %v %+v", err, in)
	}
	// The new holder (epoch 8) writes above them (generation 3: a
	// generation's chunks are never written by two writers) and the
	// leftovers go.
	f.epoch.Store(8)
	res, err := r.Put(ctx, snap)
	if err != nil || res.Generation != 3 {
		t.Fatalf("put after the crash: %+v %v", res, err)
	}
	if n := chunkCount(t, c, acct.ID); n != res.Chunks {
		t.Fatalf("%d chunk documents, want %d", n, res.Chunks)
	}
}

// TestForeignKeyOrDamagedReplicaNeverOverwritesLocal: a copy encrypted to
// another host's key, or with altered chunks, is refused with a clear
// error, and a good local session stays exactly as it was.
func TestForeignKeyOrDamagedReplicaNeverOverwritesLocal(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	local := openStore(t)
	acct := watest.Pair(t, srv, local, "40755200003")
	before := export(t, local, acct.ID)

	// Another account's session, written by a host with another key under
	// this account's id: an attacker or a misconfigured host.
	other := openStore(t)
	o := watest.Pair(t, srv, other, "40755200004")
	foreignSnap := export(t, other, o.ID)
	foreignSnap.AccountID = acct.ID
	if foreignSnap.Metadata != nil {
		foreignSnap.Metadata.ID = acct.ID
	}
	foreignKey, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(1)
	if _, err := newReplica(c, foreignKey, f).Put(ctx, foreignSnap); err != nil {
		t.Fatal(err)
	}
	myKey, _ := writeKey(t, t.TempDir())
	mine := newReplica(c, myKey, f)
	rr := mine.RestoreAccount(ctx, local, acct.ID)
	if rr.Outcome != replica.Refused || !errors.Is(rr.Err, replica.ErrForeignKey) || !strings.Contains(rr.Err.Error(), "same key file") {
		t.Fatalf("foreign key: %+v", rr)
	}
	// A pointer that claims our fingerprint over foreign ciphertext is
	// refused by the decryption itself.
	if _, err := c.Collection(replica.Collection).Doc(acct.ID).Update(ctx, []firestore.Update{{Path: "recipientFingerprint", Value: myKey.Fingerprint()}}); err != nil {
		t.Fatal(err)
	}
	if rr := mine.RestoreAccount(ctx, local, acct.ID); rr.Outcome != replica.Refused || !errors.Is(rr.Err, replica.ErrForeignKey) {
		t.Fatalf("spoofed fingerprint: %+v", rr)
	}

	// A damaged copy in our own key: one byte of a chunk altered.
	snap := export(t, other, o.ID)
	snap.AccountID = acct.ID
	if snap.Metadata != nil {
		snap.Metadata.ID = acct.ID
	}
	f.epoch.Store(2)
	res, err := mine.Put(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	chunk := c.Collection(replica.Collection).Doc(acct.ID).Collection("chunks").Doc(firstChunk(res.Generation))
	ds, err := chunk.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ds.DataAt("data")
	data := append([]byte{}, b.([]byte)...)
	data[len(data)/2] ^= 0x40
	if _, err := chunk.Update(ctx, []firestore.Update{{Path: "data", Value: data}}); err != nil {
		t.Fatal(err)
	}
	if rr := mine.RestoreAccount(ctx, local, acct.ID); rr.Outcome != replica.Refused || !errors.Is(rr.Err, replica.ErrCorrupt) {
		t.Fatalf("damaged chunk: %+v", rr)
	}
	// Checksum consistent but ciphertext altered (the pointer rewritten
	// to match): age's authentication refuses it.
	res, err = mine.Put(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	chunk = c.Collection(replica.Collection).Doc(acct.ID).Collection("chunks").Doc(firstChunk(res.Generation))
	if ds, err = chunk.Get(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ = ds.DataAt("data")
	data = append([]byte{}, b.([]byte)...)
	data[len(data)-3] ^= 0x01
	if _, err := chunk.Update(ctx, []firestore.Update{{Path: "data", Value: data}}); err != nil {
		t.Fatal(err)
	}
	all := data
	for n := 1; n < res.Chunks; n++ {
		t.Fatal("test expects one chunk at the default chunk size")
	}
	sum := sha256.Sum256(all)
	if _, err := c.Collection(replica.Collection).Doc(acct.ID).Update(ctx, []firestore.Update{{Path: "sha256", Value: hex.EncodeToString(sum[:])}}); err != nil {
		t.Fatal(err)
	}
	if rr := mine.RestoreAccount(ctx, local, acct.ID); rr.Outcome != replica.Refused || !errors.Is(rr.Err, replica.ErrCorrupt) {
		t.Fatalf("altered ciphertext with a matching checksum: %+v", rr)
	}
	after := export(t, local, acct.ID)
	if after.Digest != before.Digest {
		t.Fatal("a refused replica changed the local session")
	}
}

func firstChunk(gen int64) string {
	s := "00000000000000000000" + itoa(gen)
	return s[len(s)-20:] + "-0000"
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestKeyFileMode(t *testing.T) {
	_, path := writeKey(t, t.TempDir())
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := replica.LoadKey(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0640 key file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.LoadKey(path); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.key")
	os.WriteFile(empty, nil, 0o600)
	if _, err := replica.LoadKey(empty); err == nil {
		t.Fatal("an empty key file was accepted")
	}
}
