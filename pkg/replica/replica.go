// Package replica keeps an age-encrypted copy of each account's session in
// Firestore (issue 20), for deployments with the Firestore lease and no
// shared session database: the host that takes over restores it.
//
// Layout, per account (never the old service's wa_sessions documents):
//
//	wa_sessions_v2/{accountId}                       the pointer: generation, epoch, …
//	wa_sessions_v2/{accountId}/chunks/{gen}-{n}      ciphertext, < 900 KiB each
//
// A write puts the new generation's chunks first, then flips the pointer
// with a precondition on its update time, then deletes the older chunks: a
// crash at any point leaves the last complete generation readable.
package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/firestore"
	"filippo.io/age"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

const (
	// Collection is the replica's collection; the old service's is
	// wa_sessions, which the replica never reads or writes.
	Collection = "wa_sessions_v2"
	chunksSub  = "chunks"
	// Format names what the chunks hold: an age-encrypted
	// sessions.EncodeAccount payload.
	Format = "wactl-session-replica-age-v1"
)

// ChunkSize keeps each chunk document under Firestore's 1 MiB limit with
// room for its other fields (under 900 KiB). A variable for tests.
var ChunkSize = 800 << 10

var (
	// ErrNoReplica: the account has no copy in Firestore.
	ErrNoReplica = errors.New("no session replica in Firestore")
	// ErrForeignKey: the copy was encrypted to another key.
	ErrForeignKey = errors.New("the session replica was encrypted to another key")
	// ErrCorrupt: the copy is incomplete, altered or not a wactl session.
	ErrCorrupt = errors.New("the session replica is damaged")
	// ErrConflict: another writer flipped the pointer between our read and
	// our write; nothing of ours replaced it.
	ErrConflict = errors.New("the session replica changed while it was written")
)

// Info is the pointer document: what the current generation is.
type Info struct {
	AccountID    string    `firestore:"accountId"`
	Generation   int64     `firestore:"generation"`
	Epoch        int64     `firestore:"epoch"`
	SnapshotAt   time.Time `firestore:"snapshotAt"`
	WrittenAt    time.Time `firestore:"writtenAt"`
	Format       string    `firestore:"format"`
	FormatVer    int       `firestore:"snapshotFormatVersion"`
	StoreVersion int       `firestore:"storeVersion"` // whatsmeow schema
	SourceStore  string    `firestore:"sourceStore"`
	Recipient    string    `firestore:"recipientFingerprint"`
	Chunks       int       `firestore:"chunks"`
	Bytes        int64     `firestore:"bytes"`
	SHA256       string    `firestore:"sha256"` // of the ciphertext
	Instance     string    `firestore:"instance"`

	updateTime time.Time
}

// Options of New.
type Options struct {
	Client *firestore.Client
	Key    *Key
	// Fence is the lease's: the epoch this process holds, or false. Every
	// write needs it; the pointer keeps the epoch and refuses older ones.
	Fence    func() (int64, bool)
	Instance string
	Now      func() time.Time
}

// Replica reads and writes the copies.
type Replica struct{ o Options }

// New returns a Replica.
func New(o Options) *Replica {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Replica{o: o}
}

// Key is the replica's key.
func (r *Replica) Key() *Key { return r.o.Key }

func (r *Replica) doc(id string) *firestore.DocumentRef {
	return r.o.Client.Collection(Collection).Doc(id)
}

func chunkID(gen int64, n int) string { return fmt.Sprintf("%020d-%04d", gen, n) }

// Stat reads the pointer document (ErrNoReplica when there is none).
func (r *Replica) Stat(ctx context.Context, id string) (*Info, error) {
	snap, err := r.doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("%w: account %s", ErrNoReplica, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", Collection, id, err)
	}
	var in Info
	if err := snap.DataTo(&in); err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, Collection, id, err)
	}
	in.updateTime = snap.UpdateTime
	return &in, nil
}

func (r *Replica) fence(what string) (int64, error) {
	if r.o.Fence == nil {
		return 0, fmt.Errorf("%s: no lease to fence the write: %w", what, store.ErrFenced)
	}
	epoch, ok := r.o.Fence()
	if !ok || epoch <= 0 {
		return 0, fmt.Errorf("%s: this process holds no lease epoch (PASSIVE): %w", what, store.ErrFenced)
	}
	return epoch, nil
}

// Encrypt encodes and encrypts one account as the chunks hold it.
func (r *Replica) Encrypt(a *sessions.AccountSnapshot) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r.o.Key.Recipient)
	if err != nil {
		return nil, err
	}
	if err := sessions.EncodeAccount(w, a); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PutResult says what Put wrote.
