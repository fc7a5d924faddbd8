package sessions

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Options configures a Store. The zero value works.
type Options struct {
	// InstanceID names this wactl instance in lock files so that an operator
	// can tell which host/unit holds an account. Default: the hostname.
	InstanceID string
	// Logger receives diagnostics; secrets are never logged. Default: discard.
	Logger *slog.Logger
	// Now is the clock for metadata and removed/ names. Default: time.Now.
	Now func() time.Time
	// Postgres, when set, keeps devices and metadata in a shared
	// PostgreSQL database instead of per-account SQLite files
	// (sessions.store: postgres); see store.go.
	Postgres *PostgresOptions
}

// Store is a sessions root. Its methods are safe for concurrent use; the
// per-account lock (Lock, OpenDevice) is what serialises processes.
type Store struct {
	root     string
	instance string
	log      *slog.Logger
	now      func() time.Time
	pg       *pgBackend // nil: per-account SQLite files
}

// Open validates (and if missing creates, mode 0700) the sessions root and
// checks that it is writable with a probe that leaves nothing behind. It
// refuses a root owned by another user or writable by group or others,
// because anyone who can write there can plant or swap session keys; the
// error carries the command that fixes it.
func Open(root string, opts Options) (*Store, error) {
	if root == "" {
		return nil, errors.New("sessions root is empty: set SESSIONS_PATH (or the data dir) to a directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("sessions root %q: %w", root, err)
	}
	if err := ensureRoot(abs); err != nil {
		return nil, err
	}
	if err := CheckRoot(abs); err != nil {
		return nil, err
	}
	s := &Store{root: abs, instance: opts.InstanceID, log: opts.Logger, now: opts.Now}
	if s.instance == "" {
		if h, err := os.Hostname(); err == nil {
			s.instance = h
		} else {
			s.instance = "unknown"
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.Probe(); err != nil {
		return nil, err
	}
	if opts.Postgres != nil {
		pg, err := openPostgres(*opts.Postgres, s.log)
		if err != nil {
			return nil, err
		}
		s.pg = pg
	}
	return s, nil
}

// Root is the absolute sessions root.
func (s *Store) Root() string { return s.root }

// InstanceID is the instance name written into lock files.
func (s *Store) InstanceID() string { return s.instance }

// Dir is the directory of account id (not checked for existence).
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

func ensureRoot(root string) error {
	st, err := os.Stat(root)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("sessions root %s is not a directory: point SESSIONS_PATH at a directory", root)
		}
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return deniedRoot(root, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sessions root %s: %w", root, err)
	}
	if err := checkCreateAs(root); err != nil {
		return err
	}
	// Missing parents are created 0700 too: they hold nothing but sessions.
	if err := os.MkdirAll(filepath.Dir(root), dirMode); err != nil {
		return fmt.Errorf("create sessions root parent: %w", err)
	}
	if _, err := mkdirPrivate(root); err != nil {
		return fmt.Errorf("create sessions root %s: %w", root, err)
	}
	return nil
}

// Probe checks that the root is writable and fsyncable by creating, syncing
// and removing a uniquely named file. It leaves nothing behind.
func (s *Store) Probe() error {
	path := filepath.Join(s.root, tempPrefix+"probe."+randomHex(8))
	f, err := createPrivate(path)
	if err != nil {
		return fmt.Errorf("sessions root %s is not writable: %w", s.root, err)
	}
	_, werr := f.Write([]byte("wactl write probe\n"))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(path)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("sessions root %s failed the write probe: %w", s.root, err)
	}
	if err := syncDir(s.root); err != nil {
		return err
	}
	if s.pg != nil {
		// With PostgreSQL the device store is the database: an outage
		// makes the sessions store unwritable (and /health degraded).
		return s.pg.probe()
	}
	return nil
}
