package sessions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/whatsmeow/store/sqlstore"

	"github.com/wactl/wactl/pkg/wmlog"
)

// PostgresOptions selects the shared PostgreSQL device store: every
// account's whatsmeow device (whatsmeow's own schema and upgrades) and its
// metadata live in one database that every host reaches, so a host with an
// empty disk restores every account. Which host connects is decided by the
// lease, and per account by an advisory lock.
type PostgresOptions struct {
	// DSN is a libpq/pgx connection string or URL. It is a secret (it may
	// hold a password) and never logged.
	DSN string
	// MaxConns bounds the pool shared by every account; default 8.
	MaxConns int
	// Timeout bounds every statement (statement_timeout), connect and lock
	// wait; default 15 s.
	Timeout time.Duration
	// OutageWait bounds how long a call waits for a new connection while
	// PostgreSQL is unreachable (see waitConnector); default 5 min.
	OutageWait time.Duration
}

const (
	defaultPGMaxConns = 8
	defaultPGTimeout  = 15 * time.Second
	// pgLockClass is the first key of wactl's two-key advisory locks
	// ("wact"), so they cannot meet another application's one-key locks.
	pgLockClass int32 = 0x77616374
	// pgSchemaLockKey serialises schema set-up between hosts starting at once.
	pgSchemaLockKey int32 = 0
	// PGSchemaVersion is the version of wactl's own tables (wactl_version).
	PGSchemaVersion = 1
)

// pgSchema is wactl's metadata beside whatsmeow's tables. metadata is the
// same JSON as account.json; lock_* name the last holder of the account's
// advisory lock (the lock itself is what counts).
var pgSchema = []string{
	`CREATE TABLE IF NOT EXISTS wactl_version (version integer NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS wactl_accounts (
		account_id    text PRIMARY KEY,
		metadata      jsonb NOT NULL,
		lock_pid      integer,
		lock_instance text,
		lock_since    timestamptz,
		updated_at    timestamptz NOT NULL DEFAULT now()
	)`,
	`CREATE TABLE IF NOT EXISTS wactl_removed_accounts (
		account_id text NOT NULL,
		removed_at timestamptz NOT NULL,
		metadata   jsonb NOT NULL
	)`,
}

type pgBackend struct {
	db        *sql.DB
	container *sqlstore.Container
	timeout   time.Duration
	connCfg   *pgx.ConnConfig
	log       *slog.Logger

	// lockMu guards the dedicated connection holding this process's
	// advisory locks (one session can hold many), and held.
	lockMu   sync.Mutex
	lockConn *pgx.Conn
	held     map[string]bool
}

// pgConfig parses the DSN and sets the timeouts that bound every call.
func pgConfig(o PostgresOptions) (*pgx.ConnConfig, error) {
	if o.DSN == "" {
		return nil, errors.New("sessions.store is postgres but sessions.postgres_dsn is empty: set it (or WACTL_SESSIONS_POSTGRES_DSN_FILE)")
	}
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		// pgx's message leaves the password out.
		return nil, fmt.Errorf("sessions.postgres_dsn: %w", err)
	}
	ms := strconv.FormatInt(o.Timeout.Milliseconds(), 10)
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > o.Timeout {
		cfg.ConnectTimeout = o.Timeout
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	for k, v := range map[string]string{"statement_timeout": ms, "lock_timeout": ms, "idle_in_transaction_session_timeout": strconv.FormatInt(4*o.Timeout.Milliseconds(), 10), "application_name": "wactl"} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	return cfg, nil
}