type PutResult struct {
	Generation int64
	Bytes      int64
	Chunks     int
	Epoch      int64
}

// Put writes a new generation of account a's copy under the held lease
// epoch. It refuses (store.ErrFenced) without an epoch or when the pointer
// carries a newer one, and returns ErrConflict when the pointer changed
// under it; in both cases the previous generation stays current.
func (r *Replica) Put(ctx context.Context, a *sessions.AccountSnapshot) (*PutResult, error) {
	id := a.AccountID
	what := "session replica of " + id
	epoch, err := r.fence(what)
	if err != nil {
		return nil, err
	}
	prev, err := r.Stat(ctx, id)
	if err != nil && !errors.Is(err, ErrNoReplica) && !errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	var gen int64 = 1
	if prev != nil {
		if prev.Epoch > epoch {
			return nil, fmt.Errorf("%s: written under lease epoch %d, the replica carries %d: %w", what, epoch, prev.Epoch, store.ErrFenced)
		}
		gen = prev.Generation + 1
	}
	ct, err := r.Encrypt(a)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt: %w", what, err)
	}
	sum := sha256.Sum256(ct)
	n := 0
	chunks := r.doc(id).Collection(chunksSub)
	for off := 0; off < len(ct) || n == 0; off += ChunkSize {
		end := min(off+ChunkSize, len(ct))
		if _, err := chunks.Doc(chunkID(gen, n)).Set(ctx, map[string]any{
			"generation": gen, "n": n, "data": ct[off:end],
		}); err != nil {
			return nil, fmt.Errorf("%s: write chunk %d: %w", what, n, err)
		}
		n++
	}
	// The lease may have moved on while the chunks were written.
	if e2, err := r.fence(what); err != nil || e2 != epoch {
		r.deleteGeneration(ctx, id, gen)
		if err == nil {
			err = fmt.Errorf("%s: the lease epoch changed from %d to %d during the write: %w", what, epoch, e2, store.ErrFenced)
		}
		return nil, err
	}
	in := Info{
		AccountID: id, Generation: gen, Epoch: epoch, SnapshotAt: a.SnapshotAt.UTC(), WrittenAt: r.o.Now().UTC(),
		Format: Format, FormatVer: sessions.SnapshotFormatVersion, StoreVersion: a.WhatsmeowSchema,
		SourceStore: a.SourceStore, Recipient: r.o.Key.Fingerprint(), Chunks: n, Bytes: int64(len(ct)),
		SHA256: hex.EncodeToString(sum[:]), Instance: r.o.Instance,
	}
	if err := r.flip(ctx, prev, &in); err != nil {
		r.deleteGeneration(ctx, id, gen)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r.deleteOtherGenerations(ctx, id, gen)
	return &PutResult{Generation: gen, Bytes: int64(len(ct)), Chunks: n, Epoch: epoch}, nil
}

// flip makes in the current generation, in a transaction that re-reads the
// pointer: it must still be the one Put read (same generation and update
// time; absent when prev is nil), and must not carry a newer epoch.
func (r *Replica) flip(ctx context.Context, prev, in *Info) error {
	ref := r.doc(in.AccountID)
	return r.o.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		exists := err == nil
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		switch {
		case prev == nil && exists:
			return fmt.Errorf("%w: a generation appeared meanwhile", ErrConflict)
		case prev != nil && !exists:
			return fmt.Errorf("%w: the replica was deleted meanwhile", ErrConflict)
		case prev != nil && !snap.UpdateTime.Equal(prev.updateTime):
			var cur Info
			_ = snap.DataTo(&cur)
			if cur.Epoch > in.Epoch {
				return fmt.Errorf("written under lease epoch %d, the replica now carries %d: %w", in.Epoch, cur.Epoch, store.ErrFenced)
			}
			return fmt.Errorf("%w: generation %d became %d meanwhile", ErrConflict, prev.Generation, cur.Generation)
		}
		return tx.Set(ref, in)
	}, firestore.MaxAttempts(3))
}

// deleteGeneration removes the chunks of one generation (a write that did
// not become current). Best effort: a leftover is removed by the next Put.
func (r *Replica) deleteGeneration(ctx context.Context, id string, gen int64) {
	r.deleteChunks(ctx, id, func(g int64) bool { return g == gen })
}

// deleteOtherGenerations removes every chunk but the current generation's,
// including leftovers of interrupted writes.
func (r *Replica) deleteOtherGenerations(ctx context.Context, id string, keep int64) {
	r.deleteChunks(ctx, id, func(g int64) bool { return g != keep })
}

