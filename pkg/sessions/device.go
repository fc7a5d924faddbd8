package sessions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wactl/wactl/pkg/wmlog"
)

const dbFile = "whatsmeow.db"

// SQLite's companion files; they take the database file's mode when SQLite
// creates them, and are checked after open anyway.
var dbCompanions = []string{"-wal", "-shm", "-journal"}

// DeviceOptions configures OpenDevice.
type DeviceOptions struct {
	// Logger for whatsmeow's store; default: the Store's slog logger via wmlog.
	Logger waLog.Logger
}

// Device is an account's whatsmeow device store, opened for connecting. It
// holds the account lock until Close.
type Device struct {
	Account   Account
	Container *sqlstore.Container
	// Store is the first device in the database, or a new unpaired one
	// (saved by whatsmeow when pairing succeeds).
	Store *store.Device
	lock  *Lock
	// shared: Container is the PostgreSQL store's, shared by every
	// account; Close leaves it open.
	shared bool
}

// Paired reports whether the device has completed pairing.
func (d *Device) Paired() bool { return d.Store != nil && d.Store.ID != nil }

// Close closes the database and releases the account lock.
func (d *Device) Close() error {
	var cerr error
	if d.Container != nil && !d.shared {
		cerr = d.Container.Close()
		d.Container = nil
	}
	return errors.Join(cerr, d.lock.Release())
}

// DSN is the SQLite DSN wactl uses for a whatsmeow database at path:
// foreign keys (the schema upgrade needs them), WAL, a busy timeout, and
// immediate transactions (whatsmeow reads then writes inside one).
func DSN(path string) string {
	return "file:" + escapeURIPath(path) +
		"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// escapeURIPath escapes the characters that would end or corrupt the path
// part of an SQLite URI filename.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// OpenDevice takes the account lock, then opens (creating if needed, mode
// 0600) the account's whatsmeow database and its first device, or a new
// device if none is paired yet. The account directory must exist (Create).
// A second opener, in this or another process, gets *InUseError.
func (s *Store) OpenDevice(ctx context.Context, id string, opts DeviceOptions) (_ *Device, err error) {
	if s.pg != nil {
		if err := ValidAccountID(id); err != nil {
			return nil, err
		}
		return s.pg.openDevice(ctx, s, id)
	}
	lock, err := s.Lock(id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	acct, err := s.Get(id)
	switch {
	case errors.Is(err, ErrNoMetadata):
		// A session without metadata still restores; inventory reports it.
		s.log.Warn("account has no account.json; opening its store anyway", "account", id)
		acct = &Account{ID: id}
	case err != nil:
		return nil, err
	}
	dir := s.Dir(id)
	path := filepath.Join(dir, dbFile)
	if err := precreate(path); err != nil {
		return nil, fmt.Errorf("create device store of %s: %w", id, err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = wmlog.New(s.log.With("account", id), "Database", wmlog.Options{})
	}
	container, err := sqlstore.New(ctx, "sqlite", DSN(path), logger)
	if err != nil {
		return nil, fmt.Errorf("open device store %s of %s: %w (inventory shows whether it is corrupt)", path, id, err)
	}
	defer func() {
		if err != nil {
			container.Close()
		}
	}()
	if err := tightenDBModes(path); err != nil {
		return nil, err
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		return nil, fmt.Errorf("read device of %s: %w", id, err)
	}
	return &Device{Account: *acct, Container: container, Store: dev, lock: lock}, nil
}

// precreate makes the database file 0600 before SQLite sees it; SQLite would
// otherwise create it 0644 minus umask, and it copies the database's mode to
// the -wal/-shm files it creates later.
func precreate(path string) error {
	f, err := createPrivate(path)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// tightenDBModes resets the database and any companion file to 0600, so a
// store copied in with looser modes (or from before wactl) is fixed on open.
func tightenDBModes(path string) error {
	for _, suffix := range append([]string{""}, dbCompanions...) {
		p := path + suffix
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if st.Mode().IsRegular() && st.Mode().Perm() != fileMode {
			if err := os.Chmod(p, fileMode); err != nil {
				return fmt.Errorf("restrict %s to 0600: %w", p, err)
			}
		}
	}
	return nil
}
