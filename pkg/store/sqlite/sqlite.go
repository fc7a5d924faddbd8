// Package sqlite is the embedded store backend: one SQLite file (WAL,
// fsync'd commits) under the data directory, for a single host with no
// Firestore. UNIQUE constraints enforce the identity rules — one mapping per
// (account, WhatsApp id), one document per (thread, document id) — so no
// code path can write a duplicate, and every write of a message (document,
// mapping, thread summary, counters) is one transaction.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/wactl/wactl/pkg/store"
)

// FileName is the database file inside the data directory.
const FileName = "wactl.db"

// Options configures the embedded store.
type Options struct {
	// Dir is the data directory (created 0700 if missing); the database
	// is Dir/wactl.db. Path, when set, names the file directly instead.
	Dir  string
	Path string
	// StrongDedupe also skips a message whose fingerprint matches another
	// message of the same thread. Off by default, as in the old system:
	// the fingerprint cannot tell two genuinely identical messages apart
	// ("ok" sent twice in the same millisecond by a bridge or a bot), and
	// its stored hash is only 32 bits, so it can drop a real message; the
	// WhatsApp-id identity alone already removes every redelivery. It is
	// for sources known to re-send under new ids.
	StrongDedupe bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// MaxGroup caps how many concurrent writes share one transaction
	// (group commit); 0 means 256.
	MaxGroup int
	// Fence makes this store a fenced writer (serve's): see fence.go.
	Fence func() (epoch int64, held bool)
}

// Store is the embedded backend. It is safe for concurrent use.
type Store struct {
	opts  Options
	path  string
	now   func() time.Time
	log   *slog.Logger
	wdb   *sql.DB // one connection: SQLite has one writer anyway
	rdb   *sql.DB
	stmts *stmts
	reads *readStmts // on rdb
	// argBuf holds a multi-row statement's arguments; only the writer
	// goroutine touches it. Reusing it keeps a history sync from
	// allocating ~15 KB per 32 messages for the garbage collector.
	argBuf []any
	ops    chan *op
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
	cerr   error

	closing  sync.RWMutex
	isClosed bool

	mu      sync.Mutex
	lastErr string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating and migrating if needed) the database.
func Open(ctx context.Context, opts Options) (*Store, error) {
	path := opts.Path
	if path == "" {
		if opts.Dir == "" {
			return nil, errors.New("sqlite store: no data directory configured: set the data dir")
		}
		path = filepath.Join(opts.Dir, FileName)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: create data directory: %w", err)
	}
	if err := refuseEmptyInUsedDir(path); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	// SQLite gives the -wal and -shm files the mode of the main file, so
	// creating it 0600 first keeps all three private.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if IsDiskFull(err) {
			return nil, fmt.Errorf("sqlite store: %w", explain(path, err))
		}
		return nil, fmt.Errorf("sqlite store: open %s: %w (check the data dir's owner and permissions)", path, err)
	}
	_ = f.Close()

	s := &Store{opts: opts, path: path, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.opts.MaxGroup <= 0 {
		s.opts.MaxGroup = 256
	}
	// synchronous(FULL): in WAL mode NORMAL may lose the last commits on
	// power loss, and a nil error from RecordMessage promises durability.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
	// A larger auto-checkpoint interval lets a history sync's random index
	// pages be written back once per many batches instead of every batch.
	// temp_store(MEMORY) keeps statement journals (multi-row inserts,
	// savepoints) off disk: on a temp file they were a syscall per page.
	s.wdb, err = sql.Open("sqlite", base+"&_txlock=immediate&_pragma=cache_size(-32000)&_pragma=wal_autocheckpoint(8000)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err := s.wdb.PingContext(ctx); err != nil {
		_ = s.wdb.Close()
		if e := explain(path, err); e != err {
			return nil, fmt.Errorf("sqlite store: %w", e)
		}
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	if err := migrate(ctx, s.wdb, s.log); err != nil {
		_ = s.wdb.Close()
		if e := explain(path, err); e != err {
			return nil, fmt.Errorf("sqlite store: %w", e)
		}
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if s.stmts, err = prepare(s.wdb); err != nil {
		_ = s.wdb.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, explain(path, err))
	}
	s.rdb, err = sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		_ = s.wdb.Close()
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	if s.reads, err = prepareReads(s.rdb); err != nil {
		_ = s.rdb.Close()
		_ = s.wdb.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, explain(path, err))
	}
	s.ops = make(chan *op, 1024)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.writer()
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close stops the writer after the queued writes and closes the database.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.closing.Lock()
		s.isClosed = true
		s.closing.Unlock()
		close(s.stop)
		<-s.done
		s.cerr = errors.Join(s.rdb.Close(), s.wdb.Close())
	})
	return s.cerr
}

// Health reports the embedded store; it has no journal.
func (s *Store) Health(ctx context.Context) store.Health {
	h := store.Health{Backend: "embedded", Reachable: true}
	if err := s.rdb.PingContext(ctx); err != nil {
		h.Reachable = false
		h.LastError = err.Error()
		return h
	}
	s.mu.Lock()
	h.LastError = s.lastErr
	s.mu.Unlock()
	return h
}

// Flush has nothing to wait for: a write returns once committed.
func (s *Store) Flush(ctx context.Context) error { return ctx.Err() }

func (s *Store) noteErr(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if IsDiskFull(err) {
		// What /health and doctor show: the cause, not "cannot be read".
		msg = "disk full (no space left on device): " + msg
	}
	s.mu.Lock()
	s.lastErr = msg
	s.mu.Unlock()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
