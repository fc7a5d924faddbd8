package sessions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
	"golang.org/x/sys/unix"
)

// Snapshotter is what backup and restore need from a device store. *Store
// (per-account SQLite files) implements it; a store that keeps every
// account in one database (PostgreSQL) implements it with
// ExportDeviceTables/ImportDeviceTables filtered by the device JID, its own
// account metadata, and a lock that says whether a process drives the
// account.
type Snapshotter interface {
	// StoreKind names the store in snapshots: "sqlite", "postgres".
	StoreKind() string
	// SnapshotAccountIDs lists the accounts a full backup takes, sorted.
	SnapshotAccountIDs(ctx context.Context) ([]string, error)
	// ExportAccount takes one account in one read transaction, without
	// disturbing a process that has it open.
	ExportAccount(ctx context.Context, id string) (*AccountSnapshot, error)
	// ImportAccount writes snap as account snap.AccountID, all or nothing,
	// and verifies it by exporting it again. It refuses with *InUseError
	// while a process holds the account. check runs under the account's
	// lock with what is there now (nil when nothing is) and decides:
	// ImportSkip, ImportWrite, or an error that refuses.
	ImportAccount(ctx context.Context, snap *AccountSnapshot, check ImportCheck) (*ImportResult, error)
}

// LocalAccount is what an import would replace.
type LocalAccount struct {
	Snapshot *AccountSnapshot
	// ModifiedAt is when the account's state last changed as far as the
	// store can tell; zero when it cannot.
	ModifiedAt time.Time
}

// ImportDecision is an ImportCheck's answer.
type ImportDecision int

const (
	ImportWrite ImportDecision = iota
	ImportSkip
)

// ImportCheck decides, under the account's lock, whether to write.
type ImportCheck func(local *LocalAccount) (ImportDecision, error)

// ImportResult says what ImportAccount did.
type ImportResult struct {
	// Replaced is true when an existing account was replaced; MovedTo is
	// where the per-account store kept it (under removed/).
	Replaced bool   `json:"replaced,omitempty"`
	Skipped  bool   `json:"skipped,omitempty"`
	MovedTo  string `json:"movedTo,omitempty"`
}

var _ Snapshotter = (*Store)(nil)

// StoreKind is Kind: "sqlite" (one whatsmeow SQLite file per account) or
// "postgres".
func (s *Store) StoreKind() string { return s.Kind() }

