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
// Deleting a copy leaves a tombstone pointer (deleted: true) that keeps the
// generation, so generations never go back and no reader restores it.
package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	// Format names what the chunks hold: a one-account snapshot sealed by
	// sessions.SealSnapshot (age to the replica key), the body of a
	// `wactl sessions backup` file. The bytes are the same as before the
	// backup code was shared, so the name stays.
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
	// ErrDamagedPointer (always with ErrCorrupt): the pointer document
	// itself cannot be read (a field of the wrong type, no generation).
	// Nobody can restore the account until it is rewritten: the lease
	// holder's next copy does it, or `wactl doctor --fix` (RepairPointer).
	ErrDamagedPointer = errors.New("its pointer document is damaged")
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
	// Deleted marks a tombstone: the copy was deleted (logout, reset,
	// accounts remove) at DeletedAt; Generation is the last one written.
	Deleted   bool      `firestore:"deleted,omitempty"`
	DeletedAt time.Time `firestore:"deletedAt,omitempty"`

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

// Stat reads the pointer document: ErrNoReplica when there is none or it
// is a tombstone, ErrCorrupt+ErrDamagedPointer when it cannot be read.
func (r *Replica) Stat(ctx context.Context, id string) (*Info, error) {
	_, in, err := r.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.Deleted {
		return nil, fmt.Errorf("%w: account %s (deleted at %s, generation %d)", ErrNoReplica, id, in.DeletedAt.UTC().Format(time.RFC3339), in.Generation)
	}
	return in, nil
}

// read returns the pointer document as it is, tombstones included. A
// pointer that does not parse, or names no generation, is returned as its
// snapshot with ErrDamagedPointer, so a writer can replace it under a
// precondition on its update time.
func (r *Replica) read(ctx context.Context, id string) (*firestore.DocumentSnapshot, *Info, error) {
	snap, err := r.doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, nil, fmt.Errorf("%w: account %s", ErrNoReplica, id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", Collection, id, err)
	}
	in, err := parsePointer(snap)
	if err != nil {
		return snap, nil, err
	}
	return snap, in, nil
}

// ParsePointer reads a pointer document (doctor): a damaged one fails with
// ErrCorrupt and ErrDamagedPointer; a tombstone has Deleted set.
func ParsePointer(snap *firestore.DocumentSnapshot) (*Info, error) { return parsePointer(snap) }

func parsePointer(snap *firestore.DocumentSnapshot) (*Info, error) {
	var in Info
	bad := func(why string) error {
		return fmt.Errorf("%w: %w: %s/%s: %s (the lease holder rewrites it at its next copy of the account; now: wactl doctor --fix)",
			ErrCorrupt, ErrDamagedPointer, Collection, snap.Ref.ID, why)
	}
	if err := snap.DataTo(&in); err != nil {
		return nil, bad(err.Error())
	}
	switch {
	case in.Deleted && in.Generation < 0:
		return nil, bad(fmt.Sprintf("tombstone with generation %d", in.Generation))
	case !in.Deleted && in.Generation < 1:
		return nil, bad(fmt.Sprintf("generation %d", in.Generation))
	}
	in.updateTime = snap.UpdateTime
	return &in, nil
}

// intField reads an integer field of a document that may not parse as a
// whole (a damaged pointer): 0 when absent or not an integer.
func intField(snap *firestore.DocumentSnapshot, field string) int64 {
	if snap == nil {
		return 0
	}
	v, err := snap.DataAt(field)
	if err != nil {
		return 0
	}
	n, _ := v.(int64)
	return n
}

