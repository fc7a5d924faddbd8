// Package wiring builds the shared components — session store, message
// store, lease — from the configuration, the same way for every command
// (serve, pair, audit, doctor), so they all run on one set of rules.
package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	gfs "cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

// JournalFile is the local journal of Firestore mode, under data_dir.
const JournalFile = "journal.db"

// Sessions opens the sessions root.
func Sessions(cfg *config.Config, log *slog.Logger) (*sessions.Store, error) {
	return sessions.Open(cfg.Sessions.Path, sessions.Options{InstanceID: cfg.InstanceID, Logger: log, Postgres: SessionsPostgres(cfg)})
}

// SessionsPostgres is the PostgreSQL device store of the configuration;
// nil with sessions.store: sqlite.
func SessionsPostgres(cfg *config.Config) *sessions.PostgresOptions {
	if cfg.Sessions.Store != sessions.StoreKindPostgres {
		return nil
	}
	return &sessions.PostgresOptions{DSN: cfg.Sessions.PostgresDSN, MaxConns: cfg.Sessions.PostgresMaxConns, Timeout: cfg.Sessions.PostgresTimeout}
}

// FirestoreOptions are the connection settings of the configuration.
func FirestoreOptions(cfg *config.Config) fsclient.Options {
	f := cfg.Store.Firestore
	return fsclient.Options{ProjectID: f.ProjectID, Database: f.Database, EmulatorHost: f.EmulatorHost, CredentialsFile: f.CredentialsFile}
}

// Firestore opens a client when the store or the lock uses Firestore;
// nil otherwise.
func Firestore(ctx context.Context, cfg *config.Config) (*gfs.Client, error) {
	if cfg.Store.Backend != "firestore" && cfg.LockBackend() != "firestore" {
		return nil, nil
	}
	return fsclient.New(ctx, FirestoreOptions(cfg))
}

// Store opens the message store: the embedded SQLite database, or Firestore
// behind the local journal (nothing is acknowledged to WhatsApp before it
// is on local disk, whatever Firestore does). fence (serve's lease, nil
// for tools) fences the account, outbox and counter writes.
func Store(ctx context.Context, cfg *config.Config, client *gfs.Client, log *slog.Logger, fence func() (int64, bool)) (store.Store, error) {
	switch cfg.Store.Backend {
	case "embedded":
		st, err := sqlite.Open(ctx, sqlite.Options{Path: cfg.Store.Path, StrongDedupe: cfg.Store.StrongDedupe, Logger: log, Fence: fence})
		if err != nil {
			return nil, err
		}
		return st, nil
	case "firestore":
		if client == nil {
			return nil, fmt.Errorf("store: Firestore client not opened")
		}
		fs, err := fsstore.Open(ctx, fsstore.Options{Client: client, StrongDedupe: cfg.Store.StrongDedupe, Logger: log, Fence: fence})
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			fs.Close()
			return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
		j, err := journal.Open(filepath.Join(cfg.DataDir, JournalFile), fs, journal.Options{Logger: log})
		if err != nil {
			fs.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
		return j, nil
	}
	return nil, fmt.Errorf("store.backend %q: use embedded or firestore", cfg.Store.Backend)
}

// Timing is the lease timing of the configuration.
func Timing(cfg *config.Config) lock.Timing {
	l := cfg.Lock
	return lock.Timing{TTL: l.TTL, Renew: l.RenewInterval, SafetyMargin: l.SafetyMargin, Retry: l.RetryInterval}.WithDefaults()
}

// Lock builds the lease with callbacks.
func Lock(cfg *config.Config, client *gfs.Client, cb lock.Callbacks, log *slog.Logger) (lock.Lock, error) {
	switch cfg.LockBackend() {
	case "embedded":
		return lock.NewEmbedded(lock.EmbeddedOptions{DataDir: cfg.DataDir, InstanceID: cfg.InstanceID, Logger: log, Callbacks: cb})
	case "firestore":
		if client == nil {
			return nil, fmt.Errorf("lock: Firestore client not opened")
		}
		return lock.NewFirestore(lock.FirestoreOptions{Client: client, DocPath: cfg.Lock.Document, InstanceID: cfg.InstanceID,
			DataDir: cfg.DataDir, Timing: Timing(cfg), Logger: log, Callbacks: cb})
	}
	return nil, fmt.Errorf("lock.backend %q: use auto, embedded or firestore", cfg.Lock.Backend)
}