func openPostgres(o PostgresOptions, log *slog.Logger) (*pgBackend, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = defaultPGMaxConns
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultPGTimeout
	}
	if o.OutageWait <= 0 {
		o.OutageWait = defaultPGOutageWait
	}
	cfg, err := pgConfig(o)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(&waitConnector{base: stdlib.GetConnector(*cfg), wait: o.OutageWait, log: log})
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	p := &pgBackend{db: db, timeout: o.Timeout, connCfg: cfg, log: log, held: map[string]bool{}}
	p.container = sqlstore.NewWithDB(db, "postgres", wmlog.New(log, "Database", wmlog.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 4*o.Timeout)
	defer cancel()
	if err := p.setup(ctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// setup runs whatsmeow's upgrades and creates wactl's tables, under a
// schema advisory lock so that two hosts starting at once do not race.
func (p *pgBackend) setup(ctx context.Context) error {
	conn, err := p.lockConnection(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", pgLockClass, pgSchemaLockKey); err != nil {
		return fmt.Errorf("postgres sessions store: schema lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, $2)", pgLockClass, pgSchemaLockKey)
	if err := p.container.Upgrade(ctx); err != nil {
		return fmt.Errorf("postgres sessions store: whatsmeow schema upgrade: %w", err)
	}
	for _, q := range pgSchema {
		if _, err := p.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("postgres sessions store: create tables: %w", err)
		}
	}
	var v sql.NullInt64
	err = p.db.QueryRowContext(ctx, "SELECT max(version) FROM wactl_version").Scan(&v)
	if err != nil {
		return fmt.Errorf("postgres sessions store: read wactl_version: %w", err)
	}
	switch {
	case !v.Valid:
		_, err = p.db.ExecContext(ctx, "INSERT INTO wactl_version (version) VALUES ($1)", PGSchemaVersion)
	case v.Int64 > PGSchemaVersion:
		err = fmt.Errorf("postgres sessions store has wactl schema version %d, newer than this wactl understands (%d): upgrade wactl", v.Int64, PGSchemaVersion)
	}
	return err
}

// lockConnection returns the dedicated connection, reconnecting a broken
// one. Locks a lost connection held are gone (PostgreSQL released them when
// the session ended): they are taken again here, and an account whose lock
// another process took meanwhile is logged loudly. Callers hold lockMu or
// are in setup (before any lock exists).
func (p *pgBackend) lockConnection(ctx context.Context) (*pgx.Conn, error) {
	if p.lockConn != nil && !p.lockConn.IsClosed() {
		if err := p.lockConn.Ping(ctx); err == nil {
			return p.lockConn, nil
		}
		p.lockConn.Close(context.Background())
		p.lockConn = nil
	}
	conn, err := pgx.ConnectConfig(ctx, p.connCfg)
	if err != nil {
		return nil, fmt.Errorf("postgres sessions store unreachable: %w", err)
	}
	p.lockConn = conn
	for id := range p.held {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", pgLockClass, accountLockKey(id)).Scan(&ok); err != nil || !ok {
			p.log.Error("account lock lost while PostgreSQL was unreachable and not taken back; another process may drive the account",
				"account", id, "err", err)
		}
	}
	return conn, nil
}

func (p *pgBackend) close() error {
	p.lockMu.Lock()
	if p.lockConn != nil {
		p.lockConn.Close(context.Background())
		p.lockConn = nil
	}
	p.lockMu.Unlock()
	return p.db.Close()
}

// ctx bounds one call of wactl's own.
func (p *pgBackend) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, p.timeout)
}

// accountLockKey is the second key of an account's advisory lock: a 32-bit
// FNV-1a hash of the id. Two ids of one database colliding would only make
// them exclude each other, never share a lock holder.
func accountLockKey(id string) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	if h == uint32(pgSchemaLockKey) {
		h = 1
	}
	return int32(h)
}

// probe checks that the database answers and takes a write, within at most
// 3 s (it runs on /health's refresh).
func (p *pgBackend) probe() error {
	t := p.timeout
	if t > 3*time.Second {
		t = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), t)
	defer cancel()
	if _, err := p.db.ExecContext(ctx, `UPDATE wactl_version SET version = version WHERE false`); err != nil {
		return fmt.Errorf("postgres sessions store unreachable: %w", err)
	}
	// After an outage, take back at once the account locks the broken
	// lock connection lost, before another process can take them.
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	if len(p.held) > 0 {
		if _, err := p.lockConnection(ctx); err != nil {
			return err
		}
	}
	return nil
}