// SnapshotAccountIDs lists the account directories with a valid id.
func (s *Store) SnapshotAccountIDs(ctx context.Context) ([]string, error) {
	if s.pg != nil {
		return s.pg.snapshotIDs(ctx)
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("read sessions root %s: %w", s.root, err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 && ValidAccountID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, ctx.Err()
}

// ExportAccount reads account.json and then every row of the account's
// whatsmeow database in one deferred (read) transaction of a connection of
// its own: under WAL it sees one consistent state while the daemon keeps
// writing, and never blocks it. It takes no account lock.
func (s *Store) ExportAccount(ctx context.Context, id string) (*AccountSnapshot, error) {
	if err := ValidAccountID(id); err != nil {
		return nil, err
	}
	if s.pg != nil {
		return s.pg.export(ctx, s, id)
	}
	return s.exportDir(ctx, s.Dir(id), id)
}

func (s *Store) exportDir(ctx context.Context, dir, id string) (*AccountSnapshot, error) {
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, id)
	}
	snap := &AccountSnapshot{AccountID: id, SourceStore: s.StoreKind(), SnapshotAt: s.now().UTC(), Tables: []Table{}}
	meta, err := readMetadata(dir, id)
	switch {
	case err == nil:
		snap.Metadata = meta
	case errors.Is(err, ErrNoMetadata):
	default:
		return nil, err
	}
	path := filepath.Join(dir, dbFile)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && st.Size() == 0 {
		snap.seal() // never opened: no device yet
		return snap, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device store of %s: %w", id, err)
	}
	// mode=rw: never create a database; query_only: this connection
	// cannot write even by mistake.
	db, err := sql.Open("sqlite", "file:"+escapeURIPath(path)+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read device store of %s: %w", id, err)
	}
	defer tx.Rollback()
	// The snapshot time is when the read transaction starts, so that a
	// change made after it is "newer" than the snapshot.
	snap.SnapshotAt = s.now().UTC()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='whatsmeow_device'").Scan(&n); err != nil {
		return nil, fmt.Errorf("read device store of %s: %w", id, err)
	}
	if n == 0 {
		snap.seal()
		return snap, nil
	}
	if snap.WhatsmeowSchema, err = readSchemaVersion(ctx, tx); err != nil {
		return nil, fmt.Errorf("device store of %s: %w", id, err)
	}
	if snap.Tables, err = ExportDeviceTables(ctx, tx, ""); err != nil {
		return nil, fmt.Errorf("device store of %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	snap.DeviceJID = deviceJIDOf(snap.Tables)
	snap.seal()
	return snap, nil
}

func deviceJIDOf(tables []Table) string {
	for _, t := range tables {
		if t.Name == "whatsmeow_device" && len(t.Rows) > 0 {
			if jid, ok := t.Rows[0][0].(string); ok {
				return jid
			}
		}
	}
	return ""
}

// modifiedAt is the latest change time of an account directory's state.
func modifiedAt(dir string) time.Time {
	var latest time.Time
	for _, name := range []string{metadataFile, dbFile, dbFile + "-wal"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest
}

// ImportAccount (PostgreSQL: snapshot_postgres.go) builds the account in a temporary directory of the
// sessions root (a fresh whatsmeow database made by whatsmeow's own schema
// code, the rows in one transaction, account.json), exports it again and
// compares, and only then renames it into place: atomically exchanged with
// an existing account, which moves to removed/. A crash leaves either the
// old account or the new one, plus at most a .tmp-restore-* directory.
func (s *Store) ImportAccount(ctx context.Context, snap *AccountSnapshot, check ImportCheck) (_ *ImportResult, err error) {
	id := snap.AccountID
	if err := snap.Verify(); err != nil {
		return nil, err
	}
	if snap.Paired() || snap.RowCount() > 0 {
		if local := WhatsmeowSchemaVersion(); snap.WhatsmeowSchema != local {
			return nil, fmt.Errorf("account %s was backed up with whatsmeow schema v%d, this wactl has v%d: restore it with the wactl version that made the backup (it upgrades the store when it next opens it)", id, snap.WhatsmeowSchema, local)
		}
	}
	if err := CheckSnapshotTables(snap.Tables); err != nil {
		return nil, fmt.Errorf("account %s: %w", id, err)
	}
	if s.pg != nil {
		return s.pg.importAccount(ctx, s, snap, check)
	}
	target := s.Dir(id)
	exists := false
	if st, err := os.Lstat(target); err == nil {
		if !st.IsDir() {
			return nil, fmt.Errorf("%s exists and is not a directory: move it away", target)
		}
		exists = true
	}
	var local *LocalAccount
	if exists {
		lock, err := s.Lock(id)
		if err != nil {
			return nil, err
		}
		defer lock.Release()
		// Before reading: closing the last connection to a database may
		// checkpoint it, which changes its mtime but not its state.
		mt := modifiedAt(target)
		ls, err := s.exportDir(ctx, target, id)
		if err != nil {
			return nil, fmt.Errorf("read the local account %s before replacing it: %w", id, err)
		}
		local = &LocalAccount{Snapshot: ls, ModifiedAt: mt}
	}
	decision, err := check(local)
	if err != nil {
		return nil, err
	}
	if decision == ImportSkip {
		return &ImportResult{Skipped: true}, nil
	}

	tmp := filepath.Join(s.root, tempPrefix+"restore-"+id+"-"+randomHex(4))
	if _, err := mkdirPrivate(tmp); err != nil {
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	// Locked from birth: once renamed into place, a daemon opening the
	// account waits for this restore to finish.
	tmpLock, err := s.lockDir(tmp, id)
	if err != nil {
		return nil, err
	}
	defer tmpLock.Release()
	if err := s.writeAccountDir(ctx, tmp, snap); err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	back, err := s.exportDir(ctx, tmp, id)
	if err != nil {
		return nil, fmt.Errorf("restore %s: read back: %w", id, err)
	}
	if err := sameAccount(snap, back); err != nil {
		return nil, fmt.Errorf("restore %s: what was written differs from the snapshot (%v); nothing was replaced", id, err)
	}
	res := &ImportResult{}
	if !exists {
		if err := renameNoReplace(tmp, target); err != nil {
			return nil, fmt.Errorf("restore %s: move into place: %w", id, err)
		}
		committed = true
		return res, syncDir(s.root)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE); err != nil {
		return nil, fmt.Errorf("restore %s: swap into place: %w", id, err)
	}
	committed = true
	res.Replaced = true
	// tmp now holds the old account.
	removed := filepath.Join(s.root, removedDirName)
	if _, err := mkdirPrivate(removed); err != nil {
		return res, fmt.Errorf("restored %s, but could not create %s to keep the old copy (it is in %s): %w", id, removed, tmp, err)
	}
	stamp := s.now().UTC().Format("20060102T150405Z")
	dest := filepath.Join(removed, stamp+"-"+id+".before-restore")
	for n := 2; fileExists(dest); n++ {
		dest = filepath.Join(removed, fmt.Sprintf("%s-%s.before-restore.%d", stamp, id, n))
	}
	if err := os.Rename(tmp, dest); err != nil {
		return res, fmt.Errorf("restored %s, but the old copy stays in %s: %w", id, tmp, err)
	}
	res.MovedTo = dest
	s.log.Info("account restored over an existing one", "account", id, "old_copy", dest)
	return res, errors.Join(syncDir(s.root), syncDir(removed))
}

// writeAccountDir fills an empty directory with snap: account.json and a
// whatsmeow database holding exactly its rows.
func (s *Store) writeAccountDir(ctx context.Context, dir string, snap *AccountSnapshot) error {
	if snap.Metadata != nil {
		data, err := json.MarshalIndent(snap.Metadata, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, metadataFile), append(data, '\n')); err != nil {
			return err
		}
	}
	if snap.WhatsmeowSchema == 0 && snap.RowCount() == 0 {
		return nil // never opened: OpenDevice creates the store
	}
	path := filepath.Join(dir, dbFile)
	if err := precreate(path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return err
	}
	defer db.Close()
	// whatsmeow's own code creates the schema, so the restored database is
	// exactly what it would have made.
	container := sqlstore.NewWithDB(db, "sqlite", nil)
	if err := container.Upgrade(ctx); err != nil {
		return fmt.Errorf("create whatsmeow schema: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := ImportDeviceTables(ctx, tx, snap.Tables); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Fold the WAL into the database file so that the directory rename
	// moves one complete file.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := tightenDBModes(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	serr := f.Sync()
	f.Close()
	if serr != nil {
		return serr
	}
	return syncDir(dir)
}

// sameAccount compares what matters for a restore: the rows (digest), the
// device and the metadata.
func sameAccount(a, b *AccountSnapshot) error {
	if a.Digest != b.Digest {
		return fmt.Errorf("rows differ (%d rows expected, %d read back)", a.RowCount(), b.RowCount())
	}
	if a.DeviceJID != b.DeviceJID {
		return fmt.Errorf("device %q, read back %q", a.DeviceJID, b.DeviceJID)
	}
	am, _ := json.Marshal(a.Metadata)
	bm, _ := json.Marshal(b.Metadata)
	if string(am) != string(bm) {
		return errors.New("account.json differs")
	}
	return nil
}

// renameNoReplace renames without ever replacing an account that appeared
// meanwhile; where the file system lacks RENAME_NOREPLACE, a plain rename
// (which fails on a non-empty directory) is used.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return os.Rename(from, to)
	}
	return err
}

// lockDir takes the account lock of a directory that is not (yet) at the
// account's path; see Lock.
func (s *Store) lockDir(dir, id string) (*Lock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	h := Holder{PID: os.Getpid(), Instance: s.instance, Since: s.now().UTC()}
	data, _ := json.Marshal(h)
	if err := writeHolder(f, data); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{account: id, f: f}, nil
}