func (r *Replica) deleteChunks(ctx context.Context, id string, match func(gen int64) bool) error {
	// Read the listing to the end before deleting: a delete inside an open
	// query stream waits on the emulator's (and Firestore's) read locks.
	docs, err := r.doc(id).Collection(chunksSub).Select("generation").Documents(ctx).GetAll()
	if err != nil {
		return err
	}
	var errs []error
	for _, snap := range docs {
		g, _ := snap.DataAt("generation")
		gen, _ := g.(int64)
		if match(gen) {
			if _, err := snap.Ref.Delete(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Get reads, verifies and decrypts the current generation. A copy
// encrypted to another key fails with ErrForeignKey; a missing chunk, a
// checksum mismatch or a payload that does not decrypt or decode fails
// with ErrCorrupt.
func (r *Replica) Get(ctx context.Context, id string) (*sessions.AccountSnapshot, *Info, error) {
	in, err := r.Stat(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s/%s generation %d: %s", ErrCorrupt, Collection, id, in.Generation, fmt.Sprintf(format, args...))
	}
	if in.Format != Format {
		return nil, in, bad("format %q, this wactl reads %q", in.Format, Format)
	}
	if in.Recipient != r.o.Key.Fingerprint() {
		return nil, in, fmt.Errorf("%w: %s/%s was encrypted to the key with fingerprint %s, this host's sessions.replica_key_file (%s) is %s: give every host the same key file",
			ErrForeignKey, Collection, id, in.Recipient, r.o.Key.Path, r.o.Key.Fingerprint())
	}
	if in.Chunks < 1 || in.Chunks > 64 {
		return nil, in, bad("%d chunks", in.Chunks)
	}
	refs := make([]*firestore.DocumentRef, in.Chunks)
	for n := range refs {
		refs[n] = r.doc(id).Collection(chunksSub).Doc(chunkID(in.Generation, n))
	}
	snaps, err := r.o.Client.GetAll(ctx, refs)
	if err != nil {
		return nil, in, fmt.Errorf("read the chunks of %s/%s: %w", Collection, id, err)
	}
	var ct []byte
	for n, s := range snaps {
		if !s.Exists() {
			return nil, in, bad("chunk %d is missing", n)
		}
		v, err := s.DataAt("data")
		b, ok := v.([]byte)
		if err != nil || !ok {
			return nil, in, bad("chunk %d has no data", n)
		}
		ct = append(ct, b...)
	}
	if sum := sha256.Sum256(ct); int64(len(ct)) != in.Bytes || hex.EncodeToString(sum[:]) != in.SHA256 {
		return nil, in, bad("the chunks do not match the pointer's checksum")
	}
	a, err := r.Decrypt(ct)
	if err != nil {
		if errors.Is(err, ErrForeignKey) {
			return nil, in, fmt.Errorf("%s/%s: %w", Collection, id, err)
		}
		return nil, in, bad("%v", err)
	}
	if a.AccountID != id {
		return nil, in, bad("it holds account %q", a.AccountID)
	}
	return a, in, nil
}

// Decrypt opens and decodes what Encrypt wrote (the snapshot's digest is
// verified by sessions.DecodeAccount).
func (r *Replica) Decrypt(ct []byte) (*sessions.AccountSnapshot, error) {
	pr, err := age.Decrypt(bytes.NewReader(ct), r.o.Key.Identity)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return nil, fmt.Errorf("%w (this host's key does not open it)", ErrForeignKey)
	}
	if err != nil {
		return nil, err
	}
	return sessions.DecodeAccount(io.LimitReader(pr, 64<<20))
}

// Delete removes an account's copy (confirmed logout, accounts remove, the
// API's reset). Fenced like Put; the pointer goes first so that nobody
// restores a half-deleted copy.
func (r *Replica) Delete(ctx context.Context, id string) error {
	what := "delete the session replica of " + id
	epoch, err := r.fence(what)
	if err != nil {
		return err
	}
	return r.deleteUnder(ctx, id, epoch)
}

// DeleteUnfenced removes a copy for an operator command run without the
// lease (wactl accounts remove while no daemon runs). It still refuses
// nothing: the operator asked for it.
func (r *Replica) DeleteUnfenced(ctx context.Context, id string) error {
	return r.deleteUnder(ctx, id, 0)
}

func (r *Replica) deleteUnder(ctx context.Context, id string, epoch int64) error {
	ref := r.doc(id)
	err := r.o.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		var cur Info
		_ = snap.DataTo(&cur)
		if epoch != 0 && cur.Epoch > epoch {
			return fmt.Errorf("delete under lease epoch %d, the replica carries %d: %w", epoch, cur.Epoch, store.ErrFenced)
		}
		return tx.Delete(ref)
	}, firestore.MaxAttempts(3))
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", Collection, id, err)
	}
	return r.deleteChunks(ctx, id, func(int64) bool { return true })
}