// maxChunkGeneration is the highest generation any chunk of id names
// (complete or not): a rewritten pointer goes above it, so no leftover
// chunk is ever taken for the new generation's.
func (r *Replica) maxChunkGeneration(ctx context.Context, id string) (int64, error) {
	docs, err := r.doc(id).Collection(chunksSub).Select("generation").Documents(ctx).GetAll()
	if err != nil {
		return 0, err
	}
	var top int64
	for _, d := range docs {
		top = max(top, intField(d, "generation"))
	}
	return top, nil
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

// Encrypt seals one account as the chunks hold it: the backup file's
// format (sessions.SealSnapshot) with a one-account snapshot, to the
// replica key.
func (r *Replica) Encrypt(a *sessions.AccountSnapshot) ([]byte, error) {
	var buf bytes.Buffer
	snap := &sessions.Snapshot{Format: sessions.SnapshotFormat, FormatVersion: sessions.SnapshotFormatVersion,
		CreatedAt: a.SnapshotAt, Accounts: []sessions.AccountSnapshot{*a}}
	if err := sessions.SealSnapshot(&buf, snap, sessions.Encryption{Recipients: []age.Recipient{r.o.Key.Recipient}}); err != nil {
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
	// Repaired: the pointer was damaged and this write replaced it.
	Repaired error
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
	prevSnap, prev, err := r.read(ctx, id)
	var damaged error
	switch {
	case errors.Is(err, ErrNoReplica):
	case errors.Is(err, ErrDamagedPointer):
		damaged = err
	case err != nil:
		return nil, err
	}
	switch {
	case prev != nil:
		if prev.Epoch > epoch {
			return nil, fmt.Errorf("%s: written under lease epoch %d, the replica carries %d: %w", what, epoch, prev.Epoch, store.ErrFenced)
		}
	case damaged != nil:
		// The holder replaces a damaged pointer (else every write would
		// conflict with it for good): fenced by whatever epoch it still
		// shows, above every generation it or any chunk names.
		if e := intField(prevSnap, "epoch"); e > epoch {
			return nil, fmt.Errorf("%s: written under lease epoch %d, the damaged pointer carries %d: %w", what, epoch, e, store.ErrFenced)
		}
	}
	// The new generation is above every one the pointer or any chunk
	// names, so a generation's chunks are never written by two writers:
	// another writer that read the same pointer (a deposed host that has
	// not noticed yet) and got here first has its chunks listed, and one
	// that lists before our chunks exist is stopped by Create below.
	top, err := r.maxChunkGeneration(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%s: list the chunks: %w", what, err)
	}
	gen := max(top, intField(prevSnap, "generation")) + 1
	ct, err := r.Encrypt(a)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt: %w", what, err)
	}
	sum := sha256.Sum256(ct)
	n := 0
	chunks := r.doc(id).Collection(chunksSub)
	for off := 0; off < len(ct) || n == 0; off += ChunkSize {
		end := min(off+ChunkSize, len(ct))
		if _, err := chunks.Doc(chunkID(gen, n)).Create(ctx, map[string]any{
			"generation": gen, "n": n, "data": ct[off:end],
		}); err != nil {
			if status.Code(err) == codes.AlreadyExists {
				// Another writer chose this generation too and wrote
				// this chunk first: the generation is its own.
				return nil, fmt.Errorf("%s: %w: chunk %d of generation %d was written by another writer meanwhile", what, ErrConflict, n, gen)
			}
			return nil, fmt.Errorf("%s: write chunk %d: %w", what, n, err)
		}
		if chunkWriteHook != nil {
			chunkWriteHook(r, id, n)
		}
		n++
	}
	// The lease may have moved on while the chunks were written.
	if e2, err := r.fence(what); err != nil || e2 != epoch {
		r.dropGeneration(ctx, id, gen)
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
	if err := r.flip(ctx, prevSnap, &in); err != nil {
		r.dropGeneration(ctx, id, gen)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if cleanupHook != nil {
		cleanupHook(r, id)
	}
	r.deleteOtherGenerations(ctx, id, gen)
	return &PutResult{Generation: gen, Bytes: int64(len(ct)), Chunks: n, Epoch: epoch, Repaired: damaged}, nil
}

// flip makes in the current generation with a conditional write (see
// replace; not a transaction): the pointer must still be the document Put
// read (same update time, a damaged one included; absent when prev is
// nil). A lost race is not tried again, since the generation was chosen on
// the version read: it fails with store.ErrFenced when the pointer now
// carries a newer epoch, else ErrConflict, and the previous generation
// stays current.
func (r *Replica) flip(ctx context.Context, prev *firestore.DocumentSnapshot, in *Info) error {
	ref := r.doc(in.AccountID)
	if pointerWriteHook != nil {
		pointerWriteHook(r, in.AccountID)
	}
	err := replace(ctx, ref, prev, pointerFields(in))
	if err == nil || !lostRace(err) {
		return err
	}
	snap, gerr := ref.Get(ctx)
	switch {
	case gerr != nil && status.Code(gerr) != codes.NotFound:
		return fmt.Errorf("%w: the pointer changed meanwhile (%v), and reading it again failed: %v", ErrConflict, err, gerr)
	case prev == nil:
		return fmt.Errorf("%w: a generation appeared meanwhile", ErrConflict)
	case gerr != nil:
		return fmt.Errorf("%w: the replica was deleted meanwhile", ErrConflict)
	}
	if e := intField(snap, "epoch"); e > in.Epoch {
		return fmt.Errorf("written under lease epoch %d, the replica now carries %d: %w", in.Epoch, e, store.ErrFenced)
	}
	return fmt.Errorf("%w: generation %d became %d meanwhile", ErrConflict, intField(prev, "generation"), intField(snap, "generation"))
}

// dropGeneration removes the chunks of one generation (a write that did
// not become current; no other writer writes that generation's chunks),
// unless the pointer now names that generation: a repair rebuilt it from
// them (RepairPointer takes the newest complete generation). Best effort:
// a leftover is removed by the next Put.
func (r *Replica) dropGeneration(ctx context.Context, id string, gen int64) {
	if _, cur, err := r.read(ctx, id); err == nil && !cur.Deleted && cur.Generation == gen {
		return
	}
	r.deleteChunks(ctx, id, func(g int64) bool { return g == gen })
}

// deleteOtherGenerations removes the chunks of every generation below the
// current one, including leftovers of interrupted writes. Never above it:
// those belong to a later holder's copy, in progress or already current
// when this cleanup runs late (a host stalled after its flip:
// TestStalledHostsCleanupKeepsTheNextHoldersCopy); a leftover above is
// removed by the next copy.
func (r *Replica) deleteOtherGenerations(ctx context.Context, id string, keep int64) {
	r.deleteChunks(ctx, id, func(g int64) bool { return g < keep })
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
		if match(intField(snap, "generation")) {
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

// Decrypt opens what Encrypt wrote with the backup's reader
// (sessions.OpenSnapshot: age authentication, then the snapshot's digests)
// and returns its one account. A plaintext payload is refused.
func (r *Replica) Decrypt(ct []byte) (*sessions.AccountSnapshot, error) {
	s, err := sessions.OpenSnapshot(bytes.NewReader(ct), []age.Identity{r.o.Key.Identity}, false)
	if errors.Is(err, sessions.ErrWrongKey) {
		return nil, fmt.Errorf("%w (this host's key does not open it)", ErrForeignKey)
	}
	if err != nil {
		return nil, err
	}
	if len(s.Accounts) != 1 {
		return nil, fmt.Errorf("%w: %d accounts where one was expected", sessions.ErrBadSnapshot, len(s.Accounts))
	}
	return &s.Accounts[0], nil
}

// Delete removes an account's copy (confirmed logout, accounts remove, the
// API's reset). Fenced like Put. The pointer becomes a tombstone first (so
// that nobody restores a half-deleted copy, and the generation is kept),
// then the chunks go.
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
// nothing: the operator asked for it. The tombstone keeps the pointer's
// epoch.
func (r *Replica) DeleteUnfenced(ctx context.Context, id string) error {
	return r.deleteUnder(ctx, id, 0)
}

func (r *Replica) deleteUnder(ctx context.Context, id string, epoch int64) error {
	ref := r.doc(id)
	top, err := r.maxChunkGeneration(ctx, id)
	if err != nil {
		return fmt.Errorf("delete %s/%s: list the chunks: %w", Collection, id, err)
	}
	// A read and a conditional write (see replace), read again after a
	// lost race: the tombstone lands only on the version whose epoch was
	// checked. Then only the chunks listed above or named by the pointer
	// go (at most the tombstone's generation): a copy written after the
	// tombstone (a new pairing, maybe on the next holder while this host
	// stalled) is above it.
	limit := top
	for attempt := 0; ; attempt++ {
		snap, err := ref.Get(ctx)
		if status.Code(err) == codes.NotFound {
			break
		}
		if err != nil {
			return fmt.Errorf("delete %s/%s: %w", Collection, id, err)
		}
		cur := intField(snap, "epoch")
		if epoch != 0 && cur > epoch {
			return fmt.Errorf("delete %s/%s: delete under lease epoch %d, the replica carries %d: %w", Collection, id, epoch, cur, store.ErrFenced)
		}
		limit = max(top, intField(snap, "generation"))
		if d, _ := snap.DataAt("deleted"); d == true {
			break // already a tombstone
		}
		if pointerWriteHook != nil {
			pointerWriteHook(r, id)
		}
		now := r.o.Now().UTC()
		err = replace(ctx, ref, snap, map[string]any{
			"accountId": id, "deleted": true, "deletedAt": now, "writtenAt": now,
			"generation": limit, "epoch": max(epoch, cur), "instance": r.o.Instance,
		})
		if err == nil {
			break
		}
		if !lostRace(err) {
			return fmt.Errorf("delete %s/%s: %w", Collection, id, err)
		}
		if attempt >= 4 {
			return fmt.Errorf("delete %s/%s: %w: the pointer kept changing (%v)", Collection, id, ErrConflict, err)
		}
		if err := pause(ctx, attempt); err != nil {
			return fmt.Errorf("delete %s/%s: %w", Collection, id, err)
		}
	}
	if cleanupHook != nil {
		cleanupHook(r, id)
	}
	return r.deleteChunks(ctx, id, func(g int64) bool { return g <= limit })
}
